// The pool table's bookkeeping around DecidePick: the picks it keeps for explaining (a ring
// of the last kKeptPicks, explained only when taken) and its counts since the assignment.
#include "picker/pool_table.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace switchboard::picker {
namespace {

v1::Assignment Pool(int endpoints) {
  v1::Assignment a;
  a.set_pool("llama");
  for (int i = 0; i < endpoints; ++i) {
    v1::AssignedEndpoint* e = a.add_endpoints();
    e->set_address("10.0.0." + std::to_string(i + 1) + ":8000");
    e->set_node_id("node-" + std::to_string(i));
    e->set_weight(10);
    e->set_state(v1::ENDPOINT_STATE_READY);
    e->set_circuit(v1::CIRCUIT_STATE_CLOSED);
    e->set_slots_total(4);
    e->set_slots_free(4);
  }
  return a;
}

TEST(PoolTableTest, KeepsTheLastPicksAndExplainsThemWhenTaken) {
  PoolTable table({}, client::PickPolicy(), 1);
  ASSERT_TRUE(table.Apply(Pool(3)).ok());
  std::vector<double> prompts;
  for (int i = 0; i < 3; ++i) {
    client::PickRequest r;
    r.prompt_tokens = 100 + i;
    const client::PickResult p = table.Pick("llama", r);
    ASSERT_EQ(p.verdict, client::PickVerdict::kRoute);
    EXPECT_TRUE(p.reason.empty());  // Decided without formatting; explained when taken.
  }
  std::vector<v1::PickExplanation> picks = table.TakePicks();
  ASSERT_EQ(picks.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(picks[i].prompt_tokens(), 100 + i);  // Oldest first.
    EXPECT_EQ(picks[i].verdict(), "route");
    EXPECT_NE(picks[i].reason().find("expected TTFT"), std::string::npos) << picks[i].reason();
    ASSERT_EQ(picks[i].candidates_size(), 3);
    for (const v1::CandidateScore& c : picks[i].candidates()) EXPECT_FALSE(c.why().empty()) << c.address();
  }
  EXPECT_TRUE(table.TakePicks().empty());

  // More than it keeps: the last kKeptPicks, oldest first.
  const int n = static_cast<int>(PoolTable::kKeptPicks) + 5;
  for (int i = 0; i < n; ++i) {
    client::PickRequest r;
    r.prompt_tokens = 1000 + i;
    (void)table.Pick("llama", r);
  }
  picks = table.TakePicks();
  ASSERT_EQ(picks.size(), PoolTable::kKeptPicks);
  for (size_t i = 0; i < picks.size(); ++i) EXPECT_EQ(picks[i].prompt_tokens(), 1000 + 5 + i);
}

TEST(PoolTableTest, CountsSentAndDoneSinceTheAssignment) {
  client::PickPolicy policy;
  policy.picker.draws = 1;
  PoolTable table({}, policy, 1);
  v1::Assignment a = Pool(1);
  a.mutable_endpoints(0)->set_slots_total(1);
  a.mutable_endpoints(0)->set_slots_free(1);
  ASSERT_TRUE(table.Apply(a).ok());
  client::PickRequest r;
  r.prompt_tokens = 10;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(table.Pick("llama", r).verdict, client::PickVerdict::kRoute);
  table.Done("llama", "10.0.0.1:8000");
  table.Done("llama", "10.9.9.9:8000");  // Not in the assignment: counts nothing.
  (void)table.TakePicks();
  (void)table.Pick("llama", r);
  std::vector<v1::PickExplanation> picks = table.TakePicks();
  ASSERT_EQ(picks.size(), 1u);
  ASSERT_EQ(picks[0].candidates_size(), 1);
  EXPECT_DOUBLE_EQ(picks[0].candidates(0).in_flight(), 2);  // 3 sent, 1 done, as of this pick.
  EXPECT_EQ(table.InFlight()["llama"]["10.0.0.1:8000"], 3u);

  // A new assignment restarts the counts since it; requests in flight stay counted.
  ASSERT_TRUE(table.Apply(a).ok());
  (void)table.Pick("llama", r);
  picks = table.TakePicks();
  ASSERT_EQ(picks.size(), 1u);
  EXPECT_DOUBLE_EQ(picks[0].candidates(0).in_flight(), 0);
  EXPECT_EQ(table.InFlight()["llama"]["10.0.0.1:8000"], 4u);
}

}  // namespace
}  // namespace switchboard::picker
