// The llama.cpp server (llama-server) adapter. Shapes handled, per
// shared/reference/inference-servers.md: /health current and 2024 (slots_idle /
// slots_processing, "no slot available"), 503 "Loading model" while loading;
// /metrics (requests_processing, requests_deferred, token counters) with a fallback to
// /slots when /metrics answers 501 (both is_processing and the older integer state);
// /props total_slots and n_ctx; /v1/models data[].id (a .gguf path becomes a clean name).
// llama.cpp counts no finished requests; the probe counts them from /slots (a slot's
// id_task changes, or the slot falls idle) and reports them as requests_total.
#ifndef SWITCHBOARD_AGENT_PROBE_LLAMACPP_PROBE_H_
#define SWITCHBOARD_AGENT_PROBE_LLAMACPP_PROBE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/probe/counter_pair.h"
#include "agent/probe/probe.h"

namespace switchboard::agent {

class LlamaCppProbe final : public HealthTrackingProbe {
 public:
  LlamaCppProbe(ProbeOptions options, HttpClient* http) : HealthTrackingProbe(std::move(options), http) {}
  v1::Engine engine() const override { return v1::ENGINE_LLAMACPP; }

 private:
  std::string PollOnce(absl::Time now, v1::EndpointReport* out, bool* loading) override;
  std::string FetchProps();
  std::string FetchModels();
  // `kv_gauge`: whether /metrics had llamacpp:kv_cache_usage_ratio (2024 builds).
  std::string ReadMetrics(absl::Time now, v1::EndpointReport* out, bool* unsupported, bool* kv_gauge);
  // From /slots: the requests that finished since the last read, decode speed from
  // n_decoded progress, a KV-cache estimate if `estimate_kv`, and (unless `busy_known`,
  // i.e. /metrics gave it) the busy slots.
  std::string ReadSlots(absl::Time now, bool busy_known, bool estimate_kv, v1::EndpointReport* out, bool* unsupported);

  bool metrics_supported_ = true;
  bool slots_supported_ = true;
  uint32_t total_slots_ = 0;
  std::vector<std::string> models_;
  // Counter baselines for rates, and the last speeds measured.
  CounterPair decode_counters_;   // tokens_predicted_total, tokens_predicted_seconds_total
  CounterPair prefill_counters_;  // prompt_tokens_total, prompt_seconds_total
  double slot_tokens_per_second_ = 0;
  double prefill_tokens_per_second_ = 0;
  std::map<int64_t, std::pair<int64_t, int64_t>> slot_progress_;  // slot id -> (task, n_decoded)
  std::optional<absl::Time> slot_progress_at_;
  // Finished requests, from /slots: what each slot showed at the last read. A task seen
  // running and then gone, or a new task id on an idle slot, is one finished request; a
  // slot that ran several tasks between two reads counts one (an undercount only for
  // requests shorter than the probe interval).
  struct SlotTask {
    std::optional<int64_t> task;
    bool processing = false;
  };
  std::map<int64_t, SlotTask> slot_tasks_;  // Slot id -> as last read.
  uint64_t finished_requests_ = 0;
  uint32_t last_busy_ = 0;  // Busy slots at the last poll: read /slots once more as they empty.
};

// "/models/Llama-3-8B.Q4_K_M.gguf" -> "Llama-3-8B.Q4_K_M"; other ids unchanged.
std::string CleanModelName(const std::string& id);

// Describes an HTTP failure in a few words, with a short excerpt of the body.
std::string HttpFailure(const std::string& path, const HttpResponse& r);

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_PROBE_LLAMACPP_PROBE_H_
