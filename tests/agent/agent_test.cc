#include "agent/agent.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/agent/fake_control_plane.h"

namespace switchboard::agent {
namespace {

using ::switchboard::testing::FakeControlPlane;

// Bounds how long a test waits for another thread (a failure, not a way to pass time).
constexpr absl::Duration kRealTimeout = absl::Seconds(30);

// One endpoint with a settable number of busy slots; records when it was polled.
class FakeProbe final : public Probe {
 public:
  explicit FakeProbe(const std::string& address) : Probe(MakeOptions(address)) {}

  v1::Engine engine() const override { return v1::ENGINE_LLAMACPP; }
  v1::EndpointReport Poll(absl::Time now) override {
    MutexLock lock(&mu_);
    polled_at_.push_back(now);
    v1::EndpointReport report;
    report.set_address(options_.address);
    report.set_engine(v1::ENGINE_LLAMACPP);
    report.set_state(v1::ENDPOINT_STATE_READY);
    report.add_models("m");
    report.set_slots_total(4);
    report.set_slots_busy(busy_);
    return report;
  }

  void set_busy(uint32_t busy) {
    MutexLock lock(&mu_);
    busy_ = busy;
  }
  std::vector<absl::Time> polled_at() const {
    MutexLock lock(&mu_);
    return polled_at_;
  }
  // Blocks (in real time, bounded) until polled `n` times.
  bool AwaitPolls(size_t n) const {
    MutexLock lock(&mu_);
    auto polled = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return polled_at_.size() >= n; };
    return SystemClock::Get()->AwaitWithTimeout(&mu_, Condition(&polled), kRealTimeout);
  }

 private:
  static ProbeOptions MakeOptions(const std::string& address) {
    ProbeOptions options;
    options.address = address;
    options.base_url = "http://" + address;
    return options;
  }

  mutable Mutex mu_;
  uint32_t busy_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<absl::Time> polled_at_ ABSL_GUARDED_BY(mu_);
};

class AgentTest : public ::testing::Test {
 protected:
  AgentTest() {
    options_.node_id = "n1";
    options_.report_interval = absl::Seconds(1);
    options_.drain_timeout = absl::Seconds(10);
  }

  // Builds the agent with one FakeProbe and runs Agent::Run on its own thread.
  void StartAgent() {
    auto probe = std::make_unique<FakeProbe>("127.0.0.1:8080");
    probe_ = probe.get();
    std::vector<std::unique_ptr<Probe>> probes;
    probes.push_back(std::move(probe));
    agent_ = std::make_unique<Agent>(options_, std::move(probes), /*gpus=*/nullptr, &clock_);
    run_ = std::async(std::launch::async, [this] { agent_->Run(); });
  }

  bool RunReturned(absl::Duration real_timeout = kRealTimeout) {
    return run_.wait_for(absl::ToChronoNanoseconds(real_timeout)) == std::future_status::ready;
  }

  // Blocks until a thread waits on the clock until `deadline`.
  bool WaitsUntil(absl::Time deadline) {
    return clock_.AwaitDeadlines(
        [deadline](const std::vector<absl::Time>& d) { return std::find(d.begin(), d.end(), deadline) != d.end(); },
        kRealTimeout);
  }

  void TearDown() override {
    if (agent_ == nullptr) return;
    agent_->Stop();
    EXPECT_TRUE(RunReturned());
  }

  FakeClock clock_;
  const absl::Time start_ = clock_.MonotonicNow();
  AgentOptions options_;
  FakeProbe* probe_ = nullptr;  // Owned by agent_.
  std::unique_ptr<Agent> agent_;
  std::future<void> run_;
};

TEST_F(AgentTest, ProbesOnceEveryReportIntervalAsTheClockAdvances) {
  StartAgent();
  // A round to learn the endpoints, the first reported round, then a wait of one interval.
  ASSERT_TRUE(WaitsUntil(start_ + absl::Seconds(1)));
  EXPECT_EQ(probe_->polled_at(), (std::vector<absl::Time>{start_, start_}));

  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(WaitsUntil(start_ + absl::Seconds(2)));
  EXPECT_EQ(probe_->polled_at().size(), 3u);
  EXPECT_EQ(probe_->polled_at().back(), start_ + absl::Seconds(1));

  clock_.Advance(absl::Milliseconds(500));  // Half an interval: no round.
  EXPECT_TRUE(WaitsUntil(start_ + absl::Seconds(2)));
  EXPECT_EQ(probe_->polled_at().size(), 3u);

  clock_.Advance(absl::Milliseconds(500));
  ASSERT_TRUE(WaitsUntil(start_ + absl::Seconds(3)));
  EXPECT_EQ(probe_->polled_at().size(), 4u);
  EXPECT_EQ(probe_->polled_at().back(), start_ + absl::Seconds(2));
  EXPECT_FALSE(RunReturned(absl::ZeroDuration()));
}

TEST_F(AgentTest, StopEndsTheWait) {
  StartAgent();
  ASSERT_TRUE(clock_.AwaitWaiters(1, kRealTimeout));
  agent_->Stop();
  EXPECT_TRUE(RunReturned());
  EXPECT_TRUE(clock_.PendingDeadlines().empty());
}

TEST_F(AgentTest, DrainBeforeExitRunsUntilEveryEndpointIsIdle) {
  StartAgent();
  probe_->set_busy(1);
  ASSERT_TRUE(WaitsUntil(start_ + absl::Seconds(1)));

  agent_->StartDrain(/*exit_when_idle=*/true);
  // A round runs at once (DRAINING is reported without waiting for the interval)...
  ASSERT_TRUE(probe_->AwaitPolls(3));
  // ...but a slot is busy: the agent waits for the next round instead of exiting.
  ASSERT_TRUE(clock_.AwaitWaiters(1, kRealTimeout));
  EXPECT_TRUE(agent_->draining());
  EXPECT_FALSE(RunReturned(absl::ZeroDuration()));

  probe_->set_busy(0);
  clock_.Advance(options_.report_interval);
  EXPECT_TRUE(RunReturned());
  EXPECT_EQ(probe_->polled_at().size(), 4u);
}

TEST_F(AgentTest, DrainBeforeExitGivesUpAtTheDrainTimeout) {
  StartAgent();
  probe_->set_busy(1);
  ASSERT_TRUE(WaitsUntil(start_ + absl::Seconds(1)));
  agent_->StartDrain(/*exit_when_idle=*/true);
  ASSERT_TRUE(probe_->AwaitPolls(3));
  ASSERT_TRUE(clock_.AwaitWaiters(1, kRealTimeout));

  clock_.Advance(options_.drain_timeout - absl::Seconds(1));  // One round, still busy.
  ASSERT_TRUE(probe_->AwaitPolls(4));
  ASSERT_TRUE(clock_.AwaitWaiters(1, kRealTimeout));
  EXPECT_FALSE(RunReturned(absl::ZeroDuration()));

  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(RunReturned());
}

TEST_F(AgentTest, ACleanExitSaysGoodbyeToEveryControlPlaneWithTheReason) {
  auto cp1 = FakeControlPlane::Start();
  auto cp2 = FakeControlPlane::Start();
  ASSERT_NE(cp1, nullptr);
  ASSERT_NE(cp2, nullptr);
  options_.controlplanes = {cp1->target(), cp2->target()};
  StartAgent();
  ASSERT_TRUE(cp1->AwaitReport(2, kRealTimeout));
  ASSERT_TRUE(cp2->AwaitReport(2, kRealTimeout));
  EXPECT_TRUE(cp1->goodbyes().empty());

  agent_->StartDrain(/*exit_when_idle=*/true);  // Idle: the drain ends at once.
  ASSERT_TRUE(RunReturned());
  EXPECT_EQ(agent_->Leave(absl::Seconds(2)), 2);
  for (FakeControlPlane* cp : {cp1.get(), cp2.get()}) {
    EXPECT_EQ(cp->goodbyes(), std::vector<std::string>{"drained: every endpoint is idle"});
  }
}

TEST_F(AgentTest, ReportsToEveryControlPlane) {
  auto cp1 = FakeControlPlane::Start();
  auto cp2 = FakeControlPlane::Start();
  ASSERT_NE(cp1, nullptr);
  ASSERT_NE(cp2, nullptr);
  options_.controlplanes = {cp1->target(), cp2->target()};
  StartAgent();

  for (FakeControlPlane* cp : {cp1.get(), cp2.get()}) {
    ASSERT_TRUE(cp->AwaitHellos(1, kRealTimeout));
    const v1::Hello hello = cp->hellos()[0];
    EXPECT_EQ(hello.node_id(), "n1");
    ASSERT_EQ(hello.endpoints_size(), 1);
    EXPECT_EQ(hello.endpoints(0).address(), "127.0.0.1:8080");
    EXPECT_EQ(hello.endpoints(0).slots_total(), 4u);  // Learned before the first Hello.
    // The first reported round is the second probe round.
    ASSERT_TRUE(cp->AwaitReport(2, kRealTimeout));
  }

  ASSERT_TRUE(WaitsUntil(start_ + absl::Seconds(1)));
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(cp1->AwaitReport(3, kRealTimeout));
  ASSERT_TRUE(cp2->AwaitReport(3, kRealTimeout));

  // Idle and told to drain before exiting: the last report says DRAINING and both
  // control planes acknowledged it before Run returns.
  agent_->StartDrain(/*exit_when_idle=*/true);
  ASSERT_TRUE(RunReturned());
  for (FakeControlPlane* cp : {cp1.get(), cp2.get()}) {
    const v1::Report last = cp->reports().back();
    EXPECT_EQ(last.sequence(), 4u);
    ASSERT_EQ(last.endpoints_size(), 1);
    EXPECT_EQ(last.endpoints(0).state(), v1::ENDPOINT_STATE_DRAINING);
    EXPECT_EQ(cp->hellos().size(), 1u);
    EXPECT_EQ(cp->streams_without_hello(), 0);
  }
}

}  // namespace
}  // namespace switchboard::agent
