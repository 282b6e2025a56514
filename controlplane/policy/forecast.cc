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
  if (profile && *profile > 0) recent_.push_back({time, demand, *profile});
  while (!recent_.empty() && recent_.front().time < time - absl::Hours(1)) recent_.pop_front();
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

std::optional<double> SeasonalForecast::Predict(absl::Time at) const {
  std::optional<double> profile = Profile(at);
  if (!profile) return std::nullopt;
  return *profile * trend();
}

}  // namespace switchboard::controlplane::policy
