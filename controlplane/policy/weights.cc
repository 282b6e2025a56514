#include "controlplane/policy/weights.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

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

namespace {

// The share of an endpoint's reported free slots and queue that still holds when proxies
// use its weight (WeightConfig::view_age). The weighted rule only: slot_based compares
// the reported free slots as they are, on purpose.
double ReportKept(const WeightInput& in, const WeightConfig& config) {
  if (config.rule != WeightRule::kWeighted || in.slot_seconds_per_request <= 0 ||
      config.view_age <= absl::ZeroDuration()) {
    return 1;
  }
  return std::exp(-absl::ToDoubleSeconds(config.view_age) / in.slot_seconds_per_request);
}

// The arithmetic of the pool's rule for one routable endpoint, before hysteresis and cap.
std::string DescribeRule(const WeightInput& in, const WeightResult& r, uint32_t weight, CapacitySource source,
                         double max_raw, double pool_free_share, const WeightConfig& config) {
  const uint32_t slots = std::max<uint32_t>(in.slots_total, 1);
  const uint32_t free_slots = in.slots_total - std::min(in.slots_busy, in.slots_total);
  switch (config.rule) {
    case WeightRule::kWeighted: {
      const double kept = r.report_kept;
      std::string aged;
      if (kept < 1) {
        aged = absl::StrFormat(
            " (%.0f%% of the reported %d free and %d queued, exp(-%.3gs view age / %.3gs a request holds a slot); the "
            "rest at the pool's %.0f%% free)",
            100 * kept, free_slots, in.queue_depth, absl::ToDoubleSeconds(config.view_age), in.slot_seconds_per_request,
            100 * pool_free_share);
      }
      return absl::StrFormat(
          "weight %d: weighted: capacity %.4g (%s) x max(free slots %.3g, %.2f x %d slots) / (1 + queue %.3g / that "
          "floor)%s = %.4g; x %d / pool max %.4g",
          weight, r.capacity, CapacitySourceName(source),
          kept * free_slots + (1 - kept) * pool_free_share * in.slots_total, config.busy_floor_share, slots,
          kept * in.queue_depth, aged, r.raw, kMaxWeight, max_raw);
    }
    case WeightRule::kRoundRobin:
      return absl::StrFormat("weight %d: round robin: every routable endpoint the same", weight);
    case WeightRule::kLeastRequest:
      return absl::StrFormat(
          "weight %d: least request: capacity %.4g (%s) x %d slots = %.4g; x %d / pool max %.4g (the proxy's "
          "least-request choice follows the load)",
          weight, r.capacity, CapacitySourceName(source), slots, r.raw, kMaxWeight, max_raw);
    case WeightRule::kSlotBased:
      return absl::StrFormat("weight %d: slot based: %d free slots, %s the pool's most (%.0f): %s", weight, free_slots,
                             r.raw == max_raw ? "equal to" : "below", max_raw,
                             r.raw == max_raw ? "the most free slots get the most weight" : "the others get 1");
  }
  return "?";
}

}  // namespace

PoolWeights ComputeWeights(const std::vector<WeightInput>& inputs, const WeightConfig& config, bool explain) {
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

  // The pool's share of free slots: what a slot's state regresses to as its report ages.
  double pool_slots = 0, pool_free = 0;
  for (const WeightInput& in : inputs) {
    if (!in.routable) continue;
    pool_slots += in.slots_total;
    pool_free += in.slots_total - std::min(in.slots_busy, in.slots_total);
  }
  const double pool_free_share = pool_slots > 0 ? pool_free / pool_slots : 0;

  double max_raw = 0;  // With the slot-based rule and every slot busy, all raw are 0.
  for (size_t i = 0; i < inputs.size(); ++i) {
    const WeightInput& in = inputs[i];
    if (!in.routable) continue;
    double capacity = 1.0;
    if (out.capacity_source == CapacitySource::kMeasured) capacity = in.slot_tokens_per_second;
    if (out.capacity_source == CapacitySource::kHint) capacity = in.capacity_hint;
    const double slots = std::max<uint32_t>(in.slots_total, 1);
    const double reported_free = in.slots_total >= in.slots_busy ? in.slots_total - in.slots_busy : 0;
    const double kept = ReportKept(in, config);
    const double free_slots = kept * reported_free + (1 - kept) * pool_free_share * in.slots_total;
    const double queue = kept * in.queue_depth;
    out.endpoints[i].report_kept = kept;
    const double credit = std::max(free_slots, config.busy_floor_share * slots);
    double raw = capacity * credit / (1.0 + queue / (config.busy_floor_share * slots));
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
    if (!in.routable) {
      if (explain) r.reason = "weight 0: excluded (its circuit does not admit traffic)";
      continue;
    }
    uint32_t w = 1;
    if (max_raw <= 0) {
      // Nothing free anywhere (slot-based): spread evenly rather than exclude.
      if (explain) r.reason = "weight 1: slot based, and no endpoint of the pool has a free slot: every one gets 1";
    } else {
      double scaled = std::round(kMaxWeight * r.raw / max_raw);
      if (config.rule == WeightRule::kSlotBased) scaled = r.raw == max_raw ? kMaxWeight : 1;
      w = static_cast<uint32_t>(std::clamp(scaled, 1.0, static_cast<double>(kMaxWeight)));
      if (explain) r.reason = DescribeRule(in, r, w, out.capacity_source, max_raw, pool_free_share, config);
    }
    if (in.previous_weight > 0 && config.rule == WeightRule::kWeighted) {
      const double band = std::max(1.0, config.hysteresis * in.previous_weight);
      if (w != in.previous_weight && std::abs(static_cast<double>(w) - in.previous_weight) <= band) {
        if (explain) {
          absl::StrAppend(&r.reason,
                          absl::StrFormat("; kept at the previous %d: %d is within the %.0f%% hysteresis band",
                                          in.previous_weight, w, 100 * config.hysteresis));
        }
        w = in.previous_weight;
      }
    }
    if (in.weight_cap > 0 && w > in.weight_cap) {
      if (explain) absl::StrAppend(&r.reason, "; capped at ", in.weight_cap, " while its circuit is half-open (trial)");
      w = in.weight_cap;
    }
    r.weight = w;
  }
  return out;
}

}  // namespace switchboard::controlplane::policy
