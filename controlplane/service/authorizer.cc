#include "controlplane/service/authorizer.h"

#include "common/auth_grpc.h"
#include "common/log.h"

namespace switchboard::controlplane {

Authorizer::Authorizer(AuthConfig config, const TokenFile* tokens, bool agent_certificates_required,
                       prometheus::Registry& registry)
    : config_(config), tokens_(tokens), agent_certificates_required_(agent_certificates_required) {
  auto& family = prometheus::BuildCounter()
                     .Name("switchboard_auth_refused_total")
                     .Help("Calls refused for their caller's identity, token or role, by what the call needed")
                     .Register(registry);
  refused_agent_ = &family.Add({{"access", "agent"}});
  refused_read_ = &family.Add({{"access", "read"}});
  refused_write_ = &family.Add({{"access", "write"}});
  refused_subscribe_ = &family.Add({{"access", "subscribe"}});
}

const Authorizer* Authorizer::AllowAll() {
  static const Authorizer* all = [] {
    auto* a = new Authorizer();
    a->config_.open_admin_without_tokens = true;
    return a;
  }();
  return all;
}

grpc::Status Authorizer::Check(const grpc::ServerContextBase& context, Access access, Caller* caller) const {
  Caller who = CallerOf(context);
  const AuthDecision decision = Authorize(who, access, config_);
  if (!decision.allowed) {
    prometheus::Counter* c = access == Access::kWrite       ? refused_write_
                             : access == Access::kSubscribe ? refused_subscribe_
                                                            : refused_read_;
    if (c != nullptr) c->Increment();
    SB_LOG(WARNING) << "refused " << who.Describe() << " from " << context.peer() << ": " << decision.reason;
  }
  if (caller != nullptr) *caller = std::move(who);
  return ToGrpcStatus(decision);
}

AuthDecision Authorizer::CheckAgent(const Caller& caller, const std::string& node_id) const {
  AuthDecision decision = CheckAgentIdentity(caller, node_id, agent_certificates_required_);
  if (!decision.allowed && refused_agent_ != nullptr) refused_agent_->Increment();
  return decision;
}

}  // namespace switchboard::controlplane
