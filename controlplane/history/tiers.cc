#include "controlplane/history/tiers.h"

#include <sqlite3.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace switchboard::controlplane {
namespace {

constexpr int64_t kMinuteMs = 60 * 1000;
constexpr int64_t kHourMs = 60 * kMinuteMs;
// A minute is rolled up once samples this much newer than its end were written (late
// reports of the same pass still land in it).
constexpr int64_t kRollUpGraceMs = 5000;
constexpr int64_t kTierResolutionMs[3] = {0, kMinuteMs, kHourMs};

// A value bound to a `?`: an integer or a text.
struct Param {
  Param(int64_t v) : is_text(false), integer(v) {}             // NOLINT: implicit, as a literal reads.
  Param(std::string v) : is_text(true), text(std::move(v)) {}  // NOLINT
  Param(const char* v) : is_text(true), text(v) {}             // NOLINT
  bool is_text;
  int64_t integer = 0;
  std::string text;
};

// Prepares `sql`, binds `params` in order, calls `row` per result row.
absl::Status Run(sqlite3* db, const std::string& sql, const std::vector<Param>& params,
                 const std::function<void(sqlite3_stmt*)>& row = nullptr) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return absl::InternalError(absl::StrCat("sqlite: ", sqlite3_errmsg(db), " (in: ", sql, ")"));
  }
  for (size_t i = 0; i < params.size(); ++i) {
    const int index = static_cast<int>(i) + 1;
    if (!params[i].is_text) {
      sqlite3_bind_int64(stmt, index, params[i].integer);
    } else {
      const std::string& s = params[i].text;
      sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    }
  }
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (row) row(stmt);
  }
  absl::Status status =
      rc == SQLITE_DONE ? absl::OkStatus() : absl::InternalError(absl::StrCat("sqlite: ", sqlite3_errmsg(db)));
  sqlite3_finalize(stmt);
  return status;
}

absl::StatusOr<int64_t> ScalarOr(sqlite3* db, const std::string& sql, const std::vector<Param>& params,
                                 int64_t fallback) {
  int64_t value = fallback;
  RETURN_IF_ERROR(Run(db, sql, params, [&](sqlite3_stmt* stmt) {
    if (sqlite3_column_type(stmt, 0) != SQLITE_NULL) value = sqlite3_column_int64(stmt, 0);
  }));
  return value;
}

// Rolled up through this time (exclusive), or 0.
absl::StatusOr<int64_t> Progress(sqlite3* db, const std::string& name) {
  return ScalarOr(db, "SELECT done_until_unix_ms FROM rollup_progress WHERE name = ?", {name}, 0);
}

absl::Status SetProgress(sqlite3* db, const std::string& name, int64_t done_until) {
  return Run(db, "INSERT OR REPLACE INTO rollup_progress(name, done_until_unix_ms) VALUES (?, ?)", {name, done_until});
}

int64_t FloorTo(int64_t ms, int64_t unit) { return ms >= 0 ? ms / unit * unit : -((-ms + unit - 1) / unit) * unit; }

bool IsEndpointMetric(const std::string& m) {
  const auto& names = EndpointMetricNames();
  return std::find(names.begin(), names.end(), m) != names.end();
}

bool IsPoolMetric(const std::string& m) {
  const auto& names = PoolMetricNames();
  return std::find(names.begin(), names.end(), m) != names.end();
}

// One kind of samples (endpoint or pool) as the roll-up and prune see it.
struct SampleKind {
  std::string name;  // "endpoint" or "pool": rollup_progress names are NAME/TIER.
  // Rows of tier 0: the table and its time column filter.
  std::string tier0_table;
  std::string tier0_filter;  // "tier = 0 AND " or "".
  std::string tiered_table;  // Tiers 1 and 2.
  std::string key;           // Column(s) identifying the series.
  std::string averaged;      // "avg(a), avg(b)" in the order of `columns`.
  std::string columns;       // Value columns written.
  std::string selected;      // Their names in the grouped select.
};

const SampleKind& EndpointKind() {
  static const SampleKind* kind = new SampleKind{
      "endpoint",
      "endpoint_samples",
      "tier = 0 AND ",
      "endpoint_samples",
      "series",
      "avg(slots_total) a1, avg(slots_busy) a2, avg(queue_depth) a3, avg(kv_cache_usage) a4, "
      "avg(ttft_p95_seconds) a5, avg(tokens_per_second) a6, avg(weight) a7, max(time_unix_ms), circuit a8, "
      "errors_total a9",
      "slots_total, slots_busy, queue_depth, kv_cache_usage, ttft_p95_seconds, tokens_per_second, weight, circuit, "
      "errors_total",
      "a1, a2, a3, a4, a5, a6, a7, a8, a9"};
  return *kind;
}

const SampleKind& PoolKind() {
  static const SampleKind* kind = new SampleKind{"pool",
                                                 "pool_samples",
                                                 "",
                                                 "pool_sample_rollups",
                                                 "pool",
                                                 "avg(demand) a1, avg(replicas) a2, avg(desired) a3",
                                                 "demand, replicas, desired",
                                                 "a1, a2, a3"};
  return *kind;
}

// Rolls tier `tier - 1` up into `tier` for at most `max_buckets` buckets. True if more.
absl::StatusOr<bool> RollUpTier(sqlite3* db, const SampleKind& kind, int tier, int64_t newest_ms) {
  const int64_t unit = kTierResolutionMs[tier];
  const std::string progress_name = absl::StrCat(kind.name, "/", tier);
  int64_t source_done = newest_ms - kRollUpGraceMs;
  if (tier == 2) {
    ASSIGN_OR_RETURN(source_done, Progress(db, absl::StrCat(kind.name, "/1")));
  }
  const int64_t end = FloorTo(source_done, unit);
  ASSIGN_OR_RETURN(int64_t start, Progress(db, progress_name));
  if (start >= end) return false;
  const bool from_tier0 = tier == 1;
  const std::string source_table = from_tier0 ? kind.tier0_table : kind.tiered_table;
  const std::string source_filter = from_tier0 ? kind.tier0_filter : "tier = 1 AND ";
  // Skip empty stretches (a first roll-up, a long quiet spell) in one step.
  ASSIGN_OR_RETURN(int64_t oldest, ScalarOr(db,
                                            absl::StrCat("SELECT MIN(time_unix_ms) FROM ", source_table, " WHERE ",
                                                         source_filter, "time_unix_ms >= ?"),
                                            {start}, end));
  start = std::max(start, FloorTo(oldest, unit));
  // Bounded work per call: an hour of minutes, or a day of hours.
  const int64_t chunk_end = std::min(end, start + (tier == 1 ? 60 : 24) * unit);
  if (start < chunk_end) {
    RETURN_IF_ERROR(Run(db,
                        absl::StrCat("INSERT OR REPLACE INTO ", kind.tiered_table, "(", kind.key,
                                     ", tier, time_unix_ms, ", kind.columns, ") SELECT ", kind.key, ", ", tier, ", b, ",
                                     kind.selected, " FROM (SELECT ", kind.key, ", (time_unix_ms / ", unit, ") * ",
                                     unit, " AS b, ", kind.averaged, " FROM ", source_table, " WHERE ", source_filter,
                                     "time_unix_ms >= ? AND time_unix_ms < ? GROUP BY ", kind.key, ", b)"),
                        {start, chunk_end}));
  }
  RETURN_IF_ERROR(SetProgress(db, progress_name, std::max(chunk_end, start)));
  return chunk_end < end;
}

// Deletes at most `batch` rows of `table` matching `where` (with `params`). True if it
// deleted a full batch (there may be more).
absl::StatusOr<bool> DeleteBatch(sqlite3* db, const std::string& table, const std::string& key_columns,
                                 const std::string& where, std::vector<Param> params, int batch) {
  params.push_back(static_cast<int64_t>(batch));
  RETURN_IF_ERROR(Run(db,
                      absl::StrCat("DELETE FROM ", table, " WHERE (", key_columns, ") IN (SELECT ", key_columns,
                                   " FROM ", table, " WHERE ", where, " LIMIT ?)"),
                      params));
  return sqlite3_changes(db) >= batch;
}

}  // namespace

const std::vector<std::string>& EndpointMetricNames() {
  static const auto* names =
      new std::vector<std::string>{"slots_busy", "slots_total", "queue_depth",  "kv_cache_usage",   "ttft_p95_seconds",
                                   "weight",     "circuit",     "errors_total", "tokens_per_second"};
  return *names;
}

const std::vector<std::string>& PoolMetricNames() {
  static const auto* names = new std::vector<std::string>{"demand", "replicas", "desired"};
  return *names;
}

absl::StatusOr<RetentionTiers> ParseRetentionTiers(absl::string_view text) {
  std::vector<std::string> parts = absl::StrSplit(text, ',');
  if (parts.size() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("history retention '", text, "': want RAW,MINUTE,HOUR such as 1h,7d,90d"));
  }
  absl::Duration values[3];
  for (int i = 0; i < 3; ++i) {
    std::string p(absl::StripAsciiWhitespace(parts[i]));
    int64_t n = 0;
    absl::Duration unit;
    if (!p.empty()) {
      switch (p.back()) {
        case 's':
          unit = absl::Seconds(1);
          break;
        case 'm':
          unit = absl::Minutes(1);
          break;
        case 'h':
          unit = absl::Hours(1);
          break;
        case 'd':
          unit = absl::Hours(24);
          break;
        default:
          break;
      }
    }
    if (unit == absl::ZeroDuration() || !absl::SimpleAtoi(p.substr(0, p.size() - 1), &n) || n <= 0 || n > 100000) {
      return absl::InvalidArgumentError(absl::StrCat("history retention '", text, "': '", p,
                                                     "' is not a positive duration with a unit s, m, h or d"));
    }
    values[i] = n * unit;
  }
  if (values[1] < absl::Minutes(1) || values[2] < absl::Hours(1)) {
    return absl::InvalidArgumentError(absl::StrCat("history retention '", text,
                                                   "': the per-minute tier must keep at least 1m and the hourly "
                                                   "tier at least 1h"));
  }
  if (values[1] < values[0] || values[2] < values[1]) {
    return absl::InvalidArgumentError(
        absl::StrCat("history retention '", text, "': a coarser tier must keep at least as long as a finer one"));
  }
  return RetentionTiers{values[0], values[1], values[2]};
}

namespace {

// In the largest unit ParseRetentionTiers takes that divides `d` exactly ("90s", "7d"),
// so that the text reads back as the same value (absl::FormatDuration writes "1m30s").
std::string FormatRetention(absl::Duration d) {
  const std::pair<absl::Duration, const char*> units[] = {
      {absl::Hours(24), "d"}, {absl::Hours(1), "h"}, {absl::Minutes(1), "m"}, {absl::Seconds(1), "s"}};
  for (const auto& [unit, suffix] : units) {
    if (d % unit == absl::ZeroDuration()) return absl::StrCat(d / unit, suffix);
  }
  return absl::FormatDuration(d);  // Under a second: not a value the parser accepts anyway.
}

}  // namespace

std::string FormatRetentionTiers(const RetentionTiers& t) {
  return absl::StrCat(FormatRetention(t.raw), ",", FormatRetention(t.minute), ",", FormatRetention(t.hour));
}

absl::Status ValidateHistoryQuery(const HistoryQuery& q) {
  const bool endpoint_metric = IsEndpointMetric(q.metric);
  if (!endpoint_metric && !IsPoolMetric(q.metric)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown metric '", q.metric.substr(0, 64), "': endpoint metrics are ",
        absl::StrJoin(EndpointMetricNames(), ", "), "; pool metrics are ", absl::StrJoin(PoolMetricNames(), ", ")));
  }
  const bool endpoint = !q.address.empty() || !q.node_id.empty();
  if (endpoint && (q.address.empty() || q.node_id.empty())) {
    return absl::InvalidArgumentError("an endpoint is named NODE/ADDRESS: give both");
  }
  if (!endpoint && q.pool.empty()) return absl::InvalidArgumentError("give a pool or an endpoint (NODE/ADDRESS)");
  if (!endpoint_metric && q.pool.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'", q.metric, "' is a pool metric: ask for a pool"));
  }
  if (q.step < absl::Seconds(1)) return absl::InvalidArgumentError("the step must be at least 1s");
  if (q.until <= q.since) return absl::InvalidArgumentError("the range is empty: 'since' must be before 'until'");
  if ((q.until - q.since) / q.step > static_cast<double>(kMaxHistoryPoints)) {
    return absl::InvalidArgumentError(absl::StrCat("that asks for over ", kMaxHistoryPoints,
                                                   " points a series: use a larger step or a shorter range"));
  }
  return absl::OkStatus();
}

namespace tiers {

absl::Status CreateTables(sqlite3* db) {
  for (const char* sql : {
           "CREATE TABLE endpoint_series (id INTEGER PRIMARY KEY, pool TEXT NOT NULL, node_id TEXT NOT NULL,"
           " address TEXT NOT NULL, UNIQUE(pool, node_id, address))",
           "CREATE INDEX endpoint_series_by_endpoint ON endpoint_series(node_id, address)",
           // Rows are keyed by tier, series and time: a series' range is one index range.
           "CREATE TABLE endpoint_samples (tier INTEGER NOT NULL, series INTEGER NOT NULL,"
           " time_unix_ms INTEGER NOT NULL, slots_total REAL NOT NULL, slots_busy REAL NOT NULL,"
           " queue_depth REAL NOT NULL, kv_cache_usage REAL NOT NULL, ttft_p95_seconds REAL NOT NULL,"
           " tokens_per_second REAL NOT NULL, weight REAL NOT NULL, circuit INTEGER NOT NULL,"
           " errors_total INTEGER NOT NULL, PRIMARY KEY (tier, series, time_unix_ms)) WITHOUT ROWID",
           // For roll-ups and pruning, which walk a tier by time.
           "CREATE INDEX endpoint_samples_by_time ON endpoint_samples(tier, time_unix_ms)",
           "CREATE TABLE pool_sample_rollups (tier INTEGER NOT NULL, pool TEXT NOT NULL,"
           " time_unix_ms INTEGER NOT NULL, demand REAL NOT NULL, replicas REAL NOT NULL, desired REAL NOT NULL,"
           " PRIMARY KEY (tier, pool, time_unix_ms)) WITHOUT ROWID",
           "CREATE INDEX pool_sample_rollups_by_time ON pool_sample_rollups(tier, time_unix_ms)",
           "CREATE INDEX pool_samples_by_pool ON pool_samples(pool, time_unix_ms)",
           "CREATE INDEX events_by_pool ON events(pool, time_unix_ms)",
           "CREATE TABLE rollup_progress (name TEXT PRIMARY KEY, done_until_unix_ms INTEGER NOT NULL)",
       }) {
    RETURN_IF_ERROR(Run(db, sql, {}));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> RollUp(sqlite3* db, absl::Time newest) {
  const int64_t newest_ms = absl::ToUnixMillis(newest);
  bool more = false;
  for (const SampleKind* kind : {&EndpointKind(), &PoolKind()}) {
    for (int tier : {1, 2}) {
      ASSIGN_OR_RETURN(bool m, RollUpTier(db, *kind, tier, newest_ms));
      more = more || m;
    }
  }
  return more;
}

absl::StatusOr<bool> Prune(sqlite3* db, absl::Time newest, const RetentionTiers& retention, int batch) {
  const int64_t newest_ms = absl::ToUnixMillis(newest);
  bool more = false;
  for (const SampleKind* kind : {&EndpointKind(), &PoolKind()}) {
    ASSIGN_OR_RETURN(int64_t minute_done, Progress(db, absl::StrCat(kind->name, "/1")));
    ASSIGN_OR_RETURN(int64_t hour_done, Progress(db, absl::StrCat(kind->name, "/2")));
    const absl::Duration raw_keep = kind == &PoolKind() ? std::max(retention.raw, kPoolSampleRawKeep) : retention.raw;
    const int64_t cutoffs[3] = {std::min(newest_ms - absl::ToInt64Milliseconds(raw_keep), minute_done),
                                std::min(newest_ms - absl::ToInt64Milliseconds(retention.minute), hour_done),
                                newest_ms - absl::ToInt64Milliseconds(retention.hour)};
    for (int tier = 0; tier < 3; ++tier) {
      bool m;
      if (tier == 0 && kind == &PoolKind()) {
        ASSIGN_OR_RETURN(m, DeleteBatch(db, "pool_samples", "rowid", "time_unix_ms < ?", {cutoffs[0]}, batch));
      } else {
        const std::string table = tier == 0 ? kind->tier0_table : kind->tiered_table;
        ASSIGN_OR_RETURN(
            m, DeleteBatch(db, table, absl::StrCat("tier, ", kind->key, ", time_unix_ms"),
                           "tier = ? AND time_unix_ms < ?", {static_cast<int64_t>(tier), cutoffs[tier]}, batch));
      }
      more = more || m;
    }
  }
  return more;
}

absl::StatusOr<std::vector<HistorySeries>> QuerySeries(sqlite3* db, const HistoryQuery& q) {
  RETURN_IF_ERROR(ValidateHistoryQuery(q));
  const bool pool_metric = IsPoolMetric(q.metric);
  const SampleKind& kind = pool_metric ? PoolKind() : EndpointKind();
  const int64_t since = absl::ToUnixMillis(q.since);
  const int64_t until = absl::ToUnixMillis(q.until);
  const int64_t step = absl::ToInt64Milliseconds(q.step);

  // The series asked for: (key, description).
  std::vector<std::pair<Param, HistorySeries>> series;
  if (pool_metric) {
    HistorySeries s;
    s.pool = q.pool;
    series.emplace_back(q.pool, std::move(s));
  } else {
    const bool by_endpoint = !q.address.empty();
    RETURN_IF_ERROR(Run(db,
                        by_endpoint ? "SELECT id, pool, node_id, address FROM endpoint_series WHERE node_id = ? AND "
                                      "address = ? ORDER BY pool"
                                    : "SELECT id, pool, node_id, address FROM endpoint_series WHERE pool = ? ORDER BY "
                                      "node_id, address",
                        by_endpoint ? std::vector<Param>{q.node_id, q.address} : std::vector<Param>{q.pool},
                        [&series](sqlite3_stmt* stmt) {
                          HistorySeries s;
                          s.pool = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1));
                          s.node_id = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 2));
                          s.address = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3));
                          series.emplace_back(sqlite3_column_int64(stmt, 0), std::move(s));
                        }));
  }

  // Which tier answers which part of the range.
  const int preferred = step >= kHourMs ? 2 : step >= kMinuteMs ? 1 : 0;
  int64_t done[3] = {0, 0, 0};  // done[t]: tier t holds everything before this.
  int64_t oldest[3];
  for (int t = 1; t <= 2; ++t) {
    ASSIGN_OR_RETURN(done[t], Progress(db, absl::StrCat(kind.name, "/", t)));
  }
  for (int t = 0; t <= 2; ++t) {
    const std::string table = t == 0 ? kind.tier0_table : kind.tiered_table;
    const std::string filter = t == 0 ? kind.tier0_filter : absl::StrCat("tier = ", t, " AND ");
    ASSIGN_OR_RETURN(oldest[t],
                     ScalarOr(db, absl::StrCat("SELECT MIN(time_unix_ms) FROM ", table, " WHERE ", filter, "1"), {},
                              std::numeric_limits<int64_t>::max()));
  }
  struct Part {
    int tier;
    int64_t from, to;
  };
  std::vector<Part> parts;
  int64_t hi = until;
  // What the preferred tier does not hold yet, from finer tiers.
  for (int t = 0; t < preferred; ++t) {
    const int64_t lo = std::max(since, std::min(hi, done[t + 1]));
    if (lo < hi) parts.push_back({t, lo, hi});
    hi = lo;
  }
  // The preferred tier, then coarser ones for what was pruned from it.
  for (int t = preferred; t <= 2 && hi > since; ++t) {
    const int64_t lo = t == 2 ? since : std::max(since, std::min(hi, oldest[t]));
    if (lo < hi) parts.push_back({t, lo, hi});
    hi = lo;
  }

  std::vector<HistorySeries> out;
  for (auto& [key, s] : series) {
    // Bucket -> (sum of part averages weighted by the time each part covers of the
    // bucket, that time): a bucket split between tiers counts each tier for its share.
    std::map<int64_t, std::pair<double, double>> buckets;
    for (const Part& part : parts) {
      const std::string table = part.tier == 0 ? kind.tier0_table : kind.tiered_table;
      std::string where = absl::StrCat(kind.key, " = ? AND time_unix_ms >= ? AND time_unix_ms < ?");
      if (part.tier > 0 || !kind.tier0_filter.empty()) where = absl::StrCat("tier = ", part.tier, " AND ", where);
      RETURN_IF_ERROR(Run(db,
                          absl::StrCat("SELECT (time_unix_ms - ?) / ? AS b, avg(", q.metric, ") FROM ", table,
                                       " WHERE ", where, " GROUP BY b"),
                          {since, step, key, part.from, part.to}, [&](sqlite3_stmt* stmt) {
                            const int64_t b = sqlite3_column_int64(stmt, 0);
                            const int64_t from = std::max(part.from, since + b * step);
                            const int64_t to = std::min(part.to, since + (b + 1) * step);
                            const double weight = static_cast<double>(std::max<int64_t>(to - from, 1));
                            auto& [sum, total] = buckets[b];
                            sum += weight * sqlite3_column_double(stmt, 1);
                            total += weight;
                          }));
    }
    for (const auto& [b, st] : buckets) {
      s.points.push_back({absl::FromUnixMillis(since + b * step), st.first / st.second});
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace tiers
}  // namespace switchboard::controlplane
