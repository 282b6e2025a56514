// A stream refused before it starts (caller not allowed, a limit reached): ends at once
// with `status`, reads nothing.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_REFUSED_STREAM_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_REFUSED_STREAM_H_

#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"

namespace switchboard::controlplane {

template <typename Request, typename Response>
class RefusedStream final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RefusedStream(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

// The same for a server-streaming call.
template <typename Response>
class RefusedWriteStream final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit RefusedWriteStream(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_REFUSED_STREAM_H_
