// HPA examples worked by hand, following pkg/controller/podautoscaler.
#include "controlplane/policy/autoscale.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane::policy {
namespace {

using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

AutoscaleInput Input(int32_t current, std::vector<MetricObservation> metrics, absl::Duration at = {}) {
  AutoscaleInput in;
  in.current_replicas = current;
  in.ready_replicas = current;
  in.metrics = std::move(metrics);
  in.now = kT0 + at;
  return in;
}

MetricObservation Queue(double total) { return {ScalingSignal::kQueuePerReplica, total, true}; }
MetricObservation Occupancy(double avg) { return {ScalingSignal::kSlotOccupancy, avg, true}; }

AutoscaleConfig QueueConfig(int32_t max = 100) {
  AutoscaleConfig c;
  c.min_replicas = 1;
  c.max_replicas = max;
  c.metrics = {{ScalingSignal::kQueuePerReplica, 5}};
  return c;
}

TEST(AutoscaleLegacyTest, AverageValueAndTheScaleUpCap) {
  AutoscaleState s;
  // 30 queued, 5 per replica wanted: ceil(30 / 5) = 6; legacy cap max(2 x 2, 4) = 4.
  AutoscaleDecision d = Autoscale(QueueConfig(), Input(2, {Queue(30)}), &s);
  EXPECT_EQ(d.proposal, 6);
  EXPECT_EQ(d.desired_replicas, 4);
  EXPECT_THAT(d.reason, HasSubstr("capped at max(2 x 2, 4) = 4"));
  // Next sync at 4 replicas: 6 is within max(8, 4).
  EXPECT_EQ(Autoscale(QueueConfig(), Input(4, {Queue(30)}, absl::Seconds(15)), &s).desired_replicas, 6);
}

TEST(AutoscaleLegacyTest, ToleranceKeepsCurrent) {
  AutoscaleState s;
  // 21 / (5 x 4) = 1.05: within 0.1 of 1.
  AutoscaleDecision d = Autoscale(QueueConfig(), Input(4, {Queue(21)}), &s);
  EXPECT_EQ(d.desired_replicas, 4);
  EXPECT_TRUE(d.proposals[0].within_tolerance);
  // 23 / 20 = 1.15: outside; ceil(23 / 5) = 5.
  EXPECT_EQ(Autoscale(QueueConfig(), Input(4, {Queue(23)}), &s).desired_replicas, 5);
}

TEST(AutoscaleLegacyTest, FiveMinuteDownscaleStabilization) {
  AutoscaleState s;
  EXPECT_EQ(Autoscale(QueueConfig(), Input(6, {Queue(30)}), &s).desired_replicas, 6);
  // Demand drops: proposal 2, but the highest recommendation of 5 minutes is 6.
  EXPECT_EQ(Autoscale(QueueConfig(), Input(6, {Queue(10)}, absl::Seconds(60)), &s).desired_replicas, 6);
  EXPECT_EQ(Autoscale(QueueConfig(), Input(6, {Queue(10)}, absl::Seconds(299)), &s).desired_replicas, 6);
  // 301 s later the 6 has left the window.
  EXPECT_EQ(Autoscale(QueueConfig(), Input(6, {Queue(10)}, absl::Seconds(301)), &s).desired_replicas, 2);
}

TEST(AutoscaleTest, UtilizationOverReadyReplicas) {
  AutoscaleConfig c;
  c.metrics = {{ScalingSignal::kSlotOccupancy, 0.6}};
  AutoscaleState s;
  // 0.9 / 0.6 = 1.5 over 4 ready: ceil(6.0) = 6.
  EXPECT_EQ(Autoscale(c, Input(4, {Occupancy(0.9)}), &s).proposal, 6);
}

TEST(AutoscaleTest, StartingReplicasCountAsIdleWhenScalingUp) {
  AutoscaleConfig c;
  c.metrics = {{ScalingSignal::kSlotOccupancy, 0.6}};
  AutoscaleState s;
  AutoscaleInput in = Input(6, {Occupancy(0.9)});
  in.ready_replicas = 4;  // Two replicas still load.
  // 0.9 x 4 / 6 = 0.6: exactly on target once the new ones count: wait for them.
  EXPECT_EQ(Autoscale(c, in, &s).desired_replicas, 6);
  // Hotter: 1.2 x 4 / 6 = 0.8; 0.8 / 0.6 x 6 = 8.
  AutoscaleState s2;
  in.metrics = {Occupancy(1.2)};
  EXPECT_EQ(Autoscale(c, in, &s2).proposal, 8);
}

TEST(AutoscaleTest, SeveralMetricsTakeTheLargest) {
  AutoscaleConfig c = QueueConfig();
  c.metrics.push_back({ScalingSignal::kSlotOccupancy, 0.5});
  AutoscaleState s;
  // Queue: ceil(15 / 5) = 3. Occupancy: 1.0 / 0.5 x 4 = 8.
  AutoscaleDecision d = Autoscale(c, Input(4, {Queue(15), Occupancy(1.0)}), &s);
  EXPECT_EQ(d.proposal, 8);
  EXPECT_THAT(d.reason, HasSubstr("slot_occupancy"));
}

TEST(AutoscaleTest, InvalidMetricForbidsScaleDown) {
  AutoscaleConfig c = QueueConfig();
  c.metrics.push_back({ScalingSignal::kSlotOccupancy, 0.5});
  AutoscaleState s;
  MetricObservation broken = Queue(0);
  broken.valid = false;
  // Occupancy alone says 0.25 / 0.5 x 4 = 2, but the queue is unknown: keep 4.
  AutoscaleDecision d = Autoscale(c, Input(4, {broken, Occupancy(0.25)}), &s);
  EXPECT_EQ(d.desired_replicas, 4);
  EXPECT_THAT(d.reason, HasSubstr("no scale-down"));
}

AutoscaleConfig BehaviorConfig() {
  AutoscaleConfig c = QueueConfig();
  c.behavior = HpaBehavior();  // Kubernetes defaults.
  return c;
}

TEST(AutoscaleBehaviorTest, DefaultScaleUpPoliciesPerPeriod) {
  AutoscaleConfig c = BehaviorConfig();
  AutoscaleState s;
  // From 1, proposal ceil(100 / 5) = 20: Pods 1 + 4 = 5, Percent ceil(1 x 2) = 2; Max -> 5.
  EXPECT_EQ(Autoscale(c, Input(1, {Queue(100)}), &s).desired_replicas, 5);
  // 5 s later at 5: the period started at 5 - 4 = 1 replicas: limit still 5.
  EXPECT_EQ(Autoscale(c, Input(5, {Queue(100)}, absl::Seconds(5)), &s).desired_replicas, 5);
  // 16 s after the first step the period is clean: Pods 5 + 4 = 9, Percent 10 -> 10.
  EXPECT_EQ(Autoscale(c, Input(5, {Queue(100)}, absl::Seconds(16)), &s).desired_replicas, 10);
}

TEST(AutoscaleBehaviorTest, SelectPolicyMinOnScaleUp) {
  AutoscaleConfig c = BehaviorConfig();
  c.behavior->scale_up.select = HpaScalingRules::Select::kMin;
  AutoscaleState s;
  // From 10, proposal 40: Pods 14, Percent 20; Min -> 14.
  EXPECT_EQ(Autoscale(c, Input(10, {Queue(200)}), &s).desired_replicas, 14);
}

TEST(AutoscaleBehaviorTest, ScaleDownWindowThenPolicy) {
  AutoscaleConfig c = BehaviorConfig();
  AutoscaleState s;
  EXPECT_EQ(Autoscale(c, Input(10, {Queue(50)}), &s).desired_replicas, 10);
  // Proposal 3, but the 300 s window still holds the 10.
  EXPECT_EQ(Autoscale(c, Input(10, {Queue(15)}, absl::Seconds(100)), &s).desired_replicas, 10);
  // At 301 s the 10 is gone; Percent 100 per 15 s allows going all the way: 3.
  AutoscaleDecision d = Autoscale(c, Input(10, {Queue(15)}, absl::Seconds(301)), &s);
  EXPECT_EQ(d.stabilized, 3);
  EXPECT_EQ(d.desired_replicas, 3);
}

TEST(AutoscaleBehaviorTest, PercentScaleDownTruncates) {
  AutoscaleConfig c = BehaviorConfig();
  c.behavior->scale_down.stabilization_window = absl::ZeroDuration();
  c.behavior->scale_down.policies = {{HpaScalingPolicy::Type::kPercent, 50, absl::Seconds(60)}};
  AutoscaleState s;
  // From 5 toward 1: trunc(5 x 0.5) = 2.
  AutoscaleDecision d = Autoscale(c, Input(5, {Queue(1)}), &s);
  EXPECT_EQ(d.desired_replicas, 2);
  EXPECT_THAT(d.reason, HasSubstr("limited to 2 by behavior.scaleDown"));
  // 30 s later at 2: the period began at 2 + 3 = 5; trunc(2.5) = 2: no further step.
  EXPECT_EQ(Autoscale(c, Input(2, {Queue(1)}, absl::Seconds(30)), &s).desired_replicas, 2);
  // After the period: trunc(2 x 0.5) = 1.
  EXPECT_EQ(Autoscale(c, Input(2, {Queue(1)}, absl::Seconds(61)), &s).desired_replicas, 1);
}

TEST(AutoscaleBehaviorTest, PodsScaleDownPolicy) {
  AutoscaleConfig c = BehaviorConfig();
  c.behavior->scale_down.stabilization_window = absl::ZeroDuration();
  c.behavior->scale_down.policies = {{HpaScalingPolicy::Type::kPods, 2, absl::Seconds(60)}};
  AutoscaleState s;
  EXPECT_EQ(Autoscale(c, Input(10, {Queue(5)}), &s).desired_replicas, 8);
}

TEST(AutoscaleBehaviorTest, DisabledDirectionNeverMoves) {
  AutoscaleConfig c = BehaviorConfig();
  c.behavior->scale_down.stabilization_window = absl::ZeroDuration();
  c.behavior->scale_down.select = HpaScalingRules::Select::kDisabled;
  AutoscaleState s;
  EXPECT_EQ(Autoscale(c, Input(10, {Queue(5)}), &s).desired_replicas, 10);
  c.behavior->scale_up.select = HpaScalingRules::Select::kDisabled;
  EXPECT_EQ(Autoscale(c, Input(2, {Queue(500)}, absl::Seconds(1)), &s).desired_replicas, 2);
}

TEST(AutoscaleBehaviorTest, UpWindowNeedsTheWholeWindowToAgree) {
  AutoscaleConfig c = BehaviorConfig();
  c.behavior->scale_up.stabilization_window = absl::Seconds(60);
  AutoscaleState s;
  EXPECT_EQ(Autoscale(c, Input(2, {Queue(10)}), &s).desired_replicas, 2);
  // A burst: proposal 8, but the lowest of the last 60 s is 2.
  EXPECT_EQ(Autoscale(c, Input(2, {Queue(40)}, absl::Seconds(30)), &s).desired_replicas, 2);
  // 61 s on, every recommendation in the window says >= 8: Pods 2 + 4 = 6, Percent 4 -> 6.
  EXPECT_EQ(Autoscale(c, Input(2, {Queue(40)}, absl::Seconds(61)), &s).desired_replicas, 6);
}

TEST(AutoscaleBehaviorTest, ReplicasThatLagDoNotExhaustTheRateLimit) {
  AutoscaleConfig c = BehaviorConfig();
  AutoscaleState s;
  // The pool's only replica is still loading: 0 exist, min is 1. Every sync recommends
  // 1; that is one scale event, not one per sync.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Autoscale(c, Input(0, {Queue(0)}, absl::Seconds(i)), &s).desired_replicas, 1);
  }
  // It is up; demand needs 4: Pods policy from the period start (1 - 1 = 0) + 4 = 4.
  EXPECT_EQ(Autoscale(c, Input(1, {Queue(20)}, absl::Seconds(6)), &s).desired_replicas, 4);
}

TEST(AutoscaleTest, ClampsToMinAndMax) {
  AutoscaleConfig c = QueueConfig(/*max=*/3);
  c.min_replicas = 2;
  AutoscaleState s;
  EXPECT_EQ(Autoscale(c, Input(2, {Queue(100)}), &s).desired_replicas, 3);
  AutoscaleState s2;
  EXPECT_EQ(Autoscale(c, Input(2, {Queue(0)}), &s2).desired_replicas, 2);
}

TEST(AutoscaleTest, ManualOverrideWinsUntilItExpires) {
  AutoscaleInput in = Input(2, {Queue(100)});
  in.manual = ManualOverride{7, kT0 + absl::Minutes(10), "launch event"};
  AutoscaleState s;
  AutoscaleDecision d = Autoscale(QueueConfig(), in, &s);
  EXPECT_EQ(d.desired_replicas, 7);
  EXPECT_THAT(d.reason, HasSubstr("manual override"));
  // The expiry is on the monotonic clock; the reason shows it as a calendar date.
  in.now = absl::UnixEpoch() + absl::Hours(5);  // Monotonic: hours since boot.
  in.wall = absl::FromCivil(absl::CivilSecond(2026, 12, 1, 3, 0, 0), absl::UTCTimeZone());
  in.manual->expires = in.now + absl::Minutes(10);
  EXPECT_THAT(Autoscale(QueueConfig(), in, &s).reason,
              HasSubstr("manual override to 7 until 2026-12-01T03:10:00Z (launch event)"));
  in.manual->expires = kT0 + absl::Minutes(10);
  in.now = kT0 + absl::Minutes(11);
  EXPECT_EQ(Autoscale(QueueConfig(), in, &s).desired_replicas, 4) << "expired: back to the HPA (capped 4)";
}

TEST(AutoscaleTest, PredictedReplicasActLikeAMetric) {
  AutoscaleConfig c = QueueConfig();
  c.metrics.push_back({ScalingSignal::kPredicted, 1});
  AutoscaleState s;
  // Queue empty now, but a peak is forecast that needs 3 replicas when they are ready.
  AutoscaleDecision d = Autoscale(c, Input(1, {Queue(0), {ScalingSignal::kPredicted, 3, true}}), &s);
  EXPECT_EQ(d.desired_replicas, 3);
  EXPECT_THAT(d.reason, HasSubstr("predicted"));
}

TEST(AutoscaleTest, OfferedSlotsByLittlesLaw) {
  // 16 busy, 40 finished and 40 more in flight: twice as many arrived as finished.
  EXPECT_DOUBLE_EQ(OfferedSlots(16, 40, 40, 40, 16), 32);
  // Capped at twice the slots.
  EXPECT_DOUBLE_EQ(OfferedSlots(16, 400, 400, 40, 16), 32);
  // Fewer arrived than finished, nothing waiting: the traffic asks for less.
  EXPECT_DOUBLE_EQ(OfferedSlots(8, 0, -20, 40, 16), 4);
  EXPECT_DOUBLE_EQ(OfferedSlots(8, 0, -80, 40, 16), 0);
  // The same while a backlog drains: every busy slot is still needed.
  EXPECT_DOUBLE_EQ(OfferedSlots(16, 30, -20, 40, 16), 16);
  // Nothing finished (or no counters): busy is all we know.
  EXPECT_DOUBLE_EQ(OfferedSlots(8, 30, 30, 0, 16), 8);
  EXPECT_DOUBLE_EQ(OfferedSlots(8, 0, std::nan(""), 10, 16), 8);
  EXPECT_DOUBLE_EQ(OfferedSlots(-1, 0, 0, 10, 16), 0);
}

TEST(AutoscaleTest, SlotDemandIsUtilizationThatGoesPastOne) {
  AutoscaleConfig c;
  c.min_replicas = 1;
  c.max_replicas = 100;
  c.metrics = {{ScalingSignal::kSlotDemand, 0.75}};
  AutoscaleState s;
  // 4 ready replicas asked for twice their slots: 2.0 / 0.75 x 4 = 10.67 -> 11 (slot
  // occupancy, capped at 1.0, would give 6).
  AutoscaleDecision d = Autoscale(c, Input(4, {{ScalingSignal::kSlotDemand, 2.0, true}}), &s);
  EXPECT_EQ(d.desired_replicas, 8) << "legacy scale-up cap max(2 x 4, 4); " << d.reason;
  EXPECT_EQ(d.proposal, 11);
  // While those load, they count as idle: 2.0 x 4 / 11 / 0.75 = 0.97, within tolerance.
  AutoscaleInput in = Input(11, {{ScalingSignal::kSlotDemand, 2.0, true}}, absl::Seconds(15));
  in.ready_replicas = 4;
  EXPECT_EQ(Autoscale(c, in, &s).proposal, 11);
}

TEST(AutoscaleTest, PerDirectionToleranceAsInKubernetes133) {
  // behavior.scaleDown.tolerance / scaleUp.tolerance (HPAConfigurableTolerance): the band
  // is 1 - down <= ratio <= 1 + up. Occupancy target 0.5, 10 replicas, no windows.
  AutoscaleConfig c;
  c.min_replicas = 1;
  c.max_replicas = 100;
  c.metrics = {{ScalingSignal::kSlotOccupancy, 0.5}};
  c.behavior = HpaBehavior{};
  c.behavior->scale_down.stabilization_window = absl::ZeroDuration();
  AutoscaleState s1;
  // Cluster-wide 0.1 both ways: 0.4 / 0.5 = 0.8 -> ceil(8) = 8; 0.52 -> 1.04: keep 10.
  EXPECT_EQ(Autoscale(c, Input(10, {Occupancy(0.4)}), &s1).desired_replicas, 8);
  AutoscaleState s2;
  EXPECT_EQ(Autoscale(c, Input(10, {Occupancy(0.52)}), &s2).desired_replicas, 10);
  // The blog's example shape: scale down only 30% below target, scale up at any excess.
  c.behavior->scale_down.tolerance = 0.3;
  c.behavior->scale_up.tolerance = 0.0;
  AutoscaleState s3;
  AutoscaleDecision d = Autoscale(c, Input(10, {Occupancy(0.4)}), &s3);
  EXPECT_EQ(d.desired_replicas, 10) << d.reason;
  EXPECT_THAT(d.reason, HasSubstr("within tolerance -0.30/+0.00"));
  AutoscaleState s4;
  EXPECT_EQ(Autoscale(c, Input(10, {Occupancy(0.52)}), &s4).desired_replicas, 11) << "ceil(1.04 x 10)";
  AutoscaleState s5;
  EXPECT_EQ(Autoscale(c, Input(10, {Occupancy(0.3)}), &s5).desired_replicas, 6) << "0.6 < 0.7: ceil(0.6 x 10)";
  // AverageValue metrics use the same band: 30 queued / (4 x 10) = 0.75 is within -0.30
  // (with 0.1 it would be ceil(30 / 4) = 8) ...
  c.metrics = {{ScalingSignal::kQueuePerReplica, 4}};
  AutoscaleState s6;
  EXPECT_EQ(Autoscale(c, Input(10, {Queue(30)}), &s6).desired_replicas, 10);
  // ... and 41 / 40 = 1.025 is past a scale-up tolerance of 0: ceil(41 / 4) = 11.
  AutoscaleState s7;
  EXPECT_EQ(Autoscale(c, Input(10, {Queue(41)}), &s7).desired_replicas, 11);
  EXPECT_EQ(DescribeTolerance(c), "-0.30/+0.00");
  c.behavior.reset();
  EXPECT_EQ(DescribeTolerance(c), "0.10") << "without behavior, the cluster-wide tolerance";
}

TEST(AutoscaleTest, ScaleDownMarginHoldsAgainstTheDemandsNoise) {
  // Two 16-slot replicas, slot demand at 75% (24 slots) and a margin of one standard
  // deviation. 11 slots asked for: 11 / 24 = 0.46 -> ceil(0.46 x 2) = 1 replica, which
  // would then carry 11 of its 12 target slots: the next sample a standard deviation
  // (sqrt(11) = 3.3 slots) higher asks for 2 again.
  AutoscaleConfig c;
  c.min_replicas = 1;
  c.max_replicas = 10;
  c.metrics = {{ScalingSignal::kSlotDemand, 0.75, 1.0}};
  auto demand = [](double slots_asked) {
    return MetricObservation{ScalingSignal::kSlotDemand, slots_asked / 32, true, std::sqrt(slots_asked) / 32};
  };
  AutoscaleState s1;
  AutoscaleDecision d = Autoscale(c, Input(2, {demand(11)}), &s1);
  // (11 + 3.32) / 24 = 0.60 -> ceil(0.60 x 2) = 2: keep both.
  EXPECT_EQ(d.desired_replicas, 2) << d.reason;
  ASSERT_EQ(d.proposals.size(), 1u);
  EXPECT_TRUE(d.proposals[0].held_by_margin);
  EXPECT_EQ(d.proposals[0].replicas_without_margin, 1);
  EXPECT_NEAR(d.proposals[0].upper_value, (11 + std::sqrt(11.0)) / 32, 1e-12);
  EXPECT_THAT(d.reason, HasSubstr("-> 1, but with 1 sd of noise"));
  // Without the margin (the HPA), the same input scales down.
  AutoscaleConfig hpa = c;
  hpa.metrics[0].scale_down_margin = 0;
  AutoscaleState s2;
  EXPECT_EQ(Autoscale(hpa, Input(2, {demand(11)}), &s2).desired_replicas, 1);
  // Well below, the margin does not stand in the way: (7 + 2.65) / 24 = 0.40 -> 1.
  AutoscaleState s3;
  d = Autoscale(c, Input(2, {demand(7)}), &s3);
  EXPECT_EQ(d.desired_replicas, 1) << d.reason;
  EXPECT_FALSE(d.proposals[0].held_by_margin);
  // The margin never scales up, and never slows a scale-up: one replica asked for 14
  // slots (1.17 of its 12-slot target, past the 10% tolerance) gets its second.
  AutoscaleState s4;
  MetricObservation up = demand(14);
  up.value = 14.0 / 16;
  up.stddev = std::sqrt(14.0) / 16;
  EXPECT_EQ(Autoscale(c, Input(1, {up}), &s4).desired_replicas, 2);
  // A large pool: 40 replicas (640 slots), 400 slots asked for: 400 / 480 x 40 = 33.3 ->
  // 34; with the noise (20 slots) 420 / 480 x 40 = 35. The margin shrinks with the pool.
  AutoscaleState s5;
  MetricObservation big{ScalingSignal::kSlotDemand, 400.0 / 640, true, 20.0 / 640};
  d = Autoscale(c, Input(40, {big}), &s5);
  EXPECT_EQ(d.proposal, 35) << d.reason;
  // No noise measured: the margin is moot.
  AutoscaleState s6;
  big.stddev = 0;
  EXPECT_EQ(Autoscale(c, Input(40, {big}), &s6).proposal, 34);
}

TEST(AutoscaleTest, ForecastWithoutHistoryDoesNotBlockScaleDown) {
  // Found with the simulator: the pool held its startup size for a whole (simulated) day,
  // because a forecast with no history counted as an unreadable metric.
  AutoscaleConfig c = QueueConfig();
  c.metrics.push_back({ScalingSignal::kPredicted, 1});
  AutoscaleState s;
  AutoscaleDecision d =
      Autoscale(c, Input(8, {Queue(0), {ScalingSignal::kPredicted, 0, /*valid=*/false}}, absl::Minutes(10)), &s);
  EXPECT_EQ(d.desired_replicas, 1) << d.reason;
  // An unreadable queue, by contrast, still forbids the scale-down.
  AutoscaleState s2;
  d = Autoscale(c, Input(8, {{ScalingSignal::kQueuePerReplica, 0, false}, {ScalingSignal::kPredicted, 2, true}}), &s2);
  EXPECT_EQ(d.desired_replicas, 8) << d.reason;
}

}  // namespace
}  // namespace switchboard::controlplane::policy
