// The picker's ext_proc service over real gRPC on loopback, with the rate limits asked of
// an in-process Rate Limit Service (Envoy's RLS v3 messages) that can hold calls: a slow
// rate limit answer holds only the requests that wait for it, never the other picks, and
// a missed deadline follows the failure mode.
#include "picker/ext_proc_service.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "controlplane/policy/admission_proto.h"
#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "gtest/gtest.h"
#include "picker/rate_limit.h"

namespace switchboard::picker {
namespace {

using envoy::service::ratelimit::v3::RateLimitRequest;
using envoy::service::ratelimit::v3::RateLimitResponse;

// Answers at once, except calls whose descriptors name tenant "slow": those are held until
// Release (then OK) or until the server shuts down. Tenant "over" is OVER_LIMIT.
class HoldingRls final : public envoy::service::ratelimit::v3::RateLimitService::CallbackService {
 public:
  grpc::ServerUnaryReactor* ShouldRateLimit(grpc::CallbackServerContext* context, const RateLimitRequest* request,
                                            RateLimitResponse* response) override {
    auto* reactor = context->DefaultReactor();
    std::string tenant;
    for (const auto& d : request->descriptors()) {
      for (const auto& e : d.entries()) {
        if (e.key() == "tenant") tenant = e.value();
      }
    }
    if (tenant == "over") {
      response->set_overall_code(RateLimitResponse::OVER_LIMIT);
      auto* s = response->add_statuses();
      s->set_code(RateLimitResponse::OVER_LIMIT);
      s->mutable_duration_until_reset()->set_seconds(7);
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    response->set_overall_code(RateLimitResponse::OK);
    if (tenant != "slow") {
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    absl::MutexLock lock(&mu_);
    held_.push_back(reactor);
    return reactor;
  }

  int held() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(held_.size());
  }
  bool WaitHeld(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return static_cast<int>(held_.size()) >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
  }
  void Release() {
    std::vector<grpc::ServerUnaryReactor*> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (auto* r : held) r->Finish(grpc::Status::OK);
  }

 private:
  absl::Mutex mu_;
  std::vector<grpc::ServerUnaryReactor*> held_ ABSL_GUARDED_BY(mu_);
};

v1::Assignment Pool() {
  v1::Assignment a;
  a.set_pool("llama");
  a.set_version("v1");
  for (int i = 0; i < 2; ++i) {
    v1::AssignedEndpoint* e = a.add_endpoints();
    e->set_address("10.0.0." + std::to_string(i + 1) + ":8000");
    e->set_node_id("node-" + std::to_string(i));
    e->set_weight(10);
    e->set_state(v1::ENDPOINT_STATE_READY);
    e->set_circuit(v1::CIRCUIT_STATE_CLOSED);
    e->set_slots_total(1000);
    e->set_slots_free(1000);
  }
  return a;
}

ext_proc::ProcessingRequest Headers(const std::string& tenant) {
  ext_proc::ProcessingRequest r;
  auto* h = r.mutable_request_headers();
  h->set_end_of_stream(true);
  const std::vector<std::pair<std::string, std::string>> headers = {
      {":path", "/v1/chat/completions"}, {":method", "POST"}, {"x-gateway-model-name", "llama"}, {"x-tenant", tenant}};
  for (const auto& [k, v] : headers) {
    auto* hv = h->mutable_headers()->add_headers();
    hv->set_key(k);
    hv->set_raw_value(v);
  }
  return r;
}

// One request on its own ext_proc stream, as Envoy sends a bodiless one.
class Stream {
 public:
  Stream(ext_proc::ExternalProcessor::Stub* stub, const std::string& tenant, absl::Duration deadline) {
    context_.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMicroseconds(deadline));
    stream_ = stub->Process(&context_);
    written_ = stream_->Write(Headers(tenant));
  }
  // The first answer; false when the stream ended (or missed its deadline) first.
  bool Read(ext_proc::ProcessingResponse* response) { return written_ && stream_->Read(response); }
  void Close() {
    stream_->WritesDone();
    ext_proc::ProcessingResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    (void)stream_->Finish();
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<ext_proc::ProcessingRequest, ext_proc::ProcessingResponse>> stream_;
  bool written_ = false;
};

std::string Picked(const ext_proc::ProcessingResponse& r) {
  if (!r.has_request_headers()) return "";
  for (const auto& h : r.request_headers().response().header_mutation().set_headers()) {
    if (h.header().key() == kDestinationHeader) return h.header().raw_value();
  }
  return "";
}

class ExtProcServiceTest : public ::testing::Test {
 protected:
  void Start(absl::Duration rls_timeout, bool fail_open) {
    grpc::ServerBuilder rls_builder;
    int rls_port = 0;
    rls_builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &rls_port);
    rls_builder.RegisterService(&rls_);
    rls_server_ = rls_builder.BuildAndStart();
    ASSERT_NE(rls_server_, nullptr);
    rate_limits_ = std::make_unique<RateLimitClient>(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(rls_port), grpc::InsecureChannelCredentials()), "llm",
        rls_timeout, fail_open);
    options_.rate_limits = rate_limits_.get();
    ASSERT_TRUE(table_.Apply(Pool()).ok());
    service_ = std::make_unique<ExtProcService>(&table_, &options_, metrics_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = ext_proc::ExternalProcessor::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    rls_.Release();
    table_.CloseQueues();
    if (server_) server_->Shutdown();
    if (rls_server_) rls_server_->Shutdown();
  }

  HoldingRls rls_;
  PoolTable table_{{}, client::PickPolicy(), 1};
  std::unique_ptr<PickerMetrics> metrics_ = MakePickerMetrics();
  ExchangeOptions options_;
  std::unique_ptr<RateLimitClient> rate_limits_;
  std::unique_ptr<grpc::Server> rls_server_, server_;
  std::unique_ptr<ExtProcService> service_;
  std::unique_ptr<ext_proc::ExternalProcessor::Stub> stub_;
};

// More held rate limit calls than gRPC has threads: were a pick to wait on a thread for
// its answer, the fast requests could not be answered until the slow ones were released.
TEST_F(ExtProcServiceTest, SlowRateLimitAnswerHoldsOnlyItsOwnRequest) {
  ASSERT_NO_FATAL_FAILURE(Start(absl::Seconds(60), /*fail_open=*/true));
  constexpr int kSlow = 16;
  std::vector<std::unique_ptr<Stream>> slow;
  for (int i = 0; i < kSlow; ++i) slow.push_back(std::make_unique<Stream>(stub_.get(), "slow", absl::Seconds(60)));
  ASSERT_TRUE(rls_.WaitHeld(kSlow)) << rls_.held();

  for (int i = 0; i < 5; ++i) {
    Stream fast(stub_.get(), "fast", absl::Seconds(10));
    ext_proc::ProcessingResponse r;
    ASSERT_TRUE(fast.Read(&r)) << "a fast pick waited on the held rate limit calls";
    EXPECT_NE(Picked(r), "") << r.ShortDebugString();
    fast.Close();
  }
  Stream over(stub_.get(), "over", absl::Seconds(10));
  ext_proc::ProcessingResponse refused;
  ASSERT_TRUE(over.Read(&refused));
  ASSERT_TRUE(refused.has_immediate_response()) << refused.ShortDebugString();
  EXPECT_EQ(refused.immediate_response().status().code(), 429);
  over.Close();
  EXPECT_EQ(rls_.held(), kSlow);

  // Released, the slow ones get their picks.
  rls_.Release();
  for (auto& s : slow) {
    ext_proc::ProcessingResponse r;
    ASSERT_TRUE(s->Read(&r));
    EXPECT_NE(Picked(r), "") << r.ShortDebugString();
    s->Close();
  }
  EXPECT_EQ(metrics_->rate_limited->Value(), 1);
  EXPECT_EQ(metrics_->rate_limit_errors->Value(), 0);
}

// A rate limit answer later than --ratelimit-timeout: allow routes, deny answers 429.
TEST_F(ExtProcServiceTest, MissedDeadlineAllows) {
  ASSERT_NO_FATAL_FAILURE(Start(absl::Milliseconds(100), /*fail_open=*/true));
  Stream s(stub_.get(), "slow", absl::Seconds(10));
  ext_proc::ProcessingResponse r;
  ASSERT_TRUE(s.Read(&r));
  EXPECT_NE(Picked(r), "") << r.ShortDebugString();
  s.Close();
  EXPECT_EQ(metrics_->rate_limit_errors->Value(), 1);
  EXPECT_EQ(metrics_->routed->Value(), 1);
}

TEST_F(ExtProcServiceTest, MissedDeadlineDenies) {
  ASSERT_NO_FATAL_FAILURE(Start(absl::Milliseconds(100), /*fail_open=*/false));
  Stream s(stub_.get(), "slow", absl::Seconds(10));
  ext_proc::ProcessingResponse r;
  ASSERT_TRUE(s.Read(&r));
  ASSERT_TRUE(r.has_immediate_response()) << r.ShortDebugString();
  EXPECT_EQ(r.immediate_response().status().code(), 429);
  s.Close();
  EXPECT_EQ(metrics_->rate_limit_errors->Value(), 1);
  EXPECT_EQ(metrics_->rate_limited->Value(), 1);
}

// Two endpoints of 5 slots, `busy` of them busy; classes interactive (1.0) and standard
// (0.8, the default) whose queue holds 3 requests for a minute.
v1::Assignment Queued(int busy) {
  namespace policy = ::switchboard::controlplane::policy;
  v1::Assignment a = Pool();
  for (int i = 0; i < 2; ++i) {
    a.mutable_endpoints(i)->set_slots_total(5);
    a.mutable_endpoints(i)->set_slots_free(5 - std::min(5, std::max(0, busy - i * 5)));
  }
  policy::AdmissionConfig c;
  c.classes = {{"interactive", 0, 1.0}, {"standard", 1, 0.8}};
  c.default_class = "standard";
  *a.mutable_priority() = policy::PriorityToProto(c, policy::ClassHeadrooms(c, busy, 10),
                                                  policy::QueueConfig{{"standard", {3, absl::Minutes(1)}}});
  return a;
}

// Waits (bounded, in real time) until the table holds `n` requests: the streams reach the
// service on gRPC's threads.
bool AwaitHeld(const PoolTable& table, size_t n) {
  // A deadline, not a pause: generous, as the sanitizer builds run several times slower.
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (table.Held() != n) {
    if (absl::Now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

// Waits (bounded, in real time) until no request of this picker is in flight: a stream's
// end reaches the service on gRPC's threads, after the client has closed it.
bool AwaitNoneInFlight(const PoolTable& table) {
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  auto in_flight = [&table] {
    size_t n = 0;
    for (const auto& [pool, counts] : table.InFlight()) {
      for (const auto& [address, count] : counts) n += count;
    }
    return n;
  };
  while (in_flight() != 0) {
    if (absl::Now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

// Over real gRPC (after the rate limit check): refused requests of a class with a queue
// wait on their streams, a full queue answers 429 at once, a new assignment with headroom
// routes the held ones, and closing the queues answers the rest 503.
TEST_F(ExtProcServiceTest, HeldInItsClassQueueUntilCapacityOrClose) {
  ASSERT_NO_FATAL_FAILURE(Start(absl::Seconds(60), /*fail_open=*/true));
  ASSERT_TRUE(table_.Apply(Queued(8)).ok());  // Standard: no headroom.
  std::vector<std::unique_ptr<Stream>> held;
  for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<Stream>(stub_.get(), "fast", absl::Seconds(60)));
  ASSERT_TRUE(AwaitHeld(table_, 3)) << table_.Held();

  Stream full(stub_.get(), "fast", absl::Seconds(10));
  ext_proc::ProcessingResponse refused;
  ASSERT_TRUE(full.Read(&refused));
  ASSERT_TRUE(refused.has_immediate_response()) << refused.ShortDebugString();
  EXPECT_EQ(refused.immediate_response().status().code(), 429);
  full.Close();

  ASSERT_TRUE(table_.Apply(Queued(0)).ok());  // Capacity is back: 8 slots for standard.
  for (auto& s : held) {
    ext_proc::ProcessingResponse r;
    ASSERT_TRUE(s->Read(&r));
    EXPECT_NE(Picked(r), "") << r.ShortDebugString();
    s->Close();
  }
  EXPECT_EQ(table_.Held(), 0u);
  // Their ends counted before the next assignment: a request that ends after an
  // assignment frees a slot against that assignment's occupancy (as it should: the
  // occupancy was measured with it running), and Queued(8) would then have headroom.
  ASSERT_TRUE(AwaitNoneInFlight(table_));

  ASSERT_TRUE(table_.Apply(Queued(8)).ok());
  Stream last(stub_.get(), "fast", absl::Seconds(60));
  ASSERT_TRUE(AwaitHeld(table_, 1)) << table_.Held();
  table_.CloseQueues();  // The picker stops.
  ext_proc::ProcessingResponse r;
  ASSERT_TRUE(last.Read(&r));
  ASSERT_TRUE(r.has_immediate_response()) << r.ShortDebugString();
  EXPECT_EQ(r.immediate_response().status().code(), 503);
  last.Close();
}

}  // namespace
}  // namespace switchboard::picker
