// --scale-exec with real scripts: the command's words, a run per change, never two at
// once for one pool (the newest count wins), failures and timeouts as events.
#include "controlplane/scale/scale_exec.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(SplitCommandTest, WordsAndQuotes) {
  auto w = SplitCommand("kubectl scale 'deployment/{pool}' --replicas=\"{replicas}\"  -n 'my ns'");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_THAT(*w, ElementsAre("kubectl", "scale", "deployment/{pool}", "--replicas={replicas}", "-n", "my ns"));
  EXPECT_THAT(ExpandCommand(*w, "llama", 3),
              ElementsAre("kubectl", "scale", "deployment/llama", "--replicas=3", "-n", "my ns"));
  EXPECT_FALSE(SplitCommand("a 'b").ok());
  EXPECT_FALSE(SplitCommand("   ").ok());
  auto empty_arg = SplitCommand("echo ''");
  ASSERT_TRUE(empty_arg.ok());
  EXPECT_THAT(*empty_arg, ElementsAre("echo", ""));
}

TEST(RunCommandTest, ExitStatusOutputAndTimeout) {
  ExecResult ok =
      RunCommand({"/bin/sh", "-c", "echo hello $SWITCHBOARD_POOL"}, {"SWITCHBOARD_POOL=p"}, absl::Seconds(10));
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.detail, "exit 0: hello p");
  ExecResult failed = RunCommand({"/bin/sh", "-c", "echo no quota >&2; exit 3"}, {}, absl::Seconds(10));
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.detail, "exit 3: no quota");
  ExecResult missing = RunCommand({"/nonexistent/scaler"}, {}, absl::Seconds(10));
  EXPECT_FALSE(missing.ok);
  EXPECT_THAT(missing.detail, HasSubstr("exit 127"));
  // The child and what it started are killed at the deadline.
  const absl::Time start = absl::Now();
  ExecResult slow = RunCommand({"/bin/sh", "-c", "sleep 30 & sleep 30"}, {}, absl::Milliseconds(200));
  EXPECT_FALSE(slow.ok);
  EXPECT_THAT(slow.detail, HasSubstr("timed out after 200ms"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

class ScaleExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("scale_exec_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    log_ = (dir_ / "log").string();
    config_ = std::make_shared<policy::FleetConfig>(policy::DefaultFleetConfig());
  }

  // A script that logs its start and end; `gate`, when it exists, holds it until removed.
  std::string Script(const std::string& body) {
    const std::string path = (dir_ / "scale.sh").string();
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    chmod(path.c_str(), 0755);
    return path;
  }

  void Publish(const std::string& pool, uint32_t desired, bool stale = false) {
    auto snap = std::make_shared<Snapshot>();
    snap->pool = pool;
    snap->assignment.set_pool(pool);
    snap->assignment.set_desired_replicas(desired);
    snap->assignment.set_stale(stale);
    snap->version = absl::StrCat(pool, desired, stale);
    store_.Publish({snap});
  }

  std::unique_ptr<ScaleExecutor> Start(const std::string& command, absl::Duration timeout = absl::Seconds(10)) {
    ScaleExecOptions options;
    options.command = command;
    options.timeout = timeout;
    auto e = ScaleExecutor::Create(
        options, &store_, [this] { return config_; },
        [this](HistoryEvent ev) {
          MutexLock lock(&mu_);
          events_.push_back(ev.kind + " " + ev.pool + " " + ev.detail);
        },
        [] { return absl::Now(); });
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? std::move(*e) : nullptr;
  }

  bool WaitRuns(ScaleExecutor& e, uint64_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (e.runs_finished() < n) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(5));  // Polling a condition with a deadline.
    }
    return true;
  }

  std::string Log() {
    std::stringstream s;
    s << std::ifstream(log_).rdbuf();
    return s.str();
  }
  std::vector<std::string> Events() {
    MutexLock lock(&mu_);
    return events_;
  }

  std::filesystem::path dir_;
  std::string log_;
  SnapshotStore store_;
  std::shared_ptr<policy::FleetConfig> config_;
  Mutex mu_;
  std::vector<std::string> events_;
};

TEST_F(ScaleExecutorTest, RunsOnEveryChangeNeverTwiceAtOnceNewestWins) {
  const std::string gate = (dir_ / "gate").string();
  std::ofstream(gate) << "";
  // Each run logs "start", waits while the gate file exists, then logs "end".
  const std::string script = Script(absl::StrCat("echo \"start $1 $2\" >> ", log_, "\nwhile [ -e ", gate,
                                                 " ]; do sleep 0.01; done\necho \"end $1 $2\" >> ", log_));
  Publish("a", 2);
  auto e = Start(absl::StrCat(script, " {pool} {replicas}"));
  ASSERT_NE(e, nullptr);
  // While the first run (2) is held, 3 then 5 arrive: only 5 runs next.
  Publish("a", 3);
  Publish("a", 5);
  Publish("a", 5);
  std::filesystem::remove(gate);
  ASSERT_TRUE(WaitRuns(*e, 2));
  Publish("a", 5);  // Unchanged: nothing.
  Publish("a", 0);
  ASSERT_TRUE(WaitRuns(*e, 3));
  e.reset();
  EXPECT_EQ(Log(), "start a 2\nend a 2\nstart a 5\nend a 5\nstart a 0\nend a 0\n");
  EXPECT_THAT(Events(), ElementsAre("scale_exec a 2 replicas: exit 0", "scale_exec a 5 replicas: exit 0",
                                    "scale_exec a 0 replicas: exit 0"));
}

TEST_F(ScaleExecutorTest, FailuresAndTimeoutsAreEventsStaleAndAdvisoryRunNothing) {
  const std::string script = Script("if [ \"$2\" = 9 ]; then sleep 30; fi\necho \"denied $1\" >&2; exit 4");
  auto advisory = std::make_shared<policy::FleetConfig>(*config_);
  advisory->pools["watched"].advisory = true;
  config_ = advisory;
  Publish("old", 3, /*stale=*/true);
  Publish("watched", 3);
  auto e = Start(absl::StrCat(script, " {pool} {replicas}"), absl::Milliseconds(300));
  ASSERT_NE(e, nullptr);
  Publish("b", 4);
  ASSERT_TRUE(WaitRuns(*e, 1));
  Publish("b", 9);
  ASSERT_TRUE(WaitRuns(*e, 2));
  e.reset();
  auto ev = Events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0], "scale_exec_failed b 4 replicas: exit 4: denied b");
  EXPECT_THAT(ev[1], HasSubstr("scale_exec_failed b 9 replicas: timed out after 300ms"));
}

}  // namespace
}  // namespace switchboard::controlplane
