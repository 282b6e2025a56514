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

}  // namespace
}  // namespace switchboard::picker
