#include "controlplane/metrics.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "prometheus/metric_family.h"

namespace switchboard::controlplane {
namespace {

prometheus::MetricFamily CounterFamily(std::string name, std::string help, double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Counter;
  family.metric.emplace_back();
  family.metric.back().counter.value = value;
  return family;
}

class HistoryMetrics final : public prometheus::Collectable {
 public:
  explicit HistoryMetrics(const HistoryStore* history) : history_(history) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    out.push_back(CounterFamily("switchboard_history_write_errors_total",
                                "History write batches that failed to commit; their writes are lost (see the log)",
                                static_cast<double>(history_->write_errors())));
    prometheus::MetricFamily depth;
    depth.name = "switchboard_history_queue_depth";
    depth.help = "History writes waiting for the writer thread";
    depth.type = prometheus::MetricType::Gauge;
    depth.metric.emplace_back().gauge.value = static_cast<double>(history_->queue_depth());
    out.push_back(std::move(depth));
    prometheus::MetricFamily dropped;
    dropped.name = "switchboard_history_dropped_total";
    dropped.help =
        "Pool and endpoint samples, snapshots and scaling states dropped from the full history queue (the disk did not "
        "keep up)";
    dropped.type = prometheus::MetricType::Counter;
    for (const auto& [kind, count] :
         {std::pair<const char*, uint64_t>{"sample", history_->dropped_samples()},
          std::pair<const char*, uint64_t>{"snapshot", history_->dropped_snapshots()},
          std::pair<const char*, uint64_t>{"scaling_state", history_->dropped_scaling_states()},
          std::pair<const char*, uint64_t>{"endpoint_sample", history_->dropped_endpoint_samples()}}) {
      prometheus::ClientMetric& m = dropped.metric.emplace_back();
      m.label.push_back({"kind", kind});
      m.counter.value = static_cast<double>(count);
    }
    out.push_back(std::move(dropped));
    return out;
  }

 private:
  const HistoryStore* const history_;
};

prometheus::MetricFamily GaugeFamily(std::string name, std::string help) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  return family;
}

void AddGauge(prometheus::MetricFamily* family, std::vector<prometheus::ClientMetric::Label> labels, double value) {
  prometheus::ClientMetric& m = family->metric.emplace_back();
  m.label = std::move(labels);
  m.gauge.value = value;
}

const char* CircuitName(v1::CircuitState s) {
  switch (s) {
    case v1::CIRCUIT_STATE_CLOSED:
      return "closed";
    case v1::CIRCUIT_STATE_OPEN:
      return "open";
    case v1::CIRCUIT_STATE_HALF_OPEN:
      return "half_open";
    default:
      return "unspecified";
  }
}

class FleetMetrics final : public prometheus::Collectable {
 public:
  FleetMetrics(const SnapshotStore* store, std::function<std::shared_ptr<const policy::FleetConfig>()> config)
      : store_(store), config_(std::move(config)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    auto desired = GaugeFamily("switchboard_pool_desired_replicas",
                               "Desired replicas per pool: what KEDA, the HPA and --scale-exec act on");
    auto current = GaugeFamily("switchboard_pool_current_replicas",
                               "Replicas that exist per pool (fresh reports, STARTING or READY)");
    auto ready = GaugeFamily("switchboard_pool_ready_replicas", "READY replicas per pool");
    auto min = GaugeFamily("switchboard_pool_min_replicas", "The pool's autoscaling.min_replicas");
    auto max = GaugeFamily("switchboard_pool_max_replicas", "The pool's autoscaling.max_replicas");
    auto demand = GaugeFamily("switchboard_pool_demand_slots", "Slots the pool's traffic asks for (slot demand)");
    auto usage = GaugeFamily("switchboard_pool_scaling_usage_ratio",
                             "The HPA usage ratio of each configured scaling signal (above 1: demand above target)");
    auto stale = GaugeFamily("switchboard_pool_stale", "1 while the pool is served from history after a restart");
    auto advisory = GaugeFamily("switchboard_pool_advisory", "1 when the pool is advisory: nothing acts on it");
    auto weight = GaugeFamily("switchboard_endpoint_weight", "Endpoint weight pushed to subscribers (0: excluded)");
    auto circuit = GaugeFamily("switchboard_endpoint_circuit_state", "1 for the endpoint's circuit state");
    auto slots = GaugeFamily("switchboard_endpoint_slots", "Endpoint slots (concurrent requests it serves)");
    auto busy = GaugeFamily("switchboard_endpoint_slots_busy", "Endpoint slots busy");
    auto queue = GaugeFamily("switchboard_endpoint_queue_depth", "Requests queued at the endpoint");
    auto kv = GaugeFamily("switchboard_endpoint_kv_cache_usage_ratio", "Endpoint KV-cache use (0..1)");
    auto ttft = GaugeFamily("switchboard_endpoint_ttft_p95_seconds", "Endpoint p95 time to first token");
    auto tps = GaugeFamily("switchboard_endpoint_tokens_per_second", "Endpoint generated tokens per second");
    const std::shared_ptr<const policy::FleetConfig> config = config_();
    for (const std::shared_ptr<const Snapshot>& snap : store_->All()) {
      const std::string& pool = snap->pool;
      const policy::PoolPolicy& pp = config->For(pool);
      AddGauge(&desired, {{"pool", pool}}, snap->assignment.desired_replicas());
      double n_current = 0, n_ready = 0;
      for (const v1::AssignedEndpoint& ep : snap->assignment.endpoints()) {
        if (ep.state() == v1::ENDPOINT_STATE_READY) ++n_ready;
        if (ep.state() == v1::ENDPOINT_STATE_READY || ep.state() == v1::ENDPOINT_STATE_STARTING) ++n_current;
      }
      if (snap->scaling_signals) {
        n_current = snap->scaling_signals->current;
        n_ready = snap->scaling_signals->ready;
        AddGauge(&demand, {{"pool", pool}}, snap->scaling_signals->offered);
      }
      AddGauge(&current, {{"pool", pool}}, n_current);
      AddGauge(&ready, {{"pool", pool}}, n_ready);
      AddGauge(&stale, {{"pool", pool}}, snap->assignment.stale() ? 1 : 0);
      AddGauge(&advisory, {{"pool", pool}}, pp.advisory ? 1 : 0);
      if (pp.autoscale) {
        AddGauge(&min, {{"pool", pool}}, pp.autoscale->min_replicas);
        AddGauge(&max, {{"pool", pool}}, pp.autoscale->max_replicas);
        if (snap->scaling_signals) {
          const double replicas = std::max(1.0, n_current);
          for (const policy::MetricObservation& o : snap->scaling_signals->Observations()) {
            for (const policy::MetricTarget& t : pp.autoscale->metrics) {
              if (t.signal != o.signal || !o.valid || t.target <= 0) continue;
              // AverageValue signals are pool totals; utilizations are already per replica.
              const bool per_replica = o.signal == policy::ScalingSignal::kQueuePerReplica ||
                                       o.signal == policy::ScalingSignal::kRequestsPerSecond;
              AddGauge(&usage, {{"pool", pool}, {"signal", policy::ScalingSignalName(o.signal)}},
                       per_replica ? o.value / (t.target * replicas) : o.value / t.target);
            }
          }
        }
      }
      for (size_t i = 0; i < snap->size(); ++i) {
        const v1::AssignedEndpoint& ep = snap->assignment.endpoints(static_cast<int>(i));
        const EndpointFacts& f = snap->facts[i];
        const std::vector<prometheus::ClientMetric::Label> l = {
            {"pool", pool}, {"node", ep.node_id()}, {"endpoint", ep.address()}};
        AddGauge(&weight, l, ep.weight());
        for (v1::CircuitState s : {v1::CIRCUIT_STATE_CLOSED, v1::CIRCUIT_STATE_OPEN, v1::CIRCUIT_STATE_HALF_OPEN}) {
          auto with_state = l;
          with_state.push_back({"state", CircuitName(s)});
          AddGauge(&circuit, with_state, ep.circuit() == s ? 1 : 0);
        }
        AddGauge(&slots, l, ep.slots_total());
        AddGauge(&busy, l, f.weight_input.slots_busy);
        AddGauge(&queue, l, f.weight_input.queue_depth);
        AddGauge(&kv, l, f.kv_cache_usage);
        AddGauge(&ttft, l, f.ttft_p95_seconds);
        AddGauge(&tps, l, f.tokens_per_second);
      }
    }
    std::vector<prometheus::MetricFamily> out;
    for (auto* f : {&desired, &current, &ready, &min, &max, &demand, &usage, &stale, &advisory, &weight, &circuit,
                    &slots, &busy, &queue, &kv, &ttft, &tps}) {
      if (!f->metric.empty()) out.push_back(std::move(*f));
    }
    return out;
  }

 private:
  const SnapshotStore* const store_;
  const std::function<std::shared_ptr<const policy::FleetConfig>()> config_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> MakeFleetMetrics(
    const SnapshotStore* store, std::function<std::shared_ptr<const policy::FleetConfig>()> config) {
  return std::make_shared<FleetMetrics>(store, std::move(config));
}

std::shared_ptr<prometheus::Collectable> MakeHistoryMetrics(const HistoryStore* history) {
  return std::make_shared<HistoryMetrics>(history);
}

prometheus::Counter* ControlPlaneMetrics::Rejected(absl::StatusCode code) const {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
      return messages_rejected_invalid;
    case absl::StatusCode::kAlreadyExists:
      return messages_rejected_already_exists;
    case absl::StatusCode::kFailedPrecondition:
      return messages_rejected_precondition;
    default:
      return messages_rejected_other;
  }
}

std::unique_ptr<ControlPlaneMetrics> ControlPlaneMetrics::Create(prometheus::Registry& registry) {
  auto m = std::make_unique<ControlPlaneMetrics>();
  auto& agent_messages = prometheus::BuildCounter()
                             .Name("switchboard_agent_messages_total")
                             .Help("Agent messages by kind and outcome")
                             .Register(registry);
  m->hellos_accepted = &agent_messages.Add({{"kind", "hello"}, {"result", "accepted"}});
  m->reports_accepted = &agent_messages.Add({{"kind", "report"}, {"result", "accepted"}});
  m->messages_rejected_invalid = &agent_messages.Add({{"kind", "any"}, {"result", "invalid_argument"}});
  m->messages_rejected_already_exists = &agent_messages.Add({{"kind", "any"}, {"result", "already_exists"}});
  m->messages_rejected_precondition = &agent_messages.Add({{"kind", "any"}, {"result", "failed_precondition"}});
  m->messages_rejected_other = &agent_messages.Add({{"kind", "any"}, {"result", "other"}});

  auto& streams =
      prometheus::BuildGauge().Name("switchboard_streams").Help("Open gRPC streams by service").Register(registry);
  m->agent_streams = &streams.Add({{"service", "agent"}});
  m->subscriber_streams = &streams.Add({{"service", "discovery"}});
  m->xds_streams = &streams.Add({{"service", "ads"}});
  m->keda_streams = &streams.Add({{"service", "keda"}});
  m->xds_responses_sent = &prometheus::BuildCounter()
                               .Name("switchboard_xds_responses_total")
                               .Help("xDS DiscoveryResponses written to ADS streams")
                               .Register(registry)
                               .Add({});
  auto& xds_replies = prometheus::BuildCounter()
                          .Name("switchboard_xds_replies_total")
                          .Help("ACKs and NACKs from xDS clients")
                          .Register(registry);
  m->xds_acks = &xds_replies.Add({{"type", "ack"}});
  m->xds_nacks = &xds_replies.Add({{"type", "nack"}});

  auto& sent = prometheus::BuildCounter()
                   .Name("switchboard_assignments_sent_total")
                   .Help("Assignments written to native Subscribe streams")
                   .Register(registry);
  m->assignments_sent = &sent.Add({});
  auto& replies = prometheus::BuildCounter()
                      .Name("switchboard_subscriber_replies_total")
                      .Help("ACKs and NACKs from subscribers")
                      .Register(registry);
  m->subscriber_acks = &replies.Add({{"type", "ack"}});
  m->subscriber_nacks = &replies.Add({{"type", "nack"}});
  auto& outcomes = prometheus::BuildCounter()
                       .Name("switchboard_gateway_outcomes_total")
                       .Help(
                           "Endpoint outcomes reported by gateways on Subscribe streams: added to the circuit "
                           "breakers' evidence, for endpoints not known, or rejected as invalid")
                       .Register(registry);
  m->gateway_outcomes_added = &outcomes.Add({{"result", "added"}});
  m->gateway_outcomes_unknown = &outcomes.Add({{"result", "unknown_endpoint"}});
  m->gateway_outcomes_rejected = &outcomes.Add({{"result", "rejected"}});
  m->snapshots_published = &prometheus::BuildCounter()
                                .Name("switchboard_snapshots_published_total")
                                .Help("New pool snapshot versions built by the reconciler")
                                .Register(registry)
                                .Add({});
  m->pools = &prometheus::BuildGauge().Name("switchboard_pools").Help("Model pools known").Register(registry).Add({});
  auto& endpoints = prometheus::BuildGauge()
                        .Name("switchboard_endpoints")
                        .Help("Endpoints in the newest snapshots (counted once per pool)")
                        .Register(registry);
  m->endpoints_routable = &endpoints.Add({{"routable", "true"}});
  m->endpoints_excluded = &endpoints.Add({{"routable", "false"}});
  auto& reloads = prometheus::BuildCounter()
                      .Name("switchboard_config_reloads_total")
                      .Help("Pool configuration reloads (SIGHUP); a failed one keeps the running configuration")
                      .Register(registry);
  m->config_reloads_ok = &reloads.Add({{"result", "ok"}});
  m->config_reloads_failed = &reloads.Add({{"result", "error"}});
  auto& token_reloads = prometheus::BuildCounter()
                            .Name("switchboard_admin_token_reloads_total")
                            .Help("Changes of the --admin-tokens file applied; a failed one keeps the tokens in force")
                            .Register(registry);
  m->token_reloads_ok = &token_reloads.Add({{"result", "ok"}});
  m->token_reloads_failed = &token_reloads.Add({{"result", "error"}});
  auto& scale_exec = prometheus::BuildCounter()
                         .Name("switchboard_scale_exec_runs_total")
                         .Help("--scale-exec runs by result (a failed one is also an event)")
                         .Register(registry);
  m->scale_exec_ok = &scale_exec.Add({{"result", "ok"}});
  m->scale_exec_failed = &scale_exec.Add({{"result", "failed"}});
  prometheus::BuildGauge()
      .Name("switchboard_build_info")
      .Help("Always 1; the labels say which build runs")
      .Register(registry)
      .Add({{"component", "controlplane"}, {"version", SWITCHBOARD_VERSION}})
      .Set(1);
  m->push_latency = &prometheus::BuildHistogram()
                         .Name("switchboard_push_latency_seconds")
                         .Help("From a snapshot's publication to its write on a Subscribe stream completing")
                         .Register(registry)
                         .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                          0.05, 0.1, 0.25, 0.5, 1, 2.5});
  return m;
}

}  // namespace switchboard::controlplane
