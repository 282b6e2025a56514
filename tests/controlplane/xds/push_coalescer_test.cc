#include "controlplane/xds/push_coalescer.h"

#include <atomic>

#include "gtest/gtest.h"

namespace switchboard::controlplane::xds {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(NextPushTest, QuietAfterTheLastChangeBoundedByTheFirst) {
  const PushCoalescing config{absl::Milliseconds(100), absl::Seconds(1)};
  PushDecision d = NextPush(kT0, kT0, config);
  EXPECT_EQ(d.at, kT0 + absl::Milliseconds(100));
  EXPECT_EQ(d.reason, "quiet");
  d = NextPush(kT0, kT0 + absl::Milliseconds(500), config);
  EXPECT_EQ(d.at, kT0 + absl::Milliseconds(600));
  d = NextPush(kT0, kT0 + absl::Milliseconds(950), config);
  EXPECT_EQ(d.at, kT0 + absl::Seconds(1));
  EXPECT_EQ(d.reason, "bounded");
  // Zero quiet: at once.
  d = NextPush(kT0, kT0 + absl::Milliseconds(5), PushCoalescing{absl::ZeroDuration(), absl::Seconds(1)});
  EXPECT_EQ(d.at, kT0 + absl::Milliseconds(5));
}

class PushCoalescerTest : public ::testing::Test {
 protected:
  // Waits (real time, bounded) until the coalescer has pushed `n` times in all.
  bool AwaitPushes(const PushCoalescer& c, int64_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    Mutex mu;
    MutexLock lock(&mu);
    auto reached = [&] { return c.pushes() >= n; };
    while (!reached() && absl::Now() < deadline) {
      mu.AwaitWithTimeout(Condition(&reached), absl::Milliseconds(1));
    }
    return reached();
  }
  // Waits until the coalescer's thread waits for `deadline`.
  bool AwaitsUntil(absl::Time deadline) {
    return clock_.AwaitDeadlines([&](const std::vector<absl::Time>& d) { return d.size() == 1 && d[0] == deadline; },
                                 absl::Seconds(10));
  }

  FakeClock clock_{kT0};
  std::atomic<int> pushed_{0};
};

TEST_F(PushCoalescerTest, ABurstBecomesOnePush) {
  PushCoalescer c(&clock_, {absl::Milliseconds(100), absl::Seconds(1)}, [this] { ++pushed_; });
  for (int i = 0; i < 5; ++i) {
    c.Notify();
    clock_.Advance(absl::Milliseconds(20));
  }
  // The last change came at +80 ms: the push is due at +180 ms, not before.
  ASSERT_TRUE(AwaitsUntil(kT0 + absl::Milliseconds(180)));
  EXPECT_EQ(pushed_.load(), 0);
  clock_.Advance(absl::Milliseconds(80));
  ASSERT_TRUE(AwaitPushes(c, 1));
  EXPECT_EQ(pushed_.load(), 1);
  // Quiet afterwards: no more pushes.
  clock_.Advance(absl::Seconds(5));
  EXPECT_EQ(c.pushes(), 1);
}

TEST_F(PushCoalescerTest, ChangesThatNeverStopArePushedWithinTheBound) {
  PushCoalescer c(&clock_, {absl::Milliseconds(100), absl::Milliseconds(300)}, [this] { ++pushed_; });
  // A change every 50 ms: never 100 ms of quiet, yet a push at +300 ms and every 300 ms.
  for (int i = 0; i < 12; ++i) {
    c.Notify();
    clock_.Advance(absl::Milliseconds(50));
    if (i == 5) {
      ASSERT_TRUE(AwaitPushes(c, 1));  // At +300 ms.
    }
  }
  ASSERT_TRUE(AwaitPushes(c, 2));
  EXPECT_LE(c.pushes(), 3);
}

TEST_F(PushCoalescerTest, ZeroQuietPushesAtOnce) {
  PushCoalescer c(&clock_, {absl::ZeroDuration(), absl::ZeroDuration()}, [this] { ++pushed_; });
  c.Notify();
  ASSERT_TRUE(AwaitPushes(c, 1));
}

}  // namespace
}  // namespace switchboard::controlplane::xds
