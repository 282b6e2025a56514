#include "agent/metrics.h"

#include "agent/agent.h"

namespace switchboard::agent {

std::unique_ptr<AgentMetrics> AgentMetrics::Create(prometheus::Registry& registry) {
  auto m = std::make_unique<AgentMetrics>();
  prometheus::BuildGauge()
      .Name("switchboard_build_info")
      .Help("Always 1; the labels say which build runs")
      .Register(registry)
      .Add({{"component", "agent"}, {"version", kAgentVersion}})
      .Set(1);
  m->probes = &prometheus::BuildCounter()
                   .Name("switchboard_agent_probes_total")
                   .Help("Probe rounds per endpoint by result")
                   .Register(registry);
  m->probe_seconds = &prometheus::BuildGauge()
                          .Name("switchboard_agent_probe_seconds")
                          .Help("Duration of the last probe round per endpoint")
                          .Register(registry);
  m->endpoint_ready = &prometheus::BuildGauge()
                           .Name("switchboard_agent_endpoint_ready")
                           .Help("1 when the endpoint is READY")
                           .Register(registry);
  m->checks = &prometheus::BuildCounter()
                   .Name("switchboard_agent_active_checks_total")
                   .Help("Active checks (1-token completions) per endpoint by verdict; 4xx answers count in neither")
                   .Register(registry);
  m->controlplane_up = &prometheus::BuildGauge()
                            .Name("switchboard_agent_controlplane_connected")
                            .Help("1 while the stream to a control plane is up")
                            .Register(registry);
  m->reports = &prometheus::BuildCounter()
                    .Name("switchboard_agent_reports_total")
                    .Help("Reports built (one per probe round)")
                    .Register(registry)
                    .Add({});
  m->draining =
      &prometheus::BuildGauge().Name("switchboard_agent_draining").Help("1 while draining").Register(registry).Add({});
  m->gpus = &prometheus::BuildGauge().Name("switchboard_agent_gpus").Help("GPUs seen").Register(registry).Add({});
  return m;
}

}  // namespace switchboard::agent
