// Coalescing of xDS pushes: a burst of snapshot changes becomes one push to every
// subscriber. A push goes out once the changes have been quiet for `quiet`, and at the
// latest `max_delay` after the first change of the burst, so a steady stream of changes
// cannot hold pushes back forever (Istio's debounce, with its bound).
//
// The decision (when to push) is the pure function NextPush; PushCoalescer runs it on
// its own thread, waiting through the injected Clock, so a test drives it with a
// FakeClock.
#ifndef SWITCHBOARD_CONTROLPLANE_XDS_PUSH_COALESCER_H_
#define SWITCHBOARD_CONTROLPLANE_XDS_PUSH_COALESCER_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mutex.h"

namespace switchboard::controlplane::xds {

struct PushCoalescing {
  // Push once no change has come for this long. Zero: push at once.
  absl::Duration quiet = absl::Milliseconds(10);
  // But never later than this after the first unpushed change.
  absl::Duration max_delay = absl::Milliseconds(100);
  // Threads that start a push's writes (the coalescer's own included; push_fanout.h).
  int push_threads = 1;  // One: the coalescer's thread starts every write.
};

struct PushDecision {
  absl::Time at;       // Monotonic time of the push.
  std::string reason;  // "quiet" or "bounded" (the burst went on for max_delay).
};

// When to push the changes of a burst that began at `first_change` and whose newest
// change came at `last_change` (monotonic times, first <= last).
PushDecision NextPush(absl::Time first_change, absl::Time last_change, const PushCoalescing& config);

class PushCoalescer {
 public:
  // `push` runs on the coalescer's thread, once per burst, never concurrently with
  // itself; a change noted while it runs starts the next burst.
  PushCoalescer(const Clock* clock, PushCoalescing config, std::function<void()> push);
  ~PushCoalescer();  // Stops the thread; a pending push is dropped.

  // A change happened: push it (with any others of its burst) per the config. Never
  // blocks for long; callable from any thread.
  void Notify();

  // How many pushes have run (for tests and metrics).
  int64_t pushes() const;

 private:
  void Run();

  const Clock* const clock_;
  const PushCoalescing config_;
  const std::function<void()> push_;

  mutable Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time first_change_ ABSL_GUARDED_BY(mu_);
  absl::Time last_change_ ABSL_GUARDED_BY(mu_);
  int64_t pushes_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;  // Last: starts after everything it reads is constructed.
};

}  // namespace switchboard::controlplane::xds

#endif  // SWITCHBOARD_CONTROLPLANE_XDS_PUSH_COALESCER_H_
