// Circuit state of one endpoint: whether proxies may route to it, and why.
// Pure: a function of explicit inputs (no clock reads, no I/O).
#ifndef SWITCHBOARD_CONTROLPLANE_POLICY_CIRCUIT_H_
#define SWITCHBOARD_CONTROLPLANE_POLICY_CIRCUIT_H_

#include <string>

#include "absl/time/time.h"
#include "switchboard/v1/common.pb.h"

namespace switchboard::controlplane::policy {

struct CircuitConfig {
  // A node silent for longer than this is "unknown", not "idle": its endpoints are
  // excluded until it reports again.
  absl::Duration staleness_bound = absl::Seconds(5);
};

struct CircuitInput {
  v1::EndpointState state = v1::ENDPOINT_STATE_UNSPECIFIED;
  bool reported = false;        // Any report seen since the node connected.
  // The agent's last probe error (informational: the agent applies failure thresholds
  // and reports UNHEALTHY when probes have really failed, so one slow probe does not flap).
  std::string probe_error;
  absl::Duration report_age;    // Since the node's last report.
};

struct CircuitDecision {
  v1::CircuitState circuit = v1::CIRCUIT_STATE_CLOSED;
  bool routable = false;        // May receive new requests (weight > 0).
  std::string reason;           // One line for people: "ready", "stale: no report for 6s", ...
};

CircuitDecision DecideCircuit(const CircuitInput& in, const CircuitConfig& config);

}  // namespace switchboard::controlplane::policy

#endif  // SWITCHBOARD_CONTROLPLANE_POLICY_CIRCUIT_H_
