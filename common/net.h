// Host:port handling and gRPC plumbing shared by every binary.
#ifndef SWITCHBOARD_COMMON_NET_H_
#define SWITCHBOARD_COMMON_NET_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"

namespace switchboard {

struct HostPort {
  std::string host;  // Without brackets for IPv6.
  int port = 0;      // 0..65535; 0 asks the kernel for a free port when listening.
  std::string ToString() const;
};

// Parses "host:port", "[v6]:port" or ":port" (host defaults to 0.0.0.0).
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text);

// Builds a plaintext channel to `target` with keepalives suited to long-lived streams.
// TLS arrives in a later release; binaries accept --insecure today so that scripts keep
// working once plaintext requires it (see WarnIfPlaintextImplicit).
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target);

// Logs a one-line warning when plaintext is used without --insecure.
void WarnIfPlaintextImplicit(bool insecure_flag);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_NET_H_
