// Probe: what every engine adapter does. One Probe per endpoint; Poll is called once per
// report interval from one thread at a time.
#ifndef SWITCHBOARD_AGENT_PROBE_PROBE_H_
#define SWITCHBOARD_AGENT_PROBE_PROBE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/probe/active_check.h"
#include "agent/probe/http_client.h"
#include "switchboard/v1/agent.pb.h"

namespace switchboard::agent {

// Health thresholds: N consecutive failed polls turn an endpoint UNHEALTHY, M consecutive
// good ones bring it back, so one slow probe does not flap the fleet.
struct HealthThresholds {
  int failures_to_unhealthy = 2;
  int successes_to_recover = 1;
};

struct ProbeOptions {
  std::string base_url;                              // http://host:port, no trailing slash.
  std::string address;                               // host:port that proxies route to.
  absl::Duration timeout = absl::Milliseconds(800);  // Per HTTP request.
  HealthThresholds thresholds;
  double capacity_hint = 0;
  // Batch limit for engines without fixed slots (vLLM --max-num-seqs, SGLang
  // --max-running-requests); 0 = the engine's default (256).
  uint32_t max_seqs = 0;
  ActiveCheckOptions check;
};

class Probe {
 public:
  virtual ~Probe() = default;
  // ENGINE_UNSPECIFIED until an auto-detecting probe knows.
  virtual v1::Engine engine() const = 0;
  const ProbeOptions& options() const { return options_; }
  // One probe round. Never fails: failures are expressed in the report (state,
  // probe_error). `now` is monotonic time, used for rates.
  virtual v1::EndpointReport Poll(absl::Time now) = 0;

 protected:
  explicit Probe(ProbeOptions options) : options_(std::move(options)) {}
  const ProbeOptions options_;
};

// What every adapter shares: health levels with failure thresholds, the last good
// report kept through failures (so the control plane still knows slots and models), and
// the active checks. Subclasses implement one round of HTTP calls.
class HealthTrackingProbe : public Probe {
 public:
  v1::EndpointReport Poll(absl::Time now) final;

 protected:
  // `http` must outlive the probe.
  HealthTrackingProbe(ProbeOptions options, HttpClient* http)
      : Probe(std::move(options)), http_(http), check_(options_.check, http) {}
  // Fills `out` (address and engine already set) from one round; returns "" when the
  // endpoint answered sanely, else a short error. Sets *loading while the model loads.
  virtual std::string PollOnce(absl::Time now, v1::EndpointReport* out, bool* loading) = 0;

  HttpClient* const http_;

 private:
  ActiveCheck check_;
  int consecutive_failures_ = 0;
  int consecutive_successes_ = 0;
  bool healthy_ = true;      // Under the failure threshold.
  bool ever_ready_ = false;  // Failures before the first success mean "still starting".
  v1::EndpointReport last_good_;
};

// Parses "ENGINE=URL[,capacity=X][,max_seqs=N]" (ENGINE: llamacpp, vllm, sglang, tgi,
// auto) into an engine name and options.
struct BackendSpec {
  std::string engine;
  ProbeOptions options;
};
absl::StatusOr<BackendSpec> ParseBackendSpec(const std::string& spec);

// Builds the adapter for `spec`. `http` must outlive the probe.
absl::StatusOr<std::unique_ptr<Probe>> MakeProbe(const BackendSpec& spec, HttpClient* http);

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_PROBE_PROBE_H_
