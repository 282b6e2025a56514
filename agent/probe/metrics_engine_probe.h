// Adapters for engines whose state is all in Prometheus /metrics: vLLM, SGLang and TGI.
// One implementation, driven by a table of each engine's names (EngineSpec), per
// shared/reference/inference-servers.md.
#ifndef SWITCHBOARD_AGENT_PROBE_METRICS_ENGINE_PROBE_H_
#define SWITCHBOARD_AGENT_PROBE_METRICS_ENGINE_PROBE_H_

#include <optional>
#include <string>
#include <vector>

#include "agent/probe/counter_pair.h"
#include "agent/probe/probe.h"
#include "common/histogram.h"

namespace switchboard::agent {

struct EngineSpec {
  v1::Engine engine = v1::ENGINE_UNSPECIFIED;
  std::string running;                // Gauge: requests in the running batch.
  std::string waiting;                // Gauge: queued requests.
  std::vector<std::string> kv_usage;  // 0-1 gauges, first present wins (newest name first).
  std::string ttft_histogram;         // Empty when the engine exports none (TGI).
  std::string e2e_histogram;
  std::string generated_tokens;       // Counter (or a histogram's _sum).
  std::vector<std::string> requests;  // Counters of finished requests (summed, over labels too).
  std::string failures;               // Counter of failed requests; empty if none.
  // Label values of `failures` (on label "err") that are the client's doing, not a failing
  // server's (TGI: validation, overloaded): counted as requests, not as errors.
  std::vector<std::string> client_failure_kinds;
  // Prompt tokens and the seconds spent prefilling them, as a pair of counters that grow
  // together (vLLM: two histograms' _sum); empty when the engine exports no prefill time.
  std::string prefill_tokens;
  std::string prefill_seconds;
  bool models_from_info = false;  // TGI: /info model_id and max_concurrent_requests.
};

const EngineSpec& VllmSpec();
const EngineSpec& SglangSpec();
const EngineSpec& TgiSpec();

class MetricsEngineProbe final : public HealthTrackingProbe {
 public:
  MetricsEngineProbe(EngineSpec spec, ProbeOptions options, HttpClient* http)
      : HealthTrackingProbe(std::move(options), http), spec_(std::move(spec)) {}
  v1::Engine engine() const override { return spec_.engine; }

 private:
  std::string PollOnce(absl::Time now, v1::EndpointReport* out, bool* loading) override;
  std::string FetchModels();

  const EngineSpec spec_;
  std::vector<std::string> models_;
  uint32_t slots_total_ = 0;
  // Baselines of the previous scrape, for per-interval rates and latency quantiles, and
  // the last speeds measured.
  CounterPair generated_;  // generated tokens
  CounterPair prefill_;    // prompt tokens, prefill seconds
  std::optional<Histogram> last_ttft_, last_e2e_;
  double slot_tokens_per_second_ = 0;
  double prefill_tokens_per_second_ = 0;
};

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_PROBE_METRICS_ENGINE_PROBE_H_
