// Envoy's Rate Limit Service v3 (envoy.service.ratelimit.v3.RateLimitService) on the
// control plane's gRPC port, for Envoy's global rate limit filter (and the picker). A thin
// adapter: protos in, RateLimiter (limiter.h) decisions out.
//
//   hits_addend 0 (unset) counts 1, as upstream documents;
//   statuses: one per descriptor, with its most constraining limit (name = the rule; the
//     limit in requests_per_unit even for tokens), remaining quota and time to reset;
//   response_headers_to_add: x-ratelimit-limit ("N, N;w=SECONDS"), x-ratelimit-remaining
//     and x-ratelimit-reset (whole seconds, rounded up) of the call's most constraining
//     limit, when any limit applied;
//   errors: NOT_FOUND for another domain, INVALID_ARGUMENT for a bad descriptor,
//     RESOURCE_EXHAUSTED at the descriptor cap (Envoy then follows its failure_mode_deny).
// Callers are authorized as subscribers (--subscriber-auth), like Envoy's xDS stream.
#ifndef SWITCHBOARD_CONTROLPLANE_RATELIMIT_RLS_SERVICE_H_
#define SWITCHBOARD_CONTROLPLANE_RATELIMIT_RLS_SERVICE_H_

#include <functional>

#include "controlplane/ratelimit/limiter.h"
#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace switchboard::controlplane::ratelimit {

// The rate limits' metrics, declared in one place.
struct RateLimitMetrics {
  explicit RateLimitMetrics(prometheus::Registry& registry);
  prometheus::Counter* ok;          // switchboard_ratelimit_decisions_total{code="ok"}
  prometheus::Counter* over_limit;  // {code="over_limit"}
  prometheus::Counter* invalid;     // {code="invalid"}: bad descriptor or unknown domain
  prometheus::Counter* at_cap;      // {code="descriptor_cap"}: refused at max_descriptors
  prometheus::Gauge* descriptors;   // switchboard_ratelimit_descriptors
};

// Fills `response` from `decision` (exposed for tests and the bench).
void ToRlsResponse(const RateLimitDecision& decision, envoy::service::ratelimit::v3::RateLimitResponse* response);

class RateLimitServiceImpl final : public envoy::service::ratelimit::v3::RateLimitService::CallbackService {
 public:
  // OK, or the refusal to answer (the control plane passes its Authorizer's subscriber
  // check; empty = everyone may call).
  using Authorize = std::function<grpc::Status(const grpc::ServerContextBase&)>;
  // Pointers must outlive the service; `metrics` may be null.
  RateLimitServiceImpl(RateLimiter* limiter, Authorize authorize, RateLimitMetrics* metrics)
      : limiter_(limiter), authorize_(std::move(authorize)), metrics_(metrics) {}

  grpc::ServerUnaryReactor* ShouldRateLimit(grpc::CallbackServerContext* context,
                                            const envoy::service::ratelimit::v3::RateLimitRequest* request,
                                            envoy::service::ratelimit::v3::RateLimitResponse* response) override;

 private:
  RateLimiter* const limiter_;
  const Authorize authorize_;
  RateLimitMetrics* const metrics_;
};

}  // namespace switchboard::controlplane::ratelimit

#endif  // SWITCHBOARD_CONTROLPLANE_RATELIMIT_RLS_SERVICE_H_
