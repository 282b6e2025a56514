// NginxSync with real files and real shell commands (a check and a reload that record
// their runs), in a temporary directory.
#include "sync/nginx_sync.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::sync {
namespace {

using ::testing::HasSubstr;

std::string Read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

v1::Assignment Pool(const std::string& name, uint32_t weight) {
  v1::Assignment a;
  a.set_pool(name);
  auto* ep = a.add_endpoints();
  ep->set_address("127.0.0.1:8000");
  ep->set_weight(weight);
  ep->set_state(v1::ENDPOINT_STATE_READY);
  ep->set_circuit(v1::CIRCUIT_STATE_CLOSED);
  return a;
}

class NginxSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("nginx_sync_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    options_.out = (dir_ / "upstream.conf").string();
    options_.pools = {"llama"};
    // The check fails while a file named "bad" exists; the reload appends a line.
    options_.check_command = "test ! -e " + (dir_ / "bad").string() + " || { echo 'unknown directive'; exit 1; }";
    options_.reload_command = "echo reload >> " + (dir_ / "reloads").string();
    options_.max_reloads_per_minute = 2;
  }
  int Reloads() {
    std::istringstream s(Read(dir_ / "reloads"));
    int n = 0;
    for (std::string line; std::getline(s, line);) ++n;
    return n;
  }

  std::filesystem::path dir_;
  NginxSyncOptions options_;
  std::ostringstream log_;
  absl::Time now_ = absl::FromUnixSeconds(1000);
};

TEST_F(NginxSyncTest, WritesChecksAndReloadsOnlyOnChange) {
  NginxSync sync(options_, log_, [this] { return now_; });
  ASSERT_TRUE(sync.Apply(Pool("llama", 10)).ok());
  EXPECT_THAT(Read(options_.out), HasSubstr("server 127.0.0.1:8000 weight=10;"));
  EXPECT_EQ(Reloads(), 1);
  v1::Assignment same = Pool("llama", 10);
  same.set_version("other");
  same.mutable_endpoints(0)->set_slots_free(4);
  ASSERT_TRUE(sync.Apply(same).ok());
  EXPECT_EQ(Reloads(), 1);  // Nothing nginx uses changed.
  ASSERT_TRUE(sync.Apply(Pool("llama", 20)).ok());
  EXPECT_EQ(Reloads(), 2);
  EXPECT_FALSE(std::filesystem::exists(options_.out + ".previous"));
}

TEST_F(NginxSyncTest, FailedCheckKeepsTheOldFileAndSaysWhy) {
  NginxSync sync(options_, log_, [this] { return now_; });
  ASSERT_TRUE(sync.Apply(Pool("llama", 10)).ok());
  const std::string good = Read(options_.out);
  std::ofstream(dir_ / "bad") << "";
  absl::Status s = sync.Apply(Pool("llama", 20));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("unknown directive"));
  EXPECT_THAT(log_.str(), HasSubstr("the old file is back in place"));
  EXPECT_EQ(Read(options_.out), good);
  EXPECT_EQ(Reloads(), 1);
  std::filesystem::remove(dir_ / "bad");
  ASSERT_TRUE(sync.Apply(Pool("llama", 20)).ok());
  EXPECT_THAT(Read(options_.out), HasSubstr("weight=20;"));
}

TEST_F(NginxSyncTest, FirstFileFailingItsCheckLeavesNoFile) {
  std::ofstream(dir_ / "bad") << "";
  NginxSync sync(options_, log_, [this] { return now_; });
  EXPECT_FALSE(sync.Apply(Pool("llama", 10)).ok());
  EXPECT_FALSE(std::filesystem::exists(options_.out));
}

TEST_F(NginxSyncTest, ReloadsAreRateLimitedAndTheLastChangeFollows) {
  NginxSync sync(options_, log_, [this] { return now_; });
  ASSERT_TRUE(sync.Apply(Pool("llama", 10)).ok());
  ASSERT_TRUE(sync.Apply(Pool("llama", 20)).ok());
  ASSERT_TRUE(sync.Apply(Pool("llama", 30)).ok());  // Third in a minute: waits.
  ASSERT_TRUE(sync.Apply(Pool("llama", 40)).ok());
  EXPECT_EQ(Reloads(), 2);
  EXPECT_TRUE(sync.Pending());
  EXPECT_THAT(Read(options_.out), HasSubstr("weight=20;"));
  now_ += absl::Seconds(30);
  ASSERT_TRUE(sync.Tick().ok());
  EXPECT_EQ(Reloads(), 2);
  now_ += absl::Seconds(31);
  ASSERT_TRUE(sync.Tick().ok());
  EXPECT_EQ(Reloads(), 3);
  EXPECT_FALSE(sync.Pending());
  EXPECT_THAT(Read(options_.out), HasSubstr("weight=40;"));
}

TEST_F(NginxSyncTest, WaitsForEveryPoolAndRendersEachAsAnUpstream) {
  options_.pools = {"a", "b"};
  NginxSync sync(options_, log_, [this] { return now_; });
  ASSERT_TRUE(sync.Apply(Pool("a", 10)).ok());
  EXPECT_FALSE(std::filesystem::exists(options_.out));
  ASSERT_TRUE(sync.Apply(Pool("b", 10)).ok());
  const std::string out = Read(options_.out);
  EXPECT_THAT(out, HasSubstr("upstream switchboard_a {"));
  EXPECT_THAT(out, HasSubstr("upstream switchboard_b {"));
}

TEST_F(NginxSyncTest, BackupPoolWaitsForBothAndMarksItsServersBackup) {
  options_.backup_pool = "spare";
  NginxSync sync(options_, log_, [this] { return now_; });
  ASSERT_TRUE(sync.Apply(Pool("llama", 10)).ok());
  EXPECT_FALSE(sync.Complete());
  EXPECT_FALSE(std::filesystem::exists(options_.out));
  v1::Assignment spare = Pool("spare", 3);
  spare.mutable_endpoints(0)->set_address("127.0.0.2:8000");
  ASSERT_TRUE(sync.Apply(spare).ok());
  EXPECT_THAT(Read(options_.out), HasSubstr("upstream switchboard_llama {\n    server 127.0.0.1:8000 weight=10;\n"
                                            "    server 127.0.0.2:8000 weight=3 backup;\n}"));
}

TEST_F(NginxSyncTest, DryRunPrintsAndWritesNothing) {
  options_.dry_run = true;
  NginxSync sync(options_, log_, [this] { return now_; });
  ASSERT_TRUE(sync.Apply(Pool("llama", 10)).ok());
  EXPECT_THAT(log_.str(), HasSubstr("would write"));
  EXPECT_THAT(log_.str(), HasSubstr("server 127.0.0.1:8000 weight=10;"));
  EXPECT_FALSE(std::filesystem::exists(options_.out));
  EXPECT_EQ(Reloads(), 0);
}

TEST(ReloadLimiterTest, SlidingMinute) {
  ReloadLimiter l(2);
  const absl::Time t0 = absl::FromUnixSeconds(0);
  EXPECT_TRUE(l.Allowed(t0));
  l.Record(t0);
  l.Record(t0 + absl::Seconds(10));
  EXPECT_FALSE(l.Allowed(t0 + absl::Seconds(59)));
  EXPECT_EQ(l.NextAllowed(t0 + absl::Seconds(20)), t0 + absl::Seconds(60));
  EXPECT_TRUE(l.Allowed(t0 + absl::Seconds(60)));
}

}  // namespace
}  // namespace switchboard::sync
