// Envoy's Rate Limit Service over real gRPC on loopback (port 0), with a client built from
// the same protos and a fake clock: counting exact at window boundaries, reset, token
// accounting with hits_addend, reload, errors, and the x-ratelimit-* headers.
#include "controlplane/ratelimit/rls_service.h"

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "common/clock.h"
#include "controlplane/ratelimit/config.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane::ratelimit {
namespace {

using envoy::service::ratelimit::v3::RateLimitRequest;
using envoy::service::ratelimit::v3::RateLimitResponse;
using envoy::service::ratelimit::v3::RateLimitService;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"(
rate_limits:
  domain: llm
  max_descriptors: 3
  rules:
    - name: per-tenant
      match: {tenant: "*", model: "*"}
      requests_per_minute: 3
      tokens_per_minute: 1000
)";

RateLimitConfig MustParse(const std::string& yaml) {
  absl::StatusOr<RateLimitConfig> c = ParseRateLimitConfig(yaml, "test.yaml");
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : RateLimitConfig{};
}

class RlsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    limiter_ = std::make_unique<RateLimiter>(MustParse(kConfig), &clock_);
    metrics_ = std::make_unique<RateLimitMetrics>(registry_);
    service_ = std::make_unique<RateLimitServiceImpl>(limiter_.get(), nullptr, metrics_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    stub_ = RateLimitService::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(); }

  grpc::Status Call(const std::string& tenant, uint32_t hits_addend, RateLimitResponse* response, bool tokens = false,
                    const std::string& domain = "llm") {
    RateLimitRequest request;
    request.set_domain(domain);
    request.set_hits_addend(hits_addend);
    auto* d = request.add_descriptors();
    auto* e = d->add_entries();
    e->set_key("tenant");
    e->set_value(tenant);
    e = d->add_entries();
    e->set_key("model");
    e->set_value("llama");
    if (tokens) {
      e = d->add_entries();
      e->set_key("unit");
      e->set_value("tokens");
    }
    grpc::ClientContext context;
    return stub_->ShouldRateLimit(&context, request, response);
  }

  RateLimitResponse::Code Code(const std::string& tenant, uint32_t hits_addend = 0) {
    RateLimitResponse r;
    grpc::Status s = Call(tenant, hits_addend, &r);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return r.overall_code();
  }

  static std::map<std::string, std::string> Headers(const RateLimitResponse& r) {
    std::map<std::string, std::string> out;
    for (const auto& h : r.response_headers_to_add()) out[h.key()] = h.value();
    return out;
  }

  // Starts on a whole second (the fake clock starts on one).
  FakeClock clock_;
  prometheus::Registry registry_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<RateLimitMetrics> metrics_;
  std::unique_ptr<RateLimitServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<RateLimitService::Stub> stub_;
};

TEST_F(RlsServiceTest, CountsExactlyAtTheWindowBoundary) {
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);  // Second 0.
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);  // Second 30.
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);  // Second 30.
  clock_.Advance(absl::Milliseconds(29999));    // 59.999: second 0 is still in the window.
  RateLimitResponse r;
  ASSERT_TRUE(Call("a", 0, &r).ok());
  EXPECT_EQ(r.overall_code(), RateLimitResponse::OVER_LIMIT);
  ASSERT_EQ(r.statuses_size(), 1);
  EXPECT_EQ(r.statuses(0).code(), RateLimitResponse::OVER_LIMIT);
  EXPECT_EQ(r.statuses(0).current_limit().requests_per_unit(), 3u);
  EXPECT_EQ(r.statuses(0).current_limit().unit(), RateLimitResponse::RateLimit::MINUTE);
  EXPECT_EQ(r.statuses(0).current_limit().name(), "per-tenant:requests");
  EXPECT_EQ(r.statuses(0).limit_remaining(), 0u);
  EXPECT_EQ(r.statuses(0).duration_until_reset().seconds(), 0);
  EXPECT_EQ(r.statuses(0).duration_until_reset().nanos(), 1'000'000);  // 1 ms.
  std::map<std::string, std::string> h = Headers(r);
  EXPECT_EQ(h["x-ratelimit-limit"], "3, 3;w=60");
  EXPECT_EQ(h["x-ratelimit-remaining"], "0");
  EXPECT_EQ(h["x-ratelimit-reset"], "1");
  clock_.Advance(absl::Milliseconds(1));  // 60.000: the hit of second 0 has left.
  r.Clear();
  ASSERT_TRUE(Call("a", 0, &r).ok());
  EXPECT_EQ(r.overall_code(), RateLimitResponse::OK);
  EXPECT_EQ(r.statuses(0).limit_remaining(), 0u);
  // Reset: the two hits of second 30 leave at 90; then the quota is back.
  EXPECT_EQ(r.statuses(0).duration_until_reset().seconds(), 30);
  EXPECT_EQ(Code("a"), RateLimitResponse::OVER_LIMIT);
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  EXPECT_EQ(Code("a"), RateLimitResponse::OVER_LIMIT);
  // Other tenants have their own counts.
  EXPECT_EQ(Code("b"), RateLimitResponse::OK);
}

TEST_F(RlsServiceTest, HitsAddendCountsTokensAfterTheResponse) {
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  RateLimitResponse r;
  // Envoy's apply_on_stream_done: the response's tokens as hits_addend.
  ASSERT_TRUE(Call("a", 1200, &r, /*tokens=*/true).ok());
  EXPECT_EQ(r.overall_code(), RateLimitResponse::OVER_LIMIT);
  EXPECT_EQ(r.statuses(0).current_limit().name(), "per-tenant:tokens");
  EXPECT_EQ(r.statuses(0).current_limit().requests_per_unit(), 1000u);
  // The next request of the tenant is refused by its token budget for the minute.
  r = RateLimitResponse();
  ASSERT_TRUE(Call("a", 0, &r).ok());
  EXPECT_EQ(r.overall_code(), RateLimitResponse::OVER_LIMIT);
  EXPECT_EQ(Headers(r)["x-ratelimit-limit"], "1000, 1000;w=60");
  EXPECT_EQ(Headers(r)["x-ratelimit-reset"], "60");
  clock_.Advance(absl::Seconds(60));
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  // hits_addend on a request counts that many requests: 2 + 2 > 3.
  EXPECT_EQ(Code("c", 2), RateLimitResponse::OK);
  EXPECT_EQ(Code("c", 2), RateLimitResponse::OVER_LIMIT);
  EXPECT_EQ(Code("c", 1), RateLimitResponse::OK);
}

TEST_F(RlsServiceTest, ReloadKeepsTheCountsAndAppliesTheNewLimits) {
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  limiter_->Reload(MustParse(R"(
rate_limits:
  domain: llm
  rules:
    - name: per-tenant
      match: {tenant: "*", model: "*"}
      requests_per_minute: 2
)"));
  EXPECT_EQ(Code("a"), RateLimitResponse::OVER_LIMIT);
  limiter_->Reload(MustParse(R"(
rate_limits:
  domain: llm
  rules:
    - name: per-tenant
      match: {tenant: "*", model: "*"}
      requests_per_minute: 10
)"));
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  // A configuration without the rule limits nothing.
  limiter_->Reload(MustParse("rate_limits: {domain: llm}\n"));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  RateLimitResponse r;
  ASSERT_TRUE(Call("a", 0, &r).ok());
  EXPECT_FALSE(r.statuses(0).has_current_limit());
  EXPECT_EQ(r.response_headers_to_add_size(), 0);
}

TEST_F(RlsServiceTest, ErrorsAreClearAndCounted) {
  RateLimitResponse r;
  grpc::Status s = Call("a", 0, &r, false, "other");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("'other' is not configured"));
  RateLimitRequest empty;
  empty.set_domain("llm");
  empty.add_descriptors();
  grpc::ClientContext context;
  s = stub_->ShouldRateLimit(&context, empty, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // max_descriptors: 3.
  EXPECT_EQ(Code("a"), RateLimitResponse::OK);
  EXPECT_EQ(Code("b"), RateLimitResponse::OK);
  EXPECT_EQ(Code("c"), RateLimitResponse::OK);
  s = Call("d", 0, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("max_descriptors"));
  EXPECT_EQ(metrics_->invalid->Value(), 2);
  EXPECT_EQ(metrics_->at_cap->Value(), 1);
  EXPECT_EQ(metrics_->ok->Value(), 3);
  EXPECT_EQ(metrics_->descriptors->Value(), 3);
}

TEST(RateLimitConfigTest, ParsesAndNamesTheLineOfErrors) {
  RateLimitConfig c = MustParse(kConfig);
  EXPECT_EQ(c.domain, "llm");
  EXPECT_EQ(c.max_descriptors, 3u);
  ASSERT_EQ(c.rules.size(), 1u);
  EXPECT_EQ(c.rules[0].limits.size(), 2u);
  EXPECT_TRUE(ParseRateLimitConfig("pools: {}\n", "x.yaml")->rules.empty());
  struct Case {
    std::string yaml, error;
  };
  const std::vector<Case> cases = {
      {"rate_limits: {rules: [{name: a, match: {t: x}, requests_per_day: 1}]}\n", "unknown field"},
      {"rate_limits: {rules: [{name: a, match: {t: x}, requests_per_minute: 0}]}\n", "from 1 to"},
      {"rate_limits: {rules: [{name: a, match: {t: x}, requests_per_minute: lots}]}\n", "whole number"},
      {"rate_limits: {rules: [{name: a, match: {t: x}}]}\n", "no limits"},
      {"rate_limits: {rules: [{name: a, requests_per_minute: 1}]}\n", "match is empty"},
      {"rate_limits:\n  rules:\n    - {name: a, match: {t: x}, requests_per_minute: 1}\n"
       "    - {name: a, match: {t: y}, requests_per_minute: 1}\n",
       "defined twice"},
      {"rate_limits: {domian: x}\n", "unknown field"},
      {"rate_limits:\n  rules:\n    - {name: a, match: {unit: x}, tokens_per_hour: 5}\n", "test.yaml:3:"},
  };
  for (const Case& k : cases) {
    absl::StatusOr<RateLimitConfig> got = ParseRateLimitConfig(k.yaml, "test.yaml");
    ASSERT_FALSE(got.ok()) << k.yaml;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(got.status().message(), HasSubstr(k.error)) << k.yaml;
  }
}

// The example in docs/configuration.md parses, so the documentation cannot drift.
TEST(RateLimitConfigTest, TheDocumentedExampleParses) {
  std::ifstream in(std::string(SWITCHBOARD_DOCS_DIR) + "/configuration.md");
  ASSERT_TRUE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string md = ss.str();
  const size_t section = md.find("## Global rate limits");
  ASSERT_NE(section, std::string::npos);
  const size_t begin = md.find("```yaml\n", section);
  ASSERT_NE(begin, std::string::npos);
  const size_t end = md.find("```", begin + 8);
  RateLimitConfig c = MustParse(md.substr(begin + 8, end - begin - 8));
  EXPECT_EQ(c.domain, "switchboard");
  ASSERT_EQ(c.rules.size(), 2u);
  EXPECT_EQ(c.rules[1].name, "free-tier");
  EXPECT_EQ(c.rules[1].limits.size(), 2u);
}

}  // namespace
}  // namespace switchboard::controlplane::ratelimit
