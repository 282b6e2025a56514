// Misconfigurations an operator must be able to see, with the real binaries on loopback:
// a backend that is no inference server, one address reported by two nodes, an agent
// that cannot reach its control plane, agents that exit cleanly or crash, and a manual
// scale below the pool's minimum.
#include <signal.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/net.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "switchboard/v1/admin.grpc.pb.h"
#include "tests/agent/fake_control_plane.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

using ::testing::HasSubstr;

class MisconfigurationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A staleness bound far longer than any wait below: an endpoint that leaves within
    // these tests' deadlines left on purpose, not by going stale.
    cp_ = Subprocess::Start("switchboard-controlplane", {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "",
                                                         "--insecure", "--staleness-bound", "60s"});
    auto p = cp_->WaitForPort("grpc listening on port ", absl::Seconds(20));
    ASSERT_TRUE(p.ok()) << p.status();
    cp_addr_ = absl::StrCat("127.0.0.1:", *p);
  }
  void TearDown() override {
    agents_.clear();
    servers_.clear();
    cp_.reset();
    if (http_.is_running()) http_.stop();
    if (http_thread_.joinable()) http_thread_.join();
  }

  // A fake llama.cpp server; returns its port.
  int StartFakeLlm() {
    servers_.push_back(Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m", "--slots",
                                                                 "2", "--tokens-per-second", "20"}));
    auto port = servers_.back()->WaitForPort("http listening on port ", absl::Seconds(20));
    EXPECT_TRUE(port.ok()) << port.status();
    return port.value_or(0);
  }

  Subprocess* StartAgent(const std::string& node_id, const std::string& backend) {
    agents_.push_back(
        Subprocess::Start("switchboard-agent", {"--controlplane", cp_addr_, "--backend", backend, "--node-id", node_id,
                                                "--report-interval", "250ms", "--insecure", "--gpu", "none"}));
    return agents_.back().get();
  }

  v1::ListNodesResponse Nodes() {
    auto stub = v1::AdminService::NewStub(MakeChannel(cp_addr_));
    grpc::ClientContext ctx;
    v1::ListNodesResponse nodes;
    (void)stub->ListNodes(&ctx, v1::ListNodesRequest(), &nodes);
    return nodes;
  }

  std::vector<v1::EndpointStatus> PoolEndpoints() {
    auto stub = v1::AdminService::NewStub(MakeChannel(cp_addr_));
    grpc::ClientContext ctx;
    v1::GetPoolRequest req;
    req.set_pool("m");
    v1::Pool pool;
    if (!stub->GetPool(&ctx, req, &pool).ok()) return {};
    return {pool.endpoints().begin(), pool.endpoints().end()};
  }

  bool Routable(const std::string& node_id) {
    for (const v1::EndpointStatus& ep : PoolEndpoints()) {
      if (ep.node_id() == node_id && ep.weight() > 0) return true;
    }
    return false;
  }

  std::unique_ptr<Subprocess> cp_;
  std::string cp_addr_;
  std::vector<std::unique_ptr<Subprocess>> servers_, agents_;
  httplib::Server http_;
  std::thread http_thread_;
};

TEST_F(MisconfigurationTest, ABackendThatIsNoInferenceServerShowsWithItsProbeErrorOutsideAnyPool) {
  // An ordinary web server: every path answers 404 with HTML.
  http_.Get(".*", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content("<html><body>Not Found</body></html>", "text/html");
  });
  const int port = http_.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  http_thread_ = std::thread([this] { http_.listen_after_bind(); });
  const std::string address = absl::StrCat("127.0.0.1:", port);
  StartAgent("web-1", absl::StrCat("auto=http://", address));

  std::string probe_error;
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::ListNodesResponse nodes = Nodes();
        if (nodes.nodes_size() != 1 || nodes.nodes(0).endpoints_size() != 1) return false;
        probe_error = nodes.nodes(0).endpoints(0).probe_error();
        return !probe_error.empty();
      },
      Scaled(absl::Seconds(15))))
      << "the endpoint and its probe error are listed under its node";
  const v1::ListNodesResponse nodes = Nodes();
  EXPECT_EQ(nodes.nodes(0).endpoints(0).address(), address);
  auto [rc, out] = RunSbctl(cp_addr_, " status");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("ENDPOINTS WITH PROBLEMS"));
  EXPECT_THAT(out, HasSubstr(address));
  EXPECT_THAT(out, HasSubstr(probe_error));
  EXPECT_THAT(out, HasSubstr("no pools yet"));
}

TEST_F(MisconfigurationTest, OneAddressOnTwoNodesIsExcludedOnBothAndSaysWhy) {
  const int port = StartFakeLlm();
  const std::string backend = absl::StrCat("llamacpp=http://127.0.0.1:", port);
  StartAgent("gpu-1", backend);
  ASSERT_TRUE(WaitFor([&] { return Routable("gpu-1"); }, Scaled(absl::Seconds(15))));
  StartAgent("gpu-2", backend);
  ASSERT_TRUE(WaitFor(
      [&] {
        std::vector<v1::EndpointStatus> eps = PoolEndpoints();
        return eps.size() == 2 && eps[0].weight() == 0 && eps[1].weight() == 0;
      },
      Scaled(absl::Seconds(15))));
  for (const v1::EndpointStatus& ep : PoolEndpoints()) {
    EXPECT_THAT(ep.reason(), HasSubstr("duplicate address")) << ep.node_id();
    EXPECT_EQ(ep.duplicate_of_size(), 1) << ep.node_id();
  }
  auto [rc, out] = RunSbctl(cp_addr_, " explain m");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("also reported by node gpu-2"));
  EXPECT_THAT(out, HasSubstr("also reported by node gpu-1"));

  // The second agent stops: the first is routed again.
  agents_.back()->Signal(SIGTERM);
  EXPECT_EQ(agents_.back()->Wait(), 0);
  EXPECT_TRUE(WaitFor([&] { return Routable("gpu-1"); }, Scaled(absl::Seconds(10))));
}

TEST_F(MisconfigurationTest, ACleanExitLeavesAtOnceACrashGoesThroughStaleness) {
  StartAgent("clean", absl::StrCat("llamacpp=http://127.0.0.1:", StartFakeLlm()));
  Subprocess* crashing = StartAgent("crash", absl::StrCat("llamacpp=http://127.0.0.1:", StartFakeLlm()));
  ASSERT_TRUE(WaitFor([&] { return Routable("clean") && Routable("crash"); }, Scaled(absl::Seconds(15))));

  agents_.front()->Signal(SIGINT);
  EXPECT_EQ(agents_.front()->Wait(), 0);
  // Well within the 60 s staleness bound: the Goodbye removed it.
  EXPECT_TRUE(WaitFor([&] { return PoolEndpoints().size() == 1; }, Scaled(absl::Seconds(5))));
  const v1::ListNodesResponse after = Nodes();
  for (const v1::Node& n : after.nodes()) EXPECT_NE(n.node_id(), "clean");

  crashing->Signal(SIGKILL);
  crashing->Wait();
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::ListNodesResponse nodes = Nodes();
        return nodes.nodes_size() == 1 && !nodes.nodes(0).connected();
      },
      Scaled(absl::Seconds(5))));
  std::vector<v1::EndpointStatus> eps = PoolEndpoints();
  ASSERT_EQ(eps.size(), 1u) << "a crashed node stays until it goes stale and is forgotten";
  EXPECT_EQ(eps[0].node_id(), "crash");
}

TEST_F(MisconfigurationTest, AnAgentThatReachesNoControlPlaneSaysSoInItsLog) {
  ClosedPort nothing_listens;
  ASSERT_NE(nothing_listens.port(), 0);
  auto [rc, out] = RunToExit("switchboard-agent",
                             {"--controlplane", nothing_listens.target(), "--backend",
                              absl::StrCat("llamacpp=http://", nothing_listens.target()), "--node-id", "lonely",
                              "--report-interval", "200ms", "--insecure", "--gpu", "none"},
                             Scaled(absl::Seconds(3)));
  (void)rc;  // Killed at the deadline: it would retry forever.
  EXPECT_THAT(out, HasSubstr("no control plane reachable"));
  EXPECT_THAT(out, HasSubstr(nothing_listens.target()));
  EXPECT_THAT(out, HasSubstr("probe failed"));
}

TEST_F(MisconfigurationTest, ScaleBelowTheMinimumIsRefusedUnlessForced) {
  StartAgent("gpu-1", absl::StrCat("llamacpp=http://127.0.0.1:", StartFakeLlm()));
  ASSERT_TRUE(WaitFor([&] { return Routable("gpu-1"); }, Scaled(absl::Seconds(15))));
  auto [rc, out] = RunSbctl(cp_addr_, " scale m 0");
  EXPECT_EQ(rc, 3) << out;
  EXPECT_THAT(out, HasSubstr("does not allow scaling to zero"));
  EXPECT_THAT(out, HasSubstr("--force"));
  auto [rc2, out2] = RunSbctl(cp_addr_, " scale m 0 --force --for 1m");
  EXPECT_EQ(rc2, 0) << out2;
}

}  // namespace
}  // namespace switchboard::testing
