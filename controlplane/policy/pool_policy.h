// What a pool's policy is configured to do: LB rule, circuits, weights, autoscaling and
// prediction. Plain data with the built-in defaults; the YAML parser (controlplane/config)
// fills it from a file, the simulator from a scenario. Both then run the same policy.
#ifndef SWITCHBOARD_CONTROLPLANE_POLICY_POOL_POLICY_H_
#define SWITCHBOARD_CONTROLPLANE_POLICY_POOL_POLICY_H_

#include <map>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "controlplane/policy/admission.h"
#include "controlplane/policy/admission_queue.h"
#include "controlplane/policy/autoscale.h"
#include "controlplane/policy/circuit.h"
#include "controlplane/policy/weights.h"
#include "switchboard/v1/common.pb.h"

namespace switchboard::controlplane::policy {

// How endpoints are weighted and excluded.
struct PolicyConfig {
  CircuitConfig circuit;
  WeightConfig weights;
  v1::LbPolicy lb_policy = v1::LB_POLICY_WEIGHTED;  // Told to subscribers; matches weights.rule.
  AdmissionConfig admission;                        // Priority classes; none by default.
  QueueConfig queues;                               // The classes' queues; none by default.
};

// Predictive scaling: forecast demand (the slots the traffic asks for) `lead_time` ahead
// from the seasonal profile and add it as a replica proposal, so that replicas which take
// minutes to load are ready for a known peak.
struct PredictiveConfig {
  absl::Duration lead_time = absl::Minutes(3);
  double target_occupancy = 0.8;  // Of each replica's slots at the forecast peak.
};

// What Envoy enforces on the pool's Cluster by itself, between pushes (Envoy clients
// only; proxyless gRPC 1.51 gets none of it).
struct EnvoyClusterConfig {
  // Circuit-breaker thresholds (Envoy's CircuitBreakers, default priority): requests
  // beyond them fail fast with 503. The defaults are Envoy's own.
  uint32_t max_connections = 1024;
  uint32_t max_pending_requests = 1024;
  uint32_t max_requests = 1024;
  uint32_t max_retries = 3;
  // Envoy's override_host load-balancing policy: a request goes to the endpoint an
  // endpoint picker named (x-gateway-destination-endpoint header or envoy.lb metadata),
  // else by the pool's weights.
  bool override_host = false;
};

struct PoolPolicy {
  PolicyConfig policy;                                       // LB policy, circuits, weights.
  EnvoyClusterConfig envoy;                                  // Envoy's own protection, picker.
  std::optional<AutoscaleConfig> autoscale;                  // nullopt: autoscaling off.
  absl::Duration autoscale_sync_period = absl::Seconds(15);  // The HPA's sync period.
  std::optional<PredictiveConfig> predictive;                // nullopt: reactive only.
  // Advisory: desired replicas are computed, published and explained, but nothing acts
  // on them (the KEDA scaler refuses to answer, --scale-exec does not run).
  bool advisory = false;
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

}  // namespace switchboard::controlplane::policy

#endif  // SWITCHBOARD_CONTROLPLANE_POLICY_POOL_POLICY_H_
