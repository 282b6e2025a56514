#include "client/picker.h"

#include <map>

#include "gtest/gtest.h"

namespace switchboard::client {
namespace {

// A fast server (16 slots, 8000 prompt tokens/s, 60 tokens/s) and a slow one (4 slots,
// 1500 prompt tokens/s, 15 tokens/s), both idle, equal weights.
PickerEndpoint Fast() { return {64, 16, 16, 0, 60, 8000, 0}; }
PickerEndpoint Slow() { return {64, 4, 4, 0, 15, 1500, 0}; }

TEST(PickerTest, ExpectedTtftWorkedByHand) {
  PickerConfig c;  // Means: 1000 prompt, 130 output tokens.
  // Idle slow server, 3000-token prompt: 3000/1500 + 1/15 = 2.0667 s.
  EXPECT_NEAR(ExpectedTtftSeconds(Slow(), 3000, c, 0, 0), 2.0 + 1.0 / 15, 1e-9);
  // Full slow server with 1 queued: occupancy 5, wait (5-4+1) x (1000/1500 + 130/15)/4
  // = 2 x 9.3333/4 = 4.6667 s, plus 1000/1500 + 1/15.
  PickerEndpoint full = Slow();
  full.slots_free = 0;
  full.queue_depth = 1;
  EXPECT_NEAR(ExpectedTtftSeconds(full, 1000, c, 0, 0), 2 * (1000.0 / 1500 + 130.0 / 15) / 4 + 1000.0 / 1500 + 1.0 / 15,
              1e-9);
  // This gateway's own sends since the assignment count once per gateway sharing the pool.
  PickerEndpoint sent = Slow();
  sent.sent_since_assignment = 1;
  c.gateways = 4;  // 4 busy slots estimated: occupancy 4 -> wait 1 x service/4.
  EXPECT_NEAR(ExpectedTtftSeconds(sent, 0, c, 0, 0), (1000.0 / 1500 + 130.0 / 15) / 4 + 1.0 / 15, 1e-9);
  // Its requests that finished since count the same way: sent 3, done 2 is the same +4.
  sent.sent_since_assignment = 3;
  sent.done_since_assignment = 2;
  EXPECT_NEAR(ExpectedTtftSeconds(sent, 0, c, 0, 0), (1000.0 / 1500 + 130.0 / 15) / 4 + 1.0 / 15, 1e-9);
  // A full server whose slots this gateway has seen free up since the report: 4 busy,
  // 1 queued, 2 done x 4 gateways -> estimated idle (never below zero), no wait.
  PickerEndpoint freed = full;
  freed.done_since_assignment = 2;
  EXPECT_NEAR(ExpectedTtftSeconds(freed, 1500, c, 0, 0), 1.0 + 1.0 / 15, 1e-9);
}

TEST(PickerTest, SharedPeerChangeAddsToOwnAndIsScaledForReplicasNotHeard) {
  PickerConfig c;
  PickerEndpoint e = Slow();  // 4 slots, idle.
  e.sent_since_assignment = 1;
  e.peers_change = 2;  // The other replicas sent two more than finished there since.
  EXPECT_DOUBLE_EQ(EstimatedOccupancy(e, c), 3);
  // Hearing from 2 of 4 replicas: what they count, doubled.
  c.gateways = 2;
  EXPECT_DOUBLE_EQ(EstimatedOccupancy(e, c), 6);
  // More of theirs finished than they sent: below the report, never below zero.
  c.gateways = 1;
  e.peers_change = -5;
  EXPECT_DOUBLE_EQ(EstimatedOccupancy(e, c), 0);
  e.slots_free = 0;  // 4 busy at the report.
  EXPECT_DOUBLE_EQ(EstimatedOccupancy(e, c), 0);
  e.peers_change = -2;
  EXPECT_DOUBLE_EQ(EstimatedOccupancy(e, c), 3);
  // The expected TTFT uses the same occupancy: 3 of 4 slots busy, no wait.
  EXPECT_NEAR(ExpectedTtftSeconds(e, 1500, c, 0, 0), 1.0 + 1.0 / 15, 1e-9);
}

TEST(PickerTest, LongPromptsGoToFastPrefillShortOnesMayNot) {
  std::mt19937_64 rng(1);
  PickerConfig c;
  c.draws = 32;  // Both endpoints are drawn but with odds of 2^-32.
  const std::vector<PickerEndpoint> eps = {Slow(), Fast()};
  for (int i = 0; i < 100; ++i) EXPECT_EQ(PickEndpoint(eps, 5000, c, rng), 1);
  // With the fast server full and 10 queued (11 positions x 2.29 s / 16 slots = 1.58 s of
  // waiting) and the slow one idle, a short prompt is better off on the slow server
  // (0.10 s against 1.60 s), a long one still on the fast one (2.22 s against 3.40 s).
  std::vector<PickerEndpoint> busy = {Slow(), Fast()};
  busy[1].slots_free = 0;
  busy[1].queue_depth = 10;
  EXPECT_EQ(PickEndpoint(busy, 50, c, rng), 0);
  EXPECT_EQ(PickEndpoint(busy, 5000, c, rng), 1);
}

TEST(PickerTest, ZeroWeightIsNeverPickedAndNoWeightIsNoPick) {
  std::mt19937_64 rng(2);
  PickerConfig c;
  std::vector<PickerEndpoint> eps = {Fast(), Slow()};
  eps[0].weight = 0;  // Excluded (circuit open, draining): even for a long prompt.
  for (int i = 0; i < 50; ++i) EXPECT_EQ(PickEndpoint(eps, 5000, c, rng), 1);
  eps[1].weight = 0;
  EXPECT_EQ(PickEndpoint(eps, 10, c, rng), -1);
  EXPECT_EQ(PickEndpoint({}, 10, c, rng), -1);
}

TEST(PickerTest, UnknownSpeedsTakeTheMedianAndSpreadByOccupancy) {
  std::mt19937_64 rng(3);
  PickerConfig c;
  c.draws = 3;
  // No speeds at all: two equal servers; the fuller one loses whenever both are drawn.
  std::vector<PickerEndpoint> eps = {{10, 4, 0, 2, 0, 0, 0}, {10, 4, 4, 0, 0, 0, 0}};
  std::map<int, int> picks;
  for (int i = 0; i < 1000; ++i) ++picks[PickEndpoint(eps, 100, c, rng)];
  // The full one wins only when all three draws land on it: 1/8 of the time.
  EXPECT_GT(picks[1], 800);
  EXPECT_GT(picks[0], 50);
  // One measured, one not: the unmeasured one is assumed to be as fast (the median).
  const double ttft = ExpectedTtftSeconds({1, 4, 4, 0, 0, 0, 0}, 1500, c, 1500, 15);
  EXPECT_NEAR(ttft, 1.0 + 1.0 / 15, 1e-9);
}

TEST(PickerTest, DrawsFollowWeightsSoGatewaysSpreadOut) {
  // Two identical idle servers, weights 3:1, one draw: picks follow the weights (the
  // expected TTFT is equal), so gateways sharing one assignment do not all pick the same.
  std::mt19937_64 rng(4);
  PickerConfig c;
  c.draws = 1;
  std::vector<PickerEndpoint> eps = {Fast(), Fast()};
  eps[0].weight = 96;
  eps[1].weight = 32;
  int first = 0;
  for (int i = 0; i < 4000; ++i) first += PickEndpoint(eps, 100, c, rng) == 0;
  EXPECT_NEAR(first / 4000.0, 0.75, 0.03);
}

}  // namespace
}  // namespace switchboard::client
