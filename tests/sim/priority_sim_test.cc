// The mixed-priority comparison: at 130% of the fleet's capacity, priority classes keep
// the top class whole and within its SLO while the lowest class absorbs the overload;
// without classes every class loses alike; a strict-priority queue sheds nothing and
// makes the lowest class wait instead.
#include <string>

#include "gtest/gtest.h"
#include "sim/simulator/fleet_sim.h"

namespace switchboard::sim {
namespace {

const char* kMixed = R"(
name: mixed
seed: 5
servers:
  - {name: l4, count: 8, slots: 8, decode_tps: 30, prefill_tps: 3000}
proxies: 4
duration_s: 600
warmup_s: 60
slo_ttft_s: 2
traffic: {generator: poisson, load: 1.3, prompt_tokens_mean: 1000, output_tokens_mean: 130}
priority:
  shed_occupancy: 1.25
  classes:
    - {name: interactive, share: 1.0, traffic: 0.3}
    - {name: standard, share: 0.8, traffic: 0.4}
    - {name: batch, share: 0.5, traffic: 0.3}
)";

double Lost(const ClassResult& c) { return static_cast<double>(c.refused) / std::max<int64_t>(1, c.offered); }

TEST(PrioritySimTest, TopClassLosesNothingAndTheLowestAbsorbsTheOverload) {
  Scenario s = ParseScenario(kMixed, "mixed.yaml").value();
  auto w = GenerateWorkload(s, s.seed).value();
  const ClassModeResult classes = SimulateClasses(s, w, ClassMode::kClasses, s.seed);
  const ClassModeResult none = SimulateClasses(s, w, ClassMode::kNone, s.seed);
  const ClassModeResult strict = SimulateClasses(s, w, ClassMode::kStrictPriority, s.seed);
  ASSERT_EQ(classes.classes.size(), 3u);
  const ClassResult& top = classes.classes[0];
  const ClassResult& mid = classes.classes[1];
  const ClassResult& low = classes.classes[2];
  ASSERT_GT(top.offered, 300);
  EXPECT_EQ(top.refused, 0) << "the top class loses nothing";
  EXPECT_LE(top.ttft_p99_s, s.slo_ttft_s) << "and keeps its SLO";
  EXPECT_GT(Lost(low), Lost(mid)) << "the lowest class absorbs the overload";
  EXPECT_GE(Lost(mid), Lost(top));
  // 30% more than the fleet serves: the refused requests are about that share of all.
  const double refused = top.refused + mid.refused + low.refused;
  const double offered = top.offered + mid.offered + low.offered;
  EXPECT_GT(refused / offered, 0.15);
  EXPECT_GT(Lost(low), 0.4);

  // Without classes the top class loses like the others.
  EXPECT_GT(Lost(none.classes[0]), 0.05);
  // A strict-priority queue loses nothing, and the lowest class waits far past the SLO.
  for (const ClassResult& c : strict.classes) EXPECT_EQ(c.refused, 0) << c.name;
  EXPECT_GT(strict.classes[2].ttft_p99_s, 10 * s.slo_ttft_s);
  EXPECT_EQ(classes.mode, "priority_classes");
  EXPECT_EQ(strict.mode, "strict_priority_queue");
}

TEST(PrioritySimTest, ClassesComeFromTheirOwnStreamAndScenarioErrors) {
  Scenario s = ParseScenario(kMixed, "mixed.yaml").value();
  auto w = GenerateWorkload(s, 3).value();
  Scenario plain = s;
  plain.classes.clear();
  auto p = GenerateWorkload(plain, 3).value();
  ASSERT_EQ(w.size(), p.size()) << "the same arrivals with or without classes";
  int per_class[3] = {0, 0, 0};
  for (size_t i = 0; i < w.size(); ++i) {
    EXPECT_EQ(w[i].arrival_s, p[i].arrival_s);
    ++per_class[w[i].priority_class];
  }
  EXPECT_NEAR(per_class[1] / static_cast<double>(w.size()), 0.4, 0.05);

  for (const char* bad : {"priority: {classes: []}", "priority: {classes: [{name: a, share: 1, traffic: 0.5}]}",
                          "priority: {classes: [{name: a, share: 0.5, traffic: 0.5}, {name: b, share: 1, traffic: "
                          "0.5}]}",
                          "priority: {classes: [{share: 1, traffic: 1}]}"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(ParseScenario(std::string("servers: [{name: a}]\n") + bad + "\n", "s.yaml").ok());
  }
}

}  // namespace
}  // namespace switchboard::sim
