// ShouldRateLimit latency under an open-loop load: a real switchboard-controlplane with a
// `rate_limits:` configuration, called at a fixed rate (default 20,000 calls/s) over C
// channels by an asynchronous client built from Envoy's RLS protos. Each call carries one
// descriptor (tenant of T, model) so that the limiter keeps T counters; most calls are
// admitted, some refused. Latency is measured from each call's scheduled send time (no
// coordinated omission): a client that falls behind counts its own delay.
//
// usage: ratelimit_bench [--rate N] [--seconds S] [--channels C] [--tenants T]
// (docs/performance.md records a run.)
#include <grpcpp/completion_queue.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
#include <signal.h>
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
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
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

struct Call {
  grpc::ClientContext context;
  RateLimitResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<RateLimitResponse>> reader;
  absl::Time scheduled;
};

int Flag(int argc, char** argv, const std::string& name, int def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return std::atoi(argv[i + 1]);
  }
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  const int rate = Flag(argc, argv, "--rate", 20000);
  const int seconds = Flag(argc, argv, "--seconds", 10);
  const int channels = Flag(argc, argv, "--channels", 4);
  const int tenants = Flag(argc, argv, "--tenants", 1000);

  const std::filesystem::path dir = std::filesystem::temp_directory_path() / absl::StrCat("rl_bench_", getpid());
  std::filesystem::create_directories(dir);
  const std::string config = (dir / "limits.yaml").string();
  std::ofstream(config) << "rate_limits:\n  domain: bench\n  rules:\n"
                           "    - name: per-tenant\n      match: {tenant: \"*\", model: \"*\"}\n"
                           "      requests_per_second: 15\n      requests_per_minute: 900\n"
                           "      tokens_per_hour: 1000000\n";
  auto cp = switchboard::testing::Subprocess::Start(
      "switchboard-controlplane", {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "", "--config", config});
  auto port = cp->WaitForPort("grpc listening on port ", absl::Seconds(30));
  if (!port.ok()) {
    std::fprintf(stderr, "control plane did not start: %s\n", std::string(port.status().message()).c_str());
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

  grpc::CompletionQueue cq;
  const int64_t total = static_cast<int64_t>(rate) * seconds;
  std::vector<double> latencies_us;
  latencies_us.reserve(total);
  std::atomic<int64_t> over{0}, failed{0};
  std::thread receiver([&] {
    void* tag = nullptr;
    bool ok = false;
    for (int64_t done = 0; done < total && cq.Next(&tag, &ok); ++done) {
      std::unique_ptr<Call> call(static_cast<Call*>(tag));
      latencies_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - call->scheduled));
      if (!call->status.ok()) {
        failed++;
      } else if (call->response.overall_code() == RateLimitResponse::OVER_LIMIT) {
        over++;
      }
    }
  });

  // Warm the connections up.
  for (auto& stub : stubs) {
    RateLimitRequest r;
    r.set_domain("bench");
    auto* e = r.add_descriptors()->add_entries();
    e->set_key("tenant");
    e->set_value("warmup");
    grpc::ClientContext ctx;
    RateLimitResponse resp;
    (void)stub->ShouldRateLimit(&ctx, r, &resp);
  }

  const absl::Duration cpu_before = CpuTime(cp->pid());
  const absl::Time start = absl::Now();
  const absl::Duration interval = absl::Seconds(1) / rate;
  for (int64_t i = 0; i < total; ++i) {
    const absl::Time when = start + interval * i;
    // Sleep while far ahead; busy-wait the last stretch (sleeps overshoot and bunch calls).
    if (const absl::Duration ahead = when - absl::Now(); ahead > absl::Microseconds(300)) {
      absl::SleepFor(ahead - absl::Microseconds(200));
    }
    while (absl::Now() < when) {
    }
    auto* call = new Call;
    call->scheduled = when;
    RateLimitRequest request;
    request.set_domain("bench");
    auto* d = request.add_descriptors();
    auto* e = d->add_entries();
    e->set_key("tenant");
    e->set_value(absl::StrCat("t", i % tenants));
    e = d->add_entries();
    e->set_key("model");
    e->set_value("llama");
    call->reader = stubs[i % channels]->AsyncShouldRateLimit(&call->context, request, &cq);
    call->reader->Finish(&call->response, &call->status, call);
  }
  const absl::Duration sending = absl::Now() - start;
  receiver.join();
  const absl::Duration cpu = CpuTime(cp->pid()) - cpu_before;
  cq.Shutdown();
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) { return latencies_us[static_cast<size_t>(p * (latencies_us.size() - 1))]; };
  std::printf("calls %lld at %d/s (sent in %.2f s) over %d channels, %d tenants: %lld over limit, %lld failed\n",
              static_cast<long long>(total), rate, absl::ToDoubleSeconds(sending), channels, tenants,
              static_cast<long long>(over.load()), static_cast<long long>(failed.load()));
  std::printf("control plane CPU: %.1f us per call (%.2f cores at the offered rate)\n",
              absl::ToDoubleMicroseconds(cpu) / static_cast<double>(total),
              absl::ToDoubleMicroseconds(cpu) / static_cast<double>(total) * rate / 1e6);
  std::printf("latency us: p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n", pct(0.5), pct(0.9), pct(0.99),
              pct(0.999), latencies_us.back());
  cp->Signal(SIGTERM);
  cp->Wait();
  std::filesystem::remove_all(dir);
  return 0;
}
