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
