// The reconciler's answer to nodes that leave cleanly and to addresses that two nodes
// report (kept apart from reconciler_test.cc, whose autoscaling tests GCC 12 warns about
// spuriously when this file's tests share their translation unit).
#include <filesystem>

#include "controlplane/reconciler.h"
#include "gtest/gtest.h"
#include "tests/controlplane/test_util.h"

namespace switchboard::controlplane {
namespace {

using ::switchboard::testing::MakeEndpointReport;
using ::switchboard::testing::MakeHello;
using ::switchboard::testing::MakeReport;

class ReconcilerLeaveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::path(::testing::TempDir()) / "reconciler_leave_test.db").string();
    std::filesystem::remove(path_);
    history_ = std::move(HistoryStore::Open(path_).value());
    options_.config.defaults.policy.circuit.staleness_bound = absl::Seconds(3);
    options_.forget_after = absl::Seconds(60);
    reconciler_ = std::make_unique<Reconciler>(&fleet_, &store_, history_.get(), &clock_, options_);
  }

  void Report(uint64_t stream, const std::string& node, uint64_t seq, const std::string& addr) {
    ASSERT_TRUE(
        fleet_.ApplyReport(stream, node, MakeReport(seq, {MakeEndpointReport(addr, "m", 4, 0)}), clock_.MonotonicNow())
            .ok());
  }

  // Oldest first.
  std::vector<HistoryEvent> Events() {
    history_->Flush();
    absl::StatusOr<std::vector<HistoryEvent>> events = history_->RecentEvents(100);
    if (!events.ok()) {
      ADD_FAILURE() << events.status();
      return {};
    }
    return std::vector<HistoryEvent>(events->rbegin(), events->rend());
  }

  std::string path_;
  FakeClock clock_;
  FleetState fleet_;
  SnapshotStore store_;
  std::unique_ptr<HistoryStore> history_;
  ReconcilerOptions options_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST_F(ReconcilerLeaveTest, CleanLeaveRemovesTheEndpointAtOnceWithAnEvent) {
  ASSERT_TRUE(fleet_.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  ASSERT_TRUE(fleet_.Connect(2, MakeHello("n2", {"b:1"}), clock_.MonotonicNow()).ok());
  Report(1, "n1", 1, "a:1");
  Report(2, "n2", 1, "b:1");
  reconciler_->ReconcileOnce();
  ASSERT_EQ(store_.Get("m")->assignment.endpoints_size(), 2);
  ASSERT_TRUE(fleet_.Leave(2, "n2", "drained: every endpoint is idle").ok());
  reconciler_->ReconcileOnce();  // No time passes: no staleness involved.
  ASSERT_EQ(store_.Get("m")->assignment.endpoints_size(), 1);
  EXPECT_EQ(store_.Get("m")->assignment.endpoints(0).address(), "a:1");
  int node_left = 0;
  for (const HistoryEvent& e : Events()) {
    if (e.kind != "node_left") continue;
    ++node_left;
    EXPECT_EQ(e.node_id, "n2");
    EXPECT_NE(e.detail.find("drained: every endpoint is idle"), std::string::npos) << e.detail;
    EXPECT_NE(e.detail.find("b:1"), std::string::npos) << e.detail;
  }
  EXPECT_EQ(node_left, 1);
  EXPECT_EQ(Events().back().kind, "endpoint_left");
}

TEST_F(ReconcilerLeaveTest, DuplicateAddressExcludesBothNodesAndRecordsWhy) {
  ASSERT_TRUE(fleet_.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  Report(1, "n1", 1, "a:1");
  reconciler_->ReconcileOnce();
  ASSERT_GT(store_.Get("m")->assignment.endpoints(0).weight(), 0u);
  ASSERT_TRUE(fleet_.Connect(2, MakeHello("n2", {"a:1"}), clock_.MonotonicNow()).ok());
  Report(2, "n2", 1, "a:1");
  reconciler_->ReconcileOnce();
  ASSERT_EQ(store_.Get("m")->assignment.endpoints_size(), 2);
  for (const auto& ep : store_.Get("m")->assignment.endpoints()) EXPECT_EQ(ep.weight(), 0u) << ep.node_id();
  std::set<std::string> nodes_told;
  for (const HistoryEvent& e : Events()) {
    if (e.detail.find("duplicate address") != std::string::npos) nodes_told.insert(e.node_id);
  }
  EXPECT_EQ(nodes_told, (std::set<std::string>{"n1", "n2"})) << "n1's circuit change and n2's join both say why";
}

}  // namespace
}  // namespace switchboard::controlplane
