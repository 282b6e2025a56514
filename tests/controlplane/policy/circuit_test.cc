#include "controlplane/policy/circuit.h"

#include "absl/strings/str_cat.h"
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
  // n READY endpoints, each with `requests` and `errors` cumulative counters of a server
  // that counts its 5xx (TGI).
  void MakePool(int n) {
    inputs_.assign(n, CircuitInput());
    for (auto& in : inputs_) {
      in.state = v1::ENDPOINT_STATE_READY;
      in.reported = true;
      in.report_age = absl::Milliseconds(500);
      in.errors_counted = true;
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
  // Good traffic for the half-open duration (successes, as the server counts its 5xx): CLOSED.
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

namespace switchboard::controlplane::policy {
namespace {

using ::testing::HasSubstr;

// Table tests of one endpoint's breaker through a sequence of steps. Each step advances
// time, adds to the endpoint's cumulative evidence counters and sets its health, then
// checks the circuit (and a piece of its reason).
struct Step {
  absl::Duration after;  // Since the previous step.
  int checks = 0, check_failures = 0;
  int requests = 0, errors = 0;                  // The server's counters.
  int gateway_requests = 0, gateway_errors = 0;  // Reported by gateways.
  v1::EndpointState state = v1::ENDPOINT_STATE_READY;
  bool stale = false;
  v1::CircuitState expect = v1::CIRCUIT_STATE_CLOSED;
  std::string reason_has;
};

struct TrialCase {
  std::string name;
  bool errors_counted = false;  // The server counts its 5xx (TGI).
  std::vector<Step> steps;
};

constexpr auto kClosed = v1::CIRCUIT_STATE_CLOSED;
constexpr auto kOpen = v1::CIRCUIT_STATE_OPEN;
constexpr auto kHalfOpen = v1::CIRCUIT_STATE_HALF_OPEN;
constexpr auto kUnhealthy = v1::ENDPOINT_STATE_UNHEALTHY;
constexpr auto kReady = v1::ENDPOINT_STATE_READY;
const absl::Duration kS = absl::Seconds(1);

void PrintTo(const TrialCase& c, std::ostream* os) { *os << c.name; }

CircuitConfig TrialConfig() {
  CircuitConfig c;
  c.error_window = absl::Seconds(10);
  c.min_requests = 10;
  c.min_checks = 3;
  c.base_ejection = absl::Seconds(10);
  c.max_ejection = absl::Seconds(40);
  c.half_open_duration = absl::Seconds(2);
  c.half_open_successes = 3;
  return c;
}

class CircuitTrialTest : public ::testing::TestWithParam<TrialCase> {};

TEST_P(CircuitTrialTest, Steps) {
  const TrialCase& c = GetParam();
  const CircuitConfig config = TrialConfig();
  CircuitInput in;
  in.reported = true;
  in.errors_counted = c.errors_counted;
  std::vector<CircuitMemory> memories;
  absl::Time now = absl::FromUnixSeconds(1000);
  in.state = v1::ENDPOINT_STATE_READY;
  in.report_age = absl::Milliseconds(200);
  DecidePoolCircuits({in}, &memories, config, now);  // Baseline counters.
  for (size_t k = 0; k < c.steps.size(); ++k) {
    const Step& s = c.steps[k];
    now += s.after;
    in.checks_total += s.checks;
    in.check_failures_total += s.check_failures;
    in.check_error = s.check_failures > 0 ? "/v1/completions: HTTP 500" : "";
    in.requests_total += s.requests;
    in.errors_total += s.errors;
    in.gateway_requests_total += s.gateway_requests;
    in.gateway_errors_total += s.gateway_errors;
    in.state = s.state;
    in.probe_error = s.state == kUnhealthy ? "/health: connection refused" : "";
    in.report_age = s.stale ? absl::Seconds(60) : absl::Milliseconds(200);
    const CircuitDecision d = DecidePoolCircuits({in}, &memories, config, now)[0];
    SCOPED_TRACE(absl::StrCat("step ", k, ": ", d.reason));
    EXPECT_EQ(d.circuit, s.expect);
    EXPECT_THAT(d.reason, HasSubstr(s.reason_has));
    EXPECT_EQ(d.routable, s.expect == kHalfOpen || (s.expect == kClosed && s.state == v1::ENDPOINT_STATE_READY));
    EXPECT_EQ(d.weight_cap, s.expect == kHalfOpen ? config.half_open_weight : 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, CircuitTrialTest,
    ::testing::Values(
        // llama.cpp, vLLM, SGLang: no 5xx counter; the agent's active checks are the evidence.
        TrialCase{"ChecksEjectAServerWithoutAnErrorCounter",
                  false,
                  {{kS, 1, 1, 5, 0, 0, 0, kReady, false, kClosed, "ready"},
                   {kS, 2, 2, 5, 0, 0, 0, kReady, false, kOpen,
                    "active checks: 3 of 3 failed in 10s (limit 50%); last: /v1/completions: HTTP 500) for 10s"}}},
        TrialCase{"TooFewChecksOrAHalfFailedWindowNeverEject",
                  false,
                  {{kS, 2, 2, 0, 0, 0, 0, kReady, false, kClosed, "ready"},
                   {kS, 2, 0, 0, 0, 0, 0, kReady, false, kClosed, "ready"},
                   // Older than the window: forgotten.
                   {absl::Seconds(11), 1, 1, 0, 0, 0, 0, kReady, false, kClosed, "ready"}}},
        TrialCase{"GatewayReportsEject",
                  false,
                  {{kS, 0, 0, 0, 0, 9, 9, kReady, false, kClosed, "ready"},
                   {kS, 0, 0, 0, 0, 11, 6, kReady, false, kOpen,
                    "5xx rate 75% over 20 requests in 10s (reported by gateways"}}},
        TrialCase{
            "TgiCountersEjectAndTheirSuccessesClose",
            true,
            {{kS, 0, 0, 30, 20, 0, 0, kReady, false, kOpen, "5xx rate 67% over 30 requests in 10s (server counters"},
             {absl::Seconds(10), 0, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, "0 of 3 successes needed"},
             {kS, 0, 0, 10, 0, 0, 0, kReady, false, kHalfOpen, "10 of 3 successes needed, 0 failures, for at least 1s"},
             {kS, 0, 0, 0, 0, 0, 0, kReady, false, kClosed, "passed its trial (10 successes, 0 failures)"}}},
        TrialCase{"ATrialNeedsSuccessesNotOnlyTime",
                  false,
                  {{kS, 3, 3, 0, 0, 0, 0, kReady, false, kOpen, "active checks"},
                   {absl::Seconds(10), 0, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, "half-open after 1 ejection(s)"},
                   {absl::Seconds(60), 0, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, "0 of 3 successes needed"},
                   {kS, 2, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, "2 of 3"},
                   {kS, 1, 0, 0, 0, 0, 0, kReady, false, kClosed, "passed its trial (3 successes, 0 failures)"}}},
        TrialCase{"ServerRequestsWithoutAnErrorCounterAreNoTrialSuccesses",
                  false,
                  {{kS, 3, 3, 0, 0, 0, 0, kReady, false, kOpen, "active checks"},
                   {absl::Seconds(10), 0, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, ""},
                   // SGLang's num_requests_total counts failed requests too.
                   {absl::Seconds(5), 0, 0, 100, 0, 0, 0, kReady, false, kHalfOpen, "0 of 3 successes needed"},
                   {kS, 3, 0, 0, 0, 0, 0, kReady, false, kClosed, "passed its trial"}}},
        TrialCase{"AFailedTrialEjectsForLonger",
                  false,
                  {{kS, 3, 3, 0, 0, 0, 0, kReady, false, kOpen, "for 10s"},
                   {absl::Seconds(10), 0, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, ""},
                   {kS, 2, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, "2 of 3"},
                   // 3 of 5 failed: over the 50% limit.
                   {kS, 3, 3, 0, 0, 0, 0, kReady, false, kOpen,
                    "3 of 5 failed in 10s (limit 50%); last: /v1/completions: HTTP 500) for 20s"},
                   {absl::Seconds(19), 0, 0, 0, 0, 0, 0, kReady, false, kOpen, "half-open in 1s"},
                   {kS, 0, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, "half-open after 2 ejection(s)"},
                   {kS, 0, 0, 0, 0, 4, 4, kReady, false, kOpen, "failed its trial: 4 of 4 outcomes failed"},
                   {absl::Seconds(30), 0, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, "after 3 ejection(s)"},
                   {kS, 1, 1, 0, 0, 0, 0, kReady, false, kOpen, "for 40s"}}},  // min(4 x 10 s, 40 s)
        TrialCase{
            "PlainlyDownCountsAsAnEjectionAndComesBackThroughATrial",
            false,
            {{kS, 0, 0, 0, 0, 0, 0, kUnhealthy, false, kOpen, "unhealthy: /health: connection refused"},
             {absl::Seconds(2), 0, 0, 0, 0, 0, 0, kReady, false, kOpen,
              "ejected (unhealthy: /health: connection refused); half-open in 8s"},
             {absl::Seconds(8), 0, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, "half-open after 1 ejection(s)"},
             {kS, 3, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, "3 of 3 successes needed, 0 failures, for at least 1s"},
             {kS, 0, 0, 0, 0, 0, 0, kReady, false, kClosed, "passed its trial"},
             // Down again: the second ejection lasts twice as long.
             {kS, 0, 0, 0, 0, 0, 0, kUnhealthy, false, kOpen, "unhealthy"},
             {kS, 0, 0, 0, 0, 0, 0, kReady, false, kOpen, "half-open in 19s"},
             {absl::Seconds(19), 0, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, "after 2 ejection(s)"}}},
        TrialCase{"StaleCountsAsAnEjection",
                  false,
                  {{kS, 0, 0, 0, 0, 0, 0, kReady, true, kOpen, "stale: no report for 1m"},
                   {kS, 0, 0, 0, 0, 0, 0, kReady, false, kOpen, "ejected (stale"},
                   {absl::Seconds(9), 0, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, ""}}},
        TrialCase{"DownLongerThanItsEjectionGoesHalfOpenAtOnce",
                  false,
                  {{kS, 0, 0, 0, 0, 0, 0, kUnhealthy, false, kOpen, "unhealthy"},
                   {absl::Seconds(30), 0, 0, 0, 0, 0, 0, kUnhealthy, false, kOpen, "unhealthy"},
                   {kS, 0, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, "half-open after 1 ejection(s)"}}},
        TrialCase{"DownDuringATrialEjectsForLonger",
                  false,
                  {{kS, 3, 3, 0, 0, 0, 0, kReady, false, kOpen, "for 10s"},
                   {absl::Seconds(10), 0, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, ""},
                   {kS, 0, 0, 0, 0, 0, 0, kUnhealthy, false, kOpen, "unhealthy"},
                   {kS, 0, 0, 0, 0, 0, 0, kReady, false, kOpen, "half-open in 19s"}}},
        TrialCase{"ForgivenAfterMaxEjectionClosed",
                  false,
                  {{kS, 3, 3, 0, 0, 0, 0, kReady, false, kOpen, "for 10s"},
                   {absl::Seconds(10), 3, 0, 0, 0, 0, 0, kReady, false, kHalfOpen, ""},
                   {absl::Seconds(2), 3, 0, 0, 0, 0, 0, kReady, false, kClosed, "passed its trial"},
                   {absl::Seconds(40), 0, 0, 0, 0, 0, 0, kReady, false, kClosed, "ready"},
                   {kS, 3, 3, 0, 0, 0, 0, kReady, false, kOpen, "for 10s"}}}),  // Not 20 s: forgiven.
    [](const ::testing::TestParamInfo<TrialCase>& p) { return p.param.name; });

// A shared cause: the whole pool went stale and came back. Plainly down does not count
// against the cap, but waiting out the ejection afterwards does: half the pool serves
// trial traffic at once instead of the whole pool staying excluded.
TEST(CircuitPoolTest, EndpointsBackFromDownBeyondTheCapStartTheirTrialAtOnce) {
  const CircuitConfig config = TrialConfig();
  std::vector<CircuitInput> inputs(4);
  for (auto& in : inputs) {
    in.state = v1::ENDPOINT_STATE_READY;
    in.reported = true;
    in.report_age = absl::Seconds(60);
  }
  std::vector<CircuitMemory> memories;
  absl::Time now = absl::FromUnixSeconds(1000);
  for (const auto& d : DecidePoolCircuits(inputs, &memories, config, now)) EXPECT_EQ(d.circuit, kOpen);
  for (auto& in : inputs) in.report_age = absl::Milliseconds(100);
  now += absl::Seconds(6);
  std::vector<CircuitDecision> d = DecidePoolCircuits(inputs, &memories, config, now);
  EXPECT_EQ(d[0].circuit, kOpen);
  EXPECT_EQ(d[1].circuit, kOpen);
  for (int i : {2, 3}) {
    EXPECT_EQ(d[i].circuit, kHalfOpen);
    EXPECT_TRUE(d[i].routable);
    EXPECT_THAT(d[i].reason, HasSubstr("ended early: 2 of 4 are already ejected (cap 50%), failing open"));
  }
}

// Endpoints ejected for failing keep their places under the cap before those that were
// merely down.
TEST(CircuitPoolTest, FailureEjectionsKeepTheirPlaceBeforeEndpointsBackFromDown) {
  const CircuitConfig config = TrialConfig();
  std::vector<CircuitInput> inputs(2);
  for (auto& in : inputs) {
    in.state = v1::ENDPOINT_STATE_READY;
    in.reported = true;
    in.report_age = absl::Milliseconds(100);
  }
  std::vector<CircuitMemory> memories;
  absl::Time now = absl::FromUnixSeconds(1000);
  DecidePoolCircuits(inputs, &memories, config, now);
  inputs[0].state = v1::ENDPOINT_STATE_UNHEALTHY;               // Endpoint 0 goes down ...
  inputs[1].checks_total = inputs[1].check_failures_total = 3;  // ... and 1 fails its checks.
  now += kS;
  std::vector<CircuitDecision> d = DecidePoolCircuits(inputs, &memories, config, now);
  EXPECT_EQ(d[0].circuit, kOpen);
  EXPECT_EQ(d[1].circuit, kOpen);
  inputs[0].state = v1::ENDPOINT_STATE_READY;  // 0 is back: cap max(1, 50% of 2) = 1.
  now += kS;
  d = DecidePoolCircuits(inputs, &memories, config, now);
  EXPECT_EQ(d[0].circuit, kHalfOpen) << d[0].reason;
  EXPECT_EQ(d[1].circuit, kOpen) << d[1].reason;
}

TEST(OutcomeWindowTest, KeepsAboutTheLastWindowInFixedMemory) {
  OutcomeWindow w;
  const absl::Duration window = absl::Seconds(10);
  absl::Time now = absl::FromUnixSeconds(1000);
  uint64_t total = 0, failed = 0;
  EXPECT_EQ(w.Feed(total, failed, now, window).total, 0) << "the first feed is the baseline";
  // 100 s of one outcome every 10 ms, every third failing, fed at every one of them (as
  // a reconciler that runs often would): the window holds what the last 10 s saw.
  for (int k = 0; k < 10000; ++k) {
    now += absl::Milliseconds(10);
    ++total;
    failed += k % 3 == 0;
    const Outcomes growth = w.Feed(total, failed, now, window);
    ASSERT_EQ(growth.total, 1);
  }
  const Outcomes sum = w.Sum();
  // Buckets are window / 7 wide: the oldest may have begun up to that much inside it.
  EXPECT_GE(sum.total, 1000 - 1000 / 7 - 1);
  EXPECT_LE(sum.total, 1000);
  EXPECT_NEAR(static_cast<double>(sum.failed) / sum.total, 1.0 / 3, 0.01);
  static_assert(sizeof(OutcomeWindow) <= 192, "bounded whatever the pass rate");
  w.Feed(total, failed, now + absl::Seconds(11), window);  // Nothing new for longer than the window.
  EXPECT_EQ(w.Sum().total, 0) << "all older than the window";
}

TEST(OutcomeWindowTest, ACounterThatGoesDownIsANewBaseline) {
  OutcomeWindow w;
  const absl::Duration window = absl::Seconds(10);
  const absl::Time t = absl::FromUnixSeconds(1000);
  w.Feed(100, 10, t, window);
  EXPECT_EQ(w.Feed(150, 40, t + kS, window).failed, 30);
  EXPECT_EQ(w.Feed(5, 0, t + 2 * kS, window).total, 0) << "restarted";
  EXPECT_EQ(w.Feed(25, 1, t + 3 * kS, window).total, 20);
  EXPECT_EQ(w.Sum().total, 70);
  EXPECT_EQ(w.Sum().failed, 31);
  w.Clear();
  EXPECT_EQ(w.Sum().total, 0);
  EXPECT_EQ(w.Feed(26, 1, t + 4 * kS, window).total, 1) << "the baseline survives Clear";
  EXPECT_EQ(w.Sum().total, 1);
}

// A snapshot built with no clock (the infinite past) feeds its windows too: the window's
// start saturates instead of overflowing (UBSan found the subtraction).
TEST(OutcomeWindowTest, TheInfinitePastAndFutureAreValidTimes) {
  OutcomeWindow w;
  EXPECT_EQ(w.Feed(10, 1, absl::InfinitePast(), absl::Seconds(30)).total, 0);
  EXPECT_EQ(w.Feed(20, 2, absl::InfinitePast(), absl::Seconds(30)).total, 10);
  EXPECT_EQ(w.Feed(30, 3, absl::InfiniteFuture(), absl::InfiniteDuration()).total, 10);
}

TEST(OutcomeWindowTest, ALongerWindowAndGarbageCountsStayConsistent) {
  OutcomeWindow w;
  absl::Time t = absl::FromUnixSeconds(1000);
  w.Feed(0, 0, t, absl::Seconds(7));
  // A 7 s window: a bucket a second, eight of them.
  for (int k = 1; k <= 8; ++k) w.Feed(10 * k, 0, t + k * kS, absl::Seconds(7));
  EXPECT_EQ(w.Sum().total, 80);
  // The window grows to 70 s (a new configuration): the ring is full, so the oldest
  // bucket goes early rather than anything overflowing.
  w.Feed(90, 0, t + 9 * kS, absl::Seconds(70));
  EXPECT_EQ(w.Sum().total, 80);
  // A counter that jumps by more than 2^30 at once counts as 2^30.
  w.Feed(90 + (uint64_t{1} << 40), 0, t + 10 * kS, absl::Seconds(70));
  EXPECT_EQ(w.Sum().total, 80 + (int64_t{1} << 30));
  // Then the window shrinks back: only the last 7 s count.
  w.Feed(90 + (uint64_t{1} << 40), 0, t + 16 * kS, absl::Seconds(7));
  EXPECT_EQ(w.Sum().total, 10 + (int64_t{1} << 30));
}

}  // namespace
}  // namespace switchboard::controlplane::policy
