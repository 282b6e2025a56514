// A one-shot event, as absl::Notification, on the project's Mutex (common/mutex.h): Abseil's
// waits on an absl::Mutex inside Abseil, which ThreadSanitizer builds cannot see (Debian's
// Abseil is not instrumented), so code and tests use this one.
#ifndef SWITCHBOARD_COMMON_NOTIFICATION_H_
#define SWITCHBOARD_COMMON_NOTIFICATION_H_

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace switchboard {

// Thread-safe; Notify more than once is harmless.
class Notification {
 public:
  void Notify() {
    MutexLock lock(&mu_);
    notified_ = true;
  }
  bool HasBeenNotified() const {
    MutexLock lock(&mu_);
    return notified_;
  }
  void WaitForNotification() const {
    MutexLock lock(&mu_);
    mu_.Await(Condition(&notified_));
  }
  // True when notified within `timeout`.
  bool WaitForNotificationWithTimeout(absl::Duration timeout) const {
    MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(Condition(&notified_), timeout);
  }

 private:
  mutable Mutex mu_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_NOTIFICATION_H_
