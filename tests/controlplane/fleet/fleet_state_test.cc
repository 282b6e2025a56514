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

namespace switchboard::controlplane {
namespace {

using ::switchboard::testing::MakeEndpointReport;
using ::switchboard::testing::MakeHello;
using ::switchboard::testing::MakeReport;

google::protobuf::RepeatedPtrField<v1::EndpointOutcome> Outcomes(
    const std::vector<std::tuple<std::string, std::string, uint64_t, uint64_t>>& rows) {
  google::protobuf::RepeatedPtrField<v1::EndpointOutcome> out;
  for (const auto& [node, address, requests, errors] : rows) {
    v1::EndpointOutcome* o = out.Add();
    o->set_node_id(node);
    o->set_address(address);
    o->set_requests(requests);
    o->set_errors(errors);
  }
  return out;
}

const EndpointView* Find(const std::vector<EndpointView>& eps, const std::string& address) {
  for (const EndpointView& ep : eps) {
    if (ep.address == address) return &ep;
  }
  return nullptr;
}

TEST(FleetStateOutcomesTest, GatewayReportsAddUpPerEndpoint) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1", "a:2"}), t0).ok());
  // Two gateways report their deltas; an unknown node and an undeclared address are skipped.
  EXPECT_EQ(*fleet.AddGatewayOutcomes(Outcomes({{"n1", "a:1", 10, 8}, {"n9", "a:1", 5, 5}, {"n1", "a:7", 3, 0}})), 1u);
  EXPECT_EQ(*fleet.AddGatewayOutcomes(Outcomes({{"n1", "a:1", 4, 1}, {"n1", "a:2", 6, 0}})), 2u);
  std::vector<EndpointView> eps = fleet.Endpoints(t0);
  ASSERT_NE(Find(eps, "a:1"), nullptr);
  EXPECT_EQ(Find(eps, "a:1")->gateway_requests_total, 14u);
  EXPECT_EQ(Find(eps, "a:1")->gateway_errors_total, 9u);
  EXPECT_EQ(Find(eps, "a:2")->gateway_requests_total, 6u);

  // A bad batch adds nothing at all.
  EXPECT_EQ(fleet.AddGatewayOutcomes(Outcomes({{"n1", "a:2", 1, 0}, {"n1", "a:1", 1, 2}})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fleet.AddGatewayOutcomes(Outcomes({{"", "a:1", 1, 0}})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fleet.AddGatewayOutcomes(Outcomes({{"n1", "not an address", 1, 0}})).status().code(),
            absl::StatusCode::kInvalidArgument);
  eps = fleet.Endpoints(t0);
  EXPECT_EQ(Find(eps, "a:2")->gateway_requests_total, 6u);

  // The counts survive a reconnect; an endpoint the node stops declaring loses them.
  fleet.Disconnect(1, "n1", t0);
  ASSERT_TRUE(fleet.Connect(2, MakeHello("n1", {"a:1"}), t0).ok());
  fleet.Disconnect(2, "n1", t0);
  ASSERT_TRUE(fleet.Connect(3, MakeHello("n1", {"a:1", "a:2"}), t0).ok());
  eps = fleet.Endpoints(t0);
  EXPECT_EQ(Find(eps, "a:1")->gateway_requests_total, 14u);
  EXPECT_EQ(Find(eps, "a:2")->gateway_requests_total, 0u);
}

TEST(FleetStateOutcomesTest, CheckCountersFromTheAgentReachTheView) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), t0).ok());
  v1::EndpointReport ep = MakeEndpointReport("a:1", "m", 4, 0);
  ep.set_checks_total(7);
  ep.set_check_failures_total(5);
  ep.set_check_error("/v1/completions: HTTP 500");
  ep.set_errors_counted(true);
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(1, {ep}), t0).ok());
  const EndpointView v = fleet.Endpoints(t0)[0];
  EXPECT_EQ(v.checks_total, 7u);
  EXPECT_EQ(v.check_failures_total, 5u);
  EXPECT_EQ(v.check_error, "/v1/completions: HTTP 500");
  EXPECT_TRUE(v.errors_counted);
  // More failed checks than checks: rejected.
  ep.set_check_failures_total(8);
  EXPECT_EQ(fleet.ApplyReport(1, "n1", MakeReport(2, {ep}), t0).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace switchboard::controlplane
