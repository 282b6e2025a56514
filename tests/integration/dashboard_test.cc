// The dashboard in a real browser: Debian's chromium, headless, against a control plane
// with two agents. The page loads with no console messages, shows every pool and
// endpoint, and a weight change (a drain) shows within 3 s; a screenshot is saved as a
// test artifact (SWITCHBOARD_ARTIFACT_DIR, default the test's temp dir).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kChromium[] = "/usr/bin/chromium";

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kChromium)) GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh)";
    dir_ = std::filesystem::path(::testing::TempDir()) / ("dashboard_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    cp_ = Subprocess::Start("switchboard-controlplane", {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                                                         "--db", (dir_ / "h.db").string(), "--insecure"});
    auto port = cp_->WaitForPort("grpc listening on port ", absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status();
    auto metrics_port = cp_->WaitForPort("metrics listening on port ", absl::Seconds(20));
    ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
    addr_ = absl::StrCat("127.0.0.1:", *port);
    url_ = absl::StrCat("http://127.0.0.1:", *metrics_port, "/ui");
    metrics_port_ = *metrics_port;
    for (int i = 1; i <= 2; ++i) {
      servers_.push_back(Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m", "--slots",
                                                                   "4", "--tokens-per-second", "50"}));
      auto sp = servers_.back()->WaitForPort("http listening on port ", absl::Seconds(20));
      ASSERT_TRUE(sp.ok()) << sp.status();
      addresses_.push_back(absl::StrCat("127.0.0.1:", *sp));
      agents_.push_back(Subprocess::Start(
          "switchboard-agent",
          {"--controlplane", addr_, "--backend", absl::StrCat("llamacpp=http://", addresses_.back()), "--node-id",
           absl::StrCat("n", i), "--report-interval", "250ms", "--gpu", "none", "--insecure"}));
    }
    Subscriber subscriber(addr_, {"m"});
    ASSERT_TRUE(subscriber.WaitFor(
        "m",
        [](const v1::Assignment& a) {
          return a.endpoints_size() == 2 && a.endpoints(0).weight() > 0 && a.endpoints(1).weight() > 0;
        },
        Scaled(absl::Seconds(15))));
  }
  void TearDown() override {
    agents_.clear();
    servers_.clear();
    cp_.reset();
  }

  // The page's DOM after it ran for `budget` of (virtual) time, with chromium's log.
  std::pair<int, std::string> DumpDom(absl::Duration budget) {
    return RunToExit(kChromium,
                     {"--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                      absl::StrCat("--virtual-time-budget=", absl::ToInt64Milliseconds(budget)), "--dump-dom", url_},
                     Scaled(absl::Seconds(60)));
  }

  std::filesystem::path dir_;
  std::string addr_, url_;
  int metrics_port_ = 0;
  std::unique_ptr<Subprocess> cp_;
  std::vector<std::unique_ptr<Subprocess>> servers_, agents_;
  std::vector<std::string> addresses_;
};

TEST_F(DashboardTest, ShowsTheFleetLiveWithoutConsoleErrors) {
  auto [rc, dom] = DumpDom(absl::Seconds(3));
  ASSERT_EQ(rc, 0) << dom;
  EXPECT_THAT(dom, HasSubstr("data-pool=\"m\""));
  for (const std::string& a : addresses_) EXPECT_THAT(dom, HasSubstr(absl::StrCat("data-endpoint=\"", a, "\"")));
  EXPECT_THAT(dom, HasSubstr("<path d=\"M"));  // A chart line drawn from history.
  // Live: the page re-rendered from /api/fleet once a second of (virtual) time.
  EXPECT_THAT(dom, ::testing::ContainsRegex("data-polls=\"[3-9]\""));
  // Console messages (errors, uncaught exceptions, failed loads) are logged as CONSOLE.
  EXPECT_THAT(dom, Not(HasSubstr(":CONSOLE(")));
  EXPECT_THAT(dom, Not(HasSubstr("Uncaught")));

  // A weight change (draining n2 excludes its endpoint: weight 0) shows within 3 s.
  auto [drc, dout] = RunSbctl(addr_, "drain n2");
  ASSERT_EQ(drc, 0) << dout;
  const absl::Time drained = absl::Now();
  const std::string row = absl::StrCat("data-endpoint=\"", addresses_[1], "\"");
  std::string after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = DumpDom(absl::Seconds(1)).second;
        const size_t at = after.find(row);
        return at != std::string::npos && after.find("<td class=\"num weight\">0</td>", at) < after.find("</tr>", at);
      },
      Scaled(absl::Seconds(10)), absl::Milliseconds(1)))
      << after;
  EXPECT_LT(absl::Now() - drained, Scaled(absl::Seconds(3)) + absl::Seconds(2))  // Chromium's own start-up.
      << "the drain took " << absl::Now() - drained << " to show";

  // The screenshot, kept as an artifact.
  const char* artifact_dir = std::getenv("SWITCHBOARD_ARTIFACT_DIR");
  const std::filesystem::path shot =
      std::filesystem::path(artifact_dir != nullptr ? artifact_dir : ::testing::TempDir()) / "dashboard.png";
  std::filesystem::create_directories(shot.parent_path());
  auto [src, sout] =
      RunToExit(kChromium,
                {"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,900",
                 "--virtual-time-budget=3000", absl::StrCat("--screenshot=", shot.string()), url_},
                Scaled(absl::Seconds(60)));
  ASSERT_EQ(src, 0) << sout;
  EXPECT_GT(std::filesystem::file_size(shot), 10000u);
  std::cout << "dashboard screenshot: " << shot << "\n";

  // Read-only: nothing but GET.
  httplib::Client http("127.0.0.1", metrics_port_);
  auto post = http.Post("/api/fleet", "", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
}

}  // namespace
}  // namespace switchboard::testing
