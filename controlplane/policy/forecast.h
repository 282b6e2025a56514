// Seasonal demand forecast for predictive scaling: a profile by hour of the week
// (168 buckets, each a time-decayed mean, half-life two weeks) times a trend factor (how
// the last hour compared with the profile for that hour, clamped to [0.5, 2]).
// New LLM replicas take minutes to load: predicting demand `lead time` ahead lets the
// autoscaler add them before a known peak instead of after it.
// Pure and deterministic; time is always passed in (wall time: the profile is about the
// calendar).
#ifndef SWITCHBOARD_CONTROLPLANE_POLICY_FORECAST_H_
#define SWITCHBOARD_CONTROLPLANE_POLICY_FORECAST_H_

#include <algorithm>
#include <array>
#include <deque>
#include <optional>

#include "absl/time/time.h"

namespace switchboard::controlplane::policy {

class SeasonalForecast {
 public:
  static constexpr int kBuckets = 7 * 24;

  explicit SeasonalForecast(absl::Duration half_life = absl::Hours(24 * 14)) : half_life_(half_life) {}
  // A custom season (the simulator compresses a day into an hour): `buckets` equal slices
  // of `period`, counted from the Unix epoch. At most kBuckets.
  SeasonalForecast(absl::Duration half_life, absl::Duration period, int buckets)
      : half_life_(half_life), period_(period), buckets_(std::min(buckets, kBuckets)) {}

  // Records the demand seen at `time` (e.g. requests in flight plus queued).
  void Observe(absl::Time time, double demand);
  // Demand expected at `at`: the profile of at's hour of the week times the recent trend;
  // nullopt until that hour has been seen at least once.
  std::optional<double> Predict(absl::Time at) const;
  // The profile alone (no trend), for explain.
  std::optional<double> Profile(absl::Time at) const;
  double trend() const;

  static int Bucket(absl::Time t);   // 0 = Monday 00:00-01:00 UTC.
  int BucketOf(absl::Time t) const;  // Bucket() for the week, else the custom season.

 private:
  struct Cell {
    double sum = 0, weight = 0;
    absl::Time updated = absl::InfinitePast();
  };
  struct Recent {
    absl::Time time;
    double actual, profile;
  };
  double Decayed(const Cell& c, absl::Time at, double* weight) const;

  const absl::Duration half_life_;
  const absl::Duration period_ = absl::ZeroDuration();  // Zero: the calendar week.
  const int buckets_ = kBuckets;
  std::array<Cell, kBuckets> cells_;
  std::deque<Recent> recent_;  // The last hour: for the trend.
};

}  // namespace switchboard::controlplane::policy

#endif  // SWITCHBOARD_CONTROLPLANE_POLICY_FORECAST_H_
