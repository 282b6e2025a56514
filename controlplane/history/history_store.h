// HistoryStore: the control plane's SQLite history (WAL mode, versioned schema).
//
// Writes go through a queue to one writer thread that batches them in transactions, so
// callers (the reconciler, gRPC reactors) never wait on the disk: no Record* call
// blocks. The queue holds `queue_limit` items; when it is full, a new item makes room
// by dropping the oldest queued pool sample, else (for an event or a snapshot) the
// oldest queued snapshot, and each drop is counted. Events are never dropped: with
// nothing to drop, an event (or snapshot) is queued over the limit, and a sample is
// dropped itself. Reads use their own connection and may run concurrently with the
// writer.
#ifndef SWITCHBOARD_CONTROLPLANE_HISTORY_HISTORY_STORE_H_
#define SWITCHBOARD_CONTROLPLANE_HISTORY_HISTORY_STORE_H_

#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mutex.h"

struct sqlite3;

namespace switchboard::controlplane {

inline constexpr int kHistorySchemaVersion = 2;

struct HistoryEvent {
  absl::Time time;
  std::string kind;  // "endpoint_joined", "endpoint_left", "circuit_changed", ...
  std::string pool;
  std::string node_id;
  std::string address;
  std::string detail;  // Human-readable: "CLOSED -> OPEN: probe failed".
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

class HistoryStore {
 public:
  // Opens (creating if needed) the database at `path`, creating its parent directory,
  // and migrates it to kHistorySchemaVersion. Fails on a database written by a newer
  // Switchboard or a file that is not SQLite.
  static absl::StatusOr<std::unique_ptr<HistoryStore>> Open(const std::string& path, size_t queue_limit = 10000);
  ~HistoryStore();
  HistoryStore(const HistoryStore&) = delete;
  HistoryStore& operator=(const HistoryStore&) = delete;

  void RecordEvent(HistoryEvent event);
  // Keeps the newest snapshot of each pool (for serving after a restart).
  void RecordSnapshot(StoredSnapshot snapshot);
  void RecordSample(PoolSample sample);
  // Samples since `since`, oldest first.
  absl::StatusOr<std::vector<PoolSample>> SamplesSince(absl::Time since) const;
  // Blocks until everything recorded before the call is committed (or was dropped).
  void Flush();

  // Newest first, at most `limit`.
  absl::StatusOr<std::vector<HistoryEvent>> RecentEvents(size_t limit) const;
  absl::StatusOr<std::vector<StoredSnapshot>> LatestSnapshots() const;

  // Batches whose commit failed (disk full, ...): every write in one is lost. Exported
  // as switchboard_history_write_errors_total (controlplane/metrics.h).
  uint64_t write_errors() const;
  // Samples and snapshots dropped because the queue was full (the disk did not keep up).
  // Exported as switchboard_history_dropped_total{kind}.
  uint64_t dropped_samples() const;
  uint64_t dropped_snapshots() const;

  // For tests: the writer takes no new batch until ResumeWriter (a disk that does not
  // keep up). Returns once any batch being written is committed.
  void PauseWriter();
  void ResumeWriter();

 private:
  struct Item {
    enum class Kind { kEvent, kSnapshot, kSample } kind = Kind::kEvent;
    uint64_t seq = 0;  // Order of recording, from 1.
    HistoryEvent event;
    StoredSnapshot snapshot;
    PoolSample sample;
  };

  HistoryStore(sqlite3* writer, sqlite3* reader, size_t queue_limit);
  void WriterLoop();
  void WriteBatch(const std::vector<Item>& batch);
  void Enqueue(Item item);
  // Drops the oldest queued item of `kind`; false if there is none.
  bool DropOldestLocked(Item::Kind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  sqlite3* const writer_db_;  // Used only by the writer thread.
  sqlite3* const reader_db_ ABSL_PT_GUARDED_BY(reader_mu_);
  mutable Mutex reader_mu_;
  const size_t queue_limit_;

  mutable Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t enqueued_ ABSL_GUARDED_BY(mu_) = 0;  // Seq of the newest item recorded.
  // Seq of the first item of the batch being written; 0 when none is.
  uint64_t writing_from_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t write_errors_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_samples_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_snapshots_ ABSL_GUARDED_BY(mu_) = 0;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_HISTORY_HISTORY_STORE_H_
