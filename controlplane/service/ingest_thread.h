// IngestThread: runs agent streams' messages (validation, FleetState, acks) on a
// thread of its own (AgentServiceImpl keeps a few, each stream on one of them), so that
// gRPC's poller threads, which also answer HTTP/2 pings, never wait on the control
// plane's work: a FleetState lock held by a reconcile pass, a reader of the fleet, a
// slow log or history write. gRPC 1.51 runs callback reactors on a few poller threads
// (two on a 2-core machine); one that blocks there leaves every connection's pings
// unanswered, and agents drop their streams after their keepalive timeout.
//
// Unbounded by itself, bounded by its callers: an agent stream posts its next message
// only after the previous one was handled (one read outstanding per stream), so at most
// one item per open stream is queued (--max-streams-per-peer and --max-nodes bound those).
//
// Thread-safe. The destructor runs what is queued, then joins.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_INGEST_THREAD_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_INGEST_THREAD_H_

#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace switchboard::controlplane {

class IngestThread {
 public:
  IngestThread();
  ~IngestThread();
  IngestThread(const IngestThread&) = delete;
  IngestThread& operator=(const IngestThread&) = delete;

  // Queues `work` to run on the ingest thread after everything posted before it. Never
  // blocks on the work: only on the queue's own short critical section.
  void Post(std::function<void()> work);

  // Items posted and not yet run (the backlog; for metrics and tests).
  size_t backlog() const;

 private:
  void Loop();

  mutable Mutex mu_;
  std::vector<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  size_t running_ ABSL_GUARDED_BY(mu_) = 0;  // Taken by the loop, not finished yet.
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_INGEST_THREAD_H_
