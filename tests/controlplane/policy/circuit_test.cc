#include "controlplane/policy/circuit.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane::policy {
namespace {

using ::testing::HasSubstr;

CircuitInput Ready(absl::Duration age = absl::Seconds(1)) {
  CircuitInput in;
  in.state = v1::ENDPOINT_STATE_READY;
  in.reported = true;
  in.report_age = age;
  return in;
}

TEST(CircuitTest, ReadyAndFreshIsClosedAndRoutable) {
  CircuitDecision d = DecideCircuit(Ready(), {});
  EXPECT_EQ(d.circuit, v1::CIRCUIT_STATE_CLOSED);
  EXPECT_TRUE(d.routable);
}

TEST(CircuitTest, StalenessBoundOpensTheCircuit) {
  CircuitConfig config;
  config.staleness_bound = absl::Seconds(5);
  EXPECT_TRUE(DecideCircuit(Ready(absl::Seconds(5)), config).routable);
  CircuitDecision d = DecideCircuit(Ready(absl::Milliseconds(5100)), config);
  EXPECT_EQ(d.circuit, v1::CIRCUIT_STATE_OPEN);
  EXPECT_FALSE(d.routable);
  EXPECT_THAT(d.reason, HasSubstr("stale"));
}

TEST(CircuitTest, UnhealthyOpensWithTheProbeErrorAsReason) {
  CircuitInput in = Ready();
  in.state = v1::ENDPOINT_STATE_UNHEALTHY;
  in.probe_error = "connection refused";
  CircuitDecision d = DecideCircuit(in, {});
  EXPECT_EQ(d.circuit, v1::CIRCUIT_STATE_OPEN);
  EXPECT_FALSE(d.routable);
  EXPECT_THAT(d.reason, HasSubstr("connection refused"));
}

TEST(CircuitTest, OneFailedProbeBelowTheAgentThresholdDoesNotOpen) {
  CircuitInput in = Ready();
  in.probe_error = "timeout";  // The agent still says READY: under its failure threshold.
  EXPECT_TRUE(DecideCircuit(in, {}).routable);
}

TEST(CircuitTest, StartingAndDrainingAreExcludedButNotFailures) {
  for (auto state : {v1::ENDPOINT_STATE_STARTING, v1::ENDPOINT_STATE_DRAINING}) {
    CircuitInput in = Ready();
    in.state = state;
    CircuitDecision d = DecideCircuit(in, {});
    EXPECT_EQ(d.circuit, v1::CIRCUIT_STATE_CLOSED);
    EXPECT_FALSE(d.routable);
  }
}

TEST(CircuitTest, NoReportYetIsNotRoutable) {
  CircuitInput in;
  in.report_age = absl::Seconds(1);
  EXPECT_FALSE(DecideCircuit(in, {}).routable);
}

}  // namespace
}  // namespace switchboard::controlplane::policy

namespace switchboard::controlplane::policy {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(5000);

class PoolCircuitTest : public ::testing::Test {
 protected:
  // n READY endpoints, each with `requests` and `errors` cumulative counters.
  void MakePool(int n) {
    inputs_.assign(n, CircuitInput());
    for (auto& in : inputs_) {
      in.state = v1::ENDPOINT_STATE_READY;
      in.reported = true;
      in.report_age = absl::Milliseconds(500);
    }
  }
  // Advances time and adds traffic: every endpoint gets `requests`, endpoint i gets
  // errors[i] of them as 5xx.
  std::vector<CircuitDecision> Step(absl::Duration dt, int64_t requests, std::vector<int64_t> errors) {
    now_ += dt;
    for (size_t i = 0; i < inputs_.size(); ++i) {
      inputs_[i].requests_total += requests;
      inputs_[i].errors_total += i < errors.size() ? errors[i] : 0;
    }
    return DecidePoolCircuits(inputs_, &memories_, config_, now_);
  }
  std::vector<CircuitInput> inputs_;
  std::vector<CircuitMemory> memories_;
  CircuitConfig config_;
  absl::Time now_ = kT0;
};

TEST_F(PoolCircuitTest, ErrorRateEjectsAndEjectionTimeGrows) {
  MakePool(4);
  Step(absl::Seconds(1), 0, {});              // Baseline counters.
  auto d = Step(absl::Seconds(1), 50, {30});  // 60% 5xx over 50 requests.
  EXPECT_EQ(d[0].circuit, v1::CIRCUIT_STATE_OPEN);
  EXPECT_FALSE(d[0].routable);
  EXPECT_THAT(d[0].reason, HasSubstr("5xx rate 60% over 50 requests"));
  EXPECT_THAT(d[0].reason, HasSubstr("for 30s"));
  for (int i = 1; i < 4; ++i) EXPECT_EQ(d[i].circuit, v1::CIRCUIT_STATE_CLOSED);

  d = Step(absl::Seconds(29), 0, {});
  EXPECT_EQ(d[0].circuit, v1::CIRCUIT_STATE_OPEN) << "29 s of a 30 s ejection";
  d = Step(absl::Seconds(1), 0, {});
  EXPECT_EQ(d[0].circuit, v1::CIRCUIT_STATE_HALF_OPEN);
  EXPECT_TRUE(d[0].routable);
  EXPECT_EQ(d[0].weight_cap, config_.half_open_weight);
  // Fails its trial: ejected again, for 2 x 30 s.
  d = Step(absl::Seconds(1), 40, {40});
  EXPECT_EQ(d[0].circuit, v1::CIRCUIT_STATE_OPEN);
  EXPECT_THAT(d[0].reason, HasSubstr("for 1m"));
  d = Step(absl::Seconds(60), 0, {});
  EXPECT_EQ(d[0].circuit, v1::CIRCUIT_STATE_HALF_OPEN);
  // Good traffic for the half-open duration: CLOSED.
  d = Step(absl::Seconds(5), 100, {});
  EXPECT_EQ(d[0].circuit, v1::CIRCUIT_STATE_HALF_OPEN);
  d = Step(absl::Seconds(5), 100, {});
  EXPECT_EQ(d[0].circuit, v1::CIRCUIT_STATE_CLOSED);
  EXPECT_EQ(d[0].weight_cap, 0u);
}

TEST_F(PoolCircuitTest, TooFewRequestsOrACounterResetNeverEject) {
  MakePool(3);
  Step(absl::Seconds(1), 0, {});
  auto d = Step(absl::Seconds(1), 10, {10});  // 100% of 10: under min_requests (20).
  EXPECT_EQ(d[0].circuit, v1::CIRCUIT_STATE_CLOSED);
  inputs_[0].requests_total = 5;  // The server restarted.
  inputs_[0].errors_total = 0;
  d = Step(absl::Seconds(1), 0, {});
  EXPECT_EQ(d[0].circuit, v1::CIRCUIT_STATE_CLOSED);
  d = Step(absl::Seconds(1), 100, {});
  EXPECT_TRUE(d[0].routable);
}

TEST_F(PoolCircuitTest, EjectionCapFailsOpen) {
  MakePool(4);
  Step(absl::Seconds(1), 0, {});
  auto d = Step(absl::Seconds(1), 50, {50, 50, 50, 50});  // A shared cause: all failing.
  int open = 0, routable = 0;
  for (const auto& x : d) {
    open += x.circuit == v1::CIRCUIT_STATE_OPEN;
    routable += x.routable;
  }
  EXPECT_EQ(open, 2) << "at most 50% of the pool";
  EXPECT_EQ(routable, 2);
  EXPECT_THAT(d[3].reason, HasSubstr("failing open"));
}

TEST_F(PoolCircuitTest, PlainlyDownDoNotCountAgainstTheCapButStayExcluded) {
  MakePool(4);
  inputs_[0].state = v1::ENDPOINT_STATE_UNHEALTHY;
  inputs_[1].report_age = absl::Seconds(60);  // Stale.
  Step(absl::Seconds(1), 0, {});
  auto d = Step(absl::Seconds(1), 50, {0, 0, 50, 50});
  EXPECT_FALSE(d[0].routable);
  EXPECT_FALSE(d[1].routable);
  // Two eligible: cap max(1, 50% of 2) = 1.
  EXPECT_EQ(d[2].circuit, v1::CIRCUIT_STATE_OPEN);
  EXPECT_TRUE(d[3].routable);
  EXPECT_THAT(d[3].reason, HasSubstr("failing open"));
}

TEST_F(PoolCircuitTest, LatencyOutlierAgainstThePoolMedian) {
  MakePool(4);
  inputs_[0].ttft_p95_seconds = 0.2;
  inputs_[1].ttft_p95_seconds = 0.25;
  inputs_[2].ttft_p95_seconds = 0.3;
  inputs_[3].ttft_p95_seconds = 2.0;  // > 3 x median 0.275 and > 0.5 s.
  auto d = Step(absl::Seconds(1), 0, {});
  EXPECT_EQ(d[3].circuit, v1::CIRCUIT_STATE_OPEN);
  EXPECT_THAT(d[3].reason, HasSubstr("latency outlier: TTFT p95 2.00s > 3.0 x pool median 0.28s"));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(d[i].routable);
  // Under the floor nothing is an outlier, however far from the median.
  MakePool(3);
  memories_.clear();
  inputs_[0].ttft_p95_seconds = 0.01;
  inputs_[1].ttft_p95_seconds = 0.01;
  inputs_[2].ttft_p95_seconds = 0.4;
  d = Step(absl::Seconds(1), 0, {});
  EXPECT_TRUE(d[2].routable);
}

}  // namespace
}  // namespace switchboard::controlplane::policy
