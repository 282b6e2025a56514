// switchboard-loadgen: a small load generator that acts like a gateway. It subscribes to
// a pool's assignments over the native Subscribe stream and sends chat completions
// (Poisson arrivals) to endpoints picked at random in proportion to their weights.
// The demo uses it so that a newcomer sees weights move with load.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/picker.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "common/net.h"
#include "httplib.h"
#include "switchboard/v1/discovery.grpc.pb.h"

namespace {

struct Stats {
  switchboard::Mutex mu;
  int64_t sent = 0, ok = 0, failed = 0, no_endpoint = 0;
  std::map<std::string, int64_t> per_endpoint;
  std::vector<double> latencies_s;
};

// One summary line: counts, latency quantiles so far, and requests per endpoint.
// `tag` is "" while running and " done" for the last line.
void PrintSummary(Stats& stats, int in_flight, const char* tag) {
  switchboard::MutexLock lock(&stats.mu);
  std::sort(stats.latencies_s.begin(), stats.latencies_s.end());
  auto q = [&](double p) {
    return stats.latencies_s.empty() ? 0.0 : stats.latencies_s[static_cast<size_t>(p * (stats.latencies_s.size() - 1))];
  };
  std::string split;
  for (const auto& [ep, n] : stats.per_endpoint) absl::StrAppend(&split, " ", ep, "=", n);
  std::cout << absl::StrFormat("loadgen:%s sent %d ok %d failed %d unroutable %d in-flight %d p50 %.1fs p95 %.1fs |%s",
                               tag, stats.sent, stats.ok, stats.failed, stats.no_endpoint, in_flight, q(0.5), q(0.95),
                               split)
            << std::endl;
}

class AssignmentWatcher {
 public:
  AssignmentWatcher(const std::string& target, const std::string& pool)
      : stub_(switchboard::v1::DiscoveryService::NewStub(switchboard::MakeChannel(target))), pool_(pool) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~AssignmentWatcher() {
    {
      switchboard::MutexLock lock(&mu_);
      stop_ = true;
      if (ctx_ != nullptr) ctx_->TryCancel();
    }
    thread_.join();
  }
  // Picks an endpoint in proportion to weight; empty when none is routable.
  std::string Pick(std::mt19937_64& rng) {
    switchboard::MutexLock lock(&mu_);
    std::vector<double> weights;
    for (const auto& ep : assignment_.endpoints()) weights.push_back(ep.weight());
    if (std::none_of(weights.begin(), weights.end(), [](double w) { return w > 0; })) return "";
    std::discrete_distribution<int> pick(weights.begin(), weights.end());
    return assignment_.endpoints(pick(rng)).address();
  }

  // Picks by expected time to first token for a prompt of `prompt_tokens`
  // (client/picker), counting this process's sends since the assignment.
  std::string PickSizeAware(double prompt_tokens, std::mt19937_64& rng) {
    switchboard::MutexLock lock(&mu_);
    std::vector<switchboard::client::PickerEndpoint> eps;
    for (const auto& ep : assignment_.endpoints()) {
      switchboard::client::PickerEndpoint e;
      e.weight = ep.weight();
      e.slots_total = ep.slots_total();
      e.slots_free = ep.slots_free();
      e.queue_depth = ep.queue_depth();
      e.decode_tokens_per_second = ep.decode_tokens_per_second();
      e.prefill_tokens_per_second = ep.prefill_tokens_per_second();
      const SinceAssignment& since = since_assignment_[ep.address()];
      e.sent_since_assignment = since.sent;
      e.done_since_assignment = since.done;
      eps.push_back(e);
    }
    const int k = switchboard::client::PickEndpoint(eps, prompt_tokens, switchboard::client::PickerConfig(), rng);
    if (k < 0) return "";
    const std::string& address = assignment_.endpoints(k).address();
    ++since_assignment_[address].sent;
    return address;
  }

  // A request to `address` finished (either way).
  void Done(const std::string& address) {
    switchboard::MutexLock lock(&mu_);
    ++since_assignment_[address].done;
  }

 private:
  void Loop() {
    while (true) {
      grpc::ClientContext ctx;
      {
        switchboard::MutexLock lock(&mu_);
        if (stop_) return;
        ctx_ = &ctx;
      }
      auto stream = stub_->Subscribe(&ctx);
      switchboard::v1::SubscribeRequest req;
      req.set_subscriber_id("loadgen");
      req.add_pools(pool_);
      stream->Write(req);
      switchboard::v1::Assignment a;
      while (stream->Read(&a)) {
        switchboard::v1::SubscribeRequest ack;
        ack.add_pools(pool_);
        ack.set_version_info(a.version());
        ack.set_response_nonce(a.nonce());
        stream->Write(ack);
        switchboard::MutexLock lock(&mu_);
        assignment_ = a;
        since_assignment_.clear();
      }
      stream->Finish();
      switchboard::MutexLock lock(&mu_);
      ctx_ = nullptr;
      auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithTimeout(switchboard::Condition(&stopped), absl::Milliseconds(500))) return;
    }
  }

  std::unique_ptr<switchboard::v1::DiscoveryService::Stub> stub_;
  const std::string pool_;
  switchboard::Mutex mu_;
  switchboard::v1::Assignment assignment_ ABSL_GUARDED_BY(mu_);
  // By address: requests this process sent there since the assignment arrived, and its
  // requests there that finished since.
  struct SinceAssignment {
    uint32_t sent = 0, done = 0;
  };
  std::map<std::string, SinceAssignment> since_assignment_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

std::atomic<bool> g_stop{false};

}  // namespace

int main(int argc, char** argv) {
  std::string controlplane = "127.0.0.1:50051", pool = "llama-3-8b", duration = "0s", report_every = "5s";
  double rps = 2;
  int max_tokens = 100, concurrency = 64, prompt_chars = 400;
  uint32_t seed = 1;
  std::string picker = "weighted";
  CLI::App app{"switchboard-loadgen: chat-completion load on a pool, routed by its pushed assignments."};
  app.add_option("--controlplane", controlplane, "control plane HOST:PORT")->capture_default_str();
  app.add_option("--pool", pool, "pool (model) to load")->capture_default_str();
  app.add_option("--rps", rps, "mean requests per second (Poisson arrivals)")
      ->check(CLI::Range(0.01, 1e5))
      ->capture_default_str();
  app.add_option("--max-tokens", max_tokens, "output tokens per request")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--prompt-chars", prompt_chars, "prompt length in characters")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--concurrency", concurrency, "most requests in flight")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--duration", duration, "stop after this long (0s: until interrupted)")->capture_default_str();
  app.add_option("--report-every", report_every, "print a summary line this often")->capture_default_str();
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  app.add_option("--picker", picker,
                 "how to pick an endpoint: weighted (random in proportion to weight, as a weighted proxy does) | "
                 "size-aware (lowest expected time to first token for the prompt, from the assignment's "
                 "slots, queue and measured speeds)")
      ->check(CLI::IsMember({"weighted", "size-aware"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  absl::Duration run_for, every;
  if (!absl::ParseDuration(duration, &run_for) || !absl::ParseDuration(report_every, &every) ||
      every <= absl::ZeroDuration()) {
    std::cerr << "switchboard-loadgen: --duration / --report-every must be durations such as 30s\n";
    return 2;
  }
  signal(SIGINT, [](int) { g_stop = true; });
  signal(SIGTERM, [](int) { g_stop = true; });

  AssignmentWatcher watcher(controlplane, pool);
  Stats stats;
  std::atomic<int> in_flight{0};
  std::mt19937_64 rng(seed);
  const double prompt_tokens = prompt_chars / 4.0;  // About 4 characters per token.
  std::exponential_distribution<double> gap(rps);
  const std::string body = absl::StrCat(R"({"messages":[{"role":"user","content":")", std::string(prompt_chars, 'x'),
                                        R"("}],"max_tokens":)", max_tokens, "}");
  const switchboard::Clock& clock = *switchboard::SystemClock::Get();
  const absl::Time start = clock.MonotonicNow();
  absl::Time next_arrival = start, next_report = start + every;
  while (!g_stop && (run_for == absl::ZeroDuration() || clock.MonotonicNow() - start < run_for)) {
    // Pacing arrivals is this program's purpose.
    clock.SleepUntil(next_arrival);
    next_arrival += absl::Seconds(gap(rng));
    if (clock.MonotonicNow() >= next_report) {
      PrintSummary(stats, in_flight.load(), "");
      next_report += every;
    }
    std::string target = picker == "size-aware" ? watcher.PickSizeAware(prompt_tokens, rng) : watcher.Pick(rng);
    if (target.empty() || in_flight >= concurrency) {
      switchboard::MutexLock lock(&stats.mu);
      ++stats.no_endpoint;
      continue;
    }
    ++in_flight;
    // Detached: each worker holds one request; main waits for in_flight == 0 at the end.
    std::thread([target, &body, &stats, &in_flight, &watcher, &clock] {
      auto hp = switchboard::ParseHostPort(target);
      httplib::Client client(hp->host, hp->port);
      client.set_read_timeout(std::chrono::seconds(300));
      const absl::Time t0 = clock.MonotonicNow();
      auto res = client.Post("/v1/chat/completions", body, "application/json");
      const double latency = absl::ToDoubleSeconds(clock.MonotonicNow() - t0);
      watcher.Done(target);
      switchboard::MutexLock lock(&stats.mu);
      ++stats.sent;
      ++stats.per_endpoint[target];
      if (res && res->status == 200) {
        ++stats.ok;
        stats.latencies_s.push_back(latency);
      } else {
        ++stats.failed;
      }
      --in_flight;
    }).detach();
  }
  {
    switchboard::MutexLock lock(&stats.mu);
    auto idle = [&in_flight] { return in_flight.load() == 0; };
    stats.mu.Await(switchboard::Condition(&idle));
  }
  PrintSummary(stats, 0, " done");
  return 0;
}
