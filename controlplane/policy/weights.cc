#include "controlplane/policy/weights.h"

#include <algorithm>
#include <cmath>

namespace switchboard::controlplane::policy {

const char* CapacitySourceName(CapacitySource source) {
  switch (source) {
    case CapacitySource::kMeasured:
      return "measured tokens/s per slot";
    case CapacitySource::kHint:
      return "capacity hint";
    case CapacitySource::kEqual:
      return "equal";
  }
  return "?";
}

PoolWeights ComputeWeights(const std::vector<WeightInput>& inputs, const WeightConfig& config) {
  PoolWeights out;
  out.endpoints.resize(inputs.size());

  bool all_measured = true;
  bool all_hinted = true;
  bool any_routable = false;
  for (const WeightInput& in : inputs) {
    if (!in.routable) continue;
    any_routable = true;
    all_measured &= in.slot_tokens_per_second > 0;
    all_hinted &= in.capacity_hint > 0;
  }
  if (any_routable && all_measured) {
    out.capacity_source = CapacitySource::kMeasured;
  } else if (any_routable && all_hinted) {
    out.capacity_source = CapacitySource::kHint;
  }

  double max_raw = 0;  // With the slot-based rule and every slot busy, all raw are 0.
  for (size_t i = 0; i < inputs.size(); ++i) {
    const WeightInput& in = inputs[i];
    if (!in.routable) continue;
    double capacity = 1.0;
    if (out.capacity_source == CapacitySource::kMeasured) capacity = in.slot_tokens_per_second;
    if (out.capacity_source == CapacitySource::kHint) capacity = in.capacity_hint;
    const double slots = std::max<uint32_t>(in.slots_total, 1);
    const double free_slots = in.slots_total >= in.slots_busy ? in.slots_total - in.slots_busy : 0;
    const double credit = std::max(free_slots, config.busy_floor_share * slots);
    double raw = capacity * credit / (1.0 + in.queue_depth / (config.busy_floor_share * slots));
    switch (config.rule) {
      case WeightRule::kWeighted:
        break;
      case WeightRule::kRoundRobin:
        raw = 1;
        break;
      case WeightRule::kLeastRequest:
        raw = capacity * slots;  // Static: what the endpoint can hold.
        break;
      case WeightRule::kSlotBased:
        raw = free_slots;
        break;
    }
    out.endpoints[i].capacity = capacity;
    out.endpoints[i].raw = raw;
    max_raw = std::max(max_raw, raw);
  }

  for (size_t i = 0; i < inputs.size(); ++i) {
    const WeightInput& in = inputs[i];
    WeightResult& r = out.endpoints[i];
    if (!in.routable) continue;
    if (max_raw <= 0) {
      r.weight = 1;  // Nothing free anywhere (slot-based): spread evenly rather than exclude.
      continue;
    }
    double scaled = std::round(kMaxWeight * r.raw / max_raw);
    if (config.rule == WeightRule::kSlotBased) scaled = r.raw == max_raw ? kMaxWeight : 1;
    uint32_t w = static_cast<uint32_t>(std::clamp(scaled, 1.0, static_cast<double>(kMaxWeight)));
    if (in.previous_weight > 0 && config.rule == WeightRule::kWeighted) {
      const double band = std::max(1.0, config.hysteresis * in.previous_weight);
      if (std::abs(static_cast<double>(w) - in.previous_weight) <= band) w = in.previous_weight;
    }
    r.weight = w;
  }
  return out;
}

}  // namespace switchboard::controlplane::policy
