// The simulated fleet of `switchboard-loadgen bench`: who the agents are, what they
// report, and the assignment a bare-gRPC broadcaster sends in place of the control
// plane's (same endpoints, same fields, so the same size on the wire).
#ifndef SWITCHBOARD_BENCH_LOADGEN_WORKLOAD_H_
#define SWITCHBOARD_BENCH_LOADGEN_WORKLOAD_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "switchboard/v1/agent.pb.h"
#include "switchboard/v1/discovery.pb.h"

namespace switchboard::bench {

struct Workload {
  int agents = 100;
  int endpoints_per_agent = 2;
  int pools = 1;
  // Chance that one endpoint's load (busy slots, queue, KV cache, speed) changes from one
  // report to the next; otherwise the report repeats the last values.
  double change_probability = 0.2;
};

// Agent i is node "lg-<i>" with endpoints "10.a.b.c:<8000+j>" in pool "bench-<i % pools>".
// Agent 0's first endpoint carries the latency marker (its queue depth, kMarkerBase + k)
// and is in pool "bench-0", the pool every subscriber watches.
constexpr uint32_t kMarkerBase = 1000000;
std::string NodeId(int agent);
std::string EndpointAddress(int agent, int endpoint);
std::string PoolOf(int agent, const Workload& w);
constexpr char kWatchedPool[] = "bench-0";

v1::Hello MakeHello(int agent, const Workload& w);

// One agent's changing load; not thread-safe (one per agent stream).
class LoadModel {
 public:
  LoadModel(int agent, const Workload& w);
  // The next report: `sequence`, the time now, and the load (changed per endpoint with
  // the workload's probability). `marker` (0: none yet) goes into agent 0's first
  // endpoint.
  void Next(uint64_t sequence, uint32_t marker, v1::Report* report);

 private:
  int agent_;
  const Workload* workload_;
  std::minstd_rand rng_;
  v1::Report last_;
};

// The assignment of pool "bench-0" as the control plane would publish it, with the marker
// endpoint's queue depth set to `marker_queue_depth`.
v1::Assignment MakeWatchedAssignment(const Workload& w, uint32_t marker_queue_depth);

// The marker in an assignment of pool "bench-0" (0 if absent).
uint32_t MarkerOf(const v1::Assignment& a);

// A history database for an in-process benchmark: `<temp dir>/<name>_<pid>.db`, removed
// (with its -wal and -shm files) when made and when destroyed. Declare it before the
// HistoryStore that opens it, so that the store closes first.
class ScratchDatabase {
 public:
  explicit ScratchDatabase(const std::string& name);
  ~ScratchDatabase();
  ScratchDatabase(const ScratchDatabase&) = delete;
  ScratchDatabase& operator=(const ScratchDatabase&) = delete;
  const std::string& path() const { return path_; }

 private:
  void Remove() const;
  std::string path_;
};

}  // namespace switchboard::bench

#endif  // SWITCHBOARD_BENCH_LOADGEN_WORKLOAD_H_
