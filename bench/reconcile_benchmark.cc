// reconcile_benchmark: what one reconcile pass costs, per pass and per endpoint, over the
// fleet of `switchboard-loadgen bench` (bench/loadgen/workload.h: the same Hellos and
// Reports), in this process, without gRPC: the reconciler's share of the CPU per report
// that the loadgen measures end to end (docs/performance.md).
//
// Every agent reports once per simulated second (each endpoint's load changing with the
// workload's probability); the reports of a second are spread over `--passes-per-second`
// passes, each of which rebuilds the pools that changed (Reconciler::ReconcileChanged,
// as the reconciler's loop runs them between ticks), with a whole pass once a second.
// Prints the CPU time of the passes (this thread) and of the history writer (the rest of
// the process), per pass, per rebuilt endpoint and per report. Deterministic work: run it
// under `valgrind --tool=callgrind` for instruction counts by function.
//
//   reconcile_benchmark [--agents 5000] [--endpoints-per-agent 2] [--pools 10]
//                       [--seconds 10] [--passes-per-second 10] [--no-history 1]
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bench/loadgen/workload.h"
#include "common/clock.h"
#include "common/log.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/history/history_store.h"
#include "controlplane/reconciler.h"
#include "controlplane/snapshot/snapshot_store.h"

namespace switchboard {
namespace {

double CpuSeconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int Run(int argc, char** argv) {
  bench::Workload w;
  w.agents = 5000;
  w.endpoints_per_agent = 2;
  w.pools = 10;
  int seconds = 10;
  int passes_per_second = 10;
  bool history_on = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--agents") {
      w.agents = value;
    } else if (flag == "--endpoints-per-agent") {
      w.endpoints_per_agent = value;
    } else if (flag == "--pools") {
      w.pools = value;
    } else if (flag == "--seconds") {
      seconds = value;
    } else if (flag == "--passes-per-second") {
      passes_per_second = value;
    } else if (flag == "--no-history") {
      history_on = value == 0;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (w.agents <= 0 || w.endpoints_per_agent <= 0 || w.pools <= 0 || seconds <= 0 || passes_per_second <= 0) {
    std::fprintf(stderr, "every flag must be positive\n");
    return 2;
  }

  SetMinLogSeverity(LogSeverity::kWarning);  // Not a line per endpoint joining.
  FakeClock clock;
  const bench::ScratchDatabase db("reconcile_benchmark");
  std::unique_ptr<controlplane::HistoryStore> history;
  if (history_on) history = std::move(controlplane::HistoryStore::Open(db.path()).value());

  controlplane::FleetState fleet;
  std::vector<bench::LoadModel> models;
  models.reserve(static_cast<size_t>(w.agents));
  for (int i = 0; i < w.agents; ++i) {
    absl::Status st = fleet.Connect(static_cast<uint64_t>(i) + 1, bench::MakeHello(i, w), clock.MonotonicNow());
    if (!st.ok()) {
      std::fprintf(stderr, "connect %d: %s\n", i, st.ToString().c_str());
      return 1;
    }
    models.emplace_back(i, w);
  }
  controlplane::SnapshotStore store;
  controlplane::Reconciler reconciler(&fleet, &store, history.get(), &clock, {});
  v1::Report report;
  uint64_t sequence = 0;
  auto report_range = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      models[static_cast<size_t>(i)].Next(sequence, 0, &report);
      (void)fleet.ApplyReport(static_cast<uint64_t>(i) + 1, bench::NodeId(i), report, clock.MonotonicNow());
    }
  };
  ++sequence;
  report_range(0, w.agents);
  reconciler.ReconcileOnce();  // The first pass builds everything: not measured.
  if (history) history->Flush();

  const double process_start = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
  double pass_cpu = 0;
  double report_cpu = 0;
  uint64_t passes = 0;
  const absl::Duration step = absl::Seconds(1) / passes_per_second;
  for (int s = 0; s < seconds; ++s) {
    ++sequence;
    for (int p = 0; p < passes_per_second; ++p) {
      const double t0 = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
      report_range(w.agents * p / passes_per_second, w.agents * (p + 1) / passes_per_second);
      const double t1 = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
      clock.Advance(step);
      if (p == 0) {
        reconciler.ReconcileOnce();
      } else {
        reconciler.ReconcileChanged();
      }
      pass_cpu += CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - t1;
      report_cpu += t1 - t0;
      ++passes;
    }
  }
  if (history) history->Flush();
  const double process_cpu = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - process_start;
  const double history_cpu = process_cpu - pass_cpu - report_cpu;
  const double endpoints = static_cast<double>(w.agents) * w.endpoints_per_agent;
  const double reports = static_cast<double>(w.agents) * seconds;
  std::printf("%d agents x %d endpoints, %d pools, %d s, %d passes/s, history %s\n", w.agents, w.endpoints_per_agent,
              w.pools, seconds, passes_per_second, history_on ? "on" : "off");
  std::printf("pass:            %8.2f ms CPU each, %6.2f us per endpoint rebuilt, %6.1f us per report\n",
              1e3 * pass_cpu / static_cast<double>(passes), 1e6 * pass_cpu / (endpoints * static_cast<double>(passes)),
              1e6 * pass_cpu / reports);
  std::printf("apply reports:   %8.2f us per report (FleetState::ApplyReport, this thread)\n",
              1e6 * report_cpu / reports);
  std::printf("history writer:  %8.1f us per report (the rest of the process)\n", 1e6 * history_cpu / reports);
  return 0;
}

}  // namespace
}  // namespace switchboard

int main(int argc, char** argv) { return switchboard::Run(argc, argv); }
