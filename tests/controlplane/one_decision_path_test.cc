// One decision path: a fleet that changes over many autoscaling syncs goes through the
// control plane (agents' reports -> FleetState -> Reconciler -> snapshot) and through the
// simulator's path (its servers -> sim::ScalingEndpointOf -> policy::DecidePoolReplicas,
// with sim::PoolPolicyFor's policy). Both must reach the same desired replicas with the
// same explanation at every sync; a difference means the simulator's figures no longer
// describe the control plane.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "controlplane/reconciler.h"
#include "gtest/gtest.h"
#include "sim/simulator/fleet_sim.h"
#include "tests/controlplane/test_util.h"

namespace switchboard::controlplane {
namespace {

using ::switchboard::testing::MakeEndpointReport;
using ::switchboard::testing::MakeHello;
using ::switchboard::testing::MakeReport;

// One server of the scripted fleet at one sync.
struct Server {
  sim::SimServerState state = sim::SimServerState::kReady;
  int slots = 8;
  int busy = 0;
  int queue = 0;
  uint64_t completed = 0;
};

v1::EndpointState StateOf(sim::SimServerState s) {
  switch (s) {
    case sim::SimServerState::kLoading:
      return v1::ENDPOINT_STATE_STARTING;
    case sim::SimServerState::kReady:
      return v1::ENDPOINT_STATE_READY;
    default:
      return v1::ENDPOINT_STATE_DRAINING;
  }
}

// A fleet that ramps up, saturates with a queue, gains a replica that loads for a while,
// then loses one to a drain while the load falls: every signal moves.
std::vector<Server> FleetAt(int step, std::vector<Server> fleet) {
  const int load = step < 20 ? step : 40 - step;  // Slots asked for, up then down.
  const int ready_slots = 8 * static_cast<int>(fleet.size());
  for (size_t i = 0; i < fleet.size(); ++i) {
    Server& s = fleet[i];
    if (i == 2) s.state = step < 12 ? sim::SimServerState::kLoading : sim::SimServerState::kReady;
    if (i == 0 && step >= 26) s.state = sim::SimServerState::kDraining;
    const int share = std::max(0, load * 8 / std::max(8, ready_slots) + static_cast<int>(i) - 1);
    s.busy = s.state == sim::SimServerState::kLoading ? 0 : std::min(s.slots, share);
    s.queue = s.state == sim::SimServerState::kReady ? std::max(0, share - s.slots) : 0;
    s.completed += s.state == sim::SimServerState::kLoading ? 0 : static_cast<uint64_t>(3 * s.busy + step % 3);
  }
  return fleet;
}

TEST(OneDecisionPathTest, ReconcilerAndSimulatorDecideAlikeAtEverySync) {
  sim::Scenario scenario;
  scenario.servers = {{"gpu", 2, 8, 30, 3000, 120}};
  scenario.min_replicas = 1;
  scenario.max_replicas = 6;
  scenario.autoscale_interval_s = 15;
  const policy::PoolPolicy pp = sim::PoolPolicyFor(scenario, sim::Scaling::kSwitchboardPredictive);
  ASSERT_TRUE(pp.autoscale.has_value());
  ASSERT_TRUE(pp.predictive.has_value());

  FakeClock clock;
  FleetState fleet;
  SnapshotStore store;
  ReconcilerOptions options;
  options.config.defaults = pp;
  Reconciler reconciler(&fleet, &store, /*history=*/nullptr, &clock, options);

  policy::PoolScalingMemory sim_memory;
  std::vector<Server> servers(3);
  servers[2].state = sim::SimServerState::kLoading;
  std::vector<uint64_t> sequence(servers.size(), 0);
  for (size_t i = 0; i < servers.size(); ++i) {
    const std::string node = "n" + std::to_string(i);
    ASSERT_TRUE(fleet.Connect(i + 1, MakeHello(node, {"10.0.0.1:8000"}, 8), clock.MonotonicNow()).ok());
  }

  std::set<int> desired_seen;
  for (int step = 0; step < 40; ++step) {
    servers = FleetAt(step, servers);
    policy::ReplicaInput in;
    in.now = clock.MonotonicNow();
    in.wall = clock.Now();
    for (size_t i = 0; i < servers.size(); ++i) {
      const Server& s = servers[i];
      v1::EndpointReport ep = MakeEndpointReport("10.0.0.1:8000", "m", s.slots, s.busy, s.queue);
      ep.set_state(StateOf(s.state));
      ep.set_requests_total(s.completed);
      ASSERT_TRUE(fleet.ApplyReport(i + 1, "n" + std::to_string(i), MakeReport(++sequence[i], {ep}), in.now).ok());
      in.endpoints.push_back(
          sim::ScalingEndpointOf(static_cast<int>(i), s.state, s.slots, s.busy, s.queue, s.completed));
    }
    reconciler.ReconcileOnce();
    const policy::ReplicaDecision simulated = policy::DecidePoolReplicas(in, pp, &sim_memory);

    std::shared_ptr<const Snapshot> snap = store.Get("m");
    ASSERT_NE(snap, nullptr);
    EXPECT_EQ(static_cast<int>(snap->assignment.desired_replicas()), simulated.desired) << "sync " << step;
    EXPECT_EQ(snap->autoscale_explanation, simulated.explanation) << "sync " << step;
    desired_seen.insert(simulated.desired);
    clock.Advance(pp.autoscale_sync_period);
  }
  // The script must exercise the autoscaler, or agreement proves little.
  EXPECT_GE(desired_seen.size(), 3u) << "the scripted fleet should move the decision up and down";
}

}  // namespace
}  // namespace switchboard::controlplane
