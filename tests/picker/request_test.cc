#include "picker/request.h"

#include <string>

#include "gtest/gtest.h"

namespace switchboard::picker {
namespace {

TEST(RequestTest, EstimateIsFourBytesPerTokenRoundedUp) {
  EXPECT_EQ(EstimateTokens(""), 0);
  EXPECT_EQ(EstimateTokens("abcd"), 1);
  EXPECT_EQ(EstimateTokens("abcde"), 2);
  EXPECT_EQ(EstimateTokens(std::string(4000, 'x')), 1000);
}

TEST(RequestTest, Table) {
  struct Case {
    std::string path, body;
    bool ok;
    std::string model;
    double tokens;
  };
  const std::string k400(400, 'x');
  const Case cases[] = {
      {"/v1/chat/completions", R"({"model":"m","messages":[{"role":"user","content":")" + k400 + R"("}]})", true, "m",
       100 + 4},
      {"/v1/chat/completions",
       R"({"model":"m","messages":[{"role":"system","content":"abcd"},{"role":"user","content":[{"type":"text","text":"abcdabcd"},{"type":"image_url","image_url":{"url":"data:"}}]}]})",
       true, "m", 3 + 8},
      {"/v1/completions", R"({"model":"m2","prompt":"abcdabcdabcd"})", true, "m2", 3},
      {"/v1/completions", R"({"model":"m2","prompt":["abcd","abcd"]})", true, "m2", 2},
      {"/v1/completions", R"({"model":"m2"})", true, "m2", 0},
      {"/v1/completions", R"({"prompt":"x"})", false, "", 0},
      {"/v1/completions", R"({"model":7})", false, "", 0},
      {"/v1/completions", R"([1,2])", false, "", 0},
      {"/v1/completions", R"({"model":"m",)", false, "", 0},
  };
  for (const Case& c : cases) {
    auto r = ParseInferenceRequest(c.path, c.body);
    ASSERT_EQ(r.ok(), c.ok) << c.body << ": " << r.status();
    if (!c.ok) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
      continue;
    }
    EXPECT_EQ(r->model, c.model) << c.body;
    EXPECT_EQ(r->prompt_tokens, c.tokens) << c.body;
  }
}

}  // namespace
}  // namespace switchboard::picker
