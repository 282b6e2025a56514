// switchboard-picker between a gateway and real servers: a test ext_proc client that
// speaks to the picker as Envoy does (request headers, a FULL_DUPLEX_STREAMED body in
// chunks, the pick read from the header answer and the dynamic metadata, the body taken
// back from the StreamedBodyResponses, then the response headers with the served
// endpoint) and then forwards the request to the endpoint it was given: real fakellm
// servers, agents and control plane over loopback.
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/net.h"
#include "common/notification.h"
#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

namespace ext_proc = ::envoy::service::ext_proc::v3;
using ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;

// Outcomes open a circuit within seconds; the ejection outlasts the test.
constexpr char kConfig[] = R"(
defaults:
  circuit:
    error_window: 3s
    min_requests: 5
    min_checks: 3
    base_ejection: 60s
    max_ejection: 60s
)";
constexpr char kPool[] = "llama";
constexpr char kOtherPool[] = "qwen";

struct Server {
  Server(std::string m, int n, double p) : model(std::move(m)), slots(n), prefill(p) {}
  std::string model;
  int slots;
  double prefill;  // Tokens per second.
  std::unique_ptr<Subprocess> process;
  int port = 0;
  std::unique_ptr<Subprocess> agent;
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
};

// What one request went through.
struct Exchanged {
  int immediate = 0;  // Status of an ImmediateResponse, else 0.
  std::string retry_after;
  std::string ratelimit_limit;         // x-ratelimit-limit of an ImmediateResponse.
  std::vector<std::string> endpoints;  // x-gateway-destination-endpoint, split.
  std::string served;                  // The endpoint that answered.
  int status = 0;                      // Its HTTP status.
  std::string error;                   // A protocol violation the client saw.
  std::string reason;                  // x-switchboard-pick (the picker runs --debug-header).
};

std::string SetHeader(const ext_proc::CommonResponse& c, const std::string& key) {
  for (const auto& o : c.header_mutation().set_headers()) {
    if (o.header().key() == key) return o.header().raw_value();
  }
  return "";
}

// One request as Envoy's ext_proc filter (request and response headers SEND, request
// body FULL_DUPLEX_STREAMED, trailers none) and its router would carry it.
Exchanged SendThroughPicker(ext_proc::ExternalProcessor::Stub* stub, const std::string& model, int prompt_chars,
                            bool forward = true,
                            const std::vector<std::pair<std::string, std::string>>& extra_headers = {}) {
  Exchanged out;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = stub->Process(&ctx);
  const std::string body = absl::StrCat(R"({"model":")", model, R"(","messages":[{"role":"user","content":")",
                                        std::string(prompt_chars, 'x'), R"("}],"max_tokens":2})");
  ext_proc::ProcessingRequest h;
  for (auto [k, v] : {std::pair<const char*, const char*>{":method", "POST"},
                      {":path", "/v1/chat/completions"},
                      {"content-type", "application/json"}}) {
    auto* hv = h.mutable_request_headers()->mutable_headers()->add_headers();
    hv->set_key(k);
    hv->set_raw_value(v);
  }
  for (const auto& [k, v] : extra_headers) {
    auto* hv = h.mutable_request_headers()->mutable_headers()->add_headers();
    hv->set_key(k);
    hv->set_raw_value(v);
  }
  h.mutable_protocol_config()->set_request_body_mode(ProcessingMode::FULL_DUPLEX_STREAMED);
  stream->Write(h);
  const size_t half = body.size() / 2;
  ext_proc::ProcessingRequest b1, b2;
  b1.mutable_request_body()->set_body(body.substr(0, half));
  b2.mutable_request_body()->set_body(body.substr(half));
  b2.mutable_request_body()->set_end_of_stream(true);
  stream->Write(b1);
  stream->Write(b2);

  ext_proc::ProcessingResponse r;
  auto finish = [&] {
    stream->WritesDone();
    ext_proc::ProcessingResponse extra;
    while (stream->Read(&extra)) {
    }
    grpc::Status s = stream->Finish();
    if (!s.ok() && out.error.empty()) out.error = s.error_message();
    return out;
  };
  if (!stream->Read(&r)) {
    out.error = "stream ended before an answer";
    return finish();
  }
  if (r.has_immediate_response()) {
    out.immediate = r.immediate_response().status().code();
    for (const auto& o : r.immediate_response().headers().set_headers()) {
      if (o.header().key() == "retry-after") out.retry_after = o.header().raw_value();
      if (o.header().key() == "x-ratelimit-limit") out.ratelimit_limit = o.header().raw_value();
    }
    return finish();
  }
  if (!r.has_request_headers()) {
    out.error = "first answer is not to the request headers: " + r.ShortDebugString();
    return finish();
  }
  const std::string value = SetHeader(r.request_headers().response(), "x-gateway-destination-endpoint");
  out.reason = SetHeader(r.request_headers().response(), "x-switchboard-pick");
  const auto& lb = r.dynamic_metadata().fields().at("envoy.lb").struct_value().fields();
  if (lb.at("x-gateway-destination-endpoint").string_value() != value) out.error = "header and metadata differ";
  out.endpoints = absl::StrSplit(value, ',');
  std::string echoed;
  while (stream->Read(&r)) {
    const auto& s = r.request_body().response().body_mutation().streamed_response();
    echoed += s.body();
    if (s.end_of_stream()) break;
  }
  if (echoed != body) out.error = "the body handed back differs from the body sent";
  if (!forward) return finish();

  // The router: the pick, then the fallbacks in order when a connection fails.
  for (const std::string& ep : out.endpoints) {
    std::vector<std::string> hp = absl::StrSplit(ep, ':');
    httplib::Client http(hp[0], std::stoi(hp[1]));
    http.set_read_timeout(std::chrono::seconds(10));
    auto res = http.Post("/v1/chat/completions", body, "application/json");
    if (!res) continue;
    out.served = ep;
    out.status = res->status;
    break;
  }
  ext_proc::ProcessingRequest rh;
  auto* st = rh.mutable_response_headers()->mutable_headers()->add_headers();
  st->set_key(":status");
  st->set_raw_value(std::to_string(out.status == 0 ? 503 : out.status));
  rh.mutable_response_headers()->set_end_of_stream(true);
  (*(*rh.mutable_metadata_context()->mutable_filter_metadata())["envoy.lb"]
        .mutable_fields())["x-gateway-destination-endpoint-served"]
      .set_string_value(out.served);
  stream->Write(rh);
  if (!stream->Read(&r) || !r.has_response_headers()) out.error = "no answer to the response headers";
  return finish();
}

// Requests picked and still in flight: ext_proc streams held open after the pick (never
// forwarded), as a gateway holds them while the server answers. Cancelled on destruction.
class HeldRequests {
 public:
  ~HeldRequests() { Release(); }
  // Opens a stream and sends one request for `model`; the picker's first answer, or an
  // empty response when the stream ended.
  ext_proc::ProcessingResponse Hold(ext_proc::ExternalProcessor::Stub* stub, const std::string& model) {
    contexts_.push_back(std::make_unique<grpc::ClientContext>());
    streams_.push_back(stub->Process(contexts_.back().get()));
    auto& s = streams_.back();
    ext_proc::ProcessingRequest h;
    auto* hv = h.mutable_request_headers()->mutable_headers()->add_headers();
    hv->set_key(":path");
    hv->set_raw_value("/v1/completions");
    h.mutable_protocol_config()->set_request_body_mode(ProcessingMode::FULL_DUPLEX_STREAMED);
    s->Write(h);
    ext_proc::ProcessingRequest b;
    b.mutable_request_body()->set_body(absl::StrCat(R"({"model":")", model, R"(","prompt":"hi"})"));
    b.mutable_request_body()->set_end_of_stream(true);
    s->Write(b);
    ext_proc::ProcessingResponse r;
    if (!s->Read(&r)) r.Clear();
    return r;
  }
  void Release() {
    for (auto& c : contexts_) c->TryCancel();
    for (auto& s : streams_) (void)s->Finish();
    streams_.clear();
    contexts_.clear();
  }

 private:
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts_;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<ext_proc::ProcessingRequest, ext_proc::ProcessingResponse>>>
      streams_;
};

// The value of an unlabelled metric on the Prometheus page at 127.0.0.1:port, or -1.
double MetricValue(int port, const std::string& name) {
  httplib::Client http("127.0.0.1", port);
  auto res = http.Get("/metrics");
  if (!res || res->status != 200) return -1;
  for (absl::string_view line : absl::StrSplit(res->body, '\n')) {
    if (absl::ConsumePrefix(&line, name + " ")) return std::stod(std::string(line));
  }
  return -1;
}

class PickerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("picker_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const std::string config = (dir_ / "pools.yaml").string();
    std::ofstream(config) << kConfig;
    cp_ = Subprocess::Start("switchboard-controlplane",
                            {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", (dir_ / "history.db").string(),
                             "--config", config, "--insecure"});
    auto port = cp_->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(port.ok()) << port.status();
    cp_addr_ = absl::StrCat("127.0.0.1:", *port);
    // One fast-prefill server and two slow ones in the pool; one server of another model.
    servers_.emplace_back(kPool, 2, 20000);
    servers_.emplace_back(kPool, 2, 2000);
    servers_.emplace_back(kPool, 2, 2000);
    servers_.emplace_back(kOtherPool, 2, 2000);
    for (size_t i = 0; i < servers_.size(); ++i) {
      Server& s = servers_[i];
      s.process = Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", s.model, "--slots",
                                                            absl::StrCat(s.slots), "--tokens-per-second", "200",
                                                            "--prefill-tokens-per-second", absl::StrCat(s.prefill)});
      auto p = s.process->WaitForPort("http listening on port ", Scaled(absl::Seconds(20)));
      ASSERT_TRUE(p.ok()) << p.status();
      s.port = *p;
      // Active checks off: the outcomes the picker reports are the only error evidence.
      s.agent = Subprocess::Start(
          "switchboard-agent",
          {"--controlplane", cp_addr_, "--backend", absl::StrCat("llamacpp=http://", s.address()), "--node-id",
           absl::StrCat("node-", i), "--report-interval", "200ms", "--active-check", "off", "--insecure"});
    }
    sub_ = std::make_unique<Subscriber>(cp_addr_, std::vector<std::string>{kPool, kOtherPool});
    ASSERT_TRUE(sub_->WaitFor(
        kPool, [](const v1::Assignment& a) { return a.endpoints_size() == 3; }, Scaled(absl::Seconds(15))));
    StartPicker();
  }

  void StartPicker() {
    picker_ = Subprocess::Start(
        "switchboard-picker", {"--insecure", "--controlplane", cp_addr_, "--listen", "127.0.0.1:0", "--health-listen",
                               "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--pool", kPool, "--pool", kOtherPool,
                               "--outcome-interval", "200ms", "--shed-occupancy", "2", "--debug-header"});
    ASSERT_NE(picker_, nullptr);
    auto metrics = picker_->WaitForPort("metrics listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    picker_metrics_port_ = *metrics;
    auto port = picker_->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(port.ok()) << port.status();
    auto health = picker_->WaitForPort("grpc health listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(health.ok()) << health.status();
    picker_port_ = *port;
    health_port_ = *health;
    stub_ = ext_proc::ExternalProcessor::NewStub(MakeChannel(absl::StrCat("127.0.0.1:", picker_port_)));
    ASSERT_TRUE(WaitFor([&] { return Serving(health_port_, "readiness"); }, Scaled(absl::Seconds(15))));
  }

  // grpc.health.v1.Health/Check for `service` over a generic call (the project compiles
  // no health proto): true when SERVING.
  bool Serving(int port, const std::string& service) {
    grpc::GenericStub stub(MakeChannel(absl::StrCat("127.0.0.1:", port)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    std::string bytes = absl::StrCat(std::string(1, '\x0a'), std::string(1, static_cast<char>(service.size())),
                                     service);  // HealthCheckRequest{service}: field 1, length-delimited.
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    Notification done;
    stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                   [&](grpc::Status st) {
                     status = st;
                     done.Notify();
                   });
    done.WaitForNotification();
    if (!status.ok()) return false;
    std::vector<grpc::Slice> slices;
    (void)response.Dump(&slices);
    std::string out;
    for (auto& sl : slices) out.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    return out.size() == 2 && out[0] == 0x08 && out[1] == 1;  // status (field 1) = SERVING
  }

  // Runs requests straight to every llama server until the assignment carries measured
  // prefill speeds for all three.
  void MeasureSpeeds() {
    for (int round = 0; round < 2; ++round) {
      std::vector<std::thread> load;
      for (int i = 0; i < 3; ++i) SendChatCompletions(servers_[i].port, 1, 2, &load, 4000);
      for (auto& t : load) t.join();
    }
    v1::Assignment a;
    ASSERT_TRUE(sub_->WaitFor(
        kPool,
        [](const v1::Assignment& x) {
          if (x.endpoints_size() != 3) return false;
          for (const auto& ep : x.endpoints()) {
            if (ep.prefill_tokens_per_second() <= 0 || ep.slots_free() != ep.slots_total()) return false;
          }
          return true;
        },
        Scaled(absl::Seconds(15)), &a))
        << a.DebugString();
  }

  void TearDown() override {
    picker_.reset();
    sub_.reset();
    for (Server& s : servers_) {
      s.agent.reset();
      s.process.reset();
    }
    cp_.reset();
  }

  std::filesystem::path dir_;
  std::unique_ptr<Subprocess> cp_;
  std::string cp_addr_;
  std::vector<Server> servers_;
  std::unique_ptr<Subscriber> sub_;
  std::unique_ptr<Subprocess> picker_;
  int picker_port_ = 0, health_port_ = 0, picker_metrics_port_ = 0;
  std::unique_ptr<ext_proc::ExternalProcessor::Stub> stub_;
};

TEST_F(PickerTest, RoutesByModelAndPromptSizeAndAnswersHealth) {
  for (const char* service : {"liveness", "readiness", "envoy.service.ext_proc.v3.ExternalProcessor"}) {
    EXPECT_TRUE(Serving(health_port_, service)) << service;
    EXPECT_TRUE(Serving(picker_port_, service)) << service;
  }
  MeasureSpeeds();
  // Long prompts (2,000 tokens): the fast-prefill server, but for the rounds where the
  // weighted draws miss it (the control plane lowers the weight of a server busy with the
  // previous request; a third would go there by chance).
  int on_fast = 0;
  std::string misses;
  for (int i = 0; i < 10; ++i) {
    Exchanged x = SendThroughPicker(stub_.get(), kPool, 8000);
    ASSERT_TRUE(x.error.empty()) << x.error;
    ASSERT_EQ(x.status, 200);
    ASSERT_EQ(x.endpoints.size(), 3u);  // The pick and two fallbacks, all of the pool.
    for (const std::string& ep : x.endpoints) EXPECT_NE(ep, servers_[3].address());
    on_fast += x.served == servers_[0].address();
    if (x.served != servers_[0].address()) misses += x.reason + "\n";
  }
  EXPECT_GE(on_fast, 6) << misses << sub_->Seen(kPool).back().DebugString();
  // sbctl explain --request: the last picks as the picker scored them, through the
  // control plane (the picker reports them on its ShareInFlight stream).
  std::string explained;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto [rc, out] = RunSbctl(cp_addr_, "explain llama --request --picks 2");
        explained = out;
        return rc == 0 && out.find("picked: ") != std::string::npos;
      },
      Scaled(absl::Seconds(5))))
      << explained;
  for (const char* expected :
       {"EXPECTED TTFT", "IN FLIGHT", "FREE SLOTS", "route, 200", "of 8 weighted draws", "of 2"}) {
    EXPECT_NE(explained.find(expected), std::string::npos) << expected << " in:\n" << explained;
  }
  for (int i = 0; i < 3; ++i) EXPECT_NE(explained.find(servers_[i].address()), std::string::npos) << explained;
  EXPECT_EQ(explained.find(servers_[3].address()), std::string::npos) << explained;  // Another pool's.
  // Another model: its own pool only.
  for (int i = 0; i < 3; ++i) {
    Exchanged x = SendThroughPicker(stub_.get(), kOtherPool, 40);
    ASSERT_TRUE(x.error.empty()) << x.error;
    EXPECT_EQ(x.endpoints, std::vector<std::string>{servers_[3].address()});
    EXPECT_EQ(x.status, 200);
  }
  // A model no pool serves: 503.
  Exchanged none = SendThroughPicker(stub_.get(), "no-such-model", 40);
  EXPECT_EQ(none.immediate, 503) << none.error;

  // Only READY endpoints: a server whose agent drains it (SIGTERM) gets nothing once the
  // assignment says so, even for short prompts that any server would take.
  const std::string draining = servers_[2].address();
  servers_[2].agent->Signal(SIGTERM);
  ASSERT_TRUE(sub_->WaitFor(
      kPool,
      [&](const v1::Assignment& a) {
        for (const auto& ep : a.endpoints()) {
          if (ep.address() == draining) return ep.state() != v1::ENDPOINT_STATE_READY;
        }
        return true;  // Gone.
      },
      Scaled(absl::Seconds(10))));
  // The picker has that assignment once a pick's list (every eligible endpoint: the pick
  // and two fallbacks) leaves the server out; from then on, nothing goes there.
  ASSERT_TRUE(WaitFor(
      [&] {
        Exchanged x = SendThroughPicker(stub_.get(), kPool, 40, /*forward=*/false);
        return x.error.empty() && std::count(x.endpoints.begin(), x.endpoints.end(), draining) == 0;
      },
      Scaled(absl::Seconds(2))));
  std::map<std::string, int> served;
  for (int i = 0; i < 12; ++i) {
    Exchanged x = SendThroughPicker(stub_.get(), kPool, 40);
    ASSERT_TRUE(x.error.empty()) << x.error;
    EXPECT_EQ(std::count(x.endpoints.begin(), x.endpoints.end(), draining), 0);
    ++served[x.served];
  }
  EXPECT_EQ(served.count(draining), 0u);
}

TEST_F(PickerTest, ShedsWith429PastTheBound) {
  // 6 slots in the pool, bound 2: up to twelve requests in flight are admitted (held
  // open, not forwarded: the picker counts them until their streams end); past that, shed.
  Exchanged x;
  int routed = 0;
  for (int i = 0; i < 20; ++i) {
    x = SendThroughPicker(stub_.get(), kPool, 40, /*forward=*/false);
    if (x.immediate != 0) break;
    ++routed;
  }
  // Requests whose streams ended are over: what is in flight is nothing, so nothing is
  // shed yet. Hold streams open instead.
  EXPECT_EQ(routed, 20);
  HeldRequests held;
  for (int i = 0; i < 13; ++i) {
    ext_proc::ProcessingResponse r = held.Hold(stub_.get(), kPool);
    ASSERT_TRUE(r.has_request_headers()) << "shed at " << i << " in flight: " << r.ShortDebugString();
  }
  x = SendThroughPicker(stub_.get(), kPool, 40, /*forward=*/false);
  EXPECT_EQ(x.immediate, 429);
  EXPECT_EQ(x.retry_after, "1");
  held.Release();
  // The held requests are over: routed again.
  EXPECT_TRUE(WaitFor([&] { return SendThroughPicker(stub_.get(), kPool, 40, false).immediate == 0; },
                      Scaled(absl::Seconds(5))));
}

TEST_F(PickerTest, ServedErrorsOpenTheCircuitAndItGetsNothingWithin2s) {
  // The second server starts failing every completion; only the picker sees it.
  const Server& failing = servers_[1];
  httplib::Client admin("127.0.0.1", failing.port);
  ASSERT_TRUE(admin.Post("/admin/fail-rate", "1", "text/plain"));
  absl::Time opened = absl::InfinitePast();
  const absl::Time deadline = absl::Now() + Scaled(absl::Seconds(20));
  int errors = 0, after_2s = 0;
  while (absl::Now() < deadline) {
    Exchanged x = SendThroughPicker(stub_.get(), kPool, 40);
    ASSERT_TRUE(x.error.empty()) << x.error;
    errors += x.status == 500;
    if (opened == absl::InfinitePast()) {
      v1::Assignment a;
      const bool open = sub_->WaitFor(
          kPool,
          [&](const v1::Assignment& y) {
            for (const auto& ep : y.endpoints()) {
              if (ep.address() == failing.address()) return ep.circuit() == v1::CIRCUIT_STATE_OPEN;
            }
            return false;
          },
          absl::ZeroDuration(), &a);
      if (open) opened = absl::Now();
      continue;
    }
    if (absl::Now() - opened < absl::Seconds(2)) continue;
    // Two seconds after the control plane opened the circuit: nothing goes there.
    EXPECT_EQ(std::count(x.endpoints.begin(), x.endpoints.end(), failing.address()), 0);
    if (++after_2s == 20) break;
  }
  EXPECT_GT(errors, 0);
  ASSERT_NE(opened, absl::InfinitePast()) << "the circuit never opened on the picker's outcomes";
  EXPECT_EQ(after_2s, 20);

  // A restart loses nothing but the picker's in-flight counts: ready again from the
  // control plane's assignment, and the open circuit is still honored.
  picker_->Signal(SIGKILL);
  picker_->Wait();
  StartPicker();
  for (int i = 0; i < 10; ++i) {
    Exchanged x = SendThroughPicker(stub_.get(), kPool, 40);
    ASSERT_TRUE(x.error.empty()) << x.error;
    EXPECT_EQ(x.status, 200);
    EXPECT_EQ(std::count(x.endpoints.begin(), x.endpoints.end(), failing.address()), 0);
  }
}

// Priority classes, turned on by reloading the control plane's configuration (SIGHUP):
// the assignment carries them, and the picker admits each class only while the pool's
// busy share (here: requests the picker holds in flight) leaves the more important
// classes' reserve free. 6 slots: batch may fill 3, standard 4.8, interactive all.
TEST_F(PickerTest, PriorityClassesFromTheReloadedConfig) {
  std::ofstream(dir_ / "pools.yaml") << kConfig << R"(
  classes:
    - {name: interactive, share: 1.0, tenants: [acme]}
    - {name: standard, share: 0.8, default: true}
    - {name: batch, share: 0.5, tenants: [free-tier]}
)";
  cp_->Signal(SIGHUP);
  v1::Assignment a;
  ASSERT_TRUE(sub_->WaitFor(
      kPool,
      [](const v1::Assignment& x) {
        // Every endpoint routable: batch's limit is half of the 6 slots.
        return x.priority().classes_size() == 3 && x.priority().classes(2).limit_slots() == 3;
      },
      Scaled(absl::Seconds(15)), &a))
      << a.DebugString();
  EXPECT_EQ(a.priority().default_class(), "standard");
  EXPECT_EQ(a.priority().tenant_classes().at("free-tier"), "batch");
  EXPECT_EQ(a.priority().classes(0).name(), "interactive");
  ASSERT_TRUE(WaitFor(
      [&] {
        // The picker has the classes once a batch request's pick names its class.
        Exchanged x = SendThroughPicker(stub_.get(), kPool, 40, false, {{"x-priority", "batch"}});
        return x.reason.find("class batch") != std::string::npos;
      },
      Scaled(absl::Seconds(10))));

  using Stream = grpc::ClientReaderWriter<ext_proc::ProcessingRequest, ext_proc::ProcessingResponse>;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<Stream>> held;
  // Opens a request of `tenant` and holds it (routed, not finished); false when refused.
  auto hold = [&](const std::string& tenant) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    held.push_back(stub_->Process(contexts.back().get()));
    Stream& s = *held.back();
    ext_proc::ProcessingRequest h;
    for (auto [k, v] : {std::pair<std::string, std::string>{":path", "/v1/completions"}, {"x-tenant", tenant}}) {
      auto* hv = h.mutable_request_headers()->mutable_headers()->add_headers();
      hv->set_key(k);
      hv->set_raw_value(v);
    }
    h.mutable_protocol_config()->set_request_body_mode(ProcessingMode::FULL_DUPLEX_STREAMED);
    s.Write(h);
    ext_proc::ProcessingRequest b;
    b.mutable_request_body()->set_body(R"({"model":"llama","prompt":"hi"})");
    b.mutable_request_body()->set_end_of_stream(true);
    s.Write(b);
    ext_proc::ProcessingResponse r;
    return s.Read(&r) && !r.has_immediate_response();
  };
  auto admitted = [&](const std::vector<std::pair<std::string, std::string>>& headers) {
    Exchanged x = SendThroughPicker(stub_.get(), kPool, 40, false, headers);
    EXPECT_TRUE(x.error.empty()) << x.error;
    if (x.immediate == 429) {
      EXPECT_EQ(x.retry_after, "1");
    }
    return x.immediate == 0;
  };

  // Three of six slots held by the top class: batch (tenant or header) is refused, the
  // rest admitted.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(hold("acme")) << i;
  EXPECT_FALSE(admitted({{"x-tenant", "free-tier"}}));
  EXPECT_FALSE(admitted({{"x-priority", "batch"}}));
  EXPECT_FALSE(admitted({{"x-priority", "interactive"}, {"x-tenant", "free-tier"}})) << "capped at the tenant's";
  EXPECT_TRUE(admitted({}));  // Default: standard.
  EXPECT_TRUE(admitted({{"x-priority", "interactive"}}));
  // Five held: standard is refused too; the top class is still admitted, past the pool's
  // slots up to the pool's own bound (--shed-occupancy 2).
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(hold("acme")) << i;
  EXPECT_FALSE(admitted({}));
  EXPECT_FALSE(admitted({{"x-priority", "standard"}}));
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(hold("acme")) << i;  // 9 of 6 slots.
  EXPECT_TRUE(admitted({{"x-tenant", "acme"}}));

  for (auto& c : contexts) c->TryCancel();
  for (auto& s : held) (void)s->Finish();
  // The held requests are over: batch is admitted again.
  EXPECT_TRUE(WaitFor([&] { return admitted({{"x-priority", "batch"}}); }, Scaled(absl::Seconds(5))));
}

// Two replicas share their requests in flight through the control plane. The pool has 6
// slots and sheds past 2 per slot (12 in flight); the first replica holds 13, and the
// second, which has sent nothing itself, sheds its first request. Without sharing it
// would route it: its own count is 0, and --replicas 2 doubles nothing.
TEST_F(PickerTest, ReplicasSeeEachOthersRequestsInFlight) {
  auto second =
      Subprocess::Start("switchboard-picker", {"--insecure", "--controlplane", cp_addr_, "--listen", "127.0.0.1:0",
                                               "--metrics-listen", "127.0.0.1:0", "--pool", kPool, "--shed-occupancy",
                                               "2", "--replicas", "2", "--share-interval", "20ms"});
  auto metrics = second->WaitForPort("metrics listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  auto port = second->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(port.ok()) << port.status();
  auto stub = ext_proc::ExternalProcessor::NewStub(MakeChannel(absl::StrCat("127.0.0.1:", *port)));
  ASSERT_TRUE(second->WaitForLine("ready: ", Scaled(absl::Seconds(15))).ok());
  // Each hears from the other.
  ASSERT_TRUE(
      WaitFor([&] { return MetricValue(*metrics, "switchboard_picker_share_peers") == 1; }, Scaled(absl::Seconds(10))));
  Exchanged x = SendThroughPicker(stub.get(), kPool, 40, /*forward=*/false);
  ASSERT_EQ(x.immediate, 0) << x.error;
  ASSERT_EQ(x.endpoints.size(), 3u);

  HeldRequests held;
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(held.Hold(stub_.get(), kPool).has_request_headers()) << i;
  // The 13th passes only once the first replica has heard that the second's requests
  // above are over (a share lags by an interval, a slow one under the sanitizers).
  ASSERT_TRUE(
      WaitFor([&] { return MetricValue(picker_metrics_port_, "switchboard_picker_peer_requests_in_flight") == 0; },
              absl::Seconds(5)));
  ASSERT_TRUE(held.Hold(stub_.get(), kPool).has_request_headers());
  ASSERT_TRUE(WaitFor([&] { return MetricValue(*metrics, "switchboard_picker_peer_requests_in_flight") == 13; },
                      Scaled(absl::Seconds(2))))
      << MetricValue(*metrics, "switchboard_picker_peer_requests_in_flight");
  x = SendThroughPicker(stub.get(), kPool, 40, /*forward=*/false);
  EXPECT_EQ(x.immediate, 429) << x.error << " " << absl::StrJoin(x.endpoints, ",");
  // Once they are over, the second replica routes again.
  held.Release();
  EXPECT_TRUE(WaitFor([&] { return SendThroughPicker(stub.get(), kPool, 40, false).immediate == 0; },
                      Scaled(absl::Seconds(2))));
  EXPECT_TRUE(WaitFor([&] { return MetricValue(*metrics, "switchboard_picker_peer_requests_in_flight") == 0; },
                      Scaled(absl::Seconds(2))));

  // The control plane forgets a replica whose stream ends: with the first one gone, the
  // second hears from nobody.
  picker_->Signal(SIGKILL);
  picker_->Wait();
  EXPECT_TRUE(
      WaitFor([&] { return MetricValue(*metrics, "switchboard_picker_share_peers") == 0; }, Scaled(absl::Seconds(5))));
}

// The picker applies the control plane's global rate limits (rate_limits: of its
// --config) through the Rate Limit Service: per tenant and model in requests, per tenant
// in tokens, the tokens read from the response body's usage after the response.
TEST_F(PickerTest, RateLimitsFromTheControlPlane) {
  std::ofstream(dir_ / "pools.yaml") << kConfig << R"(
rate_limits:
  domain: llm
  rules:
    - {name: per-tenant-model, match: {tenant: "*", model: "*"}, requests_per_hour: 3}
    - {name: tenant-tokens, match: {tenant: "*"}, tokens_per_hour: 100}
)";
  cp_->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return RunSbctl(cp_addr_, "limits").second.find("domain llm") != std::string::npos; },
                      Scaled(absl::Seconds(10)), absl::Milliseconds(100)));
  auto start = [&](const std::string& domain, const std::string& mode) {
    auto p = Subprocess::Start("switchboard-picker", {"--insecure", "--controlplane", cp_addr_, "--listen",
                                                      "127.0.0.1:0", "--pool", kPool, "--shed-occupancy", "2",
                                                      "--ratelimit-domain", domain, "--ratelimit-failure-mode", mode});
    return p;
  };
  auto picker = start("llm", "allow");
  auto port = picker->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_TRUE(picker->WaitForLine("ready: ", Scaled(absl::Seconds(15))).ok());
  auto stub = ext_proc::ExternalProcessor::NewStub(MakeChannel(absl::StrCat("127.0.0.1:", *port)));

  // Requests: tenant a gets 3 an hour for this model, then 429 with the limit's headers.
  for (int i = 0; i < 3; ++i) {
    Exchanged x = SendThroughPicker(stub.get(), kPool, 10, false, {{"x-tenant", "a"}});
    EXPECT_EQ(x.immediate, 0) << i;
    EXPECT_FALSE(x.endpoints.empty()) << x.error;
  }
  Exchanged refused = SendThroughPicker(stub.get(), kPool, 10, false, {{"x-tenant", "a"}});
  EXPECT_EQ(refused.immediate, 429);
  EXPECT_EQ(refused.ratelimit_limit, "3, 3;w=3600");
  EXPECT_GT(std::stoi(refused.retry_after.empty() ? "0" : refused.retry_after), 3500);
  // Another tenant is counted apart.
  EXPECT_EQ(SendThroughPicker(stub.get(), kPool, 10, false, {{"x-tenant", "b"}}).immediate, 0);

  // Tokens: b's response reports 150 tokens in its usage; b's budget of 100 is spent (b's
  // third request still has request quota: the token limit refuses it).
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stream = stub->Process(&ctx);
    ext_proc::ProcessingRequest h;
    for (auto [k, v] : {std::pair<const char*, const char*>{":method", "POST"},
                        {":path", "/v1/chat/completions"},
                        {"x-gateway-model-name", kPool},
                        {"x-tenant", "b"}}) {
      auto* hv = h.mutable_request_headers()->mutable_headers()->add_headers();
      hv->set_key(k);
      hv->set_raw_value(v);
    }
    h.mutable_request_headers()->set_end_of_stream(true);
    h.mutable_protocol_config()->set_response_body_mode(ProcessingMode::BUFFERED);
    ASSERT_TRUE(stream->Write(h));
    ext_proc::ProcessingResponse r;
    ASSERT_TRUE(stream->Read(&r));
    ASSERT_TRUE(r.has_request_headers()) << r.ShortDebugString();
    ext_proc::ProcessingRequest rh;
    auto* st = rh.mutable_response_headers()->mutable_headers()->add_headers();
    st->set_key(":status");
    st->set_raw_value("200");
    ASSERT_TRUE(stream->Write(rh));
    ASSERT_TRUE(stream->Read(&r));
    ext_proc::ProcessingRequest rb;
    rb.mutable_response_body()->set_body(
        R"({"id":"x","choices":[],"usage":{"prompt_tokens":100,"completion_tokens":50,"total_tokens":150}})");
    rb.mutable_response_body()->set_end_of_stream(true);
    ASSERT_TRUE(stream->Write(rb));
    ASSERT_TRUE(stream->Read(&r));
    EXPECT_TRUE(r.has_response_body()) << r.ShortDebugString();
    stream->WritesDone();
    while (stream->Read(&r)) {
    }
    EXPECT_TRUE(stream->Finish().ok());
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string out = RunSbctl(cp_addr_, "limits").second;
        return out.find("tenant=b") != std::string::npos && out.find("150") != std::string::npos;
      },
      Scaled(absl::Seconds(10)), absl::Milliseconds(50)))
      << RunSbctl(cp_addr_, "limits").second;
  Exchanged over_tokens = SendThroughPicker(stub.get(), kPool, 10, false, {{"x-tenant", "b"}});
  EXPECT_EQ(over_tokens.immediate, 429);
  EXPECT_EQ(over_tokens.ratelimit_limit, "100, 100;w=3600");

  // The Rate Limit Service refusing the call (a domain it does not answer): allow admits,
  // deny refuses.
  for (const std::string mode : {"allow", "deny"}) {
    auto p = start("no-such-domain", mode);
    auto pp = p->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(pp.ok()) << pp.status();
    ASSERT_TRUE(p->WaitForLine("ready: ", Scaled(absl::Seconds(15))).ok());
    auto s = ext_proc::ExternalProcessor::NewStub(MakeChannel(absl::StrCat("127.0.0.1:", *pp)));
    Exchanged x = SendThroughPicker(s.get(), kPool, 10, false, {{"x-tenant", "a"}});
    EXPECT_EQ(x.immediate, mode == "allow" ? 0 : 429) << mode;
  }
}

}  // namespace
}  // namespace switchboard::testing
