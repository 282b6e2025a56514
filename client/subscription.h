// The native Subscribe stream, kept open: reconnects (with backoff) whenever the stream
// ends, hands every Assignment to a handler, and ACKs it when the handler applied it or
// NACKs it with the handler's error (discovery.proto's rules). Send() adds requests of
// the gateway's own (outcomes) on the open stream. The channel is built by the caller
// (switchboard-picker and switchboard-sync: a new one per attempt, with their TLS flags).
#ifndef SWITCHBOARD_CLIENT_SUBSCRIPTION_H_
#define SWITCHBOARD_CLIENT_SUBSCRIPTION_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "common/mutex.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "switchboard/v1/discovery.grpc.pb.h"

namespace switchboard::client {

class Subscription {
 public:
  using Handler = std::function<absl::Status(const v1::Assignment&)>;
  using ChannelFactory = std::function<std::shared_ptr<grpc::Channel>()>;
  // `channel` is called for every connection attempt (a new channel connects at once,
  // where a shared one would answer with its cached failure). `on_stream` runs before the
  // first assignment of every new stream, on the thread that calls the handler.
  Subscription(ChannelFactory channel, std::string target, std::vector<std::string> pools, std::string subscriber_id,
               Handler handler, std::function<void()> on_stream, std::ostream& out);
  // Runs until Stop(): a stream at a time, reconnecting 0.2 s after a failure, doubling
  // to 5 s while the control plane stays away.
  void Run();
  void Stop();
  // Writes `request` (subscriber id filled in) on the open stream; false when no stream is
  // open or the write failed (the caller keeps what it wanted to say for the next try).
  // Thread-safe; may block while the stream is flow-controlled.
  bool Send(v1::SubscribeRequest request);

 private:
  bool Write(const v1::SubscribeRequest& request);

  const ChannelFactory channel_;
  const std::string target_;
  const std::vector<std::string> pools_;
  const std::string subscriber_id_;
  const Handler handler_;
  const std::function<void()> on_stream_;
  std::ostream& out_;
  Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Serializes writes (ACKs from Run, Send from other threads); never held with mu_.
  Mutex write_mu_;
  grpc::ClientReaderWriter<v1::SubscribeRequest, v1::Assignment>* stream_ ABSL_GUARDED_BY(write_mu_) = nullptr;
};

}  // namespace switchboard::client

#endif  // SWITCHBOARD_CLIENT_SUBSCRIPTION_H_
