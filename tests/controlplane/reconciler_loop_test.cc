// The started Reconciler loop (Start / Notify / Stop) on a fake clock. The test learns
// where the loop waits from the clock's pending deadlines, so it advances exactly past
// them and never sleeps. The passes themselves are tested in reconciler_test.cc.
#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

#include "controlplane/reconciler.h"
#include "gtest/gtest.h"
#include "tests/controlplane/test_util.h"

namespace switchboard::controlplane {
namespace {

using ::switchboard::testing::MakeEndpointReport;
using ::switchboard::testing::MakeHello;
using ::switchboard::testing::MakeReport;

constexpr absl::Duration kRealTimeout = absl::Seconds(30);  // Bounds a wait for the loop thread.

class ReconcilerLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_LT(options_.coalesce, options_.tick);
    reconciler_ = std::make_unique<Reconciler>(&fleet_, &store_, /*history=*/nullptr, &clock_, options_);
  }

  // Blocks (in real time, bounded) until the loop waits on the clock until `deadline`.
  bool LoopWaitsUntil(absl::Time deadline) {
    return clock_.AwaitDeadlines(
        [deadline](const std::vector<absl::Time>& d) { return std::find(d.begin(), d.end(), deadline) != d.end(); },
        kRealTimeout);
  }

  // Starts the loop, waits until it waits for its first tick, then connects node n1 with
  // endpoint a:1 of pool m and applies its first report (no pass yet: nothing notified).
  void StartWithOneReportedEndpoint() {
    reconciler_->Start();
    ASSERT_TRUE(LoopWaitsUntil(start_ + options_.tick));
    ASSERT_TRUE(fleet_.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
    ASSERT_TRUE(
        fleet_.ApplyReport(1, "n1", MakeReport(1, {MakeEndpointReport("a:1", "m", 4, 0)}), clock_.MonotonicNow()).ok());
  }

  FakeClock clock_;
  const absl::Time start_ = clock_.MonotonicNow();
  FleetState fleet_;
  SnapshotStore store_;
  ReconcilerOptions options_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST_F(ReconcilerLoopTest, RunsAPassEveryTick) {
  reconciler_->Start();
  ASSERT_TRUE(LoopWaitsUntil(start_ + options_.tick));
  EXPECT_EQ(reconciler_->passes(), 0u);

  clock_.Advance(options_.tick);
  // The loop waits for the next tick only after the pass.
  ASSERT_TRUE(LoopWaitsUntil(start_ + 2 * options_.tick));
  EXPECT_EQ(reconciler_->passes(), 1u);

  clock_.Advance(options_.tick);
  ASSERT_TRUE(LoopWaitsUntil(start_ + 3 * options_.tick));
  EXPECT_EQ(reconciler_->passes(), 2u);
}

TEST_F(ReconcilerLoopTest, NotifyRunsOnePassAfterTheCoalesceDelay) {
  ASSERT_NO_FATAL_FAILURE(StartWithOneReportedEndpoint());

  reconciler_->Notify();
  reconciler_->Notify();  // A burst costs one pass.
  // Woken before the tick, the loop lets the burst settle for `coalesce`.
  ASSERT_TRUE(LoopWaitsUntil(start_ + options_.coalesce));
  EXPECT_EQ(reconciler_->passes(), 0u);
  EXPECT_EQ(store_.Get("m"), nullptr);

  clock_.Advance(options_.coalesce);
  ASSERT_TRUE(LoopWaitsUntil(start_ + options_.coalesce + options_.tick));
  EXPECT_EQ(reconciler_->passes(), 1u);
  std::shared_ptr<const Snapshot> snap = store_.Get("m");
  ASSERT_NE(snap, nullptr);
  ASSERT_EQ(snap->assignment.endpoints_size(), 1);
  EXPECT_GT(snap->assignment.endpoints(0).weight(), 0u);
}

// After a pass that took T, changes settle for max(coalesce, T x (1 - max_duty) /
// max_duty): passes take at most max_duty of the reconciler's time.
TEST(SettleDelayTest, StretchesTheCoalesceDelayAfterLongPasses) {
  const absl::Duration coalesce = absl::Milliseconds(50);
  const absl::Duration now = absl::ZeroDuration();  // The pass just ended.
  EXPECT_EQ(SettleDelay(coalesce, absl::ZeroDuration(), 0.1, now), coalesce);
  EXPECT_EQ(SettleDelay(coalesce, absl::Milliseconds(2), 0.1, now), coalesce) << "18 ms is shorter";
  EXPECT_EQ(SettleDelay(coalesce, absl::Milliseconds(20), 0.1, now), absl::Milliseconds(180));
  EXPECT_EQ(SettleDelay(coalesce, absl::Milliseconds(20), 0.5, now), coalesce);
  EXPECT_EQ(SettleDelay(coalesce, absl::Milliseconds(100), 0.5, now), absl::Milliseconds(100));
  EXPECT_EQ(SettleDelay(coalesce, absl::Seconds(1), 1.0, now), coalesce) << "1: no bound";
  EXPECT_EQ(SettleDelay(absl::ZeroDuration(), absl::Milliseconds(10), 0.2, now), absl::Milliseconds(40));
  // Time already spent idle since the pass counts toward its share.
  EXPECT_EQ(SettleDelay(coalesce, absl::Milliseconds(20), 0.1, absl::Milliseconds(100)), absl::Milliseconds(80));
  EXPECT_EQ(SettleDelay(coalesce, absl::Milliseconds(20), 0.1, absl::Seconds(5)), coalesce);
}

// The loop measures its passes' CPU time: a pass whose decisions take 20 ms (read from
// an injected CPU clock that moves 20 ms per reading: one at the start, one before
// publishing) makes the next change wait 180 ms with the default max_duty of 0.1.
TEST_F(ReconcilerLoopTest, ALongPassStretchesTheNextSettleDelay) {
  ASSERT_DOUBLE_EQ(options_.max_duty, 0.1);
  const absl::Duration pass_time = absl::Milliseconds(20);
  auto cpu = std::make_shared<std::atomic<int64_t>>(0);
  options_.thread_cpu_time = [cpu, pass_time] { return cpu->fetch_add(1) * pass_time; };
  reconciler_ = std::make_unique<Reconciler>(&fleet_, &store_, /*history=*/nullptr, &clock_, options_);
  ASSERT_NO_FATAL_FAILURE(StartWithOneReportedEndpoint());
  reconciler_->Notify();
  ASSERT_TRUE(LoopWaitsUntil(start_ + options_.coalesce)) << "no pass measured yet: the plain delay";

  clock_.Advance(options_.coalesce);
  const absl::Time after_pass = start_ + options_.coalesce;
  ASSERT_TRUE(LoopWaitsUntil(after_pass + options_.tick));
  EXPECT_EQ(reconciler_->passes(), 1u);

  ASSERT_TRUE(
      fleet_.ApplyReport(1, "n1", MakeReport(2, {MakeEndpointReport("a:1", "m", 4, 2)}), clock_.MonotonicNow()).ok());
  reconciler_->Notify();
  ASSERT_TRUE(LoopWaitsUntil(after_pass + absl::Milliseconds(180)));
  EXPECT_EQ(reconciler_->passes(), 1u);
  clock_.Advance(absl::Milliseconds(180));
  ASSERT_TRUE(LoopWaitsUntil(after_pass + absl::Milliseconds(180) + options_.tick));
  EXPECT_EQ(reconciler_->passes(), 2u);
}

TEST_F(ReconcilerLoopTest, StopEndsTheLoopWhileItWaits) {
  reconciler_->Start();
  ASSERT_TRUE(clock_.AwaitWaiters(1, kRealTimeout));
  reconciler_->Stop();  // Returns once the loop thread has ended.
  EXPECT_TRUE(clock_.PendingDeadlines().empty());
  EXPECT_EQ(reconciler_->passes(), 0u);
}

}  // namespace
}  // namespace switchboard::controlplane
