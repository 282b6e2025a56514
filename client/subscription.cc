#include "client/subscription.h"

#include <map>

#include "absl/strings/str_join.h"

namespace switchboard::client {

Subscription::Subscription(ChannelFactory channel, std::string target, std::vector<std::string> pools,
                           std::string subscriber_id, Handler handler, std::function<void()> on_stream,
                           std::ostream& out)
    : channel_(std::move(channel)),
      target_(std::move(target)),
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

bool Subscription::Send(v1::SubscribeRequest request) {
  request.set_subscriber_id(subscriber_id_);
  return Write(request);
}

bool Subscription::Write(const v1::SubscribeRequest& request) {
  MutexLock lock(&write_mu_);
  return stream_ != nullptr && stream_->Write(request);
}

void Subscription::Run() {
  absl::Duration backoff = absl::Milliseconds(200);
  bool was_connected = true;  // Report the first failure.
  while (true) {
    auto stub = v1::DiscoveryService::NewStub(channel_());
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
      {
        MutexLock lock(&write_mu_);
        stream_ = stream.get();
      }
      v1::Assignment a;
      while (stream->Read(&a)) {
        if (!received) {
          out_ << "subscribed to " << target_ << " (pools "
               << (pools_.empty() ? std::string("all") : absl::StrJoin(pools_, ", ")) << ")" << std::endl;
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
        if (!Write(reply)) break;
      }
      MutexLock lock(&write_mu_);
      stream_ = nullptr;
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

}  // namespace switchboard::client
