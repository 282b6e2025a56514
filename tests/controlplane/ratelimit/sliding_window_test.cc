#include "controlplane/ratelimit/sliding_window.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane::ratelimit {
namespace {

using ::testing::HasSubstr;

// Times as seconds since a whole Unix second, so that window boundaries are easy to read.
absl::Time At(double seconds) {
  return absl::FromUnixSeconds(1'000'000) + absl::Milliseconds(std::llround(seconds * 1000));
}

Descriptor D(std::vector<Entry> entries) { return Descriptor{std::move(entries)}; }

RateLimitConfig OneRule(std::vector<Limit> limits, std::vector<Entry> match = {{"tenant", "*"}}) {
  RateLimitConfig c;
  c.rules.push_back(Rule{"r", std::move(match), std::move(limits)});
  return c;
}

RateLimitDecision Call(RateLimitCounters* counters, const RateLimitConfig& config, double at,
                       std::vector<Descriptor> descriptors, uint64_t hits = 1) {
  absl::StatusOr<RateLimitDecision> d = DecideRateLimit(descriptors, hits, counters, config, At(at));
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *d : RateLimitDecision{};
}

// A table of calls on one descriptor with what each must answer.
struct Step {
  double at;
  uint64_t hits;
  Code code;
  uint64_t remaining;
  absl::Duration reset;
};

void RunSteps(const RateLimitConfig& config, const std::vector<Step>& steps) {
  RateLimitCounters counters;
  for (const Step& s : steps) {
    SCOPED_TRACE(testing::Message() << "at " << s.at << " hits " << s.hits);
    RateLimitDecision d = Call(&counters, config, s.at, {D({{"tenant", "a"}})}, s.hits);
    EXPECT_EQ(d.overall, s.code) << d.reason;
    ASSERT_EQ(d.descriptors.size(), 1u);
    ASSERT_FALSE(d.descriptors[0].limits.empty());
    EXPECT_EQ(d.descriptors[0].limits[0].remaining, s.remaining) << d.reason;
    EXPECT_EQ(d.descriptors[0].limits[0].reset, s.reset) << d.reason;
  }
}

TEST(SlidingWindowTest, PerSecondIsExactToTheSecond) {
  RunSteps(OneRule({{Unit::kRequests, 1, 2}}), {
                                                   {0.0, 1, Code::kOk, 1, absl::Seconds(1)},
                                                   {0.5, 1, Code::kOk, 0, absl::Milliseconds(500)},
                                                   // Third in the same second: refused until the second ends.
                                                   {0.999, 1, Code::kOverLimit, 0, absl::Milliseconds(1)},
                                                   // The next second starts empty.
                                                   {1.0, 1, Code::kOk, 1, absl::Seconds(1)},
                                                   {1.0, 1, Code::kOk, 0, absl::Seconds(1)},
                                                   {1.2, 1, Code::kOverLimit, 0, absl::Milliseconds(800)},
                                               });
}

TEST(SlidingWindowTest, PerMinuteSlidesSecondBySecond) {
  RunSteps(OneRule({{Unit::kRequests, 60, 3}}), {
                                                    {0.0, 1, Code::kOk, 2, absl::Seconds(60)},
                                                    {30.0, 1, Code::kOk, 1, absl::Seconds(30)},
                                                    {59.0, 1, Code::kOk, 0, absl::Seconds(1)},
                                                    // Full: the hit of second 0 leaves the window at 60.0.
                                                    {59.5, 1, Code::kOverLimit, 0, absl::Milliseconds(500)},
                                                    {60.0, 1, Code::kOk, 0, absl::Seconds(30)},
                                                    // Next room when the hit of second 30 leaves at 90.0.
                                                    {60.5, 1, Code::kOverLimit, 0, absl::Milliseconds(29500)},
                                                    {89.999, 1, Code::kOverLimit, 0, absl::Milliseconds(1)},
                                                    {90.0, 1, Code::kOk, 0, absl::Seconds(29)},
                                                });
}

TEST(SlidingWindowTest, HitsAddendCountsAllOrNothing) {
  RunSteps(OneRule({{Unit::kRequests, 60, 10}}),
           {
               {0.0, 5, Code::kOk, 5, absl::Seconds(60)},
               // 5 + 6 > 10: refused and not counted, fits again when the 5 leave.
               {1.0, 6, Code::kOverLimit, 5, absl::Seconds(59)},
               {2.0, 5, Code::kOk, 0, absl::Seconds(58)},
               // More than the limit by itself never fits: the whole window.
               {61.0, 11, Code::kOverLimit, 5, absl::Seconds(60)},
               // 0 hits only checks; the 5 of second 2 leave at 62.0.
               {61.0, 0, Code::kOk, 5, absl::Seconds(1)},
           });
}

TEST(SlidingWindowTest, PerHourCountsExactlyTheLastHour) {
  RateLimitConfig config = OneRule({{Unit::kRequests, 3600, 100000}});
  RateLimitCounters counters;
  // One hit every second for two hours: the window always holds exactly the last 3600.
  for (int s = 0; s < 7200; ++s) Call(&counters, config, s, {D({{"tenant", "a"}})});
  std::vector<RateLimitCounters::Usage> usage = counters.Snapshot(config, At(7199.5));
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].status.used, 3600u);
  EXPECT_EQ(usage[0].status.reset, absl::Milliseconds(500));  // Second 3600 leaves at 7200.
}

TEST(SlidingWindowTest, TokensSpentAreCountedAndRefuseTheNextRequest) {
  RateLimitConfig config = OneRule({{Unit::kRequests, 60, 100}, {Unit::kTokens, 60, 1000}});
  RateLimitCounters counters;
  const Descriptor request = D({{"tenant", "a"}});
  const Descriptor spent = D({{"tenant", "a"}, {"unit", "tokens"}});
  EXPECT_EQ(Call(&counters, config, 0, {request}).overall, Code::kOk);
  RateLimitDecision d = Call(&counters, config, 1, {spent}, 900);
  EXPECT_EQ(d.overall, Code::kOk) << d.reason;
  ASSERT_EQ(d.descriptors[0].limits.size(), 1u);  // Only the token limit.
  EXPECT_EQ(d.descriptors[0].limits[0].remaining, 100u);
  EXPECT_TRUE(d.descriptors[0].tokens);
  // A report past the limit is still counted (the tokens were spent) and says so.
  d = Call(&counters, config, 2, {spent}, 200);
  EXPECT_EQ(d.overall, Code::kOverLimit);
  EXPECT_EQ(d.descriptors[0].limits[0].used, 1100u);
  // 100 over: they leave with the 900 of second 1, at 61.0.
  EXPECT_EQ(d.descriptors[0].limits[0].reset, absl::Seconds(59));
  // The next request is refused by the token limit, not counted, with the same reset.
  d = Call(&counters, config, 3, {request});
  EXPECT_EQ(d.overall, Code::kOverLimit);
  EXPECT_EQ(d.descriptors[0].limits[0].limit.unit, Unit::kTokens);
  EXPECT_EQ(d.descriptors[0].limits[0].reset, absl::Seconds(58));
  EXPECT_THAT(d.reason, HasSubstr("1100 of 1000 tokens per minute"));
  d = Call(&counters, config, 61, {request});
  EXPECT_EQ(d.overall, Code::kOk) << d.reason;
  // Requests counted: 1 at 0 (gone by 60) and 1 at 61; the most constraining limit first.
  ASSERT_EQ(d.descriptors[0].limits.size(), 2u);
  EXPECT_EQ(d.descriptors[0].limits[0].limit.unit, Unit::kRequests);
  EXPECT_EQ(d.descriptors[0].limits[0].used, 1u);
  EXPECT_EQ(d.descriptors[0].limits[1].used, 200u);
}

TEST(SlidingWindowTest, ATokenReportWithOnlyRequestLimitsIsAllowedAndNotCounted) {
  // The gateway reports tokens on every (tenant, unit=tokens) descriptor, also for tenants
  // whose rules limit requests alone.
  RateLimitConfig config = OneRule({{Unit::kRequests, 60, 1}});
  config.max_descriptors = 1;
  RateLimitCounters counters;
  RateLimitDecision d = Call(&counters, config, 0, {D({{"tenant", "a"}, {"unit", "tokens"}})}, 500);
  EXPECT_EQ(d.overall, Code::kOk) << d.reason;
  ASSERT_EQ(d.descriptors.size(), 1u);
  EXPECT_TRUE(d.descriptors[0].tokens);
  EXPECT_TRUE(d.descriptors[0].limits.empty());
  EXPECT_THAT(d.reason, HasSubstr("no token limit applies"));
  EXPECT_EQ(MostConstraining(d), nullptr);
  EXPECT_EQ(counters.size(), 0u);
  // Nothing was counted against the request limit, and the report took no room of the cap.
  EXPECT_EQ(Call(&counters, config, 1, {D({{"tenant", "b"}})}).overall, Code::kOk);
  d = Call(&counters, config, 2, {D({{"tenant", "b"}, {"unit", "tokens"}})}, 10);
  EXPECT_EQ(d.overall, Code::kOk) << d.reason;
  EXPECT_EQ(counters.size(), 1u);
  d = Call(&counters, config, 3, {D({{"tenant", "b"}})});
  EXPECT_EQ(d.overall, Code::kOverLimit);
  EXPECT_EQ(d.descriptors[0].limits[0].used, 1u);
}

TEST(SlidingWindowTest, WildcardCountsEachValueAndExactRulesAddTheirLimits) {
  RateLimitConfig config;
  config.rules.push_back({"per-tenant", {{"tenant", "*"}, {"model", "*"}}, {{Unit::kRequests, 60, 2}}});
  config.rules.push_back({"vip", {{"model", "m"}, {"tenant", "vip"}}, {{Unit::kRequests, 1, 1}}});
  RateLimitCounters counters;
  // Entries in any order are the same descriptor.
  EXPECT_EQ(Call(&counters, config, 0, {D({{"tenant", "a"}, {"model", "m"}})}).overall, Code::kOk);
  EXPECT_EQ(Call(&counters, config, 0, {D({{"model", "m"}, {"tenant", "a"}})}).overall, Code::kOk);
  EXPECT_EQ(Call(&counters, config, 0, {D({{"tenant", "a"}, {"model", "m"}})}).overall, Code::kOverLimit);
  EXPECT_EQ(Call(&counters, config, 0, {D({{"tenant", "b"}, {"model", "m"}})}).overall, Code::kOk);
  // vip: both rules apply; the per-second one refuses first.
  EXPECT_EQ(Call(&counters, config, 0, {D({{"tenant", "vip"}, {"model", "m"}})}).overall, Code::kOk);
  RateLimitDecision d = Call(&counters, config, 0.5, {D({{"tenant", "vip"}, {"model", "m"}})});
  EXPECT_EQ(d.overall, Code::kOverLimit);
  EXPECT_EQ(d.descriptors[0].limits[0].rule, "vip");
  EXPECT_EQ(d.descriptors[0].limits.size(), 2u);
  EXPECT_EQ(counters.size(), 3u);
}

TEST(SlidingWindowTest, UnmatchedDescriptorsAreAllowedAndNotCounted) {
  RateLimitConfig config = OneRule({{Unit::kRequests, 1, 1}});
  RateLimitCounters counters;
  RateLimitDecision d = Call(&counters, config, 0, {D({{"tenant", "a"}, {"model", "m"}})});
  EXPECT_EQ(d.overall, Code::kOk);
  EXPECT_TRUE(d.descriptors[0].limits.empty());
  EXPECT_THAT(d.reason, HasSubstr("no rate limit matches"));
  EXPECT_EQ(counters.size(), 0u);
}

TEST(SlidingWindowTest, ARefusedCallCountsNothingOnItsOtherDescriptors) {
  RateLimitConfig config = OneRule({{Unit::kRequests, 60, 1}});
  RateLimitCounters counters;
  EXPECT_EQ(Call(&counters, config, 0, {D({{"tenant", "a"}})}).overall, Code::kOk);
  RateLimitDecision d = Call(&counters, config, 1, {D({{"tenant", "b"}}), D({{"tenant", "a"}})});
  EXPECT_EQ(d.overall, Code::kOverLimit);
  EXPECT_EQ(d.descriptors[0].code, Code::kOk);
  EXPECT_EQ(d.descriptors[1].code, Code::kOverLimit);
  EXPECT_EQ(d.descriptors[0].limits[0].remaining, 1u);  // b's hit was not counted.
  EXPECT_EQ(Call(&counters, config, 2, {D({{"tenant", "b"}})}).overall, Code::kOk);
}

TEST(SlidingWindowTest, TheDescriptorCapRefusesNewDescriptorsAndDropsIdleOnes) {
  RateLimitConfig config = OneRule({{Unit::kRequests, 60, 10}});
  config.max_descriptors = 2;
  RateLimitCounters counters;
  Call(&counters, config, 0, {D({{"tenant", "a"}})});
  Call(&counters, config, 10, {D({{"tenant", "b"}})});
  absl::StatusOr<RateLimitDecision> d = DecideRateLimit({D({{"tenant", "c"}})}, 1, &counters, config, At(20));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(d.status().message(), HasSubstr("tenant=c"));
  EXPECT_EQ(counters.size(), 2u);
  // Known descriptors still count.
  EXPECT_EQ(Call(&counters, config, 20, {D({{"tenant", "a"}})}).descriptors[0].limits[0].used, 2u);
  // At 75 nothing of b (second 10) is left in any window: its counter makes room for c.
  // a was hit at 20 and stays.
  d = DecideRateLimit({D({{"tenant", "c"}})}, 1, &counters, config, At(75));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(counters.size(), 2u);
  std::vector<RateLimitCounters::Usage> usage = counters.Snapshot(config, At(75));
  ASSERT_EQ(usage.size(), 2u);
  EXPECT_EQ(usage[0].descriptor[0].value, "a");
  EXPECT_EQ(usage[1].descriptor[0].value, "c");
}

TEST(SlidingWindowTest, BadDescriptorsAreRefusedAndChangeNothing) {
  RateLimitConfig config = OneRule({{Unit::kRequests, 60, 10}});
  RateLimitCounters counters;
  const std::vector<std::vector<Descriptor>> bad = {
      {D({})},
      {D({{"tenant", ""}})},
      {D({{"", "a"}})},
      {D({{"tenant", "a"}, {"tenant", "b"}})},
      {D({{"tenant", "a"}, {"unit", "bytes"}})},
      // One bad descriptor spoils the call: the good one is not counted either.
      {D({{"tenant", "a"}}), D({})},
  };
  for (const auto& call : bad) {
    absl::StatusOr<RateLimitDecision> d = DecideRateLimit(call, 1, &counters, config, At(0));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
  }
  EXPECT_EQ(counters.size(), 0u);
}

TEST(SlidingWindowTest, ConfigValidation) {
  struct Case {
    std::string name;
    RateLimitConfig config;
    std::string error;  // Empty: valid.
  };
  auto with = [](auto edit) {
    RateLimitConfig c = OneRule({{Unit::kRequests, 60, 10}});
    edit(c);
    return c;
  };
  const std::vector<Case> cases = {
      {"valid", with([](RateLimitConfig&) {}), ""},
      {"no domain", with([](RateLimitConfig& c) { c.domain.clear(); }), "domain"},
      {"no cap", with([](RateLimitConfig& c) { c.max_descriptors = 0; }), "max_descriptors"},
      {"no name", with([](RateLimitConfig& c) { c.rules[0].name.clear(); }), "without a name"},
      {"twice", with([](RateLimitConfig& c) { c.rules.push_back(c.rules[0]); }), "defined twice"},
      {"empty match", with([](RateLimitConfig& c) { c.rules[0].match.clear(); }), "match is empty"},
      {"unit key", with([](RateLimitConfig& c) {
         c.rules[0].match.push_back({"unit", "x"});
       }),
       "unit"},
      {"dup key", with([](RateLimitConfig& c) {
         c.rules[0].match.push_back({"tenant", "x"});
       }),
       "twice"},
      {"no limits", with([](RateLimitConfig& c) { c.rules[0].limits.clear(); }), "no limits"},
      {"window", with([](RateLimitConfig& c) { c.rules[0].limits[0].window_seconds = 10; }), "1, 60 or 3600"},
      {"zero", with([](RateLimitConfig& c) { c.rules[0].limits[0].limit = 0; }), "must be > 0"},
      {"no replicas", with([](RateLimitConfig& c) { c.replicas = 0; }), "replicas"},
      {"too many replicas", with([](RateLimitConfig& c) { c.replicas = 1001; }), "replicas"},
  };
  for (const Case& c : cases) {
    absl::Status s = ValidateRateLimitConfig(c.config);
    if (c.error.empty()) {
      EXPECT_TRUE(s.ok()) << c.name << ": " << s;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
      EXPECT_THAT(s.message(), HasSubstr(c.error)) << c.name;
    }
  }
}

TEST(SlidingWindowTest, NewLimitsApplyToTheCountsAlreadyHeld) {
  RateLimitConfig config = OneRule({{Unit::kRequests, 60, 10}});
  RateLimitCounters counters;
  for (int i = 0; i < 5; ++i) Call(&counters, config, i, {D({{"tenant", "a"}})});
  // A reload lowers the limit: the 5 already counted are held against it.
  RateLimitConfig lower = OneRule({{Unit::kRequests, 60, 5}});
  RateLimitDecision d = Call(&counters, lower, 10, {D({{"tenant", "a"}})});
  EXPECT_EQ(d.overall, Code::kOverLimit);
  EXPECT_EQ(d.descriptors[0].limits[0].reset, absl::Seconds(50));
}

TEST(SlidingWindowTest, ReplicaShareDividesEveryLimitRoundingUp) {
  struct Case {
    uint64_t limit;
    uint32_t replicas;
    uint64_t share;
  };
  const std::vector<Case> cases = {
      {10, 1, 10}, {10, 2, 5}, {11, 2, 6}, {3, 2, 2}, {1, 3, 1}, {2, 5, 1}, {1000, 3, 334},
  };
  for (const Case& c : cases) {
    RateLimitConfig config = OneRule({{Unit::kRequests, 60, c.limit}, {Unit::kTokens, 3600, c.limit * 100}});
    config.replicas = c.replicas;
    const RateLimitConfig share = ReplicaShare(config);
    SCOPED_TRACE(testing::Message() << c.limit << " over " << c.replicas);
    EXPECT_EQ(share.replicas, 1u);
    EXPECT_EQ(share.rules[0].limits[0].limit, c.share);
    EXPECT_EQ(share.rules[0].limits[1].limit, (c.limit * 100 + c.replicas - 1) / c.replicas);
    EXPECT_TRUE(ValidateRateLimitConfig(share).ok());
    // The share is what one replica's counters admit.
    RateLimitCounters counters;
    for (uint64_t i = 0; i < c.share; ++i) {
      EXPECT_EQ(Call(&counters, share, 1, {D({{"tenant", "a"}})}).overall, Code::kOk);
    }
    EXPECT_EQ(Call(&counters, share, 1, {D({{"tenant", "a"}})}).overall, Code::kOverLimit);
  }
}

// One call naming many new descriptors grows the counter table while it counts; every
// descriptor's hit lands on its own counter (the table moving its entries must not lose one).
TEST(SlidingWindowTest, ManyNewDescriptorsInOneCallAreEachCounted) {
  RateLimitConfig config = OneRule({{Unit::kRequests, 60, 1}});
  RateLimitCounters counters;
  std::vector<Descriptor> many;
  for (int i = 0; i < 40; ++i) many.push_back(D({{"tenant", absl::StrCat("t", i)}}));
  EXPECT_EQ(Call(&counters, config, 0, many).overall, Code::kOk);
  for (int i = 0; i < 40; ++i) {
    RateLimitDecision d = Call(&counters, config, 1, {many[i]});
    EXPECT_EQ(d.overall, Code::kOverLimit) << "t" << i << ": " << d.reason;
  }
}

// A token report matched only by rules that limit requests (Envoy's descriptors, or the
// picker's combinations of tenant, class and model) counts nothing and answers OK.
TEST(SlidingWindowTest, ATokenReportOnARuleWithoutTokenLimitsIsNotCounted) {
  RateLimitConfig config = OneRule({{Unit::kRequests, 3600, 3}}, {{"tenant", "*"}, {"model", "*"}});
  config.rules.push_back(Rule{"t", {{"tenant", "*"}}, {{Unit::kTokens, 3600, 100}}});
  RateLimitCounters counters;
  for (int i = 0; i < 4; ++i) {
    Call(&counters, config, 1, {D({{"tenant", "a"}}), D({{"model", "m"}}), D({{"tenant", "a"}, {"model", "m"}})});
  }
  RateLimitDecision d = Call(&counters, config, 2,
                             {D({{"tenant", "a"}, {"unit", "tokens"}}), D({{"model", "m"}, {"unit", "tokens"}}),
                              D({{"tenant", "a"}, {"model", "m"}, {"unit", "tokens"}})},
                             150);
  // Only (tenant=a) has a token limit: its 150 tokens are counted and over it; the
  // others match rules without token limits and say so.
  EXPECT_EQ(d.overall, Code::kOverLimit) << d.reason;
  EXPECT_EQ(d.descriptors[0].code, Code::kOverLimit);
  EXPECT_TRUE(d.descriptors[2].limits.empty());
  EXPECT_THAT(d.descriptors[2].reason, HasSubstr("no token limit applies"));
}
}  // namespace
}  // namespace switchboard::controlplane::ratelimit
