// ControlPlane: wires FleetState, the Reconciler, the history and the gRPC services
// into one running server. main.cc only parses flags and waits for a signal.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVER_H_
#define SWITCHBOARD_CONTROLPLANE_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/https.h"
#include "controlplane/fleet/validation.h"
#include "controlplane/history/history_store.h"
#include "controlplane/ratelimit/sliding_window.h"
#include "controlplane/reconciler.h"
#include "controlplane/scale/scale_exec.h"
#include "controlplane/service/limits.h"
#include "controlplane/xds/push_coalescer.h"
#include "grpcpp/security/server_credentials.h"

namespace switchboard::controlplane {

struct ControlPlaneOptions {
  std::string listen = "0.0.0.0:50051";         // gRPC, every service. Port 0 = pick one.
  std::string metrics_listen = "0.0.0.0:9464";  // Prometheus /metrics; empty = off.
  std::string db_path = "var/switchboard.db";   // SQLite history; empty = none.
  HistoryOptions history;                       // Queue and retention tiers.
  ReconcilerOptions reconciler;
  xds::PushCoalescing xds_push;                // Debounce of xDS pushes (--xds-quiet, --xds-max-delay).
  std::optional<ScaleExecOptions> scale_exec;  // --scale-exec; nullopt: none.
  const Clock* clock = SystemClock::Get();
  // Security (common/tls.h, common/auth.h). Null credentials: plaintext.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // The metrics port (/metrics, the dashboard) serves HTTPS only with this certificate
  // (--tls-cert/--tls-key); null: plain HTTP.
  std::shared_ptr<HttpsCertificate> https;
  // Default: plaintext and open, as before (main.cc sets these from the flags).
  AuthConfig auth = [] {
    AuthConfig open;
    open.open_admin_without_tokens = true;
    return open;
  }();
  // --admin-tokens (common/token_file.h); empty: none. Read at the start (a bad file fails
  // it) and again every `admin_tokens_reload_interval`, so a revoked token is refused
  // without a restart.
  std::string admin_tokens_path;
  absl::Duration admin_tokens_reload_interval = absl::Seconds(10);
  bool agent_certificates_required = false;  // --client-ca: agents' certificates must name their node.
  ServiceLimits limits;                      // Streams, subscribers, report rate, message size.
  ValidationLimits validation;               // Endpoints per node, nodes, pools, field sizes.
  ratelimit::RateLimitConfig rate_limits;    // `rate_limits:` of --config; no rules: nothing limited.
};

// Both parts of one configuration file, read before either is applied.
struct ReloadedConfig {
  policy::FleetConfig fleet;
  ratelimit::RateLimitConfig rate_limits;
};

class ControlPlane {
 public:
  static absl::StatusOr<std::unique_ptr<ControlPlane>> Start(const ControlPlaneOptions& options);
  ~ControlPlane();

  int grpc_port() const;
  int metrics_port() const;  // 0 when metrics are off.
  // Applies a newly read configuration file, its pools and its `rate_limits:` block
  // together (SIGHUP), keeping the rate limit counts, without dropping any stream; or, when
  // reading either part failed, keeps both running ones. Either way one event
  // (config_changed / config_reload_failed, with the error) and one metric record it.
  void ReloadConfig(absl::StatusOr<ReloadedConfig> config);
  // Stops accepting, ends open streams, drains the history queue. Idempotent.
  void Shutdown();

 private:
  struct Impl;
  explicit ControlPlane(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVER_H_
