// switchboard-controlplane: computes weights and circuit states for every endpoint of
// the fleet and pushes versioned assignments to subscribers.
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <tuple>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/cli_parse.h"
#include "common/log.h"
#include "common/net.h"
#include "common/protobuf_log.h"
#include "common/tls.h"
#include "controlplane/config/pool_config.h"
#include "controlplane/ratelimit/config.h"
#include "controlplane/server.h"

namespace {

bool ParseDurationFlag(const std::string& text, absl::Duration* out, const char* flag) {
  if (!absl::ParseDuration(text, out) || *out <= absl::ZeroDuration()) {
    std::cerr << "switchboard-controlplane: " << flag << ": '" << text
              << "' is not a positive duration (examples: 500ms, 5s, 2m)\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Block the stop and reload signals first, so that every thread inherits the mask and
  // only the sigwait at the end of main takes them. gRPC starts threads of its own as
  // soon as credentials are made (below); one started before the mask would take a
  // SIGHUP sent while main is not waiting (during a reload), and SIGHUP's default
  // action ends the process.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  switchboard::SetLogProgramName("controlplane");
  // Protobuf logs an error of its own per malformed agent message: one line per 10 s.
  switchboard::RouteProtobufLogs(absl::Seconds(10));
#ifdef NDEBUG
  // Debian's Abseil runs its deadlock detector on every lock unless told not to, which
  // costs every lock a graph update; keep it on in debug and sanitizer builds.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif

  switchboard::controlplane::ControlPlaneOptions options;
  std::string staleness = "5s", forget_after = "5m", config_path;
  std::string scale_exec, scale_exec_timeout = "30s";
  switchboard::TlsFlags tls;
  std::string admin_tokens, subscriber_auth = "none";
  CLI::App app{
      "switchboard-controlplane: the Switchboard control plane.\n"
      "Agents stream endpoint state to it; it computes a weight and circuit state per\n"
      "endpoint and pushes versioned assignments per model pool to subscribers."};
  app.add_option("--listen", options.listen, "gRPC address for every service (port 0 picks a free port)")
      ->capture_default_str();
  app.add_option("--metrics-listen", options.metrics_listen,
                 "Prometheus /metrics and dashboard address (HTTPS with --tls-cert); empty disables it")
      ->capture_default_str();
  app.add_option("--db", options.db_path, "SQLite history file (created if missing); empty disables history")
      ->capture_default_str();
  CLI::Option* staleness_flag =
      app.add_option("--staleness-bound", staleness,
                     "exclude a node's endpoints when it has not reported for this long; only without "
                     "--config (with a file, set staleness_bound in it)")
          ->capture_default_str();
  app.add_option("--forget-after", forget_after,
                 "forget a disconnected node (its endpoints leave their pools) after this long")
      ->capture_default_str();
  app.add_option("--config", config_path,
                 "YAML pool configuration (LB policy, circuits, autoscaling, rate_limits); reloaded on SIGHUP. "
                 "See docs/configuration.md");
  std::string reconcile_coalesce = "50ms", reconcile_tick = "250ms";
  app.add_option("--reconcile-coalesce", reconcile_coalesce,
                 "after a report changes the fleet, wait this long for more before deciding again (a burst of "
                 "reports costs one pass; 0s: decide at once)")
      ->capture_default_str();
  app.add_option("--reconcile-tick", reconcile_tick,
                 "decide again at least this often without any report (staleness needs time to pass)")
      ->capture_default_str();
  app.add_option(
         "--reconcile-max-duty", options.reconciler.max_duty,
         "the largest share of time the reconciler spends in passes while reports keep changing the "
         "fleet: after a pass that took T of CPU, the next waits at least T x (1 - share) / share, if that is longer "
         "than --reconcile-coalesce (a big fleet decides a little less often rather than starve ingest and "
         "pushes); 1: no bound")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  std::string xds_quiet = "10ms", xds_max_delay = "100ms";
  app.add_option("--xds-quiet", xds_quiet, "xDS pushes wait until changes have been quiet this long (0s: push at once)")
      ->capture_default_str();
  app.add_option("--xds-max-delay", xds_max_delay,
                 "but an xDS push waits at most this long after the first change of a burst")
      ->capture_default_str();
  app.add_option("--xds-push-threads", options.xds_push.push_threads,
                 "threads that start the writes of one xDS push (gRPC writes on the thread that starts them)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--scale-exec", scale_exec,
                 "run this command on every change of a pool's desired replicas, e.g. "
                 "'kubectl scale deployment/{pool} --replicas={replicas}' (not through a shell; also "
                 "SWITCHBOARD_POOL and SWITCHBOARD_REPLICAS in its environment); never concurrently for one pool");
  app.add_option("--scale-exec-timeout", scale_exec_timeout, "kill a --scale-exec run after this long")
      ->capture_default_str();
  // History retention tiers (docs/operations.md#history).
  std::string history_retention = switchboard::controlplane::FormatRetentionTiers({});
  app.add_option("--history-retention", history_retention,
                 "how long samples are kept: every report, per minute, per hour (e.g. 1h,7d,90d)");
  // Security (docs/security.md).
  switchboard::AddServerTlsFlags(app, &tls);
  app.add_option("--admin-tokens", admin_tokens,
                 "YAML list of {name, role: read|admin, sha256: HEX} bearer tokens for the admin API "
                 "(without it the admin API is open only with --insecure); re-read every --tls-reload-interval");
  app.add_option("--subscriber-auth", subscriber_auth,
                 "what subscribers (native, xDS, picker, KEDA, Envoy's rate limit calls) must present: none | cert | "
                 "token | cert-or-token (KEDA can present only a certificate; with rate_limits rules use cert)")
      ->capture_default_str();
  // Limits (docs/security.md): beyond them, RESOURCE_EXHAUSTED and a metric.
  auto& limits = options.limits;
  app.add_option("--max-message-size", limits.max_message_bytes, "largest gRPC message accepted, bytes")
      ->check(CLI::Range(4096, 64 << 20))
      ->capture_default_str();
  app.add_option("--max-streams-per-peer", limits.max_streams_per_peer,
                 "open agent, discovery and xDS streams one IP address may keep")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-subscribers", limits.max_subscribers, "discovery and xDS streams served at once")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app.add_option("--max-report-rate", limits.max_reports_per_second,
                 "reports per second one node may send, sustained (bursts of twice as many)")
      ->check(CLI::Range(0.1, 1e6))
      ->capture_default_str();
  app.add_option("--max-endpoints-per-node", options.validation.max_endpoints, "endpoints one agent may declare")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--max-nodes", options.validation.max_nodes, "nodes known at once")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  app.add_option("--max-pools", options.validation.max_pools, "pools (models) the agents may declare in all")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  SB_CLI_PARSE(app, argc, argv);
  limits.report_burst = 2 * limits.max_reports_per_second;
  if (auto tiers = switchboard::controlplane::ParseRetentionTiers(history_retention); tiers.ok()) {
    options.history.retention = *tiers;
  } else {
    std::cerr << "switchboard-controlplane: --history-retention: " << tiers.status().message() << "\n";
    return 2;
  }

  // With a file, the file alone sets every pool's policy, at start and on each SIGHUP. A
  // flag that the file would silently override (or that would silently override the
  // file) is refused rather than guessed at.
  if (!config_path.empty() && staleness_flag->count() > 0) {
    std::cerr << "switchboard-controlplane: --staleness-bound cannot be combined with --config: set "
                 "staleness_bound under defaults: (or under a pool) in "
              << config_path << " instead\n";
    return 2;
  }
  if (!ParseDurationFlag(staleness, &options.reconciler.config.defaults.policy.circuit.staleness_bound,
                         "--staleness-bound") ||
      !ParseDurationFlag(forget_after, &options.reconciler.forget_after, "--forget-after")) {
    return 2;
  }
  for (const auto& [text, out, flag] :
       {std::tuple<const std::string&, absl::Duration*, const char*>{xds_quiet, &options.xds_push.quiet, "--xds-quiet"},
        {xds_max_delay, &options.xds_push.max_delay, "--xds-max-delay"},
        {reconcile_coalesce, &options.reconciler.coalesce, "--reconcile-coalesce"},
        {reconcile_tick, &options.reconciler.tick, "--reconcile-tick"}}) {
    if (!absl::ParseDuration(text, out) || *out < absl::ZeroDuration()) {
      std::cerr << "switchboard-controlplane: " << flag << ": '" << text
                << "' is not a duration of 0s or more (examples: 0s, 10ms, 1s)\n";
      return 2;
    }
  }
  if (options.reconciler.tick <= absl::ZeroDuration()) {
    std::cerr << "switchboard-controlplane: --reconcile-tick must be longer than 0s\n";
    return 2;
  }
  if (options.xds_push.max_delay < options.xds_push.quiet) {
    std::cerr << "switchboard-controlplane: --xds-max-delay (" << xds_max_delay << ") is shorter than --xds-quiet ("
              << xds_quiet << ")\n";
    return 2;
  }
  if (!scale_exec.empty()) {
    switchboard::controlplane::ScaleExecOptions exec;
    exec.command = scale_exec;
    if (!ParseDurationFlag(scale_exec_timeout, &exec.timeout, "--scale-exec-timeout")) return 2;
    if (auto words = switchboard::controlplane::SplitCommand(scale_exec); !words.ok()) {
      std::cerr << "switchboard-controlplane: --scale-exec: " << words.status().message() << "\n";
      return 2;
    }
    options.scale_exec = std::move(exec);
  }
  {
    auto credentials = switchboard::MakeServerCredentials(tls);
    auto sub_auth = switchboard::ParseSubscriberAuth(subscriber_auth);
    if (!credentials.ok() || !sub_auth.ok()) {
      std::cerr << "switchboard-controlplane: "
                << (!credentials.ok() ? credentials.status() : sub_auth.status()).message() << "\n";
      return 2;
    }
    options.credentials = *credentials;
    if (!tls.tls_cert.empty()) {  // The metrics port (and dashboard) serves HTTPS with the same certificate.
      auto reload = switchboard::ReloadIntervalSeconds(tls);
      auto https = reload.ok() ? switchboard::HttpsCertificate::Load(tls.tls_cert, tls.tls_key, absl::Seconds(*reload))
                               : absl::StatusOr<std::shared_ptr<switchboard::HttpsCertificate>>(reload.status());
      if (!https.ok()) {
        std::cerr << "switchboard-controlplane: " << https.status().message() << "\n";
        return 2;
      }
      options.https = *https;
    }
    options.auth.subscriber_auth = *sub_auth;
    options.auth.open_admin_without_tokens = tls.insecure;
    options.agent_certificates_required = !tls.client_ca.empty();
    if (!admin_tokens.empty()) {
      // Checked here for the usage exit code; the control plane reads it again and follows it.
      auto tokens = switchboard::TokenTable::Load(admin_tokens);
      auto reload = switchboard::ReloadIntervalSeconds(tls);
      if (!tokens.ok() || !reload.ok()) {
        std::cerr << "switchboard-controlplane: " << (!tokens.ok() ? tokens.status() : reload.status()).message()
                  << "\n";
        return 2;
      }
      options.admin_tokens_path = admin_tokens;
      options.admin_tokens_reload_interval = absl::Seconds(*reload);
      options.auth.tokens_configured = true;
    } else if (tls.insecure) {
      SB_LOG(WARNING) << "no --admin-tokens: anyone who reaches the gRPC port may drain nodes and scale pools";
    }
  }
  // Without a file, the flag sets the built-in defaults' staleness bound.
  const absl::Duration staleness_bound = options.reconciler.config.defaults.policy.circuit.staleness_bound;
  auto load_config = [&]() -> absl::StatusOr<switchboard::controlplane::policy::FleetConfig> {
    if (config_path.empty()) {
      auto c = switchboard::controlplane::policy::DefaultFleetConfig();
      c.defaults.policy.circuit.staleness_bound = staleness_bound;
      return c;
    }
    return switchboard::controlplane::LoadFleetConfig(config_path);
  };
  {
    auto config = load_config();
    if (!config.ok()) {
      std::cerr << "switchboard-controlplane: " << config.status().message() << "\n";
      return 2;
    }
    options.reconciler.config = std::move(*config);
  }
  // The same file's `rate_limits:` block, read on its own (controlplane/ratelimit/config.h).
  auto load_rate_limits = [&]() -> absl::StatusOr<switchboard::controlplane::ratelimit::RateLimitConfig> {
    if (config_path.empty()) return switchboard::controlplane::ratelimit::RateLimitConfig{};
    return switchboard::controlplane::ratelimit::LoadRateLimitConfig(config_path);
  };
  {
    auto rate_limits = load_rate_limits();
    if (!rate_limits.ok()) {
      std::cerr << "switchboard-controlplane: " << rate_limits.status().message() << "\n";
      return 2;
    }
    options.rate_limits = std::move(*rate_limits);
  }
  if (!options.rate_limits.rules.empty() && options.auth.subscriber_auth == switchboard::SubscriberAuth::kNone) {
    SB_LOG(WARNING) << "rate_limits has rules and --subscriber-auth is none: anyone who reaches the gRPC port can "
                       "spend a tenant's quota or fill max_descriptors; use --subscriber-auth cert";
  }

  auto cp = switchboard::controlplane::ControlPlane::Start(options);
  if (!cp.ok()) {
    std::cerr << "switchboard-controlplane: " << cp.status().message() << "\n";
    return 1;
  }
  // Machine-readable lines (tests and scripts read the real ports from them).
  std::printf("grpc listening on port %d\n", (*cp)->grpc_port());
  if ((*cp)->metrics_port() != 0) std::printf("metrics listening on port %d\n", (*cp)->metrics_port());
  std::fflush(stdout);

  int sig = 0;
  while (sigwait(&stop_signals, &sig) == 0 && sig == SIGHUP) {
    // Both parts are read before either applies: a broken file changes nothing, and says so.
    auto reloaded = [&]() -> absl::StatusOr<switchboard::controlplane::ReloadedConfig> {
      auto config = load_config();
      if (!config.ok()) return config.status();
      auto rate_limits = load_rate_limits();
      if (!rate_limits.ok()) return rate_limits.status();
      return switchboard::controlplane::ReloadedConfig{*std::move(config), *std::move(rate_limits)};
    };
    (*cp)->ReloadConfig(reloaded());
  }
  SB_LOG(INFO) << "received signal " << sig << ", shutting down";
  (*cp)->Shutdown();
  return 0;
}
