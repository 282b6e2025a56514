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

}  // namespace
}  // namespace switchboard::controlplane::policy
