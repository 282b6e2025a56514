// Injected time. Production code reads time and waits for time only through a Clock, so
// that tests and the simulator can drive it: a loop that waits "until the next tick, or
// until something changes" waits through Clock::AwaitWithDeadline, and a test with a
// FakeClock advances time instead of sleeping. Thread-safe: both implementations may be
// read and waited on from any thread.
#ifndef SWITCHBOARD_COMMON_CLOCK_H_
#define SWITCHBOARD_COMMON_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
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

  // Waits until `cond` holds or MonotonicNow() reaches `monotonic_deadline`, like
  // Mutex::AwaitWithDeadline on this clock's time. The caller holds `mu`, which guards
  // everything `cond` reads; `mu` is released while waiting and held again on return.
  // `cond` must not take locks or read the clock's time other than through this call.
  // Returns whether `cond` holds on return. absl::InfiniteFuture() waits for `cond` only.
  virtual bool AwaitWithDeadline(Mutex* mu, const Condition& cond, absl::Time monotonic_deadline) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;

  // The same with a deadline `timeout` from now; a timeout <= 0 only evaluates `cond`.
  bool AwaitWithTimeout(Mutex* mu, const Condition& cond, absl::Duration timeout) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return AwaitWithDeadline(mu, cond, MonotonicNow() + timeout);
  }
  // Blocks the calling thread until MonotonicNow() reaches `monotonic_deadline`.
  void SleepUntil(absl::Time monotonic_deadline) const;
};

// The real clocks of the machine.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override;
  absl::Time MonotonicNow() const override;
  bool AwaitWithDeadline(Mutex* mu, const Condition& cond, absl::Time monotonic_deadline) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  static SystemClock* Get();
};

// A clock that moves only when told to. Wall and monotonic time advance together.
//
// Waits end only when their condition holds or when Advance moves time past their
// deadline; nothing depends on real time. Advance re-evaluates the conditions of every
// current waiter (by locking and unlocking each waiter's mutex, which makes the mutex
// evaluate the conditions waiting on it), so a test that advances past a loop's deadline
// wakes the loop. A test learns that the code under test has reached its wait with
// AwaitWaiters / AwaitDeadlines, which block (in real time, bounded) until it has; no
// test needs to sleep.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000)) : start_(start) {}

  absl::Time Now() const override { return start_ + absl::Nanoseconds(elapsed_ns_.load()); }
  absl::Time MonotonicNow() const override { return Now(); }
  bool AwaitWithDeadline(Mutex* mu, const Condition& cond, absl::Time monotonic_deadline) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Moves time forward by `d` (>= 0; rounded up to whole nanoseconds, this clock's
  // resolution, so that advancing by a computed wait always reaches its deadline) and
  // wakes the waiters whose deadline has passed. Returns after every waiter's condition has been re-evaluated
  // under its mutex (a waiter that wakes may still be returning). Must not be called
  // with a waiter's mutex held.
  void Advance(absl::Duration d);

  // Deadlines of the waits in progress, earliest first; a wait whose deadline has passed
  // may be listed until its thread has returned from it.
  std::vector<absl::Time> PendingDeadlines() const;
  // Blocks until at least `n` threads wait with a deadline still in the future, or
  // until `real_timeout` of real time passes (a test failure, not a way to let time
  // pass); returns whether they do.
  bool AwaitWaiters(int n, absl::Duration real_timeout) const;
  // Blocks until `pred(PendingDeadlines())` holds, or until `real_timeout` of real time
  // passes; returns whether it holds. For instance, "a thread waits until now + 50ms".
  bool AwaitDeadlines(const std::function<bool(const std::vector<absl::Time>&)>& pred,
                      absl::Duration real_timeout) const;

 private:
  // One thread inside AwaitWithDeadline. Lives on that thread's stack; `advancing` counts
  // the Advance calls about to lock `mu`, which the waiter outwaits before returning (so
  // neither the record nor the mutex is used after the wait ends).
  struct Waiter {
    Mutex* mu;
    absl::Time deadline;
    int advancing = 0;
  };

  std::vector<absl::Time> DeadlinesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(waiters_mu_);

  const absl::Time start_;
  // Read by waiters' conditions, which must take no locks: hence atomic.
  std::atomic<int64_t> elapsed_ns_{0};
  mutable Mutex waiters_mu_;  // Never held while locking a waiter's mutex.
  mutable std::vector<Waiter*> waiters_ ABSL_GUARDED_BY(waiters_mu_);
};

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_CLOCK_H_
