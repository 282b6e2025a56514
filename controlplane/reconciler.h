// Reconciler: turns FleetState into per-pool snapshots. Wakes on change (coalesced:
// runs `coalesce` after the first change, so a burst of reports costs one pass) and on
// a periodic tick (staleness needs time to pass, not a change). Owns no fleet data.
// The delay counts from when the loop sees the change, after the last pass has
// published: a change that comes while a pass writes its pushes waits for them too, so a
// pool's versions are spaced by their own fan-out. (Counting from the change itself was
// measured at 1,000 subscribers: more versions and a later last subscriber, p99
// 287-393 ms against 233-339; docs/performance.md.)
//
// Restarts (Restore, with a history): the newest snapshot of every pool is served at
// once, marked stale with its old version, and held (the pool is not rebuilt) until
// every node in it has reported again or the pool's staleness bound has passed since
// the start, whichever comes first; so no subscriber sees a pool emptied or shrunk by a
// restart. Manual overrides (expiry in wall time) and the autoscaler's memory
// (recommendations and scale events, for the stabilization windows) are restored, and
// the count published before the restart is the warm-up hold's floor
// (policy/replicas.h).
#ifndef SWITCHBOARD_CONTROLPLANE_RECONCILER_H_
#define SWITCHBOARD_CONTROLPLANE_RECONCILER_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/history/history_store.h"
#include "controlplane/policy/pool_policy.h"
#include "controlplane/policy/replicas.h"
#include "controlplane/snapshot/snapshot.h"
#include "controlplane/snapshot/snapshot_store.h"

namespace switchboard::controlplane {

struct ReconcilerOptions {
  policy::FleetConfig config = policy::DefaultFleetConfig();
  absl::Duration coalesce = absl::Milliseconds(50);
  absl::Duration tick = absl::Milliseconds(250);
  // The largest share of its time the reconciler spends in passes under a steady stream
  // of changes: after a pass whose decisions took T of CPU time (the pushes its
  // publication starts not counted), the next pass starts no sooner than
  // T x (1 - max_duty) / max_duty after it ended, if that is later than `coalesce` after
  // the change. A big fleet on a busy machine then decides a little less often instead
  // of taking the CPU its reports and pushes need; a small fleet (passes far shorter
  // than `coalesce`) sees no change.
  // In (0, 1]; 1: no bound.
  double max_duty = 0.1;
  // Where a pass's CPU time is read (for max_duty); unset: the calling thread's CPU clock.
  std::function<absl::Duration()> thread_cpu_time;
  // Nodes disconnected and silent this long are forgotten (their endpoints leave).
  absl::Duration forget_after = absl::Minutes(5);
  // Each pool's endpoints are sampled into the history at most this often (the agents'
  // report interval: every report, as the raw tier promises).
  absl::Duration endpoint_sample_interval = absl::Seconds(1);
  // Each pool's published snapshot is saved to the history (what a restart serves) at
  // most this often: the newest of a burst is saved once the interval has passed since
  // the last save, and at Stop. (A pool of 1,000 endpoints publishing ten versions a
  // second would otherwise write over half a megabyte a second to SQLite.)
  absl::Duration snapshot_save_interval = absl::Seconds(1);
};

// How long the reconciler lets changes settle before its next pass, after a pass that
// took `last_pass` and ended `since_last_pass` ago: `coalesce`, or longer so that passes
// take at most `max_duty` of its time (time it already spent idle counts).
absl::Duration SettleDelay(absl::Duration coalesce, absl::Duration last_pass, double max_duty,
                           absl::Duration since_last_pass);

// The history samples of a snapshot's endpoints (one per endpoint, same order) at `wall`.
std::vector<EndpointSample> EndpointSamplesOf(const Snapshot& snapshot, absl::Time wall);

class Reconciler {
 public:
  // `history` may be null (no history kept). All pointers must outlive the Reconciler.
  Reconciler(FleetState* fleet, SnapshotStore* store, HistoryStore* history, const Clock* clock,
             ReconcilerOptions options);
  ~Reconciler();

  // Starts / stops the background thread (Start first calls Restore and replays the
  // stored demand samples into the forecasters, so predictive scaling survives
  // restarts). Without Start, call ReconcileOnce directly (tests and the simulator do).
  void Start();
  void LoadForecastHistory();
  // Restores what the history kept from before a restart (see above). Call once, before
  // the first pass. Unreadable parts are logged and skipped.
  void Restore();
  void Stop();

  // Something changed: reconcile soon. Cheap, callable from any thread.
  void Notify();

  // One pass: builds every pool's snapshot, publishes those whose version changed and
  // records events. Returns the number of pools published.
  int ReconcileOnce();
  // A pass over the pools whose endpoints' reports changed since the last pass only
  // (FleetState::TakeChangedPools); a whole pass when anything else changed, or while a
  // restored pool is held. The loop runs these between its ticks, and a whole pass at
  // least once per tick (staleness, circuit timers and autoscaling need time to pass).
  int ReconcileChanged();

  uint64_t passes() const;

  // Replaces the pool configuration (SIGHUP); takes effect at the next pass. Streams and
  // breaker memories are kept.
  void SetConfig(policy::FleetConfig config);
  std::shared_ptr<const policy::FleetConfig> config() const;

  // A manual replica count for `pool` that wins over the autoscaler until `expires`
  // (monotonic time). replicas < 0 clears it.
  void SetManualReplicas(const std::string& pool, int32_t replicas, absl::Time expires, std::string reason);

 private:
  void Loop();
  // `only`: the pools to rebuild (null: all of them).
  int Pass(const std::set<std::string>* only);
  // This thread's CPU time so far (options_.thread_cpu_time when set), for max_duty.
  absl::Duration ThreadCpuTime() const;
  void RecordTransitions(const Snapshot* before, const Snapshot& after, absl::Time wall);
  // Keeps `published` (published at `wall`) to be saved by SaveKeptSnapshots, replacing
  // one kept and not saved yet.
  void SaveSnapshot(std::shared_ptr<const Snapshot> published, absl::Time wall) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_);
  // Saves the kept snapshots whose interval has passed (`all`: every one, at Stop).
  void SaveKeptSnapshots(absl::Time now, bool all) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_);
  // Records the snapshot's endpoints as history samples when the pool's interval passed.
  void RecordEndpointSamples(const Snapshot& snapshot, absl::Time now, absl::Time wall)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_);
  // Runs the pool's autoscaling sync when one is due (policy/replicas does the deciding)
  // and records its event and demand sample; else the last decision.
  std::optional<policy::ReplicaDecision> DecideReplicas(const std::string& pool,
                                                        const std::vector<EndpointView>& endpoints,
                                                        const policy::PoolPolicy& policy, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_);

  // The pools a pass rebuilds, each with its endpoints (in views_, or an empty list).
  using PoolViews = std::map<std::string, const std::vector<EndpointView>*>;
  // Drops held pools from `pools` (their restored snapshot stays), and releases the holds
  // whose nodes all reported or whose bound passed (added with `none` when no endpoint
  // reports them).
  void ReleaseOrKeepHeld(PoolViews* pools, const std::vector<EndpointView>* none, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pass_mu_);
  // Saves the pool's autoscaler memory (for the stabilization windows after a restart).
  void RecordScalingState(const std::string& pool, const policy::AutoscaleState& hpa, absl::Time now, absl::Time wall);

  // A restored pool served stale until `nodes` have all reported, or `until`.
  struct RestoredHold {
    std::set<std::string> nodes;
    absl::Time until;  // Monotonic.
  };

  struct PoolAutoscale {
    policy::PoolScalingMemory memory;  // The forecast is replayed from history at start.
    absl::Time last_sync = absl::InfinitePast();
    std::optional<policy::ReplicaDecision> last;
    int32_t last_held = 0;  // Replicas held (policy::CountHeldReplicas) at the last decision.
    uint64_t manual_generation = 0;
  };

  FleetState* const fleet_;
  SnapshotStore* const store_;
  HistoryStore* const history_;
  const Clock* const clock_;
  const ReconcilerOptions options_;

  mutable Mutex mu_;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t passes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_whole_pass_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();  // Monotonic.
  absl::Time last_pass_end_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();    // Monotonic.
  absl::Duration last_pass_ ABSL_GUARDED_BY(mu_);                           // The last pass's CPU time.
  std::shared_ptr<const policy::FleetConfig> config_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, policy::ManualOverride> manual_ ABSL_GUARDED_BY(mu_);
  uint64_t manual_generation_ ABSL_GUARDED_BY(mu_) = 0;
  // Serializes passes (the loop and direct calls).
  Mutex pass_mu_;
  std::map<std::string, CircuitMemories> circuits_ ABSL_GUARDED_BY(pass_mu_);         // By pool.
  std::map<std::string, PoolAutoscale> autoscale_ ABSL_GUARDED_BY(pass_mu_);          // By pool.
  std::map<std::string, RestoredHold> held_ ABSL_GUARDED_BY(pass_mu_);                // By pool.
  std::map<std::string, absl::Time> last_endpoint_sample_ ABSL_GUARDED_BY(pass_mu_);  // By pool; monotonic.
  struct SnapshotSave {
    absl::Time last = absl::InfinitePast();  // Monotonic.
    std::shared_ptr<const Snapshot> kept;    // Published, not saved yet; null: none.
    absl::Time kept_wall;
  };
  std::map<std::string, SnapshotSave> saves_ ABSL_GUARDED_BY(pass_mu_);  // By pool.
  // Every pool's endpoints as the last pass that rebuilt it saw them, refilled in place by
  // the next (FleetState::RefreshEndpointsByPool).
  std::map<std::string, std::vector<EndpointView>> views_ ABSL_GUARDED_BY(pass_mu_);
  std::thread thread_;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_RECONCILER_H_
