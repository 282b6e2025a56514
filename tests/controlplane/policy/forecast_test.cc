#include "controlplane/policy/forecast.h"

#include "gtest/gtest.h"

namespace switchboard::controlplane::policy {
namespace {

// Monday 2026-11-02 00:00 UTC.
const absl::Time kMonday = absl::FromCivil(absl::CivilSecond(2026, 11, 2, 0, 0, 0), absl::UTCTimeZone());

// A working-hours peak: 50 from 09:00 to 17:00 UTC, 10 otherwise, every day.
double Diurnal(absl::Time t) {
  const int hour = absl::ToCivilHour(t, absl::UTCTimeZone()).hour();
  return hour >= 9 && hour < 17 ? 50 : 10;
}

TEST(ForecastTest, BucketIsHourOfWeekMondayFirst) {
  EXPECT_EQ(SeasonalForecast::Bucket(kMonday), 0);
  EXPECT_EQ(SeasonalForecast::Bucket(kMonday + absl::Hours(9) + absl::Minutes(30)), 9);
  EXPECT_EQ(SeasonalForecast::Bucket(kMonday + absl::Hours(24 * 6 + 23)), 167);
}

TEST(ForecastTest, NoHistoryNoPrediction) {
  SeasonalForecast f;
  EXPECT_FALSE(f.Predict(kMonday).has_value());
}

TEST(ForecastTest, PredictsTheKnownPeakBeforeItComes) {
  SeasonalForecast f;
  // Two weeks of history, one sample a minute.
  absl::Time t = kMonday;
  for (; t < kMonday + absl::Hours(24 * 14); t += absl::Minutes(1)) f.Observe(t, Diurnal(t));
  // Third Monday, 08:57: demand is still 10, but in 3 minutes the peak starts.
  const absl::Time now = kMonday + absl::Hours(24 * 14 + 8) + absl::Minutes(57);
  for (absl::Time u = t; u <= now; u += absl::Minutes(1)) f.Observe(u, Diurnal(u));
  EXPECT_NEAR(*f.Predict(now), 10, 0.5);
  EXPECT_NEAR(*f.Predict(now + absl::Minutes(5)), 50, 2) << "the 09:00 bucket, ahead of time";
}

TEST(ForecastTest, TrendScalesTheProfile) {
  SeasonalForecast f;
  absl::Time t = kMonday;
  for (; t < kMonday + absl::Hours(24 * 7); t += absl::Minutes(1)) f.Observe(t, Diurnal(t));
  // This week runs at twice last week's demand for an hour.
  for (absl::Time u = t; u < t + absl::Minutes(60); u += absl::Minutes(1)) f.Observe(u, 2 * Diurnal(u));
  EXPECT_GT(f.trend(), 1.4);
  EXPECT_LE(f.trend(), 2.0);
  // Garbage is ignored.
  f.Observe(t + absl::Minutes(61), std::nan(""));
  f.Observe(t + absl::Minutes(61), -5);
  EXPECT_GT(f.trend(), 1.4);
}

TEST(ForecastTest, ExtrapolatesTheRampOfAnHourWithoutHistory) {
  SeasonalForecast f(absl::Hours(24 * 14), absl::Minutes(10));
  const absl::Time start = kMonday + absl::Hours(8);
  // Three observations are not a trend yet.
  for (int m = 0; m < 3; ++m) f.Observe(start + absl::Minutes(m), 20 + 2 * m);
  EXPECT_FALSE(f.Predict(start + absl::Minutes(5)).has_value());
  // Demand rising by 2 a minute; only the last 10 minutes count.
  for (int m = 3; m <= 30; ++m) f.Observe(start + absl::Minutes(m), 20 + 2 * m);
  const absl::Time now = start + absl::Minutes(30);
  EXPECT_NEAR(*f.Extrapolate(now), 80, 1e-6);
  EXPECT_NEAR(*f.Predict(now + absl::Minutes(5)), 90, 1e-6) << "the 08:00 hour has no history: the line";
  EXPECT_NEAR(*f.Predict(now + absl::Hours(2)), 160, 1e-6) << "at most twice the current level";
  // A falling demand bottoms out at half the level, never below zero.
  SeasonalForecast g(absl::Hours(24 * 14), absl::Minutes(10));
  for (int m = 0; m <= 10; ++m) g.Observe(start + absl::Minutes(m), 100 - 5 * m);
  EXPECT_NEAR(*g.Predict(start + absl::Minutes(12)), 40, 1e-6);
  EXPECT_NEAR(*g.Predict(start + absl::Minutes(60)), 25, 1e-6);
}

TEST(ForecastTest, ACustomSeasonTakesItsTrendOverOneBucket) {
  // The simulator's compressed day: 24 buckets of 150 s in an hour.
  SeasonalForecast f(absl::Hours(24 * 365), absl::Hours(1), 24, absl::Minutes(2));
  const absl::Time t0 = absl::UnixEpoch();
  for (int s = 0; s < 3600; s += 15) f.Observe(t0 + absl::Seconds(s), 10);
  // The next day starts at twice the demand; 150 s later the trend says so.
  for (int s = 3600; s < 3750; s += 15) f.Observe(t0 + absl::Seconds(s), 20);
  EXPECT_GT(f.trend(), 1.5);
  // And 150 s after the burst ends, the trend is back near 1.
  for (int s = 3750; s < 3900; s += 15) f.Observe(t0 + absl::Seconds(s), 10);
  EXPECT_NEAR(f.trend(), 1.0, 0.1);
}

}  // namespace
}  // namespace switchboard::controlplane::policy
