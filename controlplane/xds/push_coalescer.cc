#include "controlplane/xds/push_coalescer.h"

#include <algorithm>
#include <utility>

#include "common/thread_name.h"

namespace switchboard::controlplane::xds {

PushDecision NextPush(absl::Time first_change, absl::Time last_change, const PushCoalescing& config) {
  const absl::Time quiet_at = last_change + config.quiet;
  const absl::Time bound_at = first_change + std::max(config.max_delay, absl::ZeroDuration());
  if (bound_at < quiet_at) return {bound_at, "bounded"};
  return {quiet_at, "quiet"};
}

PushCoalescer::PushCoalescer(const Clock* clock, PushCoalescing config, std::function<void()> push)
    : clock_(clock), config_(config), push_(std::move(push)), thread_([this] { Run(); }) {}

PushCoalescer::~PushCoalescer() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void PushCoalescer::Notify() {
  const absl::Time now = clock_->MonotonicNow();
  MutexLock lock(&mu_);
  if (!pending_) first_change_ = now;
  last_change_ = now;
  pending_ = true;
}

int64_t PushCoalescer::pushes() const {
  MutexLock lock(&mu_);
  return pushes_;
}

void PushCoalescer::Run() {
  NameThisThread("sb-xds-push");
  MutexLock lock(&mu_);
  auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || pending_; };
  while (true) {
    clock_->AwaitWithDeadline(&mu_, Condition(&woken), absl::InfiniteFuture());
    if (stop_) return;
    // A later change only moves the push later (up to the bound): wait, then look again.
    const PushDecision next = NextPush(first_change_, last_change_, config_);
    if (clock_->MonotonicNow() < next.at) {
      clock_->AwaitWithDeadline(&mu_, Condition(&stop_), next.at);
      continue;
    }
    pending_ = false;
    ++pushes_;
    mu_.Unlock();
    push_();
    mu_.Lock();
  }
}

}  // namespace switchboard::controlplane::xds
