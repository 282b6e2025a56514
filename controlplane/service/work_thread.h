// WorkThread: one named thread running posted work in order, off gRPC's threads. gRPC
// 1.51 runs callback reactors on a few poller threads (two on a 2-core machine), the same
// threads that read every connection and answer its HTTP/2 pings; work that can wait on
// a lock or on the disk there leaves every connection's pings unanswered, and clients
// drop their streams after their keepalive timeout. The control plane posts such work
// here instead:
// - agent streams' messages that cannot be handled on the poller without waiting (a
//   Hello, a Goodbye, a rejection, a report that found the fleet's lock taken) and the
//   change hook of reports applied there: a few unbounded threads, each stream always on
//   the same one so its messages stay in order. Bounded by its callers:
//   a stream posts its next message only after the previous one was handled (one read
//   outstanding per stream), so at most one item per open stream waits
//   (--max-streams-per-peer and --max-nodes bound those).
// - the admin API's reads of SQLite (history, events): one thread with a bounded queue;
//   when it is full (the disk is slow and operators keep asking) Post refuses and the
//   caller answers RESOURCE_EXHAUSTED at once instead of queueing without end.
//
// The thread takes everything queued at once (one wakeup per burst, not per item).
// Thread-safe. The destructor runs what is queued, then joins.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_WORK_THREAD_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_WORK_THREAD_H_

#include <cstddef>
#include <functional>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace switchboard::controlplane {

class WorkThread {
 public:
  static constexpr size_t kUnbounded = std::numeric_limits<size_t>::max();

  // `name`: the thread's name in top, ps and profiles (at most 15 characters).
  // `queue_limit`: how many items may wait (not counting those running) before Post
  // refuses.
  explicit WorkThread(std::string name, size_t queue_limit = kUnbounded);
  ~WorkThread();
  WorkThread(const WorkThread&) = delete;
  WorkThread& operator=(const WorkThread&) = delete;

  // Queues `work` to run on the thread after everything posted before it; false (and
  // `work` dropped unrun) when queue_limit items already wait. Never blocks on the work:
  // only on the queue's own short critical section.
  bool Post(std::function<void()> work);

 private:
  void Loop();

  const std::string name_;
  const size_t queue_limit_;
  Mutex mu_;
  std::vector<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // Last: starts after everything it reads.
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_WORK_THREAD_H_
