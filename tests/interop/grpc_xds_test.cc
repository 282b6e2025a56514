// Interop with gRPC's own xDS client (Debian's libgrpc++): a channel to `xds:///POOL`,
// bootstrapped to the real control plane on loopback, must follow Switchboard's
// endpoints, weights and health. The backends are small gRPC servers in this process
// (each counts the RPCs it answers); an agent-protocol client in this process registers
// them with the control plane, as switchboard-agent would, and reports their state.
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/mutex.h"
#include "common/net.h"
#include "common/prometheus_text.h"
#include "controlplane/xds/type_urls.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "switchboard/v1/admin.grpc.pb.h"
#include "switchboard/v1/agent.grpc.pb.h"
#include "tests/integration/harness.h"
#include "tests/interop/agent_client.h"

namespace switchboard::testing {
namespace {

constexpr char kPool[] = "echo";

// A backend: answers AdminService.ListPools (any method would do) and counts the calls.
class Backend final : public v1::AdminService::Service {
 public:
  Backend() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~Backend() override { server_->Shutdown(); }

  grpc::Status ListPools(grpc::ServerContext*, const v1::ListPoolsRequest*, v1::ListPoolsResponse*) override {
    MutexLock lock(&mu_);
    ++calls_;
    return grpc::Status::OK;
  }
  int calls() const {
    MutexLock lock(&mu_);
    return calls_;
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  mutable Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

class GrpcXdsInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StartControlPlane("127.0.0.1:0");

    // Three backends of different capacity, so their weights differ.
    const uint32_t slots[] = {2, 4, 8};
    for (uint32_t s : slots) {
      backends_.push_back(std::make_unique<Backend>());
      v1::EndpointInfo info;
      info.set_address(backends_.back()->address());
      info.set_engine(v1::ENGINE_LLAMACPP);
      info.add_models(kPool);
      info.set_slots_total(s);
      info.set_capacity_hint(1);
      infos_.push_back(info);
      v1::EndpointReport report;
      report.set_address(info.address());
      report.set_state(v1::ENDPOINT_STATE_READY);
      report.add_models(kPool);
      report.set_slots_total(s);
      report.set_requests_total(1000);
      reports_.push_back(report);
    }
    ConnectAgent();

    const std::string dir = ::testing::TempDir();
    bootstrap_ = absl::StrCat(dir, "/xds_bootstrap_", getpid(), ".json");
    std::ofstream(bootstrap_) << "{\"xds_servers\":[{\"server_uri\":\"" << cp_addr_
                              << "\",\"channel_creds\":[{\"type\":\"insecure\"}],"
                                 "\"server_features\":[\"xds_v3\"]}],"
                                 "\"node\":{\"id\":\"interop-client\",\"locality\":{\"zone\":\"z\"}}}";
    setenv("GRPC_XDS_BOOTSTRAP", bootstrap_.c_str(), 1);
  }

  void TearDown() override { std::filesystem::remove(bootstrap_); }

  // The assignment once every backend is routable.
  v1::Assignment WaitAllRoutable() {
    v1::Assignment a;
    EXPECT_TRUE(subscriber_->WaitFor(
        kPool,
        [&](const v1::Assignment& x) {
          for (const auto& b : backends_) {
            if (WeightOf(x, b->address()) <= 0) return false;
          }
          return true;
        },
        Scaled(absl::Seconds(20)), &a));
    return a;
  }

  // One RPC over the xDS channel; true if it succeeded.
  bool Call(v1::AdminService::Stub* stub) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ListPoolsResponse response;
    return stub->ListPools(&ctx, v1::ListPoolsRequest(), &response).ok();
  }

  std::vector<int> Calls() const {
    std::vector<int> calls;
    for (const auto& b : backends_) calls.push_back(b->calls());
    return calls;
  }

  // Makes RPCs until `n` in a row miss backend `i`; false if that takes past `deadline`.
  bool RunUntilAvoided(v1::AdminService::Stub* stub, size_t i, int n, absl::Time deadline) {
    int streak = 0;
    while (absl::Now() < deadline) {
      const int before = backends_[i]->calls();
      if (!Call(stub)) continue;
      streak = backends_[i]->calls() == before ? streak + 1 : 0;
      if (streak >= n) return true;
    }
    return false;
  }

  // Starts the control plane on `listen` and waits for its port.
  void StartControlPlane(const std::string& listen) {
    // The default push debounce (--xds-quiet, --xds-max-delay), as deployed. Each test runs
    // in a process of its own (PROCESS_PER_TEST in tests/CMakeLists.txt): gRPC 1.51 keeps
    // its process-wide XdsClient past a test's channel, and a second test in the same
    // process took over the first one's client (its old control-plane address).
    cp_ = Subprocess::Start("switchboard-controlplane",
                            {"--listen", listen, "--metrics-listen", "127.0.0.1:0", "--insecure"});
    auto port = cp_->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(port.ok()) << port.status();
    cp_addr_ = absl::StrCat("127.0.0.1:", *port);
    auto metrics_port = cp_->WaitForPort("metrics listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
    metrics_port_ = *metrics_port;
  }

  // Registers the backends with the control plane, as their agent does on (re)connecting.
  void ConnectAgent() {
    agent_.reset();
    agent_ = std::make_unique<AgentClient>(cp_addr_, "backends", infos_, reports_);
    subscriber_ = std::make_unique<Subscriber>(cp_addr_, std::vector<std::string>{kPool});
  }

  // The version_info of the Cluster and ClusterLoadAssignment responses a new ADS stream
  // gets for the pool.
  std::pair<std::string, std::string> XdsVersions() {
    auto stub = envoy::service::discovery::v3::AggregatedDiscoveryService::NewStub(MakeChannel(cp_addr_));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stream = stub->StreamAggregatedResources(&ctx);
    std::map<std::string, std::string> versions;
    for (const char* type : {controlplane::xds::kClusterType, controlplane::xds::kClusterLoadAssignmentType}) {
      envoy::service::discovery::v3::DiscoveryRequest request;
      request.mutable_node()->set_id("version-probe");
      request.mutable_node()->set_user_agent_name("gRPC C-core");
      request.set_type_url(type);
      request.add_resource_names(kPool);
      stream->Write(request);
      envoy::service::discovery::v3::DiscoveryResponse response;
      if (!stream->Read(&response)) break;
      versions[response.type_url()] = response.version_info();
    }
    ctx.TryCancel();
    stream->Finish();
    return {versions[controlplane::xds::kClusterType], versions[controlplane::xds::kClusterLoadAssignmentType]};
  }

  // Open ADS streams on the control plane.
  double AdsStreams() {
    httplib::Client http("127.0.0.1", metrics_port_);
    auto res = http.Get("/metrics");
    if (!res) return -1;
    auto scrape = PromScrape::Parse(res->body);
    return scrape.ok() ? scrape->Value("switchboard_streams", {{"service", "ads"}}).value_or(0) : -1;
  }

  std::unique_ptr<Subprocess> cp_;
  std::string cp_addr_;
  int metrics_port_ = 0;
  std::vector<v1::EndpointInfo> infos_;
  std::vector<v1::EndpointReport> reports_;
  std::vector<std::unique_ptr<Backend>> backends_;
  std::unique_ptr<AgentClient> agent_;
  std::unique_ptr<Subscriber> subscriber_;
  std::string bootstrap_;
};

TEST_F(GrpcXdsInteropTest, FollowsEndpointsWeightsCircuitsAndDrains) {
  const v1::Assignment assignment = WaitAllRoutable();
  std::vector<int> weights;
  for (const auto& b : backends_) weights.push_back(WeightOf(assignment, b->address()));
  ASSERT_NE(weights[0], weights[2]) << "the backends' weights should differ";

  auto channel = grpc::CreateChannel(absl::StrCat("xds:///", kPool), grpc::InsecureChannelCredentials());
  auto stub = v1::AdminService::NewStub(channel);

  // (a) Every READY endpoint gets RPCs.
  ASSERT_TRUE(WaitFor(
      [&] {
        Call(stub.get());
        for (int c : Calls()) {
          if (c == 0) return false;
        }
        return true;
      },
      Scaled(absl::Seconds(30)), absl::ZeroDuration()))
      << "calls per backend: " << Calls()[0] << " " << Calls()[1] << " " << Calls()[2];

  // (b) The split follows the weights within 10%.
  const std::vector<int> start = Calls();
  constexpr int kRpcs = 12000;
  for (int i = 0; i < kRpcs; ++i) ASSERT_TRUE(Call(stub.get()));
  const double total_weight = weights[0] + weights[1] + weights[2];
  for (size_t i = 0; i < backends_.size(); ++i) {
    const double want = weights[i] / total_weight;
    const double got = static_cast<double>(backends_[i]->calls() - start[i]) / kRpcs;
    EXPECT_NEAR(got, want, 0.1 * want) << "backend " << i << " of weight " << weights[i];
    std::cout << "backend " << i << ": weight " << weights[i] << ", " << got * kRpcs << " of " << kRpcs << " RPCs\n";
  }

  // (c) An endpoint whose circuit opens gets no new RPCs within 2 s: backend 0 answers
  // with errors only (its server's 5xx counter moves with its requests).
  agent_->Update(0, [](v1::EndpointReport* r) {
    r->set_requests_total(1200);
    r->set_errors_total(200);
  });
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool,
      [&](const v1::Assignment& x) {
        for (const auto& ep : x.endpoints()) {
          if (ep.address() == backends_[0]->address()) return ep.circuit() == v1::CIRCUIT_STATE_OPEN;
        }
        return false;
      },
      Scaled(absl::Seconds(20))));
  const absl::Time opened = absl::Now();
  EXPECT_TRUE(RunUntilAvoided(stub.get(), 0, 500, opened + Scaled(absl::Seconds(2))));
  const int after_open = backends_[0]->calls();
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(Call(stub.get()));
  EXPECT_EQ(backends_[0]->calls(), after_open);

  // (d) A DRAINING endpoint gets none.
  agent_->Update(1, [](v1::EndpointReport* r) { r->set_state(v1::ENDPOINT_STATE_DRAINING); });
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool,
      [&](const v1::Assignment& x) {
        for (const auto& ep : x.endpoints()) {
          if (ep.address() == backends_[1]->address()) return ep.state() == v1::ENDPOINT_STATE_DRAINING;
        }
        return false;
      },
      Scaled(absl::Seconds(20))));
  EXPECT_TRUE(RunUntilAvoided(stub.get(), 1, 500, absl::Now() + Scaled(absl::Seconds(2))));
  const int after_drain = backends_[1]->calls();
  const int third_before = backends_[2]->calls();
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(Call(stub.get()));
  EXPECT_EQ(backends_[1]->calls(), after_drain);
  EXPECT_EQ(backends_[2]->calls() - third_before, 500);  // Everything goes to the one left.
}

TEST_F(GrpcXdsInteropTest, ControlPlaneRestartDoesNotDisturbTraffic) {
  WaitAllRoutable();
  auto channel = grpc::CreateChannel(absl::StrCat("xds:///", kPool), grpc::InsecureChannelCredentials());
  auto stub = v1::AdminService::NewStub(channel);
  ASSERT_TRUE(WaitFor(
      [&] {
        Call(stub.get());
        for (int c : Calls()) {
          if (c == 0) return false;
        }
        return true;
      },
      Scaled(absl::Seconds(30)), absl::ZeroDuration()));
  const auto versions_before = XdsVersions();
  ASSERT_FALSE(versions_before.first.empty());
  ASSERT_FALSE(versions_before.second.empty());

  // Control plane gone: the client keeps its configuration and every RPC succeeds.
  cp_->Signal(SIGTERM);
  cp_->Wait();
  std::vector<int> start = Calls();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(Call(stub.get())) << "RPC " << i << " with the control plane down";
  for (size_t i = 0; i < backends_.size(); ++i) EXPECT_GT(backends_[i]->calls(), start[i]) << "backend " << i;

  // Back on the same port. Until the agent reconnects the control plane knows no pool;
  // the client, reconnected, must keep its configuration meanwhile.
  StartControlPlane(cp_addr_);
  ASSERT_TRUE(WaitFor([&] { return AdsStreams() >= 1; }, Scaled(absl::Seconds(30))));
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(Call(stub.get())) << "RPC " << i << " before the agent reconnected";
  // The agent reconnects: same fleet, same versions (no churn), and traffic still
  // reaches every backend.
  ConnectAgent();
  WaitAllRoutable();
  EXPECT_EQ(XdsVersions(), versions_before);
  start = Calls();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(Call(stub.get())) << "RPC " << i << " after the restart";
  for (size_t i = 0; i < backends_.size(); ++i) EXPECT_GT(backends_[i]->calls(), start[i]) << "backend " << i;
}

}  // namespace
}  // namespace switchboard::testing
