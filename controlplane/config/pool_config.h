// Pool configuration (--config FILE, YAML): per pool the LB policy, circuit and weight
// settings and autoscaling (with `behavior` written exactly as in an HPA). Pools not
// listed use `defaults`; with no file, built-in defaults apply. Errors name the file,
// line and field.
//
//   defaults:
//     lb_policy: weighted              # weighted | round_robin | least_request | slot_based
//     staleness_bound: 5s
//     circuit: {base_ejection: 30s, half_open_successes: 3}
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
#include "controlplane/policy/pool_policy.h"

namespace switchboard::controlplane {

// Parses YAML text; `name` appears in errors ("pools.yaml:12: ...").
absl::StatusOr<policy::FleetConfig> ParseFleetConfig(const std::string& yaml, const std::string& name);
absl::StatusOr<policy::FleetConfig> LoadFleetConfig(const std::string& path);

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_CONFIG_POOL_CONFIG_H_
