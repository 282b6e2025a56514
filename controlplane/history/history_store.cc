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

absl::Status Migrate(sqlite3* db, const std::string& path) {
  if (absl::Status s = Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a usable SQLite database: ", s.message()));
  }
  if (absl::Status s = Exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"); !s.ok()) {
    return s;
  }
  int version = 0;
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "SELECT MAX(version) FROM schema_version", -1, &stmt, nullptr);
  if (stmt && sqlite3_step(stmt) == SQLITE_ROW) version = sqlite3_column_int(stmt, 0);
  sqlite3_finalize(stmt);
  if (version > kHistorySchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(path, " has history schema version ", version,
                                                      ", newer than this build's ", kHistorySchemaVersion,
                                                      ": upgrade Switchboard or point --db elsewhere"));
  }
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
  return absl::OkStatus();
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

}  // namespace

absl::StatusOr<std::unique_ptr<HistoryStore>> HistoryStore::Open(const std::string& path, size_t queue_limit) {
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
  return std::unique_ptr<HistoryStore>(new HistoryStore(*writer, *reader, queue_limit));
}

HistoryStore::HistoryStore(sqlite3* writer, sqlite3* reader, size_t queue_limit)
    : writer_db_(writer), reader_db_(reader), queue_limit_(queue_limit) {
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
  if (queue_.size() >= queue_limit_) {
    // Never wait for the writer: make room by dropping what matters least.
    const bool made_room = DropOldestLocked(Item::Kind::kSample) ||
                           (item.kind != Item::Kind::kSample &&
                            (DropOldestLocked(Item::Kind::kSnapshot) || DropOldestLocked(Item::Kind::kScalingState)));
    if (!made_room && item.kind == Item::Kind::kSample) {
      ++dropped_samples_;
      return;
    }
    // Otherwise it goes over the limit: events, overrides and drains are never dropped.
  }
  item.seq = ++enqueued_;
  queue_.push_back(std::move(item));
}

bool HistoryStore::DropOldestLocked(Item::Kind kind) {
  auto it = std::find_if(queue_.begin(), queue_.end(), [kind](const Item& i) { return i.kind == kind; });
  if (it == queue_.end()) return false;
  queue_.erase(it);
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
  while (true) {
    std::vector<Item> batch;
    {
      MutexLock lock(&mu_);
      // Stopping overrides a pause: the destructor drains the queue.
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || (!paused_ && !queue_.empty()); };
      mu_.Await(Condition(&ready));
      if (queue_.empty() && stop_) break;
      writing_from_ = queue_.front().seq;
      while (!queue_.empty() && batch.size() < 512) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    WriteBatch(batch);
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
  for (const Item& item : batch) {
    if (!status.ok()) break;
    sqlite3_stmt* stmt = nullptr;
    switch (item.kind) {
      case Item::Kind::kSample: {
        const PoolSample& p = item.sample;
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
  for (sqlite3_stmt* stmt : {ev, snap, sample, scaling, set_override, clear_override, drain, undrain}) {
    sqlite3_finalize(stmt);
  }
  // Samples older than the forecaster can use are dropped (events are kept), measured
  // from the newest sample written (no clock read here).
  absl::Time newest = absl::InfinitePast();
  for (const Item& item : batch) {
    if (item.kind == Item::Kind::kSample) newest = std::max(newest, item.sample.time);
  }
  if (status.ok() && newest != absl::InfinitePast()) {
    sqlite3_stmt* prune = nullptr;
    if (sqlite3_prepare_v2(db, "DELETE FROM pool_samples WHERE time_unix_ms < ?", -1, &prune, nullptr) == SQLITE_OK) {
      sqlite3_bind_int64(prune, 1, absl::ToUnixMillis(newest - absl::Hours(24 * 15)));
      sqlite3_step(prune);
    }
    sqlite3_finalize(prune);
  }
  if (status.ok()) status = Exec(db, "COMMIT");
  if (!status.ok()) {
    Exec(db, "ROLLBACK").IgnoreError();
    SB_LOG(ERROR) << "history: lost a batch of " << batch.size() << " writes: " << status.message();
    MutexLock lock(&mu_);
    ++write_errors_;
  }
}

absl::StatusOr<std::vector<HistoryEvent>> HistoryStore::RecentEvents(size_t limit) const {
  MutexLock lock(&reader_mu_);
  std::vector<HistoryEvent> out;
  RETURN_IF_ERROR(ForEachRow(reader_db_,
                             "SELECT time_unix_ms, kind, pool, node_id, address, detail FROM events "
                             "ORDER BY id DESC LIMIT ?",
                             {static_cast<int64_t>(limit)}, [&out](sqlite3_stmt* stmt) {
                               HistoryEvent e;
                               e.time = absl::FromUnixMillis(sqlite3_column_int64(stmt, 0));
                               e.kind = ColumnText(stmt, 1);
                               e.pool = ColumnText(stmt, 2);
                               e.node_id = ColumnText(stmt, 3);
                               e.address = ColumnText(stmt, 4);
                               e.detail = ColumnText(stmt, 5);
                               out.push_back(std::move(e));
                             }));
  return out;
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
