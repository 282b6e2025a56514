// The fan-out of one xDS push over several threads. Starting a write on a gRPC stream
// from an application thread runs that connection's write (framing, sendmsg) on the
// calling thread, so one thread pumping every stream makes the last subscriber wait for
// every write before it (about 25 us per 10 KB here). PushFanOut splits the streams of a
// push over `threads` threads: the caller's own and threads - 1 helpers it owns.
#ifndef SWITCHBOARD_CONTROLPLANE_XDS_PUSH_FANOUT_H_
#define SWITCHBOARD_CONTROLPLANE_XDS_PUSH_FANOUT_H_

#include <cstddef>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace switchboard::controlplane::xds {

class PushFanOut {
 public:
  // `threads` < 1 counts as 1 (everything on the caller's thread, no helper).
  explicit PushFanOut(int threads);
  ~PushFanOut();  // Joins the helpers; no Run may be in progress.

  // Runs work(i) for every i in [0, n), each once, spread over the threads; returns when
  // every call has returned. Calls of one Run may run concurrently with each other; one
  // Run at a time (callers serialize, as the push coalescer does).
  void Run(size_t n, const std::function<void(size_t)>& work);

  int threads() const { return static_cast<int>(helpers_.size()) + 1; }

 private:
  void Helper();
  // Takes indexes of the current Run until none is left.
  void Drain(const std::function<void(size_t)>& work, uint64_t generation);

  Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // Counts Runs: helpers join each new one.
  const std::function<void(size_t)>* work_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t size_ ABSL_GUARDED_BY(mu_) = 0;
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;  // The next index to take.
  size_t done_ ABSL_GUARDED_BY(mu_) = 0;  // Calls returned.
  std::vector<std::thread> helpers_;      // Last: start after everything they read.
};

}  // namespace switchboard::controlplane::xds

#endif  // SWITCHBOARD_CONTROLPLANE_XDS_PUSH_FANOUT_H_
