#include "controlplane/metrics.h"

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

}  // namespace

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
  return m;
}

}  // namespace switchboard::controlplane
