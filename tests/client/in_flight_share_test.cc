#include "client/in_flight_share.h"

#include "gtest/gtest.h"

namespace switchboard::client {
namespace {

TEST(InFlightBoardTest, OthersSumEveryReplicaButTheAsker) {
  InFlightBoard board;
  board.Report(1, {{"llama", {{"a:1", 2}, {"b:1", 1}}}});
  board.Report(2, {{"llama", {{"a:1", 3}}}, {"qwen", {{"c:1", 4}}}});
  board.Report(3, {{"llama", {{"b:1", 0}}}});
  EXPECT_EQ(board.Others(1, "llama"), (EndpointCounts{{"a:1", 3}}));  // Zero counts left out.
  EXPECT_EQ(board.Others(3, "llama"), (EndpointCounts{{"a:1", 5}, {"b:1", 1}}));
  EXPECT_EQ(board.Others(1, "qwen"), (EndpointCounts{{"c:1", 4}}));
  EXPECT_TRUE(board.Others(2, "qwen").empty());
  EXPECT_EQ(board.Peers(1), 2u);
  EXPECT_EQ(board.Peers(9), 3u);  // An asker that has not reported yet.
  // A report replaces the replica's previous one; a removed replica counts no more.
  board.Report(2, {{"llama", {{"b:1", 1}}}});
  EXPECT_EQ(board.Others(1, "llama"), (EndpointCounts{{"b:1", 1}}));
  board.Remove(2);
  EXPECT_TRUE(board.Others(1, "llama").empty());
  EXPECT_EQ(board.Peers(1), 1u);
}

TEST(PeerInFlightTest, ChangeIsSinceTheAssignment) {
  PeerInFlight peers;
  EXPECT_EQ(peers.Change("a:1"), 0);
  EXPECT_EQ(peers.GatewaysScale(4), 4);  // Nothing heard: scale as without sharing.
  peers.Received({{"a:1", 5}, {"b:1", 2}}, 3);
  peers.AssignmentApplied();  // The report behind it counts those 7 already.
  EXPECT_EQ(peers.Change("a:1"), 0);
  peers.Received({{"a:1", 7}}, 3);  // Two more on a, b's two finished.
  EXPECT_EQ(peers.Change("a:1"), 2);
  EXPECT_EQ(peers.Change("b:1"), -2);
  EXPECT_EQ(peers.Change("c:1"), 0);
  EXPECT_EQ(peers.GatewaysScale(4), 1);  // Hears from all four.
  peers.Received({}, 1);
  EXPECT_EQ(peers.GatewaysScale(4), 2);  // Hears from two of four.
  EXPECT_EQ(peers.GatewaysScale(1), 1);
  peers.Lost();
  EXPECT_EQ(peers.Change("a:1"), 0);
  EXPECT_EQ(peers.GatewaysScale(4), 4);
}

}  // namespace
}  // namespace switchboard::client
