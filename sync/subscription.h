// The native Subscribe stream, kept open: reconnects (with backoff) whenever the stream
// ends, hands every Assignment to a handler, and ACKs it when the handler applied it or
// NACKs it with the handler's error (discovery.proto's rules).
#ifndef SWITCHBOARD_SYNC_SUBSCRIPTION_H_
#define SWITCHBOARD_SYNC_SUBSCRIPTION_H_

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "common/mutex.h"
#include "grpcpp/client_context.h"
#include "switchboard/v1/discovery.pb.h"

namespace switchboard::sync {

class Subscription {
 public:
  using Handler = std::function<absl::Status(const v1::Assignment&)>;
  // `on_stream` runs before the first assignment of every new stream (the first one
  // included), on the thread that calls the handler.
  Subscription(std::string target, std::vector<std::string> pools, std::string subscriber_id, Handler handler,
               std::function<void()> on_stream, std::ostream& out);
  // Runs until Stop(): a stream at a time, reconnecting 0.2 s after a failure, doubling
  // to 5 s while the control plane stays away.
  void Run();
  void Stop();

 private:
  const std::string target_;
  const std::vector<std::string> pools_;
  const std::string subscriber_id_;
  const Handler handler_;
  const std::function<void()> on_stream_;
  std::ostream& out_;
  Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace switchboard::sync

#endif  // SWITCHBOARD_SYNC_SUBSCRIPTION_H_
