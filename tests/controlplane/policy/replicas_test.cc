#include "controlplane/policy/replicas.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

ScalingEndpoint Ep(const std::string& key, v1::EndpointState state, uint32_t slots, uint32_t busy, uint32_t queue,
                   uint64_t requests = 0) {
  ScalingEndpoint e;
  e.key = key;
  e.state = state;
  e.reported = true;
  e.report_age = absl::Seconds(1);
  e.slots_total = slots;
  e.slots_busy = busy;
  e.queue_depth = queue;
  e.requests_total = requests;
  return e;
}

TEST(ComputePoolSignalsTest, CountsFreshStartingAndReadyEndpointsOnly) {
  std::vector<ScalingEndpoint> eps = {
      Ep("a", v1::ENDPOINT_STATE_READY, 4, 3, 2),     //
      Ep("b", v1::ENDPOINT_STATE_STARTING, 4, 0, 1),  // Exists, not ready: queue only.
      Ep("c", v1::ENDPOINT_STATE_DRAINING, 4, 4, 0),  // Leaving: not a replica.
      Ep("d", v1::ENDPOINT_STATE_UNHEALTHY, 4, 0, 0), Ep("e", v1::ENDPOINT_STATE_READY, 8, 8, 0),  // Stale below.
      Ep("f", v1::ENDPOINT_STATE_READY, 8, 8, 0),  // Never reported below.
  };
  eps[4].report_age = absl::Seconds(6);
  eps[5].reported = false;
  SignalMemory memory;
  const PoolSignals s = ComputePoolSignals(eps, absl::Seconds(5), &memory, kT0);
  EXPECT_EQ(s.current, 2);
  EXPECT_EQ(s.ready, 1);
  EXPECT_DOUBLE_EQ(s.queue, 3);
  EXPECT_DOUBLE_EQ(s.busy, 3);
  EXPECT_DOUBLE_EQ(s.slots, 4);
  EXPECT_DOUBLE_EQ(s.occupancy(), 0.75);
  EXPECT_FALSE(s.rps_valid) << "a rate needs two syncs";
}

TEST(ComputePoolSignalsTest, SlotDemandAndRateFromCountersBetweenSyncs) {
  SignalMemory memory;
  ComputePoolSignals({Ep("a", v1::ENDPOINT_STATE_READY, 4, 4, 0, 100)}, absl::Seconds(5), &memory, kT0);
  // 20 finished in 10 s while the requests in flight grew by 4 (4 busy -> 4 busy + 4
  // queued): 24 arrived against 20 finished, so the 4 busy slots are asked for 4 x 24 / 20.
  const PoolSignals s = ComputePoolSignals({Ep("a", v1::ENDPOINT_STATE_READY, 4, 4, 4, 120)}, absl::Seconds(5), &memory,
                                           kT0 + absl::Seconds(10));
  EXPECT_DOUBLE_EQ(s.completions, 20);
  EXPECT_DOUBLE_EQ(s.in_flight_growth, 4);
  EXPECT_DOUBLE_EQ(s.offered, 4.0 * 24 / 20);
  EXPECT_DOUBLE_EQ(s.demand_ratio(), 4.8 / 4);
  ASSERT_TRUE(s.rps_valid);
  EXPECT_DOUBLE_EQ(s.rps, 2.0);
  EXPECT_DOUBLE_EQ(s.rps_stddev, std::sqrt(20.0) / 10);
}

TEST(ComputePoolSignalsTest, AnEndpointThatLeftTakesItsCounterWithIt) {
  SignalMemory memory;
  ComputePoolSignals({Ep("a", v1::ENDPOINT_STATE_READY, 4, 1, 0, 100), Ep("b", v1::ENDPOINT_STATE_READY, 4, 1, 0, 50)},
                     absl::Seconds(5), &memory, kT0);
  const PoolSignals s = ComputePoolSignals({Ep("a", v1::ENDPOINT_STATE_READY, 4, 1, 0, 110)}, absl::Seconds(5), &memory,
                                           kT0 + absl::Seconds(10));
  EXPECT_FALSE(s.rps_valid) << "the pool's sum went back: no rate this sync";
  EXPECT_DOUBLE_EQ(s.completions, 10) << "slot demand still uses the endpoint seen twice";
}

TEST(DecidePoolReplicasTest, RunsTheHpaOnTheSignalsAndExplains) {
  PoolPolicy pp = DefaultFleetConfig().defaults;
  PoolScalingMemory memory;
  ReplicaInput in;
  in.now = in.wall = kT0;
  // Every slot of 2 replicas busy and 8 queued, first sync: no completions yet, so the
  // demand is the busy slots (100% of 8) against a target of 75%: ceil(2 x 1/0.75) = 3.
  in.endpoints = {Ep("a", v1::ENDPOINT_STATE_READY, 4, 4, 4), Ep("b", v1::ENDPOINT_STATE_READY, 4, 4, 4)};
  const ReplicaDecision d = DecidePoolReplicas(in, pp, &memory);
  EXPECT_EQ(d.desired, 3);
  EXPECT_EQ(d.signals.current, 2);
  EXPECT_DOUBLE_EQ(d.signals.demand(), 8);
  EXPECT_THAT(d.explanation, HasSubstr("desired 3 (current 2, ready 2)"));
  EXPECT_THAT(d.explanation, HasSubstr("slot demand 1.00"));
  EXPECT_THAT(d.explanation, HasSubstr(d.reason));
  EXPECT_THAT(d.explanation, Not(HasSubstr("forecast")));
}

TEST(DecidePoolReplicasTest, PredictiveProposesFromTheForecastAndSaysWhy) {
  PoolPolicy pp = DefaultFleetConfig().defaults;
  pp.predictive = PredictiveConfig{absl::Minutes(5), 0.8};
  PoolScalingMemory memory;
  ReplicaInput in;
  // Demand rising by one busy slot a minute on one 16-slot replica: the straight line
  // says 5 minutes ahead holds more than now.
  ReplicaDecision d;
  for (int minute = 0; minute < 8; ++minute) {
    in.now = in.wall = kT0 + absl::Minutes(minute);
    in.endpoints = {Ep("a", v1::ENDPOINT_STATE_READY, 16, static_cast<uint32_t>(4 + minute), 0)};
    d = DecidePoolReplicas(in, pp, &memory);
  }
  EXPECT_THAT(d.explanation, HasSubstr("forecast in 5m: demand 16.0"));
  EXPECT_THAT(d.explanation, HasSubstr("straight line"));
  // 16 slots expected at 80% of 16 slots per replica: 1.25 replicas -> 2.
  EXPECT_EQ(d.desired, 2);
}

// The warm-up hold after a start: each row is one sync, `since_first_sync` after the
// pool's first sync since the start, with a fresh HPA memory (so the hold alone is seen).
struct WarmUpRow {
  const char* name;
  int32_t desired_before_restart;  // 0: a first start.
  uint32_t busy;                   // Busy slots (and as many queued) on each of 3 4-slot replicas.
  absl::Duration since_first_sync;
  std::optional<int32_t> manual;
  int32_t max_replicas;
  absl::Duration scale_down_window;
  int32_t want_desired;
  bool want_held;
};

TEST(DecidePoolReplicasTest, WarmUpHoldsTheCountUntilAWindowOfEvidence) {
  const absl::Duration kWindow = absl::Seconds(300);
  const WarmUpRow rows[] = {
      {"first start: an idle pool keeps its current replicas", 0, 0, absl::ZeroDuration(), std::nullopt, 100, kWindow,
       3, true},
      {"first start: still held just before a window", 0, 0, absl::Seconds(299), std::nullopt, 100, kWindow, 3, true},
      {"first start: after a window the HPA decides", 0, 0, absl::Seconds(300), std::nullopt, 100, kWindow, 1, false},
      {"restart: not below the count published before", 5, 0, absl::ZeroDuration(), std::nullopt, 100, kWindow, 5,
       true},
      {"restart: held until a window of evidence", 5, 0, absl::Seconds(299), std::nullopt, 100, kWindow, 5, true},
      {"restart: after a window the HPA decides", 5, 0, absl::Seconds(300), std::nullopt, 100, kWindow, 1, false},
      {"a busy pool scales up past the hold", 0, 4, absl::ZeroDuration(), std::nullopt, 100, kWindow, 4, false},
      {"a manual override wins over the hold", 5, 0, absl::ZeroDuration(), 2, 100, kWindow, 2, false},
      {"the hold stays within max_replicas", 5, 0, absl::ZeroDuration(), std::nullopt, 4, kWindow, 4, true},
      {"no scale-down window, no hold", 5, 0, absl::ZeroDuration(), std::nullopt, 100, absl::ZeroDuration(), 1, false},
  };
  for (const WarmUpRow& row : rows) {
    SCOPED_TRACE(row.name);
    PoolPolicy pp = DefaultFleetConfig().defaults;
    pp.autoscale->max_replicas = row.max_replicas;
    pp.autoscale->behavior->scale_down.stabilization_window = row.scale_down_window;
    pp.autoscale->behavior->scale_down.policies = {{HpaScalingPolicy::Type::kPercent, 100, absl::Seconds(15)}};
    PoolScalingMemory memory;
    memory.desired_before_restart = row.desired_before_restart;
    memory.first_sync = kT0 - row.since_first_sync;
    ReplicaInput in;
    in.now = in.wall = kT0;
    if (row.manual) in.manual = ManualOverride{*row.manual, kT0 + absl::Hours(1), ""};
    for (const char* key : {"a", "b", "c"})
      in.endpoints.push_back(Ep(key, v1::ENDPOINT_STATE_READY, 4, row.busy, row.busy));
    const ReplicaDecision d = DecidePoolReplicas(in, pp, &memory);
    EXPECT_EQ(d.desired, row.want_desired) << d.reason;
    if (row.want_held) {
      EXPECT_THAT(d.reason, HasSubstr(absl::StrCat("held at ", row.want_desired, ": warming up")));
    } else {
      EXPECT_THAT(d.reason, Not(HasSubstr("held at")));
    }
  }
}

TEST(DecidePoolReplicasTest, TheFirstSyncStartsTheWarmUp) {
  PoolPolicy pp = DefaultFleetConfig().defaults;
  PoolScalingMemory memory;
  ReplicaInput in;
  in.now = in.wall = kT0;
  in.endpoints = {Ep("a", v1::ENDPOINT_STATE_READY, 4, 0, 0), Ep("b", v1::ENDPOINT_STATE_READY, 4, 0, 0)};
  EXPECT_EQ(DecidePoolReplicas(in, pp, &memory).desired, 2);
  ASSERT_TRUE(memory.first_sync.has_value());
  EXPECT_EQ(*memory.first_sync, kT0);
  // Idle at every sync for the whole window: the hold ends, and the HPA (whose own
  // window now holds only recommendations of 1) scales down, by at most 2 a minute.
  ReplicaDecision d;
  for (absl::Duration t = absl::Seconds(15); t <= absl::Seconds(315); t += absl::Seconds(15)) {
    in.now = in.wall = kT0 + t;
    d = DecidePoolReplicas(in, pp, &memory);
    if (t < absl::Seconds(300)) {
      EXPECT_EQ(d.desired, 2) << absl::FormatDuration(t);
    }
  }
  EXPECT_EQ(d.desired, 1) << d.reason;
  EXPECT_EQ(*memory.first_sync, kT0) << "later syncs do not restart the warm-up";
}

}  // namespace
}  // namespace switchboard::controlplane::policy
