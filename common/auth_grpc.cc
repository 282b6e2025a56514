#include "common/auth_grpc.h"

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "grpc/grpc_security_constants.h"

namespace switchboard {

Caller CallerOf(const grpc::ServerContextBase& context, const TokenTable* tokens) {
  Caller caller;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  // With --client-ca a presented certificate that does not chain to the CA fails the
  // handshake, so any peer SAN here was verified.
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const grpc::string_ref& v : auth->FindPropertyValues(GRPC_PEER_DNS_PROPERTY_NAME)) {
      caller.dns_sans.emplace_back(v.data(), v.size());
    }
    for (const grpc::string_ref& v : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
      caller.uri_sans.emplace_back(v.data(), v.size());
    }
  }
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it != metadata.end()) {
    caller.token_presented = true;
    absl::string_view value(it->second.data(), it->second.size());
    if (absl::ConsumePrefix(&value, "Bearer ") && tokens != nullptr) {
      if (const AdminToken* t = tokens->Find(absl::StripAsciiWhitespace(value)); t != nullptr) {
        caller.token_name = t->name;
        caller.token_role = t->role;
      }
    }
  }
  return caller;
}

grpc::Status ToGrpcStatus(const AuthDecision& decision) {
  if (decision.allowed) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(decision.code), decision.reason);
}

}  // namespace switchboard
