#include "controlplane/reconciler.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "controlplane/fleet/pools.h"

namespace switchboard::controlplane {
namespace {

const char* CircuitName(v1::CircuitState c) {
  switch (c) {
    case v1::CIRCUIT_STATE_CLOSED: return "CLOSED";
    case v1::CIRCUIT_STATE_OPEN: return "OPEN";
    case v1::CIRCUIT_STATE_HALF_OPEN: return "HALF_OPEN";
    default: return "UNSPECIFIED";
  }
}

}  // namespace

Reconciler::Reconciler(FleetState* fleet, SnapshotStore* store, HistoryStore* history,
                       const Clock* clock, ReconcilerOptions options)
    : fleet_(fleet), store_(store), history_(history), clock_(clock), options_(options) {}

Reconciler::~Reconciler() { Stop(); }

void Reconciler::Start() { thread_ = std::thread([this] { Loop(); }); }

void Reconciler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Reconciler::Notify() {
  absl::MutexLock lock(&mu_);
  dirty_ = true;
}

uint64_t Reconciler::passes() const {
  absl::MutexLock lock(&mu_);
  return passes_;
}

void Reconciler::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      // Wait for a change or the tick; then let a burst of changes settle briefly.
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || dirty_; };
      mu_.AwaitWithTimeout(absl::Condition(&woken), options_.tick);
      if (stop_) return;
      if (dirty_) {
        auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
        mu_.AwaitWithTimeout(absl::Condition(&stopped), options_.coalesce);
        if (stop_) return;
      }
      dirty_ = false;
    }
    ReconcileOnce();
  }
}

int Reconciler::ReconcileOnce() {
  absl::MutexLock pass_lock(&pass_mu_);
  const absl::Time now = clock_->MonotonicNow();
  const absl::Time wall = clock_->Now();

  for (const std::string& node : fleet_->ForgetSilentNodes(options_.forget_after, now)) {
    SB_LOG(INFO) << "forgot node " << node << " (silent for over "
                 << absl::FormatDuration(options_.forget_after) << ")";
  }

  std::map<std::string, std::vector<EndpointView>> pools = GroupByPool(fleet_->Endpoints(now));
  // Pools that lost every endpoint are published empty, so subscribers learn of it.
  for (const auto& old : store_->All()) {
    if (pools.count(old->pool) == 0 && old->assignment.endpoints_size() > 0) pools[old->pool];
  }

  std::vector<std::shared_ptr<const Snapshot>> changed, refreshed;
  for (const auto& [pool, endpoints] : pools) {
    std::shared_ptr<const Snapshot> previous = store_->Get(pool);
    std::shared_ptr<const Snapshot> next =
        BuildSnapshot(pool, endpoints, previous.get(), options_.policy, wall, &circuits_[pool], now);
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
  absl::MutexLock lock(&mu_);
  ++passes_;
  return static_cast<int>(changed.size());
}

void Reconciler::RecordTransitions(const Snapshot* before, const Snapshot& after, absl::Time wall) {
  std::map<std::string, const v1::EndpointStatus*> old_eps;
  if (before != nullptr) {
    for (const v1::EndpointStatus& d : before->details) old_eps[d.node_id() + "/" + d.address()] = &d;
  }
  auto emit = [&](const std::string& kind, const v1::EndpointStatus& d, std::string detail) {
    SB_LOG(INFO) << kind << " pool=" << after.pool << " node=" << d.node_id() << " endpoint=" << d.address()
                 << " " << detail;
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
                        CircuitName(d.circuit()), is_routable ? " (routable)" : " (excluded)", ": ",
                        d.reason()));
    }
    old_eps.erase(it);
  }
  for (const auto& [key, d] : old_eps) emit("endpoint_left", *d, "no longer reported");
}

}  // namespace switchboard::controlplane
