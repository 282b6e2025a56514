// AgentService over real gRPC (loopback, port 0): what may wait is handled off gRPC's
// poller threads, so a control plane busy with its own work (FleetState's change hook or
// lock held, a reconcile pass blocked) still answers other calls, and reports are still
// accepted and acknowledged.
#include "controlplane/service/agent_service.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/notification.h"
#include "controlplane/reconciler.h"
#include "controlplane/snapshot/snapshot_store.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/controlplane/fleet_state_peer.h"
#include "tests/controlplane/test_util.h"

namespace switchboard::controlplane {
namespace {

using ::switchboard::testing::MakeEndpointReport;
using ::switchboard::testing::MakeHello;
using ::switchboard::testing::MakeReport;

using AgentClientStream = grpc::ClientReaderWriter<v1::AgentMessage, v1::ControlMessage>;

// Holds FleetState's change hook (it runs on the thread that applied the change, inside
// the agent stream's handling) while `hold` is set, as a control plane whose every
// accepted message waits on contended work would.
class ChangeGate {
 public:
  void Hold() { held_.store(true); }
  void Release() {
    held_.store(false);
    released_.Notify();
  }
  // The hook's body.
  void OnChange() {
    {
      MutexLock lock(&mu_);
      ++runs_;
    }
    if (!held_.load()) return;
    entered_.Notify();
    released_.WaitForNotification();
  }
  bool AwaitEntered(absl::Duration timeout) const { return entered_.WaitForNotificationWithTimeout(timeout); }
  int runs() {
    MutexLock lock(&mu_);
    return runs_;
  }
  // Whether the hook has run more than `runs` times within `timeout`.
  bool AwaitRunsAbove(int runs, absl::Duration timeout) {
    MutexLock lock(&mu_);
    auto above = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return runs_ > runs; };
    return mu_.AwaitWithTimeout(Condition(&above), timeout);
  }

 private:
  Mutex mu_;
  int runs_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<bool> held_{false};
  Notification entered_, released_;
};

class AgentServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fleet_ = std::make_unique<FleetState>(ValidationLimits{}, [this] { gate_.OnChange(); });
    metrics_ = ControlPlaneMetrics::Create(registry_);
    service_ = std::make_unique<AgentServiceImpl>(fleet_.get(), &clock_, metrics_.get());
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  void TearDown() override {
    gate_.Release();
    for (auto& c : clients_) c->context.TryCancel();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
  }

  // One agent on a connection of its own (as agents on separate hosts are).
  struct Client {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<v1::AgentService::Stub> stub;
    grpc::ClientContext context;
    std::unique_ptr<AgentClientStream> stream;
  };

  Client* Connect(int index) {
    auto c = std::make_unique<Client>();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("switchboard.test_connection", index);  // A distinct channel: no shared connection.
    c->channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials(), args);
    c->stub = v1::AgentService::NewStub(c->channel);
    c->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    c->stream = c->stub->Connect(&c->context);
    clients_.push_back(std::move(c));
    return clients_.back().get();
  }

  static bool SendHello(Client* c, const std::string& node) {
    v1::AgentMessage m;
    *m.mutable_hello() = MakeHello(node, {node + ":8000"});
    return c->stream->Write(m);
  }

  // The next message on the stream is an ack of `sequence`.
  static void ExpectAck(Client* c, uint64_t sequence) {
    v1::ControlMessage in;
    ASSERT_TRUE(c->stream->Read(&in));
    ASSERT_TRUE(in.has_ack()) << in.DebugString();
    EXPECT_EQ(in.ack().sequence(), sequence);
  }

  // grpc.health.v1.Health/Check (a call that needs only gRPC's threads): its status, or
  // DEADLINE_EXCEEDED when nothing served it within `timeout`.
  grpc::Status HealthCheck(absl::Duration timeout) {
    grpc::GenericStub stub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    Notification done;
    grpc::Status status;
    stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      status = std::move(s);
      done.Notify();
    });
    // The client shares gRPC's threads with the server in this process: when they are
    // all blocked, not even the deadline fires.
    if (!done.WaitForNotificationWithTimeout(timeout + absl::Seconds(5))) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no gRPC thread ran the call, nor its deadline");
    }
    return status;
  }

  FakeClock clock_;
  ChangeGate gate_;
  prometheus::Registry registry_;
  std::unique_ptr<FleetState> fleet_;
  std::unique_ptr<ControlPlaneMetrics> metrics_;
  std::unique_ptr<AgentServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::vector<std::unique_ptr<Client>> clients_;
};

// Many agents' Hellos arrive while the control plane's work is held (the first one
// waits in FleetState's change hook). gRPC's own threads must stay free: another call
// is answered meanwhile (so are HTTP/2 pings, on the same threads). When the work goes
// on, every Hello is accepted and acknowledged, in order.
TEST_F(AgentServiceTest, HeldIngestLeavesGrpcThreadsFreeAndCatchesUp) {
  gate_.Hold();
  // More streams than gRPC has poller threads on any machine this runs on: the old
  // reactor, which applied each Hello on the poller that read it, blocked all of them.
  constexpr int kAgents = 64;
  for (int i = 0; i < kAgents; ++i) ASSERT_TRUE(SendHello(Connect(i), absl::StrCat("n", i)));
  ASSERT_TRUE(gate_.AwaitEntered(absl::Seconds(30)));

  const grpc::Status health = HealthCheck(absl::Seconds(10));
  EXPECT_TRUE(health.ok()) << health.error_code() << ": " << health.error_message();

  gate_.Release();
  for (auto& c : clients_) ExpectAck(c.get(), 0);
  EXPECT_EQ(fleet_->Nodes(clock_.MonotonicNow()).size(), static_cast<size_t>(kAgents));
}

// A reconcile pass blocked half-way (here in a snapshot watcher, after it read the fleet)
// keeps no agent waiting: a report is validated, applied and acknowledged meanwhile.
TEST_F(AgentServiceTest, ReportIsAckedWhileAReconcilePassIsBlocked) {
  Client* c = Connect(0);
  ASSERT_TRUE(SendHello(c, "n0"));
  ExpectAck(c, 0);

  SnapshotStore store;
  Notification pass_blocked, release_pass;
  const int watcher = store.AddWatcher([&] {
    pass_blocked.Notify();
    release_pass.WaitForNotification();
  });
  Reconciler reconciler(fleet_.get(), &store, /*history=*/nullptr, &clock_, ReconcilerOptions());
  v1::AgentMessage first;
  *first.mutable_report() = MakeReport(1, {MakeEndpointReport("n0:8000", "m", 4, 1)});
  ASSERT_TRUE(c->stream->Write(first));
  ExpectAck(c, 1);
  std::thread pass([&] { reconciler.ReconcileOnce(); });  // Publishes pool m: the watcher holds it.
  ASSERT_TRUE(pass_blocked.WaitForNotificationWithTimeout(absl::Seconds(30)));

  v1::AgentMessage second;
  *second.mutable_report() = MakeReport(2, {MakeEndpointReport("n0:8000", "m", 4, 3)});
  ASSERT_TRUE(c->stream->Write(second));
  ExpectAck(c, 2);
  const std::vector<EndpointView> endpoints = fleet_->Endpoints(clock_.MonotonicNow());
  ASSERT_EQ(endpoints.size(), 1u);
  EXPECT_EQ(endpoints[0].slots_busy, 3u);  // Applied, not only acknowledged.

  release_pass.Notify();
  pass.join();
  store.RemoveWatcher(watcher);
}

// A report is applied on the poller that read it only when the fleet's lock is free; one
// that finds it taken (a long pass copying the fleet) waits on the stream's ingest thread,
// so gRPC's threads still answer other calls, and is applied once the lock is released.
TEST_F(AgentServiceTest, ReportFindingTheFleetLockedWaitsOffGrpcThreads) {
  std::vector<Client*> agents;
  constexpr int kAgents = 8;  // More than gRPC's pollers: none of them may wait.
  for (int i = 0; i < kAgents; ++i) {
    agents.push_back(Connect(i));
    ASSERT_TRUE(SendHello(agents.back(), absl::StrCat("n", i)));
    ExpectAck(agents.back(), 0);
  }
  FleetStateTestPeer::Lock(*fleet_);
  for (int i = 0; i < kAgents; ++i) {
    v1::AgentMessage m;
    *m.mutable_report() = MakeReport(1, {MakeEndpointReport(absl::StrCat("n", i, ":8000"), "m", 4, 2)});
    ASSERT_TRUE(agents[i]->stream->Write(m));
  }
  const grpc::Status health = HealthCheck(absl::Seconds(10));
  FleetStateTestPeer::Unlock(*fleet_);
  EXPECT_TRUE(health.ok()) << health.error_code() << ": " << health.error_message();
  for (Client* c : agents) ExpectAck(c, 1);
  for (const EndpointView& ep : fleet_->Endpoints(clock_.MonotonicNow())) {
    EXPECT_TRUE(ep.reported) << ep.node_id;
    EXPECT_EQ(ep.slots_busy, 2u) << ep.node_id;
  }
}

// A report applied on a poller does not run FleetState's change hook there (it takes the
// reconciler's lock): an ingest thread runs it, so the reconciler still learns of it.
TEST_F(AgentServiceTest, ReportAppliedOnAPollerStillWakesTheReconciler) {
  Client* c = Connect(0);
  ASSERT_TRUE(SendHello(c, "n0"));
  ExpectAck(c, 0);
  fleet_->TakeChangedPools();  // As the pass after the Hello would.
  const int before = gate_.runs();
  v1::AgentMessage m;
  *m.mutable_report() = MakeReport(1, {MakeEndpointReport("n0:8000", "m", 4, 1)});
  ASSERT_TRUE(c->stream->Write(m));
  ExpectAck(c, 1);
  EXPECT_TRUE(gate_.AwaitRunsAbove(before, absl::Seconds(30)));
}

// An invalid report is still answered on its stream (INVALID_ARGUMENT ends it) and
// changes nothing: the rules did not move with the handling.
TEST_F(AgentServiceTest, InvalidReportIsAnsweredOnTheStream) {
  Client* c = Connect(0);
  ASSERT_TRUE(SendHello(c, "n0"));
  ExpectAck(c, 0);
  v1::AgentMessage bad;
  *bad.mutable_report() = MakeReport(1, {MakeEndpointReport("not-declared:1", "m", 4, 1)});
  ASSERT_TRUE(c->stream->Write(bad));
  v1::ControlMessage in;
  EXPECT_FALSE(c->stream->Read(&in));
  const grpc::Status status = c->stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  const std::vector<EndpointView> endpoints = fleet_->Endpoints(clock_.MonotonicNow());
  ASSERT_EQ(endpoints.size(), 1u);
  EXPECT_FALSE(endpoints[0].reported);
}

}  // namespace
}  // namespace switchboard::controlplane
