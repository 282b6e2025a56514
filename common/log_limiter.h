// Rate limits for log lines that an outsider can cause at will (a peer's malformed
// messages, protobuf's complaint about each one): at most one line per key per interval;
// the lines held back are counted and the next line let through says how many.
#ifndef SWITCHBOARD_COMMON_LOG_LIMITER_H_
#define SWITCHBOARD_COMMON_LOG_LIMITER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace switchboard {

class LogRateLimiter {
 public:
  // At most one line per key per `interval`. At most `max_keys` keys are remembered (each
  // a few dozen bytes): past that, new keys share one slot, so a peer that varies its key
  // (a new port per connection) still gets one line per interval in all.
  explicit LogRateLimiter(absl::Duration interval, size_t max_keys = 1024);

  struct Verdict {
    bool log = false;
    uint64_t suppressed = 0;  // With log: lines held back for this key since its last line.
  };
  // Whether a line for `key` at `now` (any monotonic time) may be written. Thread-safe.
  Verdict Admit(const std::string& key, absl::Time now);

  // " (N similar lines suppressed)" for a verdict that held some back, else "".
  static std::string Suffix(const Verdict& verdict);

 private:
  struct Entry {
    absl::Time last_logged;
    uint64_t suppressed = 0;
  };
  const absl::Duration interval_;
  const size_t max_keys_;
  Mutex mu_;
  std::unordered_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_LOG_LIMITER_H_
