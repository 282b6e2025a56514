// Prometheus histograms read from a scrape: cumulative buckets, their difference between
// two scrapes, and quantiles interpolated inside a bucket as Prometheus'
// histogram_quantile() does.
#ifndef SWITCHBOARD_COMMON_HISTOGRAM_H_
#define SWITCHBOARD_COMMON_HISTOGRAM_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/prometheus_text.h"

namespace switchboard {

struct Histogram {
  // (upper bound "le", cumulative count), sorted by bound; the last bound is +Inf.
  std::vector<std::pair<double, double>> buckets;
  double sum = 0;
  double count = 0;
};

// Reads histogram `name` (samples name_bucket / name_sum / name_count) summed over every
// label set except "le" (e.g. over model_name). nullopt when absent or malformed
// (no +Inf bucket, non-finite or decreasing cumulative counts).
std::optional<Histogram> ReadHistogram(const PromScrape& scrape, const std::string& name);

// `now - before`, bucket by bucket: what was observed between two scrapes. nullopt when
// the bucket layouts differ or any count went down (a server restart: re-baseline).
std::optional<Histogram> HistogramDelta(const Histogram& now, const Histogram& before);

// The q-quantile (0 < q < 1) by linear interpolation within the bucket, as Prometheus
// does; the lowest bucket interpolates from 0 (or from its bound when it is <= 0); a
// quantile in the +Inf bucket returns the highest finite bound. nullopt when count == 0.
std::optional<double> HistogramQuantile(const Histogram& h, double q);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_HISTOGRAM_H_
