// Pure planning for switchboard-sync: an Assignment becomes the state a proxy should
// have, and the difference from what the proxy has becomes HAProxy runtime commands or
// an nginx upstream file. No I/O here (haproxy_socket.h and nginx_writer.h do that), so
// every mapping rule has a table test (plan_test.cc).
#ifndef SWITCHBOARD_SYNC_PLAN_H_
#define SWITCHBOARD_SYNC_PLAN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "switchboard/v1/discovery.pb.h"

namespace switchboard::sync {

// ---------------------------------------------------------------- both

// `now` plus the endpoints of `before` that `now` lacks, as they were in `before`. Used
// for a while after the stream to the control plane reconnects: a restarted control
// plane first knows only the agents that have reported again, and a proxy should not
// drop the others meanwhile.
v1::Assignment CarryOver(const v1::Assignment& now, const v1::Assignment& before);

// ---------------------------------------------------------------- HAProxy

enum class AdminState { kReady, kDrain, kMaint };
const char* AdminStateName(AdminState s);  // "ready", "drain", "maint": HAProxy's words.

// One server of a backend, as HAProxy should have it or as `show servers state` says.
struct ProxyServer {
  std::string name;
  std::string host;  // An IP address (HAProxy's runtime API takes no names without resolvers).
  int port = 0;
  int weight = 0;  // 0..256. In a desired server, -1 = leave as is (drained or in maintenance).
  AdminState state = AdminState::kMaint;
};

enum class HaproxyMode {
  kDynamic,   // Servers are added and deleted (`add server` / `del server`).
  kTemplate,  // Servers declared in the configuration (`server-template`) are filled in.
};

struct HaproxyOptions {
  std::string backend;
  HaproxyMode mode = HaproxyMode::kDynamic;
  // Dynamic mode: the servers switchboard-sync owns are those whose name starts with this
  // prefix; other servers of the backend are left alone.
  std::string name_prefix = "sb-";
  // Dynamic mode: add servers with health checks (`check`, then `enable health`).
  bool check = false;
  // Dynamic mode: more `add server` keywords, e.g. "inter 2s fall 2 rise 1".
  std::string server_options;
  // HAProxy weight of a HALF_OPEN endpoint: enough requests to prove itself.
  int half_open_weight = 1;
};

// Switchboard weights (1..128) doubled: HAProxy's 0..256 range, the ratios kept exactly.
int HaproxyWeight(uint32_t switchboard_weight);

// The server name an endpoint gets in dynamic mode: prefix + address with ':' as '_'.
std::string HaproxyServerName(absl::string_view prefix, absl::string_view address);

// What the backend should hold for `a` (in the assignment's order). Rules:
//   DRAINING                         -> drain (weight left as is)
//   circuit OPEN, or weight 0        -> maint
//   circuit HALF_OPEN                -> ready, weight min(half_open_weight, mapped)
//   otherwise (READY, CLOSED)        -> ready, weight HaproxyWeight(weight)
// An endpoint whose address is not IP:port is an error naming it.
absl::StatusOr<std::vector<ProxyServer>> DesiredServers(const v1::Assignment& a, const HaproxyOptions& options);

// Parses `show servers state BACKEND` (format version 1), keeping the servers of
// `backend`, in the order HAProxy lists them.
absl::StatusOr<std::vector<ProxyServer>> ParseServersState(absl::string_view text, absl::string_view backend);

struct HaproxyPlan {
  std::vector<std::string> commands;  // In order; each one line of the runtime API.
  int added = 0, removed = 0, weight_changes = 0, state_changes = 0, address_changes = 0;
  // Template mode: endpoints that found no free slot.
  std::vector<std::string> unplaced;
  bool empty() const { return commands.empty(); }
};

// The commands that turn `current` into `desired`. Dynamic mode adds missing servers
// (they start in maintenance: the plan sets their weight and state), changes weights and
// states, and puts owned servers not in `desired` into maintenance, then deletes them
// (HAProxy refuses while connections remain; the next round retries). Template mode keeps
// each endpoint in the slot that already has its address, fills free slots
// (`set server addr`) and puts unused slots into maintenance.
HaproxyPlan PlanHaproxy(const std::vector<ProxyServer>& current, const std::vector<ProxyServer>& desired,
                        const HaproxyOptions& options);

// True when HAProxy's answer to a runtime command reports success.
bool HaproxyCommandSucceeded(absl::string_view output);

// ---------------------------------------------------------------- nginx

enum class DrainingAs { kDown, kOmit };

struct NginxPool {
  v1::Assignment assignment;
  std::string upstream;  // Name of the upstream block.
  // Endpoints of this pool added as `backup` servers (--backup-pool), or none.
  std::optional<v1::Assignment> backup;
};

struct NginxOptions {
  DrainingAs draining = DrainingAs::kDown;
  int keepalive = 0;  // `keepalive N;` in each upstream when > 0.
};

// "switchboard_" + pool, characters nginx does not take in a name replaced by '_'.
std::string NginxUpstreamName(absl::string_view pool);

// The nginx balancing directive for a pool policy ("" = nginx's weighted round robin).
std::string NginxBalancing(v1::LbPolicy policy);

// The include file: an upstream block per pool. Server lines carry Switchboard's integer
// weight (1..128); OPEN circuits and excluded endpoints are `down`; DRAINING ones are
// `down` or left out; HALF_OPEN ones get weight 1. Only what nginx uses is rendered (no
// version, no timestamps), so assignments that differ in nothing nginx uses render the
// same file and cause no reload. A pool with no server gets a `down` placeholder, as nginx
// refuses an empty upstream.
std::string RenderNginx(const std::vector<NginxPool>& pools, const NginxOptions& options);

}  // namespace switchboard::sync

#endif  // SWITCHBOARD_SYNC_PLAN_H_
