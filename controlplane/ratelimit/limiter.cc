#include "controlplane/ratelimit/limiter.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace switchboard::controlplane::ratelimit {

RateLimiter::RateLimiter(RateLimitConfig config, const Clock* clock)
    : clock_(clock),
      config_(std::make_shared<const RateLimitConfig>(std::move(config))),
      share_(std::make_shared<const RateLimitConfig>(ReplicaShare(*config_))) {}

absl::StatusOr<RateLimitDecision> RateLimiter::Decide(const std::string& domain,
                                                      const std::vector<Descriptor>& descriptors, uint64_t hits) {
  const absl::Time now = clock_->Now();
  MutexLock lock(&mu_);
  if (domain != config_->domain) {
    return absl::NotFoundError(absl::StrCat("rate limit domain '", domain,
                                            "' is not configured (rate_limits.domain is '", config_->domain, "')"));
  }
  return DecideRateLimit(descriptors, hits, &counters_, *share_, now);
}

void RateLimiter::Reload(RateLimitConfig config) {
  auto next = std::make_shared<const RateLimitConfig>(std::move(config));
  auto share = std::make_shared<const RateLimitConfig>(ReplicaShare(*next));
  MutexLock lock(&mu_);
  config_ = std::move(next);
  share_ = std::move(share);
}

std::shared_ptr<const RateLimitConfig> RateLimiter::config() const {
  MutexLock lock(&mu_);
  return config_;
}

std::vector<RateLimitCounters::Usage> RateLimiter::Usage() const {
  const absl::Time now = clock_->Now();
  MutexLock lock(&mu_);
  return counters_.Snapshot(*share_, now);
}

size_t RateLimiter::descriptors() const {
  MutexLock lock(&mu_);
  return counters_.size();
}

}  // namespace switchboard::controlplane::ratelimit
