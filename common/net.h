// gRPC plumbing shared by every binary that speaks gRPC (host:port parsing: host_port.h).
#ifndef SWITCHBOARD_COMMON_NET_H_
#define SWITCHBOARD_COMMON_NET_H_

#include <memory>
#include <string>

#include "common/host_port.h"
#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"

namespace switchboard {

// Builds a channel to `target` with keepalives suited to long-lived streams, with this
// process's client credentials (TLS, server name, bearer token: SetClientChannelDefaults,
// normally through ConfigureClientChannels in common/tls.h; plaintext until set).
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target);

// The same, with a connection of its own rather than one shared through gRPC's global
// subchannel pool. For long-lived streams that reconnect by building a new channel: a
// shared connection that failed answers every new call with its cached error until its
// own backoff ends (measured: 8 s after a control plane returned, whatever the
// reconnect backoff arguments say), while a new channel connects at once.
std::shared_ptr<grpc::Channel> MakeDedicatedChannel(const std::string& target);

// Sets what MakeChannel and MakeDedicatedChannel use from now on: `credentials`, the TLS
// server name to expect when not the target's host (empty: the host), and a bearer token
// sent as `authorization: Bearer ...` on every call (empty: none). Thread-safe; channels
// made before keep what they had.
void SetClientChannelDefaults(std::shared_ptr<grpc::ChannelCredentials> credentials, const std::string& server_name,
                              const std::string& bearer_token);

// Logs a one-line warning when plaintext is used without --insecure. Kept for binaries
// that do not take the TLS flags yet (common/tls.h); MakeServerCredentials and
// MakeChannelCredentials log their own warning.
void WarnIfPlaintextImplicit(bool insecure_flag);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_NET_H_
