#include "common/clock.h"

#include <algorithm>
#include <chrono>

#include "absl/time/clock.h"

namespace switchboard {

void Clock::SleepUntil(absl::Time monotonic_deadline) const {
  Mutex mu;
  MutexLock lock(&mu);
  static constexpr bool kNever = false;
  AwaitWithDeadline(&mu, Condition(&kNever), monotonic_deadline);
}

absl::Time SystemClock::Now() const { return absl::Now(); }

absl::Time SystemClock::MonotonicNow() const {
  // steady_clock has an arbitrary epoch; mapping it onto absl::Time keeps arithmetic
  // in absl::Duration without pretending the result is a calendar time.
  return absl::UnixEpoch() + absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

bool SystemClock::AwaitWithDeadline(Mutex* mu, const Condition& cond, absl::Time monotonic_deadline) const {
  if (monotonic_deadline == absl::InfiniteFuture()) {
    mu->Await(cond);
    return true;
  }
  // The mutex measures timeouts on its own clock; only the remaining duration carries over.
  return mu->AwaitWithTimeout(cond, monotonic_deadline - MonotonicNow());
}

SystemClock* SystemClock::Get() {
  static SystemClock* clock = new SystemClock();
  return clock;
}

bool FakeClock::AwaitWithDeadline(Mutex* mu, const Condition& cond, absl::Time monotonic_deadline) const {
  Waiter self{mu, monotonic_deadline};
  {
    MutexLock lock(&waiters_mu_);
    waiters_.push_back(&self);
  }
  // Reads only the atomic time besides what `cond` reads under `mu`.
  auto done = [this, &cond, monotonic_deadline] { return cond.Eval() || MonotonicNow() >= monotonic_deadline; };
  mu->Await(Condition(&done));
  bool outwait;
  {
    MutexLock lock(&waiters_mu_);
    waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &self));
    outwait = self.advancing > 0;
  }
  if (outwait) {
    // An Advance took this waiter's mutex from the list and is about to lock it. It
    // cannot while this thread holds it, so let go until that Advance is done.
    mu->Unlock();
    {
      MutexLock lock(&waiters_mu_);
      auto released = [&self]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(waiters_mu_) { return self.advancing == 0; };
      waiters_mu_.Await(Condition(&released));
    }
    mu->Lock();
  }
  return cond.Eval();
}

void FakeClock::Advance(absl::Duration d) {
  elapsed_ns_ += absl::ToInt64Nanoseconds(absl::Ceil(d, absl::Nanoseconds(1)));
  // Time moves first: a waiter that starts waiting from here on sees the new time, and
  // every earlier one is on the list and gets its condition re-evaluated below.
  std::vector<Waiter*> poke;
  {
    MutexLock lock(&waiters_mu_);
    poke = waiters_;
    for (Waiter* w : poke) ++w->advancing;
  }
  for (Waiter* w : poke) {
    w->mu->Lock();
    w->mu->Unlock();  // Re-evaluates the conditions waiting on this mutex.
  }
  MutexLock lock(&waiters_mu_);
  for (Waiter* w : poke) --w->advancing;
}

std::vector<absl::Time> FakeClock::PendingDeadlines() const {
  MutexLock lock(&waiters_mu_);
  return DeadlinesLocked();
}

std::vector<absl::Time> FakeClock::DeadlinesLocked() const {
  std::vector<absl::Time> deadlines;
  for (const Waiter* w : waiters_) deadlines.push_back(w->deadline);
  std::sort(deadlines.begin(), deadlines.end());
  return deadlines;
}

bool FakeClock::AwaitWaiters(int n, absl::Duration real_timeout) const {
  return AwaitDeadlines(
      [this, n](const std::vector<absl::Time>& deadlines) {
        const absl::Time now = MonotonicNow();
        return std::count_if(deadlines.begin(), deadlines.end(), [now](absl::Time d) { return d > now; }) >= n;
      },
      real_timeout);
}

bool FakeClock::AwaitDeadlines(const std::function<bool(const std::vector<absl::Time>&)>& pred,
                               absl::Duration real_timeout) const {
  MutexLock lock(&waiters_mu_);
  auto holds = [this, &pred]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(waiters_mu_) { return pred(DeadlinesLocked()); };
  // Real time on purpose: this bounds how long a test waits for another thread.
  return waiters_mu_.AwaitWithTimeout(Condition(&holds), real_timeout);
}

}  // namespace switchboard
