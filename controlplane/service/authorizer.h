// Authorizer: the control plane's services ask it whether the call in hand may go on.
// It gathers the caller (common/auth_grpc.h), applies the pure decisions of
// common/auth.h, counts refusals and logs them (naming the caller, never a token).
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_AUTHORIZER_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_AUTHORIZER_H_

#include <memory>
#include <string>

#include "common/auth.h"
#include "common/auth_grpc.h"
#include "common/token_file.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace switchboard::controlplane {

class Authorizer {
 public:
  // `registry` receives switchboard_auth_refused_total{access}; it must outlive this.
  // `tokens` (--admin-tokens, followed on disk; null: none) must outlive this too: every
  // call is matched against the table in force when it arrives.
  Authorizer(AuthConfig config, const TokenFile* tokens, bool agent_certificates_required,
             prometheus::Registry& registry);

  // Everyone may do everything (plaintext, no tokens): what tests that build services
  // by hand get when they pass no Authorizer.
  static const Authorizer* AllowAll();

  Caller CallerOf(const grpc::ServerContextBase& context) const {
    if (tokens_ == nullptr) return switchboard::CallerOf(context, nullptr);
    const std::shared_ptr<const TokenTable> table = tokens_->Current();
    return switchboard::CallerOf(context, table.get());
  }

  // OK, or the refusal (UNAUTHENTICATED / PERMISSION_DENIED with the reason); `caller`
  // (optional) receives who called.
  grpc::Status Check(const grpc::ServerContextBase& context, Access access, Caller* caller = nullptr) const;

  // An agent's Hello for `node_id` from `caller` (CheckAgentIdentity); counts refusals.
  AuthDecision CheckAgent(const Caller& caller, const std::string& node_id) const;

  bool agent_certificates_required() const { return agent_certificates_required_; }

 private:
  Authorizer() = default;

  AuthConfig config_;
  const TokenFile* tokens_ = nullptr;
  bool agent_certificates_required_ = false;
  prometheus::Counter* refused_agent_ = nullptr;  // Null only in AllowAll().
  prometheus::Counter* refused_read_ = nullptr;
  prometheus::Counter* refused_write_ = nullptr;
  prometheus::Counter* refused_subscribe_ = nullptr;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_AUTHORIZER_H_
