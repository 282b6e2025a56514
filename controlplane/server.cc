#include "controlplane/server.h"

#include "CivetServer.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/net.h"
#include "controlplane/dashboard/dashboard.h"
#include "controlplane/metrics.h"
#include "controlplane/operations.h"
#include "controlplane/ratelimit/limiter.h"
#include "controlplane/ratelimit/rls_service.h"
#include "controlplane/service/admin_service.h"
#include "controlplane/service/agent_service.h"
#include "controlplane/service/authorizer.h"
#include "controlplane/service/discovery_service.h"
#include "controlplane/service/keda_scaler_service.h"
#include "controlplane/xds/ads_service.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "prometheus/exposer.h"

namespace switchboard::controlplane {

struct ControlPlane::Impl {
  ControlPlaneOptions options;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<ControlPlaneMetrics> metrics;
  std::unique_ptr<HistoryStore> history;
  std::shared_ptr<prometheus::Collectable> history_metrics;  // Reads `history`.
  std::shared_ptr<prometheus::Collectable> fleet_metrics;    // Reads `store` and the reconciler's config.
  std::unique_ptr<FleetState> fleet;
  SnapshotStore store;
  std::unique_ptr<ClientRegistry> clients;
  std::unique_ptr<Reconciler> reconciler;
  std::unique_ptr<AgentServiceImpl> agent_service;
  std::unique_ptr<DiscoveryServiceImpl> discovery_service;
  RecentPicks recent_picks;  // Pickers' last picks: reported on ShareInFlight, read by Explain.
  std::unique_ptr<xds::AdsService> ads_service;
  std::unique_ptr<FleetOperations> operations;
  std::unique_ptr<WorkThread> history_reads;  // Admin reads of SQLite, off the reactors.
  std::unique_ptr<AdminServiceImpl> admin_service;
  std::unique_ptr<KedaScalerService> keda_service;
  std::unique_ptr<ratelimit::RateLimiter> rate_limiter;
  std::unique_ptr<ratelimit::RateLimitMetrics> rate_limit_metrics;
  std::unique_ptr<ratelimit::RateLimitServiceImpl> rls_service;
  std::unique_ptr<Dashboard> dashboard;  // Served on the metrics port (/ui).
  int dashboard_port = 0;                // Registered port; 0 when none.
  // Before `authorizer`, which reads it: destroyed after it. Its watcher records events
  // in `history`; Shutdown stops it first.
  std::unique_ptr<TokenFile> tokens;
  std::unique_ptr<Authorizer> authorizer;
  std::unique_ptr<LimitMetrics> limit_metrics;
  std::unique_ptr<StreamGate> gate;  // Outlives `server` (declared before it), so every ticket.
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<ScaleExecutor> scale_exec;  // Stopped (its runs awaited) before the reconciler.
  int grpc_port = 0;
  bool shut_down = false;
  // Last, so destroyed first: no scrape runs once anything it reads is gone.
  std::unique_ptr<HttpServer> http;
  prometheus::Exposer* exposer = nullptr;  // http's; null when metrics are off.
};

absl::StatusOr<std::unique_ptr<ControlPlane>> ControlPlane::Start(const ControlPlaneOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  Impl* p = impl.get();
  p->metrics = ControlPlaneMetrics::Create(*p->registry);

  absl::StatusOr<HostPort> listen = ParseHostPort(options.listen);
  if (!listen.ok()) return absl::InvalidArgumentError(absl::StrCat("--listen: ", listen.status().message()));

  if (!options.metrics_listen.empty()) {
    absl::StatusOr<HostPort> ml = ParseHostPort(options.metrics_listen);
    if (!ml.ok()) return absl::InvalidArgumentError(absl::StrCat("--metrics-listen: ", ml.status().message()));
    // The callbacks let the dashboard answer /ui and /api/* on the same server.
    CivetCallbacks callbacks;
    callbacks.begin_request = &Dashboard::BeginRequest;
    absl::StatusOr<std::unique_ptr<HttpServer>> http =
        MakeHttpServer(ml->ToString(), /*num_threads=*/2, &callbacks, options.https);
    if (!http.ok()) {
      // CivetServer's own message ("null context when constructing CivetServer") says
      // nothing to an operator; a failed bind is almost always a port in use.
      return absl::UnavailableError(absl::StrCat("--metrics-listen ", options.metrics_listen,
                                                 ": cannot listen (the port is in use, or the address is not one "
                                                 "of this host's; ",
                                                 http.status().message(), ")"));
    }
    p->http = std::move(*http);
    p->exposer = p->http->exposer.get();
    p->exposer->RegisterCollectable(p->registry);
  }

  if (!options.db_path.empty()) {
    absl::StatusOr<std::unique_ptr<HistoryStore>> history = HistoryStore::Open(options.db_path, options.history);
    if (!history.ok()) return history.status();
    p->history = std::move(*history);
    if (p->exposer) {
      p->history_metrics = MakeHistoryMetrics(p->history.get());
      p->exposer->RegisterCollectable(p->history_metrics);
    }
  }

  p->fleet = std::make_unique<FleetState>(options.validation, [p] {
    if (p->reconciler) p->reconciler->Notify();
  });
  if (p->history) {
    absl::StatusOr<std::vector<std::string>> drained = p->history->DrainedNodes();
    if (drained.ok()) {
      p->fleet->RestoreDrains(*drained);
      if (!drained->empty()) SB_LOG(INFO) << "restored " << drained->size() << " drained node(s) from history";
    } else {
      SB_LOG(WARNING) << "cannot read the saved drains: " << drained.status().message();
    }
  }
  p->reconciler =
      std::make_unique<Reconciler>(p->fleet.get(), &p->store, p->history.get(), options.clock, options.reconciler);
  if (p->exposer) {
    p->fleet_metrics = MakeFleetMetrics(&p->store, [p] { return p->reconciler->config(); });
    p->exposer->RegisterCollectable(p->fleet_metrics);
  }
  p->store.AddWatcher([p] {
    // Runs on the reconciler thread after each publish.
    p->metrics->snapshots_published->Increment();
    double routable = 0, excluded = 0, pools = 0;
    for (const auto& snap : p->store.All()) {
      ++pools;
      for (const auto& ep : snap->assignment.endpoints()) (ep.weight() > 0 ? routable : excluded) += 1;
    }
    p->metrics->pools->Set(pools);
    p->metrics->endpoints_routable->Set(routable);
    p->metrics->endpoints_excluded->Set(excluded);
  });

  if (!options.admin_tokens_path.empty()) {
    absl::StatusOr<std::unique_ptr<TokenFile>> tokens = TokenFile::Open(
        options.admin_tokens_path, options.admin_tokens_reload_interval, options.clock,
        [p](const absl::Status& status, size_t count) {
          (status.ok() ? p->metrics->token_reloads_ok : p->metrics->token_reloads_failed)->Increment();
          if (!p->history) return;
          p->history->RecordEvent(
              status.ok() ? HistoryEvent{p->options.clock->Now(), "admin_tokens_reloaded", "", "", "",
                                         absl::StrCat("loaded ", count, " tokens from ", p->options.admin_tokens_path)}
                          : HistoryEvent{p->options.clock->Now(), "admin_tokens_reload_failed", "", "", "",
                                         std::string(status.message())});
        });
    if (!tokens.ok()) return tokens.status();
    p->tokens = std::move(*tokens);
  }
  p->authorizer =
      std::make_unique<Authorizer>(options.auth, p->tokens.get(), options.agent_certificates_required, *p->registry);
  p->limit_metrics = LimitMetrics::Create(*p->registry);
  p->gate = std::make_unique<StreamGate>(options.limits, p->limit_metrics.get());
  p->agent_service = std::make_unique<AgentServiceImpl>(p->fleet.get(), options.clock, p->metrics.get());
  p->agent_service->set_stream_gate(p->gate.get());
  p->agent_service->set_authorizer(p->authorizer.get(), [p](const std::string& node, const std::string& reason) {
    SB_LOG(WARNING) << "agent refused: " << reason;
    if (p->history) p->history->RecordEvent({p->options.clock->Now(), "agent_refused", "", node, "", reason});
  });
  p->clients = std::make_unique<ClientRegistry>(options.clock);
  p->discovery_service =
      std::make_unique<DiscoveryServiceImpl>(&p->store, p->metrics.get(), p->fleet.get(), p->clients.get());
  p->ads_service = std::make_unique<xds::AdsService>(
      &p->store, p->metrics.get(), p->history.get(), options.clock, [p] { return p->reconciler->config(); },
      p->clients.get(), options.xds_push);
  AgentServiceImpl* agents = p->agent_service.get();
  p->operations = std::make_unique<FleetOperations>(
      p->fleet.get(), &p->store, p->reconciler.get(), p->history.get(), options.clock,
      [agents](const std::string& node, const v1::Command& command) { return agents->SendCommand(node, command); });
  p->history_reads = std::make_unique<WorkThread>("sb-reads", /*queue_limit=*/64);
  if (p->exposer) {
    p->dashboard = std::make_unique<Dashboard>(&p->store, p->operations.get(), options.clock);
  }
  p->admin_service = std::make_unique<AdminServiceImpl>(p->fleet.get(), &p->store, p->operations.get(), options.clock,
                                                        p->clients.get(), p->history_reads.get());
  p->keda_service = std::make_unique<KedaScalerService>(
      &p->store, [p] { return p->reconciler->config(); }, p->metrics.get());
  p->rate_limiter = std::make_unique<ratelimit::RateLimiter>(options.rate_limits, options.clock);
  p->rate_limit_metrics = std::make_unique<ratelimit::RateLimitMetrics>(*p->registry);
  p->rls_service = std::make_unique<ratelimit::RateLimitServiceImpl>(
      p->rate_limiter.get(),
      [auth = p->authorizer.get()](const grpc::ServerContextBase& context) {
        return auth->Check(context, Access::kSubscribe);
      },
      p->rate_limit_metrics.get());
  p->discovery_service->set_authorizer(p->authorizer.get());
  p->discovery_service->set_stream_gate(p->gate.get());
  p->ads_service->set_authorizer(p->authorizer.get());
  p->ads_service->set_stream_gate(p->gate.get());
  p->admin_service->set_authorizer(p->authorizer.get());
  p->keda_service->set_authorizer(p->authorizer.get());
  p->admin_service->set_rate_limiter(p->rate_limiter.get());
  p->discovery_service->set_recent_picks(&p->recent_picks);
  p->admin_service->set_recent_picks(&p->recent_picks);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen->ToString(),
                           options.credentials != nullptr ? options.credentials : grpc::InsecureServerCredentials(),
                           &p->grpc_port);
  // Agents and subscribers keep long-lived streams with keepalive pings every 10 s.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // gRPC sets SO_REUSEPORT by default, so a second control plane on the same port would
  // start and silently take half the connections. A port in use must fail the start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Larger messages end their call with RESOURCE_EXHAUSTED before any of ours reads them.
  builder.SetMaxReceiveMessageSize(options.limits.max_message_bytes);
  builder.RegisterService(p->agent_service.get());
  builder.RegisterService(p->discovery_service.get());
  builder.RegisterService(p->ads_service.get());
  builder.RegisterService(p->admin_service.get());
  builder.RegisterService(p->keda_service.get());
  builder.RegisterService(p->rls_service.get());
  p->server = builder.BuildAndStart();
  if (p->server == nullptr || p->grpc_port == 0) {
    return absl::UnavailableError(absl::StrCat("--listen ", options.listen,
                                               ": cannot listen (the port is in use, or the address is not one "
                                               "of this host's)"));
  }
  // grpc.health.v1 (Kubernetes gRPC probes, grpcurl): NOT_SERVING until the history is
  // loaded (the restored snapshots, overrides and demand samples the reconciler reads at
  // its start), then SERVING; NOT_SERVING again from Shutdown.
  grpc::HealthCheckServiceInterface* health = p->server->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus(false);
  if (p->dashboard) {  // Registered once nothing can fail: the destructor unregisters it.
    // civetweb's own port (behind the TLS front with HTTPS): the one its callbacks see.
    p->dashboard_port = p->http->exposer_port();
    if (p->dashboard_port != 0) Dashboard::Register(p->dashboard_port, p->dashboard.get());
  }
  p->reconciler->Start();
  if (options.scale_exec) {
    absl::StatusOr<std::unique_ptr<ScaleExecutor>> exec = ScaleExecutor::Create(
        *options.scale_exec, &p->store, [p] { return p->reconciler->config(); },
        [p](HistoryEvent event) {
          (event.kind == "scale_exec" ? p->metrics->scale_exec_ok : p->metrics->scale_exec_failed)->Increment();
          if (p->history) p->history->RecordEvent(std::move(event));
        },
        [clock = options.clock] { return clock->Now(); });
    if (!exec.ok()) {
      p->server->Shutdown();
      p->reconciler->Stop();
      return exec.status();
    }
    p->scale_exec = std::move(*exec);
  }
  if (health != nullptr) health->SetServingStatus(true);
  return std::unique_ptr<ControlPlane>(new ControlPlane(std::move(impl)));
}

ControlPlane::ControlPlane(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlPlane::~ControlPlane() {
  Shutdown();
  if (impl_->dashboard_port != 0) Dashboard::Unregister(impl_->dashboard_port);
}

int ControlPlane::grpc_port() const { return impl_->grpc_port; }

int ControlPlane::metrics_port() const { return impl_->http ? impl_->http->port() : 0; }

void ControlPlane::ReloadConfig(absl::StatusOr<ReloadedConfig> config) {
  const absl::Time now = impl_->options.clock->Now();
  if (!config.ok()) {
    SB_LOG(ERROR) << "configuration reload failed, keeping the running configuration and rate limits: "
                  << config.status().message();
    impl_->metrics->config_reloads_failed->Increment();
    if (impl_->history) {
      impl_->history->RecordEvent({now, "config_reload_failed", "", "", "",
                                   absl::StrCat(config.status().message(), "; keeping ",
                                                impl_->reconciler->config()->source, " and the running rate limits")});
    }
    return;
  }
  const ratelimit::RateLimitConfig& limits = config->rate_limits;
  const std::string what =
      absl::StrCat(limits.rules.size(), " rules",
                   limits.replicas > 1 ? absl::StrCat(", divided among ", limits.replicas, " replicas") : "");
  impl_->rate_limiter->Reload(std::move(config->rate_limits));
  impl_->reconciler->SetConfig(std::move(config->fleet));
  impl_->reconciler->Notify();
  SB_LOG(INFO) << "configuration reloaded from " << impl_->reconciler->config()->source << ", rate limits: " << what;
  impl_->metrics->config_reloads_ok->Increment();
  if (impl_->history) {
    impl_->history->RecordEvent(
        {now, "config_changed", "", "", "",
         absl::StrCat("loaded ", impl_->reconciler->config()->source, "; rate_limits: ", what)});
  }
}

void ControlPlane::Shutdown() {
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  if (auto* health = impl_->server->GetHealthCheckService(); health != nullptr) health->Shutdown();
  // Open streams are cancelled after a short grace period so agents reconnect elsewhere.
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  impl_->server->Wait();
  impl_->tokens.reset();  // No call is left to authorize; no reload event after the history stops.
  impl_->scale_exec.reset();
  impl_->reconciler->Stop();
  if (impl_->history) impl_->history->Flush();
}

}  // namespace switchboard::controlplane
