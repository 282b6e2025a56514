// A fake control plane for agent tests: a real gRPC server on 127.0.0.1 (port 0 unless
// told otherwise) with an AgentService that records every Hello and Report, acknowledges
// them as the real one does, and on demand ends the open streams or refuses new ones
// (what the agent sees when a control plane restarts or goes away). Tests that need a
// control plane that is gone use refusal or a ClosedPort rather than a shut-down
// server's port, which another test process may take meanwhile.
#ifndef SWITCHBOARD_TESTS_AGENT_FAKE_CONTROL_PLANE_H_
#define SWITCHBOARD_TESTS_AGENT_FAKE_CONTROL_PLANE_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "grpcpp/grpcpp.h"
#include "switchboard/v1/agent.grpc.pb.h"

namespace switchboard::testing {

class FakeControlPlane final : public v1::AgentService::Service {
 public:
  // Listens on 127.0.0.1:`port` (0: any free port); null if it cannot.
  static std::unique_ptr<FakeControlPlane> Start(int port = 0) {
    auto cp = std::unique_ptr<FakeControlPlane>(new FakeControlPlane());
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(), &cp->port_);
    builder.RegisterService(cp.get());
    cp->server_ = builder.BuildAndStart();
    if (cp->server_ == nullptr || cp->port_ == 0) return nullptr;
    return cp;
  }

  ~FakeControlPlane() override { Shutdown(); }

  int port() const { return port_; }
  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }

  // Ends every open stream (the agent sees CANCELLED) and stops listening.
  void Shutdown() {
    if (server_ == nullptr) return;
    EndStreams();
    server_->Shutdown(std::chrono::system_clock::now());  // Cancels what is still running.
    server_->Wait();
    server_ = nullptr;
  }

  // While set, every new stream ends at once with UNAVAILABLE, before its Hello is read
  // (a control plane that is going away); the port stays taken.
  void set_refuse(bool refuse) {
    MutexLock lock(&mu_);
    refuse_ = refuse;
  }

  // Ends every open stream; the server keeps listening.
  void EndStreams() {
    MutexLock lock(&mu_);
    for (grpc::ServerContext* context : open_) context->TryCancel();
  }

  std::vector<v1::Hello> hellos() const {
    MutexLock lock(&mu_);
    return hellos_;
  }
  // The reasons of the Goodbyes received, in order.
  std::vector<std::string> goodbyes() const {
    MutexLock lock(&mu_);
    return goodbyes_;
  }
  std::vector<v1::Report> reports() const {
    MutexLock lock(&mu_);
    return reports_;
  }
  int open_streams() const {
    MutexLock lock(&mu_);
    return static_cast<int>(open_.size());
  }
  // Streams ended at once while refusing.
  int refused_streams() const {
    MutexLock lock(&mu_);
    return refused_streams_;
  }
  // Streams whose first message was not a Hello (the protocol requires one).
  int streams_without_hello() const {
    MutexLock lock(&mu_);
    return streams_without_hello_;
  }

  // Block (in real time, bounded: a test failure, not a way to pass time) until the
  // condition on what was received holds; return whether it does.
  bool AwaitHellos(size_t n, absl::Duration real_timeout) const {
    return Await([this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return hellos_.size() >= n; }, real_timeout);
  }
  bool AwaitReport(uint64_t sequence, absl::Duration real_timeout) const {
    return Await([this, sequence]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                     mu_) { return !reports_.empty() && reports_.back().sequence() >= sequence; },
                 real_timeout);
  }
  bool AwaitReportCount(size_t n, absl::Duration real_timeout) const {
    return Await([this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return reports_.size() >= n; }, real_timeout);
  }
  bool AwaitOpenStreams(int n, absl::Duration real_timeout) const {
    return Await([this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return static_cast<int>(open_.size()) == n; },
                 real_timeout);
  }

  grpc::Status Connect(grpc::ServerContext* context,
                       grpc::ServerReaderWriter<v1::ControlMessage, v1::AgentMessage>* stream) override {
    {
      MutexLock lock(&mu_);
      if (refuse_) {
        ++refused_streams_;
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "refusing streams");
      }
      open_.insert(context);
    }
    v1::AgentMessage msg;
    for (bool first = true; stream->Read(&msg); first = false) {
      v1::ControlMessage ack;
      {
        MutexLock lock(&mu_);
        if (first && !msg.has_hello()) ++streams_without_hello_;
        if (msg.has_goodbye()) {  // As the real one: the node is gone, the stream ends.
          goodbyes_.push_back(msg.goodbye().reason());
          break;
        }
        if (msg.has_hello()) {
          hellos_.push_back(msg.hello());
          ack.mutable_ack()->set_sequence(0);
        } else {
          reports_.push_back(msg.report());
          ack.mutable_ack()->set_sequence(msg.report().sequence());
        }
      }
      if (!stream->Write(ack)) break;
    }
    MutexLock lock(&mu_);
    open_.erase(context);
    return grpc::Status::OK;
  }

 private:
  FakeControlPlane() = default;

  template <typename Pred>
  bool Await(Pred pred, absl::Duration real_timeout) const {
    MutexLock lock(&mu_);
    return SystemClock::Get()->AwaitWithTimeout(&mu_, Condition(&pred), real_timeout);
  }

  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  mutable Mutex mu_;
  std::set<grpc::ServerContext*> open_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Hello> hellos_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Report> reports_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> goodbyes_ ABSL_GUARDED_BY(mu_);
  int streams_without_hello_ ABSL_GUARDED_BY(mu_) = 0;
  bool refuse_ ABSL_GUARDED_BY(mu_) = false;
  int refused_streams_ ABSL_GUARDED_BY(mu_) = 0;
};

// A loopback port where nothing listens, held for the object's life so that no other
// test process can start listening there: connecting to it is refused at once.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~ClosedPort() {
    if (fd_ >= 0) close(fd_);
  }
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;

  int port() const { return port_; }  // 0 if no port could be taken.
  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_TESTS_AGENT_FAKE_CONTROL_PLANE_H_
