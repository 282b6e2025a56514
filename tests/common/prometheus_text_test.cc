#include "common/prometheus_text.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace switchboard {
namespace {

TEST(PromScrapeTest, ParsesCountersGaugesAndLabels) {
  auto scrape = PromScrape::Parse(
      "# HELP llamacpp:requests_processing Number of requests processing\n"
      "# TYPE llamacpp:requests_processing gauge\n"
      "llamacpp:requests_processing 4\n"
      "vllm:request_success_total{finished_reason=\"stop\",model_name=\"m\"} 10\n"
      "vllm:request_success_total{finished_reason=\"length\",model_name=\"m\"} 5 1700000000000\n"
      "weird{a=\"x\\\"y\\\\z\\n\",} 1.5e3\r\n");
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  EXPECT_EQ(scrape->samples().size(), 4u);
  EXPECT_EQ(scrape->Value("llamacpp:requests_processing"), 4);
  EXPECT_EQ(scrape->Value("vllm:request_success_total", {{"finished_reason", "length"}}), 5);
  EXPECT_EQ(scrape->Sum("vllm:request_success_total"), 15);
  EXPECT_EQ(scrape->samples()[3].labels.at("a"), "x\"y\\z\n");
  EXPECT_EQ(scrape->Value("weird"), 1500);
  EXPECT_FALSE(scrape->Value("missing").has_value());
}

TEST(PromScrapeTest, ParsesSpecialValues) {
  auto scrape = PromScrape::Parse("a NaN\nb +Inf\nc -Inf\n");
  ASSERT_TRUE(scrape.ok());
  EXPECT_TRUE(std::isnan(*scrape->Value("a")));
  EXPECT_TRUE(std::isinf(*scrape->Value("b")));
  EXPECT_LT(*scrape->Value("c"), 0);
}

TEST(PromScrapeTest, RejectsGarbageWithLineNumber) {
  for (const char* bad :
       {"<html>oops</html>", "metric", "metric{a=\"1\" 2", "m{a=1} 2", "m abc", "m 1 2 3", "m{a=\"1\"}2"}) {
    auto scrape = PromScrape::Parse(std::string("ok 1\n") + bad + "\n");
    ASSERT_FALSE(scrape.ok()) << bad;
    EXPECT_NE(scrape.status().message().find("line 2"), absl::string_view::npos) << scrape.status();
  }
}

// A real llama-server /metrics body (shared/reference/captures/llama.cpp-b10470, with the
// HTTP head stripped), as the agent sees it.
TEST(PromScrapeTest, ParsesRealLlamaServerCapture) {
  const char* body =
      "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens\n"
      "# TYPE llamacpp:prompt_tokens_total counter\n"
      "llamacpp:prompt_tokens_total 164\n"
      "# TYPE llamacpp:requests_processing gauge\n"
      "llamacpp:requests_processing 4\n"
      "# TYPE llamacpp:requests_deferred gauge\n"
      "llamacpp:requests_deferred 2\n"
      "llamacpp:n_busy_slots_per_decode 3.98561\n";
  auto scrape = PromScrape::Parse(body);
  ASSERT_TRUE(scrape.ok());
  EXPECT_EQ(scrape->Value("llamacpp:requests_deferred"), 2);
  EXPECT_DOUBLE_EQ(*scrape->Value("llamacpp:n_busy_slots_per_decode"), 3.98561);
}

}  // namespace
}  // namespace switchboard
