// The picker's side of the global rate limits: the control plane's Rate Limit Service
// (Envoy's RLS v3, the same service Envoy's rate limit filter calls) asked before each
// pick, and told the tokens a response used after it.
//
// Descriptors. From the request: tenant (x-tenant), class (x-priority) and model (the
// body's "model"). A call carries one descriptor for every non-empty combination of the
// keys present, so each rule of `rate_limits:` whose match has exactly some of these keys
// applies (a descriptor that no rule matches costs nothing on the control plane).
//
// Admission is an asynchronous call with a deadline (--ratelimit-timeout): the ext_proc
// stream that asked waits for its answer (Exchange::Resume), no thread does; an error or a
// missed deadline admits or refuses by --ratelimit-failure-mode (allow by default, like
// Envoy's filter). Token reports are asynchronous and never delay an answer.
#ifndef SWITCHBOARD_PICKER_RATE_LIMIT_H_
#define SWITCHBOARD_PICKER_RATE_LIMIT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "grpcpp/channel.h"

namespace switchboard::picker {

struct RateLimitKeys {
  std::string tenant, priority, model;
};

// Every non-empty combination of the keys present (tenant, class, model: at most 7), as
// descriptors of `request`; with `tokens`, each also carries unit=tokens.
void AddRateLimitDescriptors(const RateLimitKeys& keys, bool tokens,
                             envoy::service::ratelimit::v3::RateLimitRequest* request);

// The tokens a response body reports: usage.total_tokens of an OpenAI-style JSON body,
// or of the last server-sent event that carries it (streamed chat completions with
// stream_options.include_usage). Nullopt without one.
std::optional<uint64_t> ResponseTokens(absl::string_view body);

struct RateLimitVerdict {
  bool admit = true;
  bool error = false;  // The service did not answer (admit follows the failure mode).
  std::string reason;  // For the 429 body and logs.
  absl::Duration retry_after = absl::ZeroDuration();
  std::vector<std::pair<std::string, std::string>> headers;  // x-ratelimit-*.
};

// The verdict of one admission call that ended with `status` and `response`: an error
// admits when `fail_open`; OVER_LIMIT refuses with the longest reset of the refusing
// descriptors as retry_after.
RateLimitVerdict ToRateLimitVerdict(const grpc::Status& status,
                                    const envoy::service::ratelimit::v3::RateLimitResponse& response, bool fail_open);

class RateLimitClient {
 public:
  RateLimitClient(std::shared_ptr<grpc::Channel> channel, std::string domain, absl::Duration timeout, bool fail_open)
      : stub_(envoy::service::ratelimit::v3::RateLimitService::NewStub(std::move(channel))),
        domain_(std::move(domain)),
        timeout_(timeout),
        fail_open_(fail_open) {}

  // One request asking to be admitted (hits 1). Returns at once; `done` runs exactly once
  // with the verdict, on a gRPC thread, within about the timeout. The client must outlive
  // the calls in flight.
  using Done = std::function<void(RateLimitVerdict)>;
  void CheckAsync(const RateLimitKeys& keys, Done done);
  // The tokens one admitted request used; fire and forget.
  void ReportTokens(const RateLimitKeys& keys, uint64_t tokens);

 private:
  std::unique_ptr<envoy::service::ratelimit::v3::RateLimitService::Stub> stub_;
  const std::string domain_;
  const absl::Duration timeout_;
  const bool fail_open_;
};

}  // namespace switchboard::picker

#endif  // SWITCHBOARD_PICKER_RATE_LIMIT_H_
