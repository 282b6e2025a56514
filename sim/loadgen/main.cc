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
#include "bench/loadgen/bare_server.h"
#include "bench/loadgen/bench.h"
#include "client/picker.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "common/net.h"
#include "common/tls.h"
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

// How a request ended, as a gateway tells the control plane: an error is a 5xx answer or
// none at all; a 4xx is the client's fault and counts only as a request.
enum class Outcome { kOk, kClientError, kError };

class AssignmentWatcher {
 public:
  // `outcome_interval` > 0: report what happened to the requests per endpoint on the
  // Subscribe stream this often (the control plane's circuit breakers use it).
  AssignmentWatcher(const std::string& target, const std::string& pool, absl::Duration outcome_interval)
      : stub_(switchboard::v1::DiscoveryService::NewStub(switchboard::MakeChannel(target))),
        pool_(pool),
        outcome_interval_(outcome_interval) {
    thread_ = std::thread([this] { Loop(); });
    if (outcome_interval_ > absl::ZeroDuration()) outcome_thread_ = std::thread([this] { ReportOutcomes(); });
  }
  ~AssignmentWatcher() {
    {
      switchboard::MutexLock lock(&mu_);
      stop_ = true;
      if (ctx_ != nullptr) ctx_->TryCancel();
    }
    thread_.join();
    if (outcome_thread_.joinable()) outcome_thread_.join();
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

  // A request to `address` finished, with `outcome`.
  void Done(const std::string& address, Outcome outcome) {
    switchboard::MutexLock lock(&mu_);
    ++since_assignment_[address].done;
    for (const auto& ep : assignment_.endpoints()) {
      if (ep.address() != address) continue;
      switchboard::v1::EndpointOutcome& o = pending_outcomes_[{ep.node_id(), address}];
      o.set_requests(o.requests() + 1);
      if (outcome == Outcome::kError) o.set_errors(o.errors() + 1);
      break;
    }
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
      {
        switchboard::MutexLock lock(&write_mu_);
        stream->Write(req);
        stream_ = stream.get();
      }
      switchboard::v1::Assignment a;
      while (stream->Read(&a)) {
        switchboard::v1::SubscribeRequest ack;
        ack.add_pools(pool_);
        ack.set_version_info(a.version());
        ack.set_response_nonce(a.nonce());
        {
          switchboard::MutexLock lock(&write_mu_);
          stream->Write(ack);
        }
        switchboard::MutexLock lock(&mu_);
        assignment_ = a;
        since_assignment_.clear();
      }
      {
        switchboard::MutexLock lock(&write_mu_);
        stream_ = nullptr;
      }
      stream->Finish();
      switchboard::MutexLock lock(&mu_);
      ctx_ = nullptr;
      auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithTimeout(switchboard::Condition(&stopped), absl::Milliseconds(500))) return;
    }
  }

  // Every outcome_interval_: the outcomes since the last report, as deltas, on the stream
  // (when there is none, they wait for the next).
  void ReportOutcomes() {
    while (true) {
      {
        switchboard::MutexLock lock(&mu_);
        auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
        if (mu_.AwaitWithTimeout(switchboard::Condition(&stopped), outcome_interval_)) return;
      }
      switchboard::MutexLock write(&write_mu_);
      if (stream_ == nullptr) continue;
      switchboard::v1::SubscribeRequest req;
      {
        switchboard::MutexLock lock(&mu_);
        for (auto& [key, o] : pending_outcomes_) {
          o.set_node_id(key.first);
          o.set_address(key.second);
          *req.add_outcomes() = std::move(o);
        }
        pending_outcomes_.clear();
      }
      if (req.outcomes_size() > 0) stream_->Write(req);
    }
  }

  std::unique_ptr<switchboard::v1::DiscoveryService::Stub> stub_;
  const std::string pool_;
  const absl::Duration outcome_interval_;
  // Serializes writes on the stream (ACKs from Loop, outcomes from ReportOutcomes);
  // taken before mu_ where both are held.
  switchboard::Mutex write_mu_;
  grpc::ClientReaderWriter<switchboard::v1::SubscribeRequest, switchboard::v1::Assignment>* stream_
      ABSL_GUARDED_BY(write_mu_) = nullptr;
  switchboard::Mutex mu_;
  // Outcomes not reported yet, by (node, address).
  std::map<std::pair<std::string, std::string>, switchboard::v1::EndpointOutcome> pending_outcomes_
      ABSL_GUARDED_BY(mu_);
  switchboard::v1::Assignment assignment_ ABSL_GUARDED_BY(mu_);
  // By address: requests this process sent there since the assignment arrived, and its
  // requests there that finished since.
  struct SinceAssignment {
    uint32_t sent = 0, done = 0;
  };
  std::map<std::string, SinceAssignment> since_assignment_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_, outcome_thread_;
};

std::atomic<bool> g_stop{false};

}  // namespace

int main(int argc, char** argv) {
  // Bench mode (bench/loadgen): the control plane's own ingest and fan-out under load.
  if (argc >= 2 && std::string(argv[1]) == "bench") return switchboard::bench::RunLoadgenBench(argc - 1, argv + 1);
  if (argc >= 2 && std::string(argv[1]) == "bench-bare-server") {
    return switchboard::bench::RunBareServer(argc - 1, argv + 1);
  }
  std::string controlplane = "127.0.0.1:50051", pool = "llama-3-8b", duration = "0s", report_every = "5s";
  double rps = 2;
  int max_tokens = 100, concurrency = 64, prompt_chars = 400;
  uint32_t seed = 1;
  std::string picker = "weighted", report_outcomes = "1s";
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
  app.add_option("--report-outcomes", report_outcomes,
                 "report each endpoint's requests and errors (5xx or no answer) to the control plane on the "
                 "Subscribe stream this often, as a gateway does for the circuit breakers (0s: never)")
      ->capture_default_str();
  switchboard::TlsFlags tls;
  switchboard::AddClientTlsFlags(app, &tls);
  std::string token_file;
  app.add_option("--token-file", token_file,
                 "bearer token for a control plane with --subscriber-auth token (default: $SWITCHBOARD_TOKEN)");
  CLI11_PARSE(app, argc, argv);
  {
    absl::StatusOr<std::string> token = switchboard::ReadBearerToken(token_file);
    absl::Status s = token.ok() ? switchboard::ConfigureClientChannels(tls, *token) : token.status();
    if (!s.ok()) {
      std::cerr << "switchboard-loadgen: " << s.message() << "\n";
      return 2;
    }
  }
  absl::Duration run_for, every, outcome_interval;
  if (!absl::ParseDuration(duration, &run_for) || !absl::ParseDuration(report_every, &every) ||
      every <= absl::ZeroDuration() || !absl::ParseDuration(report_outcomes, &outcome_interval) ||
      outcome_interval < absl::ZeroDuration()) {
    std::cerr << "switchboard-loadgen: --duration / --report-every / --report-outcomes must be durations such as "
                 "30s\n";
    return 2;
  }
  signal(SIGINT, [](int) { g_stop = true; });
  signal(SIGTERM, [](int) { g_stop = true; });

  AssignmentWatcher watcher(controlplane, pool, outcome_interval);
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
      watcher.Done(target, !res || res->status >= 500 ? Outcome::kError
                           : res->status >= 400       ? Outcome::kClientError
                                                      : Outcome::kOk);
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
