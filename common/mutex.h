// The mutex the project uses: absl::Mutex, except in ThreadSanitizer builds.
//
// Debian's Abseil is not built with -fsanitize=thread, so TSan cannot see absl::Mutex
// acquire and release and reports races between accesses the mutex does order. In TSan
// builds this header substitutes a small mutex with the same interface (Lock, TryLock, Unlock,
// Await, AwaitWithTimeout, AwaitWithDeadline, MutexLock, Condition) built on std::mutex
// and std::condition_variable_any, which TSan understands. Semantics match what the
// project relies on: conditions are re-evaluated whenever the mutex is released.
#ifndef SWITCHBOARD_COMMON_MUTEX_H_
#define SWITCHBOARD_COMMON_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#if defined(__SANITIZE_THREAD__)
#define SWITCHBOARD_TSAN_MUTEX 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SWITCHBOARD_TSAN_MUTEX 1
#endif
#endif

#ifdef SWITCHBOARD_TSAN_MUTEX
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <type_traits>
#endif

namespace switchboard {

#ifndef SWITCHBOARD_TSAN_MUTEX

using Mutex = absl::Mutex;
using MutexLock = absl::MutexLock;
using Condition = absl::Condition;

#else

class Condition {
 public:
  // A pointer to a bool, or to a callable returning bool (as absl::Condition takes).
  template <typename T>
  explicit Condition(T* target) ABSL_NO_THREAD_SAFETY_ANALYSIS {  // Evaluated under the mutex.
    if constexpr (std::is_same_v<std::remove_const_t<T>, bool>) {
      eval_ = [target] { return *target; };
    } else {
      eval_ = [target]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return (*target)(); };
    }
  }
  bool Eval() const { return eval_(); }

 private:
  std::function<bool()> eval_;
};

class ABSL_LOCKABLE Mutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    mu_.unlock();
    cv_.notify_all();
  }
  void Await(const Condition& cond) {
    cv_.notify_all();  // Others' conditions may hold after what this thread changed.
    while (!cond.Eval()) cv_.wait(mu_);
  }
  bool AwaitWithDeadline(const Condition& cond, absl::Time deadline) {
    return AwaitUntil(cond, absl::ToChronoTime(deadline));
  }
  bool AwaitWithTimeout(const Condition& cond, absl::Duration timeout) {
    if (timeout == absl::InfiniteDuration()) {
      Await(cond);
      return true;
    }
    // On the steady clock, so that a step of the wall clock neither stretches nor cuts
    // the wait; capped so that the time point cannot overflow.
    const absl::Duration capped = std::min(timeout, absl::Hours(24 * 365 * 100));
    return AwaitUntil(cond, std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(capped));
  }

 private:
  template <typename TimePoint>
  bool AwaitUntil(const Condition& cond, TimePoint deadline) {
    cv_.notify_all();  // Others' conditions may hold after what this thread changed.
    while (!cond.Eval()) {
      if (cv_.wait_until(mu_, deadline) == std::cv_status::timeout) return cond.Eval();
    }
    return true;
  }

  std::mutex mu_;
  std::condition_variable_any cv_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

#endif

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_MUTEX_H_
