#include "controlplane/policy/replicas.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace switchboard::controlplane::policy {

std::vector<MetricObservation> PoolSignals::Observations() const {
  // The sampling noise of a count (busy slots, offered slots, arrivals) is about its
  // square root (Poisson).
  return {
      {ScalingSignal::kQueuePerReplica, queue, true},
      {ScalingSignal::kSlotOccupancy, occupancy(), slots > 0, slots > 0 ? std::sqrt(busy) / slots : 0},
      {ScalingSignal::kSlotDemand, demand_ratio(), slots > 0, slots > 0 ? std::sqrt(offered) / slots : 0},
      {ScalingSignal::kRequestsPerSecond, rps, rps_valid, rps_stddev},
  };
}

namespace {

bool IsCurrent(const ScalingEndpoint& ep, absl::Duration staleness_bound) {
  const bool exists = ep.state == v1::ENDPOINT_STATE_STARTING || ep.state == v1::ENDPOINT_STATE_READY;
  return ep.reported && ep.report_age <= staleness_bound && exists;
}

}  // namespace

int32_t CountHeldReplicas(const std::vector<ScalingEndpoint>& endpoints, absl::Duration staleness_bound) {
  int32_t n = 0;
  for (const ScalingEndpoint& ep : endpoints) {
    const bool announced = !ep.reported && ep.report_age <= staleness_bound;
    n += IsCurrent(ep, staleness_bound) || announced ? 1 : 0;
  }
  return n;
}

bool WarmingUp(const PoolScalingMemory& memory, const PoolPolicy& policy, absl::Time now) {
  return policy.autoscale && (!memory.first_sync || now - *memory.first_sync < ScaleDownWindow(*policy.autoscale));
}

PoolSignals ComputePoolSignals(const std::vector<ScalingEndpoint>& endpoints, absl::Duration staleness_bound,
                               SignalMemory* memory, absl::Time now) {
  PoolSignals s;
  double requests = 0;
  std::map<std::string, SignalMemory::Flow> flow;
  for (const ScalingEndpoint& ep : endpoints) {
    if (!IsCurrent(ep, staleness_bound)) continue;
    ++s.current;
    s.queue += ep.queue_depth;
    requests += static_cast<double>(ep.requests_total);
    const double in_flight = static_cast<double>(ep.slots_busy) + ep.queue_depth;
    if (ep.requests_total > 0) flow[ep.key] = {ep.requests_total, in_flight};
    auto it = memory->last_flow.find(ep.key);
    if (it != memory->last_flow.end() && ep.requests_total >= it->second.requests_total) {
      s.completions += static_cast<double>(ep.requests_total - it->second.requests_total);
      s.in_flight_growth += in_flight - it->second.in_flight;
    }
    if (ep.state == v1::ENDPOINT_STATE_READY) {
      ++s.ready;
      s.busy += ep.slots_busy;
      s.slots += ep.slots_total;
    }
  }
  memory->last_flow = std::move(flow);
  s.offered = OfferedSlots(s.busy, s.queue, s.in_flight_growth, s.completions, s.slots);

  // A rate needs two syncs and a counter that did not go back (an endpoint that left
  // takes its count with it: that sync has no rate).
  s.rps_valid = memory->last_requests >= 0 && requests >= memory->last_requests && now > memory->last_requests_at;
  if (s.rps_valid) {
    const double seconds = absl::ToDoubleSeconds(now - memory->last_requests_at);
    s.rps = (requests - memory->last_requests) / seconds;
    s.rps_stddev = std::sqrt(requests - memory->last_requests) / seconds;
  }
  memory->last_requests = requests;
  memory->last_requests_at = now;
  return s;
}

ReplicaDecision DecidePoolReplicas(const ReplicaInput& input, const PoolPolicy& policy, PoolScalingMemory* memory) {
  ReplicaDecision out;
  const PoolSignals s =
      ComputePoolSignals(input.endpoints, policy.policy.circuit.staleness_bound, &memory->signals, input.now);

  AutoscaleConfig config = *policy.autoscale;
  AutoscaleInput in;
  in.current_replicas = s.current;
  in.ready_replicas = s.ready;
  in.now = input.now;
  in.wall = input.wall;
  in.manual = input.manual;
  in.metrics = s.Observations();

  if (!memory->first_sync) memory->first_sync = input.now;
  const absl::Duration evidence = input.now - *memory->first_sync;
  const absl::Duration warm_up = ScaleDownWindow(config);
  if (WarmingUp(*memory, policy, input.now)) {
    const int32_t present = CountHeldReplicas(input.endpoints, policy.policy.circuit.staleness_bound);
    in.hold_floor = std::max(present, memory->desired_before_restart);
    in.hold_reason =
        memory->desired_before_restart > 0
            ? absl::StrFormat("warming up after a restart (%s of %s of evidence): not below %d current, %d before",
                              absl::FormatDuration(evidence), absl::FormatDuration(warm_up), present,
                              memory->desired_before_restart)
            : absl::StrFormat("warming up (%s of %s of evidence): not below %d current", absl::FormatDuration(evidence),
                              absl::FormatDuration(warm_up), present);
  }

  // Predictive: learn the demand by season; propose what the forecast `lead_time` ahead
  // needs at the target occupancy of each ready replica's slots.
  memory->forecast.Observe(input.wall, s.demand());
  std::string predicted_text;
  if (policy.predictive) {
    const PredictiveConfig& pc = *policy.predictive;
    const absl::Time at = input.wall + pc.lead_time;
    const std::optional<double> expected = memory->forecast.Predict(at);
    const double slots_per_replica = s.ready > 0 ? s.slots / s.ready : 0;
    const bool valid = expected.has_value() && slots_per_replica > 0;
    const double replicas_needed = valid ? *expected / (slots_per_replica * pc.target_occupancy) : 0;
    config.metrics.push_back({ScalingSignal::kPredicted, 1});
    in.metrics.push_back({ScalingSignal::kPredicted, replicas_needed, valid});
    const std::string basis =
        memory->forecast.HasHistory(at)
            ? absl::StrFormat("hour-of-week profile x trend %.2f", memory->forecast.trend())
            : absl::StrCat("straight line of the last ", absl::FormatDuration(memory->forecast.extrapolation_window()),
                           ": that hour has no history yet");
    predicted_text = valid ? absl::StrFormat("; forecast in %s: demand %.1f (%s) -> %.2f replicas",
                                             absl::FormatDuration(pc.lead_time), *expected, basis, replicas_needed)
                           : "; forecast: not enough history yet";
  }

  const AutoscaleDecision d = Autoscale(config, in, &memory->hpa);
  out.desired = d.desired_replicas;
  out.reason = d.reason;
  out.signals = s;
  out.explanation = absl::StrFormat(
      "desired %d (current %d, ready %d): %s. Inputs: queue %.0f, slot occupancy %.2f, slot demand %.2f "
      "(%.0f finished, in flight %+.0f since the last sync), requests/s %s%s; min %d, max %d, tolerance %s, %s",
      d.desired_replicas, s.current, s.ready, d.reason, s.queue, s.occupancy(), s.demand_ratio(), s.completions,
      s.in_flight_growth, s.rps_valid ? absl::StrFormat("%.2f", s.rps) : "unknown", predicted_text,
      policy.autoscale->min_replicas, policy.autoscale->max_replicas, DescribeTolerance(*policy.autoscale),
      policy.autoscale->behavior ? "with behavior" : "legacy HPA (no behavior)");
  return out;
}

}  // namespace switchboard::controlplane::policy
