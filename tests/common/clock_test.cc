#include "common/clock.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace switchboard {
namespace {

// Bounds how long a test waits for another thread (a failure, not a way to pass time).
constexpr absl::Duration kRealTimeout = absl::Seconds(30);

bool Ready(const std::future<bool>& f, absl::Duration real_timeout = kRealTimeout) {
  return f.wait_for(absl::ToChronoNanoseconds(real_timeout)) == std::future_status::ready;
}

// A flag guarded by a mutex, waited on through a clock.
struct Flag {
  Mutex mu;
  bool set ABSL_GUARDED_BY(mu) = false;

  bool Wait(const Clock& clock, absl::Duration timeout) {
    MutexLock lock(&mu);
    return clock.AwaitWithTimeout(&mu, Condition(&set), timeout);
  }
  void Set() {
    MutexLock lock(&mu);
    set = true;
  }
};

TEST(FakeClockTest, AdvanceMovesWallAndMonotonicTime) {
  FakeClock clock(absl::FromUnixSeconds(100));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100));
  clock.Advance(absl::Milliseconds(1500));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100) + absl::Milliseconds(1500));
  EXPECT_EQ(clock.MonotonicNow(), clock.Now());
}

TEST(FakeClockTest, AwaitReturnsWhenConditionHoldsWithoutTimePassing) {
  FakeClock clock;
  const absl::Time start = clock.MonotonicNow();
  Flag flag;
  std::future<bool> woke = std::async(std::launch::async, [&] { return flag.Wait(clock, absl::Seconds(10)); });
  ASSERT_TRUE(clock.AwaitWaiters(1, kRealTimeout));
  flag.Set();
  ASSERT_TRUE(Ready(woke));
  EXPECT_TRUE(woke.get());
  EXPECT_EQ(clock.MonotonicNow(), start);
  EXPECT_TRUE(clock.PendingDeadlines().empty());
}

TEST(FakeClockTest, AwaitTimesOutExactlyAtTheDeadline) {
  FakeClock clock;
  const absl::Time start = clock.MonotonicNow();
  Flag flag;
  std::future<bool> woke = std::async(std::launch::async, [&] { return flag.Wait(clock, absl::Seconds(1)); });
  ASSERT_TRUE(clock.AwaitWaiters(1, kRealTimeout));
  EXPECT_EQ(clock.PendingDeadlines(), std::vector<absl::Time>{start + absl::Seconds(1)});

  clock.Advance(absl::Milliseconds(999));
  // Advance has re-evaluated the waiter's condition under its mutex: still waiting.
  EXPECT_FALSE(Ready(woke, absl::ZeroDuration()));
  EXPECT_TRUE(clock.AwaitWaiters(1, kRealTimeout));

  clock.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(Ready(woke));
  EXPECT_FALSE(woke.get()) << "timed out, the flag was never set";
}

TEST(FakeClockTest, AdvancingByAComputedWaitReachesItsDeadline) {
  FakeClock clock;
  // A jittered wait is rarely whole nanoseconds (absl::Duration resolves a quarter).
  const absl::Duration wait = absl::Milliseconds(100) * 0.7371234567;
  Flag flag;
  std::future<bool> woke = std::async(std::launch::async, [&] { return flag.Wait(clock, wait); });
  ASSERT_TRUE(clock.AwaitWaiters(1, kRealTimeout));
  clock.Advance(wait);
  ASSERT_TRUE(Ready(woke));
  EXPECT_FALSE(woke.get());
}

TEST(FakeClockTest, NonPositiveTimeoutOnlyEvaluatesTheCondition) {
  FakeClock clock;
  Flag flag;
  EXPECT_FALSE(flag.Wait(clock, absl::ZeroDuration()));
  EXPECT_FALSE(flag.Wait(clock, -absl::Seconds(1)));
  flag.Set();
  EXPECT_TRUE(flag.Wait(clock, absl::ZeroDuration()));
  EXPECT_TRUE(clock.PendingDeadlines().empty());
}

TEST(FakeClockTest, AdvanceWakesOnlyTheWaitersWhoseDeadlinePassed) {
  FakeClock clock;
  const absl::Time start = clock.MonotonicNow();
  Flag short_flag, long_flag;
  std::future<bool> short_wait =
      std::async(std::launch::async, [&] { return short_flag.Wait(clock, absl::Seconds(1)); });
  std::future<bool> long_wait = std::async(std::launch::async, [&] { return long_flag.Wait(clock, absl::Seconds(5)); });
  ASSERT_TRUE(clock.AwaitWaiters(2, kRealTimeout));
  EXPECT_EQ(clock.PendingDeadlines(), (std::vector<absl::Time>{start + absl::Seconds(1), start + absl::Seconds(5)}));

  clock.Advance(absl::Seconds(2));
  ASSERT_TRUE(Ready(short_wait));
  EXPECT_FALSE(short_wait.get());
  // The long waiter still waits on a deadline in the future, and only it.
  ASSERT_TRUE(clock.AwaitDeadlines(
      [&](const std::vector<absl::Time>& d) { return d == std::vector<absl::Time>{start + absl::Seconds(5)}; },
      kRealTimeout));
  EXPECT_FALSE(Ready(long_wait, absl::ZeroDuration()));

  long_flag.Set();
  ASSERT_TRUE(Ready(long_wait));
  EXPECT_TRUE(long_wait.get());
}

TEST(FakeClockTest, InfiniteDeadlineWaitsForTheConditionOnly) {
  FakeClock clock;
  Flag flag;
  std::future<bool> woke = std::async(std::launch::async, [&] {
    MutexLock lock(&flag.mu);
    return clock.AwaitWithDeadline(&flag.mu, Condition(&flag.set), absl::InfiniteFuture());
  });
  ASSERT_TRUE(clock.AwaitWaiters(1, kRealTimeout));
  clock.Advance(absl::Hours(24 * 365));
  EXPECT_FALSE(Ready(woke, absl::ZeroDuration()));
  flag.Set();
  ASSERT_TRUE(Ready(woke));
  EXPECT_TRUE(woke.get());
}

TEST(FakeClockTest, SleepUntilReturnsOnceTimeReachesTheDeadline) {
  FakeClock clock;
  const absl::Time deadline = clock.MonotonicNow() + absl::Minutes(1);
  std::future<void> slept = std::async(std::launch::async, [&] { clock.SleepUntil(deadline); });
  ASSERT_TRUE(clock.AwaitDeadlines([&](const std::vector<absl::Time>& d) { return d.size() == 1 && d[0] == deadline; },
                                   kRealTimeout));
  clock.Advance(absl::Minutes(1));
  EXPECT_EQ(slept.wait_for(absl::ToChronoNanoseconds(kRealTimeout)), std::future_status::ready);
}

TEST(FakeClockTest, AwaitWaitersGivesUpAfterTheRealTimeout) {
  FakeClock clock;
  EXPECT_FALSE(clock.AwaitWaiters(1, absl::Milliseconds(10)));
  EXPECT_TRUE(clock.AwaitWaiters(0, absl::ZeroDuration()));
}

// Waiters come and go (each on a mutex that dies with its wait) while another thread
// advances: no waiter misses its deadline and Advance never touches a finished wait
// (ThreadSanitizer and AddressSanitizer builds check the latter).
TEST(FakeClockTest, AdvanceRacesWithWaitersThatComeAndGo) {
  FakeClock clock;
  constexpr int kThreads = 4;
  constexpr int kWaitsPerThread = 200;
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kWaitsPerThread; ++i) {
        Flag flag;  // Destroyed right after the wait.
        EXPECT_FALSE(flag.Wait(clock, absl::Microseconds(1)));
      }
      ++finished;
    });
  }
  const SystemClock& real = *SystemClock::Get();
  const absl::Time real_deadline = real.MonotonicNow() + kRealTimeout;
  while (finished.load() < kThreads && real.MonotonicNow() < real_deadline) clock.Advance(absl::Microseconds(1));
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(finished.load(), kThreads);
}

TEST(SystemClockTest, AwaitTimesOutInRealTime) {
  const SystemClock& clock = *SystemClock::Get();
  Flag flag;
  EXPECT_FALSE(flag.Wait(clock, absl::Milliseconds(5)));
  flag.Set();
  EXPECT_TRUE(flag.Wait(clock, absl::Hours(1)));
  MutexLock lock(&flag.mu);
  EXPECT_TRUE(clock.AwaitWithDeadline(&flag.mu, Condition(&flag.set), absl::InfiniteFuture()));
}

}  // namespace
}  // namespace switchboard
