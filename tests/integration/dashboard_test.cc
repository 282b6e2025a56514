// The dashboard in a real browser: Debian's chromium, headless, driven through the
// DevTools protocol against a control plane with two agents. One page stays open: it shows
// every pool and endpoint, a weight change (a drain by sbctl) shows in that open page
// within 3 s, and it logs no console errors; a screenshot of the live fleet is saved as a
// test artifact (SWITCHBOARD_ARTIFACT_DIR, default the test's temp dir).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/integration/devtools.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

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

  std::filesystem::path dir_;
  std::string addr_, url_;
  int metrics_port_ = 0;
  std::unique_ptr<Subprocess> cp_;
  std::vector<std::unique_ptr<Subprocess>> servers_, agents_;
  std::vector<std::string> addresses_;
};

TEST_F(DashboardTest, OpenPageShowsTheFleetAndAWeightChangeWithinThreeSeconds) {
  auto browser = DevToolsBrowser::Launch(kChromium, (dir_ / "chromium-profile").string(),
                                         (dir_ / "chromium.log").string(), Scaled(absl::Seconds(30)));
  ASSERT_TRUE(browser.ok()) << browser.status() << " (see " << (dir_ / "chromium.log") << ")";
  DevToolsBrowser& page = **browser;
  ASSERT_TRUE(page.Navigate(url_, Scaled(absl::Seconds(20))).ok());
  const absl::Duration call = Scaled(absl::Seconds(10));
  auto eval = [&](const std::string& js) {
    absl::StatusOr<nlohmann::json> v = page.Evaluate(js, call);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : nlohmann::json();
  };
  auto weight_of = [&](const std::string& address) {
    return eval(absl::StrCat("(() => { const c = document.querySelector('tr[data-endpoint=\"", address,
                             "\"] td.weight'); return c ? c.textContent : null; })()"));
  };

  // The fleet as rendered by the page's own polling of /api/fleet, and a chart line drawn
  // from history.
  ASSERT_TRUE(WaitFor(
      [&] {
        return eval("Number(document.body.dataset.polls || 0)").get<int>() >= 1 &&
               eval("document.querySelector('path[d^=\"M\"]') !== null").get<bool>();
      },
      Scaled(absl::Seconds(15)), absl::Milliseconds(50)))
      << eval("document.body.outerHTML");
  EXPECT_EQ(eval("document.querySelectorAll('[data-pool=\"m\"]').length"), 1);
  for (const std::string& a : addresses_) EXPECT_NE(weight_of(a), "0") << a;

  // The screenshot of the live fleet, kept as an artifact.
  const char* artifact_dir = std::getenv("SWITCHBOARD_ARTIFACT_DIR");
  const std::filesystem::path shot =
      std::filesystem::path(artifact_dir != nullptr ? artifact_dir : ::testing::TempDir()) / "dashboard.png";
  std::filesystem::create_directories(shot.parent_path());
  absl::StatusOr<std::string> png = page.Screenshot(call);
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_GT(png->size(), 10000u);
  std::ofstream(shot, std::ios::binary) << *png;
  std::cout << "dashboard screenshot: " << shot << "\n";

  // A weight change on the page that is already open: mark this document, drain n2
  // (its endpoint is excluded: weight 0) and poll the open page's DOM.
  eval("window.switchboardTestMark = 'same document'");
  const int polls_before = eval("Number(document.body.dataset.polls)").get<int>();
  auto [drc, dout] = RunSbctl(addr_, "drain n2");
  ASSERT_EQ(drc, 0) << dout;
  const absl::Time drained = absl::Now();
  ASSERT_TRUE(
      WaitFor([&] { return weight_of(addresses_[1]) == "0"; }, Scaled(absl::Seconds(10)), absl::Milliseconds(50)))
      << eval("document.body.outerHTML");
  const absl::Duration shown_after = absl::Now() - drained;
  EXPECT_LT(shown_after, Scaled(absl::Seconds(3))) << "the drain took " << shown_after << " to show";
  std::cout << "drain shown on the open page after " << shown_after << "\n";
  EXPECT_EQ(eval("window.switchboardTestMark"), "same document");  // Re-rendered in place, not reloaded.
  EXPECT_GT(eval("Number(document.body.dataset.polls)").get<int>(), polls_before);
  EXPECT_NE(weight_of(addresses_[0]), "0");

  // No console errors or warnings, no uncaught exceptions, no failed loads, all along.
  eval("1");  // Reads every event the browser sent before this reply.
  EXPECT_THAT(page.problems(), ::testing::IsEmpty());

  // Read-only: nothing but GET.
  httplib::Client http("127.0.0.1", metrics_port_);
  auto post = http.Post("/api/fleet", "", "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
}

}  // namespace
}  // namespace switchboard::testing
