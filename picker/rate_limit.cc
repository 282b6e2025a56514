#include "picker/rate_limit.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace switchboard::picker {
namespace {

using envoy::service::ratelimit::v3::RateLimitRequest;
using envoy::service::ratelimit::v3::RateLimitResponse;

std::optional<uint64_t> TotalTokens(absl::string_view json) {
  nlohmann::json j = nlohmann::json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto usage = j.find("usage");
  if (usage == j.end() || !usage->is_object()) return std::nullopt;
  auto total = usage->find("total_tokens");
  if (total == usage->end() || !total->is_number_unsigned()) return std::nullopt;
  return total->get<uint64_t>();
}

}  // namespace

void AddRateLimitDescriptors(const RateLimitKeys& keys, bool tokens, RateLimitRequest* request) {
  const std::pair<const char*, const std::string*> all[] = {
      {"tenant", &keys.tenant}, {"class", &keys.priority}, {"model", &keys.model}};
  for (int mask = 1; mask < 8; ++mask) {
    bool complete = true;
    for (int i = 0; i < 3; ++i) {
      if ((mask & (1 << i)) && all[i].second->empty()) complete = false;
    }
    if (!complete) continue;
    auto* d = request->add_descriptors();
    for (int i = 0; i < 3; ++i) {
      if (!(mask & (1 << i))) continue;
      auto* e = d->add_entries();
      e->set_key(all[i].first);
      e->set_value(*all[i].second);
    }
    if (tokens) {
      auto* e = d->add_entries();
      e->set_key("unit");
      e->set_value("tokens");
    }
  }
}

std::optional<uint64_t> ResponseTokens(absl::string_view body) {
  if (std::optional<uint64_t> t = TotalTokens(body); t.has_value()) return t;
  // Server-sent events: "data: {...}" lines; the last one with usage wins.
  std::optional<uint64_t> last;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == absl::string_view::npos) end = body.size();
    absl::string_view line = body.substr(pos, end - pos);
    pos = end + 1;
    if (!absl::ConsumePrefix(&line, "data:")) continue;
    if (std::optional<uint64_t> t = TotalTokens(line); t.has_value()) last = t;
  }
  return last;
}

RateLimitVerdict ToRateLimitVerdict(const grpc::Status& status, const RateLimitResponse& response, bool fail_open) {
  RateLimitVerdict v;
  if (!status.ok()) {
    v.error = true;
    v.admit = fail_open;
    v.reason = absl::StrCat("rate limit service: ", status.error_message());
    return v;
  }
  for (const auto& h : response.response_headers_to_add()) v.headers.emplace_back(h.key(), h.value());
  if (response.overall_code() != RateLimitResponse::OVER_LIMIT) return v;
  v.admit = false;
  for (const auto& s : response.statuses()) {
    if (s.code() != RateLimitResponse::OVER_LIMIT) continue;
    const absl::Duration reset =
        absl::Seconds(s.duration_until_reset().seconds()) + absl::Nanoseconds(s.duration_until_reset().nanos());
    if (reset > v.retry_after || v.reason.empty()) {
      v.retry_after = std::max(v.retry_after, reset);
      v.reason =
          absl::StrCat("over the rate limit ", s.current_limit().name(), " (", s.current_limit().requests_per_unit(),
                       " per ", RateLimitResponse::RateLimit::Unit_Name(s.current_limit().unit()), ")");
    }
  }
  if (v.reason.empty()) v.reason = "over a rate limit";
  return v;
}

void RateLimitClient::CheckAsync(const RateLimitKeys& keys, Done done) {
  struct Call {
    grpc::ClientContext context;
    RateLimitRequest request;
    RateLimitResponse response;
    Done done;
  };
  auto* call = new Call;
  call->done = std::move(done);
  call->request.set_domain(domain_);
  AddRateLimitDescriptors(keys, false, &call->request);
  call->context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMicroseconds(timeout_));
  stub_->async()->ShouldRateLimit(&call->context, &call->request, &call->response,
                                  [call, fail_open = fail_open_](grpc::Status status) {
                                    RateLimitVerdict v = ToRateLimitVerdict(status, call->response, fail_open);
                                    Done then = std::move(call->done);
                                    delete call;
                                    then(std::move(v));
                                  });
}

void RateLimitClient::ReportTokens(const RateLimitKeys& keys, uint64_t tokens) {
  if (tokens == 0) return;  // hits_addend 0 would count 1.
  struct Call {
    grpc::ClientContext context;
    RateLimitRequest request;
    RateLimitResponse response;
  };
  auto* call = new Call;
  call->request.set_domain(domain_);
  call->request.set_hits_addend(static_cast<uint32_t>(std::min<uint64_t>(tokens, UINT32_MAX)));
  AddRateLimitDescriptors(keys, true, &call->request);
  call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  stub_->async()->ShouldRateLimit(&call->context, &call->request, &call->response,
                                  [call](grpc::Status) { delete call; });
}

}  // namespace switchboard::picker
