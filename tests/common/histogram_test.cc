#include "common/histogram.h"

#include "gtest/gtest.h"

namespace switchboard {
namespace {

PromScrape Scrape(const std::string& text) {
  auto s = PromScrape::Parse(text);
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

const char* kTwoModels =
    "ttft_bucket{model=\"a\",le=\"0.1\"} 2\n"
    "ttft_bucket{model=\"a\",le=\"0.5\"} 6\n"
    "ttft_bucket{model=\"a\",le=\"+Inf\"} 8\n"
    "ttft_bucket{model=\"b\",le=\"0.1\"} 0\n"
    "ttft_bucket{model=\"b\",le=\"0.5\"} 2\n"
    "ttft_bucket{model=\"b\",le=\"+Inf\"} 2\n"
    "ttft_sum{model=\"a\"} 2.5\n"
    "ttft_sum{model=\"b\"} 0.5\n"
    "ttft_count{model=\"a\"} 8\n"
    "ttft_count{model=\"b\"} 2\n";

TEST(HistogramTest, ReadsAndSumsOverLabels) {
  auto h = ReadHistogram(Scrape(kTwoModels), "ttft");
  ASSERT_TRUE(h.has_value());
  ASSERT_EQ(h->buckets.size(), 3u);
  EXPECT_EQ(h->buckets[0].second, 2);
  EXPECT_EQ(h->buckets[1].second, 8);
  EXPECT_EQ(h->count, 10);
  EXPECT_DOUBLE_EQ(h->sum, 3.0);
}

TEST(HistogramTest, QuantileInterpolatesLikePrometheus) {
  auto h = ReadHistogram(Scrape(kTwoModels), "ttft");
  // p50: rank 5 falls in (0.1, 0.5] holding counts 2..8: 0.1 + 0.4 * (5 - 2) / 6 = 0.3.
  EXPECT_NEAR(*HistogramQuantile(*h, 0.5), 0.3, 1e-12);
  // p10: rank 1 in the first bucket, interpolated from 0: 0.1 * 1 / 2 = 0.05.
  EXPECT_NEAR(*HistogramQuantile(*h, 0.1), 0.05, 1e-12);
  // p95: rank 9.5 is in +Inf: the highest finite bound.
  EXPECT_NEAR(*HistogramQuantile(*h, 0.95), 0.5, 1e-12);
}

TEST(HistogramTest, DeltaBetweenScrapesAndReset) {
  auto before = ReadHistogram(Scrape("x_bucket{le=\"1\"} 5\nx_bucket{le=\"+Inf\"} 5\nx_count 5\nx_sum 2\n"), "x");
  auto now = ReadHistogram(Scrape("x_bucket{le=\"1\"} 5\nx_bucket{le=\"+Inf\"} 9\nx_count 9\nx_sum 20\n"), "x");
  auto d = HistogramDelta(*now, *before);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->count, 4);
  EXPECT_EQ(d->buckets[0].second, 0);
  EXPECT_DOUBLE_EQ(d->sum, 18);
  // Counts went down: the server restarted, no delta.
  EXPECT_FALSE(HistogramDelta(*before, *now).has_value());
  // Nothing observed in the interval: no quantile rather than a made-up one.
  EXPECT_FALSE(HistogramQuantile(*HistogramDelta(*now, *now), 0.5).has_value());
}

TEST(HistogramTest, RejectsMalformed) {
  EXPECT_FALSE(ReadHistogram(Scrape("x_bucket{le=\"1\"} 5\n"), "x").has_value()) << "no +Inf bucket";
  EXPECT_FALSE(ReadHistogram(Scrape("x_bucket{le=\"1\"} 5\nx_bucket{le=\"+Inf\"} 3\n"), "x").has_value());
  EXPECT_FALSE(ReadHistogram(Scrape("x_bucket{le=\"abc\"} 5\nx_bucket{le=\"+Inf\"} 5\n"), "x").has_value());
  EXPECT_FALSE(ReadHistogram(Scrape("x_bucket{le=\"1\"} NaN\nx_bucket{le=\"+Inf\"} 5\n"), "x").has_value());
  EXPECT_FALSE(ReadHistogram(Scrape("y 1\n"), "x").has_value());
}

}  // namespace
}  // namespace switchboard
