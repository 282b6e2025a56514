// End to end: a real control plane, three fakellm servers and three agents on loopback,
// and a native Subscribe client, as in issue "walking skeleton" (a)-(e).
#include <signal.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/net.h"
#include "common/prometheus_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "switchboard/v1/agent.grpc.pb.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

constexpr char kPool[] = "llama-3-8b";

struct Backend {
  Backend(int s, double tps) : slots(s), tokens_per_second(tps) {}
  int slots;
  double tokens_per_second;
  std::unique_ptr<Subprocess> server;
  int port = 0;
  std::unique_ptr<Subprocess> agent;
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
};

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("fleet_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    // Staleness after 3 s; a server that went down serves a 2 s ejection, and its trial
    // needs one success (the agents check every second).
    const std::string config = (dir_ / "pools.yaml").string();
    std::ofstream(config) << "defaults:\n  staleness_bound: 3s\n"
                             "  circuit: {base_ejection: 2s, half_open_duration: 1s, half_open_successes: 1}\n";
    cp_ = Subprocess::Start("switchboard-controlplane",
                            {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--db",
                             (dir_ / "history.db").string(), "--config", config, "--insecure"});
    ASSERT_NE(cp_, nullptr);
    auto port = cp_->WaitForPort("grpc listening on port ", absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status();
    cp_addr_ = absl::StrCat("127.0.0.1:", *port);
    auto metrics_port = cp_->WaitForPort("metrics listening on port ", absl::Seconds(20));
    ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
    metrics_port_ = *metrics_port;

    // One "A100-like" server (8 slots, fast) and two "T4-like" ones (2 slots, slow).
    backends_.emplace_back(8, 40);
    backends_.emplace_back(2, 10);
    backends_.emplace_back(2, 10);
    for (size_t i = 0; i < backends_.size(); ++i) {
      StartServer(backends_[i], 0);
      StartAgent(backends_[i], i);
    }
    subscriber_ = std::make_unique<Subscriber>(cp_addr_, std::vector<std::string>{kPool});
  }

  void TearDown() override {
    subscriber_.reset();
    for (Backend& b : backends_) {
      b.agent.reset();
      b.server.reset();
    }
    for (std::thread& t : load_) t.join();  // The servers are gone: every request has ended.
    cp_.reset();
  }

  void StartServer(Backend& b, int port) {
    b.server = Subprocess::Start("switchboard-fakellm",
                                 {"--listen", absl::StrCat("127.0.0.1:", port), "--model", kPool, "--slots",
                                  absl::StrCat(b.slots), "--tokens-per-second", absl::StrCat(b.tokens_per_second)});
    ASSERT_NE(b.server, nullptr);
    auto p = b.server->WaitForPort("http listening on port ", absl::Seconds(20));
    ASSERT_TRUE(p.ok()) << p.status();
    b.port = *p;
  }

  void StartAgent(Backend& b, size_t index) {
    b.agent =
        Subprocess::Start("switchboard-agent",
                          {"--controlplane", cp_addr_, "--backend", absl::StrCat("llamacpp=http://", b.address()),
                           "--node-id", absl::StrCat("node-", index), "--active-check-interval", "1s", "--insecure"});
    ASSERT_NE(b.agent, nullptr);
  }

  // Fills every slot of `b` (and queues as many again) with long requests.
  void Saturate(const Backend& b) { SendChatCompletions(b.port, 2 * b.slots, 4000, &load_); }

  bool AllRoutable(const v1::Assignment& a) {
    if (a.endpoints_size() != static_cast<int>(backends_.size())) return false;
    for (const auto& ep : a.endpoints()) {
      if (ep.weight() == 0) return false;
    }
    return true;
  }

  v1::Pool GetPool() {
    auto stub = v1::AdminService::NewStub(MakeChannel(cp_addr_));
    grpc::ClientContext ctx;
    v1::GetPoolRequest req;
    req.set_pool(kPool);
    v1::Pool pool;
    grpc::Status s = stub->GetPool(&ctx, req, &pool);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return pool;
  }

  // The control plane's /metrics, parsed.
  PromScrape Metrics() {
    httplib::Client http("127.0.0.1", metrics_port_);
    auto res = http.Get("/metrics");
    EXPECT_TRUE(res && res->status == 200);
    if (!res) return {};
    auto scrape = PromScrape::Parse(res->body);
    EXPECT_TRUE(scrape.ok()) << scrape.status();
    return scrape.ok() ? *scrape : PromScrape();
  }

  std::filesystem::path dir_;
  std::unique_ptr<Subprocess> cp_;
  std::string cp_addr_;
  int metrics_port_ = 0;
  std::vector<Backend> backends_;
  std::unique_ptr<Subscriber> subscriber_;
  std::vector<std::thread> load_;
};

// (a) The subscriber receives all three endpoints with weights > 0.
TEST_F(FleetTest, SubscriberReceivesEveryEndpointWithWeight) {
  v1::Assignment a;
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool, [&](const v1::Assignment& x) { return AllRoutable(x); }, absl::Seconds(15), &a))
      << a.DebugString();
  for (const Backend& b : backends_) EXPECT_GT(WeightOf(a, b.address()), 0) << b.address();
  EXPECT_EQ(a.version().size(), 16u);
  EXPECT_EQ(a.nonce(), a.version());
  // Idle: weight follows free slots (8 vs 2 vs 2) while no speed is measured yet.
  EXPECT_GT(WeightOf(a, backends_[0].address()), WeightOf(a, backends_[1].address()));
}

// (b) Saturating one server's slots lowers its weight relative to the others within 3 s.
TEST_F(FleetTest, SaturatingServerLowersItsWeight) {
  v1::Assignment before;
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool, [&](const v1::Assignment& x) { return AllRoutable(x); }, absl::Seconds(15), &before));
  const double ratio_before =
      double(WeightOf(before, backends_[0].address())) / WeightOf(before, backends_[1].address());
  Saturate(backends_[0]);
  const absl::Time start = absl::Now();
  v1::Assignment after;
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool,
      [&](const v1::Assignment& x) {
        const int fast = WeightOf(x, backends_[0].address());
        const int slow = WeightOf(x, backends_[1].address());
        return fast > 0 && slow > 0 && double(fast) / slow < ratio_before / 4;
      },
      absl::Seconds(3), &after))
      << "before: " << before.DebugString() << "\nafter: " << after.DebugString();
  EXPECT_LE(absl::Now() - start, absl::Seconds(3));
  EXPECT_GT(WeightOf(after, backends_[0].address()), 0) << "saturated, but never excluded";
}

// (c) Killing a server excludes its endpoint within 5 s; restarting it brings it back,
// through a trial once its ejection has passed.
TEST_F(FleetTest, KilledServerIsExcludedAndComesBack) {
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool, [&](const v1::Assignment& x) { return AllRoutable(x); }, absl::Seconds(15)));
  Backend& victim = backends_[1];
  const int port = victim.port;
  victim.server->Signal(SIGKILL);
  victim.server->Wait();
  v1::Assignment a;
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool, [&](const v1::Assignment& x) { return WeightOf(x, victim.address()) == 0; }, absl::Seconds(5), &a))
      << a.DebugString();
  EXPECT_GT(WeightOf(a, backends_[0].address()), 0);
  EXPECT_GT(WeightOf(a, backends_[2].address()), 0);
  for (const auto& ep : a.endpoints()) {
    if (ep.address() == victim.address()) {
      EXPECT_EQ(ep.circuit(), v1::CIRCUIT_STATE_OPEN);
    }
  }

  StartServer(victim, port);  // Same address: the agent is still probing it.
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool, [&](const v1::Assignment& x) { return AllRoutable(x); }, absl::Seconds(10), &a))
      << a.DebugString();
  for (const auto& ep : a.endpoints()) {
    if (ep.address() == victim.address()) {
      EXPECT_EQ(ep.circuit(), v1::CIRCUIT_STATE_HALF_OPEN) << "going down counted as an ejection";
      EXPECT_LE(ep.weight(), 8u);
    }
  }
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool,
      [&](const v1::Assignment& x) {
        for (const auto& ep : x.endpoints()) {
          if (ep.address() == victim.address()) return ep.circuit() == v1::CIRCUIT_STATE_CLOSED && ep.weight() > 0;
        }
        return false;
      },
      absl::Seconds(10), &a))
      << a.DebugString();
}

// (d) Killing an agent excludes its endpoints after the staleness bound (3 s here).
TEST_F(FleetTest, KilledAgentGoesStale) {
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool, [&](const v1::Assignment& x) { return AllRoutable(x); }, absl::Seconds(15)));
  const absl::Time killed = absl::Now();
  backends_[2].agent->Signal(SIGKILL);
  backends_[2].agent->Wait();
  v1::Assignment a;
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool, [&](const v1::Assignment& x) { return WeightOf(x, backends_[2].address()) == 0; }, absl::Seconds(8), &a));
  EXPECT_GE(absl::Now() - killed, absl::Seconds(2)) << "excluded before the staleness bound";
  EXPECT_GT(WeightOf(a, backends_[0].address()), 0);
  v1::Pool pool = GetPool();
  for (const auto& ep : pool.endpoints()) {
    if (ep.address() == backends_[2].address()) {
      EXPECT_THAT(ep.reason(), ::testing::HasSubstr("stale"));
    }
  }
}

// (e) Bad input gets INVALID_ARGUMENT and the control plane keeps serving the others
// unchanged.
TEST_F(FleetTest, BadReportsAreRejectedWithoutDisturbingOthers) {
  ASSERT_TRUE(subscriber_->WaitFor(
      kPool, [&](const v1::Assignment& x) { return AllRoutable(x); }, absl::Seconds(15)));
  const v1::Pool before = GetPool();

  auto stub = v1::AgentService::NewStub(MakeChannel(cp_addr_));
  auto send = [&](std::vector<v1::AgentMessage> messages) {
    grpc::ClientContext ctx;
    auto stream = stub->Connect(&ctx);
    for (const auto& m : messages) {
      if (!stream->Write(m)) break;
    }
    stream->WritesDone();
    v1::ControlMessage reply;
    while (stream->Read(&reply)) {
    }
    return stream->Finish();
  };
  v1::AgentMessage hello;
  hello.mutable_hello()->set_node_id("intruder");
  v1::EndpointInfo* ep = hello.mutable_hello()->add_endpoints();
  ep->set_address("127.0.0.1:1");
  auto report = [](std::function<void(v1::EndpointReport*)> mutate) {
    v1::AgentMessage m;
    m.mutable_report()->set_sequence(1);
    v1::EndpointReport* r = m.mutable_report()->add_endpoints();
    r->set_address("127.0.0.1:1");
    r->set_state(v1::ENDPOINT_STATE_READY);
    r->add_models(kPool);
    r->set_slots_total(4);
    mutate(r);
    return m;
  };

  grpc::Status busy = send({hello, report([](v1::EndpointReport* r) { r->set_slots_busy(9); })});
  EXPECT_EQ(busy.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << busy.error_message();
  EXPECT_THAT(busy.error_message(), ::testing::HasSubstr("slots_busy"));

  grpc::Status nan = send({hello, report([](v1::EndpointReport* r) { r->set_ttft_p95_seconds(std::nan("")); })});
  EXPECT_EQ(nan.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << nan.error_message();

  v1::AgentMessage huge = hello;
  huge.mutable_hello()->set_node_id(std::string(1 << 20, 'x'));
  grpc::Status big = send({huge});
  EXPECT_EQ(big.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << big.error_message().substr(0, 200);
  EXPECT_LT(big.error_message().size(), 300u);

  v1::AgentMessage impostor = hello;
  impostor.mutable_hello()->set_node_id("node-0");  // Someone else's node.
  grpc::Status imp = send({impostor, report([](v1::EndpointReport* r) { r->set_slots_busy(1); })});
  EXPECT_EQ(imp.error_code(), grpc::StatusCode::ALREADY_EXISTS) << imp.error_message();

  // Each rejection is counted under its own code: a duplicate node id is not a
  // failed precondition. (Counted before the stream ends, so no wait.)
  const PromScrape metrics = Metrics();
  auto rejected = [&](const std::string& result) {
    return metrics.Value("switchboard_agent_messages_total", {{"kind", "any"}, {"result", result}});
  };
  EXPECT_EQ(rejected("invalid_argument"), 3.0);
  EXPECT_EQ(rejected("already_exists"), 1.0);
  EXPECT_EQ(rejected("failed_precondition"), 0.0);
  EXPECT_EQ(rejected("other"), 0.0);
  EXPECT_EQ(metrics.Value("switchboard_history_write_errors_total"), 0.0);

  // Nothing else moved: same pool content, so the very same version, and every real
  // endpoint still routable. The intruder never joined.
  const v1::Pool after = GetPool();
  EXPECT_EQ(after.version(), before.version());
  ASSERT_EQ(after.endpoints_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(after.endpoints(i).address(), before.endpoints(i).address());
    EXPECT_EQ(after.endpoints(i).node_id(), before.endpoints(i).node_id());
    EXPECT_GT(after.endpoints(i).weight(), 0u);
  }
}

}  // namespace
}  // namespace switchboard::testing
