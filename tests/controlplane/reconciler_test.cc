#include "controlplane/reconciler.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "tests/controlplane/history_events.h"
#include "tests/controlplane/test_util.h"

namespace switchboard::controlplane {
namespace {

using ::switchboard::testing::MakeEndpointReport;
using ::switchboard::testing::MakeHello;
using ::switchboard::testing::MakeReport;

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::path(::testing::TempDir()) / "reconciler_test.db").string();
    std::filesystem::remove(path_);
    history_ = std::move(HistoryStore::Open(path_).value());
    options_.config.defaults.policy.circuit.staleness_bound = absl::Seconds(3);
    options_.forget_after = absl::Seconds(60);
    reconciler_ = std::make_unique<Reconciler>(&fleet_, &store_, history_.get(), &clock_, options_);
  }

  void Report(uint64_t stream, const std::string& node, uint64_t seq, const std::string& addr, uint32_t busy) {
    ASSERT_TRUE(
        fleet_
            .ApplyReport(stream, node, MakeReport(seq, {MakeEndpointReport(addr, "m", 4, busy)}), clock_.MonotonicNow())
            .ok());
  }

  uint32_t Weight(const std::string& addr) {
    for (const auto& ep : store_.Get("m")->assignment.endpoints()) {
      if (ep.address() == addr) return ep.weight();
    }
    ADD_FAILURE() << "no endpoint " << addr;
    return 0;
  }

  std::vector<std::string> EventKinds() { return ::switchboard::testing::RecentEventKinds(history_.get()); }

  std::string path_;
  FakeClock clock_;
  FleetState fleet_;
  SnapshotStore store_;
  std::unique_ptr<HistoryStore> history_;
  ReconcilerOptions options_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST_F(ReconcilerTest, PublishesOnlyWhenContentChanges) {
  ASSERT_TRUE(fleet_.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  Report(1, "n1", 1, "a:1", 0);
  EXPECT_EQ(reconciler_->ReconcileOnce(), 1);
  const std::string v1 = store_.Get("m")->version;
  clock_.Advance(absl::Seconds(1));
  Report(1, "n1", 2, "a:1", 0);
  EXPECT_EQ(reconciler_->ReconcileOnce(), 0) << "same content, no new version";
  EXPECT_EQ(store_.Get("m")->version, v1);
  Report(1, "n1", 3, "a:1", 2);
  EXPECT_EQ(reconciler_->ReconcileOnce(), 1);
  EXPECT_NE(store_.Get("m")->version, v1);
}

TEST_F(ReconcilerTest, ChangedPassRebuildsOnlyThePoolsWhoseReportsChanged) {
  ASSERT_TRUE(fleet_.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  ASSERT_TRUE(fleet_.Connect(2, MakeHello("n2", {"b:1"}), clock_.MonotonicNow()).ok());
  auto report = [&](uint64_t stream, const std::string& node, uint64_t seq, const std::string& addr,
                    const std::string& pool, uint32_t busy) {
    ASSERT_TRUE(fleet_
                    .ApplyReport(stream, node, MakeReport(seq, {MakeEndpointReport(addr, pool, 4, busy)}),
                                 clock_.MonotonicNow())
                    .ok());
  };
  report(1, "n1", 1, "a:1", "pa", 0);
  report(2, "n2", 1, "b:1", "pb", 0);
  EXPECT_EQ(reconciler_->ReconcileChanged(), 2) << "nodes connected: a whole pass";
  const std::shared_ptr<const Snapshot> a1 = store_.Get("pa"), b1 = store_.Get("pb");
  ASSERT_TRUE(a1 && b1);

  report(1, "n1", 2, "a:1", "pa", 3);
  EXPECT_EQ(reconciler_->ReconcileChanged(), 1);
  EXPECT_NE(store_.Get("pa")->version, a1->version);
  EXPECT_EQ(store_.Get("pb"), b1) << "pool pb was neither rebuilt nor refreshed";

  report(1, "n1", 3, "a:1", "pa", 3);  // The same values again: nothing changed.
  EXPECT_EQ(reconciler_->ReconcileChanged(), 0);
  EXPECT_EQ(store_.Get("pb"), b1);

  // An endpoint moving from pool pa to pb changes both.
  report(1, "n1", 4, "a:1", "pb", 3);
  EXPECT_EQ(reconciler_->ReconcileChanged(), 2);
  EXPECT_EQ(store_.Get("pa")->assignment.endpoints_size(), 0);
  EXPECT_EQ(store_.Get("pb")->assignment.endpoints_size(), 2);

  // A disconnect may touch any pool: a whole pass (every pool refreshed).
  const std::shared_ptr<const Snapshot> b2 = store_.Get("pb");
  fleet_.Disconnect(2, "n2", clock_.MonotonicNow());
  reconciler_->ReconcileChanged();
  EXPECT_NE(store_.Get("pb"), b2);
}

TEST_F(ReconcilerTest, SilentNodeGoesStaleThenComesBack) {
  ASSERT_TRUE(fleet_.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  ASSERT_TRUE(fleet_.Connect(2, MakeHello("n2", {"b:1"}), clock_.MonotonicNow()).ok());
  Report(1, "n1", 1, "a:1", 0);
  Report(2, "n2", 1, "b:1", 0);
  reconciler_->ReconcileOnce();
  EXPECT_GT(Weight("a:1"), 0u);
  EXPECT_GT(Weight("b:1"), 0u);

  // n2 goes silent; n1 keeps reporting. Up to the bound nothing changes.
  for (int i = 2; i <= 4; ++i) {
    clock_.Advance(absl::Seconds(1));
    Report(1, "n1", i, "a:1", 0);
    reconciler_->ReconcileOnce();
  }
  EXPECT_GT(Weight("b:1"), 0u) << "3 s silent is within the bound";
  clock_.Advance(absl::Milliseconds(500));
  reconciler_->ReconcileOnce();
  EXPECT_EQ(Weight("b:1"), 0u) << "past the bound: excluded, not idle";
  EXPECT_EQ(store_.Get("m")->assignment.endpoints(1).circuit(), v1::CIRCUIT_STATE_OPEN);
  EXPECT_GT(Weight("a:1"), 0u);

  // Back: going silent counted as an ejection, which it serves out (30 s from when it
  // went stale), and then it returns through a trial, not straight to CLOSED.
  Report(2, "n2", 2, "b:1", 0);
  reconciler_->ReconcileOnce();
  EXPECT_EQ(Weight("b:1"), 0u);
  EXPECT_EQ(store_.Get("m")->Detail(1).reason(), "ejected (stale: no report for 3.5s (bound 3s)); half-open in 30s");
  for (int i = 5; i <= 34; ++i) {
    clock_.Advance(absl::Seconds(1));
    Report(1, "n1", i, "a:1", 0);
    Report(2, "n2", i - 2, "b:1", 0);
    reconciler_->ReconcileOnce();
  }
  EXPECT_GT(Weight("b:1"), 0u);
  EXPECT_EQ(store_.Get("m")->assignment.endpoints(1).circuit(), v1::CIRCUIT_STATE_HALF_OPEN);
  EXPECT_EQ((std::vector<std::string>{"endpoint_joined", "endpoint_joined", "circuit_changed", "circuit_changed"}),
            EventKinds());
}

TEST_F(ReconcilerTest, ForgottenNodeLeavesAndEmptyPoolIsPublished) {
  ASSERT_TRUE(fleet_.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  Report(1, "n1", 1, "a:1", 0);
  reconciler_->ReconcileOnce();
  fleet_.Disconnect(1, "n1", clock_.MonotonicNow());
  clock_.Advance(absl::Seconds(61));
  reconciler_->ReconcileOnce();
  ASSERT_NE(store_.Get("m"), nullptr);
  EXPECT_EQ(store_.Get("m")->assignment.endpoints_size(), 0);
  EXPECT_EQ(EventKinds().back(), "endpoint_left");
}

}  // namespace
}  // namespace switchboard::controlplane

namespace switchboard::controlplane {
namespace {

using ::switchboard::testing::MakeEndpointReport;
using ::switchboard::testing::MakeHello;
using ::switchboard::testing::MakeReport;

// Slot demand end to end in the reconciler: every slot busy, and the queue growing as
// fast as requests finish, so the traffic asks for twice the slots; occupancy (capped at
// 100%) cannot show that.
TEST(ReconcilerSlotDemandTest, SeesPastFullSlotsFromCountersAndQueueGrowth) {
  FakeClock clock;
  FleetState fleet;
  SnapshotStore store;
  ReconcilerOptions options;  // Built-in defaults: slot demand, target 0.75.
  Reconciler reconciler(&fleet, &store, nullptr, &clock, options);
  std::vector<std::string> addrs = {"a:1", "a:2", "a:3", "a:4"};
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", addrs), clock.MonotonicNow()).ok());
  uint64_t seq = 0;
  auto report = [&](uint64_t finished, uint32_t queue) {
    std::vector<v1::EndpointReport> eps;
    for (const auto& a : addrs) {
      eps.push_back(MakeEndpointReport(a, "m", 4, 4, queue));
      eps.back().set_engine(v1::ENGINE_VLLM);
      eps.back().set_requests_total(finished);
    }
    ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(++seq, eps), clock.MonotonicNow()).ok());
    reconciler.ReconcileOnce();
  };
  report(100, 0);
  // First sync: no interval to measure yet, so demand = busy: occupancy 1.0 / 0.75 x 4.
  EXPECT_EQ(store.Get("m")->assignment.desired_replicas(), 6u) << store.Get("m")->autoscale_explanation;
  clock.Advance(absl::Seconds(15));
  // 15 s later: 10 finished on each, and 10 more queued on each: arrivals = 2 x completions,
  // demand = 16 x 2 = 32 slots of 16 = 2.0; 2.0 / 0.75 x 4 ready = ceil(10.67) = 11,
  // which Kubernetes' default scale-up rule (at most +100% per 15 s) limits to 8.
  report(110, 10);
  const auto snap = store.Get("m");
  EXPECT_EQ(snap->assignment.desired_replicas(), 8u) << snap->autoscale_explanation;
  EXPECT_NE(snap->autoscale_explanation.find("(ratio 2.67) -> 11"), std::string::npos) << snap->autoscale_explanation;
  EXPECT_NE(snap->autoscale_explanation.find("slot demand 2.00 (40 finished, in flight +40"), std::string::npos)
      << snap->autoscale_explanation;
}

TEST(ReconcilerSlotDemandTest, HoldsAReplicaWhileTheDemandIsWithinItsNoise) {
  // Two 16-slot replicas, built-in defaults (slot demand 0.75, scale-down margin one
  // standard deviation, scale-down window 300 s). 10 busy slots, steady: 10 / 24 -> one
  // replica by the HPA's rule, but 10 + sqrt(10) = 13.2 > 12 slots, one replica's target:
  // keep two. At 6 busy, 6 + 2.4 = 8.4: one is enough, after the scale-down window.
  FakeClock clock;
  FleetState fleet;
  SnapshotStore store;
  ReconcilerOptions options;
  Reconciler reconciler(&fleet, &store, nullptr, &clock, options);
  std::vector<std::string> addrs = {"a:1", "a:2"};
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", addrs), clock.MonotonicNow()).ok());
  uint64_t seq = 0, finished = 100;
  auto sync = [&](uint32_t busy_each) {
    finished += 20;  // Steady: as many finish as arrive.
    std::vector<v1::EndpointReport> eps;
    for (const auto& a : addrs) {
      eps.push_back(MakeEndpointReport(a, "m", 16, busy_each, 0));
      eps.back().set_engine(v1::ENGINE_VLLM);
      eps.back().set_requests_total(finished);
    }
    ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(++seq, eps), clock.MonotonicNow()).ok());
    reconciler.ReconcileOnce();
    clock.Advance(absl::Seconds(15));
  };
  for (int i = 0; i < 30; ++i) sync(5);  // 7.5 minutes.
  auto snap = store.Get("m");
  EXPECT_EQ(snap->assignment.desired_replicas(), 2u) << snap->autoscale_explanation;
  EXPECT_NE(snap->autoscale_explanation.find("-> 1, but with 1 sd of noise"), std::string::npos)
      << snap->autoscale_explanation;
  for (int i = 0; i < 30; ++i) sync(3);
  snap = store.Get("m");
  EXPECT_EQ(snap->assignment.desired_replicas(), 1u) << snap->autoscale_explanation;
}

TEST(ReconcilerSlotDemandTest, RequestRateCarriesItsPoissonNoise) {
  // Requests per second, target 2 per replica, margin one standard deviation: 30 requests
  // in 15 s on 2 replicas = 2 rps -> ceil(2 / 2) = 1 replica by the HPA's rule; 30 is a
  // Poisson count, sqrt(30) / 15 = 0.37 rps of noise: (2 + 0.37) / 2 -> 2, keep both.
  FakeClock clock;
  FleetState fleet;
  SnapshotStore store;
  ReconcilerOptions options;
  // Filled in place: a local AutoscaleConfig copied in trips GCC 12's maybe-uninitialized
  // (a false positive in ~optional<HpaBehavior>) once PolicyConfig grew.
  options.config.defaults.autoscale.emplace().metrics = {{policy::ScalingSignal::kRequestsPerSecond, 2, 1.0}};
  Reconciler reconciler(&fleet, &store, nullptr, &clock, options);
  std::vector<std::string> addrs = {"a:1", "a:2"};
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", addrs), clock.MonotonicNow()).ok());
  uint64_t seq = 0, total = 0;
  for (int i = 0; i < 30; ++i) {
    total += 15;
    std::vector<v1::EndpointReport> eps;
    for (const auto& addr : addrs) {
      eps.push_back(MakeEndpointReport(addr, "m", 4, 1, 0));
      eps.back().set_engine(v1::ENGINE_VLLM);
      eps.back().set_requests_total(total);
    }
    ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(++seq, eps), clock.MonotonicNow()).ok());
    reconciler.ReconcileOnce();
    clock.Advance(absl::Seconds(15));
  }
  auto snap = store.Get("m");
  EXPECT_EQ(snap->assignment.desired_replicas(), 2u) << snap->autoscale_explanation;
  EXPECT_NE(snap->autoscale_explanation.find("requests_per_second 2 / target 2 (ratio 0.50) -> 1, but with 1 sd"),
            std::string::npos)
      << snap->autoscale_explanation;
}

// While a pool warms up, more replicas than the last decision decide again at once
// (above); but a count the decision cannot follow (more endpoints than max_replicas)
// must not decide on every pass: each decision is a demand sample and a saved autoscaler
// state in the history, and a pass per report. A new endpoint still decides at once.
TEST_F(ReconcilerTest, WarmUpDecidesAgainOnlyWhenMoreReplicasAppear) {
  options_.config.defaults.autoscale->max_replicas = 2;
  reconciler_ = std::make_unique<Reconciler>(&fleet_, &store_, history_.get(), &clock_, options_);
  const std::vector<std::string> addrs = {"a:1", "a:2", "a:3"};
  ASSERT_TRUE(fleet_.Connect(1, MakeHello("n1", addrs), clock_.MonotonicNow()).ok());
  uint64_t seq = 0;
  auto report = [&](const std::vector<std::string>& eps) {
    std::vector<v1::EndpointReport> out;
    for (const auto& a : eps) out.push_back(MakeEndpointReport(a, "m", 4, static_cast<uint32_t>(seq % 4)));
    ASSERT_TRUE(fleet_.ApplyReport(1, "n1", MakeReport(++seq, out), clock_.MonotonicNow()).ok());
  };
  auto decisions = [&] {
    history_->Flush();
    absl::StatusOr<std::vector<PoolSample>> samples = history_->SamplesSince(absl::InfinitePast());
    EXPECT_TRUE(samples.ok()) << samples.status();
    return samples.ok() ? samples->size() : 0;
  };
  report(addrs);
  reconciler_->ReconcileOnce();
  EXPECT_EQ(decisions(), 1u);
  EXPECT_EQ(store_.Get("m")->assignment.desired_replicas(), 2u) << store_.Get("m")->autoscale_explanation;
  for (int pass = 0; pass < 10; ++pass) {  // 3 held, 2 at most: nothing new to decide.
    clock_.Advance(absl::Milliseconds(100));
    report(addrs);
    reconciler_->ReconcileOnce();
  }
  EXPECT_EQ(decisions(), 1u);
  // A fourth endpoint connects (another node): decided at once, not a sync period later.
  ASSERT_TRUE(fleet_.Connect(2, MakeHello("n2", {"b:1"}), clock_.MonotonicNow()).ok());
  ASSERT_TRUE(
      fleet_.ApplyReport(2, "n2", MakeReport(1, {MakeEndpointReport("b:1", "m", 4, 0)}), clock_.MonotonicNow()).ok());
  reconciler_->ReconcileOnce();
  EXPECT_EQ(decisions(), 2u);
}

// Predictive scaling end to end in the reconciler, on a fake clock: two weeks of a
// working-hours peak, then the third Monday just before 09:00.
TEST(ReconcilerPredictiveTest, ScalesUpAheadOfAKnownPeak) {
  // Monday 2026-11-02 00:00 UTC.
  FakeClock clock(absl::FromCivil(absl::CivilSecond(2026, 11, 2, 0, 0, 0), absl::UTCTimeZone()));
  FleetState fleet;
  SnapshotStore store;
  ReconcilerOptions options;
  policy::PoolPolicy& pp = options.config.defaults;
  pp.autoscale_sync_period = absl::Minutes(10);
  pp.predictive = policy::PredictiveConfig{absl::Minutes(15), 0.8};
  pp.autoscale->max_replicas = 20;
  options.forget_after = absl::Hours(24 * 30);
  Reconciler reconciler(&fleet, &store, nullptr, &clock, options);

  std::vector<std::string> addrs = {"a:1", "a:2", "a:3", "a:4"};
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", addrs), clock.MonotonicNow()).ok());
  uint64_t seq = 0;
  auto report = [&](bool peak) {
    std::vector<v1::EndpointReport> eps;
    for (const auto& a : addrs) eps.push_back(MakeEndpointReport(a, "m", 4, peak ? 4 : 0, peak ? 3 : 0));
    eps[0].set_slots_busy(peak ? 4 : 2);
    ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(++seq, eps), clock.MonotonicNow()).ok());
  };
  auto is_peak = [&] {
    const int hour = absl::ToCivilHour(clock.Now(), absl::UTCTimeZone()).hour();
    return hour >= 9 && hour < 17;
  };
  for (int step = 0; step < 14 * 24 * 6; ++step) {  // Two weeks, every 10 minutes.
    report(is_peak());
    reconciler.ReconcileOnce();
    clock.Advance(absl::Minutes(10));
  }
  // Third Monday, 00:00 -> 08:50: off-peak, with 4 replicas idle: the forecast alone
  // keeps a floor.
  for (int step = 0; step < 53; ++step) {
    report(is_peak());
    reconciler.ReconcileOnce();
    clock.Advance(absl::Minutes(10));
  }
  ASSERT_EQ(absl::ToCivilMinute(clock.Now(), absl::UTCTimeZone()).hour(), 8);
  ASSERT_NE(store.Get("m"), nullptr);
  EXPECT_LE(store.Get("m")->assignment.desired_replicas(), 2u)
      << "08:40: the forecast for 08:55 is quiet: " << store.Get("m")->autoscale_explanation;
  report(false);  // 08:50: still quiet (2 busy, no queue).
  reconciler.ReconcileOnce();
  const auto snap = store.Get("m");
  ASSERT_NE(snap, nullptr);
  // Peak demand: all 16 slots busy (the standing queue neither grows nor shrinks, so the
  // traffic asks for exactly the 16); per replica 4 slots x 0.8: ceil(16 / 3.2) = 5. The
  // reactive signals alone would ask for 1 (2 of 16 slots busy).
  EXPECT_GE(snap->assignment.desired_replicas(), 5u) << snap->autoscale_explanation;
  EXPECT_NE(snap->autoscale_explanation.find("forecast in 15m"), std::string::npos) << snap->autoscale_explanation;
  EXPECT_NE(snap->autoscale_explanation.find("hour-of-week profile"), std::string::npos) << snap->autoscale_explanation;
}

}  // namespace
}  // namespace switchboard::controlplane

namespace switchboard::controlplane {
namespace {

// After a restart the forecast comes back from the SQLite history.
TEST(ReconcilerPredictiveTest, ForecastSurvivesARestart) {
  const absl::Time monday = absl::FromCivil(absl::CivilSecond(2026, 11, 2, 0, 0, 0), absl::UTCTimeZone());
  const std::string path = (std::filesystem::path(::testing::TempDir()) / "forecast_restart.db").string();
  std::filesystem::remove(path);
  {
    auto history = HistoryStore::Open(path).value();
    for (absl::Time t = monday; t < monday + absl::Hours(24 * 14); t += absl::Minutes(10)) {
      const int hour = absl::ToCivilHour(t, absl::UTCTimeZone()).hour();
      history->RecordSample({t, "m", hour >= 9 && hour < 17 ? 28.0 : 2.0, 4, 4});
    }
  }
  auto history = HistoryStore::Open(path).value();
  FakeClock clock(monday + absl::Hours(24 * 14 + 8) + absl::Minutes(50));  // Third Monday 08:50.
  FleetState fleet;
  SnapshotStore store;
  ReconcilerOptions options;
  options.config.defaults.predictive = policy::PredictiveConfig{absl::Minutes(15), 0.8};
  options.config.defaults.autoscale->max_replicas = 20;
  Reconciler reconciler(&fleet, &store, history.get(), &clock, options);
  reconciler.LoadForecastHistory();
  std::vector<std::string> addrs = {"a:1", "a:2", "a:3", "a:4"};
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", addrs), clock.MonotonicNow()).ok());
  std::vector<v1::EndpointReport> eps;
  for (const auto& a : addrs) eps.push_back(MakeEndpointReport(a, "m", 4, 0));
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(1, eps), clock.MonotonicNow()).ok());
  reconciler.ReconcileOnce();
  auto snap = store.Get("m");
  ASSERT_NE(snap, nullptr);
  // 28 expected at 09:05 / (4 slots x 0.8) = 8.75 -> 9, within the scale-up policies (4 -> 8).
  EXPECT_GE(snap->assignment.desired_replicas(), 8u) << snap->autoscale_explanation;
}

}  // namespace
}  // namespace switchboard::controlplane

namespace switchboard::controlplane {
namespace {

using ::switchboard::testing::MakeEndpointReport;
using ::switchboard::testing::MakeHello;
using ::switchboard::testing::MakeReport;

// One life of a control plane on a history file: a kill -9 loses the process, not what
// the history committed (the test flushes, as the writer does within milliseconds).
struct Incarnation {
  Incarnation(const std::string& path, FakeClock* clock, const ReconcilerOptions& options)
      : history(std::move(HistoryStore::Open(path).value())),
        reconciler(&fleet, &store, history.get(), clock, options) {}
  FleetState fleet;
  SnapshotStore store;
  std::unique_ptr<HistoryStore> history;
  Reconciler reconciler;
};

class ReconcilerRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::path(::testing::TempDir()) / "reconciler_restart_test.db").string();
    std::filesystem::remove(path_);
    options_.config.defaults.policy.circuit.staleness_bound = absl::Seconds(3);
  }

  void Report(Incarnation* cp, uint64_t stream, const std::string& node, const std::string& addr, uint32_t busy,
              uint32_t queue) {
    ASSERT_TRUE(cp->fleet
                    .ApplyReport(stream, node, MakeReport(++seq_, {MakeEndpointReport(addr, "m", 4, busy, queue)}),
                                 clock_.MonotonicNow())
                    .ok());
  }

  void ReportAll(Incarnation* cp, uint32_t busy) {
    for (int i = 0; i < 3; ++i) Report(cp, i + 1, kNodes[i], kAddrs[i], busy, busy);
  }
  void ConnectAll(Incarnation* cp) {
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(cp->fleet.Connect(i + 1, MakeHello(kNodes[i], {kAddrs[i]}), clock_.MonotonicNow()).ok());
    }
  }

  // A pool of three nodes, busy (the autoscaler asks for 4), then idle: the HPA's
  // scale-down window holds the three.
  void RunFirstLife() {
    Incarnation cp(path_, &clock_, options_);
    ConnectAll(&cp);
    for (int i = 0; i < 6; ++i) {
      ReportAll(&cp, i < 3 ? 4 : 0);
      cp.reconciler.ReconcileOnce();
      log_ += cp.store.Get("m")->autoscale_explanation + "\n";
      clock_.Advance(absl::Seconds(15));
    }
    before_ = cp.store.Get("m");
    ASSERT_NE(before_, nullptr);
    ASSERT_EQ(before_->assignment.desired_replicas(), 3u) << log_;
    ASSERT_NE(log_.find("desired 4"), std::string::npos) << log_;
    cp.history->Flush();
  }

  static constexpr const char* kNodes[] = {"n1", "n2", "n3"};
  static constexpr const char* kAddrs[] = {"a:1", "b:1", "c:1"};

  std::string path_;
  FakeClock clock_;
  ReconcilerOptions options_;
  uint64_t seq_ = 0;
  std::string log_;
  std::shared_ptr<const Snapshot> before_;
};

TEST_F(ReconcilerRestartTest, ServesTheLastSnapshotStaleUntilEveryNodeReports) {
  RunFirstLife();
  clock_.Advance(absl::Seconds(2));  // Down for 2 s.
  Incarnation cp(path_, &clock_, options_);
  cp.reconciler.Restore();
  std::shared_ptr<const Snapshot> restored = cp.store.Get("m");
  ASSERT_NE(restored, nullptr) << "served at once, before any agent reports";
  EXPECT_TRUE(restored->assignment.stale());
  EXPECT_EQ(restored->version, before_->version);
  EXPECT_EQ(restored->assignment.version(), before_->version);
  EXPECT_EQ(restored->assignment.desired_replicas(), before_->assignment.desired_replicas());
  EXPECT_EQ(restored->assignment.endpoints_size(), 3);

  // Two of three nodes back: the pool is not rebuilt from part of it.
  ConnectAll(&cp);
  Report(&cp, 1, "n1", "a:1", 0, 0);
  Report(&cp, 2, "n2", "b:1", 0, 0);
  EXPECT_EQ(cp.reconciler.ReconcileOnce(), 0);
  EXPECT_EQ(cp.store.Get("m"), restored);

  // All back: live, no longer stale, and not below the count published before.
  Report(&cp, 3, "n3", "c:1", 0, 0);
  EXPECT_EQ(cp.reconciler.ReconcileOnce(), 1);
  std::shared_ptr<const Snapshot> live = cp.store.Get("m");
  EXPECT_FALSE(live->assignment.stale());
  EXPECT_EQ(live->assignment.endpoints_size(), 3);
  EXPECT_EQ(live->assignment.desired_replicas(), before_->assignment.desired_replicas()) << live->autoscale_explanation;
}

TEST_F(ReconcilerRestartTest, TheStabilizationWindowAndTheHoldSurviveTheRestart) {
  RunFirstLife();
  clock_.Advance(absl::Seconds(2));
  Incarnation cp(path_, &clock_, options_);
  cp.reconciler.Restore();
  ConnectAll(&cp);
  const uint32_t desired = before_->assignment.desired_replicas();
  // Idle at every sync: the desired count stays for a scale-down window after the
  // restart, then the HPA (policy: at most 2 fewer a minute) brings it down.
  absl::Duration held_for;
  for (absl::Duration t; t < absl::Minutes(8); t += absl::Seconds(15)) {
    ReportAll(&cp, 0);
    cp.reconciler.ReconcileOnce();
    const auto snap = cp.store.Get("m");
    if (snap->assignment.desired_replicas() < desired) break;
    EXPECT_EQ(snap->assignment.desired_replicas(), desired) << snap->autoscale_explanation;
    held_for = t;
    clock_.Advance(absl::Seconds(15));
  }
  EXPECT_GE(held_for, absl::Seconds(285)) << "held for the 300 s window after the restart";
  EXPECT_LT(held_for, absl::Minutes(8)) << "and then scaled down";
  EXPECT_LT(cp.store.Get("m")->assignment.desired_replicas(), desired);
}

TEST_F(ReconcilerRestartTest, ANodeThatDoesNotReturnLeavesAfterTheStalenessBound) {
  RunFirstLife();
  Incarnation cp(path_, &clock_, options_);
  cp.reconciler.Restore();
  ASSERT_TRUE(cp.fleet.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  Report(&cp, 1, "n1", "a:1", 0, 0);
  clock_.Advance(absl::Milliseconds(2900));
  EXPECT_EQ(cp.reconciler.ReconcileOnce(), 0) << "within the bound: still the restored snapshot";
  EXPECT_TRUE(cp.store.Get("m")->assignment.stale());
  clock_.Advance(absl::Milliseconds(200));
  Report(&cp, 1, "n1", "a:1", 0, 0);
  EXPECT_EQ(cp.reconciler.ReconcileOnce(), 1);
  const auto live = cp.store.Get("m");
  EXPECT_FALSE(live->assignment.stale());
  ASSERT_EQ(live->assignment.endpoints_size(), 1);
  EXPECT_EQ(live->assignment.endpoints(0).node_id(), "n1");
  cp.history->Flush();
  absl::StatusOr<std::vector<HistoryEvent>> events = cp.history->RecentEvents(1);
  ASSERT_TRUE(events.ok());
  ASSERT_FALSE(events->empty());
  EXPECT_EQ((*events)[0].kind, "endpoint_left");
}

// A pool that publishes many versions a second is saved for restarts at most once per
// snapshot_save_interval: the newest of a burst once the interval has passed, and the
// newest unsaved one at Stop (a clean stop restarts from the last version served).
TEST_F(ReconcilerRestartTest, SnapshotsAreSavedAtMostOncePerIntervalAndTheLastAtStop) {
  options_.snapshot_save_interval = absl::Seconds(1);
  auto saved_version = [&](Incarnation* cp) -> std::string {
    cp->history->Flush();
    absl::StatusOr<std::vector<StoredSnapshot>> snaps = cp->history->LatestSnapshots();
    EXPECT_TRUE(snaps.ok());
    return snaps.ok() && !snaps->empty() ? (*snaps)[0].version : "";
  };
  std::string last_published;
  {
    Incarnation cp(path_, &clock_, options_);
    ConnectAll(&cp);
    ReportAll(&cp, 0);
    ASSERT_EQ(cp.reconciler.ReconcileOnce(), 1);
    const std::string first = cp.store.Get("m")->version;
    EXPECT_EQ(saved_version(&cp), first) << "a pool's first version is saved at once";
    // Three more versions within the interval: none saved yet.
    for (uint32_t busy = 1; busy <= 3; ++busy) {
      clock_.Advance(absl::Milliseconds(100));
      ReportAll(&cp, busy);
      ASSERT_EQ(cp.reconciler.ReconcileOnce(), 1);
    }
    EXPECT_EQ(saved_version(&cp), first);
    // The interval passes: the next pass saves the newest, even with nothing new published.
    clock_.Advance(absl::Seconds(1));
    const std::string newest = cp.store.Get("m")->version;
    ASSERT_NE(newest, first);
    EXPECT_EQ(cp.reconciler.ReconcileOnce(), 0);
    EXPECT_EQ(saved_version(&cp), newest);
    // One more within the next interval, then a clean stop: saved by Stop.
    clock_.Advance(absl::Milliseconds(100));
    ReportAll(&cp, 4);
    ASSERT_EQ(cp.reconciler.ReconcileOnce(), 1);
    last_published = cp.store.Get("m")->version;
    EXPECT_EQ(saved_version(&cp), newest);
    cp.reconciler.Stop();
    EXPECT_EQ(saved_version(&cp), last_published);
  }
  Incarnation cp(path_, &clock_, options_);
  cp.reconciler.Restore();
  ASSERT_NE(cp.store.Get("m"), nullptr);
  EXPECT_EQ(cp.store.Get("m")->version, last_published);
}

TEST_F(ReconcilerRestartTest, AnUnreadableSavedSnapshotIsSkipped) {
  {
    auto history = HistoryStore::Open(path_);
    ASSERT_TRUE(history.ok());
    (*history)->RecordSnapshot({"m", "v", clock_.Now(), "not a protobuf \xff\xff"});
  }
  Incarnation cp(path_, &clock_, options_);
  cp.reconciler.Restore();
  EXPECT_EQ(cp.store.Get("m"), nullptr);
}

TEST_F(ReconcilerRestartTest, AFirstStartNeverPublishesFewerReplicasThanHaveConnected) {
  // No history: agents connect one by one within the first sync period. Each one that
  // appears raises the desired count at once (not a sync period later).
  Incarnation cp(path_, &clock_, options_);
  cp.reconciler.Restore();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cp.fleet.Connect(i + 1, MakeHello(kNodes[i], {kAddrs[i]}), clock_.MonotonicNow()).ok());
    Report(&cp, i + 1, kNodes[i], kAddrs[i], 0, 0);
    cp.reconciler.ReconcileOnce();
    const auto snap = cp.store.Get("m");
    EXPECT_EQ(snap->assignment.desired_replicas(), static_cast<uint32_t>(i + 1)) << snap->autoscale_explanation;
    clock_.Advance(absl::Milliseconds(300));
  }
  // An agent that connected but has not reported yet (its Hello names the model) counts
  // too.
  v1::Hello hello = MakeHello("n4", {"d:1"});
  hello.mutable_endpoints(0)->add_models("m");
  ASSERT_TRUE(cp.fleet.Connect(4, hello, clock_.MonotonicNow()).ok());
  cp.reconciler.ReconcileOnce();
  EXPECT_EQ(cp.store.Get("m")->assignment.desired_replicas(), 4u) << cp.store.Get("m")->autoscale_explanation;
}

}  // namespace
}  // namespace switchboard::controlplane
