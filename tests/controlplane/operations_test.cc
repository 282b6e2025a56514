#include "controlplane/operations.h"

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/history_events.h"
#include "tests/controlplane/test_util.h"

namespace switchboard::controlplane {
namespace {

using ::switchboard::testing::MakeEndpointReport;
using ::switchboard::testing::MakeHello;
using ::switchboard::testing::MakeReport;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class FleetOperationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::path(::testing::TempDir()) / "operations_test.db").string();
    std::filesystem::remove(path_);
    history_ = std::move(HistoryStore::Open(path_).value());
    reconciler_ = std::make_unique<Reconciler>(&fleet_, &store_, history_.get(), &clock_, ReconcilerOptions());
    ops_ = std::make_unique<FleetOperations>(&fleet_, &store_, reconciler_.get(), history_.get(), &clock_,
                                             [this](const std::string& node, const v1::Command& command) {
                                               sent_.push_back(node + (command.has_drain() ? ":drain" : ":undrain"));
                                               return true;
                                             });
    ASSERT_TRUE(fleet_.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
    ASSERT_TRUE(
        fleet_.ApplyReport(1, "n1", MakeReport(1, {MakeEndpointReport("a:1", "m", 4, 1)}), clock_.MonotonicNow()).ok());
    reconciler_->ReconcileOnce();
  }

  std::vector<std::string> EventKinds() { return ::switchboard::testing::RecentEventKinds(history_.get()); }

  std::string path_;
  FakeClock clock_;
  FleetState fleet_;
  SnapshotStore store_;
  std::unique_ptr<HistoryStore> history_;
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<FleetOperations> ops_;
  std::vector<std::string> sent_;
};

TEST_F(FleetOperationsTest, DrainTellsTheAgentAndRecordsAnEvent) {
  absl::StatusOr<bool> notified = ops_->SetDrain("n1", true);
  ASSERT_TRUE(notified.ok()) << notified.status();
  EXPECT_TRUE(*notified);
  EXPECT_TRUE(fleet_.DrainRequested("n1"));
  ASSERT_TRUE(ops_->SetDrain("n1", false).ok());
  EXPECT_THAT(sent_, ElementsAre("n1:drain", "n1:undrain"));
  EXPECT_THAT(EventKinds(), ::testing::IsSupersetOf({"drain_requested", "undrain_requested"}));
}

TEST_F(FleetOperationsTest, UnknownNodeIsNotFoundAndNamesTheKnownOnes) {
  absl::StatusOr<bool> r = ops_->SetDrain("nope", true);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("known nodes: n1"));
  EXPECT_TRUE(sent_.empty());
}

TEST_F(FleetOperationsTest, SetReplicasValidatesAndChangesNothingOnBadInput) {
  EXPECT_EQ(ops_->SetReplicas("other", 3, absl::Minutes(5), "").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ops_->SetReplicas("m", -2, absl::Minutes(5), "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ops_->SetReplicas("m", 3, absl::ZeroDuration(), "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ops_->SetReplicas("m", 3, absl::Hours(24 * 8), "").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(EventKinds(), ::testing::Not(::testing::Contains("manual_replicas")));

  ASSERT_TRUE(ops_->SetReplicas("m", 7, absl::Minutes(5), "load test").ok());
  reconciler_->ReconcileOnce();
  EXPECT_EQ(store_.Get("m")->assignment.desired_replicas(), 7u);
  EXPECT_THAT(store_.Get("m")->autoscale_explanation, HasSubstr("manual override to 7"));
  EXPECT_THAT(EventKinds(), ::testing::Contains("manual_replicas"));
}

TEST(CheckManualReplicasTest, FollowsThePoolsMinimumUnlessForced) {
  auto with_min = [](int32_t min) {
    policy::PoolPolicy pp;
    pp.autoscale = policy::AutoscaleConfig();
    pp.autoscale->min_replicas = min;
    return pp;
  };
  const policy::PoolPolicy off;  // autoscaling off
  struct Case {
    int32_t replicas;
    policy::PoolPolicy pp;
    bool force;
    absl::StatusCode want;
    const char* says;
  };
  const std::vector<Case> cases = {
      {3, with_min(2), false, absl::StatusCode::kOk, ""},
      {2, with_min(2), false, absl::StatusCode::kOk, ""},
      {1, with_min(2), false, absl::StatusCode::kFailedPrecondition, "below pool 'm''s autoscaling.min_replicas of 2"},
      {1, with_min(2), true, absl::StatusCode::kOk, ""},
      {0, with_min(1), false, absl::StatusCode::kFailedPrecondition, "does not allow scaling to zero"},
      {0, with_min(1), true, absl::StatusCode::kOk, ""},
      {0, with_min(0), false, absl::StatusCode::kOk, ""},   // The pool allows scaling to zero.
      {-1, with_min(2), false, absl::StatusCode::kOk, ""},  // Clearing is always allowed.
      {5, off, false, absl::StatusCode::kFailedPrecondition, "autoscaling off"},
      {5, off, true, absl::StatusCode::kFailedPrecondition, "would not apply"},
      {-1, off, false, absl::StatusCode::kOk, ""},
  };
  for (const Case& c : cases) {
    absl::Status s = CheckManualReplicas("m", c.replicas, c.pp, c.force);
    EXPECT_EQ(s.code(), c.want) << c.replicas << " force=" << c.force << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.says)) << c.replicas;
    if (c.want == absl::StatusCode::kFailedPrecondition && c.pp.autoscale) {
      EXPECT_THAT(std::string(s.message()), HasSubstr("--force"));
    }
  }
}

TEST_F(FleetOperationsTest, ScaleBelowTheMinimumIsRefusedUnlessForcedAndRefusalChangesNothing) {
  policy::FleetConfig config = policy::DefaultFleetConfig();
  ASSERT_TRUE(config.defaults.autoscale.has_value());
  config.defaults.autoscale->min_replicas = 2;
  reconciler_->SetConfig(config);
  reconciler_->ReconcileOnce();
  const uint32_t before = store_.Get("m")->assignment.desired_replicas();
  EXPECT_EQ(ops_->SetReplicas("m", 1, absl::Minutes(5), "").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ops_->SetReplicas("m", 0, absl::Minutes(5), "").code(), absl::StatusCode::kFailedPrecondition);
  reconciler_->ReconcileOnce();
  EXPECT_EQ(store_.Get("m")->assignment.desired_replicas(), before);
  EXPECT_THAT(EventKinds(), ::testing::Not(::testing::Contains("manual_replicas")));

  ASSERT_TRUE(ops_->SetReplicas("m", 0, absl::Minutes(5), "maintenance", /*force=*/true).ok());
  reconciler_->ReconcileOnce();
  EXPECT_EQ(store_.Get("m")->assignment.desired_replicas(), 0u);
  history_->Flush();
  absl::StatusOr<std::vector<HistoryEvent>> events = history_->RecentEvents(100);
  ASSERT_TRUE(events.ok()) << events.status();
  std::vector<std::string> manual;
  for (const HistoryEvent& e : *events) {
    if (e.kind == "manual_replicas") manual.push_back(e.detail);
  }
  ASSERT_EQ(manual.size(), 1u);
  EXPECT_THAT(manual[0], HasSubstr("forced below min_replicas 2"));
}

TEST_F(FleetOperationsTest, EventsFilterByPoolWithinTheLimit) {
  history_->RecordEvent({clock_.Now(), "x", "other", "", "", ""});
  for (int i = 0; i < 3; ++i) history_->RecordEvent({clock_.Now(), "y", "m", "", "", ""});
  history_->Flush();
  absl::StatusOr<std::vector<HistoryEvent>> events = ops_->Events("m", 2);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u);
  for (const HistoryEvent& e : *events) EXPECT_EQ(e.pool, "m");

  FleetOperations no_history(&fleet_, &store_, reconciler_.get(), nullptr, &clock_, nullptr);
  EXPECT_EQ(no_history.Events("", 0).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(FleetOperationsTest, HistoryAnswersFromTheSamplesAndRefusesBadQueries) {
  const absl::Time t = absl::FromUnixSeconds(1'800'000'000);
  EndpointSample s;
  s.time = t;
  s.pool = "m";
  s.node_id = "n1";
  s.address = "a:1";
  s.weight = 7;
  history_->RecordEndpointSamples({s});
  history_->Flush();
  HistoryQuery q{"m", "", "", "weight", t - absl::Minutes(1), t + absl::Minutes(1), absl::Minutes(1)};
  absl::StatusOr<std::vector<HistorySeries>> series = ops_->History(q);
  ASSERT_TRUE(series.ok()) << series.status();
  ASSERT_EQ(series->size(), 1u);
  ASSERT_EQ((*series)[0].points.size(), 1u);
  EXPECT_EQ((*series)[0].points[0].value, 7);
  q.metric = "nope";
  EXPECT_EQ(ops_->History(q).status().code(), absl::StatusCode::kInvalidArgument);
  FleetOperations no_history(&fleet_, &store_, reconciler_.get(), nullptr, &clock_, nullptr);
  EXPECT_EQ(no_history.History(q).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(FleetOperationsTest, PoolNotFoundNamesTheKnownPools) {
  EXPECT_TRUE(ops_->Pool("m").ok());
  absl::StatusOr<std::shared_ptr<const Snapshot>> p = ops_->Pool("llama");
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("known pools: m"));
}

TEST_F(FleetOperationsTest, OverridesAndDrainsSurviveARestart) {
  ASSERT_TRUE(ops_->SetReplicas("m", 7, absl::Hours(1), "launch").ok());
  ASSERT_TRUE(ops_->SetReplicas("m2", 2, absl::Hours(1), "").code() == absl::StatusCode::kNotFound);
  ASSERT_TRUE(ops_->SetDrain("n1", true).ok());
  bool durable = false;
  ops_->WhenDurable([&durable](bool saved) { durable = saved; });
  history_->Flush();
  EXPECT_TRUE(durable);
  // The process dies (the history committed what was acknowledged); 10 minutes later a
  // new control plane opens the same file.
  reconciler_.reset();
  history_.reset();
  clock_.Advance(absl::Minutes(10));
  FleetState fleet;
  SnapshotStore store;
  std::unique_ptr<HistoryStore> history = std::move(HistoryStore::Open(path_).value());
  fleet.RestoreDrains(history->DrainedNodes().value());
  Reconciler reconciler(&fleet, &store, history.get(), &clock_, ReconcilerOptions());
  reconciler.Restore();
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  EXPECT_TRUE(fleet.DrainRequested("n1")) << "the drain applies when the node returns";
  ASSERT_TRUE(
      fleet.ApplyReport(1, "n1", MakeReport(2, {MakeEndpointReport("a:1", "m", 4, 1)}), clock_.MonotonicNow()).ok());
  reconciler.ReconcileOnce();
  const auto snap = store.Get("m");
  ASSERT_NE(snap, nullptr);
  EXPECT_FALSE(snap->assignment.stale());
  EXPECT_EQ(snap->assignment.desired_replicas(), 7u) << snap->autoscale_explanation;
  EXPECT_THAT(snap->autoscale_explanation, HasSubstr("manual override to 7 until"));
  EXPECT_EQ(snap->assignment.endpoints(0).state(), v1::ENDPOINT_STATE_DRAINING);

  // Undrained while it is away, and the override ends at its wall-clock expiry.
  fleet.Disconnect(1, "n1", clock_.MonotonicNow());
  FleetOperations ops(&fleet, &store, &reconciler, history.get(), &clock_, nullptr);
  ASSERT_TRUE(ops.SetDrain("n1", false).ok());
  clock_.Advance(absl::Minutes(51));
  ASSERT_TRUE(fleet.Connect(2, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  ASSERT_TRUE(
      fleet.ApplyReport(2, "n1", MakeReport(3, {MakeEndpointReport("a:1", "m", 4, 1)}), clock_.MonotonicNow()).ok());
  reconciler.ReconcileOnce();
  EXPECT_EQ(store.Get("m")->assignment.endpoints(0).state(), v1::ENDPOINT_STATE_READY);
  EXPECT_THAT(store.Get("m")->autoscale_explanation, Not(HasSubstr("manual override")));
  history->Flush();
  EXPECT_TRUE(history->DrainedNodes()->empty());
}

TEST_F(FleetOperationsTest, AnExpiredOverrideIsNotRestored) {
  ASSERT_TRUE(ops_->SetReplicas("m", 7, absl::Minutes(5), "").ok());
  reconciler_.reset();
  history_.reset();
  clock_.Advance(absl::Minutes(6));
  FleetState fleet;
  SnapshotStore store;
  std::unique_ptr<HistoryStore> history = std::move(HistoryStore::Open(path_).value());
  Reconciler reconciler(&fleet, &store, history.get(), &clock_, ReconcilerOptions());
  reconciler.Restore();
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  ASSERT_TRUE(
      fleet.ApplyReport(1, "n1", MakeReport(2, {MakeEndpointReport("a:1", "m", 4, 1)}), clock_.MonotonicNow()).ok());
  reconciler.ReconcileOnce();
  EXPECT_THAT(store.Get("m")->autoscale_explanation, Not(HasSubstr("manual override")));
}

}  // namespace
}  // namespace switchboard::controlplane
