// Keeps an nginx include file (an upstream block per pool) in line with the pools:
// renders with RenderNginx, and when the content changed writes it atomically, checks it
// (`nginx -t`), and reloads nginx, at most a configured number of times a minute.
#ifndef SWITCHBOARD_SYNC_NGINX_SYNC_H_
#define SWITCHBOARD_SYNC_NGINX_SYNC_H_

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "switchboard/v1/discovery.pb.h"
#include "sync/haproxy_sync.h"
#include "sync/plan.h"

namespace switchboard::sync {

// At most `per_minute` events in any 60 s window. Pure: the caller passes the time.
class ReloadLimiter {
 public:
  explicit ReloadLimiter(int per_minute) : per_minute_(per_minute) {}
  bool Allowed(absl::Time now);
  void Record(absl::Time now) { times_.push_back(now); }
  // When the next event is allowed (now, if it already is).
  absl::Time NextAllowed(absl::Time now);

 private:
  void Expire(absl::Time now);
  const int per_minute_;
  std::deque<absl::Time> times_;
};

struct NginxSyncOptions {
  std::string out;             // The include file.
  std::string check_command;   // Run with /bin/sh -c after writing; non-zero = the file is bad.
  std::string reload_command;  // Run with /bin/sh -c after a good check.
  int max_reloads_per_minute = 6;
  std::vector<std::string> pools;  // An upstream block each, in this order.
  std::string upstream;            // With one pool: the block's name (default NginxUpstreamName).
  std::string backup_pool;         // With one pool: its endpoints become `backup` servers.
  NginxOptions render;
  bool dry_run = false;
};

// Runs `command` with /bin/sh -c; returns its exit status and combined output.
std::pair<int, std::string> RunShell(const std::string& command);

class NginxSync {
 public:
  NginxSync(
      NginxSyncOptions options, std::ostream& out, std::function<absl::Time()> now = [] { return absl::Now(); });

  // Records `a` (of one of the pools or the backup pool); once every pool has an
  // assignment, renders and, if the file would change, writes, checks and reloads (or
  // defers the reload when the rate limit is reached: Tick applies it later).
  absl::Status Apply(const v1::Assignment& a);
  // Applies a change deferred by the rate limit once the limit allows.
  absl::Status Tick();
  // True when every pool (and the backup pool) has had an assignment.
  bool Complete() const;
  bool Pending() const { return pending_; }

  const SyncCounters& counters() const { return counters_; }

 private:
  absl::Status Render();
  absl::Status WriteCheckReload(const std::string& content);

  const NginxSyncOptions options_;
  std::ostream& out_;
  std::function<absl::Time()> now_;
  ReloadLimiter limiter_;
  std::map<std::string, v1::Assignment> latest_;
  bool pending_ = false;  // A changed rendering waits for the rate limit.
  SyncCounters counters_;
};

}  // namespace switchboard::sync

#endif  // SWITCHBOARD_SYNC_NGINX_SYNC_H_
