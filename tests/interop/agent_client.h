// An agent-protocol client for tests that need endpoints in the control plane without
// real inference servers: it speaks AgentService.Connect as switchboard-agent does.
#ifndef SWITCHBOARD_TESTS_INTEROP_AGENT_CLIENT_H_
#define SWITCHBOARD_TESTS_INTEROP_AGENT_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "common/mutex.h"
#include "common/net.h"
#include "switchboard/v1/agent.grpc.pb.h"

namespace switchboard::testing {

// Speaks AgentService.Connect for one node: a Hello naming the endpoints, then the
// current reports, repeated every 300 ms so the node never goes stale.
class AgentClient {
 public:
  AgentClient(const std::string& target, const std::string& node_id, const std::vector<v1::EndpointInfo>& endpoints,
              std::vector<v1::EndpointReport> reports)
      : stub_(v1::AgentService::NewStub(MakeChannel(target))), reports_(std::move(reports)) {
    stream_ = stub_->Connect(&context_);
    v1::AgentMessage hello;
    hello.mutable_hello()->set_node_id(node_id);
    for (const auto& ep : endpoints) *hello.mutable_hello()->add_endpoints() = ep;
    stream_->Write(hello);
    reader_ = std::thread([this] {
      v1::ControlMessage message;
      while (stream_->Read(&message)) {
      }
    });
    writer_ = std::thread([this] { WriteLoop(); });
  }
  ~AgentClient() {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    writer_.join();
    context_.TryCancel();
    reader_.join();
  }
  // Changes endpoint `i`'s report; sent at once.
  void Update(size_t i, const std::function<void(v1::EndpointReport*)>& mutate) {
    MutexLock lock(&mu_);
    mutate(&reports_[i]);
    dirty_ = true;
  }

 private:
  void WriteLoop() {
    uint64_t sequence = 0;
    MutexLock lock(&mu_);
    while (!stop_) {
      v1::AgentMessage message;
      message.mutable_report()->set_sequence(++sequence);
      for (const auto& r : reports_) *message.mutable_report()->add_endpoints() = r;
      dirty_ = false;
      mu_.Unlock();
      const bool ok = stream_->Write(message);
      mu_.Lock();
      if (!ok) return;
      // A periodic report, as the agent sends; an Update sends at once.
      auto wake = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stop_ || dirty_; };
      mu_.AwaitWithTimeout(Condition(&wake), absl::Milliseconds(300));
    }
  }

  std::unique_ptr<v1::AgentService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControlMessage>> stream_;
  std::thread reader_;
  std::thread writer_;
  Mutex mu_;
  std::vector<v1::EndpointReport> reports_ ABSL_GUARDED_BY(mu_);
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_TESTS_INTEROP_AGENT_CLIENT_H_
