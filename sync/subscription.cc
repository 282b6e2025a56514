#include "sync/subscription.h"

#include <map>

#include "absl/strings/str_join.h"
#include "common/net.h"
#include "switchboard/v1/discovery.grpc.pb.h"

namespace switchboard::sync {

Subscription::Subscription(std::string target, std::vector<std::string> pools, std::string subscriber_id,
                           Handler handler, std::function<void()> on_stream, std::ostream& out)
    : target_(std::move(target)),
      pools_(std::move(pools)),
      subscriber_id_(std::move(subscriber_id)),
      handler_(std::move(handler)),
      on_stream_(std::move(on_stream)),
      out_(out) {}

void Subscription::Stop() {
  MutexLock lock(&mu_);
  stopped_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

void Subscription::Run() {
  auto stub = v1::DiscoveryService::NewStub(MakeChannel(target_));
  absl::Duration backoff = absl::Milliseconds(200);
  bool was_connected = true;  // Report the first failure.
  while (true) {
    grpc::ClientContext context;
    {
      MutexLock lock(&mu_);
      if (stopped_) return;
      context_ = &context;
    }
    auto stream = stub->Subscribe(&context);
    v1::SubscribeRequest first;
    first.set_subscriber_id(subscriber_id_);
    for (const std::string& p : pools_) first.add_pools(p);
    std::map<std::string, std::string> applied;  // Pool -> last version applied, for NACKs.
    bool received = false;
    if (stream->Write(first)) {
      v1::Assignment a;
      while (stream->Read(&a)) {
        if (!received) {
          out_ << "subscribed to " << target_ << " (pools " << absl::StrJoin(pools_, ", ") << ")" << std::endl;
          received = true;
          was_connected = true;
          backoff = absl::Milliseconds(200);
          on_stream_();
        }
        const absl::Status s = handler_(a);
        v1::SubscribeRequest reply;
        reply.set_subscriber_id(subscriber_id_);
        reply.set_response_nonce(a.nonce());
        if (s.ok()) {
          applied[a.pool()] = a.version();
          reply.set_version_info(a.version());
        } else {
          reply.set_version_info(applied[a.pool()]);
          reply.mutable_error_detail()->set_code(static_cast<int>(s.code()));
          reply.mutable_error_detail()->set_message(std::string(s.message()));
        }
        if (!stream->Write(reply)) break;
      }
    }
    const grpc::Status status = stream->Finish();
    MutexLock lock(&mu_);
    context_ = nullptr;
    if (stopped_) return;
    if (received || was_connected) {
      out_ << "control plane " << target_ << ": stream ended ("
           << (status.ok() ? "closed by the control plane" : status.error_message()) << "); reconnecting" << std::endl;
    }
    was_connected = false;
    auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopped_; };
    mu_.AwaitWithTimeout(Condition(&stopped), backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

}  // namespace switchboard::sync
