// Growth of two cumulative counters between scrapes, such as tokens and the seconds
// spent on them, from which a probe derives a speed measured on finished work.
//
// Engines' counters are cumulative since the server started. The first scrape only sets
// a baseline; a value that is missing, not finite or negative is ignored (the baseline
// stays); a counter that went down means the server restarted, and that scrape becomes
// the new baseline rather than a negative rate.
#ifndef SWITCHBOARD_AGENT_PROBE_COUNTER_PAIR_H_
#define SWITCHBOARD_AGENT_PROBE_COUNTER_PAIR_H_

#include <optional>

#include "absl/time/time.h"

namespace switchboard::agent {

class CounterPair {
 public:
  struct Growth {
    double first = 0;    // Of the first counter since the previous scrape.
    double second = 0;   // Of the second.
    double seconds = 0;  // Wall time between the two scrapes.
    // first / second when both grew (tokens per second of work), else 0.
    double Ratio() const { return first > 0 && second > 0 ? first / second : 0; }
  };

  // Feeds one scrape taken at `now`; the growth since the previous one, or nothing on the
  // first scrape, on invalid values, and on a restart.
  std::optional<Growth> Update(absl::Time now, std::optional<double> first, std::optional<double> second);
  // One counter alone (its growth is `first`, with `seconds` for a rate).
  std::optional<Growth> Update(absl::Time now, std::optional<double> counter) { return Update(now, counter, 0.0); }

 private:
  struct Sample {
    absl::Time at;
    double first, second;
  };
  std::optional<Sample> last_;
};

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_PROBE_COUNTER_PAIR_H_
