#include "controlplane/ratelimit/rls_service.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/service/grpc_status.h"

namespace switchboard::controlplane::ratelimit {
namespace {

using envoy::service::ratelimit::v3::RateLimitRequest;
using envoy::service::ratelimit::v3::RateLimitResponse;

RateLimitResponse::RateLimit::Unit UnitOf(int64_t window_seconds) {
  switch (window_seconds) {
    case 1:
      return RateLimitResponse::RateLimit::SECOND;
    case 60:
      return RateLimitResponse::RateLimit::MINUTE;
    case 3600:
      return RateLimitResponse::RateLimit::HOUR;
    default:
      return RateLimitResponse::RateLimit::UNKNOWN;
  }
}

uint32_t Clamp32(uint64_t v) {
  return static_cast<uint32_t>(std::min<uint64_t>(v, std::numeric_limits<uint32_t>::max()));
}

void AddHeader(RateLimitResponse* response, const char* key, const std::string& value) {
  auto* h = response->add_response_headers_to_add();
  h->set_key(key);
  h->set_value(value);
}

}  // namespace

RateLimitMetrics::RateLimitMetrics(prometheus::Registry& registry) {
  auto& decisions = prometheus::BuildCounter()
                        .Name("switchboard_ratelimit_decisions_total")
                        .Help(
                            "Rate Limit Service calls by outcome: ok, over_limit, invalid (bad descriptor or "
                            "unknown domain), descriptor_cap (refused at rate_limits.max_descriptors)")
                        .Register(registry);
  ok = &decisions.Add({{"code", "ok"}});
  over_limit = &decisions.Add({{"code", "over_limit"}});
  invalid = &decisions.Add({{"code", "invalid"}});
  at_cap = &decisions.Add({{"code", "descriptor_cap"}});
  descriptors = &prometheus::BuildGauge()
                     .Name("switchboard_ratelimit_descriptors")
                     .Help("Distinct rate limit descriptors counted now (at most rate_limits.max_descriptors)")
                     .Register(registry)
                     .Add({});
}

void ToRlsResponse(const RateLimitDecision& decision, RateLimitResponse* response) {
  response->set_overall_code(decision.overall == Code::kOverLimit ? RateLimitResponse::OVER_LIMIT
                                                                  : RateLimitResponse::OK);
  for (const DescriptorDecision& dd : decision.descriptors) {
    auto* status = response->add_statuses();
    status->set_code(dd.code == Code::kOverLimit ? RateLimitResponse::OVER_LIMIT : RateLimitResponse::OK);
    if (dd.limits.empty()) continue;
    const LimitStatus& top = dd.limits.front();
    auto* limit = status->mutable_current_limit();
    limit->set_name(absl::StrCat(top.rule, ":", UnitName(top.limit.unit)));
    limit->set_requests_per_unit(Clamp32(top.limit.limit));
    limit->set_unit(UnitOf(top.limit.window_seconds));
    status->set_limit_remaining(Clamp32(top.remaining));
    const int64_t ns = absl::ToInt64Nanoseconds(top.reset);
    status->mutable_duration_until_reset()->set_seconds(ns / 1'000'000'000);
    status->mutable_duration_until_reset()->set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
  }
  if (const LimitStatus* top = MostConstraining(decision); top != nullptr) {
    AddHeader(response, "x-ratelimit-limit",
              absl::StrCat(top->limit.limit, ", ", top->limit.limit, ";w=", top->limit.window_seconds));
    AddHeader(response, "x-ratelimit-remaining", absl::StrCat(top->remaining));
    AddHeader(response, "x-ratelimit-reset",
              absl::StrCat(absl::ToInt64Seconds(absl::Ceil(top->reset, absl::Seconds(1)))));
  }
}

grpc::ServerUnaryReactor* RateLimitServiceImpl::ShouldRateLimit(grpc::CallbackServerContext* context,
                                                                const RateLimitRequest* request,
                                                                RateLimitResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (authorize_) {
    if (grpc::Status s = authorize_(*context); !s.ok()) {
      reactor->Finish(s);
      return reactor;
    }
  }
  std::vector<Descriptor> descriptors;
  descriptors.reserve(request->descriptors_size());
  for (const auto& d : request->descriptors()) {
    Descriptor& out = descriptors.emplace_back();
    out.entries.reserve(d.entries_size());
    for (const auto& e : d.entries()) out.entries.push_back({e.key(), e.value()});
  }
  const uint64_t hits = request->hits_addend() == 0 ? 1 : request->hits_addend();
  absl::StatusOr<RateLimitDecision> decision = limiter_->Decide(request->domain(), descriptors, hits);
  if (metrics_ != nullptr) {
    if (decision.ok()) {
      (decision->overall == Code::kOverLimit ? metrics_->over_limit : metrics_->ok)->Increment();
    } else {
      (decision.status().code() == absl::StatusCode::kResourceExhausted ? metrics_->at_cap : metrics_->invalid)
          ->Increment();
    }
    metrics_->descriptors->Set(static_cast<double>(limiter_->descriptors()));
  }
  if (!decision.ok()) {
    reactor->Finish(ToGrpcStatus(decision.status()));
    return reactor;
  }
  ToRlsResponse(*decision, response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace switchboard::controlplane::ratelimit
