#include "bench/xds_bare_server.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "switchboard/v1/agent.grpc.pb.h"

namespace switchboard::bench {
namespace {

using envoy::service::discovery::v3::AggregatedDiscoveryService;
using Buffer = std::shared_ptr<const grpc::ByteBuffer>;

std::string PoolName(int pools, int pool) { return pools == 1 ? "bench" : absl::StrCat("bench-", pool); }

class Publisher;

// One ADS stream: the newest buffer of each pool it has not sent, one write at a time.
class BareAdsStream final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit BareAdsStream(Publisher* publisher) : publisher_(publisher) { StartRead(&request_); }
  void Offer(int pool, const Buffer& buffer) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    pending_[pool] = buffer;
    PumpLocked();
  }
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked();
      return;
    }
    PumpLocked();
  }
  void OnDone() override;

 private:
  void PumpLocked() {
    if (writing_ || finished_ || pending_.empty()) return;
    out_ = *pending_.begin()->second;  // Shares the slices: no copy of the bytes.
    pending_.erase(pending_.begin());
    writing_ = true;
    StartWrite(&out_);
  }
  void FinishLocked() {
    if (finished_) return;
    finished_ = true;
    Finish(grpc::Status::OK);
  }
  Publisher* const publisher_;
  grpc::ByteBuffer request_;
  bool subscribed_ = false;  // Read callbacks only.
  std::mutex mu_;
  grpc::ByteBuffer out_;
  std::map<int, Buffer> pending_;
  bool writing_ = false;
  bool finished_ = false;
};

class Publisher {
 public:
  Publisher(int pools, int endpoints_per_pool) : pools_(pools), endpoints_per_pool_(endpoints_per_pool) {
    for (int p = 0; p < pools_; ++p) current_[p] = Serialize(p, 0);
    thread_ = std::thread([this] { Loop(); });
  }
  ~Publisher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void Add(BareAdsStream* s) {
    std::map<int, Buffer> current;
    {
      std::lock_guard<std::mutex> lock(mu_);
      streams_.insert(s);
      current = current_;
    }
    for (const auto& [pool, buffer] : current) s->Offer(pool, buffer);
  }
  void Remove(BareAdsStream* s) {
    std::lock_guard<std::mutex> lock(mu_);
    streams_.erase(s);
  }
  void Changed(int pool) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      changed_.insert(pool);
    }
    cv_.notify_one();
  }
  int pools() const { return pools_; }

 private:
  // The pool's assignment, its `generation` in one weight, as one DiscoveryResponse.
  Buffer Serialize(int pool, int generation) {
    envoy::config::endpoint::v3::ClusterLoadAssignment cla;
    cla.set_cluster_name(PoolName(pools_, pool));
    for (int i = 0; i < endpoints_per_pool_; ++i) {
      auto* locality = cla.add_endpoints();
      locality->mutable_locality()->set_zone(absl::StrCat("node-", pool));
      locality->mutable_locality()->set_sub_zone(absl::StrCat("10.0.", pool % 256, ".", i % 256, ":8000"));
      locality->mutable_load_balancing_weight()->set_value(1000 * (i == 0 ? 1 + generation % 100 : 1));
      auto* lb = locality->add_lb_endpoints();
      auto* socket = lb->mutable_endpoint()->mutable_address()->mutable_socket_address();
      socket->set_address(absl::StrCat("10.0.", pool % 256, ".", i % 256));
      socket->set_port_value(8000);
      lb->mutable_load_balancing_weight()->set_value(1);
    }
    envoy::service::discovery::v3::DiscoveryResponse response;
    response.set_type_url("type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment");
    response.set_version_info(absl::StrCat(pool, "-", generation));
    response.set_nonce(absl::StrCat(pool, "-", generation));
    response.add_resources()->PackFrom(cla);
    const std::string bytes = response.SerializeAsString();
    grpc::Slice slice(bytes);
    return std::make_shared<const grpc::ByteBuffer>(&slice, 1);
  }
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !changed_.empty(); });
      if (stop_) return;
      std::set<int> changed = std::move(changed_);
      changed_.clear();
      lock.unlock();
      std::map<int, Buffer> buffers;
      for (int pool : changed) buffers[pool] = Serialize(pool, ++generation_);
      lock.lock();
      for (const auto& [pool, buffer] : buffers) {
        current_[pool] = buffer;
        // Offer under the lock: streams only leave through Remove, which waits for it.
        for (BareAdsStream* s : streams_) s->Offer(pool, buffer);
      }
    }
  }

  const int pools_;
  const int endpoints_per_pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<BareAdsStream*> streams_;
  std::map<int, Buffer> current_;
  std::set<int> changed_;
  int generation_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

void BareAdsStream::OnReadDone(bool ok) {
  if (!ok) {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked();
    return;
  }
  request_.Clear();  // Requests (the first, then ACKs) are not parsed: no protocol state.
  if (!subscribed_) {
    subscribed_ = true;
    publisher_->Add(this);
  }
  StartRead(&request_);
}

void BareAdsStream::OnDone() {
  if (subscribed_) publisher_->Remove(this);
  delete this;
}

class BareAds final : public AggregatedDiscoveryService::WithRawCallbackMethod_StreamAggregatedResources<
                          AggregatedDiscoveryService::WithRawCallbackMethod_DeltaAggregatedResources<
                              AggregatedDiscoveryService::Service>> {
 public:
  explicit BareAds(Publisher* publisher) : publisher_(publisher) {}
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StreamAggregatedResources(
      grpc::CallbackServerContext*) override {
    return new BareAdsStream(publisher_);
  }

 private:
  Publisher* const publisher_;
};

// Decodes every agent message; a node whose endpoints differ from its last report marks
// its pool changed. Acknowledges nothing (the bench's agents do not wait for acks).
class BareAgentStream final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit BareAgentStream(Publisher* publisher) : publisher_(publisher) { StartRead(&in_bytes_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    v1::AgentMessage in;
    grpc::ProtoBufferReader reader(&in_bytes_);
    if (in.ParseFromZeroCopyStream(&reader)) {
      if (in.has_hello()) {
        int k = 0;
        const std::string& id = in.hello().node_id();
        if (id.size() > 5 && absl::SimpleAtoi(id.substr(5), &k)) pool_ = k % publisher_->pools();
      } else if (in.has_report()) {
        in.mutable_report()->clear_sequence();
        in.mutable_report()->clear_agent_time();
        std::string endpoints = in.report().SerializeAsString();
        if (!last_.empty() && endpoints != last_ && pool_ >= 0) publisher_->Changed(pool_);
        last_ = std::move(endpoints);
      }
    }
    in_bytes_.Clear();
    StartRead(&in_bytes_);
  }
  void OnDone() override { delete this; }

 private:
  Publisher* const publisher_;
  grpc::ByteBuffer in_bytes_;
  int pool_ = -1;
  std::string last_;
};

class BareAgents final : public v1::AgentService::WithRawCallbackMethod_Connect<v1::AgentService::Service> {
 public:
  explicit BareAgents(Publisher* publisher) : publisher_(publisher) {}
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Connect(grpc::CallbackServerContext*) override {
    return new BareAgentStream(publisher_);
  }

 private:
  Publisher* const publisher_;
};

}  // namespace

int RunXdsBareServer(int pools, int endpoints_per_pool) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);  // As the control plane does.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // Before gRPC starts its threads.

  Publisher publisher(pools, endpoints_per_pool);
  BareAgents agents(&publisher);
  BareAds ads(&publisher);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.RegisterService(&agents);
  builder.RegisterService(&ads);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "xds bare server: cannot listen\n");
    return 1;
  }
  std::printf("grpc listening on port %d\n", port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace switchboard::bench
