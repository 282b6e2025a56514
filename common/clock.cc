#include "common/clock.h"

#include <chrono>

namespace switchboard {

absl::Time SystemClock::MonotonicNow() const {
  // steady_clock has an arbitrary epoch; mapping it onto absl::Time keeps arithmetic
  // in absl::Duration without pretending the result is a calendar time.
  return absl::UnixEpoch() + absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

SystemClock* SystemClock::Get() {
  static SystemClock* clock = new SystemClock();
  return clock;
}

}  // namespace switchboard
