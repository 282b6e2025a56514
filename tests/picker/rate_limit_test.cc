#include "picker/rate_limit.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace switchboard::picker {
namespace {

std::vector<std::string> Descriptors(const RateLimitKeys& keys, bool tokens) {
  envoy::service::ratelimit::v3::RateLimitRequest request;
  AddRateLimitDescriptors(keys, tokens, &request);
  std::vector<std::string> out;
  for (const auto& d : request.descriptors()) {
    std::string text;
    for (const auto& e : d.entries()) text += (text.empty() ? "" : ",") + e.key() + "=" + e.value();
    out.push_back(text);
  }
  return out;
}

TEST(RateLimitTest, OneDescriptorPerCombinationOfTheKeysPresent) {
  EXPECT_EQ(Descriptors({"a", "gold", "m"}, false),
            (std::vector<std::string>{"tenant=a", "class=gold", "tenant=a,class=gold", "model=m", "tenant=a,model=m",
                                      "class=gold,model=m", "tenant=a,class=gold,model=m"}));
  EXPECT_EQ(Descriptors({"", "", "m"}, false), (std::vector<std::string>{"model=m"}));
  EXPECT_EQ(Descriptors({"a", "", "m"}, true),
            (std::vector<std::string>{"tenant=a,unit=tokens", "model=m,unit=tokens", "tenant=a,model=m,unit=tokens"}));
  EXPECT_TRUE(Descriptors({"", "", ""}, false).empty());
}

TEST(RateLimitTest, ResponseTokensFromUsage) {
  struct Case {
    std::string body;
    std::optional<uint64_t> tokens;
  };
  const std::vector<Case> cases = {
      {R"({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}})", 10},
      {R"({"choices":[]})", std::nullopt},
      {R"({"usage":{"total_tokens":-1}})", std::nullopt},
      {"not json", std::nullopt},
      {"", std::nullopt},
      // Streamed chat completions with include_usage: the last event with usage.
      {"data: {\"choices\":[{\"delta\":{}}]}\n\ndata: {\"choices\":[],\"usage\":{\"total_tokens\":42}}\n\n"
       "data: [DONE]\n\n",
       42},
      {"data: {\"choices\":[{\"delta\":{}}]}\n\ndata: [DONE]\n\n", std::nullopt},
  };
  for (const Case& c : cases) EXPECT_EQ(ResponseTokens(c.body), c.tokens) << c.body;
}

TEST(RateLimitTest, VerdictOfACall) {
  using envoy::service::ratelimit::v3::RateLimitResponse;
  RateLimitResponse none;
  // The service failed: the failure mode decides.
  RateLimitVerdict v = ToRateLimitVerdict(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "late"), none, true);
  EXPECT_TRUE(v.admit);
  EXPECT_TRUE(v.error);
  v = ToRateLimitVerdict(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"), none, false);
  EXPECT_FALSE(v.admit);
  EXPECT_TRUE(v.error);
  EXPECT_EQ(v.reason, "rate limit service: down");

  RateLimitResponse ok;
  ok.set_overall_code(RateLimitResponse::OK);
  auto* h = ok.add_response_headers_to_add();
  h->set_key("x-ratelimit-remaining");
  h->set_value("4");
  v = ToRateLimitVerdict(grpc::Status::OK, ok, false);
  EXPECT_TRUE(v.admit);
  EXPECT_FALSE(v.error);
  ASSERT_EQ(v.headers.size(), 1u);
  EXPECT_EQ(v.headers[0].second, "4");

  // Over the limit: the longest reset among the refusing descriptors, and its limit named.
  RateLimitResponse over;
  over.set_overall_code(RateLimitResponse::OVER_LIMIT);
  auto add = [&](RateLimitResponse::Code code, const char* name, int64_t seconds) {
    auto* s = over.add_statuses();
    s->set_code(code);
    s->mutable_current_limit()->set_name(name);
    s->mutable_current_limit()->set_requests_per_unit(10);
    s->mutable_current_limit()->set_unit(RateLimitResponse::RateLimit::MINUTE);
    s->mutable_duration_until_reset()->set_seconds(seconds);
  };
  add(RateLimitResponse::OK, "ok-rule", 50);
  add(RateLimitResponse::OVER_LIMIT, "short", 2);
  add(RateLimitResponse::OVER_LIMIT, "long", 30);
  v = ToRateLimitVerdict(grpc::Status::OK, over, true);
  EXPECT_FALSE(v.admit);
  EXPECT_FALSE(v.error);
  EXPECT_EQ(v.retry_after, absl::Seconds(30));
  EXPECT_EQ(v.reason, "over the rate limit long (10 per MINUTE)");
}

}  // namespace
}  // namespace switchboard::picker
