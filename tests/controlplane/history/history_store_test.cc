#include "controlplane/history/history_store.h"

#include <sqlite3.h>

#include <filesystem>
#include <fstream>

#include "common/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane {
namespace {

class HistoryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("history_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    path_ = (dir_ / "sub" / "history.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(HistoryStoreTest, EventsSurviveReopen) {
  {
    auto store = HistoryStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    for (int i = 0; i < 100; ++i) {
      (*store)->RecordEvent(
          {absl::FromUnixMillis(1000 + i), "circuit_changed", "m", "n1", "a:1", "event " + std::to_string(i)});
    }
    (*store)->RecordSnapshot({"m", "v1", absl::FromUnixMillis(5), "bytes"});
    (*store)->RecordSnapshot({"m", "v2", absl::FromUnixMillis(6), "bytes2"});
  }  // Destruction drains the queue.
  auto store = HistoryStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  auto events = (*store)->RecentEvents(10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 10u);
  EXPECT_EQ((*events)[0].detail, "event 99");
  EXPECT_EQ((*events)[0].time, absl::FromUnixMillis(1099));
  auto snaps = (*store)->LatestSnapshots();
  ASSERT_TRUE(snaps.ok());
  ASSERT_EQ(snaps->size(), 1u);
  EXPECT_EQ((*snaps)[0].version, "v2");
  EXPECT_EQ((*snaps)[0].assignment, "bytes2");
}

TEST_F(HistoryStoreTest, SamplesRoundTripAndOldOnesArePruned) {
  auto store = HistoryStore::Open(path_);
  ASSERT_TRUE(store.ok());
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  (*store)->RecordSample({t0 - absl::Hours(24 * 20), "m", 1, 1, 1});  // Too old to keep.
  (*store)->RecordSample({t0, "m", 12.5, 3, 4});
  (*store)->RecordSample({t0 + absl::Seconds(15), "other", 2, 1, 1});
  (*store)->Flush();
  auto samples = (*store)->SamplesSince(t0 - absl::Hours(24 * 30));
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 2u);
  EXPECT_EQ((*samples)[0].pool, "m");
  EXPECT_DOUBLE_EQ((*samples)[0].demand, 12.5);
  EXPECT_EQ((*samples)[0].desired, 4);
  EXPECT_EQ((*samples)[1].time, t0 + absl::Seconds(15));
}

TEST_F(HistoryStoreTest, MigratesAVersion1Database) {
  sqlite3* db = nullptr;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                         "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time_unix_ms INTEGER NOT NULL,"
                         " kind TEXT NOT NULL, pool TEXT NOT NULL, node_id TEXT NOT NULL, address TEXT NOT NULL,"
                         " detail TEXT NOT NULL);"
                         "CREATE TABLE pool_snapshots (pool TEXT PRIMARY KEY, version TEXT NOT NULL,"
                         " time_unix_ms INTEGER NOT NULL, assignment BLOB NOT NULL);"
                         "INSERT INTO events(time_unix_ms, kind, pool, node_id, address, detail)"
                         " VALUES (1, 'endpoint_joined', 'm', 'n', 'a:1', 'old');"
                         "INSERT INTO schema_version VALUES (1);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = HistoryStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->RecentEvents(5)->at(0).detail, "old") << "events survive the migration";
  (*store)->RecordSample({absl::FromUnixSeconds(5), "m", 1, 1, 1});
  (*store)->RecordOverride({"m", 3, absl::FromUnixSeconds(100), "why"});
  (*store)->Flush();
  EXPECT_EQ((*store)->SamplesSince(absl::FromUnixSeconds(0))->size(), 1u);
  EXPECT_EQ((*store)->Overrides()->size(), 1u) << "version 3's tables exist";
  EXPECT_EQ((*store)->write_errors(), 0u);
}

TEST_F(HistoryStoreTest, ScalingStatesOverridesAndDrainsSurviveReopen) {
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  {
    auto store = HistoryStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    StoredScalingState st;
    st.pool = "m";
    st.time = t0;
    st.last_desired = 4;
    st.recommendations = {{t0 - absl::Seconds(30), 5}, {t0 - absl::Seconds(15), 4}};
    st.scale_down_events = {{t0 - absl::Seconds(15), 1}};
    (*store)->RecordScalingState(st);
    st.last_desired = 3;  // A newer state replaces the pool's older one.
    (*store)->RecordScalingState(st);
    (*store)->RecordOverride({"m", 7, t0 + absl::Hours(1), "launch"});
    (*store)->RecordOverride({"other", 2, t0 + absl::Hours(1), ""});
    (*store)->RecordOverride({"other", -1, absl::InfinitePast(), ""});  // Cleared.
    (*store)->RecordDrain("n1", true, t0);
    (*store)->RecordDrain("n2", true, t0);
    (*store)->RecordDrain("n2", false, t0);
  }
  auto store = HistoryStore::Open(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  auto states = (*store)->ScalingStates();
  ASSERT_TRUE(states.ok()) << states.status();
  ASSERT_EQ(states->size(), 1u);
  const StoredScalingState& st = (*states)[0];
  EXPECT_EQ(st.pool, "m");
  EXPECT_EQ(st.last_desired, 3);
  ASSERT_EQ(st.recommendations.size(), 2u);
  EXPECT_EQ(st.recommendations[0].time, t0 - absl::Seconds(30));
  EXPECT_EQ(st.recommendations[0].value, 5);
  EXPECT_EQ(st.recommendations[1].value, 4);
  EXPECT_TRUE(st.scale_up_events.empty());
  ASSERT_EQ(st.scale_down_events.size(), 1u);
  EXPECT_EQ(st.scale_down_events[0].value, 1);
  auto overrides = (*store)->Overrides();
  ASSERT_TRUE(overrides.ok());
  ASSERT_EQ(overrides->size(), 1u);
  EXPECT_EQ((*overrides)[0].pool, "m");
  EXPECT_EQ((*overrides)[0].replicas, 7);
  EXPECT_EQ((*overrides)[0].expires, t0 + absl::Hours(1));
  EXPECT_EQ((*overrides)[0].reason, "launch");
  EXPECT_THAT(*(*store)->DrainedNodes(), ::testing::ElementsAre("n1"));
}

TEST_F(HistoryStoreTest, AnUnreadableScalingStateIsSkipped) {
  {
    auto store = HistoryStore::Open(path_);
    ASSERT_TRUE(store.ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "INSERT INTO pool_scaling_state VALUES ('bad', 1, 2, '5:x', '', '');"
                         "INSERT INTO pool_scaling_state VALUES ('good', 1, 2, '5:3', '', '');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = HistoryStore::Open(path_);
  ASSERT_TRUE(store.ok());
  auto states = (*store)->ScalingStates();
  ASSERT_TRUE(states.ok());
  ASSERT_EQ(states->size(), 1u);
  EXPECT_EQ((*states)[0].pool, "good");
}

TEST_F(HistoryStoreTest, WhenFlushedAnswersOnceTheWriteIsCommitted) {
  auto store = HistoryStore::Open(path_);
  ASSERT_TRUE(store.ok());
  bool called_at_once = false;
  (*store)->WhenFlushed([&](bool saved) { called_at_once = saved; });
  EXPECT_TRUE(called_at_once) << "nothing pending: answered on the caller's thread";

  (*store)->PauseWriter();
  (*store)->RecordOverride({"m", 3, absl::FromUnixSeconds(100), ""});
  Mutex mu;
  int calls = 0;
  bool saved = false;
  size_t overrides_seen = 0;
  (*store)->WhenFlushed([&](bool ok) {
    MutexLock lock(&mu);
    ++calls;
    saved = ok;
    overrides_seen = (*store)->Overrides()->size();
  });
  {
    MutexLock lock(&mu);
    EXPECT_EQ(calls, 0) << "the writer holds the override: not durable yet";
  }
  (*store)->ResumeWriter();
  MutexLock lock(&mu);
  auto called = [&calls]() { return calls > 0; };
  mu.Await(Condition(&called));  // The writer thread answers after its commit.
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(saved);
  EXPECT_EQ(overrides_seen, 1u) << "answered only after the commit";
}

TEST_F(HistoryStoreTest, FlushMakesWritesVisible) {
  auto store = HistoryStore::Open(path_);
  ASSERT_TRUE(store.ok());
  (*store)->RecordEvent({absl::FromUnixMillis(1), "endpoint_joined", "m", "n", "a:1", ""});
  (*store)->Flush();
  EXPECT_EQ((*store)->RecentEvents(5)->size(), 1u);
}

TEST_F(HistoryStoreTest, RejectsNewerSchema) {
  {
    auto store = HistoryStore::Open(path_);
    ASSERT_TRUE(store.ok());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = HistoryStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), ::testing::HasSubstr("newer"));
}

TEST_F(HistoryStoreTest, RejectsAFileThatIsNotSqlite) {
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path());
  std::ofstream(path_) << std::string(4096, 'x');
  auto store = HistoryStore::Open(path_);
  ASSERT_FALSE(store.ok());
}

// A batch that cannot be written (here its table is gone, dropped by another
// connection) is lost and counted, and later batches are written again.
TEST_F(HistoryStoreTest, FailedWritesAreCounted) {
  auto store = HistoryStore::Open(path_);
  ASSERT_TRUE(store.ok());
  (*store)->RecordEvent({absl::FromUnixMillis(1), "endpoint_joined", "m", "n", "a:1", ""});
  (*store)->Flush();
  EXPECT_EQ((*store)->write_errors(), 0u);

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE events", nullptr, nullptr, nullptr), SQLITE_OK);
  (*store)->RecordEvent({absl::FromUnixMillis(2), "endpoint_left", "m", "n", "a:1", "lost"});
  (*store)->Flush();
  EXPECT_EQ((*store)->write_errors(), 1u);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time_unix_ms INTEGER NOT NULL,"
                         " kind TEXT NOT NULL, pool TEXT NOT NULL, node_id TEXT NOT NULL, address TEXT NOT NULL,"
                         " detail TEXT NOT NULL)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  (*store)->RecordEvent({absl::FromUnixMillis(3), "endpoint_joined", "m", "n", "a:1", "kept"});
  (*store)->Flush();
  EXPECT_EQ((*store)->write_errors(), 1u);
  auto events = (*store)->RecentEvents(5);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].detail, "kept");
}

// Recording never waits for the writer: with the writer held and a queue of 4 full,
// events push out samples, then snapshots, then go over the limit; a sample with
// nothing to push out is dropped. Every event is written; every drop is counted.
TEST_F(HistoryStoreTest, AFullQueueDropsSamplesNeverEventsAndNeverBlocks) {
  auto opened = HistoryStore::Open(path_, /*queue_limit=*/4);
  ASSERT_TRUE(opened.ok());
  HistoryStore& store = **opened;
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  store.PauseWriter();
  store.RecordSample({t0, "m", 1, 1, 1});
  store.RecordSnapshot({"m", "v1", t0, "a"});
  store.RecordSample({t0 + absl::Seconds(15), "m", 2, 1, 1});
  store.RecordEvent({t0, "endpoint_joined", "m", "n", "a:1", "e1"});  // Full now.
  EXPECT_EQ(store.dropped_samples(), 0u);
  for (int i = 2; i <= 6; ++i) {
    store.RecordEvent({t0 + absl::Seconds(i), "circuit_changed", "m", "n", "a:1", "e" + std::to_string(i)});
  }
  EXPECT_EQ(store.dropped_samples(), 2u);                      // e2, e3 pushed out both samples,
  EXPECT_EQ(store.dropped_snapshots(), 1u);                    // e4 the snapshot; e5 and e6 went over.
  store.RecordSample({t0 + absl::Seconds(30), "m", 3, 1, 1});  // Nothing to push out.
  EXPECT_EQ(store.dropped_samples(), 3u);
  store.ResumeWriter();
  store.Flush();

  auto events = store.RecentEvents(100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 6u);
  EXPECT_EQ(events->front().detail, "e6");
  EXPECT_EQ(events->back().detail, "e1");
  EXPECT_TRUE(store.SamplesSince(t0 - absl::Hours(1))->empty());
  EXPECT_TRUE(store.LatestSnapshots()->empty());
  EXPECT_EQ(store.write_errors(), 0u);
}

// Flush waits for what was recorded before it, even when later items were dropped.
TEST_F(HistoryStoreTest, FlushWaitsForEarlierItemsWhenLaterOnesAreDropped) {
  auto opened = HistoryStore::Open(path_, /*queue_limit=*/2);
  ASSERT_TRUE(opened.ok());
  HistoryStore& store = **opened;
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  store.PauseWriter();
  store.RecordEvent({t0, "endpoint_joined", "m", "n", "a:1", "first"});
  store.RecordSample({t0, "m", 1, 1, 1});
  store.RecordEvent({t0, "endpoint_left", "m", "n", "a:1", "second"});  // Drops the sample.
  EXPECT_EQ(store.dropped_samples(), 1u);
  store.ResumeWriter();
  store.Flush();
  auto events = store.RecentEvents(10);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 2u);
}

}  // namespace
}  // namespace switchboard::controlplane
