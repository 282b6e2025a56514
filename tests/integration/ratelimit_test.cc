// The control plane's Rate Limit Service as Envoy reaches it: the real binary on loopback,
// its limits in the --config file, a client built from the same protos (Envoy's RLS v3),
// reloads on SIGHUP and `sbctl limits`. Hour windows, so that the real clock crossing a
// second or minute boundary cannot change a count during the test.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/net.h"
#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

using envoy::service::ratelimit::v3::RateLimitRequest;
using envoy::service::ratelimit::v3::RateLimitResponse;
using envoy::service::ratelimit::v3::RateLimitService;
using ::testing::HasSubstr;

std::string Config(int requests_per_hour, int replicas = 1) {
  return absl::StrCat(R"(
defaults:
  lb_policy: weighted
rate_limits:
  domain: llm
  replicas: )",
                      replicas, R"(
  rules:
    - name: per-tenant
      match: {tenant: "*", model: "*"}
      requests_per_hour: )",
                      requests_per_hour, R"(
      tokens_per_hour: 1000
)");
}

class RateLimitIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("rl_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_ = (dir_ / "pools.yaml").string();
    Write(Config(3));
    cp_ = Subprocess::Start("switchboard-controlplane", {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db",
                                                         (dir_ / "h.db").string(), "--config", config_});
    auto port = cp_->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(port.ok()) << port.status();
    target_ = absl::StrCat("127.0.0.1:", *port);
    stub_ = RateLimitService::NewStub(MakeChannel(target_));
  }

  void Write(const std::string& text) {
    std::ofstream out(config_, std::ios::trunc);
    out << text;
  }

  grpc::Status Call(const std::string& tenant, uint32_t hits_addend, bool tokens, RateLimitResponse* response) {
    return CallOn(stub_.get(), tenant, hits_addend, tokens, response);
  }

  static grpc::Status CallOn(RateLimitService::Stub* stub, const std::string& tenant, uint32_t hits_addend, bool tokens,
                             RateLimitResponse* response) {
    RateLimitRequest request;
    request.set_domain("llm");
    request.set_hits_addend(hits_addend);
    auto* d = request.add_descriptors();
    for (const auto& [k, v] : {std::pair<std::string, std::string>{"tenant", tenant}, {"model", "llama"}}) {
      auto* e = d->add_entries();
      e->set_key(k);
      e->set_value(v);
    }
    if (tokens) {
      auto* e = d->add_entries();
      e->set_key("unit");
      e->set_value("tokens");
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(Scaled(absl::Seconds(5))));
    return stub->ShouldRateLimit(&context, request, response);
  }

  RateLimitResponse::Code Code(const std::string& tenant) { return CodeOn(stub_.get(), tenant); }
  static RateLimitResponse::Code CodeOn(RateLimitService::Stub* stub, const std::string& tenant) {
    RateLimitResponse r;
    grpc::Status s = CallOn(stub, tenant, 0, false, &r);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return r.overall_code();
  }

  std::filesystem::path dir_;
  std::string config_;
  std::unique_ptr<Subprocess> cp_;
  std::string target_;
  std::unique_ptr<RateLimitService::Stub> stub_;
};

TEST_F(RateLimitIntegrationTest, LimitsCountsTokensAndReloads) {
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  RateLimitResponse r;
  ASSERT_TRUE(Call("a", 0, false, &r).ok());
  EXPECT_EQ(r.overall_code(), RateLimitResponse::OVER_LIMIT);
  EXPECT_EQ(r.statuses(0).current_limit().unit(), RateLimitResponse::RateLimit::HOUR);
  EXPECT_EQ(r.statuses(0).limit_remaining(), 0u);
  EXPECT_GT(r.statuses(0).duration_until_reset().seconds(), 3500);
  bool limit_header = false;
  for (const auto& h : r.response_headers_to_add()) {
    if (h.key() == "x-ratelimit-limit") limit_header = h.value() == "3, 3;w=3600";
  }
  EXPECT_TRUE(limit_header);
  // Tokens spent by tenant b (after its response) use up b's token budget.
  EXPECT_EQ(Code("b"), RateLimitResponse::OK);
  r.Clear();
  ASSERT_TRUE(Call("b", 1000, true, &r).ok());
  EXPECT_EQ(r.overall_code(), RateLimitResponse::OK);
  EXPECT_EQ(Code("b"), RateLimitResponse::OVER_LIMIT);

  // sbctl limits shows the counts.
  auto [rc, out] = RunSbctl(target_, "limits");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("domain llm: 2 descriptors counted"));
  EXPECT_THAT(out, HasSubstr("model=llama,tenant=a"));
  EXPECT_THAT(out, HasSubstr("3 requests/hour"));
  EXPECT_THAT(out, HasSubstr("1000 tokens/hour"));

  // A broken file changes nothing.
  Write("rate_limits: {rules: [{name: x, match: {tenant: '*'}, requests_per_hour: -1}]}\n");
  cp_->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor(
      [&] { return RunSbctl(target_, "events").second.find("and the running rate limits") != std::string::npos; },
      Scaled(absl::Seconds(10)), absl::Milliseconds(200)));
  EXPECT_EQ(Code("a"), RateLimitResponse::OVER_LIMIT);
  // A raised limit applies to the counts already held: a gets 2 more, not 5.
  Write(Config(5));
  cp_->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Code("a") == RateLimitResponse::OK; }, Scaled(absl::Seconds(10))));
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  EXPECT_EQ(Code("a"), RateLimitResponse::OVER_LIMIT);
  EXPECT_THAT(RunSbctl(target_, "events").second, HasSubstr("rate_limits: 1 rules"));
}

// Counts are soft state in the replica that answers (docs/operations.md): a second replica
// taking over after the first is killed mid-window starts from zero, so the descriptor
// gets up to one more window's limit. This pins down what the documentation says is lost.
TEST_F(RateLimitIntegrationTest, AReplicaKilledMidWindowLosesItsCounts) {
  auto standby = Subprocess::Start(
      "switchboard-controlplane", {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "", "--config", config_});
  auto port = standby->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string standby_target = absl::StrCat("127.0.0.1:", *port);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  EXPECT_EQ(Code("a"), RateLimitResponse::OVER_LIMIT);
  // The standby counted nothing: the primary alone answered.
  EXPECT_THAT(RunSbctl(standby_target, "limits").second, HasSubstr("0 descriptors counted"));

  cp_->Signal(SIGKILL);
  cp_->Wait();
  stub_ = RateLimitService::NewStub(MakeChannel(standby_target));
  // The window's 3 requests are forgotten: 3 more are admitted within the same hour.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  EXPECT_EQ(Code("a"), RateLimitResponse::OVER_LIMIT);
  EXPECT_THAT(RunSbctl(standby_target, "limits").second, HasSubstr("1 descriptors counted"));
}

// Divided mode (docs/operations.md): with `replicas: 2` each replica enforces ceil(5/2) = 3
// of a limit of 5. Calls alternating over the two (Envoy's round robin) are admitted up to
// 3 + 3 = 6 in all; each replica refuses past its 3, whatever the other has counted.
TEST_F(RateLimitIntegrationTest, DividedModeGivesEachReplicaItsShare) {
  // Both replicas start with the divided configuration (the fixture's replica is not used).
  const std::string divided = (dir_ / "divided.yaml").string();
  std::ofstream(divided) << Config(5, 2);
  std::unique_ptr<Subprocess> cps[2];
  std::unique_ptr<RateLimitService::Stub> stubs[2];
  std::string targets[2];
  for (int i = 0; i < 2; ++i) {
    cps[i] = Subprocess::Start("switchboard-controlplane",
                               {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "", "--config", divided});
    auto port = cps[i]->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(port.ok()) << port.status();
    targets[i] = absl::StrCat("127.0.0.1:", *port);
    stubs[i] = RateLimitService::NewStub(MakeChannel(targets[i]));
  }
  const std::string second_target = targets[1];
  RateLimitService::Stub* replicas[2] = {stubs[0].get(), stubs[1].get()};

  for (int i = 0; i < 6; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(CodeOn(replicas[i % 2], "a"), RateLimitResponse::OK);
  }
  // Each replica has counted its 3: both refuse now.
  for (RateLimitService::Stub* stub : replicas) {
    RateLimitResponse r;
    ASSERT_TRUE(CallOn(stub, "a", 0, false, &r).ok());
    EXPECT_EQ(r.overall_code(), RateLimitResponse::OVER_LIMIT);
    EXPECT_EQ(r.statuses(0).current_limit().requests_per_unit(), 3u);
    EXPECT_EQ(r.statuses(0).limit_remaining(), 0u);
  }
  // Uneven spread: another tenant's calls all reach one replica, which refuses past its
  // share although the other has counted none.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(CodeOn(replicas[1], "b"), RateLimitResponse::OK);
  EXPECT_EQ(CodeOn(replicas[1], "b"), RateLimitResponse::OVER_LIMIT);
  EXPECT_EQ(CodeOn(replicas[0], "b"), RateLimitResponse::OK);

  auto [rc, out] = RunSbctl(second_target, "limits");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("divided among 2 replicas"));
  EXPECT_THAT(out, HasSubstr("3 requests/hour"));
}

TEST_F(RateLimitIntegrationTest, StartRefusesABrokenRateLimitsBlock) {
  const std::string bad = (dir_ / "bad.yaml").string();
  std::ofstream(bad) << "rate_limits:\n  rules:\n    - {name: x, match: {tenant: '*'}, requests_per_week: 5}\n";
  auto [rc, out] = RunToExit("switchboard-controlplane",
                             {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "", "--config", bad},
                             Scaled(absl::Seconds(20)));
  EXPECT_EQ(rc, 2);
  EXPECT_THAT(out, HasSubstr("bad.yaml:3: rate_limits.rules[0].requests_per_week: unknown field"));
}

}  // namespace
}  // namespace switchboard::testing
