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
//       view_age: 2s                   # the weighted rule's view age (WeightConfig::view_age)
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

namespace YAML {
class Node;
}  // namespace YAML

namespace switchboard::controlplane {

// Parses YAML text; `name` appears in errors ("pools.yaml:12: ...").
absl::StatusOr<policy::FleetConfig> ParseFleetConfig(const std::string& yaml, const std::string& name);
absl::StatusOr<policy::FleetConfig> LoadFleetConfig(const std::string& path);

// Reads the weights' keys of one pool's mapping (`view_age`) into `out`, exactly as a pool
// under `defaults` or `pools` is read, and ignores the other keys; switchboard-sim reads a
// scenario's `pool` block with it, so that the simulator and the control plane weigh
// endpoints with the same settings. `file` and `field` name the place in errors.
absl::Status ParseWeightKeys(const YAML::Node& pool, const std::string& file, const std::string& field,
                             policy::WeightConfig* out);

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_CONFIG_POOL_CONFIG_H_
