#include "sim/simulator/fleet_sim.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::sim {
namespace {

const char* kHeterogeneous = R"(
name: test
seed: 3
servers:
  - {name: fast, count: 1, slots: 16, decode_tps: 60, prefill_tps: 8000}
  - {name: slow, count: 3, slots: 4, decode_tps: 15, prefill_tps: 1500}
proxies: 4
duration_s: 600
warmup_s: 30
traffic: {generator: poisson, load: 0.8, prompt_tokens_mean: 500, output_tokens_mean: 100}
)";

TEST(FleetSimTest, DeterministicForASeed) {
  Scenario s = ParseScenario(kHeterogeneous, "test.yaml").value();
  auto w1 = GenerateWorkload(s, 9).value();
  auto w2 = GenerateWorkload(s, 9).value();
  ASSERT_EQ(w1.size(), w2.size());
  ASSERT_GT(w1.size(), 100u);
  for (Routing r : {Routing::kSwitchboard, Routing::kLeastConnections}) {
    PolicyResult a = Simulate(s, w1, r, Scaling::kNone, 9);
    PolicyResult b = Simulate(s, w2, r, Scaling::kNone, 9);
    EXPECT_EQ(a.ttft_p99_s, b.ttft_p99_s);
    EXPECT_EQ(a.completed, b.completed);
  }
  EXPECT_NE(GenerateWorkload(s, 10).value().size(), w1.size()) << "another seed, other traffic";
}

TEST(FleetSimTest, WorkloadMatchesTheRequestedLoad) {
  Scenario s = ParseScenario(kHeterogeneous, "test.yaml").value();
  auto w = GenerateWorkload(s, 1).value();
  const double expected = 0.8 * FleetCapacityRps(s) * s.duration_s;
  EXPECT_NEAR(static_cast<double>(w.size()), expected, 0.1 * expected);
}

TEST(FleetSimTest, ABurstRecursEveryPeriod) {
  Scenario s = ParseScenario(R"(
servers: [{name: g, count: 2, slots: 16}]
duration_s: 900
traffic: {generator: burst, rate_rps: 10, burst_start_s: 100, burst_duration_s: 50, burst_factor: 4,
          burst_period_s: 300}
)",
                             "recurring.yaml")
                   .value();
  auto w = GenerateWorkload(s, 3).value();
  auto arrivals = [&](double from, double to) {
    return std::count_if(w.begin(), w.end(),
                         [&](const SimRequest& r) { return r.arrival_s >= from && r.arrival_s < to; });
  };
  for (double start : {100, 400, 700}) {
    EXPECT_NEAR(arrivals(start, start + 50), 40 * 50, 4 * std::sqrt(2000)) << "burst at " << start;
    EXPECT_NEAR(arrivals(start + 50, start + 100), 10 * 50, 4 * std::sqrt(500)) << "after the burst at " << start;
  }
  EXPECT_NEAR(arrivals(0, 100), 10 * 100, 4 * std::sqrt(1000)) << "no burst before the first";
  EXPECT_THAT(std::string(ParseScenario("servers: [{name: a}]\ntraffic: {generator: burst, burst_duration_s: 60, "
                                        "burst_period_s: 30}\n",
                                        "s.yaml")
                              .status()
                              .message()),
              ::testing::HasSubstr("burst_period_s"));
}

TEST(FleetSimTest, EveryRequestCompletesAndCapacityAwareRoutingBeatsRoundRobin) {
  Scenario s = ParseScenario(kHeterogeneous, "test.yaml").value();
  auto w = GenerateWorkload(s, 1).value();
  PolicyResult rr = Simulate(s, w, Routing::kRoundRobin, Scaling::kNone, 1);
  PolicyResult sb = Simulate(s, w, Routing::kSwitchboard, Scaling::kNone, 1);
  PolicyResult oracle = Simulate(s, w, Routing::kOracle, Scaling::kNone, 1);
  EXPECT_EQ(sb.completed, static_cast<int64_t>(w.size()));
  EXPECT_EQ(rr.completed, static_cast<int64_t>(w.size()));
  // Round robin gives the slow servers a quarter of the traffic each: they overflow.
  EXPECT_LT(sb.ttft_p99_s, rr.ttft_p99_s);
  EXPECT_LE(oracle.ttft_p99_s, sb.ttft_p99_s * 1.05);
  EXPECT_NEAR(sb.gpu_hours, 4 * 600 / 3600.0, 1e-9);
}

TEST(FleetSimTest, KnowingSizesAndSpeedsBeatsCountingSlots) {
  // Join-shortest-queue by free slots sends long prompts to the slow servers whenever
  // they have a free slot; the size-aware gateways, with only stale views, do better;
  // the oracle with the same sizes and speeds but perfect knowledge does best.
  Scenario s = ParseScenario(kHeterogeneous, "test.yaml").value();
  auto w = GenerateWorkload(s, 4).value();
  PolicyResult jsq = Simulate(s, w, Routing::kOracleJsq, Scaling::kNone, 4);
  PolicyResult aware = Simulate(s, w, Routing::kSwitchboardSizeAware, Scaling::kNone, 4);
  PolicyResult oracle = Simulate(s, w, Routing::kOracle, Scaling::kNone, 4);
  EXPECT_EQ(aware.completed, static_cast<int64_t>(w.size()));
  EXPECT_LT(aware.ttft_p99_s, jsq.ttft_p99_s);
  EXPECT_LE(oracle.ttft_p99_s, aware.ttft_p99_s);
}

// switchboard-picker replicas sharing their requests in flight through the control plane
// (as built: every 50 ms, answered 2 ms later) route as one replica does; without sharing
// four route worse. Standard heterogeneous scenario, mean p99 TTFT over seeds 1-4 (the
// documented figures are over 1-8: 1.01x and 1.17x).
TEST(FleetSimTest, PickerReplicasSharingInFlightRouteAsOne) {
  Scenario s = LoadScenario(std::string(SWITCHBOARD_SCENARIOS_DIR) + "/heterogeneous.yaml").value();
  double one = 0, four_shared = 0, four_alone = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    auto w = GenerateWorkload(s, seed).value();
    s.proxies = 1;
    one += Simulate(s, w, Routing::kSwitchboardPickerShared, Scaling::kNone, seed).ttft_p99_s;
    s.proxies = 4;
    PolicyResult shared = Simulate(s, w, Routing::kSwitchboardPickerShared, Scaling::kNone, seed);
    EXPECT_EQ(shared.completed, static_cast<int64_t>(w.size()));
    four_shared += shared.ttft_p99_s;
    four_alone += Simulate(s, w, Routing::kSwitchboardPicker, Scaling::kNone, seed).ttft_p99_s;
  }
  EXPECT_LE(four_shared, 1.05 * one) << four_shared / one;
  EXPECT_GT(four_alone, 1.10 * one) << four_alone / one;
}

TEST(FleetSimTest, AutoscalingAddsReplicasUnderLoad) {
  Scenario s = ParseScenario(R"(
servers: [{name: g, count: 1, slots: 8, decode_tps: 40, prefill_tps: 4000, cold_start_s: 60}]
duration_s: 1800
traffic: {generator: poisson, rate_rps: 6, prompt_tokens_mean: 400, output_tokens_mean: 100}
autoscaling: {min_replicas: 1, max_replicas: 10, interval_s: 15}
)",
                             "as.yaml")
                   .value();
  auto w = GenerateWorkload(s, 2).value();
  PolicyResult fixed = Simulate(s, w, Routing::kSwitchboard, Scaling::kNone, 2);
  PolicyResult scaled = Simulate(s, w, Routing::kSwitchboard, Scaling::kSwitchboardReactive, 2);
  EXPECT_GT(scaled.gpu_hours, fixed.gpu_hours) << "6 req/s needs more than one 8-slot server";
  EXPECT_GT(scaled.scaling_changes, 0);
  EXPECT_LT(scaled.ttft_p95_s, fixed.ttft_p95_s);
}

// About 80% of two 16-slot servers, then three times the traffic from minute 10 on.
const char* kBurst = R"(
servers: [{name: g, count: 2, slots: 16, decode_tps: 60, prefill_tps: 8000, cold_start_s: 120}]
duration_s: 1500
warmup_s: 60
traffic: {generator: burst, rate_rps: 10, burst_start_s: 600, burst_duration_s: 900, burst_factor: 3,
          prompt_tokens_mean: 1000, output_tokens_mean: 130}
autoscaling: {min_replicas: 1, max_replicas: 40, interval_s: 15}
)";

TEST(FleetSimTest, SlotDemandSeesABurstThatOccupancyCannot) {
  // One 16-slot server loaded at about 80%, then three times the traffic: every slot is
  // busy, so occupancy reads 1.0 and the HPA on it adds 1/0.7 of the ready replicas per
  // cold start; slot demand measures the arrivals and asks for all of it at once.
  Scenario s = ParseScenario(kBurst, "burst.yaml").value();
  auto w = GenerateWorkload(s, 5).value();
  PolicyResult hpa = Simulate(s, w, Routing::kSwitchboard, Scaling::kHpaUtilization, 5);
  PolicyResult sb = Simulate(s, w, Routing::kSwitchboard, Scaling::kSwitchboardReactive, 5);
  EXPECT_EQ(sb.completed, static_cast<int64_t>(w.size()));
  // Seed 5: the HPA steps 3 -> 5 -> 8 -> 12 replicas a cold start apart and over-shoots;
  // slot demand goes 3 -> 7 within one (violation minutes 5 vs 4, GPU-hours 2.78 vs 2.23).
  EXPECT_LT(sb.slo_violation_minutes, hpa.slo_violation_minutes);
  EXPECT_LT(sb.gpu_hours, hpa.gpu_hours);
  // The timeline: one entry per measured minute, consistent with the totals.
  ASSERT_FALSE(sb.minutes.empty());
  int violations = 0;
  for (const MinuteResult& m : sb.minutes) {
    EXPECT_GE(m.replicas, m.ready_replicas);
    EXPECT_GT(m.requests, 0);
    violations += m.ttft_p95_s > s.slo_ttft_s;
  }
  EXPECT_EQ(violations, sb.slo_violation_minutes);
  EXPECT_GT(sb.minutes.back().replicas, sb.minutes.front().replicas) << "scaled up for the burst";
  EXPECT_LE(sb.scaling_reversals, sb.scaling_changes);
  // The queue-only HPA adds replicas for a queue the loading ones will drain, then removes
  // them: reversals, some within 5 minutes of the change they undo.
  PolicyResult queue = Simulate(s, w, Routing::kSwitchboard, Scaling::kHpaQueue, 5);
  EXPECT_GT(queue.quick_reversals, 0);
  EXPECT_LE(queue.quick_reversals, queue.scaling_reversals);
  EXPECT_LE(sb.quick_reversals, sb.scaling_reversals);
}

TEST(FleetSimTest, OracleScalerIsReadyBeforeTheBurst) {
  Scenario s = ParseScenario(kBurst, "burst.yaml").value();
  for (uint64_t seed : {1, 5}) {
    auto w = GenerateWorkload(s, seed).value();
    PolicyResult hpa = Simulate(s, w, Routing::kSwitchboard, Scaling::kHpaUtilization, seed);
    PolicyResult oracle = Simulate(s, w, Routing::kSwitchboard, Scaling::kOracle, seed);
    EXPECT_EQ(oracle.policy, "oracle");
    EXPECT_EQ(oracle.completed, static_cast<int64_t>(w.size()));
    EXPECT_LE(oracle.slo_violation_minutes, hpa.slo_violation_minutes) << "seed " << seed;
    // Minute 9, the last before the burst: the oracle's replicas are ready for it; the
    // HPA's, which only sees the burst once it has come, are not.
    auto ready_in = [](const PolicyResult& r, int minute) {
      for (const MinuteResult& m : r.minutes) {
        if (m.minute == minute) return m.ready_replicas;
      }
      return -1;
    };
    EXPECT_GT(ready_in(oracle, 9), ready_in(oracle, 5)) << "seed " << seed;
    EXPECT_GT(ready_in(oracle, 9), ready_in(hpa, 9)) << "seed " << seed;
    EXPECT_GE(ready_in(oracle, 9), 5) << "30 req/s x 2.3 s in a slot: 69 slots, 5 replicas at 0.75 x 16 + margin";
  }
}

TEST(FleetSimTest, SmallPoolFlapsLessThanTheHpa) {
  // Two compressed days of a 4x diurnal swing in a pool of 1-5 replicas, where one
  // replica is a fifth to all of the capacity. Slot demand is noisier than occupancy, and
  // scaled down by the HPA's rule alone it removed a replica that the next noisy sample
  // asked for again (docs/policy-evaluation.md: 82 such flaps in 30 runs against the
  // HPA's 32); the default's scale-down margin of one standard deviation stops that.
  Scenario s = ParseScenario(R"(
servers: [{name: g, count: 2, slots: 16, decode_tps: 60, prefill_tps: 8000, cold_start_s: 120}]
duration_s: 7200
warmup_s: 300
traffic: {generator: diurnal, rate_rps: 6, diurnal_period_s: 3600, diurnal_peak_factor: 4,
          prompt_tokens_mean: 1000, output_tokens_mean: 130}
autoscaling: {min_replicas: 1, max_replicas: 24, interval_s: 15}
)",
                             "diurnal.yaml")
                   .value();
  int hpa_quick = 0, sb_quick = 0, hpa_reversals = 0, sb_reversals = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    auto w = GenerateWorkload(s, seed).value();
    PolicyResult hpa = Simulate(s, w, Routing::kSwitchboard, Scaling::kHpaUtilization, seed);
    PolicyResult sb = Simulate(s, w, Routing::kSwitchboard, Scaling::kSwitchboardReactive, seed);
    hpa_quick += hpa.quick_reversals;
    sb_quick += sb.quick_reversals;
    hpa_reversals += hpa.scaling_reversals;
    sb_reversals += sb.scaling_reversals;
  }
  RecordProperty("hpa_quick_reversals", hpa_quick);
  RecordProperty("switchboard_quick_reversals", sb_quick);
  EXPECT_LT(sb_quick, hpa_quick);
  EXPECT_LE(sb_reversals, hpa_reversals);
}

// One server, one proxy; the requests arrive when given, all measured.
Scenario OneBatchedServer(int slots, double decode_slowdown) {
  return ParseScenario(absl::StrCat(R"(
server_model: batched
servers: [{name: g, count: 1, slots: )",
                                    slots, R"(, decode_tps: 50, prefill_tps: 5000, decode_slowdown: )", decode_slowdown,
                                    R"(, step_token_budget: 1000}]
proxies: 1
duration_s: 100
warmup_s: 0
)"),
                       "batched.yaml")
      .value();
}

TEST(BatchedServerTest, DecodeSlowsAsTheBatchGrows) {
  // 101 output tokens: the first comes with the prompt (instant here), then 100 decode
  // steps of (1 + 0.1 x (B - 1)) / 50 s.
  for (int batch : {1, 4, 8}) {
    Scenario s = OneBatchedServer(8, 0.1);
    s.servers[0].prefill_tps = 1e9;
    std::vector<SimRequest> w(batch, SimRequest{1.0, 100, 101});
    PolicyResult r = Simulate(s, w, Routing::kRoundRobin, Scaling::kNone, 1);
    ASSERT_EQ(r.completed, batch);
    EXPECT_NEAR(r.e2e_p99_s, 100 * (1 + 0.1 * (batch - 1)) / 50, 1e-5) << "batch " << batch;
    EXPECT_NEAR(r.ttft_p99_s, 0, 1e-5) << "batch " << batch;
  }
  // Eight 100-token prompts fit in one step's budget of 1000: every first token comes
  // after that step, 800 / 5000 s.
  Scenario s = OneBatchedServer(8, 0.1);
  PolicyResult r =
      Simulate(s, std::vector<SimRequest>(8, SimRequest{1.0, 100, 101}), Routing::kRoundRobin, Scaling::kNone, 1);
  EXPECT_NEAR(r.ttft_p50_s, 800 / 5000.0, 1e-6);
  EXPECT_NEAR(r.ttft_p99_s, 800 / 5000.0, 1e-6);
  // The ideal model: every slot at full speed whatever the others do.
  Scenario ideal = OneBatchedServer(8, 0.1);
  ideal.server_model = ServerModel::kIdeal;
  r = Simulate(ideal, std::vector<SimRequest>(8, SimRequest{1.0, 100, 101}), Routing::kRoundRobin, Scaling::kNone, 1);
  EXPECT_NEAR(r.e2e_p99_s, 100 / 5000.0 + 101 / 50.0, 1e-6);
}

TEST(BatchedServerTest, ALongPromptDelaysTheOthersDecode) {
  // A request decoding alone, then a 20,000-token prompt: its 20 chunks of 999 prompt
  // tokens (the budget less the one decode token) each add 0.1998 s to a decode step.
  Scenario s = OneBatchedServer(4, 0.1);
  const std::vector<SimRequest> alone = {{1.0, 10, 201}};
  std::vector<SimRequest> with_long = alone;
  with_long.push_back({2.0, 20000, 2});
  PolicyResult a = Simulate(s, alone, Routing::kRoundRobin, Scaling::kNone, 1);
  PolicyResult b = Simulate(s, with_long, Routing::kRoundRobin, Scaling::kNone, 1);
  ASSERT_EQ(b.completed, 2);
  EXPECT_NEAR(a.e2e_p99_s, 10 / 5000.0 + 200 / 50.0, 1e-6);
  // The long prompt, prefilled while the first decodes, takes 20000 / 999 steps of
  // 0.02 + 0.1998 s; the first request loses that prompt's whole compute time, 4 s.
  const double steps = 20000 / 999.0, step_s = 1 / 50.0 + 999 / 5000.0;
  EXPECT_NEAR(b.ttft_p99_s, steps * step_s, 0.05);
  // The slowest end-to-end is the first request: its 200 decode tokens (4 s) plus the
  // long prompt's compute (20000 / 5000 = 4 s) plus one step shared with the other's
  // last token.
  EXPECT_NEAR(b.e2e_p99_s, 10 / 5000.0 + 4 + 4, 0.01);
}

TEST(BatchedServerTest, CapacityAndEngineDefaults) {
  Scenario s = OneBatchedServer(8, 0.1);
  // A full batch: 8 sequences share each decode step of 1.7 / 50 s; a prompt is the server's alone.
  const double per_request_s = 1000 / 5000.0 + 130 * (1.7 / 50) / 8;
  EXPECT_NEAR(FleetCapacityRps(s), 1 / per_request_s, 1e-9);
  s.server_model = ServerModel::kIdeal;
  EXPECT_NEAR(FleetCapacityRps(s), 8 / (1000 / 5000.0 + 130 / 50.0), 1e-9);

  Scenario engines = ParseScenario(R"(
servers:
  - {name: a, engine: llama.cpp}
  - {name: b}
  - {name: c, engine: llama.cpp, decode_slowdown: 0.5}
)",
                                   "e.yaml")
                         .value();
  EXPECT_EQ(engines.server_model, ServerModel::kIdeal) << "the old model stays the default";
  EXPECT_DOUBLE_EQ(engines.servers[0].decode_slowdown, 0.116);
  EXPECT_EQ(engines.servers[0].step_token_budget, 2048);
  EXPECT_DOUBLE_EQ(engines.servers[1].decode_slowdown, 0.03);
  EXPECT_DOUBLE_EQ(engines.servers[2].decode_slowdown, 0.5);
  auto error = [](const std::string& yaml) { return std::string(ParseScenario(yaml, "s.yaml").status().message()); };
  EXPECT_THAT(error("server_model: fluid\nservers: [{name: a}]\n"), ::testing::HasSubstr("server_model"));
  EXPECT_THAT(error("servers: [{name: a, engine: tgi}]\n"), ::testing::HasSubstr("servers[].engine"));
  EXPECT_THAT(error("servers: [{name: a, slots: 64, step_token_budget: 64}]\n"),
              ::testing::HasSubstr("step_token_budget"));
}

TEST(FleetSimTest, WeightsHoldUpOnBurstyAndPromptHeavyTraces) {
  // The weighted proxy against the best size-blind router on the real Azure traces
  // (docs/policy-evaluation.md: seeds 1-8 at most 1.28x; the goal is no seed over 1.5x).
  // Without the view age (the reports counted in full) the code trace's seed 1 was 2.44x.
  for (const char* file : {"azure-trace.yaml", "prompt-heavy.yaml"}) {
    Scenario s = LoadScenario(std::string(SWITCHBOARD_SCENARIOS_DIR) + "/" + file).value();
    auto w = GenerateWorkload(s, 1).value();
    const double bound = Simulate(s, w, Routing::kOracleSizeBlind, Scaling::kNone, 1).ttft_p99_s;
    EXPECT_LE(Simulate(s, w, Routing::kSwitchboard, Scaling::kNone, 1).ttft_p99_s, 1.5 * bound) << file;
    if (std::string(file) == "prompt-heavy.yaml") {
      s.weights.view_age = absl::ZeroDuration();
      EXPECT_GT(Simulate(s, w, Routing::kSwitchboard, Scaling::kNone, 1).ttft_p99_s, 1.5 * bound);
    }
  }
}

TEST(ScenarioTest, PoolWeightSettingsAsTheControlPlaneReadsThem) {
  // No pool block: the control plane's default view age.
  EXPECT_EQ(ParseScenario("servers: [{name: a}]\n", "s.yaml")->weights.view_age, absl::Seconds(2));
  auto s = ParseScenario("servers: [{name: a}]\npool: {view_age: 500ms}\n", "s.yaml");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->weights.view_age, absl::Milliseconds(500));
  // The control plane's own validation and messages.
  EXPECT_THAT(std::string(ParseScenario("servers: [{name: a}]\npool:\n  view_age: 5m\n", "s.yaml").status().message()),
              ::testing::HasSubstr("s.yaml:3: pool.view_age: must be at most 1m"));
  EXPECT_THAT(
      std::string(ParseScenario("servers: [{name: a}]\npool: {lb_policy: weighted}\n", "s.yaml").status().message()),
      ::testing::HasSubstr("pool.lb_policy: unknown field"));
}

TEST(ScenarioTest, ErrorsNameTheField) {
  EXPECT_THAT(std::string(ParseScenario("servers: []\n", "s.yaml").status().message()),
              ::testing::HasSubstr("servers"));
  EXPECT_THAT(std::string(ParseScenario("servers: [{name: a, slots: 0}]\n", "s.yaml").status().message()),
              ::testing::HasSubstr("slots"));
  EXPECT_THAT(
      std::string(ParseScenario("servers: [{name: a}]\ntraffic: {generator: chaos}\n", "s.yaml").status().message()),
      ::testing::HasSubstr("traffic.generator"));
  EXPECT_THAT(std::string(ParseScenario("servers: [{name: a}]\nbogus: 1\n", "s.yaml").status().message()),
              ::testing::HasSubstr("bogus: unknown field"));
}

}  // namespace
}  // namespace switchboard::sim
