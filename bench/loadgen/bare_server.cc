#include "bench/loadgen/bare_server.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "CLI/CLI.hpp"
#include "bench/loadgen/workload.h"
#include "common/mutex.h"
#include "switchboard/v1/agent.grpc.pb.h"
#include "switchboard/v1/discovery.grpc.pb.h"

namespace switchboard::bench {
namespace {

class Publisher;

// One subscriber: sends the newest buffer it has not sent, one write at a time.
class BareSubscribeStream final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit BareSubscribeStream(Publisher* publisher);
  void Offer(const std::shared_ptr<const grpc::ByteBuffer>& buffer) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    if (writing_) {
      next_ = buffer;
      return;
    }
    WriteLocked(buffer);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!finished_) {
        finished_ = true;
        Finish(grpc::Status::OK);
      }
      return;
    }
    StartRead(&request_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      if (!finished_) {
        finished_ = true;
        Finish(grpc::Status::OK);
      }
      return;
    }
    if (next_ && !finished_) {
      std::shared_ptr<const grpc::ByteBuffer> next = std::move(next_);
      next_.reset();
      WriteLocked(next);
    }
  }
  void OnDone() override;

 private:
  void WriteLocked(const std::shared_ptr<const grpc::ByteBuffer>& buffer) {
    out_ = *buffer;  // Shares the slices: no copy of the bytes.
    writing_ = true;
    StartWrite(&out_);
  }
  Publisher* const publisher_;
  grpc::ByteBuffer request_;
  std::mutex mu_;
  grpc::ByteBuffer out_;
  std::shared_ptr<const grpc::ByteBuffer> next_;
  bool writing_ = false;
  bool finished_ = false;
};

// Serializes the watched assignment once per broadcast and offers it to every stream,
// from one thread (the single-thread broadcast the control plane is compared with). It
// broadcasts at once when agent 0's marker changes; with a beat set, it also broadcasts
// on every beat that followed no marker, so that it sends `beats` messages a second
// whenever markers come less often than that (as many as the control plane sent: the
// same bytes to the same subscribers).
class Publisher {
 public:
  Publisher(const Workload& w, std::chrono::microseconds interval) : workload_(w), interval_(interval) {
    current_ = Serialize(0);
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
  void Add(BareSubscribeStream* s) {
    std::shared_ptr<const grpc::ByteBuffer> current;
    {
      std::lock_guard<std::mutex> lock(mu_);
      streams_.insert(s);
      current = current_;
    }
    s->Offer(current);
  }
  void Remove(BareSubscribeStream* s) {
    std::lock_guard<std::mutex> lock(mu_);
    streams_.erase(s);
  }
  void Marker(uint32_t queue_depth) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queue_depth == wanted_) return;
      wanted_ = queue_depth;
    }
    cv_.notify_one();
  }

 private:
  std::shared_ptr<const grpc::ByteBuffer> Serialize(uint32_t queue_depth) {
    const std::string bytes = MakeWatchedAssignment(workload_, queue_depth).SerializeAsString();
    grpc::Slice slice(bytes);
    return std::make_shared<const grpc::ByteBuffer>(&slice, 1);
  }
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    auto next_beat = std::chrono::steady_clock::now() + interval_;
    bool marker_since_beat = false;
    while (true) {
      auto marked = [&] { return stop_ || wanted_ != published_; };
      bool marker = true;
      if (interval_.count() > 0) {
        marker = cv_.wait_until(lock, next_beat, marked);
      } else {
        cv_.wait(lock, marked);
      }
      if (stop_) return;
      if (!marker) {  // A beat.
        const auto now = std::chrono::steady_clock::now();
        next_beat = std::max(next_beat + interval_, now);  // No catching up after a stall.
        const bool skip = marker_since_beat;
        marker_since_beat = false;
        if (skip) continue;
      } else {
        marker_since_beat = true;
      }
      const uint32_t want = wanted_;
      lock.unlock();
      std::shared_ptr<const grpc::ByteBuffer> buffer = Serialize(want);
      lock.lock();
      published_ = want;
      current_ = buffer;
      // Offer under the lock: streams only leave through Remove, which waits for it.
      for (BareSubscribeStream* s : streams_) s->Offer(buffer);
    }
  }

  const Workload workload_;
  const std::chrono::microseconds interval_;  // Between beats; zero: markers only.
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<BareSubscribeStream*> streams_;
  std::shared_ptr<const grpc::ByteBuffer> current_;
  uint32_t wanted_ = 0, published_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

BareSubscribeStream::BareSubscribeStream(Publisher* publisher) : publisher_(publisher) {
  StartRead(&request_);
  publisher_->Add(this);
}

void BareSubscribeStream::OnDone() {
  publisher_->Remove(this);
  delete this;
}

class BareDiscovery final
    : public v1::DiscoveryService::WithRawCallbackMethod_Subscribe<v1::DiscoveryService::Service> {
 public:
  explicit BareDiscovery(Publisher* publisher) : publisher_(publisher) {}
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Subscribe(grpc::CallbackServerContext*) override {
    return new BareSubscribeStream(publisher_);
  }

 private:
  Publisher* const publisher_;
};

// The fleet's latest reports, decoded and applied under one mutex.
struct BareFleet {
  Mutex mu;
  std::unordered_map<std::string, v1::Report> latest ABSL_GUARDED_BY(mu);
};

class BareAgentStream final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControlMessage> {
 public:
  BareAgentStream(BareFleet* fleet, Publisher* publisher) : fleet_(fleet), publisher_(publisher) { StartRead(&in_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard<std::mutex> lock(mu_);
      finish_ = true;
      PumpLocked();
      return;
    }
    uint64_t ack = 0;
    if (in_.has_hello()) {
      node_ = in_.hello().node_id();
    } else if (in_.has_report()) {
      ack = in_.report().sequence();
      const bool marker_node = node_ == "lg-0";
      const uint32_t queue =
          marker_node && in_.report().endpoints_size() > 0 ? in_.report().endpoints(0).queue_depth() : 0;
      {
        MutexLock lock(&fleet_->mu);
        fleet_->latest[node_].Swap(in_.mutable_report());
      }
      if (marker_node && queue >= kMarkerBase) publisher_->Marker(queue);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_ack_ = ack;
      has_ack_ = true;
      PumpLocked();
    }
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) finish_ = true;
    PumpLocked();
  }
  void OnDone() override { delete this; }

 private:
  void PumpLocked() {
    if (writing_ || finished_) return;
    if (has_ack_ && !finish_) {
      out_.mutable_ack()->set_sequence(pending_ack_);
      has_ack_ = false;
      writing_ = true;
      StartWrite(&out_);
      return;
    }
    if (finish_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }
  BareFleet* const fleet_;
  Publisher* const publisher_;
  v1::AgentMessage in_;
  std::string node_;
  std::mutex mu_;
  v1::ControlMessage out_;
  uint64_t pending_ack_ = 0;
  bool has_ack_ = false, writing_ = false, finish_ = false, finished_ = false;
};

class BareAgentService final : public v1::AgentService::CallbackService {
 public:
  BareAgentService(BareFleet* fleet, Publisher* publisher) : fleet_(fleet), publisher_(publisher) {}
  grpc::ServerBidiReactor<v1::AgentMessage, v1::ControlMessage>* Connect(grpc::CallbackServerContext*) override {
    return new BareAgentStream(fleet_, publisher_);
  }

 private:
  BareFleet* const fleet_;
  Publisher* const publisher_;
};

}  // namespace

int RunBareServer(int argc, char** argv) {
  Workload w;
  CLI::App app{"switchboard-loadgen bench-bare-server: the bare-gRPC baseline (started by `bench`)"};
  app.add_option("--agents", w.agents);
  app.add_option("--endpoints-per-agent", w.endpoints_per_agent);
  app.add_option("--pools", w.pools);
  double broadcasts_per_second = 0;
  app.add_option("--broadcasts-per-second", broadcasts_per_second,
                 "also broadcast the watched assignment this many times a second, skipping a beat that "
                 "follows a marker's broadcast (0: only when the marker changes)")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  // As the control plane does at start (Debian's abseil runs its deadlock detector).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // Before gRPC starts its threads.

  BareFleet fleet;
  Publisher publisher(
      w, std::chrono::microseconds(broadcasts_per_second > 0 ? static_cast<int64_t>(1e6 / broadcasts_per_second) : 0));
  BareAgentService agents(&fleet, &publisher);
  BareDiscovery discovery(&publisher);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  // The control plane's own channel settings (controlplane/server.cc).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.RegisterService(&agents);
  builder.RegisterService(&discovery);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "bench-bare-server: cannot listen\n");
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
