// Injected time. Production code reads time only through a Clock so that tests and the
// simulator can drive it. Thread-safe: both implementations may be read from any thread.
#ifndef SWITCHBOARD_COMMON_CLOCK_H_
#define SWITCHBOARD_COMMON_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace switchboard {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (for timestamps shown to people and stored in history).
  virtual absl::Time Now() const = 0;
  // Monotonic time (for intervals, staleness and deadlines); only differences mean anything.
  virtual absl::Time MonotonicNow() const = 0;
};

// The real clocks of the machine.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  absl::Time MonotonicNow() const override;
  static SystemClock* Get();
};

// A clock that moves only when told to. Wall and monotonic time advance together.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : now_(start) {}
  absl::Time Now() const override {
    MutexLock lock(&mu_);
    return now_;
  }
  absl::Time MonotonicNow() const override { return Now(); }
  void Advance(absl::Duration d) {
    MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_CLOCK_H_
