// Every metric the control plane exports, declared in one place and built in one
// function (Envoy's ALL_*_STATS idea). Served on --metrics-listen.
#ifndef SWITCHBOARD_CONTROLPLANE_METRICS_H_
#define SWITCHBOARD_CONTROLPLANE_METRICS_H_

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "controlplane/history/history_store.h"
#include "controlplane/policy/pool_policy.h"
#include "controlplane/snapshot/snapshot_store.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace switchboard::controlplane {

struct ControlPlaneMetrics {
  prometheus::Counter* hellos_accepted;
  prometheus::Counter* reports_accepted;
  // Agent messages rejected, by the status code the stream was ended with.
  prometheus::Counter* messages_rejected_invalid;         // INVALID_ARGUMENT: malformed, second Hello, ...
  prometheus::Counter* messages_rejected_already_exists;  // ALREADY_EXISTS: node id connected on another stream
  prometheus::Counter* messages_rejected_precondition;    // FAILED_PRECONDITION: report on a superseded stream
  prometheus::Counter* messages_rejected_other;           // Any other code (none is returned today).
  prometheus::Gauge* agent_streams;
  prometheus::Gauge* subscriber_streams;
  prometheus::Counter* assignments_sent;
  prometheus::Counter* subscriber_acks;
  prometheus::Counter* subscriber_nacks;
  // switchboard_gateway_outcomes_total{result}: endpoint outcomes gateways reported on
  // Subscribe streams: added to an endpoint's evidence, skipped (endpoint not known), or
  // rejected (the request's outcomes failed validation; the stream stays up).
  prometheus::Counter* gateway_outcomes_added;
  prometheus::Counter* gateway_outcomes_unknown;
  prometheus::Counter* gateway_outcomes_rejected;
  prometheus::Counter* snapshots_published;
  prometheus::Gauge* xds_streams;           // switchboard_streams{service="ads"}
  prometheus::Gauge* keda_streams;          // {service="keda"}: StreamIsActive and StreamMetricSpec.
  prometheus::Counter* xds_responses_sent;  // switchboard_xds_responses_total
  prometheus::Counter* xds_acks;            // switchboard_xds_replies_total{type="ack"}
  prometheus::Counter* xds_nacks;           // {type="nack"}: the client kept its previous version.
  prometheus::Gauge* pools;
  prometheus::Gauge* endpoints_routable;
  prometheus::Gauge* endpoints_excluded;
  prometheus::Counter* config_reloads_ok;      // switchboard_config_reloads_total{result="ok"}
  prometheus::Counter* config_reloads_failed;  // {result="error"}: the running configuration stays.
  prometheus::Counter* token_reloads_ok;       // switchboard_admin_token_reloads_total{result="ok"}
  prometheus::Counter* token_reloads_failed;   // {result="error"}: the tokens in force stay.
  prometheus::Counter* scale_exec_ok;          // switchboard_scale_exec_runs_total{result="ok"}
  prometheus::Counter* scale_exec_failed;      // {result="failed"}: non-zero exit, signal or timeout.
  // switchboard_push_latency_seconds: a snapshot's generated_at to its write completing
  // on a native Subscribe stream (wall clock; skipped for stale, restored snapshots).
  prometheus::Histogram* push_latency;
  // switchboard_build_info{component, version} 1 is registered by Create, not kept.

  // The rejection counter for `code` (not OK).
  prometheus::Counter* Rejected(absl::StatusCode code) const;

  // Registers every family in `registry` (which must outlive the result).
  static std::unique_ptr<ControlPlaneMetrics> Create(prometheus::Registry& registry);
};

// The history store's own counts, read from it at each scrape (as Go's CounterFunc):
// the store counts, this only shows. Register it with the Exposer; `history` must
// outlive every scrape, i.e. that Exposer.
//   switchboard_history_write_errors_total  batches that failed to commit
//   switchboard_history_dropped_total{kind="sample"|"snapshot"|"scaling_state"|"endpoint_sample"}
//       dropped from the full queue (endpoint samples counted one by one)
std::shared_ptr<prometheus::Collectable> MakeHistoryMetrics(const HistoryStore* history);

// The fleet as the newest snapshots show it, read at each scrape (so refreshed details
// such as queue and KV use are current). Per pool ({pool}):
//   switchboard_pool_desired_replicas         what KEDA / the HPA / --scale-exec act on
//   switchboard_pool_current_replicas         replicas that exist (fresh, STARTING or READY)
//   switchboard_pool_ready_replicas
//   switchboard_pool_min_replicas, switchboard_pool_max_replicas  autoscaling bounds
//   switchboard_pool_demand_slots             the slots the traffic asks for
//   switchboard_pool_scaling_usage_ratio{signal}  the HPA's usage ratio per configured
//                                             signal: above 1, demand is above target
//   switchboard_pool_stale                    1 while served from history after a restart
//   switchboard_pool_advisory                 1 when nothing acts on the desired count
// Per endpoint ({pool, node, endpoint}): switchboard_endpoint_weight,
// switchboard_endpoint_circuit_state{state} (1 for the current state),
// switchboard_endpoint_slots, switchboard_endpoint_slots_busy,
// switchboard_endpoint_queue_depth, switchboard_endpoint_kv_cache_usage_ratio,
// switchboard_endpoint_ttft_p95_seconds, switchboard_endpoint_tokens_per_second.
// `store` and what `config` reads must outlive every scrape.
std::shared_ptr<prometheus::Collectable> MakeFleetMetrics(
    const SnapshotStore* store, std::function<std::shared_ptr<const policy::FleetConfig>()> config);

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_METRICS_H_
