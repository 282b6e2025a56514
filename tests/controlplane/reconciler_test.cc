#include "controlplane/reconciler.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "tests/controlplane/test_util.h"

namespace switchboard::controlplane {
namespace {

using ::switchboard::testing::MakeEndpointReport;
using ::switchboard::testing::MakeHello;
using ::switchboard::testing::MakeReport;

class ReconcilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::path(::testing::TempDir()) / "reconciler_test.db").string();
    std::filesystem::remove(path_);
    history_ = std::move(HistoryStore::Open(path_).value());
    options_.config.defaults.policy.circuit.staleness_bound = absl::Seconds(3);
    options_.forget_after = absl::Seconds(60);
    reconciler_ = std::make_unique<Reconciler>(&fleet_, &store_, history_.get(), &clock_, options_);
  }

  void Report(uint64_t stream, const std::string& node, uint64_t seq, const std::string& addr,
              uint32_t busy) {
    ASSERT_TRUE(fleet_.ApplyReport(stream, node, MakeReport(seq, {MakeEndpointReport(addr, "m", 4, busy)}),
                                   clock_.MonotonicNow())
                    .ok());
  }

  uint32_t Weight(const std::string& addr) {
    for (const auto& ep : store_.Get("m")->assignment.endpoints()) {
      if (ep.address() == addr) return ep.weight();
    }
    ADD_FAILURE() << "no endpoint " << addr;
    return 0;
  }

  std::vector<std::string> EventKinds() {
    history_->Flush();
    std::vector<std::string> kinds;
    absl::StatusOr<std::vector<HistoryEvent>> events = history_->RecentEvents(100);
    if (!events.ok()) {
      ADD_FAILURE() << events.status();
      return kinds;
    }
    for (const HistoryEvent& e : *events) kinds.insert(kinds.begin(), e.kind);
    return kinds;
  }

  std::string path_;
  FakeClock clock_;
  FleetState fleet_;
  SnapshotStore store_;
  std::unique_ptr<HistoryStore> history_;
  ReconcilerOptions options_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST_F(ReconcilerTest, PublishesOnlyWhenContentChanges) {
  ASSERT_TRUE(fleet_.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  Report(1, "n1", 1, "a:1", 0);
  EXPECT_EQ(reconciler_->ReconcileOnce(), 1);
  const std::string v1 = store_.Get("m")->version;
  clock_.Advance(absl::Seconds(1));
  Report(1, "n1", 2, "a:1", 0);
  EXPECT_EQ(reconciler_->ReconcileOnce(), 0) << "same content, no new version";
  EXPECT_EQ(store_.Get("m")->version, v1);
  Report(1, "n1", 3, "a:1", 2);
  EXPECT_EQ(reconciler_->ReconcileOnce(), 1);
  EXPECT_NE(store_.Get("m")->version, v1);
}

TEST_F(ReconcilerTest, SilentNodeGoesStaleThenComesBack) {
  ASSERT_TRUE(fleet_.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  ASSERT_TRUE(fleet_.Connect(2, MakeHello("n2", {"b:1"}), clock_.MonotonicNow()).ok());
  Report(1, "n1", 1, "a:1", 0);
  Report(2, "n2", 1, "b:1", 0);
  reconciler_->ReconcileOnce();
  EXPECT_GT(Weight("a:1"), 0u);
  EXPECT_GT(Weight("b:1"), 0u);

  // n2 goes silent; n1 keeps reporting. Up to the bound nothing changes.
  for (int i = 2; i <= 4; ++i) {
    clock_.Advance(absl::Seconds(1));
    Report(1, "n1", i, "a:1", 0);
    reconciler_->ReconcileOnce();
  }
  EXPECT_GT(Weight("b:1"), 0u) << "3 s silent is within the bound";
  clock_.Advance(absl::Milliseconds(500));
  reconciler_->ReconcileOnce();
  EXPECT_EQ(Weight("b:1"), 0u) << "past the bound: excluded, not idle";
  EXPECT_EQ(store_.Get("m")->assignment.endpoints(1).circuit(), v1::CIRCUIT_STATE_OPEN);
  EXPECT_GT(Weight("a:1"), 0u);

  Report(2, "n2", 2, "b:1", 0);
  reconciler_->ReconcileOnce();
  EXPECT_GT(Weight("b:1"), 0u);
  EXPECT_EQ((std::vector<std::string>{"endpoint_joined", "endpoint_joined", "circuit_changed", "circuit_changed"}),
            EventKinds());
}

TEST_F(ReconcilerTest, ForgottenNodeLeavesAndEmptyPoolIsPublished) {
  ASSERT_TRUE(fleet_.Connect(1, MakeHello("n1", {"a:1"}), clock_.MonotonicNow()).ok());
  Report(1, "n1", 1, "a:1", 0);
  reconciler_->ReconcileOnce();
  fleet_.Disconnect(1, "n1", clock_.MonotonicNow());
  clock_.Advance(absl::Seconds(61));
  reconciler_->ReconcileOnce();
  ASSERT_NE(store_.Get("m"), nullptr);
  EXPECT_EQ(store_.Get("m")->assignment.endpoints_size(), 0);
  EXPECT_EQ(EventKinds().back(), "endpoint_left");
}

}  // namespace
}  // namespace switchboard::controlplane
