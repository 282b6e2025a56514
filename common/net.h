// gRPC plumbing shared by every binary that speaks gRPC (host:port parsing: host_port.h).
#ifndef SWITCHBOARD_COMMON_NET_H_
#define SWITCHBOARD_COMMON_NET_H_

#include <memory>
#include <string>

#include "common/host_port.h"
#include "grpcpp/channel.h"

namespace switchboard {

// Builds a plaintext channel to `target` with keepalives suited to long-lived streams.
// TLS arrives in a later release; binaries accept --insecure today so that scripts keep
// working once plaintext requires it (see WarnIfPlaintextImplicit).
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target);

// The same, with a connection of its own rather than one shared through gRPC's global
// subchannel pool. For long-lived streams that reconnect by building a new channel: a
// shared connection that failed answers every new call with its cached error until its
// own backoff ends (measured: 8 s after a control plane returned, whatever the
// reconnect backoff arguments say), while a new channel connects at once.
std::shared_ptr<grpc::Channel> MakeDedicatedChannel(const std::string& target);

// Logs a one-line warning when plaintext is used without --insecure.
void WarnIfPlaintextImplicit(bool insecure_flag);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_NET_H_
