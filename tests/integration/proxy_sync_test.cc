// switchboard-sync with the real proxies (Debian's haproxy and nginx) over loopback: a
// control plane, three fakellm servers with agents, the sync process, and real HTTP
// requests through the proxy. Skipped, saying why, when a proxy binary is missing.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/prometheus_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "sync/haproxy_sync.h"
#include "sync/plan.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kPool[] = "llama-3-8b";
constexpr char kHaproxy[] = "/usr/sbin/haproxy";
constexpr char kNginx[] = "/usr/sbin/nginx";

// A loopback port free right now (for the proxies, which cannot report a port 0 bind).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Backend {
  Backend(int s, double tps) : slots(s), tokens_per_second(tps) {}
  int slots;
  double tokens_per_second;
  std::unique_ptr<Subprocess> server;
  int port = 0;
  std::unique_ptr<Subprocess> agent;
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
};

class ProxySyncTest : public ::testing::Test {
 protected:
  void StartFleet() {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("proxy_sync_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    cp_ = Subprocess::Start("switchboard-controlplane", {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                                                         "--db", (dir_ / "history.db").string(), "--insecure"});
    ASSERT_NE(cp_, nullptr);
    auto port = cp_->WaitForPort("grpc listening on port ", absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status();
    cp_addr_ = absl::StrCat("127.0.0.1:", *port);
    auto metrics_port = cp_->WaitForPort("metrics listening on port ", absl::Seconds(20));
    ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
    metrics_port_ = *metrics_port;
    // Different speeds give different weights under the weighted policy (capacity: the
    // relative speed of a slot until the agent has measured one; no completions run here).
    backends_.emplace_back(4, 40);
    backends_.emplace_back(4, 20);
    backends_.emplace_back(4, 10);
    for (size_t i = 0; i < backends_.size(); ++i) {
      Backend& b = backends_[i];
      b.server = Subprocess::Start("switchboard-fakellm",
                                   {"--listen", "127.0.0.1:0", "--model", kPool, "--slots", absl::StrCat(b.slots),
                                    "--tokens-per-second", absl::StrCat(b.tokens_per_second)});
      ASSERT_NE(b.server, nullptr);
      auto p = b.server->WaitForPort("http listening on port ", absl::Seconds(20));
      ASSERT_TRUE(p.ok()) << p.status();
      b.port = *p;
      b.agent = Subprocess::Start(
          "switchboard-agent", {"--controlplane", cp_addr_, "--backend",
                                absl::StrCat("llamacpp=http://", b.address(), ",capacity=", b.tokens_per_second / 10),
                                "--node-id", absl::StrCat("node-", i), "--insecure"});
      ASSERT_NE(b.agent, nullptr);
    }
    subscriber_ = std::make_unique<Subscriber>(cp_addr_, std::vector<std::string>{kPool});
    ASSERT_TRUE(subscriber_->WaitFor(
        kPool,
        [](const v1::Assignment& a) {
          if (a.endpoints_size() != 3) return false;
          for (const auto& ep : a.endpoints()) {
            if (ep.weight() == 0) return false;
          }
          return true;
        },
        absl::Seconds(30)));
  }

  void TearDown() override {
    sync_.reset();
    proxy_.reset();
    subscriber_.reset();
    for (Backend& b : backends_) {
      b.agent.reset();
      b.server.reset();
    }
    cp_.reset();
  }

  // A sample of switchboard-sync's /metrics (-1 when unreadable).
  double SyncMetric(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
    httplib::Client http("127.0.0.1", sync_metrics_port_);
    auto res = http.Get("/metrics");
    if (!res || res->status != 200) return -1;
    auto scrape = PromScrape::Parse(res->body);
    if (!scrape.ok()) return -1;
    return scrape->Value(name, labels).value_or(-1);
  }

  // The control plane's count of subscriber ACKs or NACKs ("ack", "nack").
  double Replies(const std::string& type) {
    httplib::Client http("127.0.0.1", metrics_port_);
    auto res = http.Get("/metrics");
    if (!res || res->status != 200) return -1;
    auto scrape = PromScrape::Parse(res->body);
    if (!scrape.ok()) return -1;
    return scrape->Value("switchboard_subscriber_replies_total", {{"type", type}}).value_or(0);
  }

  v1::Assignment Current() {
    v1::Assignment a;
    subscriber_->WaitFor(
        kPool, [](const v1::Assignment&) { return true; }, absl::Seconds(5), &a);
    return a;
  }

  // Sends `n` GET /v1/models through the proxy, each on a new connection; returns how
  // many each upstream address answered (from the header the proxy adds). Failed
  // requests count under "error".
  std::map<std::string, int> Send(int n, const std::string& header) {
    std::map<std::string, int> count;
    for (int i = 0; i < n; ++i) {
      httplib::Client client("127.0.0.1", proxy_port_);
      client.set_connection_timeout(std::chrono::seconds(5));
      auto res = client.Get("/v1/models");
      if (!res || res->status != 200) {
        ++count["error"];
        continue;
      }
      ++count[res->get_header_value(header)];
    }
    return count;
  }

  // Whether any request was answered by `address` (nginx lists every upstream it tried).
  static bool Reached(const std::map<std::string, int>& count, const std::string& address) {
    for (const auto& [key, n] : count) {
      if (absl::StrContains(key, address)) return true;
    }
    return false;
  }

  // The request split matches the weights within 15% (relative) for every endpoint with
  // a weight; endpoints without one get nothing.
  void ExpectSplitFollows(const std::map<std::string, int>& count, const std::map<std::string, int>& weights, int n) {
    double total = 0;
    for (const auto& [addr, w] : weights) total += w;
    ASSERT_GT(total, 0);
    for (const auto& [addr, w] : weights) {
      const double want = n * w / total;
      const int got = count.count(addr) > 0 ? count.at(addr) : 0;
      EXPECT_NEAR(got, want, 0.15 * want) << addr << " weight " << w << " of " << total;
    }
    EXPECT_EQ(count.count("error"), 0u) << count.at("error") << " requests failed";
  }

  std::filesystem::path dir_;
  std::unique_ptr<Subprocess> cp_;
  std::string cp_addr_;
  int metrics_port_ = 0;
  std::vector<Backend> backends_;
  std::unique_ptr<Subscriber> subscriber_;
  std::unique_ptr<Subprocess> proxy_;
  int proxy_port_ = 0;
  std::unique_ptr<Subprocess> sync_;
  int sync_metrics_port_ = 0;
};

// ------------------------------------------------------------------------- HAProxy

class HaproxySyncTest : public ProxySyncTest {
 protected:
  void SetUp() override {
    if (access(kHaproxy, X_OK) != 0) {
      GTEST_SKIP() << kHaproxy << " is missing: install Debian's haproxy (scripts/install-deps.sh does)";
    }
    StartFleet();
    if (HasFatalFailure()) return;
    socket_ = (dir_ / "admin.sock").string();
    proxy_port_ = FreePort();
    ASSERT_GT(proxy_port_, 0);
    std::ofstream(dir_ / "haproxy.cfg") << "global\n"
                                        << "  stats socket " << socket_ << " mode 600 level admin\n"
                                        << "defaults\n"
                                        << "  mode http\n"
                                        << "  timeout connect 2s\n"
                                        << "  timeout client 30s\n"
                                        << "  timeout server 30s\n"
                                        << "frontend llm\n"
                                        << "  bind 127.0.0.1:" << proxy_port_ << "\n"
                                        << "  default_backend llama\n"
                                        << "backend llama\n"
                                        << "  balance roundrobin\n"
                                        << "  http-response set-header X-Server %si:%sp\n"
                                        << "  server-template slot 1-4 127.0.0.1:1 disabled\n"
                                        << "backend llama_dynamic\n"
                                        << "  balance roundrobin\n";
    StartHaproxy();
  }

  void StartHaproxy() {
    proxy_ = Subprocess::Start(kHaproxy, {"-f", (dir_ / "haproxy.cfg").string(), "-db"});
    ASSERT_NE(proxy_, nullptr);
    ASSERT_TRUE(
        WaitFor([&] { return sync::HaproxyCommand(socket_, "show info", absl::Seconds(1)).ok(); }, absl::Seconds(10)))
        << "HAProxy's socket never answered";
  }

  std::vector<sync::ProxyServer> Servers(const std::string& backend) {
    auto text = sync::HaproxyCommand(socket_, "show servers state " + backend, absl::Seconds(2));
    if (!text.ok()) return {};
    auto servers = sync::ParseServersState(*text, backend);
    return servers.ok() ? *servers : std::vector<sync::ProxyServer>();
  }

  // `show servers state` holds exactly the assignment: every endpoint with its doubled
  // weight and its state; every other server in maintenance.
  bool Matches(const v1::Assignment& a, const std::string& backend) {
    std::vector<sync::ProxyServer> servers = Servers(backend);
    int in_use = 0;
    for (const sync::ProxyServer& s : servers) {
      if (s.state == sync::AdminState::kMaint && s.port == 1) continue;  // A free slot.
      ++in_use;
    }
    if (in_use != a.endpoints_size()) return false;
    for (const auto& ep : a.endpoints()) {
      const sync::ProxyServer* found = nullptr;
      for (const sync::ProxyServer& s : servers) {
        if (absl::StrCat(s.host, ":", s.port) == ep.address()) found = &s;
      }
      if (found == nullptr) return false;
      const sync::AdminState want = ep.state() == v1::ENDPOINT_STATE_DRAINING ? sync::AdminState::kDrain
                                    : ep.weight() == 0                        ? sync::AdminState::kMaint
                                                                              : sync::AdminState::kReady;
      if (found->state != want) return false;
      if (want == sync::AdminState::kReady && found->weight != sync::HaproxyWeight(ep.weight())) return false;
    }
    return true;
  }

  bool MatchesCurrent(const std::string& backend) { return Matches(Current(), backend); }

  std::map<std::string, int> ReadyWeights(const std::string& backend) {
    std::map<std::string, int> w;
    for (const sync::ProxyServer& s : Servers(backend)) {
      if (s.state == sync::AdminState::kReady) w[absl::StrCat(s.host, ":", s.port)] = s.weight;
    }
    return w;
  }

  void StartSync(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"--controlplane", cp_addr_,  "--insecure", "--resync-interval",
                                     "300ms",          "haproxy", "--socket",   socket_,
                                     "--pool",         kPool};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.begin(), {"--metrics-listen", "127.0.0.1:0"});
    sync_ = Subprocess::Start("switchboard-sync", args);
    ASSERT_NE(sync_, nullptr);
    auto port = sync_->WaitForPort("metrics listening on port ", absl::Seconds(10));
    ASSERT_TRUE(port.ok()) << port.status();
    sync_metrics_port_ = *port;
  }

  std::string socket_;
};

TEST_F(HaproxySyncTest, TemplateSlotsFollowWeightsDrainsCircuitsAndRestarts) {
  StartSync({"--backend", "llama", "--mode", "template"});
  ASSERT_TRUE(WaitFor([&] { return MatchesCurrent("llama"); }, absl::Seconds(10))) << "HAProxy never matched the pool";

  // The split follows the weights HAProxy holds (the control plane's, doubled).
  const std::map<std::string, int> weights = ReadyWeights("llama");
  ASSERT_EQ(weights.size(), 3u);
  std::set<int> distinct;
  for (const auto& [addr, w] : weights) distinct.insert(w);
  ASSERT_GT(distinct.size(), 1u) << "equal weights would not show that the split follows them";
  ExpectSplitFollows(Send(1000, "X-Server"), weights, 1000);
  EXPECT_EQ(ReadyWeights("llama"), weights) << "weights moved during the run";

  // Drained: out of rotation within 3 s, and no new request reaches it.
  const std::string drained = backends_[1].address();
  auto [code, out] = RunSbctl(cp_addr_, "drain node-1");
  ASSERT_EQ(code, 0) << out;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& s : Servers("llama")) {
          if (absl::StrCat(s.host, ":", s.port) == drained) return s.state == sync::AdminState::kDrain;
        }
        return false;
      },
      absl::Seconds(3)));
  std::map<std::string, int> after = Send(200, "X-Server");
  EXPECT_FALSE(Reached(after, drained));
  EXPECT_EQ(after.count("error"), 0u);

  // A server that stops: once the control plane excludes it, HAProxy has it in
  // maintenance within 3 s and sends it nothing.
  const std::string stopped = backends_[2].address();
  backends_[2].server.reset();
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool, [&](const v1::Assignment& a) { return WeightOf(a, stopped) == 0; }, absl::Seconds(30)));
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& s : Servers("llama")) {
          if (absl::StrCat(s.host, ":", s.port) == stopped) return s.state == sync::AdminState::kMaint;
        }
        return false;
      },
      absl::Seconds(3)));
  after = Send(100, "X-Server");
  EXPECT_FALSE(Reached(after, stopped));
  EXPECT_EQ(after[backends_[0].address()], 100);

  // HAProxy killed and started again: its slots are back to the configuration, and the
  // sync re-applies the whole state.
  proxy_->Signal(SIGKILL);
  proxy_->Wait();
  std::filesystem::remove(socket_);
  StartHaproxy();
  ASSERT_TRUE(WaitFor([&] { return MatchesCurrent("llama"); }, absl::Seconds(10)))
      << "the state was not re-applied after HAProxy restarted";
  after = Send(50, "X-Server");
  EXPECT_EQ(after[backends_[0].address()], 50);
}

TEST_F(HaproxySyncTest, DynamicServersAddedAndRemovedWithOnceAndDryRun) {
  const std::vector<std::string> dry = {
      "--controlplane", cp_addr_,   "--insecure", "--once",    "--timeout",     "20s",    "--dry-run",
      "haproxy",        "--socket", socket_,      "--backend", "llama_dynamic", "--pool", kPool};
  auto [dry_code, dry_out] = RunToExit("switchboard-sync", dry, absl::Seconds(30));
  EXPECT_EQ(dry_code, 0) << dry_out;
  EXPECT_THAT(dry_out, HasSubstr(absl::StrCat("would run: add server llama_dynamic/sb-127.0.0.1_", backends_[0].port)));
  EXPECT_TRUE(Servers("llama_dynamic").empty()) << "--dry-run changed HAProxy";

  std::vector<std::string> once = dry;
  once.erase(std::find(once.begin(), once.end(), "--dry-run"));
  for (const char* a : {"--check", "--server-options", "inter 500ms"}) once.push_back(a);
  auto [code, out] = RunToExit("switchboard-sync", once, absl::Seconds(30));
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(MatchesCurrent("llama_dynamic")) << out;

  // Running: an endpoint that leaves the pool is deleted from the backend.
  StartSync({"--backend", "llama_dynamic"});
  const std::string leaving = backends_[2].address();
  backends_[2].agent->Signal(SIGTERM);  // A clean exit: the endpoint leaves the pool.
  backends_[2].agent->Wait();
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool, [&](const v1::Assignment& a) { return WeightOf(a, leaving) < 0; }, absl::Seconds(30)));
  ASSERT_TRUE(WaitFor([&] { return MatchesCurrent("llama_dynamic"); }, absl::Seconds(5)));
  for (const auto& s : Servers("llama_dynamic")) EXPECT_NE(absl::StrCat(s.host, ":", s.port), leaving);

  // The control plane restarts (same address): the sync reconnects and follows again.
  // Stopped cleanly, so its history holds the departure above: killed within
  // milliseconds of it, the restarted one could serve the assignment before it (stale).
  cp_->Signal(SIGTERM);
  ASSERT_EQ(cp_->Wait(), 0);
  cp_ = Subprocess::Start("switchboard-controlplane", {"--listen", cp_addr_, "--metrics-listen", "127.0.0.1:0", "--db",
                                                       (dir_ / "history.db").string(), "--insecure"});
  ASSERT_NE(cp_, nullptr);
  ASSERT_TRUE(cp_->WaitForPort("grpc listening on port ", absl::Seconds(20)).ok());
  // It keeps the endpoints the new control plane does not know yet (no server dropped:
  // "removed 1" below counts only the endpoint that left).
  ASSERT_TRUE(sync_->WaitForLine("reconnected: ", absl::Seconds(20)).ok());
  ASSERT_TRUE(WaitFor([&] { return RunSbctl(cp_addr_, "drain node-0").first == 0; }, absl::Seconds(20)));
  const std::string drained = backends_[0].address();
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& s : Servers("llama_dynamic")) {
          if (absl::StrCat(s.host, ":", s.port) == drained) return s.state == sync::AdminState::kDrain;
        }
        return false;
      },
      absl::Seconds(10)))
      << "the sync did not follow the restarted control plane";

  // Its metrics count what it changed: the one endpoint that left, the two streams.
  EXPECT_EQ(SyncMetric("switchboard_sync_changes_total", {{"kind", "removed"}}), 1);
  EXPECT_GE(SyncMetric("switchboard_sync_changes_total", {{"kind", "state"}}), 2);  // Maint, then drain.
  EXPECT_EQ(SyncMetric("switchboard_sync_streams_total"), 2);
  EXPECT_GE(SyncMetric("switchboard_sync_assignments_total", {{"result", "applied"}}), 2);
  EXPECT_EQ(SyncMetric("switchboard_sync_failures_total"), 0);

  // Stopped, it says what it changed in all.
  sync_->Signal(SIGTERM);
  auto totals = sync_->WaitForLine("switchboard-sync: totals:", absl::Seconds(10));
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_THAT(*totals, HasSubstr("removed 1"));
  EXPECT_EQ(sync_->Wait(), 0);

  // A pool nobody serves: --once gives up and says so.
  std::vector<std::string> missing = once;
  *std::find(missing.begin(), missing.end(), std::string(kPool)) = "no-such-pool";
  *std::find(missing.begin(), missing.end(), std::string("20s")) = "1s";
  auto [missing_code, missing_out] = RunToExit("switchboard-sync", missing, absl::Seconds(30));
  EXPECT_EQ(missing_code, 1) << missing_out;
  EXPECT_THAT(missing_out, HasSubstr("no assignment for every pool"));
}

// ------------------------------------------------------------------------- nginx

class NginxSyncTest : public ProxySyncTest {
 protected:
  void SetUp() override {
    if (access(kNginx, X_OK) != 0) {
      GTEST_SKIP() << kNginx << " is missing: install Debian's nginx-light (scripts/install-deps.sh does)";
    }
    StartFleet();
    if (HasFatalFailure()) return;
    proxy_port_ = FreePort();
    ASSERT_GT(proxy_port_, 0);
    std::filesystem::create_directories(dir_ / "tmp");
    conf_ = (dir_ / "nginx.conf").string();
    upstream_ = (dir_ / "switchboard.conf").string();
    const std::string d = dir_.string();
    std::ofstream(conf_) << "worker_processes 1;\n"
                         << "pid " << d << "/nginx.pid;\n"
                         << "error_log " << d << "/error.log notice;\n"
                         << "events { worker_connections 512; }\n"
                         << "http {\n"
                         << "  access_log off;\n"
                         << "  client_body_temp_path " << d << "/tmp;\n"
                         << "  proxy_temp_path " << d << "/tmp;\n"
                         << "  fastcgi_temp_path " << d << "/tmp;\n"
                         << "  uwsgi_temp_path " << d << "/tmp;\n"
                         << "  scgi_temp_path " << d << "/tmp;\n"
                         << "  include " << upstream_ << ";\n"
                         << "  server {\n"
                         << "    listen 127.0.0.1:" << proxy_port_ << ";\n"
                         << "    location / {\n"
                         << "      proxy_pass http://switchboard_" << kPool << ";\n"
                         << "      add_header X-Upstream $upstream_addr always;\n"
                         << "    }\n"
                         << "  }\n"
                         << "}\n";
    nginx_ = absl::StrCat(kNginx, " -p ", d, " -c ", conf_, " -e ", d, "/error.log");
  }

  std::vector<std::string> SyncArgs(const std::string& reload) {
    return {"--controlplane", cp_addr_, "--insecure", "--resync-interval", "300ms",           "nginx",        "--out",
            upstream_,        "--pool", kPool,        "--check-cmd",       nginx_ + " -q -t", "--reload-cmd", reload};
  }

  int Reloads() {
    const std::string log = ReadFile(dir_ / "error.log");
    int n = 0;
    for (absl::string_view line : absl::StrSplit(log, '\n')) {
      if (absl::StrContains(line, "SIGHUP")) ++n;
    }
    return n;
  }

  std::string conf_, upstream_, nginx_;
};

TEST_F(NginxSyncTest, UpstreamFileFollowsThePoolWithOneReloadPerChange) {
  // --once writes the first file (nginx is not running yet: nothing to reload).
  std::vector<std::string> once = SyncArgs("true");
  once.insert(once.begin(), "--once");
  auto [code, out] = RunToExit("switchboard-sync", once, absl::Seconds(30));
  ASSERT_EQ(code, 0) << out;
  const std::string first = ReadFile(upstream_);
  for (const Backend& b : backends_) EXPECT_THAT(first, HasSubstr(absl::StrCat("server ", b.address(), " weight=")));

  proxy_ = Subprocess::Start(
      kNginx, {"-p", dir_.string(), "-c", conf_, "-e", (dir_ / "error.log").string(), "-g", "daemon off;"});
  ASSERT_NE(proxy_, nullptr);
  ASSERT_TRUE(WaitFor(
      [&] {
        httplib::Client c("127.0.0.1", proxy_port_);
        auto r = c.Get("/v1/models");
        return r && r->status == 200;
      },
      absl::Seconds(10)));

  // --dry-run prints the file and changes nothing.
  std::vector<std::string> dry = SyncArgs("false");
  dry.insert(dry.begin(), {"--once", "--dry-run"});
  std::filesystem::remove(upstream_);
  auto [dry_code, dry_out] = RunToExit("switchboard-sync", dry, absl::Seconds(30));
  EXPECT_EQ(dry_code, 0) << dry_out;
  EXPECT_THAT(dry_out, HasSubstr(absl::StrCat("upstream switchboard_", kPool, " {")));
  EXPECT_FALSE(std::filesystem::exists(upstream_));
  std::ofstream(upstream_) << first;

  const double acks_before = Replies("ack");
  std::vector<std::string> args = SyncArgs(nginx_ + " -s reload");
  args.insert(args.begin(), {"--metrics-listen", "127.0.0.1:0"});
  sync_ = Subprocess::Start("switchboard-sync", args);
  ASSERT_NE(sync_, nullptr);
  auto metrics_port = sync_->WaitForPort("metrics listening on port ", absl::Seconds(10));
  ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
  sync_metrics_port_ = *metrics_port;
  ASSERT_TRUE(sync_->WaitForLine("subscribed to", absl::Seconds(10)).ok());
  EXPECT_TRUE(WaitFor([&] { return Replies("ack") > acks_before; }, absl::Seconds(5))) << "no ACK";

  // Traffic follows the weights in the file.
  v1::Assignment a = Current();
  std::map<std::string, int> weights;
  for (const auto& ep : a.endpoints()) weights[ep.address()] = static_cast<int>(ep.weight());
  ASSERT_EQ(ReadFile(upstream_), first) << "weights moved since --once";
  std::set<int> distinct;
  for (const auto& [addr, w] : weights) distinct.insert(w);
  ASSERT_GT(distinct.size(), 1u) << "equal weights would not show that the split follows them";
  ExpectSplitFollows(Send(1000, "X-Upstream"), weights, 1000);
  EXPECT_EQ(Reloads(), 0) << "a reload although nothing changed";

  // A stopped server: `down` in the file after one reload, and no request reaches it.
  const std::string stopped = backends_[2].address();
  backends_[2].server.reset();
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool, [&](const v1::Assignment& x) { return WeightOf(x, stopped) == 0; }, absl::Seconds(30)));
  ASSERT_TRUE(
      WaitFor([&] { return absl::StrContains(ReadFile(upstream_), absl::StrCat("server ", stopped, " down;")); },
              absl::Seconds(3)));
  auto reloaded = sync_->WaitForLine("nginx: wrote", absl::Seconds(5));
  ASSERT_TRUE(reloaded.ok());
  EXPECT_THAT(*reloaded, HasSubstr("(1 reloads so far)"));
  ASSERT_TRUE(WaitFor([&] { return Reloads() == 1; }, absl::Seconds(5))) << Reloads() << " reloads";
  // Old workers finish; requests are served by the new ones.
  std::map<std::string, int> after;
  ASSERT_TRUE(WaitFor(
      [&] {
        after = Send(100, "X-Upstream");
        return !Reached(after, stopped) && after.count("error") == 0;
      },
      absl::Seconds(5)))
      << "requests still reach the stopped server";
  EXPECT_EQ(after[backends_[0].address()] + after[backends_[1].address()], 100);

  // Drained: the next change, one more reload.
  auto [dcode, dout] = RunSbctl(cp_addr_, "drain node-1");
  ASSERT_EQ(dcode, 0) << dout;
  const std::string drained = backends_[1].address();
  ASSERT_TRUE(
      WaitFor([&] { return absl::StrContains(ReadFile(upstream_), absl::StrCat("server ", drained, " down;")); },
              absl::Seconds(3)));
  ASSERT_TRUE(WaitFor([&] { return Reloads() == 2; }, absl::Seconds(5))) << Reloads() << " reloads";
  ASSERT_TRUE(WaitFor(
      [&] {
        after = Send(50, "X-Upstream");
        return after[backends_[0].address()] == 50;
      },
      absl::Seconds(5)));

  // A configuration nginx refuses is not installed: the old file stays and the log says why.
  const double nacks_before = Replies("nack");
  std::ofstream(conf_, std::ios::app) << "this_is_not_a_directive;\n";
  auto [ucode, uout] = RunSbctl(cp_addr_, "undrain node-1");
  ASSERT_EQ(ucode, 0) << uout;
  auto failed = sync_->WaitForLine("nginx: check failed", absl::Seconds(10));
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_THAT(*failed, HasSubstr("this_is_not_a_directive"));
  // The candidate sits at the real path only while `nginx -t` reads it; a later version
  // (weights move with load) is checked, and refused, the same way, so wait for the old file.
  EXPECT_TRUE(
      WaitFor([&] { return absl::StrContains(ReadFile(upstream_), absl::StrCat("server ", drained, " down;")); },
              absl::Seconds(5)))
      << ReadFile(upstream_);
  EXPECT_EQ(Reloads(), 2);
  EXPECT_TRUE(WaitFor([&] { return Replies("nack") > nacks_before; }, absl::Seconds(5)))
      << "the refused assignment was not NACKed";
  EXPECT_EQ(SyncMetric("switchboard_sync_changes_total", {{"kind", "reload"}}), 2);
  EXPECT_GE(SyncMetric("switchboard_sync_failures_total"), 1);
  EXPECT_GE(SyncMetric("switchboard_sync_assignments_total", {{"result", "refused"}}), 1);
}

TEST(SyncUsageTest, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"nginx", "--pool", "a"},
           {"nginx", "--out", "/tmp/x", "--pool", "a", "--pool", "b", "--upstream", "u"},
           {"--timeout", "soon", "nginx", "--out", "/tmp/x", "--pool", "a"},
           {"haproxy", "--socket", "/s", "--backend", "b", "--pool", "p", "--mode", "template", "--check"},
           {"haproxy", "--socket", "/s", "--backend", "b", "--pool", "p", "--mode", "other"},
           {}}) {
    auto [code, out] = RunToExit("switchboard-sync", args, absl::Seconds(10));
    EXPECT_EQ(code, 2) << absl::StrJoin(args, " ") << ": " << out;
  }
  auto [code, out] = RunToExit("switchboard-sync", {"--help"}, absl::Seconds(10));
  EXPECT_EQ(code, 0);
  EXPECT_THAT(out, HasSubstr("haproxy"));
}

// ------------------------------------------------------------------------- docs

// The fenced block that follows `after` in docs/operations.md and opens with `fence`.
std::string DocsBlock(const std::string& after, const std::string& fence) {
  const std::string doc = ReadFile(std::filesystem::path(SWITCHBOARD_DOCS_DIR) / "operations.md");
  size_t at = doc.find(after);
  if (at == std::string::npos) return "";
  at = doc.find("\n" + fence + "\n", at);
  if (at == std::string::npos) return "";
  at += fence.size() + 2;
  const size_t end = doc.find("\n```\n", at);
  return end == std::string::npos ? "" : doc.substr(at, end - at + 1);
}

TEST(DocsSnippetsTest, HaproxyConfigurationIsValid) {
  if (access(kHaproxy, X_OK) != 0) GTEST_SKIP() << kHaproxy << " is missing: install Debian's haproxy";
  std::string cfg = DocsBlock("### Behind HAProxy", "```haproxy");
  ASSERT_THAT(cfg, HasSubstr("backend llama_slots"));
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "docs_haproxy";
  std::filesystem::create_directories(dir);
  const size_t sock = cfg.find("/run/haproxy/admin.sock");
  ASSERT_NE(sock, std::string::npos);
  cfg.replace(sock, strlen("/run/haproxy/admin.sock"), (dir / "admin.sock").string());
  std::ofstream(dir / "haproxy.cfg") << cfg;
  auto [code, out] = RunToExit(kHaproxy, {"-c", "-f", (dir / "haproxy.cfg").string()}, absl::Seconds(10));
  EXPECT_EQ(code, 0) << out << "\n" << cfg;
}

TEST(DocsSnippetsTest, NginxUpstreamIsWhatSyncWritesAndTheServerIsValid) {
  const std::string upstream = DocsBlock("The file it writes for a pool", "```");
  ASSERT_THAT(upstream, HasSubstr("upstream switchboard_llama-3-8b {"));
  // The documented block is what switchboard-sync renders for that pool.
  v1::Assignment a;
  a.set_pool("llama-3-8b");
  a.set_lb_policy(v1::LB_POLICY_WEIGHTED);
  for (auto [addr, w, circuit] :
       std::vector<std::tuple<const char*, int, v1::CircuitState>>{{"10.0.0.7:8080", 96, v1::CIRCUIT_STATE_CLOSED},
                                                                   {"10.0.0.8:8080", 24, v1::CIRCUIT_STATE_CLOSED},
                                                                   {"10.0.0.9:8080", 0, v1::CIRCUIT_STATE_OPEN}}) {
    auto* ep = a.add_endpoints();
    ep->set_address(addr);
    ep->set_weight(static_cast<uint32_t>(w));
    ep->set_state(v1::ENDPOINT_STATE_READY);
    ep->set_circuit(circuit);
  }
  sync::NginxPool pool;
  pool.assignment = a;
  pool.upstream = sync::NginxUpstreamName("llama-3-8b");
  EXPECT_THAT(sync::RenderNginx({pool}, {}), HasSubstr(upstream));

  if (access(kNginx, X_OK) != 0) GTEST_SKIP() << kNginx << " is missing: install Debian's nginx-light";
  const std::string server = DocsBlock("and a server that uses it", "```nginx");
  ASSERT_THAT(server, HasSubstr("proxy_pass http://switchboard_llama-3-8b;"));
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "docs_nginx";
  std::filesystem::create_directories(dir);
  const std::string d = dir.string();
  std::ofstream(dir / "nginx.conf") << "pid " << d << "/nginx.pid;\nerror_log " << d << "/error.log;\n"
                                    << "events {}\nhttp {\n  client_body_temp_path " << d << ";\n  proxy_temp_path "
                                    << d << ";\n  fastcgi_temp_path " << d << ";\n  uwsgi_temp_path " << d
                                    << ";\n  scgi_temp_path " << d << ";\n"
                                    << upstream << server << "}\n";
  auto [code, out] = RunToExit(kNginx, {"-t", "-p", d, "-c", (dir / "nginx.conf").string(), "-e", d + "/error.log"},
                               absl::Seconds(10));
  EXPECT_EQ(code, 0) << out;
}

}  // namespace
}  // namespace switchboard::testing
