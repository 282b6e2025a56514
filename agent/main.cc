// switchboard-agent: runs on every GPU host, probes the local inference servers and
// streams what it sees to one or more control planes.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "agent/agent.h"
#include "agent/gpu/gpu_source.h"
#include "agent/metrics.h"
#include "agent/probe/http_client.h"
#include "common/log.h"
#include "common/metrics_listen.h"
#include "common/net.h"
#include "common/node_id.h"
#include "common/tls.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_builder.h"

int main(int argc, char** argv) {
  switchboard::SetLogProgramName("agent");
  // Block the stop signals before any thread starts (gRPC, prometheus): only the
  // signal thread below takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  std::vector<std::string> controlplanes, backends, labels;
  std::string node_id, interval = "1s", probe_timeout = "800ms", drain_timeout = "5m";
  std::string gpu_interval = "0s";
  std::string active_check = "auto", active_check_interval = "5s", active_check_timeout = "5s";
  std::string gpu_mode = "auto", nvml_library = "libnvidia-ml.so.1", metrics_listen, health_listen;
  switchboard::TlsFlags tls;
  int failures_to_unhealthy = 2, successes_to_recover = 1;
  CLI::App app{
      "switchboard-agent: probes the inference servers on this host and streams their\n"
      "slots, queue depth, KV-cache use and health to the Switchboard control plane(s)."};
  app.add_option("--controlplane", controlplanes,
                 "control plane address HOST:PORT (repeatable: report to every replica)")
      ->required();
  app.add_option("--backend", backends,
                 "inference server to probe, ENGINE=URL[,capacity=X][,max_seqs=N] (repeatable). "
                 "ENGINE: llamacpp | vllm | sglang | tgi | auto (detect from the server's endpoints). "
                 "capacity: relative speed of one slot before any is measured (e.g. A100=4, T4=1); "
                 "max_seqs: slots of an engine that does not report them (vLLM --max-num-seqs)")
      ->required();
  app.add_option("--node-id", node_id, "this host's id (default: the hostname)");
  app.add_option("--label", labels, "node label KEY=VALUE (repeatable), e.g. gpu=a100");
  app.add_option("--report-interval", interval, "how often to probe and report")->capture_default_str();
  app.add_option("--probe-timeout", probe_timeout, "timeout of each HTTP probe request")->capture_default_str();
  app.add_option("--unhealthy-after", failures_to_unhealthy, "consecutive failed probe rounds before UNHEALTHY")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--healthy-after", successes_to_recover, "consecutive good probe rounds before READY again")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--active-check", active_check,
                 "active checks (a 1-token completion while a slot is idle) that catch a server failing its "
                 "requests: auto (on, except for TGI, which counts its own 5xx) | on | off")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  app.add_option("--active-check-interval", active_check_interval, "at most one active check per endpoint this often")
      ->capture_default_str();
  app.add_option("--active-check-timeout", active_check_timeout,
                 "an active check not answered in this long failed (it runs apart: it delays no report)")
      ->capture_default_str();
  app.add_option("--drain-timeout", drain_timeout,
                 "on SIGTERM, report DRAINING and wait at most this long for endpoints to go idle")
      ->capture_default_str();
  app.add_option("--gpu", gpu_mode, "GPU readings: auto (NVML, else nvidia-smi, else none) | nvml | nvidia-smi | none")
      ->check(CLI::IsMember({"auto", "nvml", "nvidia-smi", "none"}))
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)  // The last one wins, as usual.
      ->capture_default_str();
  app.add_option("--gpu-interval", gpu_interval,
                 "read the GPUs at most this often; reports in between repeat the last readings "
                 "(0s: every report; 5s makes --gpu nvidia-smi cheap)")
      ->capture_default_str();
  app.add_option("--nvml-library", nvml_library, "NVML library to dlopen")->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen,
                 "serve the agent's Prometheus /metrics here (off when empty); HTTPS when the agent has a certificate");
  app.add_option("--health-listen", health_listen, "serve grpc.health.v1 here (off when empty), e.g. 0.0.0.0:9467");
  // TLS to the control plane (--ca, --cert, --key: the certificate must name --node-id)
  // and, for --health-listen, --tls-cert/--tls-key (default: --cert/--key).
  switchboard::AddClientTlsFlags(app, &tls);
  switchboard::AddServerTlsFlags(app, &tls);
  CLI11_PARSE(app, argc, argv);

  switchboard::agent::AgentOptions options;
  options.controlplanes = controlplanes;
  if (node_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    node_id = host;
  }
  if (absl::Status s = switchboard::ValidateNodeId(node_id); !s.ok()) {
    std::cerr << "switchboard-agent: --node-id: " << s.message() << "\n";
    return 2;
  }
  options.node_id = node_id;
  for (const std::string& l : labels) {
    size_t eq = l.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "switchboard-agent: --label '" << l << "': want KEY=VALUE\n";
      return 2;
    }
    options.labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  absl::Duration timeout;
  if (!absl::ParseDuration(drain_timeout, &options.drain_timeout) || options.drain_timeout < absl::ZeroDuration()) {
    std::cerr << "switchboard-agent: --drain-timeout: '" << drain_timeout << "' is not a duration\n";
    return 2;
  }
  if (!absl::ParseDuration(gpu_interval, &options.gpu_interval) || options.gpu_interval < absl::ZeroDuration()) {
    std::cerr << "switchboard-agent: --gpu-interval: '" << gpu_interval
              << "' is not a duration of 0s or more (examples: 0s, 5s)\n";
    return 2;
  }
  if (!absl::ParseDuration(interval, &options.report_interval) || options.report_interval < absl::Milliseconds(50) ||
      !absl::ParseDuration(probe_timeout, &timeout) || timeout <= absl::ZeroDuration()) {
    std::cerr << "switchboard-agent: --report-interval must be a duration of at least 50ms and "
                 "--probe-timeout a positive duration (examples: 1s, 500ms)\n";
    return 2;
  }
  switchboard::agent::ActiveCheckOptions check;
  check.mode = *switchboard::agent::ParseActiveCheckMode(active_check);  // CLI11 checked it.
  if (!absl::ParseDuration(active_check_interval, &check.interval) || check.interval < absl::Milliseconds(50) ||
      !absl::ParseDuration(active_check_timeout, &check.timeout) || check.timeout <= absl::ZeroDuration()) {
    std::cerr << "switchboard-agent: --active-check-interval must be a duration of at least 50ms and "
                 "--active-check-timeout a positive duration (examples: 5s, 500ms)\n";
    return 2;
  }
  for (const std::string& cp : controlplanes) {
    absl::StatusOr<switchboard::HostPort> hp = switchboard::ParseHostPort(cp);
    if (!hp.ok() || hp->port == 0) {
      std::cerr << "switchboard-agent: --controlplane '" << cp << "': want HOST:PORT\n";
      return 2;
    }
  }
  if (absl::Status s = switchboard::ConfigureClientChannels(tls); !s.ok()) {
    std::cerr << "switchboard-agent: " << s.message() << "\n";
    return 2;
  }
  std::shared_ptr<grpc::ServerCredentials> health_credentials;
  if (!health_listen.empty()) {
    switchboard::TlsFlags server_tls = tls;
    if (!tls.insecure && server_tls.tls_cert.empty() && server_tls.tls_key.empty()) {
      server_tls.tls_cert = tls.cert;
      server_tls.tls_key = tls.key;
    }
    auto credentials = switchboard::MakeServerCredentials(server_tls);
    if (!credentials.ok()) {
      std::cerr << "switchboard-agent: --health-listen: " << credentials.status().message() << "\n";
      return 2;
    }
    health_credentials = *credentials;
  }

  switchboard::agent::PlainHttpClient http;
  std::vector<std::unique_ptr<switchboard::agent::Probe>> probes;
  for (const std::string& b : backends) {
    auto spec = switchboard::agent::ParseBackendSpec(b);
    if (!spec.ok()) {
      std::cerr << "switchboard-agent: " << spec.status().message() << "\n";
      return 2;
    }
    spec->options.timeout = timeout;
    spec->options.thresholds = {failures_to_unhealthy, successes_to_recover};
    spec->options.check = check;
    auto probe = switchboard::agent::MakeProbe(*spec, &http);
    if (!probe.ok()) {
      std::cerr << "switchboard-agent: " << probe.status().message() << "\n";
      return 2;
    }
    probes.push_back(std::move(*probe));
  }

  auto gpus = switchboard::agent::MakeGpuSource(gpu_mode, nvml_library);
  if (!gpus.ok()) {
    std::cerr << "switchboard-agent: --gpu " << gpu_mode << ": " << gpus.status().message() << "\n";
    return 2;
  }

  auto registry = std::make_shared<prometheus::Registry>();
  auto metrics = switchboard::agent::AgentMetrics::Create(*registry);
  // HTTPS with the agent's server certificate (--tls-cert/--tls-key, default --cert/--key)
  // when it has one; plain HTTP otherwise.
  std::shared_ptr<switchboard::HttpsCertificate> https;
  if (!metrics_listen.empty() && !tls.insecure) {
    const std::string cert = tls.tls_cert.empty() ? tls.cert : tls.tls_cert;
    const std::string key = tls.tls_key.empty() ? tls.key : tls.tls_key;
    auto reload = switchboard::ReloadIntervalSeconds(tls);
    if (!cert.empty() && !key.empty() && reload.ok()) {
      auto loaded = switchboard::HttpsCertificate::Load(cert, key, absl::Seconds(*reload));
      if (!loaded.ok()) {
        std::cerr << "switchboard-agent: --metrics-listen: " << loaded.status().message() << "\n";
        return 2;
      }
      https = *loaded;
    }
  }
  auto exposer = switchboard::ServeMetrics(metrics_listen, registry, https);
  if (!exposer.ok()) {
    std::cerr << "switchboard-agent: --metrics-listen " << metrics_listen << ": " << exposer.status().message() << "\n";
    return 1;
  }
  grpc::CallbackGenericService unimplemented;  // Outlives health_server.
  std::unique_ptr<grpc::Server> health_server;
  if (!health_listen.empty()) {
    // Health only, without server reflection: Kubernetes' gRPC probe and grpc_health_probe
    // need none, and reflection's library costs the agent 0.3 MiB of its 20 MiB goal. The
    // generic service answers every other method UNIMPLEMENTED; it also makes this a
    // callback server, which the health service needs when nothing polls a queue.
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.RegisterCallbackGenericService(&unimplemented);
    int port = 0;
    builder.AddListeningPort(health_listen, health_credentials, &port);
    health_server = builder.BuildAndStart();
    if (health_server == nullptr || port == 0) {
      std::cerr << "switchboard-agent: --health-listen: cannot listen on " << health_listen << "\n";
      return 1;
    }
    std::printf("grpc health listening on port %d\n", port);
  }
  std::fflush(stdout);

  switchboard::agent::Agent agent(options, std::move(probes), std::move(*gpus), switchboard::SystemClock::Get(),
                                  metrics.get());
  std::atomic<bool> done{false};
  std::thread signal_thread([&agent, &stop_signals, &health_server, &done] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (done) return;
    SB_LOG(INFO) << "received signal " << sig << ": draining, then exiting (signal again to exit now)";
    if (health_server) health_server->GetHealthCheckService()->SetServingStatus(false);
    agent.StartDrain(/*exit_when_idle=*/true);
    sigwait(&stop_signals, &sig);
    if (done) return;
    SB_LOG(INFO) << "received signal " << sig << " again: exiting now";
    agent.Stop();
  });
  SB_LOG(INFO) << "node " << options.node_id << ": probing " << backends.size() << " endpoint(s), reporting to "
               << controlplanes.size() << " control plane(s) every " << absl::FormatDuration(options.report_interval);
  agent.Run();
  // A clean exit: the control planes remove this node at once instead of waiting for it
  // to go stale (a crash or a lost network still goes through staleness).
  agent.Leave(absl::Seconds(2));
  done = true;
  pthread_kill(signal_thread.native_handle(), SIGTERM);  // Wake the signal thread.
  signal_thread.join();
  if (health_server) health_server->Shutdown();
  return 0;
}
