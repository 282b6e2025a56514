// deploy/prometheus: the alerting rules pass `promtool check rules` and their unit tests
// (`promtool test rules`: each alert fires when it should and stays quiet otherwise).
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

namespace fs = std::filesystem;

std::string Promtool() { return fs::exists("/usr/bin/promtool") ? "/usr/bin/promtool" : ""; }

TEST(PrometheusRulesTest, CheckRules) {
  if (Promtool().empty()) GTEST_SKIP() << "promtool is missing: install Debian's prometheus (install-deps does)";
  const fs::path dir = fs::path(SWITCHBOARD_DEPLOY_DIR) / "prometheus";
  auto [rc, out] =
      RunToExit(Promtool(), {"check", "rules", (dir / "switchboard-alerts.yaml").string()}, Scaled(absl::Seconds(30)));
  EXPECT_EQ(rc, 0) << out;
}

TEST(PrometheusRulesTest, TestRules) {
  if (Promtool().empty()) GTEST_SKIP() << "promtool is missing: install Debian's prometheus (install-deps does)";
  const fs::path dir = fs::path(SWITCHBOARD_DEPLOY_DIR) / "prometheus";
  auto [rc, out] = RunToExit(Promtool(), {"test", "rules", (dir / "switchboard-alerts.test.yaml").string()},
                             Scaled(absl::Seconds(60)));
  EXPECT_EQ(rc, 0) << out;
}

}  // namespace
}  // namespace switchboard::testing
