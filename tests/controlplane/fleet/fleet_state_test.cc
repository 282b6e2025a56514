#include "controlplane/fleet/fleet_state.h"

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "controlplane/fleet/pools.h"
#include "gtest/gtest.h"
#include "tests/controlplane/fleet_state_peer.h"
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

TEST(FleetStateTest, ReportsCannotPassTheLimitOnPools) {
  ValidationLimits limits;
  limits.max_pools = 2;
  FleetState fleet(limits);
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1", "a:2"}), kT0).ok());
  ASSERT_TRUE(
      fleet
          .ApplyReport(1, "n1",
                       MakeReport(1, {MakeEndpointReport("a:1", "m1", 4, 0), MakeEndpointReport("a:2", "m2", 4, 0)}),
                       kT0)
          .ok());
  // A third model, named only in a report, would make a third pool.
  v1::EndpointReport third = MakeEndpointReport("a:1", "m1", 4, 1);
  third.add_models("m3");
  absl::Status s = fleet.ApplyReport(1, "n1", MakeReport(2, {third}), kT0);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("--max-pools 2"), absl::string_view::npos) << s.message();
  auto pools = GroupByPool(fleet.Endpoints(kT0));
  ASSERT_EQ(pools.size(), 2u);
  ASSERT_EQ(pools["m1"].size(), 1u);
  EXPECT_EQ(pools["m1"][0].slots_busy, 0u) << "the refused report changed nothing";
  // Swapping a model within the limit is fine, and so is a report of the same models.
  EXPECT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(2, {MakeEndpointReport("a:1", "m2", 4, 1)}), kT0).ok());
  EXPECT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(3, {MakeEndpointReport("a:2", "m2", 4, 1)}), kT0).ok());
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(4, {MakeEndpointReport("a:2", "m3", 4, 1)}), kT0).ok());
  EXPECT_EQ(GroupByPool(fleet.Endpoints(kT0)).size(), 2u);  // m2 (a:1) and m3 (a:2).
  // A second node may join the pools that exist, but not open a new one by report.
  ASSERT_TRUE(fleet.Connect(2, MakeHello("n2", {"b:1"}), kT0).ok());
  EXPECT_TRUE(fleet.ApplyReport(2, "n2", MakeReport(1, {MakeEndpointReport("b:1", "m3", 4, 0)}), kT0).ok());
  EXPECT_EQ(fleet.ApplyReport(2, "n2", MakeReport(2, {MakeEndpointReport("b:1", "m4", 4, 0)}), kT0).code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(FleetStateTest, OnlyReportsThatChangeAnEndpointWakeTheReconciler) {
  int changes = 0;
  FleetState fleet({}, [&] { ++changes; });
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1", "a:2"}), kT0).ok());
  const int after_hello = changes;
  auto report = [](uint64_t seq, uint32_t busy) {
    return MakeReport(seq, {MakeEndpointReport("a:1", "m", 4, busy), MakeEndpointReport("a:2", "m", 4, 0)});
  };
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", report(1, 1), kT0).ok());
  EXPECT_EQ(changes, after_hello + 1) << "the first report is news";
  // Same endpoint values: only the sequence and time moved. Applied (the report age
  // restarts) but no pass is asked for.
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", report(2, 1), kT0 + absl::Seconds(1)).ok());
  EXPECT_EQ(changes, after_hello + 1);
  EXPECT_EQ(fleet.Endpoints(kT0 + absl::Seconds(1))[0].report_age, absl::ZeroDuration());
  // One endpoint's load moved: a pass.
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", report(3, 2), kT0 + absl::Seconds(2)).ok());
  EXPECT_EQ(changes, after_hello + 2);
  EXPECT_EQ(fleet.Endpoints(kT0 + absl::Seconds(2))[0].slots_busy, 2u);
  // A rejected report changes nothing, so asks for nothing.
  ASSERT_FALSE(fleet.ApplyReport(1, "n1", report(4, 9), kT0 + absl::Seconds(3)).ok());
  EXPECT_EQ(changes, after_hello + 2);
}

// TryApplyReport (a gRPC poller's call) never waits: with the lock taken it does nothing
// and says so; otherwise it applies as ApplyReport does, without running the change hook,
// and asks its caller to run it only for the first change since a pass took the changed
// pools (the reconciler is already woken for the rest).
TEST(FleetStateTest, TryApplyReportNeverWaitsAndAsksForOneWakeupPerPass) {
  int hook_runs = 0;
  FleetState fleet({}, [&] { ++hook_runs; });
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), kT0).ok());
  fleet.TakeChangedPools();
  const int after_hello = hook_runs;
  auto report = [](uint64_t seq, uint32_t busy) { return MakeReport(seq, {MakeEndpointReport("a:1", "m", 4, busy)}); };
  bool changed = true;

  FleetStateTestPeer::Lock(fleet);
  EXPECT_EQ(fleet.TryApplyReport(1, "n1", report(1, 1), kT0, &changed), std::nullopt);
  EXPECT_FALSE(changed);
  FleetStateTestPeer::Unlock(fleet);
  EXPECT_FALSE(fleet.Endpoints(kT0)[0].reported) << "a report that found the lock taken changed nothing";

  std::optional<absl::Status> applied = fleet.TryApplyReport(1, "n1", report(1, 1), kT0, &changed);
  ASSERT_TRUE(applied.has_value());
  EXPECT_TRUE(applied->ok()) << applied->message();
  EXPECT_TRUE(changed) << "the first change since the last pass wakes the reconciler";
  EXPECT_EQ(fleet.Endpoints(kT0)[0].slots_busy, 1u);
  EXPECT_EQ(hook_runs, after_hello) << "the caller runs the hook, later";

  applied = fleet.TryApplyReport(1, "n1", report(2, 2), kT0, &changed);
  ASSERT_TRUE(applied.has_value() && applied->ok());
  EXPECT_FALSE(changed) << "a change already waits for a pass";
  EXPECT_EQ(fleet.Endpoints(kT0)[0].slots_busy, 2u);

  const std::optional<std::set<std::string>> taken = fleet.TakeChangedPools();
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(*taken, std::set<std::string>{"m"});
  applied = fleet.TryApplyReport(1, "n1", report(3, 2), kT0, &changed);
  ASSERT_TRUE(applied.has_value() && applied->ok());
  EXPECT_FALSE(changed) << "same values: nothing to decide again";
  applied = fleet.TryApplyReport(1, "n1", report(4, 3), kT0, &changed);
  ASSERT_TRUE(applied.has_value() && applied->ok());
  EXPECT_TRUE(changed) << "the first change after the pass took the pools";

  applied = fleet.TryApplyReport(1, "n1", report(4, 1), kT0, &changed);  // Sequence not advancing.
  ASSERT_TRUE(applied.has_value());
  EXPECT_EQ(applied->code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(changed);
  EXPECT_EQ(fleet.Endpoints(kT0)[0].slots_busy, 3u) << "a rejected report changes nothing";
  EXPECT_EQ(hook_runs, after_hello);
}

// The fleet keeps what decisions and the admin API read of a report, not the message: a
// report that moves only what nothing reads (TTFT p50, e2e p95, the probe's latency), or
// a speed going to 0 while the last measurement is kept, changes no decision and asks for
// no pass; a new speed does.
TEST(FleetStateTest, OnlyWhatDecisionsReadWakesTheReconciler) {
  int changes = 0;
  FleetState fleet({}, [&] { ++changes; });
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), kT0).ok());
  v1::EndpointReport ep = MakeEndpointReport("a:1", "m", 4, 1);
  ep.set_slot_tokens_per_second(40);
  ep.set_ttft_p50_seconds(0.1);
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(1, {ep}), kT0).ok());
  const int after_first = changes;
  ep.set_ttft_p50_seconds(0.2);
  ep.set_e2e_p95_seconds(9);
  ep.mutable_probe_latency()->set_nanos(5'000'000);
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(2, {ep}), kT0).ok());
  EXPECT_EQ(changes, after_first) << "nothing a decision reads moved";
  ep.set_slot_tokens_per_second(0);  // Idle: the last measurement is kept.
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(3, {ep}), kT0).ok());
  EXPECT_EQ(changes, after_first);
  EXPECT_DOUBLE_EQ(fleet.Endpoints(kT0)[0].slot_tokens_per_second, 40);
  ep.set_slot_tokens_per_second(55);
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(4, {ep}), kT0).ok());
  EXPECT_EQ(changes, after_first + 1);
  EXPECT_DOUBLE_EQ(fleet.Endpoints(kT0)[0].slot_tokens_per_second, 55);
  ep.set_probe_error("timeout");
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(5, {ep}), kT0).ok());
  EXPECT_EQ(changes, after_first + 2) << "the admin API shows the probe error";
  EXPECT_EQ(fleet.Endpoints(kT0)[0].probe_error, "timeout");
}

TEST(FleetStateTest, EndpointsOfSomePoolsStillSeeDuplicatesInOtherPools) {
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1", "c:1"}), kT0).ok());
  ASSERT_TRUE(fleet.Connect(2, MakeHello("n2", {"a:1"}), kT0).ok());
  ASSERT_TRUE(
      fleet
          .ApplyReport(1, "n1",
                       MakeReport(1, {MakeEndpointReport("a:1", "pa", 4, 0), MakeEndpointReport("c:1", "pc", 4, 0)}),
                       kT0)
          .ok());
  ASSERT_TRUE(fleet.ApplyReport(2, "n2", MakeReport(1, {MakeEndpointReport("a:1", "pb", 4, 0)}), kT0).ok());
  const std::set<std::string> only = {"pa"};
  std::vector<EndpointView> eps = fleet.Endpoints(kT0, &only);
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].node_id, "n1");
  EXPECT_EQ(eps[0].duplicate_of, std::vector<std::string>{"n2"}) << "n2 claims a:1 from pool pb";

  EXPECT_EQ(fleet.TakeChangedPools(), std::nullopt) << "nodes connected: any pool";
  ASSERT_TRUE(fleet.ApplyReport(2, "n2", MakeReport(2, {MakeEndpointReport("a:1", "pb", 4, 1)}), kT0).ok());
  EXPECT_EQ(fleet.TakeChangedPools(), std::optional<std::set<std::string>>(std::set<std::string>{"pb"}));
  EXPECT_EQ(fleet.TakeChangedPools(), std::optional<std::set<std::string>>(std::set<std::string>{}));
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

TEST(FleetStateTest, LeaveRemovesTheNodeAtOnceAndRecordsTheDeparture) {
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1", "a:2"}), kT0).ok());
  ASSERT_TRUE(fleet.Connect(2, MakeHello("n2", {"b:1"}), kT0).ok());
  EXPECT_EQ(fleet.Leave(2, "n1", "bye").code(), absl::StatusCode::kFailedPrecondition)
      << "a stream cannot make another node leave";
  EXPECT_EQ(fleet.Nodes(kT0).size(), 2u);
  EXPECT_TRUE(fleet.TakeDepartures().empty());

  ASSERT_TRUE(fleet.Leave(1, "n1", "drained").ok());
  ASSERT_EQ(fleet.Nodes(kT0).size(), 1u);
  EXPECT_EQ(fleet.Nodes(kT0)[0].node_id, "n2");
  ASSERT_EQ(fleet.Endpoints(kT0).size(), 1u);
  std::vector<Departure> gone = fleet.TakeDepartures();
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].node_id, "n1");
  EXPECT_EQ(gone[0].addresses, (std::vector<std::string>{"a:1", "a:2"}));
  EXPECT_EQ(gone[0].reason, "drained");
  EXPECT_TRUE(fleet.TakeDepartures().empty()) << "each departure is handed out once";
  fleet.Disconnect(1, "n1", kT0);  // The stream closing afterwards changes nothing.
  EXPECT_EQ(fleet.Nodes(kT0).size(), 1u);
}

TEST(FleetStateTest, AnOperatorsDrainOutlivesACleanExit) {
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), kT0).ok());
  ASSERT_TRUE(fleet.SetDrainRequested("n1", true).ok());
  ASSERT_TRUE(fleet.Leave(1, "n1", "drained").ok());
  ASSERT_TRUE(fleet.Connect(2, MakeHello("n1", {"a:1"}), kT0).ok());
  EXPECT_TRUE(fleet.DrainRequested("n1")) << "the agent restarted; the operator's drain stands";
  ASSERT_TRUE(fleet.Leave(2, "n1", "drained").ok());
  absl::StatusOr<bool> undrained = fleet.SetDrainRequested("n1", false);
  ASSERT_TRUE(undrained.ok()) << "a node that left drained can be undrained";
  EXPECT_FALSE(*undrained);
  ASSERT_TRUE(fleet.Connect(3, MakeHello("n1", {"a:1"}), kT0).ok());
  EXPECT_FALSE(fleet.DrainRequested("n1"));
  EXPECT_EQ(fleet.SetDrainRequested("never-seen", false).status().code(), absl::StatusCode::kNotFound);
}

TEST(FleetStateTest, DisconnectWithoutGoodbyeKeepsTheNodeUntilForgotten) {
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), kT0).ok());
  fleet.Disconnect(1, "n1", kT0);
  ASSERT_EQ(fleet.Endpoints(kT0).size(), 1u) << "a crash goes through staleness";
  EXPECT_TRUE(fleet.TakeDepartures().empty());
}

TEST(FleetStateTest, SameAddressOnTwoConnectedNodesIsMarkedOnBoth) {
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"127.0.0.1:8080", "a:2"}), kT0).ok());
  ASSERT_TRUE(fleet.Connect(2, MakeHello("n2", {"127.0.0.1:8080"}), kT0).ok());
  ASSERT_TRUE(fleet.Connect(3, MakeHello("n3", {"c:1"}), kT0).ok());
  std::map<std::string, std::vector<std::string>> dup;
  for (const EndpointView& ep : fleet.Endpoints(kT0)) dup[ep.node_id + "/" + ep.address] = ep.duplicate_of;
  EXPECT_EQ(dup["n1/127.0.0.1:8080"], std::vector<std::string>{"n2"});
  EXPECT_EQ(dup["n2/127.0.0.1:8080"], std::vector<std::string>{"n1"});
  EXPECT_TRUE(dup["n1/a:2"].empty());
  EXPECT_TRUE(dup["n3/c:1"].empty());
  // Shown per node too, even though no endpoint reported a model (no pool).
  for (const NodeView& n : fleet.Nodes(kT0)) {
    if (n.node_id != "n2") continue;
    ASSERT_EQ(n.endpoints.size(), 1u);
    EXPECT_EQ(n.endpoints[0].address(), "127.0.0.1:8080");
    ASSERT_EQ(n.endpoints[0].duplicate_of_size(), 1);
    EXPECT_EQ(n.endpoints[0].duplicate_of(0), "n1");
  }
  // Once one of them is gone, the other is no longer a duplicate.
  fleet.Disconnect(2, "n2", kT0);
  for (const EndpointView& ep : fleet.Endpoints(kT0)) EXPECT_TRUE(ep.duplicate_of.empty()) << ep.node_id;
}

TEST(FleetStateTest, NodesListEndpointsWithTheirProbeErrorOutsideAnyPool) {
  FleetState fleet;
  ASSERT_TRUE(fleet.Connect(1, MakeHello("n1", {"a:1"}), kT0).ok());
  v1::EndpointReport failing;
  failing.set_address("a:1");
  failing.set_state(v1::ENDPOINT_STATE_UNHEALTHY);
  failing.set_probe_error("/health: HTTP 404: not an inference server");
  ASSERT_TRUE(fleet.ApplyReport(1, "n1", MakeReport(1, {failing}), kT0).ok());
  EXPECT_TRUE(GroupByPool(fleet.Endpoints(kT0)).empty());
  const std::vector<NodeView> nodes = fleet.Nodes(kT0);
  ASSERT_EQ(nodes.size(), 1u);
  const std::vector<v1::NodeEndpoint>& eps = nodes[0].endpoints;
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].address(), "a:1");
  EXPECT_EQ(eps[0].state(), v1::ENDPOINT_STATE_UNHEALTHY);
  EXPECT_EQ(eps[0].probe_error(), "/health: HTTP 404: not an inference server");
  EXPECT_TRUE(eps[0].reported());
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
// The pool index against the walk it replaces: after every step of a random history of
// Hellos, reports that move endpoints between pools, disconnects, clean exits and
// forgetting, the endpoints of each pool (and their duplicates) are exactly those of the
// whole fleet that serve it.
TEST(FleetStateIndexTest, EndpointsOfAPoolMatchTheWholeFleetThroughAnyHistory) {
  ValidationLimits limits;
  limits.max_pools = 4;  // Five models: some reports and Hellos are refused on the way.
  FleetState fleet(limits);
  std::mt19937 rng(20);  // Fixed: the same history every run.
  const std::vector<std::string> models = {"m0", "m1", "m2", "m3", "m4"};
  const std::vector<std::string> addresses = {"x:1", "x:2", "y:1", "y:2"};  // Shared: duplicates.
  std::map<std::string, uint64_t> stream, sequence;                         // By node.
  uint64_t next_stream = 1;
  absl::Time now = kT0;
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  // What a pass keeps from one step to the next (Reconciler::views_): refilled in place, it
  // must always read as a fresh copy does, every field included.
  std::map<std::string, std::vector<EndpointView>> kept_all, kept_some;
  auto endpoint_report = [&](const std::string& address) {
    v1::EndpointReport ep = MakeEndpointReport(address, models[pick(models.size())], 4, static_cast<uint32_t>(pick(5)));
    if (pick(3) == 0) ep.add_models(models[pick(models.size())]);
    if (pick(5) == 0)
      ep.set_probe_error(absl::StrCat("probe failed ", pick(100), " times in a row, long enough to allocate"));
    if (pick(4) == 0) ep.clear_models();  // Back to the Hello's models.
    return ep;
  };
  for (int step = 0; step < 400; ++step) {
    const std::string node = absl::StrCat("n", pick(6));
    now += absl::Seconds(1);
    switch (pick(6)) {
      case 0:
      case 1: {  // (Re)connect with some of the addresses, some with models.
        v1::Hello hello = MakeHello(node, {});
        if (pick(2) == 0) (*hello.mutable_labels())["zone"] = pick(2) == 0 ? "a" : "b";
        if (pick(2) == 0) (*hello.mutable_labels())["gpu"] = "h100";
        for (const std::string& a : addresses) {
          if (pick(2) == 0) continue;
          v1::EndpointInfo* info = hello.add_endpoints();
          info->set_address(a);
          info->set_engine(v1::ENGINE_LLAMACPP);
          info->set_slots_total(4);
          if (pick(2) == 0) info->add_models(models[pick(models.size())]);
        }
        if (hello.endpoints_size() == 0) continue;
        const uint64_t id = next_stream++;
        if (fleet.Connect(id, hello, now).ok()) {
          stream[node] = id;
          sequence[node] = 0;
        }
        break;
      }
      case 2:
      case 3: {  // A report that may move endpoints to other pools.
        if (stream.count(node) == 0) continue;
        std::vector<v1::EndpointReport> eps;
        for (const NodeView& n : fleet.Nodes(now)) {
          if (n.node_id != node) continue;
          for (const v1::NodeEndpoint& e : n.endpoints) eps.push_back(endpoint_report(e.address()));
        }
        (void)fleet.ApplyReport(stream[node], node, MakeReport(++sequence[node], eps), now);
        break;
      }
      case 4:
        if (stream.count(node) > 0) fleet.Disconnect(stream[node], node, now);
        break;
      default:
        (void)fleet.SetDrainRequested(node, pick(2) == 0);
        if (stream.count(node) > 0 && pick(2) == 0) (void)fleet.Leave(stream[node], node, "bye");
        (void)fleet.ForgetSilentNodes(absl::Seconds(20), now);
        break;
    }
    const std::vector<EndpointView> all = fleet.Endpoints(now);
    std::set<std::string> pools;
    for (const EndpointView& ep : all) pools.insert(ep.models.begin(), ep.models.end());
    EXPECT_LE(pools.size(), limits.max_pools) << "step " << step;
    pools.insert("no-such-pool");
    for (const std::string& pool : pools) {
      auto describe = [](const std::vector<EndpointView>& eps) {
        std::set<std::string> out;
        for (const EndpointView& ep : eps) {
          out.insert(absl::StrCat(ep.node_id, "/", ep.address, " dup=", absl::StrJoin(ep.duplicate_of, ","),
                                  " busy=", ep.slots_busy, " connected=", ep.connected));
        }
        return out;
      };
      std::vector<EndpointView> expected;
      for (const EndpointView& ep : all) {
        if (std::find(ep.models.begin(), ep.models.end(), pool) != ep.models.end()) expected.push_back(ep);
      }
      const std::set<std::string> only = {pool};
      const std::vector<EndpointView> indexed = fleet.Endpoints(now, &only);
      EXPECT_EQ(indexed.size(), expected.size()) << "step " << step << " pool " << pool;
      EXPECT_EQ(describe(indexed), describe(expected)) << "step " << step << " pool " << pool;
    }
    // A pass's grouping, built straight from the index: the same pools, endpoints and
    // order as grouping the whole fleet's views; and of some pools only, those pools.
    auto ordered = [](const std::map<std::string, std::vector<EndpointView>>& by_pool) {
      std::vector<std::string> out;
      for (const auto& [pool, eps] : by_pool) {
        for (const EndpointView& ep : eps) {
          out.push_back(absl::StrCat(
              pool, ": ", ep.node_id, "/", ep.address, " dup=", absl::StrJoin(ep.duplicate_of, ","),
              " labels=", absl::StrJoin(ep.labels, ",", absl::PairFormatter("=")), " engine=", ep.engine,
              " models=", absl::StrJoin(ep.models, ","), " state=", ep.state, " slots=", ep.slots_total, "/",
              ep.slots_busy, " queue=", ep.queue_depth, " kv=", ep.kv_cache_usage, " tps=", ep.tokens_per_second, "/",
              ep.slot_tokens_per_second, "/", ep.prefill_tokens_per_second, " e2e=", ep.e2e_p50_seconds, " hint=",
              ep.capacity_hint, " ttft=", ep.ttft_p95_seconds, " requests=", ep.requests_total, "/", ep.errors_total,
              "/", ep.errors_counted, " checks=", ep.checks_total, "/", ep.check_failures_total, "/", ep.check_error,
              " gateway=", ep.gateway_requests_total, "/", ep.gateway_errors_total, " probe=", ep.probe_error,
              " reported=", ep.reported, " connected=", ep.connected, " age=", absl::FormatDuration(ep.report_age)));
        }
      }
      return out;
    };
    const std::map<std::string, std::vector<EndpointView>> grouped = GroupByPool(all);
    EXPECT_EQ(ordered(fleet.EndpointsByPool(now, nullptr)), ordered(grouped)) << "step " << step;
    const std::set<std::string> some = {models[pick(models.size())], models[pick(models.size())], "no-such-pool"};
    std::map<std::string, std::vector<EndpointView>> some_grouped;
    for (const auto& [pool, eps] : grouped) {
      if (some.count(pool) > 0) some_grouped[pool] = eps;
    }
    EXPECT_EQ(ordered(fleet.EndpointsByPool(now, &some)), ordered(some_grouped)) << "step " << step;
    fleet.RefreshEndpointsByPool(now, nullptr, &kept_all);
    EXPECT_EQ(ordered(kept_all), ordered(grouped)) << "step " << step;
    // Refreshing some pools leaves the others as they were and drops the asked-for
    // pools that are gone.
    std::map<std::string, std::vector<EndpointView>> expected_some = kept_some;
    for (const std::string& pool : some) expected_some.erase(pool);
    for (const auto& [pool, eps] : some_grouped) expected_some[pool] = eps;
    fleet.RefreshEndpointsByPool(now, &some, &kept_some);
    EXPECT_EQ(ordered(kept_some), ordered(expected_some)) << "step " << step;
  }
}

TEST(FleetStateIndexTest, AHelloMayKeepItsOwnPoolsAtTheLimitButNotAddOne) {
  ValidationLimits limits;
  limits.max_pools = 2;
  FleetState fleet(limits);
  v1::Hello h1 = MakeHello("n1", {"a:1"});
  h1.mutable_endpoints(0)->add_models("m1");
  v1::Hello h2 = MakeHello("n2", {"b:1"});
  h2.mutable_endpoints(0)->add_models("m2");
  ASSERT_TRUE(fleet.Connect(1, h1, kT0).ok());
  ASSERT_TRUE(fleet.Connect(2, h2, kT0).ok());
  // n1 reconnects serving m3 instead of m1 (its own pool goes): still two pools.
  v1::Hello moved = MakeHello("n1", {"a:1"});
  moved.mutable_endpoints(0)->add_models("m3");
  fleet.Disconnect(1, "n1", kT0);
  EXPECT_TRUE(fleet.Connect(3, moved, kT0).ok());
  // A new node with a third model is refused; one joining m2 or m3 is not.
  v1::Hello third = MakeHello("n3", {"c:1"});
  third.mutable_endpoints(0)->add_models("m4");
  EXPECT_EQ(fleet.Connect(4, third, kT0).code(), absl::StatusCode::kResourceExhausted);
  third.mutable_endpoints(0)->set_models(0, "m2");
  EXPECT_TRUE(fleet.Connect(4, third, kT0).ok());
  // m2 is no longer n2's alone: n2 may not swap it for a third pool.
  v1::Hello n2_moves = MakeHello("n2", {"b:1"});
  n2_moves.mutable_endpoints(0)->add_models("m5");
  fleet.Disconnect(2, "n2", kT0);
  EXPECT_EQ(fleet.Connect(5, n2_moves, kT0).code(), absl::StatusCode::kResourceExhausted);
  const std::set<std::string> m2 = {"m2"};
  std::vector<EndpointView> eps = fleet.Endpoints(kT0, &m2);
  ASSERT_EQ(eps.size(), 2u);
  EXPECT_EQ(eps[0].node_id, "n2");
  EXPECT_EQ(eps[1].node_id, "n3");
}

}  // namespace switchboard::controlplane
