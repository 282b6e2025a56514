#include "agent/reporter/reporter.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/agent/fake_control_plane.h"

namespace switchboard::agent {
namespace {

using ::switchboard::testing::ClosedPort;
using ::switchboard::testing::FakeControlPlane;

// Bounds how long a test waits for another thread (a failure, not a way to pass time).
constexpr absl::Duration kRealTimeout = absl::Seconds(30);

std::shared_ptr<const v1::Report> MakeReport(uint64_t sequence) {
  auto report = std::make_shared<v1::Report>();
  report->set_sequence(sequence);
  return report;
}

class ReporterTest : public ::testing::Test {
 protected:
  ReporterTest() {
    options_.initial_backoff = absl::Milliseconds(100);
    options_.max_backoff = absl::Seconds(1);
    options_.seed = 42;
  }

  std::unique_ptr<Reporter> StartReporter(const std::string& target, const std::string& node_id = "n1") {
    ReporterOptions options = options_;
    options.target = target;
    auto reporter = std::make_unique<Reporter>(options, &clock_, [node_id] {
      v1::Hello hello;
      hello.set_node_id(node_id);
      return hello;
    });
    reporter->Start();
    return reporter;
  }

  // Blocks until a reporter waits on the clock (its backoff) and returns how long it
  // waits. The clock stands still meanwhile, so this is exactly the wait it chose.
  absl::Duration NextWait() {
    if (!clock_.AwaitWaiters(1, kRealTimeout)) {
      ADD_FAILURE() << "the reporter never waited on the clock";
      return absl::ZeroDuration();
    }
    const absl::Time now = clock_.MonotonicNow();
    for (absl::Time deadline : clock_.PendingDeadlines()) {
      if (deadline > now) return deadline - now;
    }
    ADD_FAILURE() << "no pending wait";
    return absl::ZeroDuration();
  }

  FakeClock clock_;
  ReporterOptions options_;
};

TEST_F(ReporterTest, SendsHelloOnEveryConnectThenTheNewestReport) {
  auto cp = FakeControlPlane::Start();
  ASSERT_NE(cp, nullptr);
  auto reporter = StartReporter(cp->target());
  ASSERT_TRUE(cp->AwaitHellos(1, kRealTimeout));
  EXPECT_EQ(cp->hellos()[0].node_id(), "n1");

  reporter->Publish(MakeReport(1));
  ASSERT_TRUE(cp->AwaitReport(1, kRealTimeout));
  EXPECT_TRUE(reporter->WaitForAck(1, absl::Seconds(10)));
  EXPECT_EQ(reporter->last_acked_sequence(), 1u);
  EXPECT_TRUE(reporter->connected());

  // The control plane drops the stream: the reporter waits its backoff on the clock and
  // reconnects only when the clock says so.
  cp->EndStreams();
  const absl::Duration wait = NextWait();
  EXPECT_GE(wait, options_.initial_backoff / 2);
  EXPECT_LE(wait, options_.initial_backoff);
  EXPECT_FALSE(reporter->connected());
  EXPECT_EQ(cp->hellos().size(), 1u);
  clock_.Advance(wait);
  ASSERT_TRUE(cp->AwaitHellos(2, kRealTimeout));

  reporter->Publish(MakeReport(2));
  ASSERT_TRUE(cp->AwaitReport(2, kRealTimeout));
  EXPECT_TRUE(reporter->WaitForAck(2, absl::Seconds(10)));
  EXPECT_EQ(cp->streams_without_hello(), 0);
  reporter->Stop();
}

TEST_F(ReporterTest, BackoffDoublesUpToTheCapWithJitter) {
  auto cp = FakeControlPlane::Start();
  ASSERT_NE(cp, nullptr);
  auto reporter = StartReporter(cp->target());
  ASSERT_TRUE(cp->AwaitHellos(1, kRealTimeout));
  // The control plane goes away: the stream ends and every attempt is refused.
  cp->set_refuse(true);
  cp->EndStreams();

  bool jittered = false;
  int attempts = 0;
  for (int ms : {100, 200, 400, 800, 1000, 1000, 1000}) {
    const absl::Duration backoff = absl::Milliseconds(ms);
    // Waiting again means the previous attempt is over: exactly one per advance.
    const absl::Duration wait = NextWait();
    EXPECT_EQ(cp->refused_streams(), attempts);
    EXPECT_GE(wait, backoff / 2) << "backoff " << ms << "ms";
    EXPECT_LE(wait, backoff) << "backoff " << ms << "ms";
    jittered |= wait != backoff;
    clock_.Advance(wait);  // The next attempt runs now, and is refused.
    ++attempts;
  }
  EXPECT_TRUE(jittered);
  const absl::Duration wait = NextWait();
  EXPECT_EQ(cp->refused_streams(), attempts);
  EXPECT_EQ(cp->hellos().size(), 1u);

  // Back: the next attempt the clock allows rejoins, with a Hello first.
  cp->set_refuse(false);
  clock_.Advance(wait);
  ASSERT_TRUE(cp->AwaitHellos(2, kRealTimeout));
  EXPECT_EQ(cp->streams_without_hello(), 0);
  reporter->Stop();
  EXPECT_TRUE(clock_.PendingDeadlines().empty());
}

TEST_F(ReporterTest, AnUnreachableControlPlaneIsRetriedWithBackoff) {
  ClosedPort nothing_listens;
  ASSERT_NE(nothing_listens.port(), 0);
  auto reporter = StartReporter(nothing_listens.target());
  for (int ms : {100, 200, 400}) {
    const absl::Duration wait = NextWait();
    EXPECT_GE(wait, absl::Milliseconds(ms) / 2);
    EXPECT_LE(wait, absl::Milliseconds(ms));
    clock_.Advance(wait);
  }
  EXPECT_FALSE(reporter->connected());
  reporter->Stop();
}

TEST_F(ReporterTest, AStreamThatStayedUpStartsTheBackoffOver) {
  auto cp = FakeControlPlane::Start();
  ASSERT_NE(cp, nullptr);
  auto reporter = StartReporter(cp->target());
  ASSERT_TRUE(cp->AwaitHellos(1, kRealTimeout));

  cp->EndStreams();
  absl::Duration wait = NextWait();
  EXPECT_LE(wait, options_.initial_backoff);
  clock_.Advance(wait);
  ASSERT_TRUE(cp->AwaitHellos(2, kRealTimeout));

  cp->EndStreams();  // A stream that lasted no time: the backoff keeps growing.
  wait = NextWait();
  EXPECT_GE(wait, options_.initial_backoff);
  EXPECT_LE(wait, 2 * options_.initial_backoff);
  clock_.Advance(wait);
  ASSERT_TRUE(cp->AwaitHellos(3, kRealTimeout));

  clock_.Advance(options_.healthy_stream);  // Up that long: healthy.
  cp->EndStreams();
  wait = NextWait();
  EXPECT_GE(wait, options_.initial_backoff / 2);
  EXPECT_LE(wait, options_.initial_backoff);
  reporter->Stop();
}

TEST_F(ReporterTest, ResendsTheNewestReportAfterRejoining) {
  auto cp = FakeControlPlane::Start();
  ASSERT_NE(cp, nullptr);
  auto reporter = StartReporter(cp->target());
  ASSERT_TRUE(cp->AwaitHellos(1, kRealTimeout));
  reporter->Publish(MakeReport(7));
  ASSERT_TRUE(cp->AwaitReport(7, kRealTimeout));

  cp->set_refuse(true);
  cp->EndStreams();
  clock_.Advance(NextWait());
  const absl::Duration wait = NextWait();  // The attempt above was refused.
  EXPECT_EQ(cp->refused_streams(), 1);
  cp->set_refuse(false);
  clock_.Advance(wait);
  ASSERT_TRUE(cp->AwaitHellos(2, kRealTimeout));
  // Nothing newer was published: the control plane gets report 7 again, after the Hello.
  ASSERT_TRUE(cp->AwaitReportCount(2, kRealTimeout));
  const std::vector<v1::Report> reports = cp->reports();
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[1].sequence(), 7u);
  EXPECT_EQ(cp->streams_without_hello(), 0);
  reporter->Stop();
}

TEST_F(ReporterTest, TwoControlPlanesAreReportedToIndependently) {
  auto cp1 = FakeControlPlane::Start();
  auto cp2 = FakeControlPlane::Start();
  ASSERT_NE(cp1, nullptr);
  ASSERT_NE(cp2, nullptr);
  auto r1 = StartReporter(cp1->target());
  auto r2 = StartReporter(cp2->target());
  ASSERT_TRUE(cp1->AwaitHellos(1, kRealTimeout));
  ASSERT_TRUE(cp2->AwaitHellos(1, kRealTimeout));
  auto report = MakeReport(1);
  r1->Publish(report);
  r2->Publish(report);
  ASSERT_TRUE(cp1->AwaitReport(1, kRealTimeout));
  ASSERT_TRUE(cp2->AwaitReport(1, kRealTimeout));

  // One control plane drops the agent; the other keeps receiving while it backs off.
  cp1->EndStreams();
  const absl::Duration wait = NextWait();
  report = MakeReport(2);
  r1->Publish(report);
  r2->Publish(report);
  ASSERT_TRUE(cp2->AwaitReport(2, kRealTimeout));
  EXPECT_EQ(cp1->reports().back().sequence(), 1u);

  clock_.Advance(wait);
  ASSERT_TRUE(cp1->AwaitHellos(2, kRealTimeout));
  ASSERT_TRUE(cp1->AwaitReport(2, kRealTimeout));
  EXPECT_EQ(cp2->hellos().size(), 1u);
  r1->Stop();
  r2->Stop();
}

TEST_F(ReporterTest, StopEndsTheBackoffWait) {
  ClosedPort nothing_listens;
  ASSERT_NE(nothing_listens.port(), 0);
  auto reporter = StartReporter(nothing_listens.target());
  (void)NextWait();
  reporter->Stop();  // Returns once the reporter's thread has ended.
  EXPECT_TRUE(clock_.PendingDeadlines().empty());
  EXPECT_FALSE(reporter->connected());
}

TEST_F(ReporterTest, LeaveSaysGoodbyeAndReconnectsNoMore) {
  auto cp = FakeControlPlane::Start();
  ASSERT_NE(cp, nullptr);
  auto reporter = StartReporter(cp->target());
  ASSERT_TRUE(cp->AwaitHellos(1, kRealTimeout));
  reporter->Publish(MakeReport(1));
  ASSERT_TRUE(cp->AwaitReport(1, kRealTimeout));
  EXPECT_TRUE(reporter->Leave("drained: every endpoint is idle", absl::Seconds(2)));
  EXPECT_EQ(cp->goodbyes(), std::vector<std::string>{"drained: every endpoint is idle"});
  ASSERT_TRUE(cp->AwaitOpenStreams(0, kRealTimeout));
  clock_.Advance(absl::Seconds(10));  // Past any backoff: a reporter that reconnected would have.
  reporter->Stop();
  EXPECT_EQ(cp->hellos().size(), 1u) << "a reporter that left does not come back";
}

TEST_F(ReporterTest, LeaveWithoutAStreamReturnsAtOnce) {
  ClosedPort nothing_listens;
  ASSERT_NE(nothing_listens.port(), 0);
  auto reporter = StartReporter(nothing_listens.target());
  (void)NextWait();
  EXPECT_FALSE(reporter->Leave("stopped", absl::Seconds(2)));
  EXPECT_FALSE(reporter->last_error().empty()) << "why the control plane could not be reached";
  reporter->Stop();
}

}  // namespace
}  // namespace switchboard::agent
