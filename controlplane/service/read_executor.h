// ReadExecutor: runs the admin API's reads that touch SQLite (history, events) on its own
// thread, so that gRPC reactors never wait on the disk. A bounded queue: when it is full
// (the disk is slow and operators keep asking), Post refuses and the caller answers
// RESOURCE_EXHAUSTED at once instead of queueing without end.
//
// Thread-safe. The destructor runs what is queued, then joins.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_READ_EXECUTOR_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_READ_EXECUTOR_H_

#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace switchboard::controlplane {

class ReadExecutor {
 public:
  explicit ReadExecutor(size_t queue_limit = 64);
  ~ReadExecutor();
  ReadExecutor(const ReadExecutor&) = delete;
  ReadExecutor& operator=(const ReadExecutor&) = delete;

  // Queues `work` to run on the executor's thread; false (and `work` dropped unrun)
  // when the queue is full.
  bool Post(std::function<void()> work);

 private:
  void Loop();

  const size_t queue_limit_;
  Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_READ_EXECUTOR_H_
