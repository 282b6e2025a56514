// switchboard-picker under an open-loop load: requests arrive at a fixed rate (Envoy does
// not wait for one to finish before sending the next), each on its own ext_proc stream
// as Envoy opens one per HTTP request, and each stays open for as long as its server
// takes to answer, so that `--rps` x `--hold` streams are open at once (5,000/s x 0.2 s =
// 1,000). Per request: the request headers and a 2 KB JSON body (full duplex, two chunks)
// go out at once; the added latency is the time until the pick (the answer to the
// headers) is back; the body comes back; after the hold the response headers go out and
// their answer comes back. The picker runs in this process (its gRPC service, pool table
// and metrics, as switchboard-picker runs them) on loopback.
//
//   build/bench/picker_load --rps 5000 --hold 200ms --duration 10s
//
// With --ratelimit HOST:PORT (a switchboard-controlplane with a `rate_limits:` block whose
// domain is `switchboard`) the picker asks its Rate Limit Service before each pick, as
// switchboard-picker --ratelimit-domain switchboard does; compare runs with and without.
//
// Prints the achieved rate, the streams open at the peak and the pick latency's
// percentiles; exits 1 when requests failed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "picker/ext_proc_service.h"
#include "picker/rate_limit.h"

namespace switchboard::picker {
namespace {

using ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;
using Clock = std::chrono::steady_clock;

v1::Assignment Pool(int n) {
  v1::Assignment a;
  a.set_pool("llama");
  for (int i = 0; i < n; ++i) {
    v1::AssignedEndpoint* e = a.add_endpoints();
    e->set_address(absl::StrCat("10.0.", i / 250, ".", i % 250, ":8000"));
    e->set_node_id(absl::StrCat("node-", i));
    e->set_weight(10 + i % 50);
    e->set_state(v1::ENDPOINT_STATE_READY);
    e->set_circuit(v1::CIRCUIT_STATE_CLOSED);
    e->set_slots_total(256);
    e->set_slots_free(128);
    e->set_prefill_tokens_per_second(1500 + 500 * (i % 8));
    e->set_decode_tokens_per_second(15 + 5 * (i % 8));
  }
  return a;
}

std::vector<ext_proc::ProcessingRequest> RequestMessages() {
  std::vector<ext_proc::ProcessingRequest> m(4);
  auto* h = m[0].mutable_request_headers();
  for (auto [k, v] : {std::pair<const char*, const char*>{":method", "POST"},
                      {":path", "/v1/chat/completions"},
                      {":authority", "gateway.example"},
                      {"content-type", "application/json"},
                      {"user-agent", "bench"}}) {
    auto* hv = h->mutable_headers()->add_headers();
    hv->set_key(k);
    hv->set_raw_value(v);
  }
  m[0].mutable_protocol_config()->set_request_body_mode(ProcessingMode::FULL_DUPLEX_STREAMED);
  const std::string body = absl::StrCat(R"({"model":"llama","messages":[{"role":"user","content":")",
                                        std::string(1950, 'x'), R"("}],"max_tokens":64})");
  m[1].mutable_request_body()->set_body(body.substr(0, 1024));
  m[2].mutable_request_body()->set_body(body.substr(1024));
  m[2].mutable_request_body()->set_end_of_stream(true);
  auto* st = m[3].mutable_response_headers()->mutable_headers()->add_headers();
  st->set_key(":status");
  st->set_raw_value("200");
  m[3].mutable_response_headers()->set_end_of_stream(true);
  return m;
}

class Load;

// Wakes requests whose hold is over, in time order, on one thread.
class Timers {
 public:
  using Fn = std::function<void()>;
  Timers() : thread_([this] { Run(); }) {}
  ~Timers() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  void At(Clock::time_point t, Fn fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push({t, seq_++, std::move(fn)});
    }
    cv_.notify_one();
  }

 private:
  struct Item {
    Clock::time_point t;
    uint64_t seq;
    Fn fn;
    bool operator>(const Item& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (queue_.empty()) {
        cv_.wait(lock);
        continue;
      }
      if (Clock::now() < queue_.top().t) {
        cv_.wait_until(lock, queue_.top().t);
        continue;
      }
      Fn fn = queue_.top().fn;
      queue_.pop();
      lock.unlock();
      fn();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> queue_;
  uint64_t seq_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

struct Results {
  std::mutex mu;
  std::vector<double> pick_us;
  std::atomic<int> open{0}, peak{0}, failed{0}, done{0};
};

// One request's stream, as Envoy's ext_proc filter drives it.
class Request final : public grpc::ClientBidiReactor<ext_proc::ProcessingRequest, ext_proc::ProcessingResponse> {
 public:
  Request(ext_proc::ExternalProcessor::Stub* stub, const std::vector<ext_proc::ProcessingRequest>* messages,
          absl::Duration hold, Timers* timers, Results* results)
      : messages_(messages), hold_(hold), timers_(timers), results_(results), started_(Clock::now()) {
    const int open = ++results_->open;
    int peak = results_->peak.load();
    while (open > peak && !results_->peak.compare_exchange_weak(peak, open)) {
    }
    stub->async()->Process(&context_, this);
    AddHold();  // Released once the response headers are written (from the timer thread).
    StartWrite(&(*messages_)[0]);
    StartRead(&response_);
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return;
    bool next = false, last = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++written_;
      next = written_ < 3;
      last = written_ == 3 && hold_over_;
    }
    if (next) StartWrite(&(*messages_)[written_]);
    if (last) SendResponseHeaders();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    ++read_;
    if (read_ == 1) {
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - started_).count();
      if (!response_.has_request_headers()) failed_ = true;
      std::lock_guard<std::mutex> lock(results_->mu);
      results_->pick_us.push_back(us);
    }
    if (read_ == 2) {  // The body handed back: the upstream answers after the hold.
      timers_->At(Clock::now() + absl::ToChronoNanoseconds(hold_), [this] {
        bool now = false;
        {
          std::lock_guard<std::mutex> lock(mu_);
          hold_over_ = true;
          now = written_ == 3;
        }
        if (now) SendResponseHeaders();  // Else the last body write's completion sends them.
        RemoveHold();
      });
      return;
    }
    if (read_ == 3) {
      StartWritesDone();
      return;
    }
    StartRead(&response_);
  }

  // The upstream answered: the response headers go out, and their answer is read.
  void SendResponseHeaders() {
    StartWrite(&(*messages_)[3]);
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& s) override {
    if (!s.ok() || failed_ || read_ < 3) ++results_->failed;
    ++results_->done;
    --results_->open;
    delete this;
  }

 private:
  const std::vector<ext_proc::ProcessingRequest>* const messages_;
  const absl::Duration hold_;
  Timers* const timers_;
  Results* const results_;
  const Clock::time_point started_;
  grpc::ClientContext context_;
  ext_proc::ProcessingResponse response_;
  std::mutex mu_;    // written_ and hold_over_: the timer thread and reactions meet here.
  int written_ = 0;  // Writes completed (the response headers' is the 4th).
  bool hold_over_ = false;
  int read_ = 0;  // Reactions only (reads are one at a time).
  bool failed_ = false;
};

int Main(int argc, char** argv) {
  double rps = 5000;
  std::string hold_text = "200ms", duration_text = "10s";
  int endpoints = 8, channels = 4;
  std::string ratelimit;
  CLI::App app{"switchboard-picker's added latency under an open-loop load (see the file's comment)"};
  app.add_option("--rps", rps, "requests started per second")->capture_default_str();
  app.add_option("--hold", hold_text, "how long each request's stream stays open after its pick (its server's answer)")
      ->capture_default_str();
  app.add_option("--duration", duration_text, "how long requests are started")->capture_default_str();
  app.add_option("--endpoints", endpoints, "endpoints in the pool")->capture_default_str();
  app.add_option("--channels", channels, "HTTP/2 connections from the gateway to the picker")->capture_default_str();
  app.add_option("--ratelimit", ratelimit,
                 "a control plane's HOST:PORT: check its Rate Limit Service before each pick");
  CLI11_PARSE(app, argc, argv);
  absl::Duration hold, duration;
  if (!absl::ParseDuration(hold_text, &hold) || !absl::ParseDuration(duration_text, &duration) || rps <= 0) {
    std::fprintf(stderr, "picker_load: bad --hold, --duration or --rps\n");
    return 2;
  }
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  PoolTable table({}, client::PickPolicy(), 1);
  (void)table.Apply(Pool(endpoints));
  ExchangeOptions options;
  std::unique_ptr<RateLimitClient> rate_limits;
  if (!ratelimit.empty()) {
    rate_limits = std::make_unique<RateLimitClient>(grpc::CreateChannel(ratelimit, grpc::InsecureChannelCredentials()),
                                                    "switchboard", absl::Milliseconds(50), true);
    options.rate_limits = rate_limits.get();
  }
  auto metrics = MakePickerMetrics();
  ExtProcService service(&table, &options, metrics.get());
  grpc::ServerBuilder builder;
  builder.RegisterService(&service);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 100000);
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();

  std::vector<std::unique_ptr<ext_proc::ExternalProcessor::Stub>> stubs;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // A connection per channel.
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    stubs.push_back(ext_proc::ExternalProcessor::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials(), args)));
  }
  const std::vector<ext_proc::ProcessingRequest> messages = RequestMessages();
  Results results;
  int64_t started = 0;
  {
    Timers timers;
    const Clock::time_point t0 = Clock::now();
    const auto interval = std::chrono::duration<double>(1.0 / rps);
    const int64_t total = static_cast<int64_t>(rps * absl::ToDoubleSeconds(duration));
    // Starts are paced by the schedule, not by answers: a late start is made at once.
    for (; started < total; ++started) {
      const auto due = t0 + std::chrono::duration_cast<Clock::duration>(interval * started);
      if (Clock::now() < due) std::this_thread::sleep_until(due);
      new Request(stubs[started % stubs.size()].get(), &messages, hold, &timers, &results);
    }
    const double start_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    while (results.done.load() < started) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::printf("started %lld requests in %.2f s (%.0f/s; asked %.0f/s), %d failed, at most %d streams open\n",
                static_cast<long long>(started), start_seconds, started / start_seconds, rps, results.failed.load(),
                results.peak.load());
  }
  std::vector<double>& v = results.pick_us;
  std::sort(v.begin(), v.end());
  auto q = [&](double p) { return v.empty() ? 0 : v[static_cast<size_t>(p * (v.size() - 1))]; };
  std::printf(
      "added latency (request headers + body out -> pick back), us: p50 %.0f  p90 %.0f  p99 %.0f  "
      "p99.9 %.0f  max %.0f\n",
      q(0.5), q(0.9), q(0.99), q(0.999), v.empty() ? 0 : v.back());
  if (rate_limits != nullptr) {
    std::printf("rate limit calls failed or late: %.0f, refused: %.0f\n", metrics->rate_limit_errors->Value(),
                metrics->rate_limited->Value());
  }
  server->Shutdown();
  return results.failed.load() > 0 ? 1 : 0;
}

}  // namespace
}  // namespace switchboard::picker

int main(int argc, char** argv) { return switchboard::picker::Main(argc, argv); }
