#include "common/log_limiter.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace switchboard {
namespace {

// The slot that keys share once `max_keys` are remembered (no real key is empty).
constexpr char kOverflowKey[] = "";

}  // namespace

LogRateLimiter::LogRateLimiter(absl::Duration interval, size_t max_keys)
    : interval_(interval), max_keys_(max_keys < 2 ? 2 : max_keys) {}

LogRateLimiter::Verdict LogRateLimiter::Admit(const std::string& key, absl::Time now) {
  MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    // One slot stays for the overflow; real keys take the others.
    auto real_keys = [this]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return entries_.size() - entries_.count(kOverflowKey); };
    std::string slot = key;
    if (real_keys() >= max_keys_ - 1) {
      // Keys quiet for a whole interval would be let through anyway: forget them first.
      for (auto e = entries_.begin(); e != entries_.end();) {
        const bool idle =
            e->first != kOverflowKey && e->second.suppressed == 0 && now - e->second.last_logged >= interval_;
        e = idle ? entries_.erase(e) : std::next(e);
      }
      if (real_keys() >= max_keys_ - 1) slot = kOverflowKey;
    }
    it = entries_.find(slot);
    if (it == entries_.end()) {
      entries_.emplace(slot, Entry{now, 0});
      return {true, 0};
    }
  }
  Entry& e = it->second;
  if (now - e.last_logged < interval_) {
    ++e.suppressed;
    return {false, 0};
  }
  Verdict v{true, e.suppressed};
  e.last_logged = now;
  e.suppressed = 0;
  return v;
}

std::string LogRateLimiter::Suffix(const Verdict& verdict) {
  if (verdict.suppressed == 0) return "";
  return absl::StrCat(" (", verdict.suppressed, " similar line", verdict.suppressed == 1 ? "" : "s", " suppressed)");
}

}  // namespace switchboard
