// The one place absl::Status becomes grpc::Status (at the service edge).
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_GRPC_STATUS_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace switchboard::controlplane {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_GRPC_STATUS_H_
