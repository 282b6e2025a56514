#include "controlplane/fleet/fleet_state.h"

#include "controlplane/fleet/pools.h"
#include "gtest/gtest.h"
#include "tests/controlplane/test_util.h"

namespace switchboard::controlplane {
namespace {

using ::switchboard::testing::MakeEndpointReport;
using ::switchboard::testing::MakeHello;
using ::switchboard::testing::MakeReport;

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(FleetStateTest, GroupsEndpointsIntoPoolsByReportedModel) {
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1", "a:2"}), kT0).ok());
  ASSERT_TRUE(fleet.Connect(2, MakeHello("n2", {"b:1"}), kT0).ok());
  ASSERT_TRUE(fleet
                  .ApplyReport(1, "n1",
                               MakeReport(1, {MakeEndpointReport("a:1", "llama-8b", 4, 0),
                                              MakeEndpointReport("a:2", "mistral-7b", 4, 0)}),
                               kT0)
                  .ok());
  v1::EndpointReport multi = MakeEndpointReport("b:1", "llama-8b", 2, 1);
  multi.add_models("mistral-7b");
  ASSERT_TRUE(fleet.ApplyReport(2, "n2", MakeReport(1, {multi}), kT0).ok());

  auto pools = GroupByPool(fleet.Endpoints(kT0));
  ASSERT_EQ(pools.size(), 2u);
  ASSERT_EQ(pools["llama-8b"].size(), 2u);
  EXPECT_EQ(pools["llama-8b"][0].address, "a:1");
  EXPECT_EQ(pools["llama-8b"][1].address, "b:1");
  EXPECT_EQ(pools["llama-8b"][1].slots_busy, 1u);
  ASSERT_EQ(pools["mistral-7b"].size(), 2u);
}

TEST(FleetStateTest, EndpointWithoutModelIsInNoPool) {
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), kT0).ok());
  EXPECT_TRUE(GroupByPool(fleet.Endpoints(kT0)).empty());
}

TEST(FleetStateTest, RejectedReportChangesNothing) {
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), kT0).ok());
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(1, {MakeEndpointReport("a:1", "m", 4, 1)}), kT0).ok());
  v1::EndpointReport bad = MakeEndpointReport("a:1", "m", 4, 9);
  EXPECT_EQ(fleet.ApplyReport(1, "n1", MakeReport(2, {bad}), kT0 + absl::Seconds(1)).code(),
            absl::StatusCode::kInvalidArgument);
  auto eps = fleet.Endpoints(kT0 + absl::Seconds(1));
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].slots_busy, 1u);
  EXPECT_EQ(eps[0].report_age, absl::Seconds(1)) << "a rejected report is not a sign of life";
  // The rejected sequence number was not consumed.
  EXPECT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(2, {MakeEndpointReport("a:1", "m", 4, 2)}), kT0).ok());
}

TEST(FleetStateTest, SecondStreamCannotTakeAConnectedNode) {
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), kT0).ok());
  EXPECT_EQ(fleet.Connect(2, MakeHello("n1", {"evil:1"}), kT0).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(fleet.ApplyReport(2, "n1", MakeReport(1, {MakeEndpointReport("a:1", "m", 4, 0)}), kT0).code(),
            absl::StatusCode::kFailedPrecondition);
  fleet.Disconnect(2, "n1", kT0);  // The refused stream ending must not mark the node gone.
  ASSERT_EQ(fleet.Nodes(kT0).size(), 1u);
  EXPECT_TRUE(fleet.Nodes(kT0)[0].connected);
  EXPECT_EQ(fleet.Endpoints(kT0)[0].address, "a:1");
  // Once the first stream is gone, the node id is free again (agent restart).
  fleet.Disconnect(1, "n1", kT0);
  EXPECT_TRUE(fleet.Connect(3, MakeHello("n1", {"a:1"}), kT0).ok());
  EXPECT_TRUE(fleet.ApplyReport(3, "n1", MakeReport(1, {MakeEndpointReport("a:1", "m", 4, 0)}), kT0).ok());
}

TEST(FleetStateTest, ForgetsOnlyDisconnectedSilentNodes) {
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), kT0).ok());
  ASSERT_TRUE(fleet.Connect(2, MakeHello("n2", {"b:1"}), kT0).ok());
  fleet.Disconnect(1, "n1", kT0);
  EXPECT_TRUE(fleet.ForgetSilentNodes(absl::Minutes(5), kT0 + absl::Minutes(4)).empty());
  auto removed = fleet.ForgetSilentNodes(absl::Minutes(5), kT0 + absl::Minutes(6));
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0], "n1");
  EXPECT_EQ(fleet.Nodes(kT0).size(), 1u);
}

TEST(FleetStateTest, KeepsLastMeasuredSlotSpeedWhileIdle) {
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), kT0).ok());
  v1::EndpointReport ep = MakeEndpointReport("a:1", "m", 4, 2);
  ep.set_slot_tokens_per_second(42);
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(1, {ep}), kT0).ok());
  ep.set_slot_tokens_per_second(0);  // Idle: nothing decoded this interval.
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(2, {ep}), kT0).ok());
  EXPECT_DOUBLE_EQ(fleet.Endpoints(kT0)[0].slot_tokens_per_second, 42);
}

}  // namespace
}  // namespace switchboard::controlplane
