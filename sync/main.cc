// switchboard-sync: keeps a proxy people already run (HAProxy, nginx) in line with
// Switchboard's assignments. See docs/operations.md, "Behind HAProxy" and "Behind nginx".
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/subscription.h"
#include "common/cli_parse.h"
#include "common/host_port.h"
#include "common/https.h"
#include "common/log.h"
#include "common/metrics_listen.h"
#include "common/mutex.h"
#include "common/net.h"
#include "common/tls.h"
#include "sync/haproxy_sync.h"
#include "sync/metrics.h"
#include "sync/nginx_sync.h"

namespace {

int UsageError(const std::string& message) {
  std::cerr << "switchboard-sync: " << message << " (see --help)\n";
  return switchboard::kUsageExitCode;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace switchboard;
  using namespace switchboard::sync;
  SetLogProgramName("sync");
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const char* env = std::getenv("SWITCHBOARD_ADDR");
  std::string controlplane = env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
  std::string timeout_text = "30s", resync_text = "5s", grace_text = "10s";
  bool once = false, dry_run = false;
  TlsFlags tls;
  std::string metrics_listen;

  CLI::App app{
      "switchboard-sync: keeps HAProxy (runtime API, no reload) or nginx (rendered upstream\n"
      "file, checked and reloaded) in line with the pools' assignments from the Switchboard\n"
      "control plane. Runs until stopped; reconnects when the control plane or the proxy\n"
      "restarts. Exit codes: 0 done (--once), 1 failed, 2 usage error."};
  app.footer(
      "\nExamples:\n"
      "  switchboard-sync --controlplane cp:50051 haproxy --socket /run/haproxy/admin.sock \\\n"
      "      --backend llama --pool llama-3-8b\n"
      "  switchboard-sync --controlplane cp:50051 nginx --pool llama-3-8b \\\n"
      "      --out /etc/nginx/conf.d/switchboard-llama-3-8b.conf --reload-cmd 'nginx -s reload'\n"
      "  switchboard-sync --once --dry-run nginx --pool llama-3-8b --out /tmp/x.conf   (print, change nothing)\n"
      "\n"
      "Options go before or after the proxy's name. Every change is printed on stdout, a line\n"
      "each. Configuration snippets: docs/operations.md, \"Behind HAProxy\" and \"Behind nginx\".\n"
      "Run 'switchboard-sync haproxy --help' or 'switchboard-sync nginx --help' for their options.");
  app.fallthrough();
  app.require_subcommand(1);
  app.add_option("--controlplane", controlplane, "control plane HOST:PORT (env SWITCHBOARD_ADDR)")
      ->capture_default_str();
  AddClientTlsFlags(app, &tls);
  std::string token_file;
  app.add_option("--token-file", token_file,
                 "bearer token for a control plane with --subscriber-auth token (default: $SWITCHBOARD_TOKEN)");
  app.add_flag("--once", once, "apply the current assignment of every pool, then exit (0 when applied)");
  app.add_flag("--dry-run", dry_run, "print what would change (commands, file) and change nothing");
  app.add_option("--timeout", timeout_text, "with --once: give up (exit 1) after this long")->capture_default_str();
  app.add_option("--resync-interval", resync_text,
                 "re-read the proxy and repair drift this often (re-applies everything after a proxy "
                 "restart; sends a rate-limited nginx change)")
      ->capture_default_str();

  app.add_option("--metrics-listen", metrics_listen,
                 "serve Prometheus /metrics here, e.g. 127.0.0.1:9469 (off when empty; port 0 picks one): "
                 "HTTPS with --tls-cert/--tls-key (and, with --client-ca, only to clients with a certificate "
                 "from it); plain HTTP only with --insecure");
  // The metrics listener's certificate (reloaded when its files change) and client CA.
  AddServerTlsFlags(app, &tls);
  app.get_option("--client-ca")
      ->description("PEM CA bundle: --metrics-listen serves only clients with a certificate from it");
  app.add_option("--reconnect-grace", grace_text,
                 "after the stream to the control plane reconnects, keep endpoints its assignments "
                 "lack for this long (a restarted control plane knows only the agents that have "
                 "reported again); 0s: none")
      ->capture_default_str();

  HaproxyOptions hx;
  std::string socket_path, hx_pool, mode = "dynamic";
  CLI::App* haproxy =
      app.add_subcommand("haproxy", "drive an HAProxy backend through its runtime API (admin socket); no reload");
  haproxy->add_option("--socket", socket_path, "HAProxy admin socket (stats socket ... level admin)")->required();
  haproxy->add_option("--backend", hx.backend, "backend to fill")->required();
  haproxy->add_option("--pool", hx_pool, "Switchboard pool whose endpoints fill the backend")->required();
  haproxy
      ->add_option("--mode", mode,
                   "dynamic: add and delete servers (backend with a dynamic balance algorithm); "
                   "template: fill the servers declared by server-template")
      ->check(CLI::IsMember({"dynamic", "template"}))
      ->capture_default_str();
  haproxy
      ->add_option("--name-prefix", hx.name_prefix,
                   "dynamic mode: name prefix of the servers switchboard-sync owns (others are left alone)")
      ->capture_default_str();
  haproxy->add_flag("--check", hx.check, "dynamic mode: add servers with health checks and enable them");
  haproxy->add_option("--server-options", hx.server_options,
                      "dynamic mode: more 'add server' keywords, e.g. \"inter 2s fall 2\"");
  haproxy
      ->add_option("--half-open-weight", hx.half_open_weight,
                   "HAProxy weight of an endpoint whose circuit is half-open")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();

  NginxSyncOptions nx;
  std::string draining = "down";
  nx.check_command = "nginx -t";
  nx.reload_command = "nginx -s reload";
  CLI::App* nginx = app.add_subcommand("nginx", "render an nginx upstream file, check it and reload nginx");
  nginx->add_option("--out", nx.out, "include file to write, e.g. /etc/nginx/conf.d/switchboard-POOL.conf")->required();
  nginx->add_option("--pool", nx.pools, "pool to render as an upstream block (repeatable)")->required();
  nginx->add_option("--upstream", nx.upstream, "with one --pool: the upstream's name (default switchboard_POOL)");
  nginx->add_option("--backup-pool", nx.backup_pool, "with one --pool: add this pool's endpoints as backup servers");
  nginx->add_option("--check-cmd", nx.check_command, "checks the configuration with the new file (sh -c)")
      ->capture_default_str();
  nginx->add_option("--reload-cmd", nx.reload_command, "reloads nginx (sh -c)")->capture_default_str();
  nginx
      ->add_option("--max-reloads-per-minute", nx.max_reloads_per_minute,
                   "a change beyond this waits (each reload starts new workers)")
      ->check(CLI::Range(1, 600))
      ->capture_default_str();
  nginx->add_option("--draining", draining, "DRAINING endpoints: down (listed as down) | omit (left out)")
      ->check(CLI::IsMember({"down", "omit"}))
      ->capture_default_str();
  nginx->add_option("--keepalive", nx.render.keepalive, "idle upstream connections kept per worker (0: off)")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  SB_CLI_PARSE(app, argc, argv);

  absl::Duration timeout, resync;
  if (!absl::ParseDuration(timeout_text, &timeout) || timeout <= absl::ZeroDuration()) {
    return UsageError("--timeout '" + timeout_text + "': want a positive duration such as 30s");
  }
  if (!absl::ParseDuration(resync_text, &resync) || resync <= absl::ZeroDuration()) {
    return UsageError("--resync-interval '" + resync_text + "': want a positive duration such as 5s");
  }
  absl::Duration grace;
  if (!absl::ParseDuration(grace_text, &grace) || grace < absl::ZeroDuration()) {
    return UsageError("--reconnect-grace '" + grace_text + "': want a duration such as 10s (0s: none)");
  }
  if (auto hp = ParseHostPort(controlplane); !hp.ok() || hp->port == 0) {
    return UsageError("--controlplane '" + controlplane + "': want HOST:PORT");
  }
  std::vector<std::string> pools;
  if (*haproxy) {
    hx.mode = mode == "template" ? HaproxyMode::kTemplate : HaproxyMode::kDynamic;
    if (hx.mode == HaproxyMode::kTemplate && (hx.check || !hx.server_options.empty())) {
      return UsageError(
          "--check and --server-options apply to --mode dynamic; in template mode "
          "the server-template line sets them");
    }
    if (hx.mode == HaproxyMode::kDynamic && hx.name_prefix.empty()) {
      return UsageError("--name-prefix must not be empty: it marks the servers switchboard-sync may delete");
    }
    pools = {hx_pool};
  } else {
    if (nx.pools.size() > 1 && (!nx.upstream.empty() || !nx.backup_pool.empty())) {
      return UsageError("--upstream and --backup-pool apply to a single --pool");
    }
    if (std::set<std::string>(nx.pools.begin(), nx.pools.end()).size() != nx.pools.size() ||
        std::count(nx.pools.begin(), nx.pools.end(), nx.backup_pool) > 0) {
      return UsageError("each pool may appear once (in --pool or --backup-pool)");
    }
    if (nx.reload_command.empty()) return UsageError("--reload-cmd must not be empty");
    nx.render.draining = draining == "omit" ? DrainingAs::kOmit : DrainingAs::kDown;
    nx.dry_run = dry_run;
    pools = nx.pools;
    if (!nx.backup_pool.empty()) pools.push_back(nx.backup_pool);
  }
  {
    absl::StatusOr<std::string> token = ReadBearerToken(token_file);
    absl::Status s = token.ok() ? ConfigureClientChannels(tls, *token) : token.status();
    if (!s.ok()) return UsageError(std::string(s.message()));
  }

  // One applier at a time: the stream's handler and the resync thread share it.
  Mutex mu;
  std::unique_ptr<HaproxySync> hx_sync;
  std::unique_ptr<NginxSync> nx_sync;
  if (*haproxy) {
    hx_sync = std::make_unique<HaproxySync>(socket_path, hx, dry_run, std::cout);
  } else {
    nx_sync = std::make_unique<NginxSync>(nx, std::cout);
  }
  const bool server_tls = !tls.tls_cert.empty() || !tls.tls_key.empty() || !tls.client_ca.empty();
  if (server_tls && tls.insecure) {
    return UsageError("--insecure cannot be combined with --tls-cert, --tls-key or --client-ca");
  }
  if (server_tls && metrics_listen.empty()) {
    return UsageError("--tls-cert, --tls-key and --client-ca are for --metrics-listen: give it too");
  }
  std::shared_ptr<HttpsCertificate> https;
  if (!metrics_listen.empty() && !tls.insecure) {
    if (tls.tls_cert.empty() || tls.tls_key.empty()) {
      return UsageError("--metrics-listen serves HTTPS: give --tls-cert and --tls-key (or --insecure for plain HTTP)");
    }
    absl::StatusOr<unsigned> reload = ReloadIntervalSeconds(tls);
    absl::StatusOr<std::shared_ptr<HttpsCertificate>> loaded =
        reload.ok() ? HttpsCertificate::Load(tls.tls_cert, tls.tls_key, absl::Seconds(*reload))
                    : absl::StatusOr<std::shared_ptr<HttpsCertificate>>(reload.status());
    if (!loaded.ok()) return UsageError(std::string(loaded.status().message()));
    https = *loaded;
  }
  std::unique_ptr<SyncMetrics> metrics = MakeSyncMetrics();
  auto exposer = ServeMetrics(metrics_listen, metrics->registry, https, tls.client_ca);
  if (!exposer.ok()) {
    std::cerr << "switchboard-sync: --metrics-listen " << metrics_listen << ": " << exposer.status().message() << "\n";
    return 1;
  }
  auto export_counters = [&] { metrics->Export(hx_sync ? hx_sync->counters() : nx_sync->counters(), !hx_sync); };

  std::map<std::string, v1::Assignment> latest;    // As the control plane sent them.
  std::map<std::string, v1::Assignment> in_proxy;  // What was last applied, per pool.
  std::map<std::string, v1::Assignment> carried;   // in_proxy when the stream reconnected.
  absl::Time grace_until = absl::InfinitePast();
  bool carrying = false;
  int streams = 0;
  std::set<std::string> applied;  // Pools whose current assignment is in the proxy (--once).
  bool failed_once = false;
  std::string last_error;

  // What to apply for `pool`: the control plane's assignment, plus, during the grace
  // after a reconnect, the endpoints it does not list yet.
  auto effective = [&](const std::string& pool) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = carried.find(pool);
    if (!carrying || it == carried.end()) return latest[pool];
    return CarryOver(latest[pool], it->second);
  };
  auto apply_pool = [&](const std::string& pool) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const v1::Assignment a = effective(pool);
    absl::Status s = hx_sync ? hx_sync->Apply(a) : nx_sync->Apply(a);
    if (s.ok()) in_proxy[pool] = a;
    export_counters();
    return s;
  };
  auto on_stream = [&] {
    MutexLock lock(&mu);
    metrics->streams->Increment();
    if (++streams == 1 || grace <= absl::ZeroDuration()) return;
    carried = in_proxy;
    carrying = true;
    grace_until = absl::Now() + grace;
    std::cout << "reconnected: endpoints the control plane does not list yet are kept for "
              << absl::FormatDuration(grace) << std::endl;
  };

  auto apply = [&](const v1::Assignment& a) -> absl::Status {
    MutexLock lock(&mu);
    latest[a.pool()] = a;
    absl::Status s = apply_pool(a.pool());
    (s.ok() ? metrics->applied : metrics->refused)->Increment();
    if (s.ok()) {
      if (nx_sync == nullptr || nx_sync->Complete()) {
        applied.insert(a.pool());
        if (nx_sync != nullptr) applied.insert(pools.begin(), pools.end());
      }
    } else {
      std::cout << "pool " << a.pool() << " version " << a.version() << " not applied: " << s.message() << std::endl;
      last_error = std::string(s.message());
      if (once) failed_once = true;
    }
    return s;
  };

  std::cout << "switchboard-sync: following pool" << (pools.size() > 1 ? "s " : " ") << absl::StrJoin(pools, ", ")
            << " from " << controlplane << (dry_run ? " (dry run: changing nothing)" : "") << std::endl;
  // A new channel per attempt: a shared one that failed keeps answering with its cached
  // error for seconds after the control plane is back.
  client::Subscription subscription([&controlplane] { return MakeDedicatedChannel(controlplane); }, controlplane, pools,
                                    absl::StrCat("switchboard-sync-", getpid()), apply, on_stream, std::cout);

  std::atomic<bool> stop{false};
  std::thread signals([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (stop.exchange(true)) return;
    subscription.Stop();
    MutexLock lock(&mu);  // Wakes the waits below.
  });

  std::thread resync_thread;
  if (!once) {
    resync_thread = std::thread([&] {
      MutexLock lock(&mu);
      while (true) {
        auto stopping = [&stop] { return stop.load(); };
        mu.AwaitWithTimeout(Condition(&stopping), resync);
        if (stop.load()) return;
        const bool grace_over = carrying && absl::Now() >= grace_until;
        if (grace_over) {
          carrying = false;
          carried.clear();
          std::cout << "reconnect grace over: applying the control plane's assignments as they are" << std::endl;
        }
        if (hx_sync || grace_over) {
          std::vector<std::string> names;
          for (const auto& [pool, a] : latest) names.push_back(pool);
          for (const std::string& pool : names) (void)apply_pool(pool);
        }
        if (nx_sync) (void)nx_sync->Tick();
        export_counters();
      }
    });
  }

  int code = 0;
  if (once) {
    std::thread runner([&] { subscription.Run(); });
    {
      MutexLock lock(&mu);
      auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        return stop.load() || failed_once || applied.size() >= pools.size();
      };
      const bool finished = mu.AwaitWithTimeout(Condition(&done), timeout);
      if (failed_once) {
        std::cerr << "switchboard-sync: not applied: " << last_error << "\n";
        code = 1;
      } else if (!finished || applied.size() < pools.size()) {
        std::cerr << "switchboard-sync: no assignment for every pool from " << controlplane << " within "
                  << absl::FormatDuration(timeout) << " (does the pool exist? is the control plane up?)\n";
        code = 1;
      } else if (!stop.load()) {
        std::cout << "switchboard-sync: applied pool" << (pools.size() > 1 ? "s " : " ") << absl::StrJoin(pools, ", ")
                  << (dry_run ? " (dry run)" : "") << std::endl;
      }
    }
    subscription.Stop();
    runner.join();
  } else {
    subscription.Run();
  }
  stop.store(true);
  {
    MutexLock lock(&mu);  // Wakes the resync thread.
    const SyncCounters& c = hx_sync ? hx_sync->counters() : nx_sync->counters();
    std::cout << "switchboard-sync: totals: " << c.applies << " rounds with changes, "
              << (hx_sync ? "commands " : "reloads ") << c.commands << ", added " << c.added << ", removed "
              << c.removed << ", weights " << c.weight_changes << ", states " << c.state_changes << ", addresses "
              << c.address_changes << ", failed " << c.failures << std::endl;
  }
  if (resync_thread.joinable()) resync_thread.join();
  // The signal thread waits in sigwait: send it one so it can exit.
  if (!signals.joinable()) return code;
  kill(getpid(), SIGTERM);
  signals.join();
  return code;
}
