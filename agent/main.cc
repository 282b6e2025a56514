// switchboard-agent: runs on every GPU host, probes the local inference servers and
// streams what it sees to one or more control planes.
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "agent/agent.h"
#include "agent/probe/http_client.h"
#include "common/log.h"
#include "common/net.h"
#include "controlplane/fleet/validation.h"

int main(int argc, char** argv) {
  switchboard::SetLogProgramName("agent");
#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  std::vector<std::string> controlplanes, backends, labels;
  std::string node_id, interval = "1s", probe_timeout = "800ms";
  bool insecure = false;
  int failures_to_unhealthy = 2, successes_to_recover = 1;
  CLI::App app{
      "switchboard-agent: probes the inference servers on this host and streams their\n"
      "slots, queue depth, KV-cache use and health to the Switchboard control plane(s)."};
  app.add_option("--controlplane", controlplanes, "control plane address HOST:PORT (repeatable: report to every replica)")
      ->required();
  app.add_option("--backend", backends,
                 "inference server to probe, ENGINE=URL[,capacity=X] (repeatable). ENGINE: llamacpp. "
                 "capacity: relative speed of one slot before any is measured (e.g. A100=4, T4=1)")
      ->required();
  app.add_option("--node-id", node_id, "this host's id (default: the hostname)");
  app.add_option("--label", labels, "node label KEY=VALUE (repeatable), e.g. gpu=a100");
  app.add_option("--report-interval", interval, "how often to probe and report")->capture_default_str();
  app.add_option("--probe-timeout", probe_timeout, "timeout of each HTTP probe request")->capture_default_str();
  app.add_option("--unhealthy-after", failures_to_unhealthy, "consecutive failed probe rounds before UNHEALTHY")
      ->check(CLI::Range(1, 100))->capture_default_str();
  app.add_option("--healthy-after", successes_to_recover, "consecutive good probe rounds before READY again")
      ->check(CLI::Range(1, 100))->capture_default_str();
  app.add_flag("--insecure", insecure, "plaintext gRPC to the control plane (the only mode in this release)");
  CLI11_PARSE(app, argc, argv);

  switchboard::agent::AgentOptions options;
  options.controlplanes = controlplanes;
  if (node_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    node_id = host;
  }
  if (absl::Status s = switchboard::controlplane::ValidateNodeId(node_id); !s.ok()) {
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
  if (!absl::ParseDuration(interval, &options.report_interval) || options.report_interval < absl::Milliseconds(50) ||
      !absl::ParseDuration(probe_timeout, &timeout) || timeout <= absl::ZeroDuration()) {
    std::cerr << "switchboard-agent: --report-interval must be a duration of at least 50ms and "
                 "--probe-timeout a positive duration (examples: 1s, 500ms)\n";
    return 2;
  }
  for (const std::string& cp : controlplanes) {
    absl::StatusOr<switchboard::HostPort> hp = switchboard::ParseHostPort(cp);
    if (!hp.ok() || hp->port == 0) {
      std::cerr << "switchboard-agent: --controlplane '" << cp << "': want HOST:PORT\n";
      return 2;
    }
  }
  switchboard::WarnIfPlaintextImplicit(insecure);

  switchboard::agent::CurlHttpClient http;
  std::vector<std::unique_ptr<switchboard::agent::Probe>> probes;
  for (const std::string& b : backends) {
    auto spec = switchboard::agent::ParseBackendSpec(b);
    if (!spec.ok()) {
      std::cerr << "switchboard-agent: " << spec.status().message() << "\n";
      return 2;
    }
    spec->options.timeout = timeout;
    spec->options.thresholds = {failures_to_unhealthy, successes_to_recover};
    auto probe = switchboard::agent::MakeProbe(*spec, &http);
    if (!probe.ok()) {
      std::cerr << "switchboard-agent: " << probe.status().message() << "\n";
      return 2;
    }
    probes.push_back(std::move(*probe));
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  switchboard::agent::Agent agent(options, std::move(probes), switchboard::SystemClock::Get());
  std::thread signal_thread([&agent, &stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    SB_LOG(INFO) << "received signal " << sig << ", stopping";
    agent.Stop();
  });
  SB_LOG(INFO) << "node " << options.node_id << ": probing " << backends.size() << " endpoint(s), reporting to "
               << controlplanes.size() << " control plane(s) every " << absl::FormatDuration(options.report_interval);
  agent.Run();
  signal_thread.join();
  return 0;
}
