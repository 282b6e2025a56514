// Endpoint weights within one pool. Pure: explicit inputs, explicit outputs.
//
// weight ~ capacity_per_slot x max(free_slots, floor x slots) / (1 + queue / (floor x slots))
//
// normalized so the best endpoint gets kMaxWeight and every routable endpoint at least 1:
// proportional, never winner-take-all, so proxies acting on a slightly old view still
// spread load. Capacity per slot is the measured decode speed when every routable
// endpoint of the pool has one, else the configured hint when every one has that, else
// equal: mixing measured tokens/s with unitless hints would compare apples to pears.
#ifndef SWITCHBOARD_CONTROLPLANE_POLICY_WEIGHTS_H_
#define SWITCHBOARD_CONTROLPLANE_POLICY_WEIGHTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace switchboard::controlplane::policy {

inline constexpr uint32_t kMaxWeight = 128;

// Which rule turns endpoint state into weights (the pool's LB policy).
enum class WeightRule {
  kWeighted,      // Capacity x free slots, queue-discounted (the default, above).
  kRoundRobin,    // Every routable endpoint the same weight: plain round robin.
  kLeastRequest,  // Capacity only: the proxy's own least-request picks by load.
  kSlotBased,     // The "most free slots" rule: the endpoint(s) with the most free slots
                  // get kMaxWeight, the rest 1. Winner-take-all on purpose, to compare.
};

struct WeightConfig {
  WeightRule rule = WeightRule::kWeighted;
  // Credit (as a share of its slots) an endpoint keeps when all its slots are busy: a
  // big, fast server that is momentarily full still clears its queue sooner than a small
  // slow one with a free slot (the simulator's heterogeneous scenario shows it: p99 TTFT
  // 11.4 s with a floor of 0.25 slot, 2.2 s with 0.25 of the slots). Its queue, counted
  // against the same floor, wears the credit down.
  double busy_floor_share = 0.25;
  // A new weight replaces the previous one only when it differs by more than this share
  // of the previous weight (and by more than 1): small changes make no new version.
  double hysteresis = 0.10;
  // How old the state behind a weight is, in effect, while proxies use it. Busy and free
  // slots seen that long ago say little about a server whose requests hold a slot for
  // less: by then most have finished and others started. So each endpoint's free slots
  // and queue count for exp(-view_age / its slot time) of their reported value, and the
  // rest is the pool's average (its share of the pool's free slots). Zero: the reports
  // count in full.
  // The default is twice the agents' default report interval (1 s): the proxies all act on
  // the same view, so it ages for them as if older than it is; in the simulator (seeds
  // 1-8, docs/policy-evaluation.md) 2 s served bursty and prompt-heavy traffic best of
  // 0.6-4 s.
  absl::Duration view_age = absl::Seconds(2);
};

struct WeightInput {
  bool routable = false;
  uint32_t slots_total = 0;
  uint32_t slots_busy = 0;
  uint32_t queue_depth = 0;
  double slot_tokens_per_second = 0;  // 0 = not measured.
  // How long a request holds a slot, on average (measured end-to-end latency); 0 = not
  // measured, and then the reported slots count in full.
  double slot_seconds_per_request = 0;
  double capacity_hint = 0;      // 0 = none.
  uint32_t previous_weight = 0;  // 0 = none (new, or excluded before).
  uint32_t weight_cap = 0;       // 0 = none; a HALF_OPEN circuit's trial weight.
};

enum class CapacitySource { kMeasured, kHint, kEqual };

struct WeightResult {
  uint32_t weight = 0;     // 0 = excluded, else 1..kMaxWeight.
  double raw = 0;          // Before normalization (for explain).
  double capacity = 0;     // Capacity per slot used.
  double report_kept = 1;  // Share of the reported free slots and queue counted (view_age).
  std::string reason;      // The arithmetic of this rule, with the numbers, for explain.
};

struct PoolWeights {
  CapacitySource capacity_source = CapacitySource::kEqual;
  std::vector<WeightResult> endpoints;  // Same order as the inputs.
};

// Every routable endpoint gets 1..kMaxWeight by the rule, then hysteresis (kWeighted only),
// then its weight_cap; every other endpoint 0. Each result says how its weight came about;
// with `explain` false the reasons are left empty and everything else is the same (a
// reconcile pass keeps the inputs and explains on request: a sentence per endpoint per
// pass would be built only to be thrown away).
PoolWeights ComputeWeights(const std::vector<WeightInput>& inputs, const WeightConfig& config, bool explain = true);

const char* CapacitySourceName(CapacitySource source);

}  // namespace switchboard::controlplane::policy

#endif  // SWITCHBOARD_CONTROLPLANE_POLICY_WEIGHTS_H_
