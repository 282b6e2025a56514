#include "controlplane/fleet/recent_picks.h"

#include "gtest/gtest.h"

namespace switchboard::controlplane {
namespace {

v1::PickExplanation Pick(const std::string& pool, const std::string& reason) {
  v1::PickExplanation p;
  p.set_pool(pool);
  p.set_reason(reason);
  return p;
}

TEST(RecentPicksTest, KeepsTheNewestPerPoolWithinBounds) {
  RecentPicks picks(/*per_pool=*/3, /*max_pools=*/2);
  for (int i = 1; i <= 5; ++i) picks.Add(Pick("llama", std::to_string(i)));
  picks.Add(Pick("qwen", "q"));
  picks.Add(Pick("third", "dropped"));  // Past max_pools.
  std::vector<v1::PickExplanation> latest = picks.Latest("llama", 10);
  ASSERT_EQ(latest.size(), 3u);        // The oldest two fell off.
  EXPECT_EQ(latest[0].reason(), "5");  // Newest first.
  EXPECT_EQ(latest[2].reason(), "3");
  EXPECT_EQ(picks.Latest("llama", 1).size(), 1u);
  EXPECT_EQ(picks.Latest("qwen", 10).size(), 1u);
  EXPECT_TRUE(picks.Latest("third", 10).empty());
  EXPECT_TRUE(picks.Latest("none", 10).empty());
}

}  // namespace
}  // namespace switchboard::controlplane
