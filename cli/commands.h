// sbctl commands. Each returns the process exit code: 0 success, 1 the control plane
// answered with an error or could not be reached, 2 bad usage.
#ifndef SWITCHBOARD_CLI_COMMANDS_H_
#define SWITCHBOARD_CLI_COMMANDS_H_

#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "cli/planner.h"

namespace switchboard::cli {

// Flags every command takes, before or after the subcommand (sbctl --json status and
// sbctl status --json are the same).
struct GlobalOptions {
  std::string controlplane;  // host:port
  absl::Duration timeout = absl::Seconds(5);
  bool json = false;  // --json: the shapes documented in docs/api.md.
};

struct StatusOptions {
  std::string pool;  // Empty = every pool.
  bool json = false;
};
int RunStatus(const GlobalOptions& global, const StatusOptions& options, std::ostream& out, std::ostream& err);

struct WatchOptions {
  std::string pool;  // Empty = every pool.
  bool json = false;
  int count = 0;  // Exit after this many assignments; 0 = until interrupted.
};
int RunWatch(const GlobalOptions& global, const WatchOptions& options, std::ostream& out, std::ostream& err);

// drain: stop routing to every endpoint of a node (kept until undrain).
int RunDrain(const GlobalOptions& global, const std::string& node_id, bool drain, std::ostream& out, std::ostream& err);

// explain: the arithmetic behind weights, circuits and the replica count; with
// `picks` > 0, instead the pool's last `picks` picks as switchboard-picker scored them.
int RunExplain(const GlobalOptions& global, const std::string& pool, const std::string& endpoint, std::ostream& out,
               std::ostream& err, int picks = 0);
// scale: a manual replica count for `ttl` (replicas < 0 clears it). `force` allows a
// count below the pool's min_replicas. Returns 3 when the pool's configuration refuses
// the count (nothing changed), 1 on other errors.
inline constexpr int kExitRefused = 3;
int RunScale(const GlobalOptions& global, const std::string& pool, int replicas, absl::Duration ttl,
             const std::string& reason, bool force, std::ostream& out, std::ostream& err);

// events: the control plane's history, oldest first (optionally one pool's, only since
// a time); --follow keeps printing new ones as they are recorded.
struct EventsOptions {
  std::string pool;   // Empty = every pool.
  int limit = 50;     // Most events shown at first.
  std::string since;  // An age (1h) or RFC 3339 time; empty = any age.
  bool follow = false;
  int count = 0;  // With follow: exit after this many events; 0 = until interrupted.
};
int RunEvents(const GlobalOptions& global, const EventsOptions& options, std::ostream& out, std::ostream& err);

// history: a metric of a pool's endpoints (or one endpoint, NODE/ADDRESS, or a pool
// metric) over time: a table with a sparkline per series, or CSV, or JSON.
struct HistoryOptions {
  std::string target;  // POOL or NODE/ADDRESS.
  std::string metric = "weight";
  std::string since = "1h";
  std::string until;  // Empty = now.
  std::string step = "1m";
  bool csv = false;
};
int RunHistory(const GlobalOptions& global, const HistoryOptions& options, std::ostream& out, std::ostream& err);

// nodes: every node with its agent, connection, endpoints and GPUs.
int RunNodes(const GlobalOptions& global, std::ostream& out, std::ostream& err);
// pool: one pool in detail (endpoints, weights, circuits, slots, queue, latency).
int RunPool(const GlobalOptions& global, const std::string& pool, std::ostream& out, std::ostream& err);

// clients: the discovery clients connected now (ADS and native subscribers).
int RunClients(const GlobalOptions& global, bool json, std::ostream& out, std::ostream& err);

// limits: the global rate limits' usage per descriptor.
int RunLimits(const GlobalOptions& global, bool json, std::ostream& out, std::ostream& err);

struct PlanOptions {
  std::string model;      // Catalog name; empty for a custom model.
  double parameters = 0;  // Custom shape (overrides the catalog's when set).
  int layers = 0, kv_heads = 0, head_dim = 0;
  PlanRequest request;
  bool json = false;
};
// plan: memory needed to serve a model, and which GPUs fit it. Needs no control plane.
int RunPlan(const PlanOptions& options, std::ostream& out, std::ostream& err);

}  // namespace switchboard::cli

#endif  // SWITCHBOARD_CLI_COMMANDS_H_
