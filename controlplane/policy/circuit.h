// Circuit state of every endpoint of a pool: whether proxies may route to it, and why.
// Pure: explicit inputs, the memory a breaker needs (CircuitMemory) passed in and out,
// the time injected.
//
//   CLOSED -> OPEN      the agent reports UNHEALTHY (its probes failed N times), the node
//                       went silent past the staleness bound, the 5xx share over the
//                       error window is too high (4xx never counts), or TTFT p95 is far
//                       above the pool's median (latency outlier)
//   OPEN -> HALF_OPEN   after the ejection time, which grows with each ejection:
//                       min(base x times ejected, max)
//   HALF_OPEN           routable with a small weight; CLOSED after `half_open_duration`
//                       without a new failure, OPEN again (longer) on one
//
// "Plainly down" endpoints (unhealthy, stale, never reported) are always excluded. The
// other ejections (5xx rate, latency) are capped: at most `max_ejection_share` of the
// pool's endpoints that are not plainly down, so a shared cause never empties a pool
// (fail open). Envoy's outlier detection and resilience4j are the models; see
// shared/reference/control-algorithms.md.
#ifndef SWITCHBOARD_CONTROLPLANE_POLICY_CIRCUIT_H_
#define SWITCHBOARD_CONTROLPLANE_POLICY_CIRCUIT_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "switchboard/v1/common.pb.h"

namespace switchboard::controlplane::policy {

struct CircuitConfig {
  // A node silent for longer than this is "unknown", not "idle".
  absl::Duration staleness_bound = absl::Seconds(5);
  // 5xx share over `error_window` that ejects, once at least `min_requests` were seen.
  double max_error_rate = 0.5;
  int64_t min_requests = 20;
  absl::Duration error_window = absl::Seconds(30);
  // TTFT p95 above factor x the pool median (and above the floor) is an outlier; needs
  // at least 3 endpoints with latency data.
  double latency_outlier_factor = 3.0;
  absl::Duration latency_floor = absl::Milliseconds(500);
  absl::Duration base_ejection = absl::Seconds(30);
  absl::Duration max_ejection = absl::Seconds(300);
  absl::Duration half_open_duration = absl::Seconds(10);
  uint32_t half_open_weight = 8;  // Of 128.
  double max_ejection_share = 0.5;
};

struct CircuitInput {
  v1::EndpointState state = v1::ENDPOINT_STATE_UNSPECIFIED;
  bool reported = false;  // Any report seen since the node connected.
  // The agent's last probe error (informational: the agent applies failure thresholds
  // and reports UNHEALTHY when probes have really failed, so one slow probe does not flap).
  std::string probe_error;
  absl::Duration report_age;    // Since the node's last report.
  uint64_t requests_total = 0;  // Cumulative counters from the server (0 = none).
  uint64_t errors_total = 0;    // 5xx only.
  double ttft_p95_seconds = 0;  // 0 = no data this interval.
};

// What a breaker remembers about one endpoint between reconciles.
struct CircuitMemory {
  v1::CircuitState state = v1::CIRCUIT_STATE_CLOSED;
  int times_ejected = 0;
  absl::Time changed_at;    // Monotonic.
  absl::Duration ejection;  // Current ejection time while OPEN.
  std::string open_reason;
  struct CounterSample {
    absl::Time time;
    uint64_t requests, errors;
  };
  std::deque<CounterSample> counters;  // Over error_window.
};

struct CircuitDecision {
  v1::CircuitState circuit = v1::CIRCUIT_STATE_CLOSED;
  bool routable = false;    // May receive new requests (weight > 0).
  uint32_t weight_cap = 0;  // 0 = none; HALF_OPEN caps the weight.
  std::string reason;       // One line for people, with the numbers.
};

// Decides every endpoint of one pool. `memories` is resized to match `inputs` (same
// order, same endpoints as the previous call for the same key: the caller keys them).
std::vector<CircuitDecision> DecidePoolCircuits(const std::vector<CircuitInput>& inputs,
                                                std::vector<CircuitMemory>* memories, const CircuitConfig& config,
                                                absl::Time now);

// One endpoint on its own, without memory (what is "plainly down", STARTING, DRAINING).
CircuitDecision DecideCircuit(const CircuitInput& in, const CircuitConfig& config);

}  // namespace switchboard::controlplane::policy

#endif  // SWITCHBOARD_CONTROLPLANE_POLICY_CIRCUIT_H_
