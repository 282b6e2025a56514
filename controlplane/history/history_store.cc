#include "controlplane/history/history_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <initializer_list>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/thread_name.h"

namespace switchboard::controlplane {
namespace {

absl::Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("sqlite: ", msg, " (in: ", sql, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<sqlite3*> OpenDb(const std::string& path) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("cannot open history database ", path, ": ", msg));
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

// Points as "unix_ms:value,unix_ms:value".
std::string EncodePoints(const std::vector<StoredScalingState::Point>& points) {
  std::string out;
  for (const StoredScalingState::Point& p : points) {
    absl::StrAppend(&out, out.empty() ? "" : ",", absl::ToUnixMillis(p.time), ":", p.value);
  }
  return out;
}

bool DecodePoints(absl::string_view text, std::vector<StoredScalingState::Point>* out) {
  if (text.empty()) return true;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(item, absl::MaxSplits(':', 1));
    int64_t ms = 0;
    int32_t value = 0;
    if (!absl::SimpleAtoi(parts.first, &ms) || !absl::SimpleAtoi(parts.second, &value)) return false;
    out->push_back({absl::FromUnixMillis(ms), value});
  }
  return true;
}

void BindText(sqlite3_stmt* stmt, int i, const std::string& text) {
  sqlite3_bind_text(stmt, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

std::string ColumnText(sqlite3_stmt* stmt, int i) {
  const unsigned char* text = sqlite3_column_text(stmt, i);
  return text ? std::string(reinterpret_cast<const char*>(text), sqlite3_column_bytes(stmt, i)) : "";
}

// Runs the query `sql` with `params` bound to its `?`s in order and calls `row` for each
// result row. The one loop every read below shares.
absl::Status ForEachRow(sqlite3* db, const char* sql, std::initializer_list<int64_t> params,
                        const std::function<void(sqlite3_stmt*)>& row) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return absl::InternalError(sqlite3_errmsg(db));
  }
  int i = 0;
  for (int64_t param : params) sqlite3_bind_int64(stmt, ++i, param);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) row(stmt);
  absl::Status status = rc == SQLITE_DONE ? absl::OkStatus() : absl::InternalError(sqlite3_errmsg(db));
  sqlite3_finalize(stmt);
  return status;
}

// The schema version: PRAGMA user_version, or for databases from before version 4 the
// schema_version table they kept it in.
absl::StatusOr<int> SchemaVersion(sqlite3* db) {
  int version = 0;
  RETURN_IF_ERROR(ForEachRow(db, "PRAGMA user_version", {},
                             [&version](sqlite3_stmt* stmt) { version = sqlite3_column_int(stmt, 0); }));
  if (version > 0) return version;
  bool legacy = false;
  RETURN_IF_ERROR(ForEachRow(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'", {},
                             [&legacy](sqlite3_stmt*) { legacy = true; }));
  if (legacy) {
    RETURN_IF_ERROR(ForEachRow(db, "SELECT MAX(version) FROM schema_version", {},
                               [&version](sqlite3_stmt* stmt) { version = sqlite3_column_int(stmt, 0); }));
  }
  return version;
}

// Runs one migration step in a transaction that also records its version.
absl::Status Step(sqlite3* db, int version, const std::function<absl::Status()>& body) {
  RETURN_IF_ERROR(Exec(db, "BEGIN"));
  absl::Status s = body();
  if (s.ok()) s = Exec(db, absl::StrCat("PRAGMA user_version = ", version).c_str());
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) Exec(db, "ROLLBACK").IgnoreError();
  return s;
}

absl::Status Migrate(sqlite3* db, const std::string& path) {
  if (absl::Status s = Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a usable SQLite database: ", s.message()));
  }
  absl::StatusOr<int> current = SchemaVersion(db);
  if (!current.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a usable SQLite database: ", current.status().message()));
  }
  const int version = *current;
  if (version > kHistorySchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(path, " has history schema version ", version,
                                                      ", newer than this build's ", kHistorySchemaVersion,
                                                      ": upgrade Switchboard or point --db elsewhere"));
  }
  // Versions 1-3 (below) record themselves in schema_version, as they always did, so that
  // a half-migrated old database resumes where it stopped; version 4 moves to user_version.
  RETURN_IF_ERROR(Exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  if (version < 1) {
    if (absl::Status s = Exec(db,
                              "BEGIN;"
                              "CREATE TABLE events ("
                              "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
                              "  time_unix_ms INTEGER NOT NULL,"
                              "  kind TEXT NOT NULL, pool TEXT NOT NULL, node_id TEXT NOT NULL,"
                              "  address TEXT NOT NULL, detail TEXT NOT NULL);"
                              "CREATE INDEX events_by_time ON events(time_unix_ms);"
                              "CREATE TABLE pool_snapshots ("
                              "  pool TEXT PRIMARY KEY, version TEXT NOT NULL,"
                              "  time_unix_ms INTEGER NOT NULL, assignment BLOB NOT NULL);"
                              "INSERT INTO schema_version(version) VALUES (1);"
                              "COMMIT;");
        !s.ok()) {
      Exec(db, "ROLLBACK").IgnoreError();
      return s;
    }
  }
  if (version < 2) {
    if (absl::Status s = Exec(db,
                              "BEGIN;"
                              "CREATE TABLE pool_samples ("
                              "  time_unix_ms INTEGER NOT NULL, pool TEXT NOT NULL,"
                              "  demand REAL NOT NULL, replicas INTEGER NOT NULL, desired INTEGER NOT NULL);"
                              "CREATE INDEX pool_samples_by_time ON pool_samples(time_unix_ms);"
                              "INSERT INTO schema_version(version) VALUES (2);"
                              "COMMIT;");
        !s.ok()) {
      Exec(db, "ROLLBACK").IgnoreError();
      return s;
    }
  }
  if (version < 3) {
    if (absl::Status s = Exec(db,
                              "BEGIN;"
                              "CREATE TABLE pool_scaling_state ("
                              "  pool TEXT PRIMARY KEY, time_unix_ms INTEGER NOT NULL,"
                              "  last_desired INTEGER NOT NULL, recommendations TEXT NOT NULL,"
                              "  scale_up_events TEXT NOT NULL, scale_down_events TEXT NOT NULL);"
                              "CREATE TABLE manual_overrides ("
                              "  pool TEXT PRIMARY KEY, replicas INTEGER NOT NULL,"
                              "  expires_unix_ms INTEGER NOT NULL, reason TEXT NOT NULL);"
                              "CREATE TABLE drained_nodes ("
                              "  node_id TEXT PRIMARY KEY, since_unix_ms INTEGER NOT NULL);"
                              "INSERT INTO schema_version(version) VALUES (3);"
                              "COMMIT;");
        !s.ok()) {
      Exec(db, "ROLLBACK").IgnoreError();
      return s;
    }
  }
  if (version < 4) {
    absl::Status s = Step(db, 4, [db]() -> absl::Status {
      absl::Status created = tiers::CreateTables(db);
      return created.ok() ? Exec(db, "DROP TABLE schema_version") : created;
    });
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<HistoryStore>> HistoryStore::Open(const std::string& path, size_t queue_limit) {
  HistoryOptions options;
  options.queue_limit = queue_limit;
  return Open(path, std::move(options));
}

absl::StatusOr<std::unique_ptr<HistoryStore>> HistoryStore::Open(const std::string& path, HistoryOptions options) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", parent.string(), ": ", ec.message()));
  }
  absl::StatusOr<sqlite3*> writer = OpenDb(path);
  if (!writer.ok()) return writer.status();
  if (absl::Status s = Migrate(*writer, path); !s.ok()) {
    sqlite3_close(*writer);
    return s;
  }
  absl::StatusOr<sqlite3*> reader = OpenDb(path);
  if (!reader.ok()) {
    sqlite3_close(*writer);
    return reader.status();
  }
  return std::unique_ptr<HistoryStore>(new HistoryStore(*writer, *reader, std::move(options)));
}

HistoryStore::HistoryStore(sqlite3* writer, sqlite3* reader, HistoryOptions options)
    : writer_db_(writer), reader_db_(reader), queue_limit_(options.queue_limit), options_(std::move(options)) {
  writer_ = std::thread([this] { WriterLoop(); });
}

HistoryStore::~HistoryStore() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  writer_.join();  // Drains the queue first: nothing recorded is lost on shutdown.
  sqlite3_close(writer_db_);
  sqlite3_close(reader_db_);
}

void HistoryStore::Enqueue(Item item) {
  MutexLock lock(&mu_);
  if (item.kind == Item::Kind::kEndpointSamples) {
    // Bounded by samples, not items: older passes give way to the newest.
    const size_t n = item.endpoint_samples.size();
    if (n > options_.endpoint_sample_limit) {
      dropped_endpoint_samples_ += n;
      return;
    }
    while (queued_endpoint_samples_ + n > options_.endpoint_sample_limit &&
           DropOldestLocked(Item::Kind::kEndpointSamples)) {
    }
  }
  if (queue_.size() >= queue_limit_) {
    // Never wait for the writer: make room by dropping what matters least.
    const bool is_sample = item.kind == Item::Kind::kSample || item.kind == Item::Kind::kEndpointSamples;
    const bool made_room =
        DropOldestLocked(Item::Kind::kSample) || DropOldestLocked(Item::Kind::kEndpointSamples) ||
        (!is_sample && (DropOldestLocked(Item::Kind::kSnapshot) || DropOldestLocked(Item::Kind::kScalingState)));
    if (!made_room && is_sample) {
      if (item.kind == Item::Kind::kSample) {
        ++dropped_samples_;
      } else {
        dropped_endpoint_samples_ += item.endpoint_samples.size();
      }
      return;
    }
    // Otherwise it goes over the limit: events, overrides and drains are never dropped.
  }
  item.seq = ++enqueued_;
  if (item.kind == Item::Kind::kEndpointSamples) queued_endpoint_samples_ += item.endpoint_samples.size();
  queue_.push_back(std::move(item));
}

std::deque<HistoryStore::Item>::iterator HistoryStore::EraseLocked(std::deque<Item>::iterator it) {
  if (it->kind == Item::Kind::kEndpointSamples) queued_endpoint_samples_ -= it->endpoint_samples.size();
  return queue_.erase(it);
}

bool HistoryStore::DropOldestLocked(Item::Kind kind) {
  auto it = std::find_if(queue_.begin(), queue_.end(), [kind](const Item& i) { return i.kind == kind; });
  if (it == queue_.end()) return false;
  if (kind == Item::Kind::kEndpointSamples) {
    dropped_endpoint_samples_ += it->endpoint_samples.size();
    EraseLocked(it);
    return true;
  }
  EraseLocked(it);
  ++(kind == Item::Kind::kSample     ? dropped_samples_
     : kind == Item::Kind::kSnapshot ? dropped_snapshots_
                                     : dropped_scaling_states_);
  return true;
}

bool HistoryStore::SettledLocked(uint64_t target) const {
  // The queue is in recording order (drops only remove), so every item up to `target`
  // is settled once neither the batch being written nor the queue's head is one.
  return (writing_from_ == 0 || writing_from_ > target) && (queue_.empty() || queue_.front().seq > target);
}

std::vector<HistoryStore::FlushWaiter> HistoryStore::TakeSettledWaitersLocked() {
  std::vector<FlushWaiter> settled;
  // Called by the writer between batches: every item that left the queue is settled.
  auto it = std::stable_partition(waiters_.begin(), waiters_.end(),
                                  [this](const FlushWaiter& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                                    return !queue_.empty() && queue_.front().seq <= w.target;
                                  });
  std::move(it, waiters_.end(), std::back_inserter(settled));
  waiters_.erase(it, waiters_.end());
  return settled;
}

void HistoryStore::WhenFlushed(std::function<void(bool saved)> done) {
  {
    MutexLock lock(&mu_);
    if (!SettledLocked(enqueued_)) {
      waiters_.push_back({enqueued_, write_errors_, std::move(done)});
      return;
    }
  }
  done(true);
}

void HistoryStore::RecordEvent(HistoryEvent event) {
  Item item;
  item.kind = Item::Kind::kEvent;
  item.event = std::move(event);
  Enqueue(std::move(item));
}

void HistoryStore::RecordSnapshot(StoredSnapshot snapshot) {
  Item item;
  item.kind = Item::Kind::kSnapshot;
  item.snapshot = std::move(snapshot);
  Enqueue(std::move(item));
}

void HistoryStore::RecordSample(PoolSample sample) {
  Item item;
  item.kind = Item::Kind::kSample;
  item.sample = std::move(sample);
  Enqueue(std::move(item));
}

void HistoryStore::RecordEndpointSamples(std::vector<EndpointSample> samples) {
  if (samples.empty()) return;
  Item item;
  item.kind = Item::Kind::kEndpointSamples;
  item.endpoint_samples = std::move(samples);
  Enqueue(std::move(item));
}

void HistoryStore::RecordScalingState(StoredScalingState state) {
  Item item;
  item.kind = Item::Kind::kScalingState;
  item.scaling = std::move(state);
  Enqueue(std::move(item));
}

void HistoryStore::RecordOverride(StoredOverride override_) {
  Item item;
  item.kind = Item::Kind::kOverride;
  item.override_ = std::move(override_);
  Enqueue(std::move(item));
}

void HistoryStore::RecordDrain(const std::string& node_id, bool drained, absl::Time time) {
  Item item;
  item.kind = Item::Kind::kDrain;
  item.node_id = node_id;
  item.drained = drained;
  item.time = time;
  Enqueue(std::move(item));
}

absl::StatusOr<std::vector<PoolSample>> HistoryStore::SamplesSince(absl::Time since) const {
  MutexLock lock(&reader_mu_);
  std::vector<PoolSample> out;
  RETURN_IF_ERROR(ForEachRow(reader_db_,
                             "SELECT time_unix_ms, pool, demand, replicas, desired FROM pool_samples "
                             "WHERE time_unix_ms >= ? ORDER BY time_unix_ms",
                             {absl::ToUnixMillis(since)}, [&out](sqlite3_stmt* stmt) {
                               PoolSample s;
                               s.time = absl::FromUnixMillis(sqlite3_column_int64(stmt, 0));
                               s.pool = ColumnText(stmt, 1);
                               s.demand = sqlite3_column_double(stmt, 2);
                               s.replicas = sqlite3_column_int(stmt, 3);
                               s.desired = sqlite3_column_int(stmt, 4);
                               out.push_back(std::move(s));
                             }));
  return out;
}

void HistoryStore::Flush() {
  MutexLock lock(&mu_);
  const uint64_t target = enqueued_;
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return SettledLocked(target); };
  mu_.Await(Condition(&done));
}

size_t HistoryStore::queue_depth() const {
  MutexLock lock(&mu_);
  return queue_.size();
}

uint64_t HistoryStore::write_errors() const {
  MutexLock lock(&mu_);
  return write_errors_;
}

uint64_t HistoryStore::dropped_samples() const {
  MutexLock lock(&mu_);
  return dropped_samples_;
}

uint64_t HistoryStore::dropped_snapshots() const {
  MutexLock lock(&mu_);
  return dropped_snapshots_;
}

size_t HistoryStore::queued_endpoint_samples() const {
  MutexLock lock(&mu_);
  return queued_endpoint_samples_;
}

uint64_t HistoryStore::dropped_endpoint_samples() const {
  MutexLock lock(&mu_);
  return dropped_endpoint_samples_;
}

uint64_t HistoryStore::dropped_scaling_states() const {
  MutexLock lock(&mu_);
  return dropped_scaling_states_;
}

void HistoryStore::PauseWriter() {
  MutexLock lock(&mu_);
  paused_ = true;
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return writing_from_ == 0; };
  mu_.Await(Condition(&idle));
}

void HistoryStore::ResumeWriter() {
  MutexLock lock(&mu_);
  paused_ = false;
}

void HistoryStore::WriterLoop() {
  NameThisThread("sb-history");
  while (true) {
    std::vector<Item> batch;
    {
      MutexLock lock(&mu_);
      // Stopping overrides a pause: the destructor drains the queue.
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || (!paused_ && !queue_.empty()); };
      mu_.Await(Condition(&ready));
      if (queue_.empty() && stop_) break;
      writing_from_ = queue_.front().seq;
      size_t batch_endpoint_samples = 0;
      while (!queue_.empty() && batch.size() < 512 && batch_endpoint_samples < kBatchEndpointSamples) {
        Item& front = queue_.front();
        if (front.kind == Item::Kind::kEndpointSamples) queued_endpoint_samples_ -= front.endpoint_samples.size();
        batch_endpoint_samples += front.endpoint_samples.size();
        batch.push_back(std::move(front));
        queue_.pop_front();
      }
    }
    WriteBatch(batch);
    Maintain();
    NotifySettledWaiters();  // Before the batch counts as done, so that Flush waits for it.
    MutexLock lock(&mu_);
    writing_from_ = 0;
  }
  NotifySettledWaiters();  // Stopped with an empty queue: nobody is left waiting.
}

void HistoryStore::NotifySettledWaiters() {
  std::vector<FlushWaiter> settled;
  uint64_t errors;
  {
    MutexLock lock(&mu_);
    settled = TakeSettledWaitersLocked();
    errors = write_errors_;
  }
  for (FlushWaiter& w : settled) w.done(errors == w.write_errors);
}

void HistoryStore::WriteBatch(const std::vector<Item>& batch) {
  sqlite3* db = writer_db_;
  absl::Status status = Exec(db, "BEGIN");
  // A statement that does not prepare (a table gone, a corrupt file) fails the batch:
  // its writes are lost, and counted as such, rather than skipped as if written.
  auto prepare = [&](const char* sql, sqlite3_stmt** stmt) {
    if (status.ok() && sqlite3_prepare_v2(db, sql, -1, stmt, nullptr) != SQLITE_OK) {
      status = absl::InternalError(absl::StrCat("sqlite: ", sqlite3_errmsg(db), " (in: ", sql, ")"));
    }
  };
  sqlite3_stmt* ev = nullptr;
  sqlite3_stmt* snap = nullptr;
  sqlite3_stmt* sample = nullptr;
  sqlite3_stmt* scaling = nullptr;
  sqlite3_stmt* set_override = nullptr;
  sqlite3_stmt* clear_override = nullptr;
  sqlite3_stmt* drain = nullptr;
  sqlite3_stmt* undrain = nullptr;
  sqlite3_stmt* endpoint_sample = nullptr;
  prepare("INSERT INTO pool_samples(time_unix_ms, pool, demand, replicas, desired) VALUES (?, ?, ?, ?, ?)", &sample);
  prepare(
      "INSERT INTO events(time_unix_ms, kind, pool, node_id, address, detail) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      &ev);
  prepare(
      "INSERT OR REPLACE INTO pool_snapshots(pool, version, time_unix_ms, assignment) "
      "VALUES (?, ?, ?, ?)",
      &snap);
  prepare(
      "INSERT OR REPLACE INTO pool_scaling_state(pool, time_unix_ms, last_desired, recommendations, "
      "scale_up_events, scale_down_events) VALUES (?, ?, ?, ?, ?, ?)",
      &scaling);
  prepare("INSERT OR REPLACE INTO manual_overrides(pool, replicas, expires_unix_ms, reason) VALUES (?, ?, ?, ?)",
          &set_override);
  prepare("DELETE FROM manual_overrides WHERE pool = ?", &clear_override);
  prepare("INSERT OR REPLACE INTO drained_nodes(node_id, since_unix_ms) VALUES (?, ?)", &drain);
  prepare("DELETE FROM drained_nodes WHERE node_id = ?", &undrain);
  prepare(
      "INSERT OR REPLACE INTO endpoint_samples(tier, series, time_unix_ms, slots_total, slots_busy, queue_depth, "
      "kv_cache_usage, ttft_p95_seconds, tokens_per_second, weight, circuit, errors_total) "
      "VALUES (0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      &endpoint_sample);
  absl::Time newest = newest_sample_;
  for (const Item& item : batch) {
    if (!status.ok()) break;
    sqlite3_stmt* stmt = nullptr;
    switch (item.kind) {
      case Item::Kind::kEndpointSamples: {
        for (const EndpointSample& e : item.endpoint_samples) {
          absl::StatusOr<int64_t> series = SeriesId(e);
          if (!series.ok()) {
            status = series.status();
            break;
          }
          sqlite3_stmt* st = endpoint_sample;
          sqlite3_reset(st);
          sqlite3_bind_int64(st, 1, *series);
          sqlite3_bind_int64(st, 2, absl::ToUnixMillis(e.time));
          sqlite3_bind_double(st, 3, e.slots_total);
          sqlite3_bind_double(st, 4, e.slots_busy);
          sqlite3_bind_double(st, 5, e.queue_depth);
          sqlite3_bind_double(st, 6, e.kv_cache_usage);
          sqlite3_bind_double(st, 7, e.ttft_p95_seconds);
          sqlite3_bind_double(st, 8, e.tokens_per_second);
          sqlite3_bind_double(st, 9, e.weight);
          sqlite3_bind_int(st, 10, e.circuit);
          sqlite3_bind_int64(st, 11, static_cast<int64_t>(std::min<uint64_t>(e.errors_total, INT64_MAX)));
          if (sqlite3_step(st) != SQLITE_DONE) {
            status = absl::InternalError(sqlite3_errmsg(db));
            break;
          }
          newest = std::max(newest, e.time);
        }
        continue;
      }
      case Item::Kind::kSample: {
        const PoolSample& p = item.sample;
        newest = std::max(newest, p.time);
        stmt = sample;
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, absl::ToUnixMillis(p.time));
        BindText(stmt, 2, p.pool);
        sqlite3_bind_double(stmt, 3, p.demand);
        sqlite3_bind_int(stmt, 4, p.replicas);
        sqlite3_bind_int(stmt, 5, p.desired);
        break;
      }
      case Item::Kind::kEvent: {
        const HistoryEvent& e = item.event;
        stmt = ev;
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, absl::ToUnixMillis(e.time));
        BindText(stmt, 2, e.kind);
        BindText(stmt, 3, e.pool);
        BindText(stmt, 4, e.node_id);
        BindText(stmt, 5, e.address);
        BindText(stmt, 6, e.detail);
        break;
      }
      case Item::Kind::kSnapshot: {
        const StoredSnapshot& s = item.snapshot;
        stmt = snap;
        sqlite3_reset(stmt);
        BindText(stmt, 1, s.pool);
        BindText(stmt, 2, s.version);
        sqlite3_bind_int64(stmt, 3, absl::ToUnixMillis(s.time));
        sqlite3_bind_blob(stmt, 4, s.assignment.data(), static_cast<int>(s.assignment.size()), SQLITE_TRANSIENT);
        break;
      }
      case Item::Kind::kScalingState: {
        const StoredScalingState& s = item.scaling;
        stmt = scaling;
        sqlite3_reset(stmt);
        BindText(stmt, 1, s.pool);
        sqlite3_bind_int64(stmt, 2, absl::ToUnixMillis(s.time));
        sqlite3_bind_int(stmt, 3, s.last_desired);
        BindText(stmt, 4, EncodePoints(s.recommendations));
        BindText(stmt, 5, EncodePoints(s.scale_up_events));
        BindText(stmt, 6, EncodePoints(s.scale_down_events));
        break;
      }
      case Item::Kind::kOverride: {
        const StoredOverride& o = item.override_;
        stmt = o.replicas < 0 ? clear_override : set_override;
        sqlite3_reset(stmt);
        BindText(stmt, 1, o.pool);
        if (o.replicas >= 0) {
          sqlite3_bind_int(stmt, 2, o.replicas);
          sqlite3_bind_int64(stmt, 3, absl::ToUnixMillis(o.expires));
          BindText(stmt, 4, o.reason);
        }
        break;
      }
      case Item::Kind::kDrain: {
        stmt = item.drained ? drain : undrain;
        sqlite3_reset(stmt);
        BindText(stmt, 1, item.node_id);
        if (item.drained) sqlite3_bind_int64(stmt, 2, absl::ToUnixMillis(item.time));
        break;
      }
    }
    if (sqlite3_step(stmt) != SQLITE_DONE) {
      status = absl::InternalError(sqlite3_errmsg(db));
    }
  }
  for (sqlite3_stmt* stmt :
       {ev, snap, sample, scaling, set_override, clear_override, drain, undrain, endpoint_sample}) {
    sqlite3_finalize(stmt);
  }
  if (status.ok()) status = Exec(db, "COMMIT");
  if (status.ok()) {
    newest_sample_ = newest;
  } else {
    series_ids_.clear();  // Ids inserted in the lost batch are gone.
    Exec(db, "ROLLBACK").IgnoreError();
    SB_LOG(ERROR) << "history: lost a batch of " << batch.size() << " writes: " << status.message();
    MutexLock lock(&mu_);
    ++write_errors_;
  }
}

absl::StatusOr<std::vector<HistoryEvent>> HistoryStore::RecentEvents(size_t limit) const {
  EventQuery query;
  query.limit = limit;
  return Events(query);
}

absl::StatusOr<std::vector<HistoryEvent>> HistoryStore::Events(const EventQuery& query) const {
  MutexLock lock(&reader_mu_);
  std::vector<HistoryEvent> out;
  const int64_t since = query.since == absl::InfinitePast() ? INT64_MIN : absl::ToUnixMillis(query.since);
  auto row = [&out](sqlite3_stmt* stmt) {
    HistoryEvent e;
    e.time = absl::FromUnixMillis(sqlite3_column_int64(stmt, 0));
    e.kind = ColumnText(stmt, 1);
    e.pool = ColumnText(stmt, 2);
    e.node_id = ColumnText(stmt, 3);
    e.address = ColumnText(stmt, 4);
    e.detail = ColumnText(stmt, 5);
    e.id = sqlite3_column_int64(stmt, 6);
    out.push_back(std::move(e));
  };
  const int64_t limit = static_cast<int64_t>(std::min<size_t>(query.limit, INT64_MAX));
  if (query.pool.empty()) {
    RETURN_IF_ERROR(ForEachRow(reader_db_,
                               "SELECT time_unix_ms, kind, pool, node_id, address, detail, id FROM events "
                               "WHERE id > ? AND time_unix_ms >= ? ORDER BY id DESC LIMIT ?",
                               {query.after_id, since, limit}, row));
    return out;
  }
  // By pool: the (pool, time) index; ids grow with time within one writer.
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(reader_db_,
                         "SELECT time_unix_ms, kind, pool, node_id, address, detail, id FROM events "
                         "WHERE pool = ? AND time_unix_ms >= ? AND id > ? ORDER BY time_unix_ms DESC, id DESC LIMIT ?",
                         -1, &stmt, nullptr) != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return absl::InternalError(sqlite3_errmsg(reader_db_));
  }
  BindText(stmt, 1, query.pool);
  sqlite3_bind_int64(stmt, 2, since);
  sqlite3_bind_int64(stmt, 3, query.after_id);
  sqlite3_bind_int64(stmt, 4, limit);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) row(stmt);
  absl::Status status = rc == SQLITE_DONE ? absl::OkStatus() : absl::InternalError(sqlite3_errmsg(reader_db_));
  sqlite3_finalize(stmt);
  RETURN_IF_ERROR(status);
  return out;
}

absl::StatusOr<std::vector<HistorySeries>> HistoryStore::Query(const HistoryQuery& query) const {
  RETURN_IF_ERROR(ValidateHistoryQuery(query));
  MutexLock lock(&reader_mu_);
  // One read transaction: the tiers' progress and rows are seen at one moment.
  RETURN_IF_ERROR(Exec(reader_db_, "BEGIN"));
  absl::StatusOr<std::vector<HistorySeries>> out = tiers::QuerySeries(reader_db_, query);
  Exec(reader_db_, "COMMIT").IgnoreError();
  return out;
}

absl::StatusOr<int64_t> HistoryStore::SeriesId(const EndpointSample& sample) {
  std::string& key = series_key_;
  key.assign(sample.pool);
  key.push_back('\0');
  key.append(sample.node_id);
  key.push_back('\0');
  key.append(sample.address);
  auto it = series_ids_.find(key);
  if (it != series_ids_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(writer_db_,
                         "INSERT INTO endpoint_series(pool, node_id, address) VALUES (?, ?, ?) "
                         "ON CONFLICT(pool, node_id, address) DO UPDATE SET pool = excluded.pool RETURNING id",
                         -1, &stmt, nullptr) != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return absl::InternalError(sqlite3_errmsg(writer_db_));
  }
  BindText(stmt, 1, sample.pool);
  BindText(stmt, 2, sample.node_id);
  BindText(stmt, 3, sample.address);
  int64_t id = -1;
  if (sqlite3_step(stmt) == SQLITE_ROW) id = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  if (id < 0) return absl::InternalError(sqlite3_errmsg(writer_db_));
  series_ids_.emplace(key, id);
  return id;
}

void HistoryStore::Maintain() {
  if (newest_sample_ == absl::InfinitePast()) return;
  // Once a second of sample time, or at once while behind.
  if (!maintenance_behind_ && newest_sample_ - last_maintained_ < absl::Seconds(1)) return;
  last_maintained_ = newest_sample_;
  bool behind = false;
  for (int pass = 0; pass < 2; ++pass) {
    absl::Status status = Exec(writer_db_, "BEGIN");
    absl::StatusOr<bool> more =
        status.ok() ? (pass == 0 ? tiers::RollUp(writer_db_, newest_sample_)
                                 : tiers::Prune(writer_db_, newest_sample_, options_.retention, options_.prune_batch))
                    : absl::StatusOr<bool>(status);
    if (more.ok()) status = Exec(writer_db_, "COMMIT");
    if (!more.ok() || !status.ok()) {
      Exec(writer_db_, "ROLLBACK").IgnoreError();
      SB_LOG(ERROR) << "history: " << (pass == 0 ? "roll-up" : "pruning")
                    << " failed: " << (more.ok() ? status.message() : more.status().message());
      continue;  // Retried after the next batch; samples stay a little longer meanwhile.
    }
    behind = behind || *more;
  }
  maintenance_behind_ = behind;
}

absl::StatusOr<std::vector<StoredSnapshot>> HistoryStore::LatestSnapshots() const {
  MutexLock lock(&reader_mu_);
  std::vector<StoredSnapshot> out;
  RETURN_IF_ERROR(ForEachRow(reader_db_, "SELECT pool, version, time_unix_ms, assignment FROM pool_snapshots", {},
                             [&out](sqlite3_stmt* stmt) {
                               StoredSnapshot s;
                               s.pool = ColumnText(stmt, 0);
                               s.version = ColumnText(stmt, 1);
                               s.time = absl::FromUnixMillis(sqlite3_column_int64(stmt, 2));
                               const void* blob = sqlite3_column_blob(stmt, 3);
                               s.assignment.assign(static_cast<const char*>(blob), sqlite3_column_bytes(stmt, 3));
                               out.push_back(std::move(s));
                             }));
  return out;
}

absl::StatusOr<std::vector<StoredScalingState>> HistoryStore::ScalingStates() const {
  MutexLock lock(&reader_mu_);
  std::vector<StoredScalingState> out;
  RETURN_IF_ERROR(ForEachRow(reader_db_,
                             "SELECT pool, time_unix_ms, last_desired, recommendations, scale_up_events, "
                             "scale_down_events FROM pool_scaling_state",
                             {}, [&out](sqlite3_stmt* stmt) {
                               StoredScalingState s;
                               s.pool = ColumnText(stmt, 0);
                               s.time = absl::FromUnixMillis(sqlite3_column_int64(stmt, 1));
                               s.last_desired = sqlite3_column_int(stmt, 2);
                               if (!DecodePoints(ColumnText(stmt, 3), &s.recommendations) ||
                                   !DecodePoints(ColumnText(stmt, 4), &s.scale_up_events) ||
                                   !DecodePoints(ColumnText(stmt, 5), &s.scale_down_events)) {
                                 SB_LOG(WARNING) << "history: ignoring the unreadable scaling state of pool " << s.pool;
                                 return;
                               }
                               out.push_back(std::move(s));
                             }));
  return out;
}

absl::StatusOr<std::vector<StoredOverride>> HistoryStore::Overrides() const {
  MutexLock lock(&reader_mu_);
  std::vector<StoredOverride> out;
  RETURN_IF_ERROR(ForEachRow(reader_db_, "SELECT pool, replicas, expires_unix_ms, reason FROM manual_overrides", {},
                             [&out](sqlite3_stmt* stmt) {
                               StoredOverride o;
                               o.pool = ColumnText(stmt, 0);
                               o.replicas = sqlite3_column_int(stmt, 1);
                               o.expires = absl::FromUnixMillis(sqlite3_column_int64(stmt, 2));
                               o.reason = ColumnText(stmt, 3);
                               out.push_back(std::move(o));
                             }));
  return out;
}

absl::StatusOr<std::vector<std::string>> HistoryStore::DrainedNodes() const {
  MutexLock lock(&reader_mu_);
  std::vector<std::string> out;
  RETURN_IF_ERROR(ForEachRow(reader_db_, "SELECT node_id FROM drained_nodes ORDER BY node_id", {},
                             [&out](sqlite3_stmt* stmt) { out.push_back(ColumnText(stmt, 0)); }));
  return out;
}

}  // namespace switchboard::controlplane
