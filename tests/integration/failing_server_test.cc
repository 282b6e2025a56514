// A server that fails most of its requests while its health probes pass is excluded on
// every engine, and comes back through a trial once it serves again (real control plane,
// real agent, real fakellm over loopback). The evidence differs by engine: the agent's
// active checks for llama.cpp, vLLM and SGLang (no 5xx counter), TGI's own
// tgi_request_failure counter (checks off by default), and, for any engine, the outcomes
// a gateway reports on its Subscribe stream.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/notification.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

// Short windows and ejections, so that a whole cycle takes seconds.
constexpr char kConfig[] = R"(
defaults:
  circuit:
    error_window: 3s
    min_requests: 5
    min_checks: 3
    base_ejection: 1s
    max_ejection: 2s
    half_open_duration: 500ms
    half_open_successes: 3
    half_open_weight: 8
)";
constexpr uint32_t kHalfOpenWeight = 8;

struct FailingCase {
  std::string name;
  std::string engine;              // fakellm --engine and agent --backend ENGINE
  std::vector<std::string> agent;  // Extra agent flags.
  bool gateway = false;            // Route through switchboard-loadgen, which reports outcomes.
  std::string reason;              // What the ejection's reason names.
};

void PrintTo(const FailingCase& c, std::ostream* os) { *os << c.name; }

const v1::AssignedEndpoint* Only(const v1::Assignment& a) {
  return a.endpoints_size() == 1 ? &a.endpoints(0) : nullptr;
}

class FailingServerTest : public ::testing::TestWithParam<FailingCase> {
 protected:
  void SetUp() override {
    const FailingCase& c = GetParam();
    const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / ("failing_" + c.name);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const std::string config = (dir / "pools.yaml").string();
    std::ofstream(config) << kConfig;
    cp_ = Subprocess::Start("switchboard-controlplane", {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "",
                                                         "--config", config, "--insecure"});
    auto port = cp_->WaitForPort("grpc listening on port ", absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status();
    cp_addr_ = absl::StrCat("127.0.0.1:", *port);
    server_ = Subprocess::Start("switchboard-fakellm",
                                {"--listen", "127.0.0.1:0", "--model", "m-7b", "--slots", "3", "--tokens-per-second",
                                 "200", "--engine", c.engine, "--fail-rate", "0.9"});
    auto sp = server_->WaitForPort("http listening on port ", absl::Seconds(20));
    ASSERT_TRUE(sp.ok()) << sp.status();
    server_port_ = *sp;
    std::vector<std::string> args = {"--controlplane",
                                     cp_addr_,
                                     "--backend",
                                     absl::StrCat(c.engine, "=http://127.0.0.1:", server_port_, ",max_seqs=3"),
                                     "--node-id",
                                     "n1",
                                     "--report-interval",
                                     "200ms",
                                     "--active-check-interval",
                                     "200ms",
                                     "--insecure"};
    args.insert(args.end(), c.agent.begin(), c.agent.end());
    agent_ = Subprocess::Start("switchboard-agent", args);
    sub_ = std::make_unique<Subscriber>(cp_addr_, std::vector<std::string>{"m-7b"});
    if (c.gateway) {
      // A gateway: routes by weight (nothing while the endpoint is OPEN) and reports what
      // happened to its requests.
      loadgen_ = Subprocess::Start("switchboard-loadgen",
                                   {"--controlplane", cp_addr_, "--pool", "m-7b", "--rps", "30", "--max-tokens", "1",
                                    "--prompt-chars", "8", "--report-every", "1h", "--report-outcomes", "200ms"});
    } else {
      // Traffic straight to the server, as clients of any proxy: TGI's counters need it.
      traffic_ = std::thread([this] {
        httplib::Client client("127.0.0.1", server_port_);
        client.set_read_timeout(std::chrono::seconds(10));
        const std::string body = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":1})";
        // Pacing requests is this thread's purpose: about 20 per second.
        while (!stop_traffic_.WaitForNotificationWithTimeout(absl::Milliseconds(50))) {
          client.Post("/v1/chat/completions", body, "application/json");
        }
      });
    }
  }

  void TearDown() override {
    stop_traffic_.Notify();
    if (traffic_.joinable()) traffic_.join();
    loadgen_.reset();
    sub_.reset();
    agent_.reset();
    server_.reset();
    cp_.reset();
  }

  void SetFailRate(const std::string& rate) {
    httplib::Client client("127.0.0.1", server_port_);
    auto res = client.Post("/admin/fail-rate", rate, "text/plain");
    ASSERT_TRUE(res && res->status == 200) << "POST /admin/fail-rate " << rate;
  }

  // Waits for an assignment of the one endpoint that satisfies `pred`.
  bool WaitForEndpoint(const std::function<bool(const v1::AssignedEndpoint&)>& pred, absl::Duration timeout,
                       v1::Assignment* last) {
    return sub_->WaitFor(
        "m-7b", [&](const v1::Assignment& a) { return Only(a) != nullptr && pred(*Only(a)); }, timeout, last);
  }

  std::string Reason() {
    auto [rc, out] = RunSbctl(cp_addr_, "explain m-7b");
    return out;
  }

  std::unique_ptr<Subprocess> cp_, server_, agent_, loadgen_;
  std::unique_ptr<Subscriber> sub_;
  std::string cp_addr_;
  int server_port_ = 0;
  std::thread traffic_;
  Notification stop_traffic_;
};

TEST_P(FailingServerTest, ExcludedWhileFailingAndBackThroughATrial) {
  const FailingCase& c = GetParam();
  v1::Assignment a;
  // The agent's first report: READY (its health probes pass).
  ASSERT_TRUE(
      WaitForEndpoint([](const auto& ep) { return ep.state() == v1::ENDPOINT_STATE_READY; }, absl::Seconds(15), &a))
      << a.DebugString();

  // 1. Failing 90% of its requests: OPEN with weight 0 within 10 s.
  const absl::Time ready = SystemClock::Get()->MonotonicNow();
  ASSERT_TRUE(WaitForEndpoint([](const auto& ep) { return ep.circuit() == v1::CIRCUIT_STATE_OPEN && ep.weight() == 0; },
                              absl::Seconds(10), &a))
      << a.DebugString() << Reason();
  std::cout << c.name << ": OPEN " << absl::FormatDuration(SystemClock::Get()->MonotonicNow() - ready)
            << " after the first READY report\n";
  EXPECT_EQ(Only(a)->state(), v1::ENDPOINT_STATE_READY) << "the health probes still pass";
  // The ejection lasts 1 s at first (longer at each ejection after): a slow sbctl (the
  // sanitizer builds) may find a trial under way instead, so ask until it catches one open.
  std::string reason;
  EXPECT_TRUE(WaitFor(
      [&] {
        reason = Reason();
        return absl::StrContains(reason, c.reason);
      },
      absl::Seconds(20)))
      << reason;

  // 2. Failing every request: it is tried again and again (HALF_OPEN, capped weight) and
  //    never comes back to full weight.
  SetFailRate("1");
  // From the next ejection on, every trial began with the server failing all requests.
  size_t from = sub_->Seen("m-7b").size();
  ASSERT_TRUE(WaitForEndpoint([](const auto& ep) { return ep.circuit() == v1::CIRCUIT_STATE_HALF_OPEN; },
                              absl::Seconds(15), &a));
  ASSERT_TRUE(
      WaitForEndpoint([](const auto& ep) { return ep.circuit() == v1::CIRCUIT_STATE_OPEN; }, absl::Seconds(15), &a));
  from = sub_->Seen("m-7b").size();
  auto trials = [&] {
    int n = 0;
    const std::vector<v1::Assignment> seen = sub_->Seen("m-7b");
    for (size_t i = from; i < seen.size(); ++i) {
      n += Only(seen[i]) != nullptr && Only(seen[i])->circuit() == v1::CIRCUIT_STATE_HALF_OPEN;
    }
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return trials() >= 2; }, absl::Seconds(20))) << Reason();
  const std::vector<v1::Assignment> failing = sub_->Seen("m-7b");
  for (size_t i = from; i < failing.size(); ++i) {
    ASSERT_NE(Only(failing[i]), nullptr);
    EXPECT_NE(Only(failing[i])->circuit(), v1::CIRCUIT_STATE_CLOSED) << failing[i].DebugString();
    EXPECT_LE(Only(failing[i])->weight(), kHalfOpenWeight) << failing[i].DebugString();
  }

  // 3. Healthy again: back through HALF_OPEN to CLOSED at full weight.
  SetFailRate("0");
  from = sub_->Seen("m-7b").size();
  ASSERT_TRUE(WaitForEndpoint(
      [](const auto& ep) { return ep.circuit() == v1::CIRCUIT_STATE_CLOSED && ep.weight() > kHalfOpenWeight; },
      absl::Seconds(20), &a))
      << a.DebugString() << Reason();
  // The assignment before the first CLOSED one (which may predate the healing: a trial
  // under way) is a trial.
  const std::vector<v1::Assignment> healed = sub_->Seen("m-7b");
  size_t closed = from;
  while (closed < healed.size() && Only(healed[closed])->circuit() != v1::CIRCUIT_STATE_CLOSED) ++closed;
  ASSERT_LT(closed, healed.size());
  ASSERT_GT(closed, 0u);
  EXPECT_EQ(Only(healed[closed - 1])->circuit(), v1::CIRCUIT_STATE_HALF_OPEN) << "CLOSED only after a trial";
}

INSTANTIATE_TEST_SUITE_P(
    Engines, FailingServerTest,
    ::testing::Values(
        // No 5xx counter: the agent's active checks (on by default) find it.
        FailingCase{"llamacpp", "llamacpp", {}, false, "active checks"},
        FailingCase{"vllm", "vllm", {}, false, "active checks"},
        FailingCase{"sglang", "sglang", {}, false, "active checks"},
        // TGI counts its failures: checks are off by default, its counter suffices.
        FailingCase{"tgi", "tgi", {}, false, "server counters"},
        // Checks off: the outcomes a gateway reports are enough.
        FailingCase{"llamacpp_gateway_outcomes", "llamacpp", {"--active-check", "off"}, true, "reported by gateways"}),
    [](const ::testing::TestParamInfo<FailingCase>& p) { return p.param.name; });

}  // namespace
}  // namespace switchboard::testing
