#include "controlplane/operations.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace switchboard::controlplane {
namespace {

// Untrusted names go into errors shortened.
std::string Clip(const std::string& s) { return s.substr(0, kMaxReasonBytes); }

std::string KnownList(const std::vector<std::string>& known, const char* none) {
  return known.empty() ? std::string(none) : absl::StrJoin(known, ", ");
}

}  // namespace

absl::Status CheckManualReplicas(const std::string& pool, int32_t replicas, const policy::PoolPolicy& pp, bool force) {
  if (replicas < 0) return absl::OkStatus();
  if (!pp.autoscale) {
    return absl::FailedPreconditionError(
        absl::StrCat("pool '", Clip(pool),
                     "' has autoscaling off in the configuration: its desired replicas follow its routable endpoints, "
                     "and a manual count would not apply"));
  }
  const int32_t min = pp.autoscale->min_replicas;
  if (replicas >= min || force) return absl::OkStatus();
  if (replicas == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "0 replicas would stop pool '", Clip(pool), "', whose configuration does not allow scaling to zero (",
        "autoscaling.min_replicas is ", min, "); pass --force to do it anyway, or set min_replicas: 0"));
  }
  return absl::FailedPreconditionError(absl::StrCat(replicas, " replicas is below pool '", Clip(pool),
                                                    "''s autoscaling.min_replicas of ", min,
                                                    "; pass --force to set it anyway"));
}

namespace {

// " (by token:alice)" for an event's detail; "" when the caller is not known.
std::string ByCaller(const std::string& caller) { return caller.empty() ? "" : absl::StrCat(" (by ", caller, ")"); }

}  // namespace

void FleetOperations::Record(HistoryEvent event) {
  if (history_ != nullptr) history_->RecordEvent(std::move(event));
}

absl::StatusOr<bool> FleetOperations::SetDrain(const std::string& node_id, bool drain, const std::string& caller) {
  absl::StatusOr<bool> connected = fleet_->SetDrainRequested(node_id, drain);
  if (!connected.ok()) {
    std::vector<std::string> known;
    for (const NodeView& n : fleet_->Nodes(clock_->MonotonicNow())) known.push_back(n.node_id);
    return absl::NotFoundError(
        absl::StrCat(connected.status().message(), "; known nodes: ", KnownList(known, "(none)")));
  }
  if (history_ != nullptr) history_->RecordDrain(node_id, drain, clock_->Now());
  v1::Command command;
  if (drain) {
    command.mutable_drain();
  } else {
    command.mutable_undrain();
  }
  const bool notified = *connected && send_command_ && send_command_(node_id, command);
  Record({clock_->Now(), drain ? "drain_requested" : "undrain_requested", "", node_id, "",
          absl::StrCat(notified ? "agent notified" : "agent not connected: applies on reconnect", ByCaller(caller))});
  return notified;
}

absl::Status FleetOperations::SetReplicas(const std::string& pool, int32_t replicas, absl::Duration ttl,
                                          const std::string& reason, bool force, const std::string& caller) {
  if (store_->Get(pool) == nullptr) return absl::NotFoundError(absl::StrCat("no pool named '", Clip(pool), "'"));
  if (replicas < -1 || replicas > kMaxManualReplicas) {
    return absl::InvalidArgumentError(absl::StrCat("replicas must be 0..", kMaxManualReplicas, " (or -1 to clear)"));
  }
  if (replicas >= 0 && (ttl <= absl::ZeroDuration() || ttl > kMaxOverrideTtl)) {
    return absl::InvalidArgumentError("ttl must be positive and at most 7 days");
  }
  const std::shared_ptr<const policy::FleetConfig> config = reconciler_->config();
  const policy::PoolPolicy& pp = config->For(pool);
  if (absl::Status s = CheckManualReplicas(pool, replicas, pp, force); !s.ok()) return s;
  const bool forced = replicas >= 0 && pp.autoscale && replicas < pp.autoscale->min_replicas;
  const std::string why = Clip(reason);
  reconciler_->SetManualReplicas(pool, replicas, clock_->MonotonicNow() + ttl, why);
  if (history_ != nullptr) history_->RecordOverride({pool, replicas, clock_->Now() + ttl, why});
  // The caller before the operator's reason, which ends the detail.
  const std::string what =
      replicas < 0
          ? absl::StrCat("override cleared", ByCaller(caller))
          : absl::StrCat(replicas, " replicas for ", absl::FormatDuration(ttl),
                         forced ? absl::StrCat(" (forced below min_replicas ", pp.autoscale->min_replicas, ")") : "",
                         ByCaller(caller), why.empty() ? "" : ": " + why);
  Record({clock_->Now(), "manual_replicas", pool, "", "", what});
  return absl::OkStatus();
}

void FleetOperations::WhenDurable(std::function<void(bool saved)> done) const {
  if (history_ == nullptr) {
    done(true);
    return;
  }
  history_->WhenFlushed(std::move(done));
}

absl::StatusOr<std::shared_ptr<const Snapshot>> FleetOperations::Pool(const std::string& pool) const {
  std::shared_ptr<const Snapshot> snap = store_->Get(pool);
  if (snap != nullptr) return snap;
  std::vector<std::string> known;
  for (const auto& s : store_->All()) known.push_back(s->pool);
  return absl::NotFoundError(
      absl::StrCat("no pool named '", Clip(pool), "'; known pools: ", KnownList(known, "(none yet)")));
}

absl::StatusOr<std::vector<HistoryEvent>> FleetOperations::Events(const std::string& pool, uint32_t limit,
                                                                  absl::Time since, int64_t after_id) const {
  if (history_ == nullptr) {
    return absl::FailedPreconditionError("this control plane keeps no history (started with --db \"\")");
  }
  EventQuery query;
  query.pool = pool;
  query.limit = limit == 0 ? kDefaultEventLimit : std::min(limit, kMaxEventLimit);
  query.since = since;
  query.after_id = after_id;
  absl::StatusOr<std::vector<HistoryEvent>> events = history_->Events(query);
  if (!events.ok()) return absl::UnavailableError(events.status().message());
  return events;
}

absl::StatusOr<std::vector<HistorySeries>> FleetOperations::History(const HistoryQuery& query) const {
  if (history_ == nullptr) {
    return absl::FailedPreconditionError("this control plane keeps no history (started with --db \"\")");
  }
  RETURN_IF_ERROR(ValidateHistoryQuery(query));
  absl::StatusOr<std::vector<HistorySeries>> series = history_->Query(query);
  if (!series.ok()) return absl::UnavailableError(series.status().message());
  return series;
}

}  // namespace switchboard::controlplane
