#include "sync/metrics.h"

#include "prometheus/gauge.h"

namespace switchboard::sync {

std::unique_ptr<SyncMetrics> MakeSyncMetrics() {
  auto m = std::make_unique<SyncMetrics>();
  m->registry = std::make_shared<prometheus::Registry>();
  auto& changes = prometheus::BuildCounter()
                      .Name("switchboard_sync_changes_total")
                      .Help("Changes made in the proxy, by kind")
                      .Register(*m->registry);
  m->added = &changes.Add({{"kind", "added"}});
  m->removed = &changes.Add({{"kind", "removed"}});
  m->weight = &changes.Add({{"kind", "weight"}});
  m->state = &changes.Add({{"kind", "state"}});
  m->address = &changes.Add({{"kind", "address"}});
  m->reload = &changes.Add({{"kind", "reload"}});
  m->failures = &prometheus::BuildCounter()
                     .Name("switchboard_sync_failures_total")
                     .Help("Proxy commands, checks or reloads that failed")
                     .Register(*m->registry)
                     .Add({});
  auto& assignments = prometheus::BuildCounter()
                          .Name("switchboard_sync_assignments_total")
                          .Help("Assignments received, by result (applied: ACKed; refused: NACKed)")
                          .Register(*m->registry);
  m->applied = &assignments.Add({{"result", "applied"}});
  m->refused = &assignments.Add({{"result", "refused"}});
  m->streams = &prometheus::BuildCounter()
                    .Name("switchboard_sync_streams_total")
                    .Help("Streams opened to the control plane (the first and every reconnect)")
                    .Register(*m->registry)
                    .Add({});
  prometheus::BuildGauge()
      .Name("switchboard_build_info")
      .Help("Always 1; the labels say which build runs")
      .Register(*m->registry)
      .Add({{"component", "sync"}, {"version", SWITCHBOARD_VERSION}})
      .Set(1);
  return m;
}

void SyncMetrics::Export(const SyncCounters& now, bool nginx) {
  added->Increment(static_cast<double>(now.added - exported_.added));
  removed->Increment(static_cast<double>(now.removed - exported_.removed));
  weight->Increment(static_cast<double>(now.weight_changes - exported_.weight_changes));
  state->Increment(static_cast<double>(now.state_changes - exported_.state_changes));
  address->Increment(static_cast<double>(now.address_changes - exported_.address_changes));
  if (nginx) reload->Increment(static_cast<double>(now.commands - exported_.commands));
  failures->Increment(static_cast<double>(now.failures - exported_.failures));
  exported_ = now;
}

}  // namespace switchboard::sync
