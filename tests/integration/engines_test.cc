// The agent against every engine shape fakellm speaks (llama.cpp current and 2024, vLLM,
// SGLang, TGI, and auto-detection): what the control plane shows must be the same
// normalized state whatever the engine.
#include <map>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/net.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

struct EngineCase {
  std::string name;         // Test name suffix.
  std::string fake_engine;  // fakellm --engine
  std::string backend;      // agent --backend ENGINE (before '=')
  std::vector<std::string> fake_flags;
  v1::Engine expected_engine;
  bool has_queue = true;  // Whether the engine exports a queue depth.
  bool has_ttft = false;  // Whether the engine exports a TTFT histogram.
};

class EnginesTest : public ::testing::TestWithParam<EngineCase> {
 protected:
  void SetUp() override {
    cp_ = Subprocess::Start("switchboard-controlplane",
                            {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "", "--insecure"});
    auto port = cp_->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(port.ok()) << port.status();
    cp_addr_ = absl::StrCat("127.0.0.1:", *port);
    std::vector<std::string> args = {"--listen", "127.0.0.1:0",         "--model", "m-7b",     "--slots",
                                     "3",        "--tokens-per-second", "50",      "--engine", GetParam().fake_engine};
    args.insert(args.end(), GetParam().fake_flags.begin(), GetParam().fake_flags.end());
    server_ = Subprocess::Start("switchboard-fakellm", args);
    auto sp = server_->WaitForPort("http listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(sp.ok()) << sp.status();
    server_port_ = *sp;
    agent_ = Subprocess::Start("switchboard-agent",
                               {"--controlplane", cp_addr_, "--backend",
                                absl::StrCat(GetParam().backend, "=http://127.0.0.1:", server_port_, ",max_seqs=3"),
                                "--node-id", "n1", "--report-interval", "250ms", "--insecure"});
  }

  void TearDown() override {
    agent_.reset();
    server_.reset();
    for (auto& t : load_) t.join();
    cp_.reset();
  }

  std::optional<v1::EndpointStatus> Endpoint() {
    auto stub = v1::AdminService::NewStub(MakeChannel(cp_addr_));
    grpc::ClientContext ctx;
    v1::GetPoolRequest req;
    req.set_pool("m-7b");
    v1::Pool pool;
    if (!stub->GetPool(&ctx, req, &pool).ok() || pool.endpoints_size() != 1) return std::nullopt;
    return pool.endpoints(0);
  }

  void Send(int n, int max_tokens) { SendChatCompletions(server_port_, n, max_tokens, &load_); }

  std::unique_ptr<Subprocess> cp_, server_, agent_;
  std::string cp_addr_;
  int server_port_ = 0;
  std::vector<std::thread> load_;
};

TEST_P(EnginesTest, ControlPlaneSeesNormalizedState) {
  const EngineCase& c = GetParam();
  std::optional<v1::EndpointStatus> ep;
  ASSERT_TRUE(WaitFor([&] { return (ep = Endpoint()) && ep->weight() > 0; }, Scaled(absl::Seconds(15))))
      << (ep ? ep->DebugString() : "no endpoint in pool m-7b");
  EXPECT_EQ(ep->engine(), c.expected_engine);
  EXPECT_EQ(ep->state(), v1::ENDPOINT_STATE_READY);
  EXPECT_EQ(ep->slots_total(), 3u);
  EXPECT_EQ(ep->slots_busy(), 0u);

  // Short requests first, so that latency histograms and token counters move.
  Send(3, 5);
  if (c.has_ttft) {
    ASSERT_TRUE(WaitFor([&] { return (ep = Endpoint()) && ep->ttft_p95_seconds() > 0; }, Scaled(absl::Seconds(10))))
        << ep->DebugString();
  }
  for (auto& t : load_) t.join();
  load_.clear();
  // Then five long ones on three slots: three busy, two queued.
  Send(5, 2000);
  ASSERT_TRUE(
      WaitFor([&] { return (ep = Endpoint()) && ep->slots_busy() == 3 && (!c.has_queue || ep->queue_depth() == 2); },
              Scaled(absl::Seconds(10))))
      << ep->DebugString();
  // KV-cache use (measured or estimated) and decode speed per sequence become known.
  EXPECT_TRUE(WaitFor([&] { return (ep = Endpoint()) && ep->kv_cache_usage() > 0 && ep->slot_tokens_per_second() > 0; },
                      Scaled(absl::Seconds(5))))
      << ep->DebugString();

  // The server dies: after the failure threshold the endpoint is excluded.
  server_->Signal(SIGKILL);
  server_->Wait();
  ASSERT_TRUE(WaitFor([&] { return (ep = Endpoint()) && ep->state() == v1::ENDPOINT_STATE_UNHEALTHY; },
                      Scaled(absl::Seconds(10))))
      << ep->DebugString();
  EXPECT_EQ(ep->weight(), 0u);
  EXPECT_FALSE(ep->probe_error().empty());
}

INSTANTIATE_TEST_SUITE_P(
    AllEngines, EnginesTest,
    ::testing::Values(
        EngineCase{"llamacpp", "llamacpp", "llamacpp", {}, v1::ENGINE_LLAMACPP, true, false},
        EngineCase{"llamacpp_2024", "llamacpp-2024", "llamacpp", {}, v1::ENGINE_LLAMACPP, true, false},
        EngineCase{"llamacpp_no_metrics", "llamacpp", "llamacpp", {"--no-metrics"}, v1::ENGINE_LLAMACPP, false, false},
        EngineCase{"vllm", "vllm", "vllm", {}, v1::ENGINE_VLLM, true, true},
        EngineCase{"sglang", "sglang", "sglang", {}, v1::ENGINE_SGLANG, true, true},
        EngineCase{"tgi", "tgi", "tgi", {}, v1::ENGINE_TGI, true, false},
        EngineCase{"auto_llamacpp", "llamacpp", "auto", {}, v1::ENGINE_LLAMACPP, true, false},
        EngineCase{"auto_vllm", "vllm", "auto", {}, v1::ENGINE_VLLM, true, true},
        EngineCase{"auto_sglang", "sglang", "auto", {}, v1::ENGINE_SGLANG, true, true},
        EngineCase{"auto_tgi", "tgi", "auto", {}, v1::ENGINE_TGI, true, false}),
    [](const ::testing::TestParamInfo<EngineCase>& p) { return p.param.name; });

}  // namespace
}  // namespace switchboard::testing

namespace switchboard::testing {
namespace {

// The agent measures prefill and decode speed from llama.cpp's counters, and the control
// plane passes both (rounded) to every subscriber, for size-aware gateways.
// Runs one fakellm of `engine` shape (50 tokens/s, 100 prompt tokens/s, 2 slots) behind an
// agent, sends two rounds of requests and returns the first assignment whose endpoint has
// a measured prefill speed.
v1::Assignment AssignmentWithMeasuredSpeeds(const std::string& engine) {
  auto cp = Subprocess::Start("switchboard-controlplane",
                              {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "", "--insecure"});
  auto port = cp->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
  EXPECT_TRUE(port.ok()) << port.status();
  if (!port.ok()) return {};
  const std::string cp_addr = absl::StrCat("127.0.0.1:", *port);
  auto server = Subprocess::Start(
      "switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m-7b", "--slots", "2", "--tokens-per-second", "50",
                              "--prefill-tokens-per-second", "100", "--engine", engine});
  auto sp = server->WaitForPort("http listening on port ", Scaled(absl::Seconds(20)));
  EXPECT_TRUE(sp.ok()) << sp.status();
  if (!sp.ok()) return {};
  auto agent = Subprocess::Start("switchboard-agent", {"--controlplane", cp_addr, "--backend",
                                                       absl::StrCat(engine, "=http://127.0.0.1:", *sp, ",max_seqs=2"),
                                                       "--node-id", "n1", "--report-interval", "200ms", "--insecure"});
  Subscriber sub(cp_addr, {"m-7b"});
  EXPECT_TRUE(sub.WaitFor(
      "m-7b", [](const v1::Assignment& a) { return a.endpoints_size() == 1; }, Scaled(absl::Seconds(15))));
  std::vector<std::thread> load;
  // Requests in two rounds, so that the counters move between two scrapes.
  SendChatCompletions(*sp, 2, 10, &load);
  for (auto& t : load) t.join();
  load.clear();
  SendChatCompletions(*sp, 2, 10, &load);
  for (auto& t : load) t.join();
  v1::Assignment a;
  const bool measured = sub.WaitFor(
      "m-7b",
      [](const v1::Assignment& x) {
        return x.endpoints_size() == 1 && x.endpoints(0).prefill_tokens_per_second() > 0 &&
               x.endpoints(0).decode_tokens_per_second() > 0;
      },
      Scaled(absl::Seconds(15)), &a);
  EXPECT_TRUE(measured) << a.DebugString();
  return a;
}

TEST(MeasuredSpeedsTest, LlamaCppAssignmentsCarryPrefillAndDecodeSpeed) {
  v1::Assignment a = AssignmentWithMeasuredSpeeds("llamacpp");
  ASSERT_EQ(a.endpoints_size(), 1);
  // fakellm's prompt takes 4 tokens at 100 tokens/s and each output token 1/50 s; the
  // measured figures include the scheduler's overshoot on those sleeps.
  EXPECT_NEAR(a.endpoints(0).prefill_tokens_per_second(), 100, 25) << a.DebugString();
  EXPECT_NEAR(a.endpoints(0).decode_tokens_per_second(), 50, 10) << a.DebugString();
}

TEST(MeasuredSpeedsTest, VllmPrefillSpeedFromItsHistograms) {
  // vLLM: request_prompt_tokens_sum over request_prefill_time_seconds_sum. Its decode
  // speed is tokens/s over the running batch at the scrape, too coarse to pin here.
  v1::Assignment a = AssignmentWithMeasuredSpeeds("vllm");
  ASSERT_EQ(a.endpoints_size(), 1);
  EXPECT_NEAR(a.endpoints(0).prefill_tokens_per_second(), 100, 25) << a.DebugString();
}

// Runs switchboard-loadgen for 3 s with 2,000-token prompts and returns how many requests
// each endpoint completed, from its last line ("loadgen: done ... | ADDR=N ADDR=M").
std::map<std::string, int> RunLoadgen(const std::string& cp_addr, const std::string& picker) {
  auto lg = Subprocess::Start("switchboard-loadgen", {"--controlplane", cp_addr, "--pool", "m-7b", "--rps", "4",
                                                      "--duration", "3s", "--max-tokens", "2", "--prompt-chars", "8000",
                                                      "--report-every", "1s", "--picker", picker, "--seed", "3"});
  absl::StatusOr<std::string> line = lg->WaitForLine("loadgen: done", Scaled(absl::Seconds(60)));
  EXPECT_TRUE(line.ok()) << line.status();
  std::map<std::string, int> out;
  if (!line.ok()) return out;
  const size_t bar = line->find('|');
  if (bar == std::string::npos) return out;
  for (absl::string_view kv : absl::StrSplit(absl::string_view(*line).substr(bar + 1), ' ', absl::SkipEmpty())) {
    const size_t eq = kv.rfind('=');
    int n = 0;
    if (eq != absl::string_view::npos && absl::SimpleAtoi(kv.substr(eq + 1), &n))
      out[std::string(kv.substr(0, eq))] = n;
  }
  return out;
}

// The size-aware picker end to end: the agent measures two servers that differ only in
// prefill speed (4,000 against 800 prompt tokens/s), the control plane passes the speeds
// on, and loadgen --picker size-aware sends long prompts to the fast one; the weighted
// pick (what a proxy does) splits them by weight.
TEST(SizeAwarePickingTest, LongPromptsGoToTheServerThatPrefillsFast) {
  auto cp = Subprocess::Start("switchboard-controlplane",
                              {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "", "--insecure"});
  auto port = cp->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string cp_addr = absl::StrCat("127.0.0.1:", *port);
  std::vector<std::unique_ptr<Subprocess>> servers;
  std::vector<int> ports;
  for (const char* prefill : {"4000", "800"}) {
    servers.push_back(Subprocess::Start(
        "switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m-7b", "--slots", "4", "--tokens-per-second",
                                "50", "--prefill-tokens-per-second", prefill}));
    auto sp = servers.back()->WaitForPort("http listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(sp.ok()) << sp.status();
    ports.push_back(*sp);
  }
  const std::string fast = absl::StrCat("127.0.0.1:", ports[0]), slow = absl::StrCat("127.0.0.1:", ports[1]);
  auto agent = Subprocess::Start(
      "switchboard-agent",
      {"--controlplane", cp_addr, "--backend", absl::StrCat("llamacpp=http://", fast), "--backend",
       absl::StrCat("llamacpp=http://", slow), "--node-id", "n1", "--report-interval", "200ms", "--insecure"});
  Subscriber sub(cp_addr, {"m-7b"});
  // Two rounds of requests with 400-token prompts to each (0.1 s and 0.5 s of prefill), so
  // that both prefill speeds get measured.
  for (int round = 0; round < 2; ++round) {
    std::vector<std::thread> load;
    for (int p : ports) SendChatCompletions(p, 2, 2, &load, 1600);
    for (auto& t : load) t.join();
  }
  auto prefill_of = [](const v1::Assignment& a, const std::string& address) {
    for (const auto& ep : a.endpoints()) {
      if (ep.address() == address) return ep.prefill_tokens_per_second();
    }
    return 0.0;
  };
  v1::Assignment a;
  ASSERT_TRUE(sub.WaitFor(
      "m-7b",
      [&](const v1::Assignment& x) { return prefill_of(x, slow) > 0 && prefill_of(x, fast) > 2 * prefill_of(x, slow); },
      Scaled(absl::Seconds(15)), &a))
      << a.DebugString();

  std::map<std::string, int> aware = RunLoadgen(cp_addr, "size-aware");
  std::map<std::string, int> weighted = RunLoadgen(cp_addr, "weighted");
  const int aware_total = aware[fast] + aware[slow], weighted_total = weighted[fast] + weighted[slow];
  ASSERT_GE(aware_total, 4);
  ASSERT_GE(weighted_total, 4);
  const double aware_share = static_cast<double>(aware[fast]) / aware_total;
  std::cout << "to the fast server: size-aware " << aware[fast] << "/" << aware_total << ", weighted " << weighted[fast]
            << "/" << weighted_total << "\n";
  // 2,000 tokens: 0.5 s of prefill on the fast server, 2.5 s on the slow one. The picker
  // draws candidates by weight, which follows free slots, so a busy fast server is
  // occasionally not among the draws: mostly, not always.
  EXPECT_GE(aware_share, 0.75);
  EXPECT_GE(weighted[slow], 2) << "a weighted pick does not look at sizes";
}

}  // namespace
}  // namespace switchboard::testing
