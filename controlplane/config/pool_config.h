// Pool configuration (--config FILE, YAML): per pool the LB policy, circuit and weight
// settings and autoscaling (with `behavior` written exactly as in an HPA). Pools not
// listed use `defaults`; with no file, built-in defaults apply. Errors name the file,
// line and field.
//
//   defaults:
//     lb_policy: weighted              # weighted | round_robin | least_request | slot_based
//     staleness_bound: 5s
//     autoscaling:
//       min_replicas: 1
//       max_replicas: 20
//       metrics:
//         - {type: queue_per_replica, target: 5}
//   pools:
//     llama-3-8b:
//       autoscaling:
//         behavior:
//           scaleDown:
//             stabilizationWindowSeconds: 600
//             policies: [{type: Pods, value: 1, periodSeconds: 60}]
#ifndef SWITCHBOARD_CONTROLPLANE_CONFIG_POOL_CONFIG_H_
#define SWITCHBOARD_CONTROLPLANE_CONFIG_POOL_CONFIG_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "controlplane/policy/autoscale.h"
#include "controlplane/snapshot/snapshot.h"

namespace switchboard::controlplane {

// Predictive scaling: forecast demand (slots busy + queued) `lead_time` ahead from the
// seasonal profile and add it as a replica proposal, so that replicas which take minutes
// to load are ready for a known peak.
struct PredictiveConfig {
  absl::Duration lead_time = absl::Minutes(3);
  double target_occupancy = 0.8;  // Of each replica's slots at the forecast peak.
};

struct PoolPolicy {
  PolicyConfig policy;                                       // LB policy, circuits, weights.
  std::optional<policy::AutoscaleConfig> autoscale;          // nullopt: autoscaling off.
  absl::Duration autoscale_sync_period = absl::Seconds(15);  // The HPA's sync period.
  std::optional<PredictiveConfig> predictive;                // nullopt: reactive only.
};

struct FleetConfig {
  std::string source = "built-in defaults";  // File name, for logs and errors.
  PoolPolicy defaults;
  std::map<std::string, PoolPolicy> pools;
  const PoolPolicy& For(const std::string& pool) const;
};

// Built-in defaults: weighted, staleness 5 s, autoscaling on slot demand at 75% with a
// scale-down margin of one standard deviation, Kubernetes' scale-up, scale-down after
// 300 s by at most 2 replicas a minute, 1..100 replicas (docs/configuration.md).
FleetConfig DefaultFleetConfig();

// Parses YAML text; `name` appears in errors ("pools.yaml:12: ...").
absl::StatusOr<FleetConfig> ParseFleetConfig(const std::string& yaml, const std::string& name);
absl::StatusOr<FleetConfig> LoadFleetConfig(const std::string& path);

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_CONFIG_POOL_CONFIG_H_
