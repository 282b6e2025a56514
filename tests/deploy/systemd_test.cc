// deploy/systemd: every unit passes `systemd-analyze verify` (with ExecStart pointed at
// the binaries just built), restarts, stops with SIGTERM, gives the agent's drain time
// to finish before SIGKILL, and passes only flags its binary accepts.
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Read(const fs::path& p) {
  std::stringstream s;
  s << std::ifstream(p).rdbuf();
  return s.str();
}

// The value of `key=` in the unit text ("" if absent).
std::string Setting(const std::string& unit, const std::string& key) {
  std::smatch m;
  const std::regex re("(^|\n)" + key + "=([^\n]*)");
  return std::regex_search(unit, m, re) ? m[2].str() : "";
}

std::vector<fs::path> Units() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(fs::path(SWITCHBOARD_DEPLOY_DIR) / "systemd")) {
    if (e.path().extension() == ".service") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SystemdUnitsTest, EveryLongRunningBinaryHasAUnit) {
  std::vector<std::string> names;
  for (const fs::path& p : Units()) names.push_back(p.filename().string());
  EXPECT_THAT(names, ::testing::IsSupersetOf({"switchboard-agent.service", "switchboard-controlplane.service",
                                              "switchboard-sync@.service"}));
}

TEST(SystemdUnitsTest, RestartSigtermAndFlagsTheBinaryAccepts) {
  for (const fs::path& p : Units()) {
    SCOPED_TRACE(p.filename().string());
    const std::string unit = Read(p);
    EXPECT_EQ(Setting(unit, "Restart"), "always");
    EXPECT_EQ(Setting(unit, "KillSignal"), "SIGTERM");
    EXPECT_EQ(Setting(unit, "NoNewPrivileges"), "yes");
    EXPECT_EQ(Setting(unit, "ProtectSystem"), "strict");
    absl::Duration stop;
    ASSERT_TRUE(absl::ParseDuration(Setting(unit, "TimeoutStopSec"), &stop));
    const std::vector<std::string> exec = absl::StrSplit(Setting(unit, "ExecStart"), ' ', absl::SkipEmpty());
    ASSERT_FALSE(exec.empty());
    const std::string binary = fs::path(exec[0]).filename().string();
    auto [rc, help] = RunToExit(binary, {"--help"}, Scaled(absl::Seconds(20)));
    ASSERT_EQ(rc, 0) << help;
    for (size_t i = 1; i < exec.size(); ++i) {
      if (exec[i].rfind("--", 0) == 0) {
        EXPECT_THAT(help, HasSubstr(exec[i])) << "flag not accepted";
      }
      if (exec[i] == "--drain-timeout") {
        absl::Duration drain;
        ASSERT_TRUE(i + 1 < exec.size() && absl::ParseDuration(exec[i + 1], &drain));
        EXPECT_GT(stop, drain) << "SIGKILL would cut the drain short";
      }
    }
  }
}

TEST(SystemdUnitsTest, SystemdAnalyzeVerify) {
  const fs::path tool = "/usr/bin/systemd-analyze";
  if (!fs::exists(tool)) GTEST_SKIP() << "systemd-analyze is missing: install Debian's systemd (install-deps does)";
  const fs::path dir = fs::path(::testing::TempDir()) / "systemd_units";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<std::string> args = {"verify", "--man=no"};
  for (const fs::path& p : Units()) {
    // The units name the installed paths; verify checks that ExecStart is executable.
    std::ofstream(dir / p.filename()) << absl::StrReplaceAll(Read(p), {{"/usr/local/bin/", BinDir() + "/"}});
    args.push_back((dir / p.filename()).string());
  }
  auto [rc, out] = RunToExit(tool.string(), args, Scaled(absl::Seconds(60)));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "verify warns";
}

}  // namespace
}  // namespace switchboard::testing
