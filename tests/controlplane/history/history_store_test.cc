#include "controlplane/history/history_store.h"

#include <sqlite3.h>

#include <filesystem>
#include <fstream>

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
      (*store)->RecordEvent({absl::FromUnixMillis(1000 + i), "circuit_changed", "m", "n1", "a:1",
                             "event " + std::to_string(i)});
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
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_version VALUES (99)", nullptr, nullptr, nullptr), SQLITE_OK);
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

}  // namespace
}  // namespace switchboard::controlplane
