// Sample tiers on a real SQLite file: roll-ups, pruning, tier choice in queries,
// migrations to PRAGMA user_version, and samples giving way to events.
#include "controlplane/history/tiers.h"

#include <sqlite3.h>

#include <filesystem>

#include "controlplane/history/history_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane {
namespace {

using ::testing::HasSubstr;

class TiersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("tiers_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "history.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The result of a single-integer query, read with a separate connection.
  int64_t Scalar(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    int64_t v = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return v;
  }

  static EndpointSample Sample(absl::Time t, const std::string& address, double weight) {
    EndpointSample s;
    s.time = t;
    s.pool = "m";
    s.node_id = "node-" + address.substr(7, 1);  // 10.0.0.N:8000 is on node-N.
    s.address = address;
    s.slots_total = 4;
    s.slots_busy = 2;
    s.weight = static_cast<uint32_t>(weight);
    s.circuit = 1;
    return s;
  }

  std::filesystem::path dir_;
  std::string path_;
};

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000 / 3600 * 3600);  // On the hour.

// Three hours of reports every 10 s from two endpoints, keeping raw rows for one hour:
// older rows live on per minute, the query stitches minutes and raw rows together, and
// nothing older than the raw retention stays raw.
TEST_F(TiersTest, RollsUpPrunesAndQueriesAcrossTiers) {
  HistoryOptions options;
  options.retention = {absl::Hours(1), absl::Hours(24), absl::Hours(48)};
  options.prune_batch = 100;  // Many small passes.
  auto store = HistoryStore::Open(path_, options);
  ASSERT_TRUE(store.ok()) << store.status();
  const absl::Time end = kT0 + absl::Hours(3);
  for (absl::Time t = kT0; t < end; t += absl::Seconds(10)) {
    // The weight is the minute number within the hour: a minute's average is exact.
    const double minute = absl::ToInt64Minutes(t - kT0) % 60;
    (*store)->RecordEndpointSamples({Sample(t, "10.0.0.1:8000", minute), Sample(t, "10.0.0.2:8000", 2 * minute)});
    (*store)->RecordSample({t, "m", minute, 3, 4});
  }
  (*store)->Flush();
  // Catch-up passes run after each batch; a few more reports finish them.
  for (int i = 0; i < 40; ++i) {
    (*store)->RecordEndpointSamples({Sample(end + absl::Milliseconds(i), "10.0.0.1:8000", 0)});
    (*store)->Flush();
  }
  EXPECT_EQ((*store)->write_errors(), 0u);
  const int64_t cutoff_ms = absl::ToUnixMillis(end - absl::Hours(1));
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM endpoint_samples WHERE tier = 0 AND time_unix_ms < " +
                   std::to_string(cutoff_ms - 60000)),
            0);
  EXPECT_GE(Scalar("SELECT COUNT(*) FROM endpoint_samples WHERE tier = 1"), 2 * 170);
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM endpoint_samples WHERE tier = 2"), 2 * 2);  // Hours 0 and 1 finished.

  HistoryQuery q;
  q.pool = "m";
  q.metric = "weight";
  q.since = kT0;
  q.until = end;
  q.step = absl::Minutes(1);
  auto series = (*store)->Query(q);
  ASSERT_TRUE(series.ok()) << series.status();
  ASSERT_EQ(series->size(), 2u);
  EXPECT_EQ((*series)[0].address, "10.0.0.1:8000");
  EXPECT_EQ((*series)[0].node_id, "node-1");
  ASSERT_EQ((*series)[0].points.size(), 180u);
  for (int i = 0; i < 180; ++i) {
    EXPECT_EQ((*series)[0].points[i].time, kT0 + absl::Minutes(i));
    EXPECT_DOUBLE_EQ((*series)[0].points[i].value, i % 60) << "minute " << i;
    EXPECT_DOUBLE_EQ((*series)[1].points[i].value, 2 * (i % 60)) << "minute " << i;
  }

  // Hourly steps read the hourly tier (and minutes for the hour not rolled up yet).
  q.step = absl::Hours(1);
  series = (*store)->Query(q);
  ASSERT_TRUE(series.ok());
  ASSERT_EQ((*series)[0].points.size(), 3u);
  for (const HistoryPoint& p : (*series)[0].points) EXPECT_DOUBLE_EQ(p.value, 29.5);

  // One endpoint by NODE/ADDRESS; a pool metric; raw steps for the last minutes.
  q = HistoryQuery{"", "node-2", "10.0.0.2:8000", "slots_busy", end - absl::Minutes(5), end, absl::Seconds(10)};
  series = (*store)->Query(q);
  ASSERT_TRUE(series.ok());
  ASSERT_EQ(series->size(), 1u);
  EXPECT_EQ((*series)[0].points.size(), 30u);
  EXPECT_DOUBLE_EQ((*series)[0].points[0].value, 2);
  q = HistoryQuery{"m", "", "", "desired", kT0, end, absl::Minutes(30)};
  series = (*store)->Query(q);
  ASSERT_TRUE(series.ok());
  ASSERT_EQ(series->size(), 1u);
  EXPECT_EQ((*series)[0].points.size(), 6u);
  EXPECT_DOUBLE_EQ((*series)[0].points[0].value, 4);
}

TEST_F(TiersTest, BadQueriesSayWhatIsAllowed) {
  auto store = HistoryStore::Open(path_);
  ASSERT_TRUE(store.ok());
  const absl::Time t = kT0;
  struct Case {
    HistoryQuery q;
    std::string says;
  } cases[] = {
      {{"m", "", "", "nope", t, t + absl::Hours(1), absl::Minutes(1)}, "endpoint metrics are slots_busy"},
      {{"", "", "", "weight", t, t + absl::Hours(1), absl::Minutes(1)}, "give a pool"},
      {{"", "n", "", "weight", t, t + absl::Hours(1), absl::Minutes(1)}, "NODE/ADDRESS"},
      {{"", "n", "a:1", "demand", t, t + absl::Hours(1), absl::Minutes(1)}, "pool metric"},
      {{"m", "", "", "weight", t, t, absl::Minutes(1)}, "range is empty"},
      {{"m", "", "", "weight", t, t + absl::Hours(1), absl::Milliseconds(10)}, "at least 1s"},
      {{"m", "", "", "weight", t, t + absl::Hours(24 * 7), absl::Seconds(1)}, "larger step"},
  };
  for (const Case& c : cases) {
    auto r = (*store)->Query(c.q);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.says));
  }
}

// A version 3 database (schema_version table) moves to user_version 4 and keeps its rows.
TEST_F(TiersTest, MigratesASchemaVersionDatabaseToUserVersion) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                         "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time_unix_ms INTEGER NOT NULL,"
                         " kind TEXT NOT NULL, pool TEXT NOT NULL, node_id TEXT NOT NULL, address TEXT NOT NULL,"
                         " detail TEXT NOT NULL);"
                         "CREATE TABLE pool_snapshots (pool TEXT PRIMARY KEY, version TEXT NOT NULL,"
                         " time_unix_ms INTEGER NOT NULL, assignment BLOB NOT NULL);"
                         "CREATE TABLE pool_samples (time_unix_ms INTEGER NOT NULL, pool TEXT NOT NULL,"
                         " demand REAL NOT NULL, replicas INTEGER NOT NULL, desired INTEGER NOT NULL);"
                         "CREATE TABLE pool_scaling_state (pool TEXT PRIMARY KEY, time_unix_ms INTEGER NOT NULL,"
                         " last_desired INTEGER NOT NULL, recommendations TEXT NOT NULL,"
                         " scale_up_events TEXT NOT NULL, scale_down_events TEXT NOT NULL);"
                         "CREATE TABLE manual_overrides (pool TEXT PRIMARY KEY, replicas INTEGER NOT NULL,"
                         " expires_unix_ms INTEGER NOT NULL, reason TEXT NOT NULL);"
                         "CREATE TABLE drained_nodes (node_id TEXT PRIMARY KEY, since_unix_ms INTEGER NOT NULL);"
                         "INSERT INTO schema_version VALUES (1), (2), (3);"
                         "INSERT INTO events(time_unix_ms, kind, pool, node_id, address, detail)"
                         " VALUES (5, 'drain', '', 'n1', '', 'kept');"
                         "INSERT INTO drained_nodes VALUES ('n1', 5);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  {
    auto store = HistoryStore::Open(path_);
    ASSERT_TRUE(store.ok()) << store.status();
    auto events = (*store)->RecentEvents(10);
    ASSERT_TRUE(events.ok());
    ASSERT_EQ(events->size(), 1u);
    EXPECT_EQ((*events)[0].detail, "kept");
    EXPECT_EQ(*(*store)->DrainedNodes(), std::vector<std::string>{"n1"});
  }
  EXPECT_EQ(Scalar("PRAGMA user_version"), kHistorySchemaVersion);
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_version'"), 0);
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'endpoint_samples_by_time'"), 1);
  auto again = HistoryStore::Open(path_);  // Opening a current database changes nothing.
  ASSERT_TRUE(again.ok()) << again.status();
}

// With the writer held and the queue full, endpoint samples give way to events and each
// dropped sample is counted; every event is written.
TEST_F(TiersTest, EndpointSamplesGiveWayToEvents) {
  auto opened = HistoryStore::Open(path_, /*queue_limit=*/2);
  ASSERT_TRUE(opened.ok());
  HistoryStore& store = **opened;
  store.PauseWriter();
  store.RecordEndpointSamples({Sample(kT0, "10.0.0.1:8000", 1), Sample(kT0, "10.0.0.2:8000", 1)});
  store.RecordEndpointSamples({Sample(kT0 + absl::Seconds(1), "10.0.0.1:8000", 1)});
  store.RecordEvent({kT0, "endpoint_joined", "m", "node-1", "10.0.0.1:8000", "e1"});
  EXPECT_EQ(store.dropped_endpoint_samples(), 2u);
  store.RecordEvent({kT0, "endpoint_joined", "m", "node-2", "10.0.0.2:8000", "e2"});
  EXPECT_EQ(store.dropped_endpoint_samples(), 3u);
  store.RecordEndpointSamples({Sample(kT0 + absl::Seconds(2), "10.0.0.1:8000", 1)});  // Nothing to push out.
  EXPECT_EQ(store.dropped_endpoint_samples(), 4u);
  store.ResumeWriter();
  store.Flush();
  EXPECT_EQ(store.RecentEvents(10)->size(), 2u);
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM endpoint_samples"), 0);
}

// One queue item carries a whole pool's pass, so the queue is bounded by samples, not by
// items: with the writer held, many big passes keep at most `endpoint_sample_limit`
// samples queued (the oldest passes give way, every sample counted), a pass larger than
// the whole limit is dropped itself, events still go through, and what is written once
// the writer resumes is the newest passes.
TEST_F(TiersTest, EndpointSamplesAreBoundedBySamplesNotItems) {
  HistoryOptions options;
  options.endpoint_sample_limit = 10000;
  auto opened = HistoryStore::Open(path_, options);
  ASSERT_TRUE(opened.ok());
  HistoryStore& store = **opened;
  store.PauseWriter();
  auto pass = [](int index, int endpoints) {
    std::vector<EndpointSample> samples;
    for (int i = 0; i < endpoints; ++i) {
      samples.push_back(Sample(kT0 + absl::Seconds(index), "10.0.0.1:" + std::to_string(10000 + i), index));
    }
    return samples;
  };
  for (int i = 0; i < 20; ++i) {
    store.RecordEndpointSamples(pass(i, 2000));
    EXPECT_LE(store.queued_endpoint_samples(), 10000u) << i;
    store.RecordEvent({kT0 + absl::Seconds(i), "circuit_changed", "m", "node-1", "10.0.0.1:8000", std::to_string(i)});
  }
  EXPECT_EQ(store.queued_endpoint_samples(), 10000u);
  EXPECT_EQ(store.dropped_endpoint_samples(), 15u * 2000u) << "passes 0-14 gave way to 15-19";
  store.RecordEndpointSamples(pass(20, 12000));  // Larger than the whole limit.
  EXPECT_EQ(store.dropped_endpoint_samples(), 15u * 2000u + 12000u);
  EXPECT_EQ(store.queued_endpoint_samples(), 10000u) << "the newest passes that fit stay queued";
  EXPECT_EQ(store.queue_depth(), 5u + 20u) << "five passes and every event";
  store.ResumeWriter();
  store.Flush();
  EXPECT_EQ(store.queued_endpoint_samples(), 0u);
  EXPECT_EQ(store.RecentEvents(100)->size(), 20u);
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM endpoint_samples"), 10000);
  EXPECT_EQ(Scalar("SELECT MIN(time_unix_ms) FROM endpoint_samples"), absl::ToUnixMillis(kT0 + absl::Seconds(15)));
  EXPECT_EQ(store.write_errors(), 0u);
}

TEST_F(TiersTest, EventsFilterByPoolTimeAndId) {
  auto store = HistoryStore::Open(path_);
  ASSERT_TRUE(store.ok());
  for (int i = 0; i < 6; ++i) {
    (*store)->RecordEvent(
        {kT0 + absl::Seconds(i), "circuit_changed", i % 2 ? "a" : "b", "n", "x:1", std::to_string(i)});
  }
  (*store)->Flush();
  EventQuery q;
  q.pool = "a";
  auto a = (*store)->Events(q);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 3u);
  EXPECT_EQ((*a)[0].detail, "5");  // Newest first.
  q.since = kT0 + absl::Seconds(3);
  EXPECT_EQ((*store)->Events(q)->size(), 2u);
  EventQuery follow;
  follow.after_id = (*a)[1].id;  // Event "3".
  auto later = (*store)->Events(follow);
  ASSERT_TRUE(later.ok());
  ASSERT_EQ(later->size(), 2u);
  EXPECT_EQ((*later)[1].detail, "4");
}

TEST(RetentionTiersTest, ParsesAndRefuses) {
  auto t = ParseRetentionTiers("1h,7d,90d");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->raw, absl::Hours(1));
  EXPECT_EQ(t->minute, absl::Hours(24 * 7));
  EXPECT_EQ(t->hour, absl::Hours(24 * 90));
  for (const char* bad : {"1h,7d", "1h,7x,90d", "0s,1d,2d", "2d,1d,90d", "1h,30s,90d", "-1h,7d,90d"}) {
    auto r = ParseRetentionTiers(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// The formatted value (the --help default, logs) reads back as the same tiers.
TEST(RetentionTiersTest, FormatsWhatItParses) {
  EXPECT_EQ(FormatRetentionTiers({}), "1h,7d,90d");
  for (const char* text : {"90s,2h,2d", "1s,1m,1h", "25h,36h,100000d"}) {
    auto t = ParseRetentionTiers(text);
    ASSERT_TRUE(t.ok()) << text;
    EXPECT_EQ(FormatRetentionTiers(*t), text);
  }
}

}  // namespace
}  // namespace switchboard::controlplane
