// Replica recommendations per pool with Kubernetes HPA semantics (autoscaling/v2,
// pkg/controller/podautoscaler): per-metric proposals with tolerance, the largest
// proposal across metrics, then either the `behavior` rules (stabilization windows,
// Pods/Percent policies over periods, selectPolicy) or, without behavior, the legacy
// 5-minute downscale stabilization and max(2 x current, 4) scale-up cap; finally
// [min, max]. A manual override (SetReplicas) wins while it lasts. One addition, off
// unless a metric asks for it: MetricTarget::scale_down_margin (hysteresis sized to the
// metric's noise).
//
// Pure: explicit inputs, the history the HPA keeps (recommendations and scale events)
// passed in and out as AutoscaleState, the time injected.
#ifndef SWITCHBOARD_CONTROLPLANE_POLICY_AUTOSCALE_H_
#define SWITCHBOARD_CONTROLPLANE_POLICY_AUTOSCALE_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace switchboard::controlplane::policy {

// One HPA scaling policy: at most `value` pods (or percent) per `period`.
struct HpaScalingPolicy {
  enum class Type { kPods, kPercent };
  Type type = Type::kPods;
  int32_t value = 0;
  absl::Duration period = absl::Seconds(15);
};

// HPAScalingRules.
struct HpaScalingRules {
  enum class Select { kMax, kMin, kDisabled };
  absl::Duration stabilization_window;
  Select select = Select::kMax;
  std::vector<HpaScalingPolicy> policies;
  // This direction's tolerance (Kubernetes 1.33+, HPAConfigurableTolerance): a metric
  // ratio r keeps the current count while 1 - scaleDown.tolerance <= r <= 1 +
  // scaleUp.tolerance. Unset: AutoscaleConfig::tolerance (the cluster-wide 0.1).
  std::optional<double> tolerance;
};

// HorizontalPodAutoscalerBehavior, with Kubernetes' defaults for any part left unset:
// scaleUp window 0 s, policies {Pods 4 / 15 s, Percent 100 / 15 s}, Max;
// scaleDown window 300 s, policy {Percent 100 / 15 s}, Max.
struct HpaBehavior {
  HpaScalingRules scale_up = DefaultScaleUp();
  HpaScalingRules scale_down = DefaultScaleDown();
  static HpaScalingRules DefaultScaleUp();
  static HpaScalingRules DefaultScaleDown();
};

// The signals a pool can scale on.
enum class ScalingSignal {
  kQueuePerReplica,    // AverageValue over the pool's total queued requests.
  kSlotOccupancy,      // Utilization: busy slots / total slots averaged over ready replicas (0..1).
  kSlotDemand,         // Utilization: OfferedSlots() / total slots over ready replicas (0..2).
  kRequestsPerSecond,  // AverageValue over the pool's total request rate.
  kPredicted,          // A replica count from the forecaster (predictive scaling).
};
const char* ScalingSignalName(ScalingSignal s);

// The slots a pool's traffic asks for, which busy slots alone cannot show once every slot
// is busy: by Little's law busy slots = completions x time in a slot, so the arrivals ask
// for busy x arrivals / completions, where arrivals = completions + the growth of the
// requests in flight (busy + queued) over the same interval. Between 0 and twice the
// slots; just `busy` when nothing completed in the interval (no rate to scale by), and
// never below `busy` while requests wait (`queue` > 0): a backlog draining because fewer
// arrive than finish still needs every busy slot.
// Occupancy caps at 100% and lets an HPA add at most 1/target of the ready replicas per
// cold start; a burst of 2x needs two or three cold starts that way, one with this.
double OfferedSlots(double busy, double queue, double in_flight_growth, double completions, double slots);

struct MetricTarget {
  ScalingSignal signal = ScalingSignal::kQueuePerReplica;
  double target = 0;  // Per replica (AverageValue) or a 0..1 ratio (occupancy). > 0.
  // Hysteresis sized to the metric's own noise (a Switchboard addition; 0 is the HPA):
  // a scale-down is proposed only if the value plus this many standard deviations of its
  // sampling noise (MetricObservation::stddev) still asks for fewer replicas. The HPA's
  // 10% tolerance is the only gap between scaling down and scaling back up; in a pool of
  // a few replicas one replica is 20-50% of the capacity and a count of busy slots moves
  // by its square root from one sample to the next, so the next noisy sample undoes the
  // scale-down.
  double scale_down_margin = 0;
};

struct AutoscaleConfig {
  int32_t min_replicas = 1;
  int32_t max_replicas = 10;
  double tolerance = 0.1;  // Both directions, unless behavior sets its own.
  std::vector<MetricTarget> metrics;
  std::optional<HpaBehavior> behavior;  // nullopt: the legacy HPA algorithm.
};

struct MetricObservation {
  ScalingSignal signal = ScalingSignal::kQueuePerReplica;
  // kQueuePerReplica, kRequestsPerSecond: the pool's total. kSlotOccupancy: the average
  // over ready replicas. kPredicted: the replica count itself.
  double value = 0;
  bool valid = true;  // False when the metric could not be read this time.
  // One standard deviation of the value's sampling noise, in the value's units; 0 when
  // unknown. A count of busy slots is Poisson-like: sqrt(count).
  double stddev = 0;
};

struct ManualOverride {
  int32_t replicas = 0;
  absl::Time expires;
  std::string reason;
};

struct AutoscaleInput {
  int32_t current_replicas = 0;
  int32_t ready_replicas = 0;
  std::vector<MetricObservation> metrics;
  std::optional<ManualOverride> manual;  // Its expiry on the monotonic clock, as `now`.
  absl::Time now;                        // Monotonic: windows, periods, the override's expiry.
  absl::Time wall;                       // Calendar time of `now`: for dates shown to people.
  // A warm-up hold (DecidePoolReplicas sets it after a start): the decision does not go
  // below this count (nor above max_replicas), and `hold_reason` says why. 0: no hold. A
  // manual override wins over it.
  int32_t hold_floor = 0;
  std::string hold_reason;
};

// What the HPA remembers between syncs.
struct AutoscaleState {
  struct Recommendation {
    absl::Time time;
    int32_t replicas;
  };
  struct ScaleEvent {
    absl::Time time;
    int32_t change;  // Always > 0; direction given by the list it is in.
  };
  std::deque<Recommendation> recommendations;
  std::deque<ScaleEvent> scale_up_events;
  std::deque<ScaleEvent> scale_down_events;
  // The last recommendation. A scale event is a change of recommendation (what the HPA
  // would have written to the scale target), not a difference from the replicas that
  // exist: those lag by minutes while new replicas load, and counting that gap again at
  // every sync would exhaust the rate limits.
  std::optional<int32_t> last_desired;
};

struct MetricProposal {
  ScalingSignal signal;
  double value = 0;
  double target = 0;
  double ratio = 0;
  int32_t replicas = 0;
  bool within_tolerance = false;
  bool valid = true;
  // Set when the scale-down margin changed the proposal: the value plus the margin, and
  // the replicas the value alone would have proposed.
  double upper_value = 0;
  int32_t replicas_without_margin = 0;
  bool held_by_margin = false;
};

struct AutoscaleDecision {
  int32_t desired_replicas = 0;
  int32_t proposal = 0;    // Largest metric proposal, before stabilization and limits.
  int32_t stabilized = 0;  // After the stabilization window.
  std::vector<MetricProposal> proposals;
  std::string reason;  // One line, with the arithmetic.
};

// "0.10", or "-0.30/+0.00" when behavior gives the directions their own tolerances.
std::string DescribeTolerance(const AutoscaleConfig& config);

// The scale-down stabilization window: behavior's, else the legacy 5 minutes. The
// warm-up after a start lasts this long.
absl::Duration ScaleDownWindow(const AutoscaleConfig& config);

// One sync. Records this sync's recommendation and scale event in `state`.
AutoscaleDecision Autoscale(const AutoscaleConfig& config, const AutoscaleInput& input, AutoscaleState* state);

}  // namespace switchboard::controlplane::policy

#endif  // SWITCHBOARD_CONTROLPLANE_POLICY_AUTOSCALE_H_
