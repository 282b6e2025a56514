// FleetOperations: what an operator may do to the fleet and ask of it (sbctl, through the
// admin service): drain and undrain nodes, override a pool's replicas, read pools and
// events. The rules live here and answer with absl::Status (NOT_FOUND naming what is
// known, INVALID_ARGUMENT saying what is allowed); the admin service only turns protos
// into these calls and the answers back, converting the status once at its edge.
//
// Every change is recorded as an event. Recording never waits on the disk (the history
// store queues writes); RecentEvents reads SQLite and may take milliseconds.
// Thread-safe: every member it uses is.
#ifndef SWITCHBOARD_CONTROLPLANE_OPERATIONS_H_
#define SWITCHBOARD_CONTROLPLANE_OPERATIONS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/history/history_store.h"
#include "controlplane/policy/pool_policy.h"
#include "controlplane/reconciler.h"
#include "controlplane/snapshot/snapshot_store.h"
#include "switchboard/v1/agent.pb.h"

namespace switchboard::controlplane {

// Limits on what an operator may ask for.
inline constexpr int32_t kMaxManualReplicas = 100000;
inline constexpr absl::Duration kMaxOverrideTtl = absl::Hours(24 * 7);
inline constexpr size_t kMaxReasonBytes = 256;
inline constexpr uint32_t kDefaultEventLimit = 50;
inline constexpr uint32_t kMaxEventLimit = 1000;

// Whether an operator may set `pool` to `replicas` by hand under its policy `pp` (pure).
// Clearing (-1) is always allowed. FAILED_PRECONDITION, saying why and what to do, when
// the pool has autoscaling off (a manual count would not apply: desired replicas follow
// the routable endpoints), or, unless `force`, when `replicas` is below the pool's
// autoscaling.min_replicas (0 is allowed only where min_replicas is 0: the pool's
// configuration allows scaling to zero).
absl::Status CheckManualReplicas(const std::string& pool, int32_t replicas, const policy::PoolPolicy& pp, bool force);

class FleetOperations {
 public:
  // Sends a command to a connected node's agent; false when it is not connected.
  using CommandSender = std::function<bool(const std::string& node_id, const v1::Command& command)>;

  // `history` may be null (no history kept). Pointers must outlive this object.
  FleetOperations(FleetState* fleet, const SnapshotStore* store, Reconciler* reconciler, HistoryStore* history,
                  const Clock* clock, CommandSender send_command)
      : fleet_(fleet),
        store_(store),
        reconciler_(reconciler),
        history_(history),
        clock_(clock),
        send_command_(std::move(send_command)) {}

  // Marks the node drained (or not; saved in the history, so it outlives restarts) and
  // tells its agent. Returns whether the agent was told now (else it applies on
  // reconnect). NOT_FOUND, listing the known nodes. `caller` (how the admin API names
  // who asked; empty: not said) goes into the event.
  absl::StatusOr<bool> SetDrain(const std::string& node_id, bool drain, const std::string& caller = "");

  // A manual replica count for `pool` for `ttl` (saved in the history with its expiry as
  // wall time, so it outlives restarts), or replicas -1 to clear the override.
  // NOT_FOUND for an unknown pool; INVALID_ARGUMENT for replicas outside -1..100000 or a
  // ttl outside (0, 7 days] (when setting); FAILED_PRECONDITION where the pool's
  // configuration refuses it (CheckManualReplicas). A refusal changes nothing.
  absl::Status SetReplicas(const std::string& pool, int32_t replicas, absl::Duration ttl, const std::string& reason,
                           bool force = false, const std::string& caller = "");

  // The pool's current snapshot; NOT_FOUND, listing the known pools.
  absl::StatusOr<std::shared_ptr<const Snapshot>> Pool(const std::string& pool) const;

  // Calls `done` once every change made before the call is on disk (at once without
  // history), possibly on another thread, never blocking: answer an operator with it, so
  // that an acknowledged drain or override survives a crash. `saved` is false when the
  // write failed.
  void WhenDurable(std::function<void(bool saved)> done) const;

  // Newest first: at most `limit` (0 = 50, capped at 1000) events of `pool` (empty: all).
  // FAILED_PRECONDITION without history; UNAVAILABLE when the database cannot be read.
  // Also only events at or after `since` and with an id above `after_id`.
  absl::StatusOr<std::vector<HistoryEvent>> Events(const std::string& pool, uint32_t limit,
                                                   absl::Time since = absl::InfinitePast(), int64_t after_id = 0) const;

  // Sample history (HistoryStore::Query). INVALID_ARGUMENT for a bad query,
  // FAILED_PRECONDITION without history, UNAVAILABLE when the database cannot be read.
  // Reads SQLite: never call it on a gRPC reactor.
  absl::StatusOr<std::vector<HistorySeries>> History(const HistoryQuery& query) const;

 private:
  void Record(HistoryEvent event);

  FleetState* const fleet_;
  const SnapshotStore* const store_;
  Reconciler* const reconciler_;
  HistoryStore* const history_;
  const Clock* const clock_;
  const CommandSender send_command_;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_OPERATIONS_H_
