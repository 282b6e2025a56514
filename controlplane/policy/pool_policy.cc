#include "controlplane/policy/pool_policy.h"

namespace switchboard::controlplane::policy {

const PoolPolicy& FleetConfig::For(const std::string& pool) const {
  auto it = pools.find(pool);
  return it == pools.end() ? defaults : it->second;
}

FleetConfig DefaultFleetConfig() {
  FleetConfig c;
  AutoscaleConfig a;
  a.min_replicas = 1;
  a.max_replicas = 100;
  // Slot demand at 75%, scale-down after 5 minutes at most 2 replicas a minute and only
  // past one standard deviation of the demand's noise: the best of the configurations
  // evaluated in docs/policy-evaluation.md (a queue-length target overshoots once
  // replicas take minutes to load; occupancy alone cannot see how far past 100% a burst
  // goes; without the margin a small pool flaps; the simulator's switchboard_reactive
  // policy is this configuration).
  a.metrics = {{ScalingSignal::kSlotDemand, 0.75, 1.0}};
  HpaBehavior b;
  b.scale_down.stabilization_window = absl::Seconds(300);
  b.scale_down.policies = {{HpaScalingPolicy::Type::kPods, 2, absl::Seconds(60)}};
  a.behavior = b;
  c.defaults.autoscale = a;
  return c;
}

}  // namespace switchboard::controlplane::policy
