// switchboard-picker: the endpoint picker of the Gateway API Inference Extension, an Envoy
// ext_proc server that chooses each request's server from the control plane's
// assignments. See docs/operations.md, "Endpoint picker for Gateway API gateways".
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
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
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "picker/exchange.h"
#include "picker/ext_proc_service.h"
#include "picker/in_flight_sharer.h"
#include "picker/metrics.h"
#include "picker/pool_table.h"

namespace {

using namespace switchboard;
using namespace switchboard::picker;

constexpr char kExtProcServiceName[] = "envoy.service.ext_proc.v3.ExternalProcessor";

int UsageError(const std::string& message) {
  std::cerr << "switchboard-picker: " << message << " (see --help)\n";
  return kUsageExitCode;
}

void SetHealth(grpc::Server* server, bool ready) {
  if (server == nullptr) return;
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus("liveness", true);
  health->SetServingStatus("readiness", ready);
  health->SetServingStatus(kExtProcServiceName, ready);
  health->SetServingStatus("", ready);
}

// Drops gRPC server reflection from a server. Linking gRPC's reflection library registers
// its plugin with every ServerBuilder of the process (a static initializer), so leaving
// out the Init call is not enough: this option removes the plugin before it adds its
// service.
class WithoutReflection : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                    return dynamic_cast<grpc::reflection::ProtoServerReflectionPlugin*>(p.get()) !=
                                           nullptr;
                                  }),
                   plugins->end());
  }
};

}  // namespace

int main(int argc, char** argv) {
  SetLogProgramName("picker");
#ifdef NDEBUG
  // Debian's Abseil runs its deadlock detector on every lock (gRPC's included) unless told
  // not to; keep it on in debug and sanitizer builds.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  KeepFreedMemoryForStreams();
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const char* env = std::getenv("SWITCHBOARD_ADDR");
  std::string controlplane = env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
  std::string listen = "0.0.0.0:9002", health_listen, metrics_listen;
  std::vector<std::string> pools;
  TlsFlags tls;
  std::string token_file, share_interval_text = "50ms";
  client::PickPolicy policy;
  ExchangeOptions exchange;
  std::string ratelimit_domain, ratelimit_timeout_text = "50ms", ratelimit_failure_mode = "allow";
  std::string retry_after_text = "1s", outcome_interval_text = "1s", body_mode = "full-duplex";
  uint64_t seed = std::random_device()();
  bool health_plaintext = false, reflection = false;

  CLI::App app{
      "switchboard-picker: the endpoint picker for Gateway API gateways (Istio, Envoy Gateway,\n"
      "kgateway, GKE, ...): an Envoy ext_proc server following the Gateway API Inference\n"
      "Extension's endpoint-picker protocol. It reads each request (model, prompt size),\n"
      "picks its server from the Switchboard control plane's assignments by expected time\n"
      "to first token, and reports what the servers answered back to the control plane.\n"
      "Pools with priority classes (docs/configuration.md) admit a request by its class\n"
      "(x-priority, x-tenant) only while the class has headroom, otherwise 429.\n"
      "Exit codes: 0 stopped by a signal, 1 failed, 2 usage error."};
  app.footer(
      "\nExamples:\n"
      "  switchboard-picker --tls-cert picker.crt --tls-key picker.key --ca fleet-ca.crt \\\n"
      "      --controlplane cp:50051 --listen 0.0.0.0:9002 --health-listen 0.0.0.0:9003 \\\n"
      "      --metrics-listen 0.0.0.0:9090 --pool llama-3-8b --replicas 2\n"
      "  switchboard-picker --insecure --controlplane 127.0.0.1:50051 --listen 127.0.0.1:9002\n"
      "Gateway settings (Envoy ext_proc filter, ORIGINAL_DST cluster; Kubernetes manifests):\n"
      "docs/operations.md, \"Endpoint picker for Gateway API gateways\".");
  app.add_option("--controlplane", controlplane, "control plane HOST:PORT (env SWITCHBOARD_ADDR)")
      ->capture_default_str();
  app.add_option("--listen", listen, "ext_proc gRPC address (port 0 picks a free port, printed on stdout)")
      ->capture_default_str();
  app.add_option("--pool", pools, "pool (= model) to serve (repeatable; every pool when none is named)");
  // TLS: --tls-cert/--tls-key (and --client-ca for mTLS) on the ext_proc and health
  // listeners, --ca/--cert/--key to the control plane; or --insecure for plaintext on both.
  AddServerTlsFlags(app, &tls);
  AddClientTlsFlags(app, &tls);
  app.get_option("--client-ca")
      ->description(
          "PEM CA bundle for client certificates: one the gateway presents must chain to it (requested, "
          "not required)");
  app.add_option("--token-file", token_file,
                 "bearer token for a control plane with --subscriber-auth token (default: $SWITCHBOARD_TOKEN)");
  app.add_option("--health-listen", health_listen,
                 "serve grpc.health.v1 here too (off when empty), e.g. 0.0.0.0:9003; the ext_proc port "
                 "always serves it");
  app.add_flag("--health-plaintext", health_plaintext,
               "serve --health-listen in plaintext even when the other listeners use TLS: the kubelet's gRPC "
               "probe cannot speak TLS, and that port serves grpc.health.v1 only");
  app.add_flag("--reflection", reflection,
               "serve gRPC server reflection on the ext_proc port (for grpcurl and the like; off by default, "
               "never on --health-listen)");
  app.add_option("--metrics-listen", metrics_listen,
                 "serve Prometheus /metrics here, e.g. 0.0.0.0:9090 (off when empty; port 0 picks one); HTTPS with "
                 "--tls-cert/--tls-key, plain HTTP only with --insecure");
  app.add_option("--replicas", policy.picker.gateways,
                 "picker replicas sharing the pools: while in-flight sharing is down (or for replicas on "
                 "another control-plane replica), the requests since the last assignment this one knows of "
                 "are scaled up by this to estimate everyone's")
      ->check(CLI::Range(1.0, 1000.0))
      ->capture_default_str();
  app.add_option("--fallbacks", policy.fallbacks, "endpoints listed after the pick, for the gateway's retries")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  app.add_option("--ratelimit-domain", ratelimit_domain,
                 "apply the global rate limits (rate_limits: of the control plane's --config) of this domain "
                 "before each pick: over a limit, 429 with x-ratelimit-* and Retry-After; tokens from the "
                 "response body's usage are counted after it (off when empty)");
  app.add_option("--ratelimit-timeout", ratelimit_timeout_text,
                 "deadline of the Rate Limit Service call made before each pick")
      ->capture_default_str();
  app.add_option("--ratelimit-failure-mode", ratelimit_failure_mode,
                 "when the Rate Limit Service fails or misses the deadline: allow the request, or deny it (429)")
      ->check(CLI::IsMember({"allow", "deny"}))
      ->capture_default_str();
  app.add_option("--shed-occupancy", policy.shed_occupancy,
                 "answer 429 when a pool's (busy + queued) / slots exceeds this (0: never)")
      ->check(CLI::Range(0.0, 1000.0))
      ->capture_default_str();
  app.add_option("--retry-after", retry_after_text, "Retry-After of a 429 (pool bound or priority class)")
      ->capture_default_str();
  app.add_option("--session-header", exchange.session_header,
                 "session affinity: requests with the same value of this header go to the same server "
                 "while it is not full, e.g. x-session-id (off when empty)");
  app.add_flag("--debug-header", exchange.debug_header,
               "add x-switchboard-pick (why this endpoint) to every routed request");
  app.add_option("--share-interval", share_interval_text,
                 "share this replica's requests in flight with the other replicas through the control plane "
                 "this often (0: do not share)")
      ->capture_default_str();
  app.add_option("--outcome-interval", outcome_interval_text,
                 "report answers per endpoint (requests, 5xx) to the control plane this often")
      ->capture_default_str();
  app.add_option("--default-body-mode", body_mode,
                 "the request body mode when Envoy does not send its protocol_config: full-duplex "
                 "(FULL_DUPLEX_STREAMED) or buffered")
      ->check(CLI::IsMember({"full-duplex", "buffered"}))
      ->capture_default_str();
  app.add_option("--max-body-bytes", exchange.max_body_bytes, "larger request bodies are answered 413")
      ->capture_default_str();
  app.add_option("--seed", seed, "random seed of the weighted draws (default: random)");
  SB_CLI_PARSE(app, argc, argv);

  absl::Duration outcome_interval, share_interval;
  if (!absl::ParseDuration(share_interval_text, &share_interval) || share_interval < absl::ZeroDuration()) {
    return UsageError("--share-interval '" + share_interval_text + "': want a duration such as 50ms (0: off)");
  }
  if (!absl::ParseDuration(retry_after_text, &policy.retry_after) || policy.retry_after <= absl::ZeroDuration()) {
    return UsageError("--retry-after '" + retry_after_text + "': want a positive duration such as 1s");
  }
  if (!absl::ParseDuration(outcome_interval_text, &outcome_interval) || outcome_interval <= absl::ZeroDuration()) {
    return UsageError("--outcome-interval '" + outcome_interval_text + "': want a positive duration such as 1s");
  }
  if (auto hp = ParseHostPort(controlplane); !hp.ok() || hp->port == 0) {
    return UsageError("--controlplane '" + controlplane + "': want HOST:PORT");
  }
  if (auto hp = ParseHostPort(listen); !hp.ok()) return UsageError("--listen '" + listen + "': want HOST:PORT");
  exchange.default_body_mode =
      body_mode == "buffered" ? ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode::BUFFERED
                              : ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode::FULL_DUPLEX_STREAMED;

  {
    absl::StatusOr<std::string> token = ReadBearerToken(token_file);
    absl::Status s = token.ok() ? ConfigureClientChannels(tls, *token) : token.status();
    if (!s.ok()) return UsageError(std::string(s.message()));
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server_credentials = MakeServerCredentials(tls);
  if (!server_credentials.ok()) return UsageError(std::string(server_credentials.status().message()));

  // /metrics speaks HTTPS with the picker's own server certificate (reloaded like the gRPC
  // one); plain HTTP only with --insecure.
  std::shared_ptr<HttpsCertificate> https;
  if (!metrics_listen.empty() && !tls.insecure) {
    absl::StatusOr<unsigned> reload = ReloadIntervalSeconds(tls);
    absl::StatusOr<std::shared_ptr<HttpsCertificate>> loaded =
        reload.ok() ? HttpsCertificate::Load(tls.tls_cert, tls.tls_key, absl::Seconds(*reload))
                    : absl::StatusOr<std::shared_ptr<HttpsCertificate>>(reload.status());
    if (!loaded.ok()) return UsageError("--metrics-listen: " + std::string(loaded.status().message()));
    https = *loaded;
  }
  std::unique_ptr<PickerMetrics> metrics = MakePickerMetrics();
  auto exposer = ServeMetrics(metrics_listen, metrics->registry, https);
  if (!exposer.ok()) {
    std::cerr << "switchboard-picker: --metrics-listen " << metrics_listen << ": " << exposer.status().message()
              << "\n";
    return 1;
  }

  std::unique_ptr<RateLimitClient> rate_limits;
  if (!ratelimit_domain.empty()) {
    absl::Duration timeout;
    if (!absl::ParseDuration(ratelimit_timeout_text, &timeout) || timeout <= absl::ZeroDuration()) {
      return UsageError("--ratelimit-timeout '" + ratelimit_timeout_text + "': want a duration > 0 such as 50ms");
    }
    rate_limits = std::make_unique<RateLimitClient>(MakeDedicatedChannel(controlplane), ratelimit_domain, timeout,
                                                    ratelimit_failure_mode == "allow");
    exchange.rate_limits = rate_limits.get();
  }

  PoolTable table(pools, policy, seed);
  ExtProcService service(&table, &exchange, metrics.get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  builder.RegisterService(&service);
  ConfigureExtProcServer(&builder);
  int port = 0;
  builder.AddListeningPort(listen, *server_credentials, &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "switchboard-picker: --listen: cannot listen on " << listen << "\n";
    return 1;
  }
  std::printf("grpc listening on port %d\n", port);

  grpc::CallbackGenericService unimplemented;  // Outlives health_server.
  std::unique_ptr<grpc::Server> health_server;
  if (!health_listen.empty()) {
    // Health only: no reflection, every other method UNIMPLEMENTED.
    grpc::ServerBuilder health_builder;
    health_builder.SetOption(std::make_unique<WithoutReflection>());
    health_builder.RegisterCallbackGenericService(&unimplemented);
    int health_port = 0;
    health_builder.AddListeningPort(
        health_listen, health_plaintext ? grpc::InsecureServerCredentials() : *server_credentials, &health_port);
    health_server = health_builder.BuildAndStart();
    if (health_server == nullptr || health_port == 0) {
      std::cerr << "switchboard-picker: --health-listen: cannot listen on " << health_listen << "\n";
      return 1;
    }
    std::printf("grpc health listening on port %d\n", health_port);
  }
  SetHealth(server.get(), false);
  SetHealth(health_server.get(), false);
  std::fflush(stdout);

  Mutex mu;  // Guards `ready` and `stop` for the waits below.
  bool ready = false, stop = false;
  auto apply = [&](const v1::Assignment& a) -> absl::Status {
    absl::Status s = table.Apply(a);
    if (!s.ok()) return s;
    metrics->assignments->Increment();
    if (table.Ready()) {
      MutexLock lock(&mu);
      if (!ready) {
        ready = true;
        SetHealth(server.get(), true);
        SetHealth(health_server.get(), true);
        std::printf("ready: holding assignments for %s\n",
                    pools.empty() ? "the control plane's pools" : absl::StrJoin(pools, ", ").c_str());
        std::fflush(stdout);
      }
    }
    return absl::OkStatus();
  };
  const std::string subscriber_id = absl::StrCat("switchboard-picker-", getpid());
  client::Subscription subscription([&] { return MakeDedicatedChannel(controlplane); }, controlplane, pools,
                                    subscriber_id, apply, [] {}, std::cout);
  InFlightSharer sharer(
      &table, metrics.get(), [&] { return MakeDedicatedChannel(controlplane); }, subscriber_id, share_interval);
  std::thread sharing;
  if (share_interval > absl::ZeroDuration()) sharing = std::thread([&] { sharer.Run(); });
  // Requests held in their priority class's queue expire at their deadline.
  std::thread release_timer([&] { table.RunReleaseTimer(); });

  // Every outcome_interval: the answers per endpoint since the last report, as deltas.
  std::thread reporter([&] {
    while (true) {
      {
        MutexLock lock(&mu);
        if (mu.AwaitWithTimeout(Condition(&stop), outcome_interval)) return;
      }
      std::vector<v1::EndpointOutcome> outcomes = table.TakeOutcomes();
      if (outcomes.empty()) continue;
      v1::SubscribeRequest report;
      for (const v1::EndpointOutcome& o : outcomes) *report.add_outcomes() = o;
      if (subscription.Send(std::move(report))) {
        metrics->outcome_reports->Increment();
      } else {
        table.Restore(outcomes);
      }
    }
  });
  std::thread signals([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    SB_LOG(INFO) << "received signal " << sig << ": stopping";
    SetHealth(server.get(), false);
    SetHealth(health_server.get(), false);
    subscription.Stop();
    sharer.Stop();
  });

  SB_LOG(INFO) << "picking for " << (pools.empty() ? "every pool" : absl::StrJoin(pools, ", ")) << " from "
               << controlplane;
  subscription.Run();
  {
    MutexLock lock(&mu);
    stop = true;
  }
  reporter.join();
  signals.join();
  if (sharing.joinable()) sharing.join();
  table.CloseQueues();  // Every held request is answered (503) rather than left hanging.
  release_timer.join();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (health_server) health_server->Shutdown();
  return 0;
}
