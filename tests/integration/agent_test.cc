// The agent as an operator runs it: GPUs through NVML (a fake library: no GPU here),
// its own health and metrics endpoints, draining by sbctl and by SIGTERM, and several
// control planes, one of which goes away and comes back.
#include <signal.h>

#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/notification.h"
#include "common/net.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

using ::testing::HasSubstr;

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StartControlPlane(0, &cp_, &cp_addr_);
    server_ = Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m", "--slots", "2",
                                                        "--tokens-per-second", "20"});
    auto sp = server_->WaitForPort("http listening on port ", absl::Seconds(20));
    ASSERT_TRUE(sp.ok()) << sp.status();
    server_port_ = *sp;
  }
  void TearDown() override {
    agent_.reset();
    server_.reset();
    for (auto& t : load_) t.join();
    cp_.reset();
    cp2_.reset();
  }

  static void StartControlPlane(int port, std::unique_ptr<Subprocess>* cp, std::string* addr) {
    *cp = Subprocess::Start("switchboard-controlplane", {"--listen", absl::StrCat("127.0.0.1:", port),
                                                         "--metrics-listen", "", "--db", "", "--insecure"});
    auto p = (*cp)->WaitForPort("grpc listening on port ", absl::Seconds(20));
    ASSERT_TRUE(p.ok()) << p.status();
    *addr = absl::StrCat("127.0.0.1:", *p);
  }

  void StartAgent(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--controlplane",
                                     cp_addr_,
                                     "--backend",
                                     absl::StrCat("llamacpp=http://127.0.0.1:", server_port_),
                                     "--node-id",
                                     "gpu-1",
                                     "--report-interval",
                                     "250ms",
                                     "--insecure",
                                     "--gpu",
                                     "none"};
    args.insert(args.end(), extra.begin(), extra.end());
    agent_ = Subprocess::Start("switchboard-agent", args);
    ASSERT_NE(agent_, nullptr);
  }

  std::optional<v1::EndpointStatus> Endpoint(const std::string& addr) {
    auto stub = v1::AdminService::NewStub(MakeChannel(addr));
    grpc::ClientContext ctx;
    v1::GetPoolRequest req;
    req.set_pool("m");
    v1::Pool pool;
    if (!stub->GetPool(&ctx, req, &pool).ok() || pool.endpoints_size() != 1) return std::nullopt;
    return pool.endpoints(0);
  }
  std::optional<v1::EndpointStatus> Endpoint() { return Endpoint(cp_addr_); }

  bool Routable(const std::string& addr) {
    auto ep = Endpoint(addr);
    return ep && ep->weight() > 0 && ep->state() == v1::ENDPOINT_STATE_READY;
  }

  void Send(int n, int max_tokens) { SendChatCompletions(server_port_, n, max_tokens, &load_); }

  std::pair<int, std::string> Sbctl(const std::vector<std::string>& args) {
    std::string joined;
    for (const auto& a : args) joined += " " + a;
    return RunSbctl(cp_addr_, joined);
  }

  std::unique_ptr<Subprocess> cp_, cp2_, server_, agent_;
  std::string cp_addr_, cp2_addr_;
  int server_port_ = 0;
  std::vector<std::thread> load_;
};

TEST_F(AgentTest, SbctlDrainAndUndrain) {
  StartAgent({});
  ASSERT_TRUE(WaitFor([&] { return Routable(cp_addr_); }, absl::Seconds(15)));
  auto [rc, out] = Sbctl({"drain", "gpu-1"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("agent notified"));
  // Excluded by the control plane's next reconcile (tens of ms), reported DRAINING.
  std::optional<v1::EndpointStatus> ep;
  EXPECT_TRUE(WaitFor([&] { return (ep = Endpoint()) && ep->weight() == 0; }, absl::Seconds(1)));
  EXPECT_EQ(ep->state(), v1::ENDPOINT_STATE_DRAINING);
  auto [rc2, out2] = Sbctl({"undrain", "gpu-1"});
  EXPECT_EQ(rc2, 0) << out2;
  ASSERT_TRUE(WaitFor([&] { return Routable(cp_addr_); }, absl::Seconds(5)));
  auto [rc3, out3] = Sbctl({"drain", "no-such-node"});
  EXPECT_EQ(rc3, 1);
  EXPECT_THAT(out3, HasSubstr("known nodes: gpu-1"));
}

TEST_F(AgentTest, SigtermDrainsThenExitsWhenIdle) {
  StartAgent({});
  ASSERT_TRUE(WaitFor([&] { return Routable(cp_addr_); }, absl::Seconds(15)));
  Send(2, 40);  // Two slots busy for about 2 s.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto ep = Endpoint();
        return ep && ep->slots_busy() == 2;
      },
      absl::Seconds(5)));
  const absl::Time sent = absl::Now();
  agent_->Signal(SIGTERM);
  std::optional<v1::EndpointStatus> ep;
  ASSERT_TRUE(
      WaitFor([&] { return (ep = Endpoint()) && ep->state() == v1::ENDPOINT_STATE_DRAINING; }, absl::Seconds(2)))
      << "DRAINING must be reported at once (a probe round, not the drain, bounds this)";
  EXPECT_EQ(ep->weight(), 0u);
  EXPECT_EQ(ep->slots_busy(), 2u) << "still working on what it has";
  EXPECT_EQ(agent_->Wait(), 0);
  for (auto& t : load_) t.join();  // Both requests completed...
  load_.clear();
  EXPECT_GE(absl::Now() - sent, absl::Milliseconds(500)) << "...and the agent waited for them";
}

TEST_F(AgentTest, DrainTimeoutBoundsTheWait) {
  StartAgent({"--drain-timeout", "1s"});
  ASSERT_TRUE(WaitFor([&] { return Routable(cp_addr_); }, absl::Seconds(15)));
  Send(1, 100000);  // Would take over an hour.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto ep = Endpoint();
        return ep && ep->slots_busy() == 1;
      },
      absl::Seconds(5)));
  const absl::Time sent = absl::Now();
  agent_->Signal(SIGTERM);
  EXPECT_EQ(agent_->Wait(), 0);
  EXPECT_LT(absl::Now() - sent, absl::Seconds(5));
  server_.reset();  // Ends the long request.
}

TEST_F(AgentTest, ReportsGpusThroughNvml) {
  StartAgent({"--gpu", "nvml", "--nvml-library", FAKE_NVML_PATH});
  v1::ListNodesResponse nodes;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto stub = v1::AdminService::NewStub(MakeChannel(cp_addr_));
        grpc::ClientContext ctx;
        nodes.Clear();
        return stub->ListNodes(&ctx, v1::ListNodesRequest(), &nodes).ok() && nodes.nodes_size() == 1 &&
               nodes.nodes(0).gpus_size() == 2 && nodes.nodes(0).gpus(0).vram_used_bytes() > 0;
      },
      absl::Seconds(10)))
      << nodes.DebugString();
  const v1::GpuStatus& h100 = nodes.nodes(0).gpus(0);
  EXPECT_EQ(h100.name(), "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(h100.vram_total_bytes(), 80ull << 30);
  EXPECT_EQ(h100.vram_used_bytes(), 10ull << 30);
  EXPECT_TRUE(h100.has_utilization());
  EXPECT_DOUBLE_EQ(h100.utilization(), 0.35);
  EXPECT_FALSE(nodes.nodes(0).gpus(1).has_utilization()) << "MIG: not supported";
  auto [rc, out] = Sbctl({"status"});
  EXPECT_THAT(out, HasSubstr("NVIDIA H100 80GB HBM3 10.0/80.0 GiB 35%"));
}

TEST_F(AgentTest, ServesHealthAndMetrics) {
  StartAgent({"--health-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"});
  auto metrics_port = agent_->WaitForPort("metrics listening on port ", absl::Seconds(10));
  ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
  auto health_port = agent_->WaitForPort("grpc health listening on port ", absl::Seconds(10));
  ASSERT_TRUE(health_port.ok()) << health_port.status();
  ASSERT_TRUE(WaitFor([&] { return Routable(cp_addr_); }, absl::Seconds(15)));

  httplib::Client client("127.0.0.1", *metrics_port);
  std::string body;
  const std::string connected = absl::StrCat("switchboard_agent_controlplane_connected{target=\"", cp_addr_, "\"} 1");
  EXPECT_TRUE(WaitFor(
      [&] {
        auto res = client.Get("/metrics");
        body = res ? res->body : "";
        return body.find(connected) != std::string::npos;
      },
      absl::Seconds(5)))
      << body;
  EXPECT_THAT(body, HasSubstr("switchboard_agent_probes_total{endpoint=\"127.0.0.1:"));

  // grpc.health.v1 over a generic call: SERVING (1) now, NOT_SERVING (2) once draining.
  auto channel = MakeChannel(absl::StrCat("127.0.0.1:", *health_port));
  auto check = [&]() -> int {
    grpc::GenericStub stub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::Slice empty("");  // HealthCheckRequest{service: ""} serializes to no bytes.
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    grpc::Status s;
    Notification done;
    stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                   [&](grpc::Status st) {
                     s = st;
                     done.Notify();
                   });
    done.WaitForNotification();
    if (!s.ok()) return -1;
    std::vector<grpc::Slice> slices;
    response.Dump(&slices);
    std::string bytes;
    for (auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : 0;  // field 1 (status), varint
  };
  EXPECT_EQ(check(), 1);
  Send(1, 100000);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto ep = Endpoint();
        return ep && ep->slots_busy() == 1;
      },
      absl::Seconds(5)));
  agent_->Signal(SIGTERM);
  EXPECT_TRUE(WaitFor([&] { return check() == 2; }, absl::Seconds(5)));
  agent_->Signal(SIGTERM);  // A second signal: exit now.
  EXPECT_EQ(agent_->Wait(), 0);
  server_.reset();
}

TEST_F(AgentTest, ReportsToEveryControlPlaneAndRejoinsOneThatReturns) {
  StartControlPlane(0, &cp2_, &cp2_addr_);
  StartAgent({"--controlplane", cp2_addr_});
  ASSERT_TRUE(WaitFor([&] { return Routable(cp_addr_) && Routable(cp2_addr_); }, absl::Seconds(15)));
  auto v1_version = Endpoint(cp_addr_);
  const int port2 = std::stoi(cp2_addr_.substr(cp2_addr_.rfind(':') + 1));
  cp2_->Signal(SIGKILL);
  cp2_->Wait();
  StartControlPlane(port2, &cp2_, &cp2_addr_);
  const absl::Time back = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return Routable(cp2_addr_); }, absl::Seconds(5)));
  EXPECT_LT(absl::Now() - back, absl::Seconds(2)) << "rejoined within 2 s of its return";
  EXPECT_TRUE(Routable(cp_addr_)) << "the other control plane was never disturbed";
}

}  // namespace
}  // namespace switchboard::testing
