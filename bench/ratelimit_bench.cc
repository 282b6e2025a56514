// ShouldRateLimit latency under an open-loop load, against a real switchboard-controlplane
// with a `rate_limits:` configuration and, in the same run, against a bare gRPC server
// (this binary with --serve-bare: the same service and messages, answering OK at once) so
// that each figure is also a ratio to what gRPC alone costs here.
//
// The client is built from Envoy's RLS protos and uses gRPC's callback API: one sender
// thread wakes up, starts every call whose scheduled time has come (calls spread over C
// channels, one connection each) and sleeps until the next one; answers complete on
// gRPC's threads. Latency counts from each call's scheduled send time, so a client or a
// server that falls behind pays for it (no coordinated omission). Each call carries one
// descriptor (tenant of T, model), so that the limiter keeps T counters; at 20 calls a
// second per tenant some are refused.
//
// usage: ratelimit_bench [--rates 5000,10000,20000] [--seconds S] [--channels C]
//                        [--tenants T] [--servers bare,controlplane]
// --servers: "bare", "controlplane" (switchboard-controlplane of the build), or the absolute
// path of another control-plane binary (to compare two builds in one run).
// (docs/performance.md records a run.)
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "tests/integration/harness.h"

namespace {

using envoy::service::ratelimit::v3::RateLimitRequest;
using envoy::service::ratelimit::v3::RateLimitResponse;
using envoy::service::ratelimit::v3::RateLimitService;

// A process's CPU time so far (user + system), from /proc/PID/stat.
absl::Duration CpuTime(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return absl::ZeroDuration();
  std::vector<std::string> fields = absl::StrSplit(text.substr(close + 2), ' ');
  // After the command: state is field 3 of stat, utime 14 and stime 15 (1-based).
  if (fields.size() < 13) return absl::ZeroDuration();
  const double ticks = std::stod(fields[11]) + std::stod(fields[12]);
  return absl::Seconds(ticks / static_cast<double>(sysconf(_SC_CLK_TCK)));
}

std::string Flag(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return def;
}

// The baseline: the same service answering OK without looking at the request, on a server
// built like the control plane's (its keepalive arguments; abseil's deadlock detector off),
// plus BDP probing off (measured: no change in system calls per unary call).
class BareRls final : public RateLimitService::CallbackService {
  grpc::ServerUnaryReactor* ShouldRateLimit(grpc::CallbackServerContext* context, const RateLimitRequest*,
                                            RateLimitResponse* response) override {
    response->set_overall_code(RateLimitResponse::OK);
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

int ServeBare() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  BareRls service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return 1;
  std::printf("grpc listening on port %d\n", port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown(std::chrono::system_clock::now());
  return 0;
}

struct Result {
  int64_t calls = 0, over = 0, failed = 0;
  absl::Duration sending, server_cpu, client_cpu;
  std::vector<double> sorted_us;  // Latencies of the completed calls, ascending.
  double Pct(double p) const {
    return sorted_us.empty() ? 0 : sorted_us[static_cast<size_t>(p * static_cast<double>(sorted_us.size() - 1))];
  }
};

absl::Duration OwnCpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return absl::DurationFromTimeval(u.ru_utime) + absl::DurationFromTimeval(u.ru_stime);
}

// One open-loop run of `rate` calls a second for `seconds` against `stubs`.
class Run {
 public:
  Run(const std::vector<std::unique_ptr<RateLimitService::Stub>>& stubs, const std::vector<RateLimitRequest>& requests,
      int rate, int seconds)
      : stubs_(stubs), requests_(requests), rate_(rate), total_(static_cast<int64_t>(rate) * seconds) {
    latencies_us_.assign(static_cast<size_t>(total_), -1);
  }

  Result Go(pid_t server) {
    Result r;
    r.calls = total_;
    const absl::Duration cpu_before = CpuTime(server), own_before = OwnCpu();
    start_ = absl::Now();
    const absl::Duration interval = absl::Seconds(1) / rate_;
    int64_t next = 0;
    while (next < total_) {
      const int64_t due = std::min<int64_t>(total_, (absl::Now() - start_) / interval + 1);
      for (; next < due; ++next) Send(next);
      if (next < total_) {
        const absl::Duration wait = start_ + interval * next - absl::Now();
        if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
      }
    }
    r.sending = absl::Now() - start_;
    all_done_.WaitForNotification();  // Every call has a deadline: each one ends.
    r.server_cpu = CpuTime(server) - cpu_before;
    r.client_cpu = OwnCpu() - own_before;
    r.over = over_.load();
    r.failed = failed_.load();
    for (double us : latencies_us_) {
      if (us >= 0) r.sorted_us.push_back(us);
    }
    std::sort(r.sorted_us.begin(), r.sorted_us.end());
    return r;
  }

 private:
  struct Call {
    grpc::ClientContext context;
    RateLimitResponse response;
    int64_t index;
  };

  void Send(int64_t i) {
    auto* call = new Call;
    call->index = i;
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    stubs_[static_cast<size_t>(i) % stubs_.size()]->async()->ShouldRateLimit(
        &call->context, &requests_[static_cast<size_t>(i) % requests_.size()], &call->response,
        [this, call](grpc::Status status) {
          const absl::Time scheduled = start_ + absl::Seconds(1) / rate_ * call->index;
          latencies_us_[static_cast<size_t>(call->index)] = absl::ToDoubleMicroseconds(absl::Now() - scheduled);
          if (!status.ok()) {
            failed_++;
          } else if (call->response.overall_code() == RateLimitResponse::OVER_LIMIT) {
            over_++;
          }
          delete call;
          if (completed_.fetch_add(1) + 1 == total_) all_done_.Notify();
        });
  }

  const std::vector<std::unique_ptr<RateLimitService::Stub>>& stubs_;
  const std::vector<RateLimitRequest>& requests_;
  const int rate_;
  const int64_t total_;
  absl::Time start_;
  std::vector<double> latencies_us_;  // Each slot written once, by its call's callback.
  std::atomic<int64_t> completed_{0}, over_{0}, failed_{0};
  absl::Notification all_done_;
};

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--serve-bare") return ServeBare();
  }
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<int> rates;
  for (absl::string_view r : absl::StrSplit(Flag(argc, argv, "--rates", "5000,10000,20000"), ',')) {
    int v = 0;
    if (!absl::SimpleAtoi(r, &v) || v <= 0) {
      std::fprintf(stderr, "--rates: want positive integers separated by commas\n");
      return 2;
    }
    rates.push_back(v);
  }
  const int seconds = std::atoi(Flag(argc, argv, "--seconds", "5").c_str());
  const int channels = std::atoi(Flag(argc, argv, "--channels", "4").c_str());
  const int tenants = std::atoi(Flag(argc, argv, "--tenants", "1000").c_str());
  const std::vector<std::string> servers = absl::StrSplit(Flag(argc, argv, "--servers", "bare,controlplane"), ',');
  if (seconds <= 0 || channels <= 0 || tenants <= 0) {
    std::fprintf(stderr, "--seconds, --channels and --tenants must be > 0\n");
    return 2;
  }

  const std::filesystem::path dir = std::filesystem::temp_directory_path() / absl::StrCat("rl_bench_", getpid());
  std::filesystem::create_directories(dir);
  const std::string config = (dir / "limits.yaml").string();
  std::ofstream(config) << "rate_limits:\n  domain: bench\n  rules:\n"
                           "    - name: per-tenant\n      match: {tenant: \"*\", model: \"*\"}\n"
                           "      requests_per_second: 15\n      requests_per_minute: 900\n"
                           "      tokens_per_hour: 1000000\n";
  // One prepared request per tenant, shared by every call (the callback API reads it only
  // while the call is started).
  std::vector<RateLimitRequest> requests(static_cast<size_t>(tenants));
  for (int t = 0; t < tenants; ++t) {
    RateLimitRequest& request = requests[static_cast<size_t>(t)];
    request.set_domain("bench");
    auto* d = request.add_descriptors();
    auto* e = d->add_entries();
    e->set_key("tenant");
    e->set_value(absl::StrCat("t", t));
    e = d->add_entries();
    e->set_key("model");
    e->set_value("llama");
  }

  std::printf("%-12s %6s %7s %8s %8s %8s %9s %9s %10s %10s %8s %6s\n", "server", "rate/s", "sent_s", "p50_us", "p90_us",
              "p99_us", "p99.9_us", "max_us", "srv_us/call", "cli_us/call", "over", "failed");
  bool ok = true;
  for (const std::string& which : servers) {
    std::unique_ptr<switchboard::testing::Subprocess> server;
    if (which == "bare") {
      server = switchboard::testing::Subprocess::Start(std::filesystem::read_symlink("/proc/self/exe").string(),
                                                       {"--serve-bare"});
    } else if (which == "controlplane" || which.rfind('/', 0) == 0) {
      server = switchboard::testing::Subprocess::Start(
          which == "controlplane" ? "switchboard-controlplane" : which,
          {"--insecure", "--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "", "--config", config});
    } else {
      std::fprintf(stderr, "--servers: bare, controlplane or /path/to/switchboard-controlplane, not %s\n",
                   which.c_str());
      return 2;
    }
    auto port = server->WaitForPort("grpc listening on port ", absl::Seconds(30));
    if (!port.ok()) {
      std::fprintf(stderr, "%s did not start: %s\n", which.c_str(), std::string(port.status().message()).c_str());
      return 1;
    }
    const std::string target = absl::StrCat("127.0.0.1:", *port);
    std::vector<std::unique_ptr<RateLimitService::Stub>> stubs;
    for (int c = 0; c < channels; ++c) {
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", c);  // Distinct channels, distinct connections.
      stubs.push_back(
          RateLimitService::NewStub(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args)));
    }
    for (int rate : rates) {
      {  // Warm the connections and the server up: a second at the rate.
        Run warm(stubs, requests, rate, 1);
        (void)warm.Go(server->pid());
      }
      Run run(stubs, requests, rate, seconds);
      Result r = run.Go(server->pid());
      const double n = static_cast<double>(r.calls);
      std::printf("%-12s %6d %7.2f %8.0f %8.0f %8.0f %9.0f %9.0f %10.1f %10.1f %8lld %6lld\n", which.c_str(), rate,
                  absl::ToDoubleSeconds(r.sending), r.Pct(0.5), r.Pct(0.9), r.Pct(0.99), r.Pct(0.999),
                  r.sorted_us.empty() ? 0.0 : r.sorted_us.back(), absl::ToDoubleMicroseconds(r.server_cpu) / n,
                  absl::ToDoubleMicroseconds(r.client_cpu) / n, static_cast<long long>(r.over),
                  static_cast<long long>(r.failed));
      std::fflush(stdout);
      if (r.failed > 0) ok = false;
    }
    stubs.clear();
    server->Signal(SIGTERM);
    server->Wait();
  }
  std::filesystem::remove_all(dir);
  return ok ? 0 : 1;
}
