// Every metric the control plane exports, declared in one place and built in one
// function (Envoy's ALL_*_STATS idea). Served on --metrics-listen.
#ifndef SWITCHBOARD_CONTROLPLANE_METRICS_H_
#define SWITCHBOARD_CONTROLPLANE_METRICS_H_

#include <memory>

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace switchboard::controlplane {

struct ControlPlaneMetrics {
  prometheus::Counter* hellos_accepted;
  prometheus::Counter* reports_accepted;
  prometheus::Counter* messages_rejected_invalid;  // INVALID_ARGUMENT
  prometheus::Counter* messages_rejected_other;    // superseded stream, report before hello
  prometheus::Gauge* agent_streams;
  prometheus::Gauge* subscriber_streams;
  prometheus::Counter* assignments_sent;
  prometheus::Counter* subscriber_acks;
  prometheus::Counter* subscriber_nacks;
  prometheus::Counter* snapshots_published;
  prometheus::Gauge* pools;
  prometheus::Gauge* endpoints_routable;
  prometheus::Gauge* endpoints_excluded;

  // Registers every family in `registry` (which must outlive the result).
  static std::unique_ptr<ControlPlaneMetrics> Create(prometheus::Registry& registry);
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_METRICS_H_
