#include "controlplane/snapshot/snapshot_store.h"

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane {
namespace {

// Bounds how long a test waits for another thread (a failure, not a way to pass time).
constexpr absl::Duration kRealTimeout = absl::Seconds(30);

std::shared_ptr<const Snapshot> Snap(const std::string& pool, const std::string& version) {
  auto snap = std::make_shared<Snapshot>();
  snap->pool = pool;
  snap->version = version;
  snap->assignment.set_pool(pool);
  snap->assignment.set_version(version);
  return snap;
}

std::vector<std::string> Versions(const std::vector<std::shared_ptr<const Snapshot>>& snaps) {
  std::vector<std::string> out;
  for (const auto& s : snaps) out.push_back(s->pool + "@" + s->version);
  return out;
}

TEST(SnapshotStoreTest, PublishReplacesTheGivenPoolsOnly) {
  SnapshotStore store;
  EXPECT_EQ(store.Get("a"), nullptr);
  EXPECT_TRUE(store.All().empty());

  auto a1 = Snap("a", "1");
  store.Publish({a1, Snap("b", "1")});
  EXPECT_EQ(store.Get("a"), a1) << "the published object itself, not a copy";
  EXPECT_EQ(Versions(store.All()), (std::vector<std::string>{"a@1", "b@1"}));

  store.Publish({Snap("b", "2"), Snap("c", "1")});
  EXPECT_EQ(Versions(store.All()), (std::vector<std::string>{"a@1", "b@2", "c@1"}));
  EXPECT_EQ(store.Get("missing"), nullptr);
}

TEST(SnapshotStoreTest, WatchersHearOncePerPublishAfterTheStoreIsUpdated) {
  SnapshotStore store;
  int calls = 0;
  std::string seen;
  store.AddWatcher([&] {
    ++calls;
    seen = store.Get("a") ? store.Get("a")->version : "";
  });
  store.Publish({Snap("a", "1"), Snap("b", "1")});
  EXPECT_EQ(calls, 1) << "one call per publish, not per pool";
  EXPECT_EQ(seen, "1");
  store.Publish({});
  EXPECT_EQ(calls, 1) << "nothing published, nobody told";
  store.Publish({Snap("a", "2")});
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(seen, "2");
}

TEST(SnapshotStoreTest, RefreshReplacesWithoutNotifying) {
  SnapshotStore store;
  int calls = 0;
  store.AddWatcher([&] { ++calls; });
  store.Publish({Snap("a", "1")});
  auto refreshed = std::make_shared<Snapshot>(*store.Get("a"));
  refreshed->autoscale_explanation = "newer details, same version";
  store.Refresh({refreshed});
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(store.Get("a"), refreshed);
  EXPECT_EQ(store.Get("a")->version, "1");
}

TEST(SnapshotStoreTest, RemovedWatchersAreNotCalled) {
  SnapshotStore store;
  int first = 0, second = 0;
  const int id = store.AddWatcher([&] { ++first; });
  store.AddWatcher([&] { ++second; });
  store.Publish({Snap("a", "1")});
  store.RemoveWatcher(id);
  store.Publish({Snap("a", "2")});
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 2);
  store.RemoveWatcher(id);  // Twice: harmless.
}

// RemoveWatcher returns only once a running call of that watcher has returned, so its
// owner may be destroyed right after.
TEST(SnapshotStoreTest, RemoveWatcherWaitsForARunningCall) {
  SnapshotStore store;
  Mutex mu;
  bool entered = false, release = false;
  std::atomic<bool> finished{false};
  const int id = store.AddWatcher([&] {
    MutexLock lock(&mu);
    entered = true;
    auto released = [&release] { return release; };
    mu.Await(Condition(&released));
    finished = true;
  });
  std::thread publisher([&] { store.Publish({Snap("a", "1")}); });
  {
    MutexLock lock(&mu);
    auto in_watcher = [&entered] { return entered; };
    ASSERT_TRUE(SystemClock::Get()->AwaitWithTimeout(&mu, Condition(&in_watcher), kRealTimeout));
  }
  std::future<bool> removed = std::async(std::launch::async, [&] {
    store.RemoveWatcher(id);
    return finished.load();
  });
  {
    MutexLock lock(&mu);
    release = true;
  }
  ASSERT_EQ(removed.wait_for(absl::ToChronoNanoseconds(kRealTimeout)), std::future_status::ready);
  EXPECT_TRUE(removed.get()) << "RemoveWatcher returned while the watcher was still running";
  publisher.join();
}

// Publishers, refreshers and readers on several threads (for the ThreadSanitizer build).
TEST(SnapshotStoreTest, ConcurrentPublishAndRead) {
  SnapshotStore store;
  std::atomic<int> notified{0};
  store.AddWatcher([&] { ++notified; });
  constexpr int kRounds = 500;
  std::vector<std::thread> threads;
  for (const std::string pool : {"a", "b"}) {
    threads.emplace_back([&store, pool] {
      for (int i = 1; i <= kRounds; ++i) store.Publish({Snap(pool, std::to_string(i))});
    });
    threads.emplace_back([&store, pool] {
      for (int i = 1; i <= kRounds; ++i) store.Refresh({Snap(pool, "refreshed")});
    });
  }
  threads.emplace_back([&store] {
    for (int i = 0; i < kRounds; ++i) {
      for (const auto& snap : store.All()) EXPECT_FALSE(snap->version.empty());
    }
  });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(notified.load(), 2 * kRounds);
  EXPECT_EQ(store.All().size(), 2u);
}

}  // namespace
}  // namespace switchboard::controlplane
