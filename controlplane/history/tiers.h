// Sample tiers: what HistoryStore keeps of endpoint and pool samples, and how it reads
// them back.
//
// Tier 0 holds every sample as recorded, tier 1 one row per minute, tier 2 one row per
// hour (averages; circuit state and error counter as at the end of the bucket). The
// writer rolls finished minutes up into tier 1 and finished hours into tier 2, then
// prunes each tier past its retention in small batches, never before its rows were
// rolled up. "Now" is the newest sample written: no clock is read, so a quiet control
// plane prunes nothing and tests control time with the samples they write.
//
// Pool samples (one per autoscaler sync) stay in tier 0 for at least 15 days: the
// forecaster replays them at start.
//
// Functions here take the connection they work on and are called with the caller's
// locking: the writer's functions from the writer thread only, QuerySeries under the
// reader's lock.
#ifndef SWITCHBOARD_CONTROLPLANE_HISTORY_TIERS_H_
#define SWITCHBOARD_CONTROLPLANE_HISTORY_TIERS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct sqlite3;

namespace switchboard::controlplane {

// How long each tier keeps its rows.
struct RetentionTiers {
  absl::Duration raw = absl::Hours(1);          // Every report.
  absl::Duration minute = absl::Hours(24 * 7);  // Per minute.
  absl::Duration hour = absl::Hours(24 * 90);   // Per hour.
};

// "RAW,MINUTE,HOUR" durations such as "1h,7d,90d" (units s, m, h, d). Each must be
// positive and at least as long as its tier's resolution (raw: any), and the three must
// not shrink (a coarser tier keeps at least as long). INVALID_ARGUMENT saying which.
absl::StatusOr<RetentionTiers> ParseRetentionTiers(absl::string_view text);
std::string FormatRetentionTiers(const RetentionTiers& tiers);

// Pool samples stay raw at least this long (the forecaster's window).
inline constexpr absl::Duration kPoolSampleRawKeep = absl::Hours(24 * 15);

// One endpoint's report as the control plane saw it in one reconcile pass.
struct EndpointSample {
  absl::Time time;
  std::string pool;
  std::string node_id;
  std::string address;
  uint32_t slots_total = 0;
  uint32_t slots_busy = 0;
  uint32_t queue_depth = 0;
  double kv_cache_usage = 0;  // 0..1.
  double ttft_p95_seconds = 0;
  double tokens_per_second = 0;
  uint32_t weight = 0;        // 0 = excluded.
  int32_t circuit = 0;        // switchboard.v1.CircuitState.
  uint64_t errors_total = 0;  // The server's own 5xx counter, cumulative.
};

// The metric names History queries understand.
const std::vector<std::string>& EndpointMetricNames();  // slots_busy, weight, ...
const std::vector<std::string>& PoolMetricNames();      // demand, replicas, desired

// A history question. An endpoint metric with `pool` alone answers one series per
// endpoint of the pool; with `node_id` and `address` one series (whatever its pool). A
// pool metric needs `pool`.
struct HistoryQuery {
  std::string pool;
  std::string node_id;
  std::string address;
  std::string metric;
  absl::Time since;
  absl::Time until;
  absl::Duration step = absl::Minutes(1);  // Bucket width; points are bucket averages.
};

struct HistoryPoint {
  absl::Time time;  // Start of the bucket.
  double value = 0;
};

struct HistorySeries {
  std::string pool;
  std::string node_id;               // Empty for a pool metric.
  std::string address;               // Empty for a pool metric.
  std::vector<HistoryPoint> points;  // Oldest first; buckets without data are absent.
};

// Most points one series may ask for ((until - since) / step).
inline constexpr int64_t kMaxHistoryPoints = 10000;

// INVALID_ARGUMENT (saying what is allowed) for an unknown metric, a missing pool or
// endpoint, an empty range, a step under 1 s or too many points. Pure.
absl::Status ValidateHistoryQuery(const HistoryQuery& query);

namespace tiers {

// Creates the schema version 4 tables (inside the caller's transaction).
absl::Status CreateTables(sqlite3* db);

// Rolls finished minutes and hours up (bounded work per call); true when more is left.
absl::StatusOr<bool> RollUp(sqlite3* db, absl::Time newest);
// Deletes at most `batch` rows per tier past retention (never rows not yet rolled up);
// true when a tier had more.
absl::StatusOr<bool> Prune(sqlite3* db, absl::Time newest, const RetentionTiers& retention, int batch);

// Reads `query` (validated first), using the finest tier that still holds the start of
// the range and is no finer than the step, and finer tiers for what is not rolled up yet.
absl::StatusOr<std::vector<HistorySeries>> QuerySeries(sqlite3* db, const HistoryQuery& query);

}  // namespace tiers
}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_HISTORY_TIERS_H_
