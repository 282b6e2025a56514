// HistoryStore: the control plane's SQLite history (WAL mode, versioned schema).
//
// Writes go through a queue to one writer thread that batches them in transactions, so
// callers (the reconciler, gRPC reactors) never wait on the disk: no Record* call
// blocks. The queue holds `queue_limit` items; when it is full, a new item makes room
// by dropping the oldest queued pool sample, else (for anything but a sample) the
// oldest queued snapshot or scaling state (a newer one replaces it anyway), and each
// drop is counted. Events, overrides and drains are never dropped: with nothing to
// drop, they (and snapshots and scaling states) are queued over the limit, and a sample
// is dropped itself. Endpoint samples are bounded on their own, by count: one item
// carries a whole pool's pass (thousands of samples, ~170 bytes each), so a count of
// items alone would bound nothing. Past `endpoint_sample_limit` queued samples the
// oldest passes give way (counted per sample), and a pass larger than the whole limit is
// dropped itself; the writer takes at most kBatchEndpointSamples of them per batch, so
// the samples held, queued and being written, stay within twice the limit. Reads use
// their own connection and may run concurrently with the writer.
//
// Samples: endpoint samples (one per endpoint per reconcile pass that had a new report,
// written in one queue item per pool) and pool samples (one per autoscaler sync) are kept
// in retention tiers (tiers.h): every sample, then per minute, then per hour, pruned in
// small batches after each written batch.
//
// The schema is versioned with PRAGMA user_version (databases from before version 4
// kept it in a schema_version table and are migrated).
//
// What a restart restores (schema version 3): the newest snapshot of each pool, the
// autoscaler's memory of each pool (StoredScalingState), manual replica overrides and
// drained nodes. Times are stored as wall time (Unix milliseconds): monotonic time
// means nothing to another process.
#ifndef SWITCHBOARD_CONTROLPLANE_HISTORY_HISTORY_STORE_H_
#define SWITCHBOARD_CONTROLPLANE_HISTORY_HISTORY_STORE_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "controlplane/history/tiers.h"

struct sqlite3;

namespace switchboard::controlplane {

inline constexpr int kHistorySchemaVersion = 4;

struct HistoryEvent {
  absl::Time time;
  std::string kind;  // "endpoint_joined", "endpoint_left", "circuit_changed", ...
  std::string pool;
  std::string node_id;
  std::string address;
  std::string detail;  // Human-readable: "CLOSED -> OPEN: probe failed".
  int64_t id = 0;      // Assigned when written, increasing; 0 before.
};

// Which events to read: newest first, at most `limit`.
struct EventQuery {
  std::string pool;                         // Empty: every pool.
  absl::Time since = absl::InfinitePast();  // Only events at or after.
  int64_t after_id = 0;                     // Only events with a larger id (following).
  size_t limit = 50;
};

struct HistoryOptions {
  // Items queued for the writer before samples give way (see above).
  size_t queue_limit = 10000;
  // Endpoint samples queued for the writer before the oldest passes give way (see above):
  // about 17 MB at the default.
  size_t endpoint_sample_limit = 100000;
  RetentionTiers retention;
  // Rows deleted per tier per pruning pass: small, so that one pass never holds the
  // database for long.
  int prune_batch = 2000;
};

// One autoscaler sync of a pool: what the forecaster learns from (kept 15 days).
struct PoolSample {
  absl::Time time;
  std::string pool;
  double demand = 0;     // Slots busy + queued.
  int32_t replicas = 0;  // Replicas that existed.
  int32_t desired = 0;   // The recommendation.
};

struct StoredSnapshot {
  std::string pool;
  std::string version;
  absl::Time time;
  std::string assignment;  // Serialized switchboard.v1.Assignment.
};

// The autoscaler's memory of one pool (policy::AutoscaleState), in wall time: the
// recommendations its stabilization windows look back on and its recent scale events.
struct StoredScalingState {
  struct Point {
    absl::Time time;
    int32_t value = 0;
  };
  std::string pool;
  absl::Time time;            // When it was recorded.
  int32_t last_desired = -1;  // The last recommendation; -1: none yet.
  std::vector<Point> recommendations;
  std::vector<Point> scale_up_events;    // value: replicas added.
  std::vector<Point> scale_down_events;  // value: replicas removed.
};

// An operator's replica override (sbctl scale ... --for), expiring at wall time `expires`.
struct StoredOverride {
  std::string pool;
  int32_t replicas = 0;  // < 0: the override was cleared (RecordOverride deletes it).
  absl::Time expires;
  std::string reason;
};

class HistoryStore {
 public:
  // Opens (creating if needed) the database at `path`, creating its parent directory,
  // and migrates it to kHistorySchemaVersion. Fails on a database written by a newer
  // Switchboard or a file that is not SQLite.
  static absl::StatusOr<std::unique_ptr<HistoryStore>> Open(const std::string& path, HistoryOptions options);
  static absl::StatusOr<std::unique_ptr<HistoryStore>> Open(const std::string& path, size_t queue_limit = 10000);
  ~HistoryStore();
  HistoryStore(const HistoryStore&) = delete;
  HistoryStore& operator=(const HistoryStore&) = delete;

  void RecordEvent(HistoryEvent event);
  // Keeps the newest snapshot of each pool (for serving after a restart).
  void RecordSnapshot(StoredSnapshot snapshot);
  void RecordSample(PoolSample sample);
  // One queue item for all of them (one pool's pass): dropped together when it must give
  // way, and counted per sample.
  void RecordEndpointSamples(std::vector<EndpointSample> samples);
  // Keeps the newest scaling state of each pool.
  void RecordScalingState(StoredScalingState state);
  // Saves an override, or deletes the pool's override when `replicas` < 0.
  void RecordOverride(StoredOverride override_);
  // Marks `node_id` drained (kept until undrained) or not.
  void RecordDrain(const std::string& node_id, bool drained, absl::Time time);
  // Samples since `since`, oldest first.
  absl::StatusOr<std::vector<PoolSample>> SamplesSince(absl::Time since) const;
  // Blocks until everything recorded before the call is committed (or was dropped).
  void Flush();
  // Calls `done` once everything recorded before the call is committed (or was dropped),
  // without waiting: at once on this thread when nothing is pending, else on the writer
  // thread, before a Flush() waiting for the same items returns. `saved` is false when a
  // batch failed to commit in between (the write may be lost). For answering an operator
  // only once the change would survive a crash. `done` must not call Flush.
  void WhenFlushed(std::function<void(bool saved)> done);

  // Newest first, at most `limit`.
  absl::StatusOr<std::vector<HistoryEvent>> RecentEvents(size_t limit) const;
  absl::StatusOr<std::vector<HistoryEvent>> Events(const EventQuery& query) const;
  // Sample history (tiers.h); INVALID_ARGUMENT for a bad query. May take milliseconds:
  // never call it on a gRPC reactor.
  absl::StatusOr<std::vector<HistorySeries>> Query(const HistoryQuery& query) const;
  absl::StatusOr<std::vector<StoredSnapshot>> LatestSnapshots() const;
  // Rows that cannot be parsed are skipped (and logged).
  absl::StatusOr<std::vector<StoredScalingState>> ScalingStates() const;
  // Every saved override, expired or not.
  absl::StatusOr<std::vector<StoredOverride>> Overrides() const;
  absl::StatusOr<std::vector<std::string>> DrainedNodes() const;

  // Batches whose commit failed (disk full, ...): every write in one is lost. Exported
  // as switchboard_history_write_errors_total (controlplane/metrics.h).
  uint64_t write_errors() const;
  // Samples and snapshots dropped because the queue was full (the disk did not keep up).
  // Exported as switchboard_history_dropped_total{kind}.
  uint64_t dropped_samples() const;
  uint64_t dropped_snapshots() const;
  uint64_t dropped_scaling_states() const;
  // Writes waiting for the writer thread. Exported as switchboard_history_queue_depth.
  size_t queue_depth() const;
  uint64_t dropped_endpoint_samples() const;  // Counted per sample.
  // Endpoint samples in the queue (not counting a batch being written).
  size_t queued_endpoint_samples() const;

  // Endpoint samples one write batch takes at most (it takes at least one item).
  static constexpr size_t kBatchEndpointSamples = 20000;

  // For tests: the writer takes no new batch until ResumeWriter (a disk that does not
  // keep up). Returns once any batch being written is committed.
  void PauseWriter();
  void ResumeWriter();

 private:
  struct Item {
    enum class Kind {
      kEvent,
      kSnapshot,
      kSample,
      kScalingState,
      kOverride,
      kDrain,
      kEndpointSamples
    } kind = Kind::kEvent;
    uint64_t seq = 0;  // Order of recording, from 1.
    HistoryEvent event;
    StoredSnapshot snapshot;
    PoolSample sample;
    StoredScalingState scaling;
    StoredOverride override_;
    std::string node_id;  // kDrain.
    bool drained = false;
    absl::Time time;  // kDrain.
    std::vector<EndpointSample> endpoint_samples;
  };
  struct FlushWaiter {
    uint64_t target;        // Settled once every item up to this seq is.
    uint64_t write_errors;  // write_errors_ when it was registered.
    std::function<void(bool)> done;
  };

  HistoryStore(sqlite3* writer, sqlite3* reader, HistoryOptions options);
  void WriterLoop();
  void WriteBatch(const std::vector<Item>& batch);
  // Roll-ups and pruning after a batch (writer thread), each in its own transaction.
  void Maintain();
  // The endpoint_series id of a sample's endpoint, inserting it if new (writer thread,
  // inside the batch's transaction).
  absl::StatusOr<int64_t> SeriesId(const EndpointSample& sample);
  void Enqueue(Item item);
  // Removes the queued item at `it`, keeping queued_endpoint_samples_ in step.
  std::deque<Item>::iterator EraseLocked(std::deque<Item>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the oldest queued item of `kind`; false if there is none.
  bool DropOldestLocked(Item::Kind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool SettledLocked(uint64_t target) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the waiters whose items all left the queue and returns them (to call without
  // mu_). Writer thread only, between batches.
  std::vector<FlushWaiter> TakeSettledWaitersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifySettledWaiters() ABSL_LOCKS_EXCLUDED(mu_);

  sqlite3* const writer_db_;  // Used only by the writer thread.
  sqlite3* const reader_db_ ABSL_PT_GUARDED_BY(reader_mu_);
  mutable Mutex reader_mu_;
  const size_t queue_limit_;
  const HistoryOptions options_;
  // Writer thread only: known series ids, the newest sample time written (the
  // maintenance's "now"), and when maintenance last ran (in sample time).
  // Series ids by "pool\0node\0address"; looked up through series_key_, a buffer reused
  // for every sample (no allocation per sample once it has grown).
  absl::flat_hash_map<std::string, int64_t> series_ids_;
  std::string series_key_;
  absl::Time newest_sample_ = absl::InfinitePast();
  absl::Time last_maintained_ = absl::InfinitePast();
  bool maintenance_behind_ = false;

  mutable Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t enqueued_ ABSL_GUARDED_BY(mu_) = 0;               // Seq of the newest item recorded.
  size_t queued_endpoint_samples_ ABSL_GUARDED_BY(mu_) = 0;  // In queue_'s kEndpointSamples items.
  // Seq of the first item of the batch being written; 0 when none is.
  uint64_t writing_from_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t write_errors_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_samples_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_snapshots_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_scaling_states_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_endpoint_samples_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<FlushWaiter> waiters_ ABSL_GUARDED_BY(mu_);
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_HISTORY_HISTORY_STORE_H_
