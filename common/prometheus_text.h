// Parser for the Prometheus text exposition format (version 0.0.4), as served by
// llama.cpp, vLLM, SGLang and TGI on /metrics.
#ifndef SWITCHBOARD_COMMON_PROMETHEUS_TEXT_H_
#define SWITCHBOARD_COMMON_PROMETHEUS_TEXT_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace switchboard {

struct PromSample {
  std::string name;                           // Full name, e.g. "vllm:e2e_request_latency_seconds_bucket".
  std::map<std::string, std::string> labels;  // Unescaped values.
  double value = 0;                           // May be NaN or +/-Inf.
};

// All samples of one scrape, in input order, with lookup helpers.
class PromScrape {
 public:
  // Parses a whole exposition. Any malformed sample line is an InvalidArgument error that
  // names the line: a backend answering garbage is a probe error, never a guess.
  static absl::StatusOr<PromScrape> Parse(absl::string_view text);

  const std::vector<PromSample>& samples() const { return samples_; }

  // The value of the first sample named `name` whose labels include every pair in
  // `labels` (empty matches any); nullopt when there is none.
  std::optional<double> Value(absl::string_view name, const std::map<std::string, std::string>& labels = {}) const;
  // Sum over every sample named `name` (e.g. a counter split by a label); nullopt if none.
  std::optional<double> Sum(absl::string_view name) const;

 private:
  std::vector<PromSample> samples_;
};

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_PROMETHEUS_TEXT_H_
