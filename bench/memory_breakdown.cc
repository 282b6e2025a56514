// memory_breakdown: what the control plane's own state costs per endpoint, structure by
// structure (docs/performance.md, "The control plane's own memory per endpoint").
//
// Builds the state of `switchboard-loadgen bench`'s fleet (the same Hellos and Reports,
// bench/loadgen/workload.h) in this process, without gRPC, and reads the heap's live bytes
// (glibc's mallinfo2: allocated chunks in every arena plus mmapped ones) before and after
// each step: the fleet state, the endpoint views a pass refills from it, one pool's
// snapshot, the breakers' memories, a pass's history queue item, and a steady-state pass
// over the whole fleet. Heap bytes include malloc's per-chunk overhead (8 bytes, 16-byte
// granularity), as the RSS does. Deterministic: no threads race, no network.
//
//   memory_breakdown [--agents 1000] [--endpoints-per-agent 8] [--pools 1]
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen/workload.h"
#include "common/clock.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/history/history_store.h"
#include "controlplane/reconciler.h"
#include "controlplane/snapshot/snapshot.h"
#include "controlplane/snapshot/snapshot_store.h"

namespace switchboard {
namespace {

size_t LiveHeapBytes() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

class Meter {
 public:
  explicit Meter(size_t endpoints) : endpoints_(endpoints) {}
  void Start() { mark_ = LiveHeapBytes(); }
  // Prints the live bytes added since Start, in total and per endpoint; restarts.
  void Line(const std::string& what) {
    const size_t now = LiveHeapBytes();
    const double delta = static_cast<double>(now) - static_cast<double>(mark_);
    std::printf("%-58s %10.1f KiB %8.0f B/endpoint\n", what.c_str(), delta / 1024, delta / endpoints_);
    mark_ = now;
  }

 private:
  size_t endpoints_;
  size_t mark_ = 0;
};

int Run(int argc, char** argv) {
  bench::Workload w;
  w.agents = 1000;
  w.endpoints_per_agent = 8;
  w.pools = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--agents") {
      w.agents = value;
    } else if (flag == "--endpoints-per-agent") {
      w.endpoints_per_agent = value;
    } else if (flag == "--pools") {
      w.pools = value;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (w.agents <= 0 || w.endpoints_per_agent <= 0 || w.pools <= 0) {
    std::fprintf(stderr, "--agents, --endpoints-per-agent and --pools must be positive\n");
    return 2;
  }
  const size_t endpoints = static_cast<size_t>(w.agents) * static_cast<size_t>(w.endpoints_per_agent);
  std::printf("%d agents x %d endpoints, %d pool(s): %zu endpoints\n", w.agents, w.endpoints_per_agent, w.pools,
              endpoints);
  std::printf(
      "sizeof: EndpointView %zu, CircuitMemory %zu, EndpointSample %zu, v1::EndpointStatus %zu, "
      "v1::AssignedEndpoint %zu, v1::EndpointReport %zu, v1::EndpointInfo %zu\n",
      sizeof(controlplane::EndpointView), sizeof(controlplane::policy::CircuitMemory),
      sizeof(controlplane::EndpointSample), sizeof(v1::EndpointStatus), sizeof(v1::AssignedEndpoint),
      sizeof(v1::EndpointReport), sizeof(v1::EndpointInfo));

  FakeClock clock;
  Meter meter(endpoints);
  const bench::ScratchDatabase db("memory_breakdown");
  std::unique_ptr<controlplane::HistoryStore> history = std::move(controlplane::HistoryStore::Open(db.path()).value());
  history->Flush();

  // Fleet state: every agent's Hello, then one Report each.
  meter.Start();
  controlplane::FleetState fleet;
  for (int i = 0; i < w.agents; ++i) {
    absl::Status st = fleet.Connect(static_cast<uint64_t>(i) + 1, bench::MakeHello(i, w), clock.MonotonicNow());
    if (!st.ok()) {
      std::fprintf(stderr, "connect %d: %s\n", i, st.ToString().c_str());
      return 1;
    }
  }
  meter.Line("fleet state: Hellos (node, endpoint info, indexes)");
  {
    v1::Report report;
    for (int i = 0; i < w.agents; ++i) {
      bench::LoadModel model(i, w);
      model.Next(1, 0, &report);
      absl::Status st = fleet.ApplyReport(static_cast<uint64_t>(i) + 1, bench::NodeId(i), report, clock.MonotonicNow());
      if (!st.ok()) {
        std::fprintf(stderr, "report %d: %s\n", i, st.ToString().c_str());
        return 1;
      }
    }
  }
  meter.Line("fleet state: first Report (latest reports, speeds)");

  // What a pass builds, one piece at a time, for pool bench-0.
  const controlplane::policy::PolicyConfig config = controlplane::policy::DefaultFleetConfig().defaults.policy;
  std::shared_ptr<const controlplane::Snapshot> snapshot;
  controlplane::CircuitMemories memories;
  size_t pool_endpoints = 0;
  {
    meter.Start();
    std::map<std::string, std::vector<controlplane::EndpointView>> views =
        fleet.EndpointsByPool(clock.MonotonicNow(), nullptr);
    meter.Line("endpoint views (whole fleet, by pool; the reconciler keeps them)");
    std::vector<controlplane::EndpointView> pool = std::move(views[bench::kWatchedPool]);
    views.clear();
    pool_endpoints = pool.size();
    Meter pool_meter(pool_endpoints);
    pool_meter.Start();
    snapshot = controlplane::BuildSnapshot(bench::kWatchedPool, pool, nullptr, config, clock.Now());
    pool_meter.Line("snapshot (pool bench-0; kept, two during a pass)");
    {
      const size_t before = LiveHeapBytes();
      std::shared_ptr<const controlplane::Snapshot> with_memories = controlplane::BuildSnapshot(
          bench::kWatchedPool, pool, nullptr, config, clock.Now(), &memories, clock.MonotonicNow());
      with_memories.reset();
      const size_t snapshot_alone = LiveHeapBytes() - before;  // The memories stay.
      std::printf("%-58s %10.1f KiB %8.0f B/endpoint\n", "breaker memories (pool bench-0; kept)",
                  static_cast<double>(snapshot_alone) / 1024,
                  static_cast<double>(snapshot_alone) / static_cast<double>(pool_endpoints));
    }
    pool_meter.Start();
    snapshot->assignment_bytes.Get(snapshot->assignment);
    pool_meter.Line("snapshot: serialized assignment (built with it: counted above)");
    pool_meter.Start();
    {
      std::vector<controlplane::EndpointSample> samples = controlplane::EndpointSamplesOf(*snapshot, clock.Now());
      pool_meter.Line("history: one pass's endpoint samples (queued until written)");
    }
  }
  snapshot.reset();
  memories = {};

  // The whole thing, as the control plane runs it: a reconciler's passes over the fleet.
  controlplane::SnapshotStore store;
  meter.Start();
  {
    controlplane::Reconciler reconciler(&fleet, &store, history.get(), &clock, {});
    reconciler.ReconcileOnce();
    history->Flush();
    meter.Line("reconciler: first pass, history written (snapshots, memories)");
    for (int pass = 2; pass <= 5; ++pass) {
      clock.Advance(absl::Seconds(1));
      v1::Report report;
      for (int i = 0; i < w.agents; ++i) {
        bench::LoadModel model(i, w);
        model.Next(static_cast<uint64_t>(pass), 0, &report);
        (void)fleet.ApplyReport(static_cast<uint64_t>(i) + 1, bench::NodeId(i), report, clock.MonotonicNow());
      }
      reconciler.ReconcileOnce();
      history->Flush();
    }
    meter.Line("reconciler: four more passes (steady state)");
  }
  const struct mallinfo2 m = mallinfo2();
  std::printf("heap: %.1f MiB live, %.1f MiB held by malloc (arenas + mmapped)\n",
              static_cast<double>(m.uordblks + m.hblkhd) / (1 << 20),
              static_cast<double>(m.arena + m.hblkhd) / (1 << 20));
  return 0;
}

}  // namespace
}  // namespace switchboard

int main(int argc, char** argv) { return switchboard::Run(argc, argv); }
