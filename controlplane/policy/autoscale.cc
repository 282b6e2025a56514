#include "controlplane/policy/autoscale.h"

#include <algorithm>
#include <climits>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace switchboard::controlplane::policy {
namespace {

// Kubernetes keeps recommendations and events only as long as the longest window or
// period can look back.
absl::Duration LongestPeriod(const HpaScalingRules& rules) {
  absl::Duration d;
  for (const auto& p : rules.policies) d = std::max(d, p.period);
  return d;
}

int32_t SumChangesSince(const std::deque<AutoscaleState::ScaleEvent>& events, absl::Time since) {
  int32_t sum = 0;
  for (const auto& e : events) {
    if (e.time > since) sum += e.change;
  }
  return sum;
}

// calculateScaleUpLimitWithScalingRules.
int32_t ScaleUpLimit(int32_t current, const AutoscaleState& state, const HpaScalingRules& rules, absl::Time now) {
  const bool min_change = rules.select == HpaScalingRules::Select::kMin;
  int32_t result = min_change ? INT32_MAX : INT32_MIN;
  for (const HpaScalingPolicy& p : rules.policies) {
    const int32_t added = SumChangesSince(state.scale_up_events, now - p.period);
    const int32_t removed = SumChangesSince(state.scale_down_events, now - p.period);
    const int32_t start = current - added + removed;
    int32_t proposed = p.type == HpaScalingPolicy::Type::kPods
                           ? start + p.value
                           : static_cast<int32_t>(std::ceil(start * (1.0 + p.value / 100.0)));
    result = min_change ? std::min(result, proposed) : std::max(result, proposed);
  }
  return result;
}

// calculateScaleDownLimitWithBehaviors. For scaling down, the smallest change ("Min")
// is the highest limit.
int32_t ScaleDownLimit(int32_t current, const AutoscaleState& state, const HpaScalingRules& rules, absl::Time now) {
  const bool min_change = rules.select == HpaScalingRules::Select::kMin;
  int32_t result = min_change ? INT32_MIN : INT32_MAX;
  for (const HpaScalingPolicy& p : rules.policies) {
    const int32_t added = SumChangesSince(state.scale_up_events, now - p.period);
    const int32_t removed = SumChangesSince(state.scale_down_events, now - p.period);
    const int32_t start = current - added + removed;
    int32_t proposed = p.type == HpaScalingPolicy::Type::kPods
                           ? start - p.value
                           : static_cast<int32_t>(start * (1.0 - p.value / 100.0));  // truncation, as in Go
    result = min_change ? std::max(result, proposed) : std::min(result, proposed);
  }
  return result;
}

// Tolerances.isWithin: the band around a ratio of 1 in which nothing changes.
struct Tolerances {
  double down;
  double up;
  bool IsWithin(double ratio) const { return 1.0 - down <= ratio && ratio <= 1.0 + up; }
};

Tolerances TolerancesOf(const AutoscaleConfig& config) {
  Tolerances t{config.tolerance, config.tolerance};
  if (config.behavior) {
    t.down = config.behavior->scale_down.tolerance.value_or(t.down);
    t.up = config.behavior->scale_up.tolerance.value_or(t.up);
  }
  return t;
}

std::string ToleranceText(const Tolerances& t) {
  return t.down == t.up ? absl::StrFormat("%.2f", t.up) : absl::StrFormat("-%.2f/+%.2f", t.down, t.up);
}

MetricProposal Propose(const MetricTarget& target, const MetricObservation& obs, const AutoscaleConfig& config,
                       const AutoscaleInput& input) {
  MetricProposal p;
  p.signal = target.signal;
  p.value = obs.value;
  p.target = target.target;
  p.valid = obs.valid && std::isfinite(obs.value) && obs.value >= 0 && target.target > 0;
  if (!p.valid) return p;
  const int32_t current = input.current_replicas;
  const Tolerances tolerances = TolerancesOf(config);
  switch (target.signal) {
    case ScalingSignal::kQueuePerReplica:
    case ScalingSignal::kRequestsPerSecond: {
      // AverageValue over an external total: current replicas enter only the
      // tolerance test; desired = ceil(total / target).
      p.ratio = current > 0 ? obs.value / (target.target * current) : (obs.value > 0 ? INFINITY : 1.0);
      p.within_tolerance = tolerances.IsWithin(p.ratio);
      p.replicas = p.within_tolerance ? current : static_cast<int32_t>(std::ceil(obs.value / target.target));
      break;
    }
    case ScalingSignal::kSlotOccupancy:
    case ScalingSignal::kSlotDemand: {
      // Utilization over ready replicas: desired = ceil(ratio x ready).
      const int32_t ready = std::max(input.ready_replicas, 0);
      const int32_t unready = std::max(0, current - ready);
      p.ratio = obs.value / target.target;
      p.within_tolerance = tolerances.IsWithin(p.ratio);
      if (p.within_tolerance) {
        p.replicas = current;
      } else if (p.ratio > 1 && unready > 0) {
        // As the HPA does when scaling up: replicas still starting count as idle; if
        // that makes the ratio fall into tolerance (or reverse), wait for them.
        const double ratio = obs.value * ready / (ready + unready) / target.target;
        p.ratio = ratio;
        // Within tolerance, or the recount reverses the direction (ratio < 1): wait.
        p.within_tolerance = ratio <= 1.0 + tolerances.up;
        p.replicas = p.within_tolerance ? current : static_cast<int32_t>(std::ceil(ratio * (ready + unready)));
      } else {
        p.replicas = static_cast<int32_t>(std::ceil(p.ratio * ready));
      }
      break;
    }
    case ScalingSignal::kPredicted:
      p.ratio = current > 0 ? obs.value / current : 1.0;
      p.replicas = static_cast<int32_t>(std::ceil(obs.value));
      return p;
  }
  // A scale-down must survive the value's noise: propose again from the value plus the
  // margin, and take the larger of the two proposals (never more than current).
  if (p.replicas < current && target.scale_down_margin > 0 && std::isfinite(obs.stddev) && obs.stddev > 0) {
    MetricTarget plain = target;
    plain.scale_down_margin = 0;
    MetricObservation upper = obs;
    upper.value = obs.value + target.scale_down_margin * obs.stddev;
    const MetricProposal q = Propose(plain, upper, config, input);
    if (q.replicas > p.replicas) {
      p.held_by_margin = true;
      p.upper_value = upper.value;
      p.replicas_without_margin = p.replicas;
      p.replicas = std::min(current, q.replicas);
    }
  }
  return p;
}

}  // namespace

double OfferedSlots(double busy, double queue, double in_flight_growth, double completions, double slots) {
  if (!std::isfinite(busy) || busy < 0) return 0;
  if (!(completions > 0) || !std::isfinite(in_flight_growth) || !std::isfinite(slots)) return busy;
  const double arrivals = std::max(0.0, completions + in_flight_growth);
  const double offered = std::clamp(busy * arrivals / completions, 0.0, std::max(busy, 2 * slots));
  return queue > 0 ? std::max(offered, busy) : offered;
}

HpaScalingRules HpaBehavior::DefaultScaleUp() {
  HpaScalingRules r;
  r.stabilization_window = absl::ZeroDuration();
  r.select = HpaScalingRules::Select::kMax;
  r.policies = {{HpaScalingPolicy::Type::kPods, 4, absl::Seconds(15)},
                {HpaScalingPolicy::Type::kPercent, 100, absl::Seconds(15)}};
  return r;
}

HpaScalingRules HpaBehavior::DefaultScaleDown() {
  HpaScalingRules r;
  r.stabilization_window = absl::Seconds(300);
  r.select = HpaScalingRules::Select::kMax;
  r.policies = {{HpaScalingPolicy::Type::kPercent, 100, absl::Seconds(15)}};
  return r;
}

absl::Duration ScaleDownWindow(const AutoscaleConfig& config) {
  return config.behavior ? config.behavior->scale_down.stabilization_window : absl::Minutes(5);
}

std::string DescribeTolerance(const AutoscaleConfig& config) { return ToleranceText(TolerancesOf(config)); }

const char* ScalingSignalName(ScalingSignal s) {
  switch (s) {
    case ScalingSignal::kQueuePerReplica:
      return "queue_per_replica";
    case ScalingSignal::kSlotOccupancy:
      return "slot_occupancy";
    case ScalingSignal::kSlotDemand:
      return "slot_demand";
    case ScalingSignal::kRequestsPerSecond:
      return "requests_per_second";
    case ScalingSignal::kPredicted:
      return "predicted";
  }
  return "?";
}

AutoscaleDecision Autoscale(const AutoscaleConfig& config, const AutoscaleInput& input, AutoscaleState* state) {
  AutoscaleDecision d;
  const int32_t current = input.current_replicas;
  const absl::Time now = input.now;

  if (input.manual && now < input.manual->expires) {
    d.desired_replicas = d.proposal = d.stabilized = input.manual->replicas;
    // The expiry is monotonic; people read it as a date.
    const absl::Time expires_wall = input.wall + (input.manual->expires - now);
    d.reason = absl::StrCat("manual override to ", input.manual->replicas, " until ",
                            absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", expires_wall, absl::UTCTimeZone()),
                            input.manual->reason.empty() ? "" : absl::StrCat(" (", input.manual->reason, ")"));
    return d;
  }

  // 1. One proposal per metric; the largest wins. If some metrics are invalid, only
  //    scale up (never down on partial information).
  int32_t proposal = INT32_MIN;
  bool any_invalid = false;
  std::string why;
  for (const MetricTarget& target : config.metrics) {
    MetricObservation obs;
    obs.signal = target.signal;
    obs.valid = false;
    for (const MetricObservation& o : input.metrics) {
      if (o.signal == target.signal) obs = o;
    }
    MetricProposal p = Propose(target, obs, config, input);
    d.proposals.push_back(p);
    if (!p.valid) {
      // A forecast without history for that hour has no opinion; it is not a metric that
      // could not be read, and must not hold the pool at its size until the profile fills
      // (a week, for the calendar profile).
      if (target.signal != ScalingSignal::kPredicted) any_invalid = true;
      continue;
    }
    if (p.replicas > proposal) {
      proposal = p.replicas;
      if (p.within_tolerance) {
        why = absl::StrFormat("%s %.3g vs target %.3g is within tolerance %s: keep %d", ScalingSignalName(p.signal),
                              p.value, p.target, DescribeTolerance(config), current);
      } else if (p.held_by_margin) {
        why = absl::StrFormat("%s %.3g / target %.3g (ratio %.2f) -> %d, but with %.3g sd of noise (%.3g) -> %d",
                              ScalingSignalName(p.signal), p.value, p.target, p.ratio, p.replicas_without_margin,
                              target.scale_down_margin, p.upper_value, p.replicas);
      } else {
        why = absl::StrFormat("%s %.3g / target %.3g (ratio %.2f) -> %d", ScalingSignalName(p.signal), p.value,
                              p.target, p.ratio, p.replicas);
      }
    }
  }
  if (proposal == INT32_MIN) {
    proposal = current;
    why = "no valid metric: keep current";
  } else if (any_invalid && proposal < current) {
    proposal = current;
    why += "; some metrics invalid: no scale-down";
  }
  d.proposal = proposal;

  // 2. Stabilization and rate limits.
  int32_t desired;
  if (config.behavior) {
    const HpaBehavior& b = *config.behavior;
    state->recommendations.push_back({now, proposal});
    int32_t up = proposal, down = proposal;
    for (const auto& r : state->recommendations) {
      if (r.time > now - b.scale_up.stabilization_window) up = std::min(up, r.replicas);
      if (r.time > now - b.scale_down.stabilization_window) down = std::max(down, r.replicas);
    }
    // The recommendation moves only when the whole window agrees.
    int32_t rec = current;
    if (rec < up) rec = up;
    if (rec > down) rec = down;
    d.stabilized = rec;
    if (rec > current) {
      int32_t limit = b.scale_up.select == HpaScalingRules::Select::kDisabled
                          ? current
                          : std::max(current, ScaleUpLimit(current, *state, b.scale_up, now));
      desired = std::min({rec, limit, config.max_replicas});
      if (desired < rec) absl::StrAppend(&why, "; scale-up limited to ", desired, " by behavior.scaleUp");
    } else if (rec < current) {
      int32_t limit = b.scale_down.select == HpaScalingRules::Select::kDisabled
                          ? current
                          : std::min(current, ScaleDownLimit(current, *state, b.scale_down, now));
      desired = std::max({rec, limit, config.min_replicas});
      if (desired > rec) absl::StrAppend(&why, "; scale-down limited to ", desired, " by behavior.scaleDown");
    } else {
      desired = rec;
    }
    if (rec != proposal) absl::StrAppend(&why, "; stabilized to ", rec);
    // Forget what no window or period can look back to.
    const absl::Duration keep = std::max({b.scale_up.stabilization_window, b.scale_down.stabilization_window,
                                          LongestPeriod(b.scale_up), LongestPeriod(b.scale_down)});
    while (!state->recommendations.empty() && state->recommendations.front().time <= now - keep) {
      state->recommendations.pop_front();
    }
  } else {
    // Legacy: the highest recommendation of the last 5 minutes, scale-up at most
    // max(2 x current, 4).
    const absl::Duration window = absl::Minutes(5);
    state->recommendations.push_back({now, proposal});
    while (!state->recommendations.empty() && state->recommendations.front().time <= now - window) {
      state->recommendations.pop_front();
    }
    int32_t rec = proposal;
    for (const auto& r : state->recommendations) rec = std::max(rec, r.replicas);
    d.stabilized = rec;
    if (rec != proposal) absl::StrAppend(&why, "; stabilized to ", rec, " (highest of the last 5 min)");
    const int32_t up_limit = std::max(2 * current, 4);
    desired = std::min(rec, up_limit);
    if (desired < rec) absl::StrAppend(&why, "; scale-up capped at max(2 x ", current, ", 4) = ", up_limit);
  }
  const int32_t clamped = std::clamp(desired, config.min_replicas, config.max_replicas);
  if (clamped != desired) absl::StrAppend(&why, "; clamped to [", config.min_replicas, ", ", config.max_replicas, "]");
  desired = clamped;
  const int32_t floor = std::min(input.hold_floor, config.max_replicas);
  if (desired < floor) {
    absl::StrAppend(&why, "; held at ", floor, ": ", input.hold_reason);
    desired = floor;
  }

  // 3. Remember the scale event (as the HPA does after it scales).
  const int32_t previous = state->last_desired.value_or(current);
  if (desired > previous) state->scale_up_events.push_back({now, desired - previous});
  if (desired < previous) state->scale_down_events.push_back({now, previous - desired});
  state->last_desired = desired;
  const absl::Duration keep_events =
      config.behavior ? std::max(LongestPeriod(config.behavior->scale_up), LongestPeriod(config.behavior->scale_down))
                      : absl::ZeroDuration();
  for (auto* events : {&state->scale_up_events, &state->scale_down_events}) {
    while (!events->empty() && events->front().time <= now - keep_events) events->pop_front();
  }
  d.desired_replicas = desired;
  d.reason = why;
  return d;
}

}  // namespace switchboard::controlplane::policy
