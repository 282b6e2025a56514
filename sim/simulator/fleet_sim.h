// A discrete-event model of an LLM fleet: servers with slots, prefill and decode speed
// and cold starts; K proxies that route with their own local view and see the control
// plane's state only every report interval plus the push delay; and the same policy
// code the control plane runs (controlplane/policy) on simulated time.
#ifndef SWITCHBOARD_SIM_SIMULATOR_FLEET_SIM_H_
#define SWITCHBOARD_SIM_SIMULATOR_FLEET_SIM_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controlplane/policy/pool_policy.h"
#include "controlplane/policy/replicas.h"
#include "sim/simulator/scenario.h"

namespace switchboard::sim {

struct SimRequest {
  double arrival_s = 0;
  int prompt_tokens = 0;
  int output_tokens = 0;
  int priority_class = 0;  // Index into Scenario::classes (0: the most important).
};

// The scenario's traffic, deterministic for a seed.
absl::StatusOr<std::vector<SimRequest>> GenerateWorkload(const Scenario& scenario, uint64_t seed);

enum class Routing {
  kRoundRobin,
  kLeastConnections,
  kStaticWeights,
  kSlotPolling,
  kSwitchboard,           // Pushed weights, Envoy-style weighted least request in the proxies.
  kSwitchboardSizeAware,  // Pushed weights and speeds, policy/picker in gateways that read requests.
  kSwitchboardPicker,     // switchboard-picker's decision (client/pick_decision), one replica per proxy.
  // The same, with the replicas sharing their requests in flight through the control plane
  // as built (client/in_flight_share.h, the scenario's share interval and delay).
  kSwitchboardPickerShared,
  kOracleJsq,        // Join-shortest-queue (most free slots) with perfect global knowledge.
  kOracleSizeBlind,  // Perfect knowledge of every server, but not of request sizes.
  kOracle,           // Perfect knowledge, request sizes included.
};
enum class Scaling {
  kNone,
  kHpaUtilization,
  kHpaQueue,
  kSwitchboardReactive,
  kSwitchboardPredictive,
  // Not a policy anyone can run: it reads the workload's future (arrivals and sizes) and
  // at every sync asks for what the next cold start and sync interval need at the
  // reactive policy's target, with no rate limits or stabilization. The bound for the
  // others.
  kOracle,
};
const char* RoutingName(Routing r);
const char* ScalingName(Scaling s);

inline constexpr double kQuickReversalS = 300;

namespace policy = ::switchboard::controlplane::policy;

// The pool policy the control plane would hold for `scaling` on this scenario: the
// scaling rule, the scenario's replica bounds and sync interval and, for predictive
// scaling, a lead time of one cold start. The Switchboard policies are the built-in
// defaults (DefaultFleetConfig); the oracle scaler holds the reactive policy, whose
// target it aims at (it does not run DecidePoolReplicas).
policy::PoolPolicy PoolPolicyFor(const Scenario& scenario, Scaling scaling);

enum class SimServerState { kLoading, kReady, kDraining, kGone };

// A simulated server as its agent reports it to the autoscaler: loading = STARTING,
// ready = READY, draining (and gone) = DRAINING; `completed` is its finished-request
// counter. FleetSim passes these to policy::DecidePoolReplicas at every sync, as the
// reconciler passes the live fleet's endpoints.
policy::ScalingEndpoint ScalingEndpointOf(int index, SimServerState state, int slots, int busy, int queue,
                                          uint64_t completed);

// One simulated minute (by request arrival time), for timelines.
struct MinuteResult {
  int minute = 0;
  int requests = 0;        // Arrived in this minute (and measured: after warmup).
  double ttft_p95_s = 0;   // Of those requests.
  int replicas = 0;        // Servers loading or ready at the minute's last autoscaling sync.
  int ready_replicas = 0;  // Of which ready.
};

struct PolicyResult {
  std::string policy;
  double ttft_p50_s = 0, ttft_p95_s = 0, ttft_p99_s = 0, e2e_p99_s = 0;
  double throughput_rps = 0;
  double slo_violation_minutes = 0;  // Minutes whose p95 TTFT exceeded the SLO.
  double gpu_hours = 0;
  int scaling_changes = 0;    // Syncs after the warmup that changed the desired replica count.
  int scaling_reversals = 0;  // Changes in the other direction than the one before: oscillations.
  // Reversals within kQuickReversalS of the change they undo: a replica removed and asked
  // for again within the five minutes an HPA waits before it scales down (the diurnal
  // turns, minutes apart here, are reversals but seldom quick ones).
  int quick_reversals = 0;
  int64_t completed = 0;
  std::vector<MinuteResult> minutes;  // Measured minutes, in order.
};

PolicyResult Simulate(const Scenario& scenario, const std::vector<SimRequest>& workload, Routing routing,
                      Scaling scaling, uint64_t seed);

// The mixed-priority comparison, all with switchboard-picker's routing (one replica per
// proxy) and its pool bound (Scenario::shed_occupancy) on a fixed fleet:
enum class ClassMode {
  kNone,            // No classes: every request alike, shed at the pool bound.
  kClasses,         // Priority classes (controlplane/policy/admission.h), then the bound.
  kStrictPriority,  // No shedding; every server's queue serves the more important class first.
};
const char* ClassModeName(ClassMode m);

// What one class saw, over the measured requests (arrived after the warmup).
struct ClassResult {
  std::string name;
  int64_t offered = 0;
  int64_t refused = 0;                    // Answered 429 (by its class's admission or the pool bound).
  double ttft_p50_s = 0, ttft_p99_s = 0;  // Of the served ones.
};

struct ClassModeResult {
  std::string mode;
  std::vector<ClassResult> classes;  // As Scenario::classes.
};

ClassModeResult SimulateClasses(const Scenario& scenario, const std::vector<SimRequest>& workload, ClassMode mode,
                                uint64_t seed);

}  // namespace switchboard::sim

#endif  // SWITCHBOARD_SIM_SIMULATOR_FLEET_SIM_H_
