// Seasonal demand forecast for predictive scaling: a profile by hour of the week
// (168 buckets, each a time-decayed mean, half-life two weeks) times a trend factor (how
// the last bucket's worth of time, an hour, compared with the profile, clamped to
// [0.5, 2]).
// Until an hour has history, the forecast for it is the recent demand's straight-line
// trend (least squares over the last `extrapolation_window`) carried forward, within
// [0.5, 2] x the current level, so that even the first day's ramps are met ahead.
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

  explicit SeasonalForecast(absl::Duration half_life = absl::Hours(24 * 14),
                            absl::Duration extrapolation_window = absl::Minutes(15))
      : half_life_(half_life), extrapolation_window_(extrapolation_window) {}
  // A custom season (the simulator compresses a day into an hour): `buckets` equal slices
  // of `period`, counted from the Unix epoch. At most kBuckets.
  SeasonalForecast(absl::Duration half_life, absl::Duration period, int buckets, absl::Duration extrapolation_window)
      : half_life_(half_life),
        extrapolation_window_(extrapolation_window),
        period_(period),
        buckets_(std::min(buckets, kBuckets)) {}

  // Records the demand seen at `time`: the slots the traffic asks for (OfferedSlots()).
  void Observe(absl::Time time, double demand);
  // Demand expected at `at`: the profile of at's hour of the week times the recent trend;
  // for an hour not seen in an earlier week yet, the straight-line extrapolation; nullopt
  // when neither exists (fewer than 4 recent observations).
  std::optional<double> Predict(absl::Time at) const;
  // The straight-line extrapolation alone, for explain.
  std::optional<double> Extrapolate(absl::Time at) const;
  // Whether at's bucket was seen in an earlier season (not just earlier in this very
  // occurrence of it, which says nothing about what comes next): Predict() uses the
  // profile, else the straight line.
  bool HasHistory(absl::Time at) const;
  // The profile alone (no trend), for explain.
  std::optional<double> Profile(absl::Time at) const;
  double trend() const;
  absl::Duration extrapolation_window() const { return extrapolation_window_; }

  static int Bucket(absl::Time t);   // 0 = Monday 00:00-01:00 UTC.
  int BucketOf(absl::Time t) const;  // Bucket() for the week, else the custom season.

 private:
  struct Cell {
    double sum = 0, weight = 0;
    absl::Time updated = absl::InfinitePast();
    absl::Time first = absl::InfiniteFuture();  // The first observation ever.
  };
  struct Recent {
    absl::Time time;
    double actual, profile;
  };
  double Decayed(const Cell& c, absl::Time at, double* weight) const;

  const absl::Duration half_life_;
  const absl::Duration extrapolation_window_;
  const absl::Duration period_ = absl::ZeroDuration();  // Zero: the calendar week.
  const int buckets_ = kBuckets;
  std::array<Cell, kBuckets> cells_;
  std::deque<Recent> recent_;  // The last bucket's worth of time: for the trend.
  struct Sample {
    absl::Time time;
    double demand;
  };
  std::deque<Sample> samples_;  // The last extrapolation window.
};

}  // namespace switchboard::controlplane::policy

#endif  // SWITCHBOARD_CONTROLPLANE_POLICY_FORECAST_H_
