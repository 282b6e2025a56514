// The agent's own metrics, declared in one place, served on --metrics-listen.
#ifndef SWITCHBOARD_AGENT_METRICS_H_
#define SWITCHBOARD_AGENT_METRICS_H_

#include <memory>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace switchboard::agent {

struct AgentMetrics {
  prometheus::Family<prometheus::Counter>* probes;         // {endpoint, result="ok"|"error"}
  prometheus::Family<prometheus::Gauge>* probe_seconds;    // {endpoint}: last probe round's latency
  prometheus::Family<prometheus::Gauge>* endpoint_ready;   // {endpoint}: 1 READY, 0 otherwise
  prometheus::Family<prometheus::Counter>* checks;         // {endpoint, result="ok"|"failed"}: active checks
  prometheus::Family<prometheus::Gauge>* controlplane_up;  // {target}
  prometheus::Counter* reports;
  prometheus::Gauge* draining;
  prometheus::Gauge* gpus;

  static std::unique_ptr<AgentMetrics> Create(prometheus::Registry& registry);
};

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_METRICS_H_
