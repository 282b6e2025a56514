// `--backend auto=URL`: finds out which engine serves URL, then behaves as that adapter.
// Detection: /props with total_slots -> llama.cpp; /info with model_id -> TGI; else the
// metric prefix on /metrics (vllm:, sglang:, llamacpp:). Until detected, the endpoint is
// STARTING with a probe error that says what was tried.
#ifndef SWITCHBOARD_AGENT_PROBE_AUTO_PROBE_H_
#define SWITCHBOARD_AGENT_PROBE_AUTO_PROBE_H_

#include <memory>
#include <string>

#include "agent/probe/probe.h"

namespace switchboard::agent {

class AutoProbe final : public Probe {
 public:
  AutoProbe(ProbeOptions options, HttpClient* http) : Probe(std::move(options)), http_(http) {}
  v1::Engine engine() const override { return delegate_ ? delegate_->engine() : v1::ENGINE_UNSPECIFIED; }
  v1::EndpointReport Poll(absl::Time now) override;

  // The engine name ("llamacpp", "vllm", "sglang", "tgi") serving the URL, or an error.
  static absl::StatusOr<std::string> Detect(const ProbeOptions& options, HttpClient* http);

 private:
  HttpClient* const http_;
  std::unique_ptr<Probe> delegate_;
};

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_PROBE_AUTO_PROBE_H_
