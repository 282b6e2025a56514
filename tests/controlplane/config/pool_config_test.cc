#include "controlplane/config/pool_config.h"

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace switchboard::controlplane {
namespace {

using ::testing::HasSubstr;

TEST(PoolConfigTest, EmptyFileGivesDefaults) {
  auto c = ParseFleetConfig("", "empty.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const policy::PoolPolicy& p = c->For("anything");
  EXPECT_EQ(p.policy.lb_policy, v1::LB_POLICY_WEIGHTED);
  ASSERT_TRUE(p.autoscale.has_value());
  // The evaluated default (docs/policy-evaluation.md): slot demand at 75%, scale-down
  // after 300 s by at most 2 replicas a minute, scale-up as Kubernetes does.
  ASSERT_EQ(p.autoscale->metrics.size(), 1u);
  EXPECT_EQ(p.autoscale->metrics[0].signal, policy::ScalingSignal::kSlotDemand);
  EXPECT_DOUBLE_EQ(p.autoscale->metrics[0].target, 0.75);
  EXPECT_DOUBLE_EQ(p.autoscale->metrics[0].scale_down_margin, 1.0) << "one standard deviation of the noise";
  ASSERT_TRUE(p.autoscale->behavior.has_value());
  EXPECT_EQ(p.autoscale->behavior->scale_down.stabilization_window, absl::Seconds(300));
  ASSERT_EQ(p.autoscale->behavior->scale_down.policies.size(), 1u);
  EXPECT_EQ(p.autoscale->behavior->scale_down.policies[0].value, 2);
  EXPECT_EQ(p.autoscale->behavior->scale_down.policies[0].period, absl::Seconds(60));
  EXPECT_EQ(p.autoscale->behavior->scale_up.policies.size(), 2u);
  EXPECT_FALSE(p.predictive.has_value());
}

TEST(PoolConfigTest, HpaBehaviorExactlyAsInKubernetes) {
  auto c = ParseFleetConfig(R"(
defaults:
  staleness_bound: 3s
pools:
  llama-3-8b:
    lb_policy: least_request
    autoscaling:
      min_replicas: 2
      max_replicas: 12
      metrics:
        - type: queue_per_replica
          target: 4
        - type: slot_occupancy
          target: 0.8
        - type: slot_demand
          target: 0.7
          scale_down_margin: 2
      behavior:
        scaleUp:
          stabilizationWindowSeconds: 0
          selectPolicy: Max
          policies:
          - type: Pods
            value: 2
            periodSeconds: 60
        scaleDown:
          tolerance: 0.05
          stabilizationWindowSeconds: 600
          selectPolicy: Min
          policies:
          - type: Percent
            value: 10
            periodSeconds: 120
  small-model:
    autoscaling: off
  predicted:
    autoscaling:
      predictive: {lead_time: 5m, target_occupancy: 0.7}
)",
                            "pools.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const policy::PoolPolicy& p = c->For("llama-3-8b");
  EXPECT_EQ(p.policy.lb_policy, v1::LB_POLICY_LEAST_REQUEST);
  EXPECT_EQ(p.policy.circuit.staleness_bound, absl::Seconds(3)) << "inherited from defaults";
  ASSERT_TRUE(p.autoscale.has_value());
  EXPECT_EQ(p.autoscale->min_replicas, 2);
  EXPECT_EQ(p.autoscale->max_replicas, 12);
  ASSERT_EQ(p.autoscale->metrics.size(), 3u);
  EXPECT_EQ(p.autoscale->metrics[1].signal, policy::ScalingSignal::kSlotOccupancy);
  EXPECT_EQ(p.autoscale->metrics[2].signal, policy::ScalingSignal::kSlotDemand);
  EXPECT_DOUBLE_EQ(p.autoscale->metrics[2].target, 0.7);
  EXPECT_DOUBLE_EQ(p.autoscale->metrics[2].scale_down_margin, 2);
  EXPECT_DOUBLE_EQ(p.autoscale->metrics[1].scale_down_margin, 0) << "the HPA's, unless asked";
  // A tolerance as Kubernetes writes a Quantity back: 50m = 0.05.
  auto q = ParseFleetConfig("pools:\n  m:\n    autoscaling:\n      behavior:\n        scaleUp: {tolerance: 50m}\n",
                            "pools.yaml");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_DOUBLE_EQ(*q->For("m").autoscale->behavior->scale_up.tolerance, 0.05);
  // slot_demand written without the key keeps the default's margin.
  auto d = ParseFleetConfig(
      "pools:\n  m:\n    autoscaling:\n      metrics:\n        - {type: slot_demand, target: 0.8}\n", "pools.yaml");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_DOUBLE_EQ(d->For("m").autoscale->metrics[0].scale_down_margin, 1.0);
  const auto& b = *p.autoscale->behavior;
  ASSERT_EQ(b.scale_up.policies.size(), 1u);
  EXPECT_EQ(b.scale_up.policies[0].value, 2);
  EXPECT_EQ(b.scale_up.policies[0].period, absl::Seconds(60));
  EXPECT_EQ(b.scale_down.stabilization_window, absl::Seconds(600));
  EXPECT_EQ(b.scale_down.tolerance, 0.05);
  EXPECT_FALSE(b.scale_up.tolerance.has_value()) << "unset: the pool's tolerance";
  EXPECT_EQ(b.scale_down.select, policy::HpaScalingRules::Select::kMin);
  EXPECT_EQ(b.scale_down.policies[0].type, policy::HpaScalingPolicy::Type::kPercent);
  EXPECT_FALSE(c->For("small-model").autoscale.has_value());
  ASSERT_TRUE(c->For("predicted").predictive.has_value());
  EXPECT_EQ(c->For("predicted").predictive->lead_time, absl::Minutes(5));
  EXPECT_DOUBLE_EQ(c->For("predicted").predictive->target_occupancy, 0.7);
  EXPECT_FALSE(c->For("llama-3-8b").predictive.has_value());
  EXPECT_EQ(c->For("other").policy.lb_policy, v1::LB_POLICY_WEIGHTED);
}

TEST(PoolConfigTest, ErrorsNameTheLineAndField) {
  struct Case {
    const char* yaml;
    const char* want;
  } cases[] = {
      {"pools:\n  m:\n    lb_policy: random\n", "pools.yaml:3: pools.m.lb_policy: must be weighted"},
      {"pools:\n  m:\n    autoscaling:\n      max_replicas: -2\n", "pools.yaml:4: pools.m.autoscaling.max_replicas"},
      {"pools:\n  m:\n    typo: 1\n", "pools.yaml:3: pools.m.typo: unknown field"},
      {"defaults:\n  staleness_bound: soon\n", "pools.yaml:2: defaults.staleness_bound: must be a duration"},
      // Found by fuzz_pool_config: a zero sync period was accepted.
      {"pools:\n  m:\n    autoscaling:\n      sync_period: 000ms\n",
       "pools.yaml:4: pools.m.autoscaling.sync_period: must be longer than zero"},
      {"pools:\n  m:\n    autoscaling:\n      min_replicas: 5\n      max_replicas: 2\n",
       "min_replicas exceeds max_replicas"},
      {"pools:\n  m:\n    autoscaling:\n      behavior:\n        scaleUp:\n          selectPolicy: Most\n",
       "pools.yaml:6: pools.m.autoscaling.behavior.scaleUp.selectPolicy: must be Max, Min or Disabled"},
      {"pools:\n  m:\n    autoscaling:\n      metrics:\n        - {type: gpu_memory, target: 1}\n",
       "pools.m.autoscaling.metrics[0].type"},
      {"pools: [unclosed\n", "pools.yaml:"},
      {"pools:\n  m:\n    autoscaling:\n      behavior:\n        scaleUp:\n          tolerance: -0.1\n",
       "pools.yaml:6: pools.m.autoscaling.behavior.scaleUp.tolerance"},
      {"pools:\n  m:\n    autoscaling:\n      behavior:\n        scaleDown:\n          tolerance: 20000m\n",
       "pools.yaml:6: pools.m.autoscaling.behavior.scaleDown.tolerance: must be in [0, 10]"},
      {"pools:\n  m:\n    autoscaling:\n      behavior:\n        scaleDown:\n          tolerance: lots\n",
       "pools.yaml:6: pools.m.autoscaling.behavior.scaleDown.tolerance: must be a number"},
      {"pools:\n  m:\n    autoscaling:\n      metrics:\n        - {type: slot_demand, target: 0.7, scale_down_margin: "
       "-1}\n",
       "pools.yaml:5: pools.m.autoscaling.metrics[0].scale_down_margin"},
      {"pools:\n  m:\n    autoscaling:\n      metrics:\n        - {type: queue_per_replica, target: 4, "
       "scale_down_margin: 1}\n",
       "pools.m.autoscaling.metrics[0].scale_down_margin: applies to slot_occupancy, slot_demand and "
       "requests_per_second"},
      {"pools:\n  m:\n    circuit:\n      base_ejection: 0s\n",
       "pools.yaml:4: pools.m.circuit.base_ejection: must be longer than 0s"},
      {"pools:\n  m:\n    circuit:\n      base_ejection: 1m\n      max_ejection: 30s\n",
       "pools.m.circuit: max_ejection is shorter than base_ejection"},
      {"pools:\n  m:\n    circuit:\n      half_open_weight: 0\n",
       "pools.m.circuit.half_open_weight: must be in [1, 128]"},
      {"pools:\n  m:\n    circuit:\n      min_checks: 0\n", "pools.m.circuit.min_checks"},
      {"pools:\n  m:\n    circuit:\n      max_error_rate: 2\n", "pools.m.circuit.max_error_rate"},
      {"pools:\n  m:\n    circuit:\n      trial: long\n", "pools.yaml:4: pools.m.circuit.trial: unknown field"},
      {"pools:\n  m:\n    envoy:\n      circuit_breakers:\n        max_requests: -1\n",
       "pools.yaml:5: pools.m.envoy.circuit_breakers.max_requests"},
      {"pools:\n  m:\n    envoy:\n      circuit_breakers:\n        max_streams: 4\n",
       "pools.m.envoy.circuit_breakers.max_streams: unknown field"},
      {"pools:\n  m:\n    envoy:\n      override_host: sometimes\n",
       "pools.yaml:4: pools.m.envoy.override_host: must be true or false"},
  };
  for (const Case& c : cases) {
    auto r = ParseFleetConfig(c.yaml, "pools.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.want)) << c.yaml;
  }
}

TEST(PoolConfigTest, EnvoySettingsPerPool) {
  auto c = ParseFleetConfig(
      "defaults:\n"
      "  envoy: {circuit_breakers: {max_retries: 1}}\n"
      "pools:\n"
      "  m:\n"
      "    envoy:\n"
      "      circuit_breakers: {max_connections: 10, max_pending_requests: 20, max_requests: 30}\n"
      "      override_host: true\n",
      "pools.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const policy::EnvoyClusterConfig& m = c->For("m").envoy;
  EXPECT_EQ(m.max_connections, 10u);
  EXPECT_EQ(m.max_pending_requests, 20u);
  EXPECT_EQ(m.max_requests, 30u);
  EXPECT_TRUE(m.override_host);
  const policy::EnvoyClusterConfig& other = c->For("other").envoy;
  EXPECT_EQ(other.max_retries, 1u);
  EXPECT_EQ(other.max_requests, 1024u);
  EXPECT_FALSE(other.override_host);
}

TEST(PoolConfigTest, CircuitSettingsPerPool) {
  auto c = ParseFleetConfig(
      "defaults:\n"
      "  circuit: {min_checks: 2}\n"
      "pools:\n"
      "  m:\n"
      "    circuit:\n"
      "      error_window: 5s\n"
      "      max_error_rate: 0.3\n"
      "      min_requests: 5\n"
      "      base_ejection: 1s\n"
      "      max_ejection: 4s\n"
      "      half_open_duration: 500ms\n"
      "      half_open_successes: 2\n"
      "      half_open_weight: 16\n",
      "pools.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const policy::CircuitConfig& m = c->For("m").policy.circuit;
  EXPECT_EQ(m.error_window, absl::Seconds(5));
  EXPECT_DOUBLE_EQ(m.max_error_rate, 0.3);
  EXPECT_EQ(m.min_requests, 5);
  EXPECT_EQ(m.min_checks, 2) << "from the defaults";
  EXPECT_EQ(m.base_ejection, absl::Seconds(1));
  EXPECT_EQ(m.max_ejection, absl::Seconds(4));
  EXPECT_EQ(m.half_open_duration, absl::Milliseconds(500));
  EXPECT_EQ(m.half_open_successes, 2);
  EXPECT_EQ(m.half_open_weight, 16u);
  EXPECT_EQ(c->For("other").policy.circuit.base_ejection, absl::Seconds(30));
}

TEST(PoolConfigTest, ViewAgePerPool) {
  auto c = ParseFleetConfig(
      "defaults:\n"
      "  view_age: 1500ms\n"
      "pools:\n"
      "  fresh:\n"
      "    view_age: 0s\n"
      "  other:\n"
      "    lb_policy: round_robin\n",
      "pools.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->For("fresh").policy.weights.view_age, absl::ZeroDuration());
  EXPECT_EQ(c->For("other").policy.weights.view_age, absl::Milliseconds(1500)) << "from the defaults";
  EXPECT_EQ(c->For("unlisted").policy.weights.view_age, absl::Milliseconds(1500));
  EXPECT_EQ(policy::DefaultFleetConfig().For("m").policy.weights.view_age, absl::Seconds(2)) << "built-in default";

  // Bad values: the error names the line and the field.
  for (const auto& [yaml, message] : std::vector<std::pair<std::string, std::string>>{
           {"pools:\n  m:\n    view_age: -1s\n", "pools.yaml:3: pools.m.view_age: must be a duration"},
           {"pools:\n  m:\n    view_age: 2\n", "pools.yaml:3: pools.m.view_age: must be a duration"},
           {"defaults:\n  view_age: 90s\n", "pools.yaml:2: defaults.view_age: must be at most 1m"}}) {
    auto bad = ParseFleetConfig(yaml, "pools.yaml");
    ASSERT_FALSE(bad.ok()) << yaml;
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr(message)) << yaml;
  }
}

TEST(PoolConfigTest, WeightKeysAloneForTheSimulator) {
  YAML::Node node = YAML::Load("view_age: 750ms\nother_key: ignored\n");
  policy::WeightConfig w;
  ASSERT_TRUE(ParseWeightKeys(node, "scenario.yaml", "pool", &w).ok());
  EXPECT_EQ(w.view_age, absl::Milliseconds(750));
  absl::Status bad = ParseWeightKeys(YAML::Load("view_age: soon\n"), "scenario.yaml", "pool", &w);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("scenario.yaml:1: pool.view_age: must be a duration"));
  EXPECT_EQ(w.view_age, absl::Milliseconds(750)) << "a bad value changes nothing";
}

TEST(PoolConfigTest, TheDocumentedExampleParses) {
  std::ifstream in(std::string(SWITCHBOARD_DOCS_DIR) + "/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string md = ss.str();
  const size_t begin = md.find("```yaml\n");
  ASSERT_NE(begin, std::string::npos);
  const size_t end = md.find("```", begin + 8);
  ASSERT_NE(end, std::string::npos);
  auto c = ParseFleetConfig(md.substr(begin + 8, end - begin - 8), "configuration.md");
  ASSERT_TRUE(c.ok()) << c.status();
  // The defaults block restates the built-in defaults.
  const policy::PoolPolicy& other = c->For("any-other-model");
  const policy::PoolPolicy builtin = policy::DefaultFleetConfig().For("any-other-model");
  ASSERT_TRUE(other.autoscale.has_value());
  ASSERT_EQ(other.autoscale->metrics.size(), builtin.autoscale->metrics.size());
  EXPECT_EQ(other.autoscale->metrics[0].signal, builtin.autoscale->metrics[0].signal);
  EXPECT_DOUBLE_EQ(other.autoscale->metrics[0].target, builtin.autoscale->metrics[0].target);
  EXPECT_DOUBLE_EQ(other.autoscale->metrics[0].scale_down_margin, builtin.autoscale->metrics[0].scale_down_margin);
  EXPECT_EQ(other.policy.weights.view_age, builtin.policy.weights.view_age);
  const policy::CircuitConfig& circuit = other.policy.circuit;
  const policy::CircuitConfig& builtin_circuit = builtin.policy.circuit;
  EXPECT_EQ(circuit.error_window, builtin_circuit.error_window);
  EXPECT_EQ(circuit.max_error_rate, builtin_circuit.max_error_rate);
  EXPECT_EQ(circuit.min_requests, builtin_circuit.min_requests);
  EXPECT_EQ(circuit.min_checks, builtin_circuit.min_checks);
  EXPECT_EQ(circuit.base_ejection, builtin_circuit.base_ejection);
  EXPECT_EQ(circuit.max_ejection, builtin_circuit.max_ejection);
  EXPECT_EQ(circuit.half_open_duration, builtin_circuit.half_open_duration);
  EXPECT_EQ(circuit.half_open_successes, builtin_circuit.half_open_successes);
  EXPECT_EQ(circuit.half_open_weight, builtin_circuit.half_open_weight);
  const policy::PoolPolicy& llama = c->For("llama-3-8b");
  ASSERT_TRUE(llama.autoscale.has_value());
  EXPECT_EQ(llama.autoscale->min_replicas, 2);
  ASSERT_TRUE(llama.autoscale->behavior.has_value());
  EXPECT_EQ(llama.autoscale->behavior->scale_down.tolerance, 0.2);
  EXPECT_FALSE(c->For("tiny-model").autoscale.has_value());
}

TEST(PoolConfigTest, MissingFile) {
  auto r = LoadFleetConfig("/nonexistent/pools.yaml");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace switchboard::controlplane

namespace switchboard::controlplane {
namespace {

TEST(PoolConfigTest, AdvisoryPerPool) {
  auto c = ParseFleetConfig("pools:\n  watch-me:\n    advisory: true\n  act:\n    advisory: false\n", "a.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->For("watch-me").advisory);
  EXPECT_FALSE(c->For("act").advisory);
  EXPECT_FALSE(c->For("other").advisory);
  auto bad = ParseFleetConfig("pools:\n  m:\n    advisory: maybe\n", "b.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              ::testing::HasSubstr("b.yaml:3: pools.m.advisory: must be true or false"));
}

}  // namespace
}  // namespace switchboard::controlplane
