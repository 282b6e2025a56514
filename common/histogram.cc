#include "common/histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

namespace switchboard {

std::optional<Histogram> ReadHistogram(const PromScrape& scrape, const std::string& name) {
  const std::string bucket_name = name + "_bucket";
  std::map<double, double> buckets;
  bool found = false;
  for (const PromSample& s : scrape.samples()) {
    if (s.name != bucket_name) continue;
    auto le = s.labels.find("le");
    if (le == s.labels.end()) return std::nullopt;
    double bound;
    if (le->second == "+Inf" || le->second == "Inf") {
      bound = std::numeric_limits<double>::infinity();
    } else if (!absl::SimpleAtod(le->second, &bound) || std::isnan(bound)) {
      return std::nullopt;
    }
    if (!std::isfinite(s.value) || s.value < 0) return std::nullopt;
    buckets[bound] += s.value;
    found = true;
  }
  if (!found || !std::isinf(buckets.rbegin()->first)) return std::nullopt;
  Histogram h;
  double previous = 0;
  for (const auto& [bound, count] : buckets) {
    if (count < previous) return std::nullopt;  // Cumulative counts never decrease.
    h.buckets.emplace_back(bound, count);
    previous = count;
  }
  h.count = h.buckets.back().second;
  h.sum = scrape.Sum(name + "_sum").value_or(0);
  if (!std::isfinite(h.sum)) h.sum = 0;
  return h;
}

std::optional<Histogram> HistogramDelta(const Histogram& now, const Histogram& before) {
  if (now.buckets.size() != before.buckets.size()) return std::nullopt;
  Histogram d;
  for (size_t i = 0; i < now.buckets.size(); ++i) {
    if (now.buckets[i].first != before.buckets[i].first) return std::nullopt;
    const double diff = now.buckets[i].second - before.buckets[i].second;
    if (diff < 0) return std::nullopt;
    d.buckets.emplace_back(now.buckets[i].first, diff);
  }
  d.count = now.count - before.count;
  d.sum = now.sum - before.sum;
  if (d.count < 0) return std::nullopt;
  return d;
}

std::optional<double> HistogramQuantile(const Histogram& h, double q) {
  if (h.buckets.empty() || h.count <= 0 || !(q > 0) || !(q < 1)) return std::nullopt;
  const double rank = q * h.count;
  double lower_bound = 0, lower_count = 0;
  for (size_t i = 0; i < h.buckets.size(); ++i) {
    const auto& [bound, count] = h.buckets[i];
    if (count >= rank) {
      if (std::isinf(bound)) {
        // Prometheus returns the upper bound of the second-highest bucket.
        return i == 0 ? 0.0 : h.buckets[i - 1].first;
      }
      if (i == 0 && bound <= 0) return bound;
      const double in_bucket = count - lower_count;
      if (in_bucket <= 0) return bound;
      return lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket;
    }
    lower_bound = bound;
    lower_count = count;
  }
  return std::nullopt;
}

}  // namespace switchboard
