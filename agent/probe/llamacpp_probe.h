// The llama.cpp server (llama-server) adapter. Shapes handled, per
// shared/reference/inference-servers.md: /health current and 2024 (slots_idle /
// slots_processing, "no slot available"), 503 "Loading model" while loading;
// /metrics (requests_processing, requests_deferred, token counters) with a fallback to
// /slots when /metrics answers 501 (both is_processing and the older integer state);
// /props total_slots and n_ctx; /v1/models data[].id (a .gguf path becomes a clean name).
#ifndef SWITCHBOARD_AGENT_PROBE_LLAMACPP_PROBE_H_
#define SWITCHBOARD_AGENT_PROBE_LLAMACPP_PROBE_H_

#include <optional>
#include <string>
#include <vector>

#include "agent/probe/probe.h"

namespace switchboard::agent {

class LlamaCppProbe final : public Probe {
 public:
  LlamaCppProbe(ProbeOptions options, HttpClient* http) : Probe(std::move(options)), http_(http) {}
  v1::Engine engine() const override { return v1::ENGINE_LLAMACPP; }
  v1::EndpointReport Poll(absl::Time now) override;

 private:
  // Fills `out` from one round of HTTP calls; returns an error text on failure, or ""
  // when the endpoint answered sanely (sets *loading when the model is still loading).
  std::string PollOnce(absl::Time now, v1::EndpointReport* out, bool* loading);
  std::string FetchProps();
  std::string FetchModels();
  std::string ReadMetrics(absl::Time now, v1::EndpointReport* out, bool* unsupported);
  std::string ReadSlots(v1::EndpointReport* out, bool* unsupported);

  HttpClient* const http_;
  int consecutive_failures_ = 0;
  int consecutive_successes_ = 0;
  bool healthy_ = true;           // Under the failure threshold.
  bool metrics_supported_ = true;
  bool slots_supported_ = true;
  uint32_t total_slots_ = 0;
  std::vector<std::string> models_;
  v1::EndpointReport last_good_;  // Kept through failures: last known slots and models.
  // Counter baselines for rates.
  std::optional<absl::Time> last_counters_at_;
  double last_tokens_predicted_ = 0;
  double last_tokens_seconds_ = 0;
  double slot_tokens_per_second_ = 0;
};

// "/models/Llama-3-8B.Q4_K_M.gguf" -> "Llama-3-8B.Q4_K_M"; other ids unchanged.
std::string CleanModelName(const std::string& id);

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_PROBE_LLAMACPP_PROBE_H_
