#include "client/pick_decision.h"

#include <map>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace switchboard::client {
namespace {

CandidateEndpoint Endpoint(const std::string& address, uint32_t weight, uint32_t slots, uint32_t free,
                           double prefill = 0, uint32_t queue = 0) {
  CandidateEndpoint c;
  c.address = address;
  c.load.weight = weight;
  c.load.slots_total = slots;
  c.load.slots_free = free;
  c.load.queue_depth = queue;
  c.load.prefill_tokens_per_second = prefill;
  c.load.decode_tokens_per_second = 30;
  return c;
}

struct Case {
  std::string name;
  std::vector<CandidateEndpoint> endpoints;
  PickRequest request;
  PickPolicy policy;
  PickVerdict verdict;
  std::vector<std::string> endpoints_out;  // Checked when not empty.
  std::string reason_has;
};

TEST(DecidePickTest, Table) {
  PickPolicy shed;
  shed.shed_occupancy = 1.5;
  // Candidates are drawn (8 by default); enough draws that every endpoint is among them.
  PickPolicy many_draws;
  many_draws.picker.draws = 64;
  PickPolicy one_fallback = many_draws;
  one_fallback.fallbacks = 1;
  PickRequest long_prompt;
  long_prompt.prompt_tokens = 8000;
  PickRequest subset_b = long_prompt;
  subset_b.subset = {"b:1"};
  PickRequest subset_none;
  subset_none.subset = {"z:9"};
  const std::vector<Case> cases = {
      {"empty pool", {}, {}, {}, PickVerdict::kUnavailable, {}, "no endpoints"},
      {"all excluded", {Endpoint("a:1", 0, 4, 4)}, {}, {}, PickVerdict::kUnavailable, {}, "weight 0"},
      {"subset with no ready endpoint",
       {Endpoint("a:1", 10, 4, 4)},
       subset_none,
       {},
       PickVerdict::kUnavailable,
       {},
       "subset"},
      {"long prompt to the fast server, fallbacks by expected TTFT",
       {Endpoint("slow:1", 10, 4, 4, 1000), Endpoint("fast:1", 10, 4, 4, 10000), Endpoint("mid:1", 10, 4, 4, 4000)},
       long_prompt,
       many_draws,
       PickVerdict::kRoute,
       {"fast:1", "mid:1", "slow:1"},
       "fast:1"},
      {"fallbacks capped",
       {Endpoint("a:1", 10, 4, 4, 1000), Endpoint("b:1", 10, 4, 4, 900), Endpoint("c:1", 10, 4, 4, 800)},
       long_prompt,
       one_fallback,
       PickVerdict::kRoute,
       {"a:1", "b:1"},
       ""},
      {"subset hint restricts the pick",
       {Endpoint("a:1", 10, 4, 4, 10000), Endpoint("b:1", 10, 4, 4, 100)},
       subset_b,
       {},
       PickVerdict::kRoute,
       {"b:1"},
       "(1 eligible)"},
      {"shed past the bound",
       {Endpoint("a:1", 10, 2, 0, 0, 2), Endpoint("b:1", 10, 2, 0, 0, 2)},
       {},
       shed,
       PickVerdict::kShed,
       {},
       "> bound 1.50"},
      {"busy but under the bound",
       {Endpoint("a:1", 10, 2, 0, 0, 0), Endpoint("b:1", 10, 2, 0, 0, 1)},
       {},
       shed,
       PickVerdict::kRoute,
       {},
       ""},
  };
  for (const Case& c : cases) {
    std::mt19937_64 rng(7);
    const PickResult r = DecidePick(c.endpoints, c.request, c.policy, rng);
    EXPECT_EQ(r.verdict, c.verdict) << c.name << ": " << r.reason;
    if (!c.endpoints_out.empty()) {
      EXPECT_EQ(r.endpoints, c.endpoints_out) << c.name;
    }
    EXPECT_NE(r.reason.find(c.reason_has), std::string::npos) << c.name << ": " << r.reason;
    if (r.verdict == PickVerdict::kShed) {
      EXPECT_EQ(r.retry_after, c.policy.retry_after) << c.name;
    }
  }
}

TEST(DecidePickTest, SessionAffinityStaysPutUnlessFull) {
  std::vector<CandidateEndpoint> eps = {Endpoint("a:1", 10, 4, 4), Endpoint("b:1", 10, 4, 4),
                                        Endpoint("c:1", 10, 4, 4)};
  PickRequest req;
  req.session_id = "user-42";
  std::mt19937_64 rng(1);
  const std::string home = DecidePick(eps, req, {}, rng).endpoints.front();
  for (int i = 0; i < 20; ++i) {
    const PickResult r = DecidePick(eps, req, {}, rng);
    EXPECT_EQ(r.endpoints.front(), home);
    EXPECT_NE(r.reason.find("session affinity"), std::string::npos) << r.reason;
  }
  // Sessions spread over the endpoints.
  std::map<std::string, int> homes;
  for (int s = 0; s < 300; ++s) {
    req.session_id = "s" + std::to_string(s);
    ++homes[DecidePick(eps, req, {}, rng).endpoints.front()];
  }
  for (const auto& e : eps) EXPECT_GT(homes[e.address], 50) << e.address;
  // A full home is passed over.
  req.session_id = "user-42";
  for (CandidateEndpoint& e : eps) {
    if (e.address == home) e.load.slots_free = 0;
  }
  const PickResult r = DecidePick(eps, req, {}, rng);
  EXPECT_NE(r.endpoints.front(), home);
  EXPECT_NE(r.reason.find("full"), std::string::npos) << r.reason;
}

TEST(DecidePickTest, OwnRecentSendsCountTimesReplicas) {
  PickerEndpoint e;
  e.slots_total = 4;
  e.slots_free = 4;
  e.sent_since_assignment = 3;
  e.done_since_assignment = 1;
  PickerConfig config;
  EXPECT_DOUBLE_EQ(EstimatedOccupancy(e, config), 2);
  config.gateways = 4;
  EXPECT_DOUBLE_EQ(EstimatedOccupancy(e, config), 8);
  e.done_since_assignment = 9;  // Finished more than it sent since: never below zero.
  EXPECT_DOUBLE_EQ(EstimatedOccupancy(e, config), 0);
}

// The decision explains itself per endpoint: what `sbctl explain POOL --request` shows.
TEST(DecidePickTest, EveryEndpointSaysWhyItWasOrWasNotPicked) {
  std::mt19937_64 rng(7);
  PickPolicy policy;
  policy.picker.draws = 64;
  policy.fallbacks = 1;
  PickRequest request;
  request.prompt_tokens = 8000;
  const std::vector<CandidateEndpoint> eps = {Endpoint("slow:1", 10, 4, 3, 1000), Endpoint("fast:1", 10, 4, 4, 10000),
                                              Endpoint("mid:1", 10, 4, 4, 4000), Endpoint("gone:1", 0, 4, 4, 9000)};
  PickResult r = DecidePick(eps, request, policy, rng);
  ASSERT_EQ(r.verdict, PickVerdict::kRoute);
  ASSERT_EQ(r.scores.size(), 4u);
  std::map<std::string, ScoredEndpoint> by;
  for (const ScoredEndpoint& s : r.scores) by[s.address] = s;
  EXPECT_EQ(r.scores.back().address, "gone:1");  // Excluded ones last.
  EXPECT_EQ(by["fast:1"].why, "picked: lowest expected TTFT of 64 weighted draws");
  EXPECT_NEAR(by["fast:1"].expected_ttft_seconds, 8000.0 / 10000 + 1.0 / 30, 1e-9);
  EXPECT_NE(by["mid:1"].why.find("passed over: expected TTFT 2.033s > 0.833s; fallback 1"), std::string::npos)
      << by["mid:1"].why;
  EXPECT_EQ(by["slow:1"].why.find("fallback"), std::string::npos) << by["slow:1"].why;
  EXPECT_DOUBLE_EQ(by["slow:1"].occupancy, 1);  // One of its 4 slots busy.
  EXPECT_EQ(by["slow:1"].slots_total, 4u);
  EXPECT_EQ(by["gone:1"].why, "excluded: weight 0 (not ready, circuit open or drained)");
  EXPECT_EQ(by["gone:1"].expected_ttft_seconds, 0);

  // One draw among weights 1 and 128: the light one is (with this seed) not drawn.
  policy.picker.draws = 1;
  r = DecidePick({Endpoint("light:1", 1, 4, 4, 1000), Endpoint("heavy:1", 128, 4, 4, 1000)}, request, policy, rng);
  ASSERT_EQ(r.endpoints.front(), "heavy:1");
  EXPECT_EQ(r.scores[0].why, "not drawn (weight 1 of 129); fallback 1");

  // A subset hint excludes the rest; shedding routes none.
  request.subset = {"fast:1"};
  r = DecidePick(eps, request, policy, rng);
  for (const ScoredEndpoint& s : r.scores) {
    if (s.address == "slow:1") {
      EXPECT_EQ(s.why, "excluded: not in the gateway's subset hint");
    }
  }
  request.subset.clear();
  policy.shed_occupancy = 0.01;
  r = DecidePick(eps, request, policy, rng);
  ASSERT_EQ(r.verdict, PickVerdict::kShed);
  EXPECT_EQ(r.scores[0].why, "not routed: the pool sheds");
}

// PickDetail::kFacts leaves the lines to ExplainPick, which writes the same ones.
TEST(DecidePickTest, FactsExplainedLaterReadAsExplainedAtOnce) {
  const std::vector<CandidateEndpoint> eps = {Endpoint("slow:1", 10, 4, 3, 1000), Endpoint("fast:1", 10, 4, 4, 10000),
                                              Endpoint("mid:1", 1, 4, 4, 4000), Endpoint("gone:1", 0, 4, 4, 9000)};
  PickRequest plain;
  plain.prompt_tokens = 3000;
  PickRequest session = plain;
  session.session_id = "user-7";
  PickRequest subset = plain;
  subset.subset = {"mid:1", "slow:1"};
  PickRequest nowhere = plain;
  nowhere.subset = {"gone:1"};
  PickPolicy policy;
  policy.picker.draws = 2;
  PickPolicy full_sessions = policy;
  full_sessions.affinity_max_occupancy = 0;  // Every session's server counts as full.
  PickPolicy shed = policy;
  shed.shed_occupancy = 0.01;
  const struct {
    const char* name;
    PickRequest request;
    PickPolicy policy;
    PickVerdict verdict;
  } cases[] = {{"draws", plain, policy, PickVerdict::kRoute},
               {"session", session, policy, PickVerdict::kRoute},
               {"session's server full", session, full_sessions, PickVerdict::kRoute},
               {"subset", subset, policy, PickVerdict::kRoute},
               {"shed", plain, shed, PickVerdict::kShed},
               {"no endpoint", nowhere, policy, PickVerdict::kUnavailable}};
  for (const auto& c : cases) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
      std::mt19937_64 rng_now(seed), rng_later(seed);
      const PickResult now = DecidePick(eps, c.request, c.policy, rng_now);
      PickResult later = DecidePick(eps, c.request, c.policy, rng_later, PickDetail::kFacts);
      ASSERT_EQ(now.verdict, c.verdict) << c.name;
      EXPECT_EQ(later.verdict, now.verdict) << c.name;
      EXPECT_EQ(later.endpoints, now.endpoints) << c.name;
      if (c.verdict != PickVerdict::kUnavailable) {
        EXPECT_TRUE(later.reason.empty()) << c.name;
        for (const ScoredEndpoint& s : later.scores) EXPECT_TRUE(s.why.empty()) << c.name;
      }
      ExplainPick(&later);
      EXPECT_EQ(later.reason, now.reason) << c.name;
      ASSERT_EQ(later.scores.size(), now.scores.size()) << c.name;
      for (size_t i = 0; i < now.scores.size(); ++i) {
        EXPECT_FALSE(now.scores[i].why.empty()) << c.name;
        EXPECT_EQ(later.scores[i].why, now.scores[i].why) << c.name;
      }
      ExplainPick(&later);  // Once explained, again changes nothing.
      EXPECT_EQ(later.reason, now.reason) << c.name;
    }
  }
  // The caller's prefix leads the reason.
  std::mt19937_64 rng(3);
  PickResult r = DecidePick(eps, plain, policy, rng, PickDetail::kFacts);
  r.reason_prefix = "class gold (x-priority): ";
  ExplainPick(&r);
  EXPECT_EQ(r.reason.rfind("class gold (x-priority): ", 0), 0u) << r.reason;
  EXPECT_NE(r.reason.find("expected TTFT"), std::string::npos) << r.reason;
}

}  // namespace
}  // namespace switchboard::client
