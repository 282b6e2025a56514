// Keeps one HAProxy backend in line with one pool, through HAProxy's runtime API (the
// admin socket): reads `show servers state`, plans with PlanHaproxy and runs the commands.
// No reload, no configuration file is touched.
#ifndef SWITCHBOARD_SYNC_HAPROXY_SYNC_H_
#define SWITCHBOARD_SYNC_HAPROXY_SYNC_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "switchboard/v1/discovery.pb.h"
#include "sync/plan.h"

namespace switchboard::sync {

// One command on HAProxy's admin socket (a UNIX socket path): connects, sends the
// line, returns everything HAProxy answers before it closes the connection.
absl::StatusOr<std::string> HaproxyCommand(const std::string& socket_path, const std::string& command,
                                           absl::Duration timeout);

struct SyncCounters {
  int64_t applies = 0;   // Rounds that changed something.
  int64_t commands = 0;  // Runtime commands run (HAProxy), or reloads (nginx).
  int64_t added = 0, removed = 0, weight_changes = 0, state_changes = 0, address_changes = 0;
  int64_t failures = 0;  // Commands, checks or reloads that failed.
};

class HaproxySync {
 public:
  // Events (what changed, what failed) are written to `out`, a line each.
  HaproxySync(std::string socket_path, HaproxyOptions options, bool dry_run, std::ostream& out);

  // Brings the backend in line with `a`. Idempotent: when the backend already matches,
  // it runs nothing. Called on every assignment and again every resync interval, which
  // is what re-applies the whole state after HAProxy restarts.
  absl::Status Apply(const v1::Assignment& a);

  const SyncCounters& counters() const { return counters_; }

 private:
  const std::string socket_path_;
  const HaproxyOptions options_;
  const bool dry_run_;
  std::ostream& out_;
  SyncCounters counters_;
  bool reachable_ = true;  // To log losing and regaining the socket once each.
};

}  // namespace switchboard::sync

#endif  // SWITCHBOARD_SYNC_HAPROXY_SYNC_H_
