// The gRPC edge of common/auth.h: who is calling, from a server call's TLS peer and
// metadata.
#ifndef SWITCHBOARD_COMMON_AUTH_GRPC_H_
#define SWITCHBOARD_COMMON_AUTH_GRPC_H_

#include "common/auth.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"

namespace switchboard {

// The verified client certificate's SANs and the bearer token (matched against
// `tokens`, which may be null: no token matches) of the call behind `context`.
Caller CallerOf(const grpc::ServerContextBase& context, const TokenTable* tokens);

// The refusal in `decision` as a gRPC status (OK when allowed).
grpc::Status ToGrpcStatus(const AuthDecision& decision);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_AUTH_GRPC_H_
