// AdminService.ListRateLimits (sbctl limits): the rate limiter's usage, as protos.
#include "controlplane/service/admin_service.h"
#include "google/protobuf/util/time_util.h"

namespace switchboard::controlplane {

using google::protobuf::util::TimeUtil;

grpc::ServerUnaryReactor* AdminServiceImpl::ListRateLimits(grpc::CallbackServerContext* context,
                                                           const v1::ListRateLimitsRequest* /*request*/,
                                                           v1::ListRateLimitsResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!Allowed(context, Access::kRead, reactor)) return reactor;
  if (rate_limiter_ != nullptr) {
    const auto config = rate_limiter_->config();
    response->set_domain(config->domain);
    response->set_max_descriptors(config->max_descriptors);
    response->set_replicas(config->replicas);
    response->set_descriptors(rate_limiter_->descriptors());
    for (const ratelimit::RateLimitCounters::Usage& u : rate_limiter_->Usage()) {
      v1::RateLimitUsage* out = response->add_usages();
      for (const ratelimit::Entry& e : u.descriptor) {
        v1::RateLimitEntry* entry = out->add_entries();
        entry->set_key(e.key);
        entry->set_value(e.value);
      }
      out->set_rule(u.status.rule);
      out->set_unit(u.status.limit.unit == ratelimit::Unit::kTokens ? v1::RATE_LIMIT_UNIT_TOKENS
                                                                    : v1::RATE_LIMIT_UNIT_REQUESTS);
      out->mutable_window()->set_seconds(u.status.limit.window_seconds);
      out->set_limit(u.status.limit.limit);
      out->set_used(u.status.used);
      out->set_remaining(u.status.remaining);
      *out->mutable_reset() = TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(u.status.reset));
    }
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace switchboard::controlplane
