#include "controlplane/policy/weights.h"

#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane::policy {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

WeightInput Ep(uint32_t total, uint32_t busy, uint32_t queue = 0, double slot_tps = 0, double hint = 0) {
  WeightInput in;
  in.routable = true;
  in.slots_total = total;
  in.slots_busy = busy;
  in.queue_depth = queue;
  in.slot_tokens_per_second = slot_tps;
  in.capacity_hint = hint;
  return in;
}

// Without explanations (a reconcile pass) every decision is the same, only the reasons
// are left empty: over every rule, with exclusion, hysteresis and a half-open cap.
TEST(WeightsTest, WithoutExplanationsTheWeightsAreTheSame) {
  WeightInput excluded = Ep(4, 0);
  excluded.routable = false;
  WeightInput kept = Ep(16, 1, 0, 50);
  kept.previous_weight = 120;  // Its new weight, 128, is within the hysteresis band.
  WeightInput capped = Ep(8, 0, 0, 60);
  capped.weight_cap = 8;
  const std::vector<WeightInput> inputs = {Ep(8, 0, 0, 40), Ep(4, 4, 3, 10), excluded, kept, capped};
  for (WeightRule rule :
       {WeightRule::kWeighted, WeightRule::kRoundRobin, WeightRule::kLeastRequest, WeightRule::kSlotBased}) {
    WeightConfig config;
    config.rule = rule;
    const PoolWeights explained = ComputeWeights(inputs, config);
    const PoolWeights silent = ComputeWeights(inputs, config, /*explain=*/false);
    EXPECT_EQ(silent.capacity_source, explained.capacity_source);
    ASSERT_EQ(silent.endpoints.size(), inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) {
      SCOPED_TRACE(::testing::Message() << "rule " << static_cast<int>(rule) << ", endpoint " << i);
      EXPECT_EQ(silent.endpoints[i].weight, explained.endpoints[i].weight);
      EXPECT_EQ(silent.endpoints[i].raw, explained.endpoints[i].raw);
      EXPECT_EQ(silent.endpoints[i].capacity, explained.endpoints[i].capacity);
      EXPECT_EQ(silent.endpoints[i].report_kept, explained.endpoints[i].report_kept);
      EXPECT_TRUE(silent.endpoints[i].reason.empty());
      EXPECT_FALSE(explained.endpoints[i].reason.empty());
    }
  }
  const PoolWeights weighted = ComputeWeights(inputs, {});
  EXPECT_THAT(weighted.endpoints[3].reason, HasSubstr("kept at the previous 120"));
  EXPECT_THAT(weighted.endpoints[4].reason, HasSubstr("capped at 8"));
}

TEST(WeightsTest, FreeSlotsTimesCapacity) {
  // 8 free slots at 40 tok/s vs 2 free at 10 tok/s: raw 320 vs 20.
  PoolWeights w = ComputeWeights({Ep(8, 0, 0, 40), Ep(4, 2, 0, 10)}, {});
  EXPECT_EQ(w.capacity_source, CapacitySource::kMeasured);
  EXPECT_EQ(w.endpoints[0].weight, 128u);
  EXPECT_EQ(w.endpoints[1].weight, 8u);  // round(128 * 20 / 320)
}

TEST(WeightsTest, SaturatedEndpointKeepsSmallWeight) {
  PoolWeights w = ComputeWeights({Ep(4, 4, 10), Ep(4, 0)}, {});
  EXPECT_EQ(w.endpoints[1].weight, 128u);
  // Floor 0.25 x 4 slots = 1: raw 1 / (1 + 10 / 1) = 0.0909 against 4: round(128 x 0.0909 / 4) = 3.
  EXPECT_EQ(w.endpoints[0].weight, 3u) << "never winner-take-all: a busy endpoint keeps a weight";
  w = ComputeWeights({Ep(4, 4, 100), Ep(64, 0)}, {});
  EXPECT_EQ(w.endpoints[0].weight, 1u) << "the floor is weight 1, never 0";
}

TEST(WeightsTest, BigSaturatedServerStillBeatsSmallSlowOneWithAFreeSlot) {
  // 16 slots at 60 tok/s, all busy, no queue: 60 x (0.25 x 16) = 240. A 4-slot T4 at
  // 15 tok/s with every slot free: 15 x 4 = 60. The big one keeps the larger weight.
  PoolWeights w = ComputeWeights({Ep(16, 16, 0, 60), Ep(4, 0, 0, 15)}, {});
  EXPECT_EQ(w.endpoints[0].weight, 128u);
  EXPECT_EQ(w.endpoints[1].weight, 32u);
  // Its queue wears that down: 3 queued against a floor of 4: 240 / 1.75 = 137 -> still ahead.
  w = ComputeWeights({Ep(16, 16, 3, 60), Ep(4, 0, 0, 15)}, {});
  EXPECT_GT(w.endpoints[0].weight, w.endpoints[1].weight);
  // 12 queued: 240 / 4 = 60: even.
  w = ComputeWeights({Ep(16, 16, 12, 60), Ep(4, 0, 0, 15)}, {});
  EXPECT_EQ(w.endpoints[0].weight, w.endpoints[1].weight);
}

TEST(WeightsTest, ReportsOfFastTurningSlotsAgeTowardThePoolAverage) {
  // Two 16-slot servers at 60 tok/s, one reported full and one idle; the pool is half
  // free. Requests holding a slot for 0.5 s: after the 2 s view age only exp(-4) = 1.8%
  // of the report holds, so both count about 8 free slots and get nearly equal weights.
  WeightInput full = Ep(16, 16, 0, 60), idle = Ep(16, 0, 0, 60);
  full.slot_seconds_per_request = idle.slot_seconds_per_request = 0.5;
  PoolWeights w = ComputeWeights({full, idle}, {});
  EXPECT_EQ(w.endpoints[1].weight, 128u);
  EXPECT_GE(w.endpoints[0].weight, 120u);
  EXPECT_NEAR(w.endpoints[0].report_kept, std::exp(-4.0), 1e-9);
  EXPECT_THAT(w.endpoints[0].reason, AllOf(HasSubstr("view age"), HasSubstr("pool's 50% free")));
  // Requests holding a slot for 60 s: the report holds (97%), and the full server keeps
  // only its busy floor, as with no slot time measured (0: the report counts in full).
  full.slot_seconds_per_request = idle.slot_seconds_per_request = 60;
  w = ComputeWeights({full, idle}, {});
  EXPECT_LE(w.endpoints[0].weight, 40u);
  full.slot_seconds_per_request = idle.slot_seconds_per_request = 0;
  w = ComputeWeights({full, idle}, {});
  EXPECT_EQ(w.endpoints[0].weight, 32u);  // 60 x 0.25 x 16 against 60 x 16.
  EXPECT_THAT(w.endpoints[0].reason, Not(HasSubstr("view age")));
  // A zero view age keeps every report whole.
  full.slot_seconds_per_request = idle.slot_seconds_per_request = 0.5;
  WeightConfig fresh;
  fresh.view_age = absl::ZeroDuration();
  EXPECT_EQ(ComputeWeights({full, idle}, fresh).endpoints[0].weight, 32u);
  // The slot-based rule compares the reported free slots as they are.
  WeightConfig slot_based;
  slot_based.rule = WeightRule::kSlotBased;
  w = ComputeWeights({full, idle}, slot_based);
  EXPECT_EQ(w.endpoints[0].weight, 1u);
  EXPECT_EQ(w.endpoints[0].report_kept, 1);
}

TEST(WeightsTest, QueueLowersWeight) {
  PoolWeights w = ComputeWeights({Ep(4, 2, 0), Ep(4, 2, 4)}, {});
  EXPECT_EQ(w.endpoints[0].weight, 128u);
  EXPECT_EQ(w.endpoints[1].weight, 26u);  // raw 2 / (1 + queue 4 / floor 1) = 0.4: 128 x 0.2
}

TEST(WeightsTest, MixedMeasurementFallsBackToHintsThenEqual) {
  PoolWeights hinted = ComputeWeights({Ep(4, 0, 0, 40, 4), Ep(4, 0, 0, 0, 1)}, {});
  EXPECT_EQ(hinted.capacity_source, CapacitySource::kHint);
  EXPECT_EQ(hinted.endpoints[0].weight, 128u);
  EXPECT_EQ(hinted.endpoints[1].weight, 32u);
  PoolWeights equal = ComputeWeights({Ep(4, 0, 0, 40, 0), Ep(4, 0, 0, 0, 1)}, {});
  EXPECT_EQ(equal.capacity_source, CapacitySource::kEqual);
  EXPECT_EQ(equal.endpoints[0].weight, equal.endpoints[1].weight);
}

TEST(WeightsTest, ExcludedEndpointsGetZeroAndDoNotCount) {
  WeightInput excluded = Ep(100, 0, 0, 1000);
  excluded.routable = false;
  PoolWeights w = ComputeWeights({excluded, Ep(4, 0, 0, 10)}, {});
  EXPECT_EQ(w.endpoints[0].weight, 0u);
  EXPECT_EQ(w.endpoints[1].weight, 128u);
  EXPECT_EQ(w.capacity_source, CapacitySource::kMeasured);
}

TEST(WeightsTest, HysteresisKeepsPreviousWeightForSmallChanges) {
  WeightInput a = Ep(10, 0), b = Ep(10, 1);  // raw 10 vs 9 -> 128 vs 115
  b.previous_weight = 120;                   // |115 - 120| <= 12: keep 120
  PoolWeights w = ComputeWeights({a, b}, {});
  EXPECT_EQ(w.endpoints[1].weight, 120u);
  b.previous_weight = 100;  // |115 - 100| > 10: move
  w = ComputeWeights({a, b}, {});
  EXPECT_EQ(w.endpoints[1].weight, 115u);
}

TEST(WeightsTest, NoRoutableEndpoints) {
  WeightInput a = Ep(4, 0);
  a.routable = false;
  PoolWeights w = ComputeWeights({a}, {});
  EXPECT_EQ(w.endpoints[0].weight, 0u);
  EXPECT_TRUE(ComputeWeights({}, {}).endpoints.empty());
}

TEST(WeightsTest, PoolLbPolicyRules) {
  WeightConfig c;
  std::vector<WeightInput> in = {Ep(8, 0, 0, 40), Ep(2, 1, 3, 10), Ep(2, 0, 0, 10)};
  c.rule = WeightRule::kRoundRobin;
  PoolWeights w = ComputeWeights(in, c);
  EXPECT_EQ(w.endpoints[0].weight, 128u);
  EXPECT_EQ(w.endpoints[1].weight, 128u);
  c.rule = WeightRule::kLeastRequest;  // Capacity x slots: 320, 20, 20.
  w = ComputeWeights(in, c);
  EXPECT_EQ(w.endpoints[0].weight, 128u);
  EXPECT_EQ(w.endpoints[1].weight, 8u);
  EXPECT_EQ(w.endpoints[1].weight, w.endpoints[2].weight) << "load plays no part";
  c.rule = WeightRule::kSlotBased;  // Most free slots (8) takes it all; the rest keep 1.
  w = ComputeWeights(in, c);
  EXPECT_EQ(w.endpoints[0].weight, 128u);
  EXPECT_EQ(w.endpoints[1].weight, 1u);
  EXPECT_EQ(w.endpoints[2].weight, 1u);
  w = ComputeWeights({Ep(2, 2), Ep(4, 4)}, c);
  EXPECT_EQ(w.endpoints[0].weight, 1u) << "all busy: even, never excluded";
  EXPECT_EQ(w.endpoints[1].weight, 1u);
}

// Property: whatever the inputs, routable endpoints get 1..128, excluded get 0, and when
// two or more are routable no single one holds all the weight.
// Each rule explains its own arithmetic (sbctl explain prints it): never the weighted
// formula for a rule that does not use it.
TEST(WeightsTest, EveryRuleGivesItsOwnReason) {
  const std::vector<WeightInput> eps = {Ep(8, 2, 0, 40), Ep(4, 4, 2, 10)};
  WeightConfig c;
  c.rule = WeightRule::kWeighted;
  PoolWeights w = ComputeWeights(eps, c);
  EXPECT_THAT(w.endpoints[0].reason, AllOf(HasSubstr("weight 128: weighted: capacity 40"),
                                           HasSubstr("measured tokens/s per slot"), HasSubstr("free slots 6")));
  EXPECT_THAT(w.endpoints[1].reason, HasSubstr("queue 2"));

  c.rule = WeightRule::kRoundRobin;
  w = ComputeWeights(eps, c);
  EXPECT_EQ(w.endpoints[1].reason, "weight 128: round robin: every routable endpoint the same");

  c.rule = WeightRule::kLeastRequest;
  w = ComputeWeights(eps, c);
  EXPECT_THAT(w.endpoints[1].reason, AllOf(HasSubstr("least request: capacity 10"), HasSubstr("x 4 slots = 40"),
                                           Not(HasSubstr("free slots"))));

  c.rule = WeightRule::kSlotBased;
  w = ComputeWeights(eps, c);
  EXPECT_THAT(w.endpoints[0].reason, HasSubstr("weight 128: slot based: 6 free slots, equal to the pool's most"));
  EXPECT_THAT(w.endpoints[1].reason, HasSubstr("weight 1: slot based: 0 free slots, below"));
  w = ComputeWeights({Ep(4, 4), Ep(2, 2)}, c);
  EXPECT_THAT(w.endpoints[0].reason, HasSubstr("no endpoint of the pool has a free slot"));

  std::vector<WeightInput> excluded = eps;
  excluded[1].routable = false;
  w = ComputeWeights(excluded, WeightConfig());
  EXPECT_THAT(w.endpoints[1].reason, HasSubstr("weight 0: excluded"));
}

TEST(WeightsTest, ReasonSaysWhenHysteresisOrAHalfOpenCapDecided) {
  std::vector<WeightInput> eps = {Ep(8, 0, 0, 40), Ep(8, 1, 0, 40)};  // 128 and 112.
  eps[1].previous_weight = 120;
  PoolWeights w = ComputeWeights(eps, WeightConfig());
  EXPECT_EQ(w.endpoints[1].weight, 120u);
  EXPECT_THAT(w.endpoints[1].reason, HasSubstr("kept at the previous 120: 112 is within the 10% hysteresis band"));
  EXPECT_THAT(w.endpoints[0].reason, Not(HasSubstr("hysteresis")));

  eps[0].weight_cap = 8;
  w = ComputeWeights(eps, WeightConfig());
  EXPECT_EQ(w.endpoints[0].weight, 8u);
  EXPECT_THAT(w.endpoints[0].reason, HasSubstr("capped at 8 while its circuit is half-open"));

  WeightConfig rr;
  rr.rule = WeightRule::kRoundRobin;
  w = ComputeWeights(eps, rr);
  EXPECT_THAT(w.endpoints[1].reason, Not(HasSubstr("hysteresis"))) << "hysteresis applies to the weighted rule only";
}

TEST(WeightsTest, PropertyBoundedAndNeverAllOnOne) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<WeightInput> inputs;
    const int n = 1 + rng() % 8;
    int routable = 0;
    for (int i = 0; i < n; ++i) {
      uint32_t total = rng() % 17;
      WeightInput in = Ep(total, total ? rng() % (total + 1) : 0, rng() % 50, (rng() % 3) * 17.5, (rng() % 3) * 1.5);
      in.routable = rng() % 4 != 0;
      in.previous_weight = rng() % 3 == 0 ? rng() % 129 : 0;
      routable += in.routable;
      inputs.push_back(in);
    }
    PoolWeights w = ComputeWeights(inputs, {});
    uint32_t positive = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].routable) {
        EXPECT_GE(w.endpoints[i].weight, 1u);
        EXPECT_LE(w.endpoints[i].weight, kMaxWeight);
        ++positive;
      } else {
        EXPECT_EQ(w.endpoints[i].weight, 0u);
      }
    }
    EXPECT_EQ(positive, static_cast<uint32_t>(routable));
  }
}

}  // namespace
}  // namespace switchboard::controlplane::policy
