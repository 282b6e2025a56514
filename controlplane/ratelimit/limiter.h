// RateLimiter: the running state of the global rate limits (the counters and the current
// configuration) behind one mutex, for the Rate Limit Service and `sbctl limits`. The
// decisions are DecideRateLimit's (sliding_window.h) under this replica's share of the
// limits (ReplicaShare); this class adds the clock, the domain check, reloads and the
// lock. Thread-safe.
#ifndef SWITCHBOARD_CONTROLPLANE_RATELIMIT_LIMITER_H_
#define SWITCHBOARD_CONTROLPLANE_RATELIMIT_LIMITER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "controlplane/ratelimit/sliding_window.h"

namespace switchboard::controlplane::ratelimit {

class RateLimiter {
 public:
  // `clock` must outlive the limiter; windows follow its wall time (Now()), so that
  // replicas agree on where a second begins.
  RateLimiter(RateLimitConfig config, const Clock* clock);

  // One call of `domain`. NOT_FOUND for a domain other than the configured one; the
  // errors of DecideRateLimit otherwise. Nothing is counted on an error.
  absl::StatusOr<RateLimitDecision> Decide(const std::string& domain, const std::vector<Descriptor>& descriptors,
                                           uint64_t hits);

  // Applies a new (validated) configuration. The counts are kept: the new limits apply to
  // the hits already in their windows.
  void Reload(RateLimitConfig config);

  // The configuration as given (with its `replicas`).
  std::shared_ptr<const RateLimitConfig> config() const;
  // Every counted descriptor's usage under the limits this replica enforces (its share in
  // divided mode, ReplicaShare), now.
  std::vector<RateLimitCounters::Usage> Usage() const;
  size_t descriptors() const;

 private:
  const Clock* const clock_;
  mutable Mutex mu_;
  std::shared_ptr<const RateLimitConfig> config_ ABSL_GUARDED_BY(mu_);
  // ReplicaShare(*config_): what Decide and Usage apply.
  std::shared_ptr<const RateLimitConfig> share_ ABSL_GUARDED_BY(mu_);
  RateLimitCounters counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace switchboard::controlplane::ratelimit

#endif  // SWITCHBOARD_CONTROLPLANE_RATELIMIT_LIMITER_H_
