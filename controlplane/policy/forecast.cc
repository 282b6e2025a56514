#include "controlplane/policy/forecast.h"

#include <algorithm>
#include <cmath>

namespace switchboard::controlplane::policy {

int SeasonalForecast::Bucket(absl::Time t) {
  const absl::CivilHour h = absl::ToCivilHour(t, absl::UTCTimeZone());
  const int weekday = static_cast<int>(absl::GetWeekday(h));  // Monday = 0 in Abseil.
  return weekday * 24 + h.hour();
}

int SeasonalForecast::BucketOf(absl::Time t) const {
  if (period_ <= absl::ZeroDuration()) return Bucket(t);
  const int64_t period_ns = absl::ToInt64Nanoseconds(period_);
  int64_t offset = absl::ToUnixNanos(t) % period_ns;
  if (offset < 0) offset += period_ns;
  return static_cast<int>(offset / (period_ns / buckets_)) % buckets_;
}

double SeasonalForecast::Decayed(const Cell& c, absl::Time at, double* weight) const {
  const double age = std::max(0.0, absl::ToDoubleSeconds(at - c.updated));
  const double factor = std::pow(0.5, age / absl::ToDoubleSeconds(half_life_));
  *weight = c.weight * factor;
  return c.sum * factor;
}

void SeasonalForecast::Observe(absl::Time time, double demand) {
  if (!std::isfinite(demand) || demand < 0) return;  // Garbage in changes nothing.
  std::optional<double> profile = Profile(time);
  Cell& c = cells_[BucketOf(time)];
  double weight = 0;
  const double sum = c.updated == absl::InfinitePast() ? 0 : Decayed(c, time, &weight);
  c.sum = sum + demand;
  c.weight = weight + 1;
  c.updated = time;
  c.first = std::min(c.first, time);
  if (profile && *profile > 0) recent_.push_back({time, demand, *profile});
  samples_.push_back({time, demand});
  while (!samples_.empty() && samples_.front().time < time - extrapolation_window_) samples_.pop_front();
  const absl::Duration window = period_ > absl::ZeroDuration() ? period_ / buckets_ : absl::Hours(1);
  while (!recent_.empty() && recent_.front().time < time - window) recent_.pop_front();
}

std::optional<double> SeasonalForecast::Profile(absl::Time at) const {
  const Cell& c = cells_[BucketOf(at)];
  if (c.weight <= 0) return std::nullopt;
  double weight = 0;
  const double sum = Decayed(c, at, &weight);
  return weight > 0 ? std::optional<double>(sum / weight) : std::nullopt;
}

double SeasonalForecast::trend() const {
  double actual = 0, profile = 0;
  for (const Recent& r : recent_) {
    actual += r.actual;
    profile += r.profile;
  }
  if (recent_.size() < 3 || profile <= 0) return 1.0;
  return std::clamp(actual / profile, 0.5, 2.0);
}

std::optional<double> SeasonalForecast::Extrapolate(absl::Time at) const {
  if (samples_.size() < 4) return std::nullopt;
  // Least squares of demand on time (seconds relative to the newest sample).
  const absl::Time last = samples_.back().time;
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const Sample& s : samples_) {
    const double x = absl::ToDoubleSeconds(s.time - last);
    n += 1;
    sx += x;
    sy += s.demand;
    sxx += x * x;
    sxy += x * s.demand;
  }
  const double var = n * sxx - sx * sx;
  if (var <= 0) return std::nullopt;  // All at one instant.
  const double slope = (n * sxy - sx * sy) / var;
  const double level = (sy - slope * sx) / n;  // The fitted value now.
  if (level <= 0) return std::max(0.0, level);
  const double ahead = std::max(0.0, absl::ToDoubleSeconds(at - last));
  return std::clamp(level + slope * ahead, 0.5 * level, 2.0 * level);
}

bool SeasonalForecast::HasHistory(absl::Time at) const {
  const Cell& c = cells_[BucketOf(at)];
  if (c.weight <= 0) return false;
  // The start of at's bucket: the hour, or the custom season's slice.
  absl::Time start;
  if (period_ <= absl::ZeroDuration()) {
    start = absl::FromCivil(absl::ToCivilHour(at, absl::UTCTimeZone()), absl::UTCTimeZone());
  } else {
    const int64_t slice = absl::ToInt64Nanoseconds(period_) / buckets_;
    int64_t offset = absl::ToUnixNanos(at) % slice;
    if (offset < 0) offset += slice;
    start = at - absl::Nanoseconds(offset);
  }
  return c.first < start;
}

std::optional<double> SeasonalForecast::Predict(absl::Time at) const {
  std::optional<double> profile = Profile(at);
  if (!profile || !HasHistory(at)) return Extrapolate(at);
  return *profile * trend();
}

}  // namespace switchboard::controlplane::policy
