#include "agent/probe/active_check.h"

#include <thread>

#include "agent/probe/llamacpp_probe.h"
#include "common/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/agent/probe/fake_http_client.h"

namespace switchboard::agent {
namespace {

using ::testing::HasSubstr;

constexpr char kCompletion[] = R"({"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":" there"}]})";

struct JudgeCase {
  std::string name;
  HttpResponse response;
  CheckVerdict::Kind kind;
  std::string message_has;
};

class JudgeCheckTest : public ::testing::TestWithParam<JudgeCase> {};

TEST_P(JudgeCheckTest, Verdict) {
  const CheckVerdict v = JudgeCheck(GetParam().response);
  EXPECT_EQ(v.kind, GetParam().kind);
  EXPECT_THAT(v.message, HasSubstr(GetParam().message_has));
}

INSTANTIATE_TEST_SUITE_P(
    Table, JudgeCheckTest,
    ::testing::Values(
        JudgeCase{"Completion", {200, kCompletion, "", {}}, CheckVerdict::Kind::kSuccess, ""},
        JudgeCase{"ServerError",
                  {500, R"({"error":{"code":500,"message":"injected failure"}})", "", {}},
                  CheckVerdict::Kind::kFailure,
                  "/v1/completions: HTTP 500"},
        JudgeCase{"Unavailable", {503, "", "", {}}, CheckVerdict::Kind::kFailure, "HTTP 503"},
        JudgeCase{"NoAnswer", {0, "", "Couldn't connect to server", {}}, CheckVerdict::Kind::kFailure, "connect"},
        JudgeCase{"TimedOut", {0, "", "read failed or timed out", {}}, CheckVerdict::Kind::kFailure, "timed out"},
        JudgeCase{"OkButNotACompletion", {200, "<html>", "", {}}, CheckVerdict::Kind::kFailure, "no completion"},
        JudgeCase{
            "OkWithoutChoices", {200, R"({"choices":[]})", "", {}}, CheckVerdict::Kind::kFailure, "no completion"},
        // The check's own request refused (unknown model, path not served): not the server failing.
        JudgeCase{"ClientError", {404, R"({"error":"not found"})", "", {}}, CheckVerdict::Kind::kNoVerdict, "HTTP 404"},
        JudgeCase{"Unprocessable", {422, "", "", {}}, CheckVerdict::Kind::kNoVerdict, "not counted"}),
    [](const ::testing::TestParamInfo<JudgeCase>& p) { return p.param.name; });

class ActiveCheckTest : public ::testing::Test {
 protected:
  // A READY llama.cpp report with `busy` of 2 slots and `queue` waiting.
  v1::EndpointReport Report(uint32_t busy = 0, uint32_t queue = 0, v1::Engine engine = v1::ENGINE_LLAMACPP) {
    v1::EndpointReport r;
    r.set_engine(engine);
    r.set_state(v1::ENDPOINT_STATE_READY);
    r.add_models("m-7b");
    r.set_slots_total(2);
    r.set_slots_busy(busy);
    r.set_queue_depth(queue);
    return r;
  }
  // One poll: the check's verdict from the previous one (if any) is collected, and a new
  // check may start; waits for it, so the next Update sees its verdict.
  v1::EndpointReport Update(ActiveCheck& check, v1::EndpointReport r) {
    check.Update(now_, "http://127.0.0.1:8080", &r);
    check.Wait();
    return r;
  }

  FakeHttpClient http_;
  ActiveCheckOptions options_;
  absl::Time now_ = absl::FromUnixSeconds(1000);
};

TEST_F(ActiveCheckTest, OneTokenOfTheServedModelAtMostOncePerInterval) {
  options_.interval = absl::Seconds(5);
  ActiveCheck check(options_, &http_);
  http_.Set("/v1/completions", 500, R"({"error":"injected failure"})");
  v1::EndpointReport r = Update(check, Report());
  EXPECT_EQ(http_.posts(), 0) << "the first check comes an interval after the first poll";
  now_ += absl::Seconds(5);
  r = Update(check, Report());
  EXPECT_EQ(http_.posts(), 1);
  EXPECT_THAT(http_.last_post_body(), HasSubstr(R"("max_tokens":1)"));
  EXPECT_THAT(http_.last_post_body(), HasSubstr(R"("model":"m-7b")"));
  EXPECT_EQ(r.checks_total(), 0u) << "the verdict is read at the next poll";
  now_ += absl::Seconds(1);
  r = Update(check, Report());
  EXPECT_EQ(r.checks_total(), 1u);
  EXPECT_EQ(r.check_failures_total(), 1u);
  EXPECT_THAT(r.check_error(), HasSubstr("/v1/completions: HTTP 500"));
  EXPECT_EQ(http_.posts(), 1) << "not due yet";
  http_.Set("/v1/completions", 200, kCompletion);
  now_ += absl::Seconds(4);
  Update(check, Report());
  EXPECT_EQ(http_.posts(), 2);
  now_ += absl::Seconds(1);
  r = Update(check, Report());
  EXPECT_EQ(r.checks_total(), 2u);
  EXPECT_EQ(r.check_failures_total(), 1u);
  EXPECT_EQ(r.check_error(), "") << "the last check succeeded";
}

TEST_F(ActiveCheckTest, OnlyWhileASlotIsFreeAndNothingWaits) {
  ActiveCheck check(options_, &http_);
  http_.Set("/v1/completions", 200, kCompletion);
  Update(check, Report());
  now_ += options_.interval;
  Update(check, Report(/*busy=*/2));
  Update(check, Report(/*busy=*/1, /*queue=*/1));
  v1::EndpointReport starting = Report();
  starting.set_state(v1::ENDPOINT_STATE_STARTING);
  Update(check, starting);
  EXPECT_EQ(http_.posts(), 0);
  Update(check, Report(/*busy=*/1));  // Due since the second poll: runs at the first chance.
  EXPECT_EQ(http_.posts(), 1);
}

TEST_F(ActiveCheckTest, FourHundredsAreNoVerdictButSayWhy) {
  ActiveCheck check(options_, &http_);
  http_.Set("/v1/completions", 404, R"({"error":"model not found"})");
  Update(check, Report());
  now_ += absl::Seconds(10);
  Update(check, Report());
  now_ += absl::Seconds(10);
  v1::EndpointReport r = Update(check, Report());
  EXPECT_EQ(r.checks_total(), 0u);
  EXPECT_EQ(r.check_failures_total(), 0u);
  EXPECT_THAT(r.check_error(), HasSubstr("HTTP 404"));
  EXPECT_THAT(r.check_error(), HasSubstr("not counted"));
}

TEST_F(ActiveCheckTest, AutoLeavesOutTgiWhichCountsItsOwnFailures) {
  EXPECT_TRUE(ActiveChecksEnabled(ActiveCheckOptions::Mode::kAuto, v1::ENGINE_LLAMACPP));
  EXPECT_TRUE(ActiveChecksEnabled(ActiveCheckOptions::Mode::kAuto, v1::ENGINE_VLLM));
  EXPECT_TRUE(ActiveChecksEnabled(ActiveCheckOptions::Mode::kAuto, v1::ENGINE_SGLANG));
  EXPECT_FALSE(ActiveChecksEnabled(ActiveCheckOptions::Mode::kAuto, v1::ENGINE_TGI));
  EXPECT_TRUE(ActiveChecksEnabled(ActiveCheckOptions::Mode::kOn, v1::ENGINE_TGI));
  EXPECT_FALSE(ActiveChecksEnabled(ActiveCheckOptions::Mode::kOff, v1::ENGINE_LLAMACPP));

  ActiveCheck check(options_, &http_);
  http_.Set("/v1/completions", 200, kCompletion);
  Update(check, Report(0, 0, v1::ENGINE_TGI));
  now_ += absl::Seconds(10);
  v1::EndpointReport r = Update(check, Report(0, 0, v1::ENGINE_TGI));
  EXPECT_EQ(http_.posts(), 0);
  EXPECT_EQ(r.checks_total(), 0u);

  EXPECT_TRUE(ParseActiveCheckMode("off").ok());
  EXPECT_FALSE(ParseActiveCheckMode("sometimes").ok());
}

// Through a whole probe: the counts ride on every report, also while the server fails
// its health probes (they are cumulative: the control plane must not see them reset).
TEST_F(ActiveCheckTest, CountsRideOnEveryReportOfAProbe) {
  ProbeOptions o;
  o.base_url = "http://127.0.0.1:8080";
  o.address = "127.0.0.1:8080";
  o.check.interval = absl::Milliseconds(100);
  auto probe = MakeProbe({"llamacpp", o}, &http_);
  ASSERT_TRUE(probe.ok());
  http_.Set("/health", 200, R"({"status":"ok"})");
  http_.Set("/props", 200, R"({"total_slots":2})");
  http_.Set("/v1/models", 200, R"({"data":[{"id":"/models/m-7b.gguf"}]})");
  http_.Set("/metrics", 501, "");
  http_.Set("/slots", 200, R"([{"id":0,"is_processing":false},{"id":1,"is_processing":false}])");
  http_.Set("/v1/completions", 500, "");
  // Polls until a check has been counted (its thread answers at once from the fake).
  v1::EndpointReport r;
  const absl::Time deadline = SystemClock::Get()->MonotonicNow() + absl::Seconds(30);
  while (r.checks_total() == 0 && SystemClock::Get()->MonotonicNow() < deadline) {
    now_ += absl::Milliseconds(100);
    r = (*probe)->Poll(now_);
    std::this_thread::yield();
  }
  EXPECT_EQ(r.state(), v1::ENDPOINT_STATE_READY);
  ASSERT_GE(r.checks_total(), 1u);
  EXPECT_EQ(r.check_failures_total(), r.checks_total());
  EXPECT_THAT(http_.last_post_body(), HasSubstr(R"("model":"m-7b")"));
  const uint64_t checks = r.checks_total();
  http_.SetError("/health", "Couldn't connect to server");
  for (int i = 0; i < 3; ++i) r = (*probe)->Poll(now_ += absl::Milliseconds(100));
  EXPECT_EQ(r.state(), v1::ENDPOINT_STATE_UNHEALTHY);
  EXPECT_GE(r.checks_total(), checks);
}

}  // namespace
}  // namespace switchboard::agent
