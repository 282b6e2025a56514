// A pool's desired replica count, from its endpoints: the one function the reconciler
// runs on live state and the simulator on simulated servers, so that the simulator's
// figures describe the shipped decision.
//
//   endpoints --ComputePoolSignals--> current / ready replicas, queue, slot occupancy,
//                                     slot demand, requests/s, and their noise
//             --forecast (predictive)--> a replica count `lead_time` ahead
//             --Autoscale (HPA semantics)--> desired replicas, with the reason
//
// Which endpoints count: reported within the staleness bound, and STARTING or READY. A
// DRAINING endpoint is leaving (scaled down, or drained by an operator) and an UNHEALTHY
// one serves nothing: neither is a current replica, so capacity that is going away is
// replaced. Occupancy, demand and the slots behind them are those of READY endpoints.
//
// Warm-up hold: a pool's first decisions after a start (the control plane's, or the
// pool's first appearance) rest on little evidence: the HPA's scale-down window holds
// only what was seen since. Until the first sync is one scale-down stabilization window
// old (ScaleDownWindow: 300 s by default), the decision does not go below the replicas
// that exist now, nor below the count published before a restart
// (PoolScalingMemory::desired_before_restart), so a restart never makes KEDA or an HPA
// scale a busy pool down.
//
// Pure: explicit inputs, the memory between syncs (PoolScalingMemory) passed in and out,
// both clocks injected (monotonic for the HPA's windows, wall for the forecast's calendar).
#ifndef SWITCHBOARD_CONTROLPLANE_POLICY_REPLICAS_H_
#define SWITCHBOARD_CONTROLPLANE_POLICY_REPLICAS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "controlplane/policy/autoscale.h"
#include "controlplane/policy/forecast.h"
#include "controlplane/policy/pool_policy.h"
#include "switchboard/v1/common.pb.h"

namespace switchboard::controlplane::policy {

// One endpoint of the pool as the autoscaler sees it.
struct ScalingEndpoint {
  std::string key;  // Identifies the endpoint from one sync to the next ("node/address").
  v1::EndpointState state = v1::ENDPOINT_STATE_UNSPECIFIED;
  bool reported = false;      // Any report seen.
  absl::Duration report_age;  // Since the last report.
  uint32_t slots_total = 0;
  uint32_t slots_busy = 0;
  uint32_t queue_depth = 0;
  uint64_t requests_total = 0;  // The server's finished-request counter; 0 = it has none.
};

// What the signals remember between syncs: each endpoint's counter and requests in
// flight (for slot demand), and the pool's summed counter (for requests/s).
struct SignalMemory {
  struct Flow {
    uint64_t requests_total = 0;
    double in_flight = 0;
  };
  std::map<std::string, Flow> last_flow;  // By ScalingEndpoint::key.
  double last_requests = -1;              // -1: no sync yet.
  absl::Time last_requests_at;
};

// The pool's autoscaling signals at one sync.
struct PoolSignals {
  int32_t current = 0;  // Replicas that exist (fresh, STARTING or READY).
  int32_t ready = 0;    // Of which READY.
  double queue = 0;     // Requests queued on every current replica.
  double busy = 0;      // Busy slots of ready replicas.
  double slots = 0;     // Slots of ready replicas.
  // Slot demand's inputs: over the endpoints seen at both syncs whose servers count
  // finished requests, requests finished and the growth of those in flight.
  double completions = 0;
  double in_flight_growth = 0;
  double offered = 0;  // OfferedSlots(): the slots the traffic asks for.
  bool rps_valid = false;
  double rps = 0;
  double rps_stddev = 0;

  double occupancy() const { return slots > 0 ? busy / slots : 0; }
  double demand_ratio() const { return slots > 0 ? offered / slots : 0; }
  // What the forecaster learns: the offered slots, or the queue when no replica is ready.
  double demand() const { return slots > 0 ? offered : queue; }
  // The observations for Autoscale (every signal; the config picks which it scales on).
  std::vector<MetricObservation> Observations() const;
};

// The replicas the warm-up hold keeps: the current ones (PoolSignals::current) and those
// declared within the staleness bound that have not reported yet (an agent that just
// connected: its server exists, its first report is on its way).
int32_t CountHeldReplicas(const std::vector<ScalingEndpoint>& endpoints, absl::Duration staleness_bound);

// Turns one sync's endpoints into signals, updating `memory`. `staleness_bound`: an
// endpoint whose last report is older is not counted.
PoolSignals ComputePoolSignals(const std::vector<ScalingEndpoint>& endpoints, absl::Duration staleness_bound,
                               SignalMemory* memory, absl::Time now);

// Everything a pool's replica decision remembers between syncs.
struct PoolScalingMemory {
  explicit PoolScalingMemory(SeasonalForecast season = SeasonalForecast()) : forecast(std::move(season)) {}
  AutoscaleState hpa;
  SignalMemory signals;
  SeasonalForecast forecast;  // The caller chooses its season (hour of week by default).
  // The warm-up hold: when the first sync since the start ran (monotonic; set by the
  // first DecidePoolReplicas), and the desired count published before a restart (0: none,
  // a first start).
  std::optional<absl::Time> first_sync;
  int32_t desired_before_restart = 0;
};

// Whether the pool is still in its warm-up after a start (see above) at `now`: the
// reconciler decides again at once when more replicas appear meanwhile.
bool WarmingUp(const PoolScalingMemory& memory, const PoolPolicy& policy, absl::Time now);

struct ReplicaInput {
  std::vector<ScalingEndpoint> endpoints;
  std::optional<ManualOverride> manual;
  absl::Time now;   // Monotonic: the HPA's windows and rates.
  absl::Time wall;  // Calendar: the forecast's profile.
};

struct ReplicaDecision {
  int32_t desired = 0;
  std::string reason;       // Autoscale's one line (for events: "3 -> 4: <reason>").
  std::string explanation;  // The whole arithmetic, for explain.
  PoolSignals signals;      // What was seen (the demand goes to history).
};

// One autoscaling sync of a pool. `policy.autoscale` must be set. Observes the demand
// into the forecast, proposes from it when `policy.predictive` is set, and runs the HPA.
ReplicaDecision DecidePoolReplicas(const ReplicaInput& input, const PoolPolicy& policy, PoolScalingMemory* memory);

}  // namespace switchboard::controlplane::policy

#endif  // SWITCHBOARD_CONTROLPLANE_POLICY_REPLICAS_H_
