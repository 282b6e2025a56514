#include "controlplane/reconciler.h"

#include <time.h>

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/thread_name.h"

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

std::vector<EndpointSample> EndpointSamplesOf(const Snapshot& snapshot, absl::Time wall) {
  std::vector<EndpointSample> samples;
  samples.reserve(snapshot.size());
  for (size_t i = 0; i < snapshot.size(); ++i) {
    const v1::AssignedEndpoint& ep = snapshot.assignment.endpoints(static_cast<int>(i));
    const EndpointFacts& f = snapshot.facts[i];
    EndpointSample s;
    s.time = wall;
    s.pool = snapshot.pool;
    s.node_id = ep.node_id();
    s.address = ep.address();
    s.slots_total = f.weight_input.slots_total;
    s.slots_busy = f.weight_input.slots_busy;
    s.queue_depth = f.weight_input.queue_depth;
    s.kv_cache_usage = f.kv_cache_usage;
    s.ttft_p95_seconds = f.ttft_p95_seconds;
    s.tokens_per_second = f.tokens_per_second;
    s.weight = ep.weight();
    s.circuit = ep.circuit();
    s.errors_total = f.errors_total;
    samples.push_back(std::move(s));
  }
  return samples;
}

Reconciler::Reconciler(FleetState* fleet, SnapshotStore* store, HistoryStore* history, const Clock* clock,
                       ReconcilerOptions options)
    : fleet_(fleet),
      store_(store),
      history_(history),
      clock_(clock),
      options_(std::move(options)),
      config_(std::make_shared<const policy::FleetConfig>(options_.config)) {}

void Reconciler::SetConfig(policy::FleetConfig config) {
  MutexLock lock(&mu_);
  config_ = std::make_shared<const policy::FleetConfig>(std::move(config));
  dirty_ = true;
}

std::shared_ptr<const policy::FleetConfig> Reconciler::config() const {
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

std::optional<policy::ReplicaDecision> Reconciler::DecideReplicas(const std::string& pool,
                                                                  const std::vector<EndpointView>& endpoints,
                                                                  const policy::PoolPolicy& pp, absl::Time now) {
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
  policy::ReplicaInput in;
  in.now = now;
  in.wall = clock_->Now();
  // The inputs; their keys cost a string per endpoint: built only when a decision is
  // made (counting the held replicas needs none).
  auto scaling_endpoints = [&endpoints](bool with_keys) {
    std::vector<policy::ScalingEndpoint> out;
    out.reserve(endpoints.size());
    for (const EndpointView& ep : endpoints) {
      out.push_back({with_keys ? EndpointKey(ep.node_id, ep.address) : std::string(), ep.state, ep.reported,
                     ep.report_age, ep.slots_total, ep.slots_busy, ep.queue_depth, ep.requests_total});
    }
    return out;
  };
  // Like the HPA, decide once per sync period; a new manual override, or one that just
  // expired, decides at once, and so do more replicas than the last decision while the
  // pool warms up after a start (agents connect one by one: the first sync may see one
  // of three, and the hold must not publish 1 for a whole sync period). "More" is more
  // than were held at the last decision too: a count the decision could not follow (past
  // max_replicas, or with no valid metric) would otherwise decide again on every pass.
  const bool manual_changed =
      manual_generation != as.manual_generation || (manual && as.last_sync < manual->expires && now >= manual->expires);
  const bool sync_due = !as.last || now - as.last_sync >= pp.autoscale_sync_period || manual_changed;
  std::optional<int32_t> held;
  if (!sync_due && !(manual && now < manual->expires) && policy::WarmingUp(as.memory, pp, now)) {
    held = policy::CountHeldReplicas(scaling_endpoints(/*with_keys=*/false), pp.policy.circuit.staleness_bound);
    const bool grew_while_warming = *held > as.last->desired && *held > as.last_held;
    if (!grew_while_warming) return as.last;
  } else if (!sync_due) {
    return as.last;
  }
  in.endpoints = scaling_endpoints(/*with_keys=*/true);
  as.manual_generation = manual_generation;
  in.manual = std::move(manual);
  policy::ReplicaDecision out = policy::DecidePoolReplicas(in, pp, &as.memory);
  if (as.last && as.last->desired != out.desired) {
    SB_LOG(INFO) << "scale pool=" << pool << " " << as.last->desired << " -> " << out.desired << ": " << out.reason;
    if (history_ != nullptr) {
      history_->RecordEvent({in.wall, "scaling_decision", pool, "", "",
                             absl::StrCat(as.last->desired, " -> ", out.desired, ": ", out.reason)});
    }
  }
  if (history_ != nullptr) {
    history_->RecordSample({in.wall, pool, out.signals.demand(), out.signals.current, out.desired});
    RecordScalingState(pool, as.memory.hpa, now, in.wall);
  }
  as.last = out;
  as.last_sync = now;
  as.last_held = held ? *held : policy::CountHeldReplicas(in.endpoints, pp.policy.circuit.staleness_bound);
  return out;
}

Reconciler::~Reconciler() { Stop(); }

void Reconciler::RecordScalingState(const std::string& pool, const policy::AutoscaleState& hpa, absl::Time now,
                                    absl::Time wall) {
  StoredScalingState stored;
  stored.pool = pool;
  stored.time = wall;
  stored.last_desired = hpa.last_desired.value_or(-1);
  // Monotonic times become wall times: the next process's monotonic clock is another.
  for (const auto& r : hpa.recommendations) stored.recommendations.push_back({wall - (now - r.time), r.replicas});
  for (const auto& e : hpa.scale_up_events) stored.scale_up_events.push_back({wall - (now - e.time), e.change});
  for (const auto& e : hpa.scale_down_events) stored.scale_down_events.push_back({wall - (now - e.time), e.change});
  history_->RecordScalingState(std::move(stored));
}

void Reconciler::Restore() {
  if (history_ == nullptr) return;
  const absl::Time now = clock_->MonotonicNow();
  const absl::Time wall = clock_->Now();
  auto to_monotonic = [&](absl::Time t) { return now - (wall - t); };

  if (absl::StatusOr<std::vector<StoredOverride>> overrides = history_->Overrides(); overrides.ok()) {
    MutexLock lock(&mu_);
    for (const StoredOverride& o : *overrides) {
      if (o.expires <= wall) continue;
      manual_[o.pool] = {o.replicas, to_monotonic(o.expires), o.reason};
      SB_LOG(INFO) << "restored manual override of pool " << o.pool << ": " << o.replicas << " replicas until "
                   << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", o.expires, absl::UTCTimeZone());
    }
    ++manual_generation_;
  } else {
    SB_LOG(WARNING) << "cannot read the saved manual overrides: " << overrides.status().message();
  }

  std::shared_ptr<const policy::FleetConfig> config = this->config();
  MutexLock pass_lock(&pass_mu_);
  if (absl::StatusOr<std::vector<StoredScalingState>> states = history_->ScalingStates(); states.ok()) {
    for (const StoredScalingState& st : *states) {
      policy::AutoscaleState& hpa = autoscale_[st.pool].memory.hpa;
      hpa = policy::AutoscaleState();
      for (const auto& p : st.recommendations) hpa.recommendations.push_back({to_monotonic(p.time), p.value});
      for (const auto& p : st.scale_up_events) hpa.scale_up_events.push_back({to_monotonic(p.time), p.value});
      for (const auto& p : st.scale_down_events) hpa.scale_down_events.push_back({to_monotonic(p.time), p.value});
      if (st.last_desired >= 0) hpa.last_desired = st.last_desired;
    }
  } else {
    SB_LOG(WARNING) << "cannot read the saved autoscaler states: " << states.status().message();
  }

  absl::StatusOr<std::vector<StoredSnapshot>> snapshots = history_->LatestSnapshots();
  if (!snapshots.ok()) {
    SB_LOG(WARNING) << "cannot read the saved snapshots: " << snapshots.status().message();
    return;
  }
  std::vector<std::shared_ptr<const Snapshot>> restored;
  for (const StoredSnapshot& stored : *snapshots) {
    v1::Assignment a;
    if (!a.ParseFromString(stored.assignment) || a.pool() != stored.pool || a.version() != stored.version) {
      SB_LOG(WARNING) << "ignoring the unreadable saved snapshot of pool " << stored.pool;
      continue;
    }
    RestoredHold& hold = held_[stored.pool];
    for (const v1::AssignedEndpoint& ep : a.endpoints()) hold.nodes.insert(ep.node_id());
    hold.until = now + config->For(stored.pool).policy.circuit.staleness_bound;
    if (a.desired_replicas() > 0) {
      autoscale_[stored.pool].memory.desired_before_restart = static_cast<int32_t>(a.desired_replicas());
    }
    SB_LOG(INFO) << "serving pool " << stored.pool << " version " << stored.version << " from history (stale, "
                 << a.endpoints_size() << " endpoints, desired " << a.desired_replicas() << ") until its "
                 << hold.nodes.size() << " nodes report";
    restored.push_back(RestoredSnapshot(std::move(a)));
  }
  store_->Publish(restored);
}

void Reconciler::Start() {
  Restore();
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
  for (const PoolSample& s : *samples) autoscale_[s.pool].memory.forecast.Observe(s.time, s.demand);
  if (!samples->empty()) SB_LOG(INFO) << "forecast: replayed " << samples->size() << " demand samples from history";
}

void Reconciler::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  MutexLock pass_lock(&pass_mu_);
  if (history_ != nullptr) SaveKeptSnapshots(clock_->MonotonicNow(), /*all=*/true);
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
  NameThisThread("sb-reconcile");
  while (true) {
    bool changed_only = false;
    {
      MutexLock lock(&mu_);
      // Wait for a change or the tick; then let a burst of changes settle briefly.
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || dirty_; };
      clock_->AwaitWithTimeout(&mu_, Condition(&woken), options_.tick);
      if (stop_) return;
      if (dirty_) {
        auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
        clock_->AwaitWithTimeout(
            &mu_, Condition(&stopped),
            SettleDelay(options_.coalesce, last_pass_, options_.max_duty, clock_->MonotonicNow() - last_pass_end_));
        if (stop_) return;
        changed_only = clock_->MonotonicNow() - last_whole_pass_ < options_.tick;
      }
      dirty_ = false;
    }
    if (changed_only) {
      ReconcileChanged();
    } else {
      ReconcileOnce();
    }
    MutexLock lock(&mu_);
    last_pass_end_ = clock_->MonotonicNow();
  }
}

absl::Duration SettleDelay(absl::Duration coalesce, absl::Duration last_pass, double max_duty,
                           absl::Duration since_last_pass) {
  if (!(max_duty > 0) || max_duty >= 1 || last_pass <= absl::ZeroDuration()) return coalesce;
  return std::max(coalesce, last_pass * ((1 - max_duty) / max_duty) - since_last_pass);
}

int Reconciler::ReconcileOnce() { return Pass(nullptr); }

int Reconciler::ReconcileChanged() {
  std::optional<std::set<std::string>> changed = fleet_->TakeChangedPools();
  if (!changed) return Pass(nullptr);
  return Pass(&*changed);
}

absl::Duration Reconciler::ThreadCpuTime() const {
  if (options_.thread_cpu_time) return options_.thread_cpu_time();
  timespec ts{};
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return absl::ZeroDuration();
  return absl::DurationFromTimespec(ts);
}

int Reconciler::Pass(const std::set<std::string>* only) {
  MutexLock pass_lock(&pass_mu_);
  const absl::Duration cpu_start = ThreadCpuTime();
  // A held pool is released by nodes reporting in any pool: judged over the whole fleet.
  if (!held_.empty()) only = nullptr;
  // A whole pass covers every change so far.
  if (only == nullptr) fleet_->TakeChangedPools();
  const absl::Time now = clock_->MonotonicNow();
  const absl::Time wall = clock_->Now();

  // Forgetting walks every node: once per whole pass (every tick), not per change.
  if (only == nullptr) {
    for (const std::string& node : fleet_->ForgetSilentNodes(options_.forget_after, now)) {
      SB_LOG(INFO) << "forgot node " << node << " (silent for over " << absl::FormatDuration(options_.forget_after)
                   << ")";
    }
  }

  for (const Departure& d : fleet_->TakeDepartures()) {
    const std::string detail =
        absl::StrCat("agent exited cleanly (", d.reason,
                     "); endpoints removed at once: ", d.addresses.empty() ? "none" : absl::StrJoin(d.addresses, ", "));
    SB_LOG(INFO) << "node_left node=" << d.node_id << " " << detail;
    if (history_ != nullptr) history_->RecordEvent({wall, "node_left", "", d.node_id, "", detail});
  }

  std::shared_ptr<const policy::FleetConfig> config = this->config();
  // Only the changed pools when `only` is set: an endpoint of a changed pool may serve
  // other pools too, and those are not rebuilt. The views are refilled in place (views_
  // is kept from pass to pass), so a pass copies an endpoint's values, not its storage.
  fleet_->RefreshEndpointsByPool(now, only, &views_);
  static const std::vector<EndpointView> kNoEndpoints;
  PoolViews pools;
  for (const auto& [pool, endpoints] : views_) {
    if (only == nullptr || only->count(pool) > 0) pools.emplace(pool, &endpoints);
  }
  // Pools that lost every endpoint are published empty, so subscribers learn of it.
  for (const auto& old : store_->All()) {
    if (only != nullptr && only->count(old->pool) == 0) continue;
    if (old->assignment.endpoints_size() > 0) pools.try_emplace(old->pool, &kNoEndpoints);
  }
  ReleaseOrKeepHeld(&pools, &kNoEndpoints, now);

  std::vector<std::shared_ptr<const Snapshot>> changed, refreshed;
  for (const auto& [pool, views] : pools) {
    const std::vector<EndpointView>& endpoints = *views;
    std::shared_ptr<const Snapshot> previous = store_->Get(pool);
    const policy::PoolPolicy& pp = config->For(pool);
    std::optional<policy::ReplicaDecision> replicas = DecideReplicas(pool, endpoints, pp, now);
    std::shared_ptr<const Snapshot> next =
        BuildSnapshot(pool, endpoints, previous.get(), pp.policy, wall, &circuits_[pool], now, replicas);
    RecordEndpointSamples(*next, now, wall);
    if (previous && previous->version == next->version && !previous->assignment.stale()) {
      refreshed.push_back(std::move(next));
      continue;
    }
    RecordTransitions(previous.get(), *next, wall);
    SaveSnapshot(next, wall);
    changed.push_back(std::move(next));
  }
  SaveKeptSnapshots(now, /*all=*/false);
  // What max_duty bounds: the decisions, not the pushes the publication starts (with many
  // native subscribers those are most of the thread's time, and they have their own
  // latest-wins bound).
  const absl::Duration cost = ThreadCpuTime() - cpu_start;
  store_->Refresh(refreshed);
  store_->Publish(changed);
  MutexLock lock(&mu_);
  last_pass_ = cost;
  ++passes_;
  if (only == nullptr) last_whole_pass_ = now;
  return static_cast<int>(changed.size());
}

void Reconciler::SaveSnapshot(std::shared_ptr<const Snapshot> published, absl::Time wall) {
  if (history_ == nullptr) return;
  SnapshotSave& save = saves_[published->pool];
  save.kept = std::move(published);
  save.kept_wall = wall;
}

void Reconciler::SaveKeptSnapshots(absl::Time now, bool all) {
  for (auto& [pool, save] : saves_) {
    if (save.kept == nullptr || (!all && now - save.last < options_.snapshot_save_interval)) continue;
    // The bytes subscribers are sent (serialized once per version, shared).
    history_->RecordSnapshot(
        {pool, save.kept->version, save.kept_wall, save.kept->assignment_bytes.Get(save.kept->assignment)});
    save.kept = nullptr;
    save.last = now;
  }
}

void Reconciler::RecordEndpointSamples(const Snapshot& snapshot, absl::Time now, absl::Time wall) {
  if (history_ == nullptr || snapshot.size() == 0) return;
  auto [it, inserted] = last_endpoint_sample_.try_emplace(snapshot.pool, now);
  if (!inserted) {
    if (now - it->second < options_.endpoint_sample_interval) return;
    it->second = now;
  }
  history_->RecordEndpointSamples(EndpointSamplesOf(snapshot, wall));
}

void Reconciler::ReleaseOrKeepHeld(PoolViews* pools, const std::vector<EndpointView>* none, absl::Time now) {
  if (held_.empty()) return;
  std::set<std::string> reported;  // Nodes that reported since the start.
  for (const auto& [pool, endpoints] : *pools) {
    for (const EndpointView& ep : *endpoints) {
      if (ep.reported && ep.connected) reported.insert(ep.node_id);
    }
  }
  for (auto it = held_.begin(); it != held_.end();) {
    const std::string& pool = it->first;
    size_t back = 0;
    for (const std::string& node : it->second.nodes) back += reported.count(node);
    if (back < it->second.nodes.size() && now < it->second.until) {
      pools->erase(pool);  // Keep serving the restored snapshot.
      ++it;
      continue;
    }
    SB_LOG(INFO) << "pool " << pool << ": serving live state, " << back << " of " << it->second.nodes.size()
                 << " nodes reported since the restart"
                 << (back < it->second.nodes.size() ? " (the staleness bound passed)" : "");
    pools->try_emplace(pool, none);  // Rebuilt (and no longer stale) even if nothing reports it.
    it = held_.erase(it);
  }
}

void Reconciler::RecordTransitions(const Snapshot* before, const Snapshot& after, absl::Time wall) {
  const int before_size = before != nullptr ? before->assignment.endpoints_size() : 0;
  auto key_of = [](const v1::AssignedEndpoint& ep) { return std::tie(ep.node_id(), ep.address()); };
  auto emit = [&](const std::string& kind, const v1::AssignedEndpoint& ep, std::string detail) {
    SB_LOG(INFO) << kind << " pool=" << after.pool << " node=" << ep.node_id() << " endpoint=" << ep.address() << " "
                 << detail;
    if (history_ != nullptr) {
      history_->RecordEvent({wall, kind, after.pool, ep.node_id(), ep.address(), std::move(detail)});
    }
  };
  auto compare = [&](const v1::AssignedEndpoint& old, const v1::AssignedEndpoint& ep, const std::string& reason) {
    const bool was_routable = old.weight() > 0;
    const bool is_routable = ep.weight() > 0;
    if (old.circuit() != ep.circuit() || was_routable != is_routable) {
      emit("circuit_changed", ep,
           absl::StrCat(CircuitName(old.circuit()), was_routable ? " (routable)" : " (excluded)", " -> ",
                        CircuitName(ep.circuit()), is_routable ? " (routable)" : " (excluded)", ": ", reason));
    }
  };
  // Nearly every pass: the same endpoints in the same order (both sorted by key), compared
  // position by position.
  bool same_endpoints = before_size == static_cast<int>(after.size());
  for (int i = 0; same_endpoints && i < before_size; ++i) {
    same_endpoints = key_of(before->assignment.endpoints(i)) == key_of(after.assignment.endpoints(i));
  }
  if (same_endpoints) {
    for (int i = 0; i < before_size; ++i) {
      compare(before->assignment.endpoints(i), after.assignment.endpoints(i),
              after.facts[static_cast<size_t>(i)].circuit_reason);
    }
    return;
  }
  // Otherwise the previous endpoints by (node id, address), as positions sorted by key:
  // found by binary search without copying a key per endpoint.
  std::vector<int> old_order(static_cast<size_t>(before_size));
  for (int i = 0; i < before_size; ++i) old_order[static_cast<size_t>(i)] = i;
  std::sort(old_order.begin(), old_order.end(), [&](int a, int b) {
    return key_of(before->assignment.endpoints(a)) < key_of(before->assignment.endpoints(b));
  });
  std::vector<bool> still_there(static_cast<size_t>(before_size), false);
  for (size_t i = 0; i < after.size(); ++i) {
    const v1::AssignedEndpoint& ep = after.assignment.endpoints(static_cast<int>(i));
    const std::string& reason = after.facts[i].circuit_reason;
    auto it = std::lower_bound(old_order.begin(), old_order.end(), key_of(ep),
                               [&](int a, const auto& key) { return key_of(before->assignment.endpoints(a)) < key; });
    if (it == old_order.end() || key_of(before->assignment.endpoints(*it)) != key_of(ep)) {
      emit("endpoint_joined", ep, absl::StrCat("circuit ", CircuitName(ep.circuit()), ": ", reason));
      continue;
    }
    still_there[static_cast<size_t>(*it)] = true;
    compare(before->assignment.endpoints(*it), ep, reason);
  }
  std::map<std::string, int> left;  // By EndpointKey: the order these events always had.
  for (int i = 0; i < before_size; ++i) {
    if (still_there[static_cast<size_t>(i)]) continue;
    const v1::AssignedEndpoint& ep = before->assignment.endpoints(i);
    left.emplace(EndpointKey(ep.node_id(), ep.address()), i);
  }
  for (const auto& [key, i] : left) emit("endpoint_left", before->assignment.endpoints(i), "no longer reported");
}

}  // namespace switchboard::controlplane
