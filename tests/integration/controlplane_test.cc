// The control plane as an operator drives it: pool configuration from a file and its
// reload on SIGHUP (streams stay up), autoscaling on the queue, manual scaling, and
// explain.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/net.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/integration/harness.h"
#include "tests/interop/agent_client.h"

namespace switchboard::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kConfig[] = R"(
pools:
  m:
    lb_policy: weighted
    autoscaling:
      sync_period: 500ms
      min_replicas: 1
      max_replicas: 8
      metrics:
        - {type: queue_per_replica, target: 2}
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 0
)";

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("cp_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_ = (dir_ / "pools.yaml").string();
    WriteConfig(kConfig);
    cp_ = Subprocess::Start("switchboard-controlplane",
                            {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--db",
                             (dir_ / "h.db").string(), "--config", config_, "--insecure"});
    auto port = cp_->WaitForPort("grpc listening on port ", absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status();
    auto metrics_port = cp_->WaitForPort("metrics listening on port ", absl::Seconds(20));
    ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
    metrics_port_ = *metrics_port;
    addr_ = absl::StrCat("127.0.0.1:", *port);
    server_ = Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m", "--slots", "2",
                                                        "--tokens-per-second", "20"});
    auto sp = server_->WaitForPort("http listening on port ", absl::Seconds(20));
    ASSERT_TRUE(sp.ok()) << sp.status();
    server_port_ = *sp;
    agent_ = Subprocess::Start("switchboard-agent",
                               {"--controlplane", addr_, "--backend", absl::StrCat("llamacpp=http://127.0.0.1:", *sp),
                                "--node-id", "n1", "--report-interval", "250ms", "--gpu", "none", "--insecure"});
    subscriber_ = std::make_unique<Subscriber>(addr_, std::vector<std::string>{"m"});
    ASSERT_TRUE(subscriber_->WaitFor(
        "m", [](const v1::Assignment& a) { return a.endpoints_size() == 1 && a.endpoints(0).weight() > 0; },
        absl::Seconds(15)));
  }
  void TearDown() override {
    subscriber_.reset();
    agent_.reset();
    server_.reset();
    for (auto& t : load_) t.join();
    cp_.reset();
  }
  void WriteConfig(const std::string& text) { std::ofstream(config_) << text; }
  std::pair<int, std::string> Sbctl(const std::string& args) { return RunSbctl(addr_, args); }
  void Send(int n, int max_tokens) { SendChatCompletions(server_port_, n, max_tokens, &load_); }

  std::filesystem::path dir_;
  std::string config_, addr_;
  std::unique_ptr<Subprocess> cp_, server_, agent_;
  std::unique_ptr<Subscriber> subscriber_;
  int server_port_ = 0;
  int metrics_port_ = 0;
  std::vector<std::thread> load_;
};

TEST_F(ControlPlaneTest, QueueDrivesDesiredReplicasAndManualScaleWins) {
  v1::Assignment a;
  ASSERT_TRUE(subscriber_->WaitFor(
      "m", [](const v1::Assignment& x) { return x.desired_replicas() == 1; }, absl::Seconds(5), &a))
      << a.DebugString();
  Send(10, 400);  // 2 busy, 8 queued: ceil(8 / 2) = 4 replicas wanted.
  ASSERT_TRUE(subscriber_->WaitFor(
      "m", [](const v1::Assignment& x) { return x.desired_replicas() == 4; }, absl::Seconds(20), &a))
      << a.DebugString();
  // A report with 7 queued (a request still arriving) already asks for ceil(3.5) = 4
  // replicas, and the assignment is not republished for the queue alone; the replica
  // explanation is the last sync's (every 500 ms): wait for the one that saw all 8.
  std::string out;
  EXPECT_TRUE(WaitFor(
      [&] {
        out = Sbctl("explain m").second;
        return out.find("queue_per_replica 8 / target 2 (ratio 4.00) -> 4") != std::string::npos;
      },
      absl::Seconds(5), absl::Milliseconds(100)))
      << out;
  EXPECT_THAT(out, HasSubstr("weight "));

  auto [rc2, out2] = Sbctl("scale m 7 --for 10m --reason launch");
  EXPECT_EQ(rc2, 0) << out2;
  ASSERT_TRUE(subscriber_->WaitFor(
      "m", [](const v1::Assignment& x) { return x.desired_replicas() == 7; }, absl::Seconds(5), &a));
  EXPECT_THAT(Sbctl("explain m").second, HasSubstr("manual override to 7"));
  auto [rc3, out3] = Sbctl("scale m --clear");
  EXPECT_EQ(rc3, 0) << out3;
  ASSERT_TRUE(subscriber_->WaitFor(
      "m", [](const v1::Assignment& x) { return x.desired_replicas() != 7; }, absl::Seconds(5), &a));
  EXPECT_EQ(Sbctl("scale nope 3").first, 1);
  // The history tells the story, oldest first.
  auto [rc4, events] = Sbctl("events m");
  EXPECT_EQ(rc4, 0) << events;
  EXPECT_THAT(events, HasSubstr("endpoint_joined pool=m node=n1"));
  EXPECT_THAT(events, HasSubstr("scaling_decision pool=m"));
  EXPECT_THAT(events, HasSubstr("manual_replicas pool=m  7 replicas for 10m: launch"));
  EXPECT_LT(events.find("endpoint_joined"), events.find("manual_replicas"));
  server_.reset();  // Ends the long requests.
}

TEST_F(ControlPlaneTest, SighupReloadsWithoutDroppingStreams) {
  const int before = subscriber_->received();
  WriteConfig("pools:\n  m:\n    lb_policy: round_robin\n");
  cp_->Signal(SIGHUP);
  v1::Assignment a;
  ASSERT_TRUE(subscriber_->WaitFor(
      "m", [](const v1::Assignment& x) { return x.lb_policy() == v1::LB_POLICY_ROUND_ROBIN; }, absl::Seconds(5), &a))
      << a.DebugString();
  EXPECT_GT(subscriber_->received(), before) << "the same stream got the new version";
  // A broken file changes nothing, and shows in the reload counter (waited for, so the
  // next file is not written before this one is read).
  httplib::Client metrics("127.0.0.1", metrics_port_);
  auto metric = [&](const std::string& line) {
    auto res = metrics.Get("/metrics");
    return res && res->body.find(line) != std::string::npos;
  };
  WriteConfig("pools:\n  m:\n    lb_policy: bogus\n");
  cp_->Signal(SIGHUP);
  EXPECT_TRUE(
      WaitFor([&] { return metric("switchboard_config_reloads_total{result=\"error\"} 1"); }, absl::Seconds(5)));
  // So does a file whose pools are good but whose rate_limits block is broken: the pool
  // change is not applied either, and the reload counts once, as an error.
  WriteConfig(
      "pools:\n  m:\n    lb_policy: least_request\n"
      "rate_limits:\n  rules:\n    - {name: x, match: {tenant: '*'}, requests_per_hour: -1}\n");
  cp_->Signal(SIGHUP);
  EXPECT_TRUE(
      WaitFor([&] { return metric("switchboard_config_reloads_total{result=\"error\"} 2"); }, absl::Seconds(5)));
  EXPECT_TRUE(metric("switchboard_config_reloads_total{result=\"ok\"} 1"));
  EXPECT_THAT(Sbctl("explain m").second, HasSubstr("policy round_robin"));
  WriteConfig("pools:\n  m:\n    lb_policy: least_request\n");
  cp_->Signal(SIGHUP);
  ASSERT_TRUE(subscriber_->WaitFor(
      "m", [](const v1::Assignment& x) { return x.lb_policy() == v1::LB_POLICY_LEAST_REQUEST; }, absl::Seconds(5), &a));
  // The failed reload shows: as an event naming the error, and in the reload counter.
  auto [rc, events] = Sbctl("events");
  EXPECT_EQ(rc, 0) << events;
  EXPECT_THAT(events, HasSubstr("config_reload_failed"));
  EXPECT_THAT(events, HasSubstr("lb_policy"));
  EXPECT_THAT(events, HasSubstr("requests_per_hour"));
  EXPECT_TRUE(metric("switchboard_config_reloads_total{result=\"error\"} 2"));
  EXPECT_TRUE(metric("switchboard_config_reloads_total{result=\"ok\"} 2"));
}

// Every thread but main's (in sigwait, where the kernel unblocks what it waits for)
// blocks the stop and reload signals: a SIGHUP that comes while main is busy with the
// last reload waits for it, instead of reaching a thread whose default action for it
// would end the process. gRPC's first threads start with the first credentials, so the
// mask must come before them. Then a burst of SIGHUPs: still serving, and reloaded.
TEST_F(ControlPlaneTest, ReloadSignalsReachOnlyTheSignalWaiter) {
  const pid_t pid = cp_->pid();
  const uint64_t stop = (1ULL << (SIGHUP - 1)) | (1ULL << (SIGINT - 1)) | (1ULL << (SIGTERM - 1));
  int threads = 0;
  for (const auto& task : std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"))) {
    if (task.path().filename() == std::to_string(pid)) continue;
    std::ifstream status(task.path() / "status");
    std::string line, name;
    std::optional<uint64_t> blocked;
    while (std::getline(status, line)) {
      if (line.rfind("Name:", 0) == 0) name = line.substr(5);
      if (line.rfind("SigBlk:", 0) == 0) blocked = std::stoull(line.substr(7), nullptr, 16);
    }
    if (!blocked) continue;  // The thread ended meanwhile.
    ++threads;
    EXPECT_EQ(*blocked & stop, stop) << "thread" << name << " would take SIGHUP, SIGINT or SIGTERM";
  }
  EXPECT_GT(threads, 3);

  for (int i = 0; i < 30; ++i) cp_->Signal(SIGHUP);
  httplib::Client metrics("127.0.0.1", metrics_port_);
  EXPECT_TRUE(WaitFor(
      [&] {
        auto res = metrics.Get("/metrics");
        return res && res->body.find("switchboard_config_reloads_total{result=\"ok\"} ") != std::string::npos &&
               res->body.find("switchboard_config_reloads_total{result=\"ok\"} 0\n") == std::string::npos;
      },
      absl::Seconds(10)));
  auto [rc, out] = Sbctl("status");
  EXPECT_EQ(rc, 0) << out;
}

TEST(ControlPlaneStartupTest, BrokenConfigIsAClearError) {
  const std::string path = (std::filesystem::path(::testing::TempDir()) / "broken.yaml").string();
  std::ofstream(path) << "pools:\n  m:\n    autoscaling:\n      max_replicas: lots\n";
  auto cp = Subprocess::Start("switchboard-controlplane",
                              {"--listen", "127.0.0.1:0", "--db", "", "--metrics-listen", "", "--config", path});
  EXPECT_EQ(cp->Wait(), 2);
}

// A port in use fails the start with exit code 1 and says which flag and why, for gRPC
// (whose default SO_REUSEPORT would otherwise let two control planes share the port) and
// for the metrics listener.
TEST(ControlPlaneStartupTest, PortInUseIsAClearError) {
  auto first = Subprocess::Start("switchboard-controlplane", {"--listen", "127.0.0.1:0", "--metrics-listen",
                                                              "127.0.0.1:0", "--db", "", "--insecure"});
  auto grpc_port = first->WaitForPort("grpc listening on port ", absl::Seconds(20));
  auto metrics_port = first->WaitForPort("metrics listening on port ", absl::Seconds(20));
  ASSERT_TRUE(grpc_port.ok() && metrics_port.ok());

  const std::string taken_grpc = absl::StrCat("127.0.0.1:", *grpc_port);
  auto [rc, out] =
      RunToExit("switchboard-controlplane", {"--listen", taken_grpc, "--metrics-listen", "", "--db", "", "--insecure"},
                absl::Seconds(20));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrCat("--listen ", taken_grpc, ": cannot listen (the port is in use")));

  const std::string taken_metrics = absl::StrCat("127.0.0.1:", *metrics_port);
  std::tie(rc, out) = RunToExit(
      "switchboard-controlplane",
      {"--listen", "127.0.0.1:0", "--metrics-listen", taken_metrics, "--db", "", "--insecure"}, absl::Seconds(20));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrCat("--metrics-listen ", taken_metrics, ": cannot listen (the port is in use")));
}

// Subscribe is served raw (each assignment serialized once for every stream): a request
// that is not a SubscribeRequest ends its own stream with INVALID_ARGUMENT, and a proper
// subscriber on the same control plane still gets its pools.
TEST(ControlPlaneStartupTest, UnparsableSubscribeRequestIsInvalidArgument) {
  auto cp = Subprocess::Start("switchboard-controlplane", {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db",
                                                           "", "--insecure", "--reconcile-coalesce", "0s"});
  auto port = cp->WaitForPort("grpc listening on port ", absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string target = absl::StrCat("127.0.0.1:", *port);

  grpc::GenericStub generic(MakeDedicatedChannel(target));
  grpc::ClientContext context;
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      generic.PrepareCall(&context, "/switchboard.v1.DiscoveryService/Subscribe", &cq);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  ASSERT_TRUE(ok);
  const std::string garbage = "\xff\xff\xff\xff";  // A field tag with no end: no message parses.
  grpc::Slice slice(garbage);
  grpc::ByteBuffer bytes(&slice, 1);
  call->Write(bytes, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(3));
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(3)) {
  }
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }

  v1::EndpointInfo info;
  info.set_address("10.0.0.1:8000");
  info.add_models("m");
  info.set_slots_total(4);
  v1::EndpointReport report;
  report.set_address(info.address());
  report.set_state(v1::ENDPOINT_STATE_READY);
  report.add_models("m");
  report.set_slots_total(4);
  switchboard::testing::AgentClient agent(target, "n1", {info}, {report});
  Subscriber subscriber(target, {"m"});
  EXPECT_TRUE(subscriber.WaitFor(
      "m", [](const v1::Assignment& a) { return a.endpoints_size() == 1; }, absl::Seconds(20)));
}

// Usage errors exit 2, as docs/operations.md says (CLI11's own codes are 105-109); --help 0.
TEST(ControlPlaneStartupTest, UsageErrorsExitTwo) {
  for (const auto& [binary, args] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"sbctl", {"--no-such-flag"}},
           {"sbctl", {"scale"}},
           {"sbctl", {"scale", "m", "notanumber"}},
           {"switchboard-controlplane", {"--no-such-flag"}},
           {"switchboard-controlplane", {"--reconcile-coalesce", "soon"}},
           {"switchboard-controlplane", {"--reconcile-tick", "0s"}},
       }) {
    auto [rc, out] = RunToExit(binary, args, absl::Seconds(20));
    EXPECT_EQ(rc, 2) << binary << " " << args[0] << ": " << out;
  }
  auto [rc, out] = RunToExit("sbctl", {"--help"}, absl::Seconds(20));
  EXPECT_EQ(rc, 0) << out;
}

// With a file, the file alone sets the staleness bound (at start and on every SIGHUP):
// the flag next to it is refused with a message that says where to put the value.
TEST(ControlPlaneStartupTest, StalenessBoundFlagWithConfigIsRefused) {
  const std::string path = (std::filesystem::path(::testing::TempDir()) / "staleness.yaml").string();
  std::ofstream(path) << "defaults:\n  staleness_bound: 3s\n";
  auto [rc, out] = RunToExit("switchboard-controlplane",
                             {"--listen", "127.0.0.1:0", "--db", "", "--metrics-listen", "", "--insecure", "--config",
                              path, "--staleness-bound", "10s"},
                             absl::Seconds(20));
  EXPECT_EQ(rc, 2) << out;
  EXPECT_THAT(out, HasSubstr("--staleness-bound cannot be combined with --config"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("staleness_bound under defaults: (or under a pool) in ", path)));

  // Either alone starts.
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--config", path}, std::vector<std::string>{"--staleness-bound", "10s"}}) {
    std::vector<std::string> args = {"--listen", "127.0.0.1:0", "--db", "", "--metrics-listen", "", "--insecure"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto cp = Subprocess::Start("switchboard-controlplane", args);
    auto port = cp->WaitForPort("grpc listening on port ", absl::Seconds(20));
    EXPECT_TRUE(port.ok()) << flags[0] << ": " << port.status();
  }
}

// A TCP forwarder on loopback that holds every chunk for `delay` in each direction, so
// that a connection's handshake takes several times `delay`: a distant or loaded control
// plane. (The wait models the link; it synchronizes nothing.)
class SlowLink {
 public:
  SlowLink(int target_port, absl::Duration delay) : target_port_(target_port), delay_(delay) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(listen_fd_, 16) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { Accept(); });
  }
  ~SlowLink() {
    stop_ = true;
    if (accept_thread_.joinable()) accept_thread_.join();  // Then nothing adds to fds_ or pumps_.
    for (int fd : fds_) shutdown(fd, SHUT_RDWR);
    for (std::thread& t : pumps_) t.join();
    for (int fd : fds_) close(fd);
    close(listen_fd_);
  }
  int port() const { return port_; }

 private:
  void Accept() {
    while (!stop_) {
      pollfd pfd{listen_fd_, POLLIN, 0};
      if (poll(&pfd, 1, 50) <= 0) continue;  // Wakes to see stop_.
      const int client = accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      const int upstream = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(target_port_));
      if (connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        close(client);
        close(upstream);
        continue;
      }
      fds_.push_back(client);
      fds_.push_back(upstream);
      pumps_.emplace_back([this, client, upstream] { Pump(client, upstream); });
      pumps_.emplace_back([this, client, upstream] { Pump(upstream, client); });
    }
  }
  void Pump(int from, int to) {
    char buf[16384];
    while (!stop_) {
      const ssize_t n = recv(from, buf, sizeof(buf), 0);
      if (n <= 0) break;
      std::this_thread::sleep_for(absl::ToChronoMilliseconds(delay_));
      if (send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
    }
    shutdown(to, SHUT_WR);
  }

  const int target_port_;
  const absl::Duration delay_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  std::vector<int> fds_;            // Touched by the accept thread, then (after joining it)
  std::vector<std::thread> pumps_;  // by the destructor.
};

// Slot demand end to end: a server with 2 slots gets requests faster than it finishes
// them; the agent reports its finished requests (vLLM's counter; for llama.cpp, counted
// from /slots) and queue; the control plane reads demand past the full slots (occupancy
// alone would say 1.0 and ask for 2 replicas at target 0.5; demand says about 2.0 and
// asks for 4).
class ControlPlaneSlotDemandTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ControlPlaneSlotDemandTest, ArrivalsFasterThanCompletionsReadPastFullSlots) {
  const std::string engine = GetParam();
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / ("cp_slot_demand_" + engine);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string config = (dir / "pools.yaml").string();
  std::ofstream(config) << "pools:\n  m:\n    autoscaling:\n      sync_period: 1s\n      max_replicas: 8\n"
                           "      metrics:\n        - {type: slot_demand, target: 0.5}\n";
  auto cp = Subprocess::Start("switchboard-controlplane", {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db",
                                                           "", "--config", config, "--insecure"});
  auto port = cp->WaitForPort("grpc listening on port ", absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string addr = absl::StrCat("127.0.0.1:", *port);
  auto server = Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--engine", engine, "--model", "m",
                                                          "--slots", "2", "--tokens-per-second", "20"});
  auto sp = server->WaitForPort("http listening on port ", absl::Seconds(20));
  ASSERT_TRUE(sp.ok()) << sp.status();
  auto agent = Subprocess::Start(
      "switchboard-agent",
      {"--controlplane", addr, "--backend", absl::StrCat(engine, "=http://127.0.0.1:", *sp, ",max_seqs=2"), "--node-id",
       "n1", "--report-interval", "250ms", "--gpu", "none", "--insecure"});
  Subscriber subscriber(addr, {"m"});
  ASSERT_TRUE(subscriber.WaitFor(
      "m", [](const v1::Assignment& a) { return a.endpoints_size() == 1 && a.endpoints(0).weight() > 0; },
      absl::Seconds(15)));

  // About 10 requests a second of 10 tokens (0.5 s each on 2 slots: 4 a second finish),
  // at most 50 in flight (fakellm holds a connection thread, of 64, per waiting request):
  // the queue grows for about 8 s.
  std::atomic<bool> stop{false};
  std::atomic<int> in_flight{0};
  std::vector<std::thread> requests;
  std::thread pacer([&, port = *sp] {
    while (!stop.load()) {
      if (in_flight.load() < 50) SendChatCompletions(port, 1, 10, &requests, 0, &in_flight);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // The arrival rate, not a wait.
    }
  });
  // Demand 2 x 10 / 4 = 5 slots, capped at 4 (twice the 2): 2.0 / 0.5 -> 4 replicas.
  std::string out;
  int rc = -1;
  v1::Assignment a;
  const bool scaled = subscriber.WaitFor(
      "m",
      [&](const v1::Assignment& x) {
        if (x.desired_replicas() < 3) return false;
        std::tie(rc, out) = RunSbctl(addr, "explain m");  // While the overload lasts.
        return true;
      },
      absl::Seconds(30), &a);
  stop = true;
  pacer.join();
  server.reset();  // Ends the requests still waiting.
  for (auto& t : requests) t.join();
  ASSERT_TRUE(scaled) << a.DebugString();
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("slot_demand")) << out;
  const size_t at = out.find("slot demand ");
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_GT(std::stod(out.substr(at + 12)), 1.0) << out;
}

INSTANTIATE_TEST_SUITE_P(Engines, ControlPlaneSlotDemandTest, ::testing::Values("vllm", "llamacpp"));

// Regression: the channels' minimum reconnect backoff was 100 ms, which gRPC also takes
// as the longest one connection attempt may last, so any handshake slower than that
// failed ("connection attempt timed out before receiving SETTINGS frame").
TEST(ControlPlaneLinkTest, SbctlWorksOverASlowLink) {
  auto cp = Subprocess::Start("switchboard-controlplane",
                              {"--listen", "127.0.0.1:0", "--db", "", "--metrics-listen", "", "--insecure"});
  auto port = cp->WaitForPort("grpc listening on port ", absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  SlowLink link(*port, absl::Milliseconds(150));
  ASSERT_GT(link.port(), 0);
  auto [rc, out] = RunSbctl(absl::StrCat("127.0.0.1:", link.port()), "status");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("no pools yet"));
}

}  // namespace
}  // namespace switchboard::testing
