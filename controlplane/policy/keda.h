// What the KEDA external scaler answers for a pool, so that KEDA's and the HPA's own
// arithmetic land on the pool's desired replicas (docs/operations.md, "On Kubernetes").
//
// The metric is the desired replica count itself, with an AverageValue target of 1 (KEDA
// builds the HPA's External metric with the default metricType AverageValue). The HPA
// computes ceil(metric / target) = desired, clamped to the ScaledObject's
// minReplicaCount (at least 1) and maxReplicaCount, which must be the pool's
// autoscaling min_replicas and max_replicas. KEDA itself scales 0 <-> 1 on IsActive:
// the pool is active while its desired count is above zero; an inactive pool goes to
// zero only when its configuration allows it (autoscaling.min_replicas: 0), so a pool
// whose endpoints all vanished (autoscaling off: desired = routable endpoints) is never
// left at zero with nothing to bring it back.
//
// One limit is the HPA's: it ignores a change within its tolerance (10% by default) of
// its current replicas, i.e. single steps above 10 replicas. Set the ScaledObject's
// behavior tolerance to 0 (Kubernetes 1.33+, HPAConfigurableTolerance) to follow every
// step; Switchboard already applied the HPA's tolerance and stabilization itself.
//
// Pure: no I/O, no clock.
#ifndef SWITCHBOARD_CONTROLPLANE_POLICY_KEDA_H_
#define SWITCHBOARD_CONTROLPLANE_POLICY_KEDA_H_

#include <cstdint>
#include <optional>
#include <string>

namespace switchboard::controlplane::policy {

// The name of the one metric (KEDA prefixes it with "s<trigger index>-").
inline constexpr char kKedaMetricName[] = "switchboard-desired-replicas";
// The AverageValue target: one replica per unit of the metric.
inline constexpr double kKedaTarget = 1.0;

struct KedaAnswer {
  bool active = false;      // IsActive / StreamIsActive.
  double metric_value = 0;  // GetMetrics.
  double target = kKedaTarget;
  std::string reason;  // One line: why this metric and activity.
};

// `desired`: the pool's published desired replicas (>= 0). `min_replicas`: the pool's
// autoscaling.min_replicas, nullopt when autoscaling is off (the pool then never
// scales to zero).
KedaAnswer KedaAnswerFor(int32_t desired, std::optional<int32_t> min_replicas);

}  // namespace switchboard::controlplane::policy

#endif  // SWITCHBOARD_CONTROLPLANE_POLICY_KEDA_H_
