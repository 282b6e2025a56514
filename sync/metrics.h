// switchboard-sync's Prometheus metrics (--metrics-listen), declared in one place.
#ifndef SWITCHBOARD_SYNC_METRICS_H_
#define SWITCHBOARD_SYNC_METRICS_H_

#include <memory>

#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "sync/haproxy_sync.h"

namespace switchboard::sync {

struct SyncMetrics {
  std::shared_ptr<prometheus::Registry> registry;
  // What changed in the proxy: kind = added | removed | weight | state | address
  // (HAProxy runtime commands that worked) or reload (nginx reloads that worked).
  prometheus::Counter* added = nullptr;
  prometheus::Counter* removed = nullptr;
  prometheus::Counter* weight = nullptr;
  prometheus::Counter* state = nullptr;
  prometheus::Counter* address = nullptr;
  prometheus::Counter* reload = nullptr;
  prometheus::Counter* failures = nullptr;  // Commands, checks or reloads that failed.
  prometheus::Counter* applied = nullptr;   // Assignments ACKed.
  prometheus::Counter* refused = nullptr;   // Assignments NACKed.
  prometheus::Counter* streams = nullptr;   // Streams to the control plane opened (1 + reconnects).

  // Adds what `now` counted since the last call (SyncCounters only grow).
  void Export(const SyncCounters& now, bool nginx);

 private:
  SyncCounters exported_;
};

std::unique_ptr<SyncMetrics> MakeSyncMetrics();

}  // namespace switchboard::sync

#endif  // SWITCHBOARD_SYNC_METRICS_H_
