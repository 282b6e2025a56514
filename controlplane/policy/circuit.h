// Circuit state of every endpoint of a pool: whether proxies may route to it, and why.
// Pure: explicit inputs, the memory a breaker needs (CircuitMemory) passed in and out,
// the time injected.
//
//   CLOSED -> OPEN      the agent reports UNHEALTHY (its probes failed N times) or the node
//                       went silent past the staleness bound ("plainly down"); or a failure
//                       verdict over the error window from one evidence source: the
//                       server's 5xx share, the gateways' reported 5xx share, the agent's
//                       active checks (4xx never counts); or TTFT p95 far above the pool's
//                       median (latency outlier)
//   OPEN -> HALF_OPEN   after the ejection time, which grows with each ejection, plainly
//                       down or not: min(base x times ejected, max), counted from the
//                       ejection (for a plainly-down endpoint: from when it went down)
//   HALF_OPEN           routable with a small weight (a trial); CLOSED once the trial has
//                       lasted `half_open_duration` AND shown `half_open_successes`
//                       successes (active checks, the server's counters where it counts its
//                       5xx, gateway reports) with a failure share within the limit; OPEN
//                       again, for longer, as soon as its failures exceed that share
//
// Evidence: three sources of cumulative (outcomes, failures) counters per endpoint, each
// judged on its own over `error_window` (so that a source that sees every request does
// not drown one that sees a few) and all summed for a trial. The windows are cleared when
// a trial begins: it is judged on what it shows.
//
// "Plainly down" endpoints are always excluded. The other ejections, and the wait of an
// endpoint back from being down, are capped: at most `max_ejection_share` of the pool's
// endpoints that are not plainly down are OPEN at once (at least one may always be), so a
// shared cause never empties a pool (fail open); endpoints beyond the cap go HALF_OPEN.
// Envoy's outlier detection and resilience4j are the models; see
// shared/reference/control-algorithms.md.
#ifndef SWITCHBOARD_CONTROLPLANE_POLICY_CIRCUIT_H_
#define SWITCHBOARD_CONTROLPLANE_POLICY_CIRCUIT_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "switchboard/v1/common.pb.h"

namespace switchboard::controlplane::policy {

struct CircuitConfig {
  // A node silent for longer than this is "unknown", not "idle".
  absl::Duration staleness_bound = absl::Seconds(5);
  // Failure share over `error_window` that ejects, judged per evidence source once it has
  // seen enough: `min_requests` requests (server counters, gateway reports) or
  // `min_checks` active checks.
  double max_error_rate = 0.5;
  int64_t min_requests = 20;
  int64_t min_checks = 3;
  absl::Duration error_window = absl::Seconds(30);
  // TTFT p95 above factor x the pool median (and above the floor) is an outlier; needs
  // at least 3 endpoints with latency data.
  double latency_outlier_factor = 3.0;
  absl::Duration latency_floor = absl::Milliseconds(500);
  absl::Duration base_ejection = absl::Seconds(30);
  absl::Duration max_ejection = absl::Seconds(300);
  // A trial lasts at least `half_open_duration` and needs `half_open_successes` successes.
  absl::Duration half_open_duration = absl::Seconds(10);
  int64_t half_open_successes = 3;
  uint32_t half_open_weight = 8;  // Of 128.
  double max_ejection_share = 0.5;
};

struct CircuitInput {
  v1::EndpointState state = v1::ENDPOINT_STATE_UNSPECIFIED;
  bool reported = false;  // Any report seen since the node connected.
  // The agent's last probe error (informational: the agent applies failure thresholds
  // and reports UNHEALTHY when probes have really failed, so one slow probe does not flap).
  std::string probe_error;
  absl::Duration report_age;  // Since the node's last report.
  // Evidence, as cumulative counters (0 = none; a counter that goes down means a restart).
  // The server's own: finished requests and 5xx answers.
  uint64_t requests_total = 0;
  uint64_t errors_total = 0;
  // errors_total is a real 5xx counter (TGI), so requests - errors are successes. Without
  // one, requests_total is no evidence of success (SGLang's counts failed requests too).
  bool errors_counted = false;
  // The agent's active checks (a 1-token completion): checks with a verdict, failed ones,
  // and the last failure's message (empty when the last check succeeded).
  uint64_t checks_total = 0;
  uint64_t check_failures_total = 0;
  std::string check_error;
  // Outcomes that gateways reported on the Subscribe stream, summed by the control plane.
  uint64_t gateway_requests_total = 0;
  uint64_t gateway_errors_total = 0;
  double ttft_p95_seconds = 0;  // 0 = no data this interval.
};

// Outcomes of one evidence source: how many, and how many of them failed.
struct Outcomes {
  int64_t total = 0;
  int64_t failed = 0;
};

// One evidence source over the error window, fed its cumulative counters at every
// reconcile. Outcomes are kept in a fixed ring of buckets with their running sum: the
// memory is bounded however often the reconciler runs and however long the window is,
// and a pass touches about two cache lines of it (it runs for every endpoint).
class OutcomeWindow {
 public:
  static constexpr int kBuckets = 8;
  // Feeds the counters as read at `now`: forgets the buckets that began more than
  // `window` before it, and returns the counters' growth since the previous feed
  // (nothing on the first, nor when a counter went down: a restart, a new baseline).
  Outcomes Feed(uint64_t total, uint64_t failed, absl::Time now, absl::Duration window);
  // The outcomes of the buckets within the window as of the last Feed.
  Outcomes Sum() const { return {sum_total_, sum_failed_}; }
  // Forgets the outcomes, not the baseline.
  void Clear();

 private:
  struct Bucket {
    int64_t start_ns;        // Unix nanoseconds of the monotonic clock.
    uint32_t total, failed;  // One feed adds at most kMaxGrowth.
  };
  static constexpr uint64_t kMaxGrowth = 1u << 30;  // More between two reads is garbage.
  uint64_t last_total_ = 0, last_failed_ = 0;
  int64_t sum_total_ = 0, sum_failed_ = 0;
  int64_t newest_until_ns_ = 0;  // Growth at or after it starts a new bucket.
  uint8_t oldest_ = 0, count_ = 0;
  bool has_baseline_ = false;
  std::array<Bucket, kBuckets> buckets_{};
};

// What a breaker remembers about one endpoint between reconciles (fixed size).
struct CircuitMemory {
  v1::CircuitState state = v1::CIRCUIT_STATE_CLOSED;
  int times_ejected = 0;
  absl::Time changed_at;    // Monotonic.
  absl::Duration ejection;  // Current ejection time while OPEN.
  std::string open_reason;
  bool ejected_while_down = false;  // The ejection began with the endpoint plainly down.
  OutcomeWindow server, checks, gateways;
  int64_t trial_successes = 0, trial_failures = 0;  // Since HALF_OPEN began.
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
