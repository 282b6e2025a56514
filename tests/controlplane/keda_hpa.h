// What KEDA's operator and the Kubernetes HPA controller do with an external scaler's
// answers, written from their sources (KEDA pkg/scalers/external_scaler.go and
// scale_executor; Kubernetes pkg/controller/podautoscaler/replica_calculator.go
// GetExternalPerPodMetricReplicas), for tests that check Switchboard's answers land
// on the replica count it wants. Not shipped: Kubernetes does this arithmetic itself.
#ifndef SWITCHBOARD_TESTS_CONTROLPLANE_KEDA_HPA_H_
#define SWITCHBOARD_TESTS_CONTROLPLANE_KEDA_HPA_H_

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace switchboard::testing {

// A ScaledObject's bounds and its HPA's tolerance.
struct ScaledObjectBounds {
  int32_t min_replica_count = 0;  // ScaledObject minReplicaCount (0: KEDA may scale to zero).
  int32_t max_replica_count = 100;
  double tolerance = 0.1;  // The HPA's (Kubernetes' default 10%).
};

// The Deployment's replicas after one KEDA check and one HPA sync, from `current`.
// `active` is IsActive's answer; `metric` GetMetrics' metricValueFloat; `target` the
// spec's targetSizeFloat (an AverageValue target). KEDA hands both to the HPA as milli
// quantities.
inline int32_t KedaHpaReplicas(int32_t current, bool active, double metric, double target,
                               const ScaledObjectBounds& b) {
  const int32_t hpa_min = std::max(b.min_replica_count, 1);
  // KEDA: inactive with minReplicaCount 0 scales to zero (after cooldownPeriod); active
  // at zero scales to the HPA's minimum, and the HPA takes over from there.
  if (!active && b.min_replica_count == 0) return 0;
  if (current == 0) {
    if (!active) return 0;
    current = hpa_min;
  }
  const int64_t usage_milli = static_cast<int64_t>(metric * 1000);
  const int64_t target_milli = static_cast<int64_t>(target * 1000);
  int32_t replicas = current;
  const double usage_ratio =
      static_cast<double>(usage_milli) / (static_cast<double>(target_milli) * static_cast<double>(current));
  if (std::abs(1.0 - usage_ratio) > b.tolerance) {
    replicas = static_cast<int32_t>(std::ceil(static_cast<double>(usage_milli) / static_cast<double>(target_milli)));
  }
  return std::clamp(replicas, hpa_min, b.max_replica_count);
}

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_TESTS_CONTROLPLANE_KEDA_HPA_H_
