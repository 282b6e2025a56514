// Dashboard: the read-only fleet page on the metrics port, next to Prometheus' /metrics.
//
// prometheus-cpp's Exposer owns its civetweb server and exposes no way to add a handler,
// but it takes civetweb callbacks: its begin_request callback sees every request first.
// BeginRequest answers "/", "/ui", "/api/fleet" and "/api/history" and leaves the rest
// (/metrics) to the Exposer. One port, one server, nothing new to open or secure; the
// callback is a plain function, so it finds the dashboard by the port the request came
// in on (Register/Unregister).
//
//   GET /ui (or /)      one self-contained page (no CDN): it polls /api/fleet every
//                       second and draws the last hours from /api/history as SVG.
//   GET /api/fleet      {"pools": [...]} as sbctl status --json (docs/api.md).
//   GET /api/history?pool=P&metric=M&since_s=S&step_s=T
//                       the AdminService.History answer as JSON.
//
// Thread safety: requests run on civetweb's threads; the dashboard reads only
// thread-safe objects. History reads block that civetweb thread (never a gRPC reactor).
#ifndef SWITCHBOARD_CONTROLPLANE_DASHBOARD_DASHBOARD_H_
#define SWITCHBOARD_CONTROLPLANE_DASHBOARD_DASHBOARD_H_

#include <string>

#include "common/clock.h"
#include "controlplane/operations.h"
#include "controlplane/snapshot/snapshot_store.h"

struct mg_connection;

namespace switchboard::controlplane {

class Dashboard {
 public:
  // Pointers must outlive the dashboard's registration.
  Dashboard(const SnapshotStore* store, const FleetOperations* ops, const Clock* clock)
      : store_(store), ops_(ops), clock_(clock) {}

  // Serves requests arriving on `port` until Unregister(port).
  static void Register(int port, const Dashboard* dashboard);
  static void Unregister(int port);
  // For CivetCallbacks::begin_request: 1 when the request was answered here, 0 to let
  // the Exposer answer it.
  static int BeginRequest(mg_connection* conn);

  // The answers, for tests: status code and body.
  std::pair<int, std::string> FleetJson() const;
  std::pair<int, std::string> HistoryJson(const std::string& query_string) const;

 private:
  const SnapshotStore* const store_;
  const FleetOperations* const ops_;
  const Clock* const clock_;
};

// The page (dashboard_page.cc).
extern const char kDashboardPage[];

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_DASHBOARD_DASHBOARD_H_
