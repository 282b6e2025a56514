// Every server binary's /metrics passes `promtool check metrics` (Prometheus' own
// linter: naming, units, _total counters, HELP and TYPE), on a live fleet so that the
// per-pool and per-endpoint families are present; and the desired-replicas gauge a
// KEDA Prometheus trigger or an HPA reads equals what sbctl shows; and every metric the
// Grafana dashboard (deploy/grafana) and the alerting rules (deploy/prometheus) query is
// one these binaries export.
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/integration/harness.h"
#include "yaml-cpp/yaml.h"

namespace switchboard::testing {
namespace {

using ::testing::HasSubstr;

std::string Promtool() {
  for (const char* p : {"/usr/bin/promtool", "/usr/local/bin/promtool"}) {
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

std::string Scrape(int port) {
  httplib::Client client("127.0.0.1", port);
  auto res = client.Get("/metrics");
  return res && res->status == 200 ? res->body : "";
}

// The metric names in a PromQL expression (the project's own: switchboard_*).
void AddMetricNames(const std::string& expr, std::set<std::string>* out) {
  static const std::regex name("switchboard_[a-z0-9_]+");
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name); it != std::sregex_iterator(); ++it) {
    out->insert(it->str());
  }
}

void DashboardExprs(const nlohmann::json& j, std::set<std::string>* out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if ((it.key() == "expr" || it.key() == "definition") && it.value().is_string()) {
        AddMetricNames(it.value().get<std::string>(), out);
      } else {
        DashboardExprs(it.value(), out);
      }
    }
  } else if (j.is_array()) {
    for (const auto& v : j) DashboardExprs(v, out);
  }
}

// Families declared on a scrape ("# TYPE name kind"), with a histogram's or summary's series.
void AddExported(const std::string& text, std::set<std::string>* out) {
  static const std::regex type("# TYPE ([a-zA-Z0-9_:]+) ([a-z]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), type); it != std::sregex_iterator(); ++it) {
    const std::string n = (*it)[1].str();
    out->insert(n);
    if ((*it)[2].str() == "histogram" || (*it)[2].str() == "summary") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) out->insert(n + suffix);
    }
  }
}

class MetricsLintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / "metrics_lint";
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  std::filesystem::path dir_;
};

TEST_F(MetricsLintTest, EveryBinaryPassesPromtoolCheckMetrics) {
  const std::string promtool = Promtool();
  if (promtool.empty())
    GTEST_SKIP() << "promtool is missing: install Debian's prometheus (scripts/install-deps.sh does)";

  auto cp = Subprocess::Start("switchboard-controlplane",
                              {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--db",
                               (dir_ / "h.db").string(), "--scale-exec", "true {pool} {replicas}", "--insecure"});
  auto port = cp->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(port.ok()) << port.status();
  auto cp_metrics = cp->WaitForPort("metrics listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(cp_metrics.ok()) << cp_metrics.status();
  const std::string addr = absl::StrCat("127.0.0.1:", *port);
  auto server = Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m", "--slots", "2"});
  auto sp = server->WaitForPort("http listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(sp.ok()) << sp.status();
  auto agent = Subprocess::Start(
      "switchboard-agent",
      {"--controlplane", addr, "--backend", absl::StrCat("llamacpp=http://127.0.0.1:", *sp), "--node-id", "n1",
       "--report-interval", "250ms", "--gpu", "none", "--metrics-listen", "127.0.0.1:0", "--insecure"});
  auto agent_metrics = agent->WaitForPort("metrics listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(agent_metrics.ok()) << agent_metrics.status();
  auto sync = Subprocess::Start(
      "switchboard-sync", {"--controlplane", addr, "--insecure", "--metrics-listen", "127.0.0.1:0", "nginx", "--out",
                           (dir_ / "m.conf").string(), "--pool", "m", "--check-cmd", "true", "--reload-cmd", "true"});
  auto sync_metrics = sync->WaitForPort("metrics listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(sync_metrics.ok()) << sync_metrics.status();
  auto picker = Subprocess::Start("switchboard-picker", {"--controlplane", addr, "--listen", "127.0.0.1:0",
                                                         "--metrics-listen", "127.0.0.1:0", "--insecure"});
  auto picker_metrics = picker->WaitForPort("metrics listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(picker_metrics.ok()) << picker_metrics.status();

  // Wait until the pool's families are there (an endpoint with its weight).
  std::string cp_text;
  ASSERT_TRUE(WaitFor(
      [&] {
        cp_text = Scrape(*cp_metrics);
        // --scale-exec ran at least once (a pool appeared), so its counter moved; the
        // autoscaler decided once, so the usage ratios are there.
        return cp_text.find("switchboard_endpoint_weight{") != std::string::npos &&
               cp_text.find("switchboard_pool_scaling_usage_ratio{") != std::string::npos &&
               std::regex_search(cp_text, std::regex("switchboard_scale_exec_runs_total\\{result=\"ok\"\\} [1-9]"));
      },
      Scaled(absl::Seconds(15))))
      << cp_text;

  // Every server binary.
  const std::vector<std::pair<std::string, int>> targets = {
      {"switchboard-controlplane", *cp_metrics},
      {"switchboard-agent", *agent_metrics},
      {"switchboard-sync", *sync_metrics},
      {"switchboard-picker", *picker_metrics},
  };
  std::set<std::string> exported;
  for (const auto& [name, metrics_port] : targets) {
    SCOPED_TRACE(name);
    const std::string text = Scrape(metrics_port);
    AddExported(text, &exported);
    EXPECT_THAT(text, HasSubstr("# TYPE switchboard_build_info gauge"));
    ASSERT_THAT(text, HasSubstr("# TYPE switchboard_"));
    const std::string file = (dir_ / (name + ".prom")).string();
    std::ofstream(file) << text;
    auto [rc, out] =
        RunToExit("/bin/sh", {"-c", absl::StrCat(promtool, " check metrics < ", file)}, Scaled(absl::Seconds(30)));
    EXPECT_EQ(rc, 0) << out << "\n--- " << file;
  }

  // Every metric the dashboard and the alerts query is exported.
  std::set<std::string> queried;
  const std::filesystem::path deploy = SWITCHBOARD_DEPLOY_DIR;
  for (const auto& e : std::filesystem::directory_iterator(deploy / "grafana")) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    DashboardExprs(nlohmann::json::parse(in), &queried);
  }
  const YAML::Node rules = YAML::LoadFile((deploy / "prometheus" / "switchboard-alerts.yaml").string());
  for (const auto& group : rules["groups"]) {
    for (const auto& rule : group["rules"]) AddMetricNames(rule["expr"].as<std::string>(), &queried);
  }
  EXPECT_GT(queried.size(), 20u);
  for (const std::string& name : queried) EXPECT_EQ(exported.count(name), 1u) << name << " is queried, not exported";

  // The gauge for KEDA's Prometheus scaler and the HPA equals sbctl's desired replicas.
  auto [rc, status] = RunSbctl(addr, "status m");
  ASSERT_EQ(rc, 0) << status;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(status, m, std::regex("desired replicas ([0-9]+)"))) << status;
  EXPECT_THAT(Scrape(*cp_metrics),
              HasSubstr(absl::StrCat("switchboard_pool_desired_replicas{pool=\"m\"} ", m[1].str())));
}

}  // namespace
}  // namespace switchboard::testing
