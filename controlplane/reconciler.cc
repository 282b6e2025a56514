#include "controlplane/reconciler.h"

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "controlplane/fleet/pools.h"

namespace switchboard::controlplane {
namespace {

const char* CircuitName(v1::CircuitState c) {
  switch (c) {
    case v1::CIRCUIT_STATE_CLOSED:
      return "CLOSED";
    case v1::CIRCUIT_STATE_OPEN:
      return "OPEN";
    case v1::CIRCUIT_STATE_HALF_OPEN:
      return "HALF_OPEN";
    default:
      return "UNSPECIFIED";
  }
}

}  // namespace

Reconciler::Reconciler(FleetState* fleet, SnapshotStore* store, HistoryStore* history, const Clock* clock,
                       ReconcilerOptions options)
    : fleet_(fleet),
      store_(store),
      history_(history),
      clock_(clock),
      options_(std::move(options)),
      config_(std::make_shared<const FleetConfig>(options_.config)) {}

void Reconciler::SetConfig(FleetConfig config) {
  MutexLock lock(&mu_);
  config_ = std::make_shared<const FleetConfig>(std::move(config));
  dirty_ = true;
}

std::shared_ptr<const FleetConfig> Reconciler::config() const {
  MutexLock lock(&mu_);
  return config_;
}

void Reconciler::SetManualReplicas(const std::string& pool, int32_t replicas, absl::Time expires, std::string reason) {
  {
    MutexLock lock(&mu_);
    if (replicas < 0) {
      manual_.erase(pool);
    } else {
      manual_[pool] = {replicas, expires, std::move(reason)};
    }
    ++manual_generation_;  // The next pass decides again (without waiting for the sync period).
    dirty_ = true;
  }
}

std::optional<ReplicaDecision> Reconciler::DecideReplicas(const std::string& pool,
                                                          const std::vector<EndpointView>& endpoints,
                                                          const PoolPolicy& pp, absl::Time now) {
  if (!pp.autoscale) return std::nullopt;
  PoolAutoscale& as = autoscale_[pool];
  std::optional<policy::ManualOverride> manual;
  uint64_t manual_generation;
  {
    MutexLock lock(&mu_);
    auto it = manual_.find(pool);
    if (it != manual_.end()) manual = it->second;
    manual_generation = manual_generation_;
  }
  // Like the HPA, decide once per sync period; a new manual override, or one that just
  // expired, decides at once.
  const bool manual_changed =
      manual_generation != as.manual_generation || (manual && as.last_sync < manual->expires && now >= manual->expires);
  if (as.last && now - as.last_sync < pp.autoscale_sync_period && !manual_changed) return as.last;
  as.manual_generation = manual_generation;

  // The pool's signals: replicas that exist (reported, fresh, not unhealthy), those
  // ready, the total queue, slot occupancy over ready replicas, and the request rate.
  int32_t current = 0, ready = 0;
  double queue = 0, busy = 0, slots = 0, requests = 0;
  // Slot demand: over the endpoints seen at both syncs whose server counts finished
  // requests, those finished and the growth of the requests in flight.
  double completions = 0, in_flight_growth = 0;
  std::map<std::string, PoolAutoscale::Flow> flow;
  for (const EndpointView& ep : endpoints) {
    if (!ep.reported || ep.report_age > pp.policy.circuit.staleness_bound || ep.state == v1::ENDPOINT_STATE_UNHEALTHY) {
      continue;
    }
    ++current;
    queue += ep.queue_depth;
    requests += static_cast<double>(ep.requests_total);
    const std::string key = absl::StrCat(ep.node_id, "/", ep.address);
    const double in_flight = static_cast<double>(ep.slots_busy) + ep.queue_depth;
    if (ep.requests_total > 0) flow[key] = {ep.requests_total, in_flight};
    if (auto it = as.last_flow.find(key); it != as.last_flow.end() && ep.requests_total >= it->second.requests_total) {
      completions += static_cast<double>(ep.requests_total - it->second.requests_total);
      in_flight_growth += in_flight - it->second.in_flight;
    }
    if (ep.state == v1::ENDPOINT_STATE_READY) {
      ++ready;
      busy += ep.slots_busy;
      slots += ep.slots_total;
    }
  }
  policy::AutoscaleInput in;
  in.current_replicas = current;
  in.ready_replicas = ready;
  in.now = now;
  in.manual = manual;
  in.metrics.push_back({policy::ScalingSignal::kQueuePerReplica, queue, true});
  // The sampling noise of a count of busy slots is about its square root (Poisson).
  in.metrics.push_back({policy::ScalingSignal::kSlotOccupancy, slots > 0 ? busy / slots : 0, slots > 0,
                        slots > 0 ? std::sqrt(busy) / slots : 0});
  as.last_flow = std::move(flow);
  const double offered = policy::OfferedSlots(busy, queue, in_flight_growth, completions, slots);
  in.metrics.push_back({policy::ScalingSignal::kSlotDemand, slots > 0 ? offered / slots : 0, slots > 0,
                        slots > 0 ? std::sqrt(offered) / slots : 0});
  double rps = 0, rps_stddev = 0;
  const bool rps_valid = as.last_requests >= 0 && requests >= as.last_requests && now > as.last_requests_at;
  if (rps_valid) {
    // A count of arrivals over the interval: Poisson, its noise the square root of the count.
    const double seconds = absl::ToDoubleSeconds(now - as.last_requests_at);
    rps = (requests - as.last_requests) / seconds;
    rps_stddev = std::sqrt(requests - as.last_requests) / seconds;
  }
  in.metrics.push_back({policy::ScalingSignal::kRequestsPerSecond, rps, rps_valid, rps_stddev});
  as.last_requests = requests;
  as.last_requests_at = now;

  // Predictive: learn demand (the offered slots, as for slot demand) by hour of week; propose what the forecast
  // `lead_time` ahead needs at the target occupancy.
  policy::AutoscaleConfig autoscale = *pp.autoscale;
  const absl::Time wall = clock_->Now();
  const double demand = slots > 0 ? offered : queue;  // No replica ready: the queue is all there is.
  as.forecast.Observe(wall, demand);
  std::string predicted_text;
  if (pp.predictive) {
    std::optional<double> expected = as.forecast.Predict(wall + pp.predictive->lead_time);
    const double slots_per_replica = ready > 0 ? slots / ready : 0;
    const bool valid = expected.has_value() && slots_per_replica > 0;
    const double replicas_needed = valid ? *expected / (slots_per_replica * pp.predictive->target_occupancy) : 0;
    autoscale.metrics.push_back({policy::ScalingSignal::kPredicted, 1});
    in.metrics.push_back({policy::ScalingSignal::kPredicted, replicas_needed, valid});
    const std::string basis =
        as.forecast.HasHistory(wall + pp.predictive->lead_time)
            ? absl::StrFormat("hour-of-week profile x trend %.2f", as.forecast.trend())
            : absl::StrCat("straight line of the last ", absl::FormatDuration(as.forecast.extrapolation_window()),
                           ": that hour has no history yet");
    predicted_text =
        valid ? absl::StrFormat("; forecast in %s: demand %.1f (%s) -> %.2f replicas",
                                absl::FormatDuration(pp.predictive->lead_time), *expected, basis, replicas_needed)
              : "; forecast: not enough history yet";
  }

  policy::AutoscaleDecision d = policy::Autoscale(autoscale, in, &as.state);
  ReplicaDecision out;
  out.desired = d.desired_replicas;
  out.explanation = absl::StrFormat(
      "desired %d (current %d, ready %d): %s. Inputs: queue %.0f, slot occupancy %.2f, slot demand %.2f "
      "(%.0f finished, in flight %+.0f since the last sync), requests/s %s%s; min %d, max %d, tolerance %s, %s",
      d.desired_replicas, current, ready, d.reason, queue, slots > 0 ? busy / slots : 0.0,
      slots > 0 ? offered / slots : 0.0, completions, in_flight_growth,
      rps_valid ? absl::StrFormat("%.2f", rps) : "unknown", predicted_text, pp.autoscale->min_replicas,
      pp.autoscale->max_replicas, policy::DescribeTolerance(*pp.autoscale),
      pp.autoscale->behavior ? "with behavior" : "legacy HPA (no behavior)");
  if (as.last && as.last->desired != out.desired) {
    SB_LOG(INFO) << "scale pool=" << pool << " " << as.last->desired << " -> " << out.desired << ": " << d.reason;
    if (history_ != nullptr) {
      history_->RecordEvent({clock_->Now(), "scaling_decision", pool, "", "",
                             absl::StrCat(as.last->desired, " -> ", out.desired, ": ", d.reason)});
    }
  }
  as.last = out;
  as.last_sync = now;
  if (history_ != nullptr) history_->RecordSample({wall, pool, demand, current, out.desired});
  return out;
}

Reconciler::~Reconciler() { Stop(); }

void Reconciler::Start() {
  LoadForecastHistory();
  thread_ = std::thread([this] { Loop(); });
}

void Reconciler::LoadForecastHistory() {
  if (history_ == nullptr) return;
  absl::StatusOr<std::vector<PoolSample>> samples = history_->SamplesSince(clock_->Now() - absl::Hours(24 * 15));
  if (!samples.ok()) {
    SB_LOG(WARNING) << "cannot read demand history for the forecast: " << samples.status().message();
    return;
  }
  MutexLock lock(&pass_mu_);
  for (const PoolSample& s : *samples) autoscale_[s.pool].forecast.Observe(s.time, s.demand);
  if (!samples->empty()) SB_LOG(INFO) << "forecast: replayed " << samples->size() << " demand samples from history";
}

void Reconciler::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Reconciler::Notify() {
  MutexLock lock(&mu_);
  dirty_ = true;
}

uint64_t Reconciler::passes() const {
  MutexLock lock(&mu_);
  return passes_;
}

void Reconciler::Loop() {
  while (true) {
    {
      MutexLock lock(&mu_);
      // Wait for a change or the tick; then let a burst of changes settle briefly.
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || dirty_; };
      clock_->AwaitWithTimeout(&mu_, Condition(&woken), options_.tick);
      if (stop_) return;
      if (dirty_) {
        auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
        clock_->AwaitWithTimeout(&mu_, Condition(&stopped), options_.coalesce);
        if (stop_) return;
      }
      dirty_ = false;
    }
    ReconcileOnce();
  }
}

int Reconciler::ReconcileOnce() {
  MutexLock pass_lock(&pass_mu_);
  const absl::Time now = clock_->MonotonicNow();
  const absl::Time wall = clock_->Now();

  for (const std::string& node : fleet_->ForgetSilentNodes(options_.forget_after, now)) {
    SB_LOG(INFO) << "forgot node " << node << " (silent for over " << absl::FormatDuration(options_.forget_after)
                 << ")";
  }

  std::shared_ptr<const FleetConfig> config = this->config();
  std::map<std::string, std::vector<EndpointView>> pools = GroupByPool(fleet_->Endpoints(now));
  // Pools that lost every endpoint are published empty, so subscribers learn of it.
  for (const auto& old : store_->All()) {
    if (pools.count(old->pool) == 0 && old->assignment.endpoints_size() > 0) pools[old->pool];
  }

  std::vector<std::shared_ptr<const Snapshot>> changed, refreshed;
  for (const auto& [pool, endpoints] : pools) {
    std::shared_ptr<const Snapshot> previous = store_->Get(pool);
    const PoolPolicy& pp = config->For(pool);
    std::optional<ReplicaDecision> replicas = DecideReplicas(pool, endpoints, pp, now);
    std::shared_ptr<const Snapshot> next =
        BuildSnapshot(pool, endpoints, previous.get(), pp.policy, wall, &circuits_[pool], now, replicas);
    if (previous && previous->version == next->version) {
      refreshed.push_back(std::move(next));
      continue;
    }
    RecordTransitions(previous.get(), *next, wall);
    if (history_ != nullptr) {
      history_->RecordSnapshot({pool, next->version, wall, next->assignment.SerializeAsString()});
    }
    changed.push_back(std::move(next));
  }
  store_->Refresh(refreshed);
  store_->Publish(changed);
  MutexLock lock(&mu_);
  ++passes_;
  return static_cast<int>(changed.size());
}

void Reconciler::RecordTransitions(const Snapshot* before, const Snapshot& after, absl::Time wall) {
  std::map<std::string, const v1::EndpointStatus*> old_eps;
  if (before != nullptr) {
    for (const v1::EndpointStatus& d : before->details) old_eps[d.node_id() + "/" + d.address()] = &d;
  }
  auto emit = [&](const std::string& kind, const v1::EndpointStatus& d, std::string detail) {
    SB_LOG(INFO) << kind << " pool=" << after.pool << " node=" << d.node_id() << " endpoint=" << d.address() << " "
                 << detail;
    if (history_ != nullptr) {
      history_->RecordEvent({wall, kind, after.pool, d.node_id(), d.address(), std::move(detail)});
    }
  };
  for (const v1::EndpointStatus& d : after.details) {
    auto it = old_eps.find(d.node_id() + "/" + d.address());
    if (it == old_eps.end()) {
      emit("endpoint_joined", d, absl::StrCat("circuit ", CircuitName(d.circuit()), ": ", d.reason()));
      continue;
    }
    const v1::EndpointStatus& old = *it->second;
    const bool was_routable = old.weight() > 0;
    const bool is_routable = d.weight() > 0;
    if (old.circuit() != d.circuit() || was_routable != is_routable) {
      emit("circuit_changed", d,
           absl::StrCat(CircuitName(old.circuit()), was_routable ? " (routable)" : " (excluded)", " -> ",
                        CircuitName(d.circuit()), is_routable ? " (routable)" : " (excluded)", ": ", d.reason()));
    }
    old_eps.erase(it);
  }
  for (const auto& [key, d] : old_eps) emit("endpoint_left", *d, "no longer reported");
}

}  // namespace switchboard::controlplane
