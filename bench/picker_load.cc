// switchboard-picker under an open-loop load, against a bare ext_proc server in the same
// run. Requests are due at a fixed rate (Envoy does not wait for one to finish before
// sending the next), each on its own ext_proc stream as Envoy opens one per HTTP request,
// and each stays open for as long as its server takes to answer, so that `--rps` x `--hold`
// streams are open at once (5,000/s x 0.2 s = 1,000). Per request: the request headers and
// a 2 KB JSON body (full duplex, two chunks) go out at once; the added latency is the time
// from the request's due time (not from when the generator got round to it: a late start
// counts against the server) until the pick (the answer to the headers) is back; the body
// comes back; after the hold the response headers go out and their answer comes back.
//
//   build/bench/picker_load --rps 1000,2000,5000 --hold 200ms --duration 5s
//
// Each server runs in a process of its own (this binary with --serve), so the generator
// and the server share the machine only as Envoy and the picker would:
//  - picker: switchboard-picker's ext_proc service, pool table and metrics, with its
//    server settings (ConfigureExtProcServer), over a pool of --endpoints endpoints;
//  - bare: bench/bare_ext_proc.h, the same protocol and messages without any picking.
// For every rate, each server in turn (--servers); --rounds repeats the whole sequence.
// A row per run: requests started and picks per second, the streams open at the peak, the
// added latency's percentiles, and the CPU (utime + stime from /proc) each request cost
// the server process and this process. --target drives a running server instead
// (switchboard-picker, say; --target-pid for its CPU).
//
// With --ratelimit HOST:PORT (a switchboard-controlplane with a `rate_limits:` block whose
// domain is `switchboard`) the picker asks its Rate Limit Service before each pick, as
// switchboard-picker --ratelimit-domain switchboard does; compare runs with and without.
//
// Exits 1 when requests failed.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "bench/bare_ext_proc.h"
#include "bench/picker_workload.h"
#include "grpcpp/grpcpp.h"
#include "picker/ext_proc_service.h"
#include "picker/rate_limit.h"

extern char** environ;

namespace switchboard::picker {
namespace {

using Clock = std::chrono::steady_clock;

v1::Assignment Pool(int n) { return bench::PickerBenchPool(n, /*slots_total=*/256, /*varied_load=*/false); }

// ---- The server process (--serve) ----

// Serves until its standard input closes (the generator exits or is done with it).
int Serve(const std::string& kind, int endpoints, const std::string& ratelimit) {
  KeepFreedMemoryForStreams();  // As switchboard-picker does; the bare server too, to compare like with like.
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
  ExtProcService picker(&table, &options, metrics.get());
  bench::BareExtProcService bare("10.0.0.1:8000,10.0.0.2:8000,10.0.0.3:8000");
  grpc::ServerBuilder builder;
  if (kind == "picker") {
    builder.RegisterService(&picker);
  } else {
    builder.RegisterService(&bare);
  }
  ConfigureExtProcServer(&builder);
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) return 1;
  std::printf("port %d\n", port);
  std::fflush(stdout);
  char buffer[64];
  while (read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  if (rate_limits != nullptr) {
    std::fprintf(stderr, "rate limit calls failed or late: %.0f, refused: %.0f\n", metrics->rate_limit_errors->Value(),
                 metrics->rate_limited->Value());
  }
  return 0;
}

// A server process this generator started: its pid, its port, and the pipe whose closing
// stops it.
struct Child {
  std::string name;
  pid_t pid = -1;
  int stdin_fd = -1;
  std::string address;
};

bool SpawnServer(const std::string& kind, int endpoints, const std::string& ratelimit, Child* child) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return false;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  std::vector<std::string> args = {"/proc/self/exe", "--serve", kind, "--endpoints", std::to_string(endpoints)};
  if (!ratelimit.empty()) args.insert(args.end(), {"--ratelimit", ratelimit});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  close(out[1]);
  if (rc != 0) return false;
  FILE* from = fdopen(out[0], "r");
  int port = 0;
  const bool read_port = from != nullptr && std::fscanf(from, "port %d", &port) == 1;
  if (from != nullptr) std::fclose(from);
  child->name = kind;
  child->pid = pid;
  child->stdin_fd = in[1];
  child->address = absl::StrCat("127.0.0.1:", port);
  return read_port && port > 0;
}

// Only for a server SpawnServer started (a --target is left running).
void StopServer(Child* child) {
  if (child->stdin_fd < 0) return;
  close(child->stdin_fd);
  waitpid(child->pid, nullptr, 0);
}

// utime + stime of a process so far, in seconds (-1 when it cannot be read).
double CpuSeconds(pid_t pid) {
  std::ifstream f(pid > 0 ? absl::StrCat("/proc/", pid, "/stat") : std::string("/proc/self/stat"));
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::vector<absl::string_view> fields = absl::StrSplit(absl::string_view(stat).substr(paren + 2), ' ');
  double utime = 0, stime = 0;  // Fields 14 and 15 of proc(5); fields[0] is field 3.
  if (fields.size() < 13 || !absl::SimpleAtod(fields[11], &utime) || !absl::SimpleAtod(fields[12], &stime)) return -1;
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string one, five, fifteen;
  f >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen);
}

// ---- The generator ----

class Request;

// Starts requests when they are due and ends their holds, on the thread that calls Run:
// one wakeup serves every start and release that is due by then.
class Scheduler {
 public:
  // Called from gRPC's threads: `r` is released at `at`. Every hold has the same length,
  // so the queue stays in time order.
  void Hold(Clock::time_point at, Request* r) {
    std::lock_guard<std::mutex> lock(mu_);
    holds_.emplace_back(at, r);
  }
  // Pops the holds due by `now` into `out`; the time of the next one (or max) is returned.
  Clock::time_point TakeDue(Clock::time_point now, std::vector<Request*>* out) {
    std::lock_guard<std::mutex> lock(mu_);
    while (!holds_.empty() && holds_.front().first <= now) {
      out->push_back(holds_.front().second);
      holds_.pop_front();
    }
    return holds_.empty() ? Clock::time_point::max() : holds_.front().first;
  }

 private:
  std::mutex mu_;
  std::deque<std::pair<Clock::time_point, Request*>> holds_;
};

struct Results {
  explicit Results(size_t n) : pick_us(n, -1) {}
  std::vector<double> pick_us;  // By request; each slot written by its own request only.
  std::atomic<Clock::rep> last_pick{0};
  std::atomic<int> open{0}, peak{0}, failed{0};
  std::atomic<int64_t> done{0};
};

// One request's stream, as Envoy's ext_proc filter drives it.
class Request final : public grpc::ClientBidiReactor<ext_proc::ProcessingRequest, ext_proc::ProcessingResponse> {
 public:
  Request(ext_proc::ExternalProcessor::Stub* stub, const std::vector<ext_proc::ProcessingRequest>* messages,
          size_t index, Clock::time_point due, Clock::duration hold, Scheduler* scheduler, Results* results)
      : messages_(messages), index_(index), due_(due), hold_(hold), scheduler_(scheduler), results_(results) {
    const int open = ++results_->open;
    int peak = results_->peak.load();
    while (open > peak && !results_->peak.compare_exchange_weak(peak, open)) {
    }
    stub->async()->Process(&context_, this);
    AddHold();  // Released once the hold is over (Release, on the scheduler's thread).
    StartWrite(&(*messages_)[0]);
    StartRead(&response_);
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return;
    if (++written_ < 3) {
      StartWrite(&(*messages_)[written_]);
    } else if (written_ == 3 && (steps_.fetch_or(kBodyWritten) & kHoldOver) != 0) {
      SendResponseHeaders();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    ++read_;
    if (read_ == 1) {
      const Clock::time_point now = Clock::now();
      if (!response_.has_request_headers()) failed_ = true;
      results_->pick_us[index_] = std::chrono::duration<double, std::micro>(now - due_).count();
      Clock::rep last = results_->last_pick.load();
      while (now.time_since_epoch().count() > last &&
             !results_->last_pick.compare_exchange_weak(last, now.time_since_epoch().count())) {
      }
      StartRead(&response_);
    } else if (read_ == 2) {  // The body handed back: the upstream answers after the hold.
      scheduler_->Hold(Clock::now() + hold_, this);
    } else {
      StartWritesDone();
    }
  }

  // The hold is over (scheduler thread): the response headers go out once the body has.
  void Release() {
    if ((steps_.fetch_or(kHoldOver) & kBodyWritten) != 0) SendResponseHeaders();
    RemoveHold();
  }

  void OnDone(const grpc::Status& s) override {
    if (!s.ok() || failed_ || read_ < 3) ++results_->failed;
    --results_->open;
    ++results_->done;
    delete this;
  }

 private:
  static constexpr int kBodyWritten = 1, kHoldOver = 2;

  void SendResponseHeaders() {
    StartWrite(&(*messages_)[3]);
    StartRead(&response_);
  }

  const std::vector<ext_proc::ProcessingRequest>* const messages_;
  const size_t index_;
  const Clock::time_point due_;
  const Clock::duration hold_;
  Scheduler* const scheduler_;
  Results* const results_;
  grpc::ClientContext context_;
  ext_proc::ProcessingResponse response_;
  int written_ = 0;  // Write reactions only (writes are one at a time).
  int read_ = 0;     // Read reactions only (reads are one at a time).
  bool failed_ = false;
  std::atomic<int> steps_{0};  // kBodyWritten | kHoldOver: whoever completes the pair sends.
};

struct RunOptions {
  double rps = 0;
  Clock::duration hold{}, duration{}, warmup{};
};

// One run against one server; prints its row.
bool Run(const std::string& name, const std::vector<std::unique_ptr<ext_proc::ExternalProcessor::Stub>>& stubs,
         pid_t server_pid, const std::vector<ext_proc::ProcessingRequest>& messages, const RunOptions& o) {
  const auto interval = std::chrono::duration<double>(1.0 / o.rps);
  const auto total_time = o.warmup + o.duration;
  const size_t total = static_cast<size_t>(o.rps * std::chrono::duration<double>(total_time).count());
  const size_t warm = static_cast<size_t>(o.rps * std::chrono::duration<double>(o.warmup).count());
  Results results(total);
  Scheduler scheduler;
  const double server_cpu0 = CpuSeconds(server_pid), client_cpu0 = CpuSeconds(0);
  const Clock::time_point t0 = Clock::now();
  auto due = [&](size_t i) { return t0 + std::chrono::duration_cast<Clock::duration>(interval * i); };
  Clock::duration max_lag{};
  Clock::time_point last_start = t0;
  std::vector<Request*> released;
  size_t started = 0;
  while (started < total || results.done.load() < static_cast<int64_t>(total)) {
    const Clock::time_point now = Clock::now();
    for (; started < total && due(started) <= now; ++started) {
      max_lag = std::max(max_lag, now - due(started));
      last_start = now;
      new Request(stubs[started % stubs.size()].get(), &messages, started, due(started), o.hold, &scheduler, &results);
    }
    released.clear();
    const Clock::time_point next_release = scheduler.TakeDue(now, &released);
    for (Request* r : released) r->Release();
    Clock::time_point next = std::min(next_release, now + std::chrono::milliseconds(2));
    if (started < total) next = std::min(next, due(started));
    std::this_thread::sleep_until(next);
  }
  const double server_cpu = CpuSeconds(server_pid) - server_cpu0, client_cpu = CpuSeconds(0) - client_cpu0;
  const double picks_seconds =
      std::chrono::duration<double>(Clock::time_point(Clock::duration(results.last_pick.load())) - t0).count();

  std::vector<double> v;
  size_t picks = 0;
  for (size_t i = 0; i < total; ++i) {
    if (results.pick_us[i] < 0) continue;
    ++picks;
    if (i >= warm) v.push_back(results.pick_us[i] / 1000);
  }
  std::sort(v.begin(), v.end());
  auto q = [&](double p) { return v.empty() ? 0 : v[static_cast<size_t>(p * (v.size() - 1))]; };
  std::printf("%-7s %6.0f %7.0f %7.0f %6d %8.2f %7.2f %7.2f %7.2f %8.2f %6.1f %7.0f %7.0f %6d\n", name.c_str(), o.rps,
              total / std::chrono::duration<double>(last_start - t0 + interval).count(),
              picks_seconds > 0 ? picks / picks_seconds : 0, results.peak.load(), q(0.5), q(0.9), q(0.99), q(0.999),
              v.empty() ? 0 : v.back(), std::chrono::duration<double, std::milli>(max_lag).count(),
              server_pid > 0 && server_cpu >= 0 ? server_cpu / total * 1e6 : -1, client_cpu / total * 1e6,
              results.failed.load());
  std::fflush(stdout);
  return results.failed.load() == 0;
}

std::vector<std::unique_ptr<ext_proc::ExternalProcessor::Stub>> Stubs(const std::string& address, int channels) {
  std::vector<std::unique_ptr<ext_proc::ExternalProcessor::Stub>> stubs;
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // A connection per channel.
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    // Connected before the first run, so that no request waits for a connection.
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) return {};
    stubs.push_back(ext_proc::ExternalProcessor::NewStub(channel));
  }
  return stubs;
}

int Main(int argc, char** argv) {
  std::string rps_text = "1000,2000,5000", servers_text = "picker,bare";
  std::string hold_text = "200ms", duration_text = "5s", warmup_text = "1s";
  int endpoints = 8, channels = 4, rounds = 1, target_pid = 0;
  std::string ratelimit, serve, target;
  CLI::App app{
      "switchboard-picker's added latency under an open-loop load, against a bare ext_proc server "
      "(see the file's comment)"};
  app.add_option("--rps", rps_text, "requests due per second; a comma-separated list runs each")->capture_default_str();
  app.add_option("--servers", servers_text, "which servers, in turn, at each rate: picker, bare")
      ->capture_default_str();
  app.add_option("--hold", hold_text, "how long each request's stream stays open after its pick (its server's answer)")
      ->capture_default_str();
  app.add_option("--duration", duration_text, "how long requests are started, after the warm-up")
      ->capture_default_str();
  app.add_option("--warmup", warmup_text, "requests due in this first stretch are not in the percentiles")
      ->capture_default_str();
  app.add_option("--rounds", rounds, "repeat the whole sequence this many times")->capture_default_str();
  app.add_option("--endpoints", endpoints, "endpoints in the picker's pool")->capture_default_str();
  app.add_option("--channels", channels, "HTTP/2 connections from the gateway to the server")->capture_default_str();
  app.add_option("--ratelimit", ratelimit,
                 "a control plane's HOST:PORT: the picker checks its Rate Limit Service before each pick");
  app.add_option("--target", target, "HOST:PORT of a running ext_proc server to load instead of --servers");
  app.add_option("--target-pid", target_pid, "the --target server's pid, for its CPU per request");
  app.add_option("--serve", serve, "run as the server process: picker or bare (the generator starts these)")
      ->check(CLI::IsMember({"picker", "bare"}));
  CLI11_PARSE(app, argc, argv);
  // The picker's release builds turn Abseil's deadlock detector off (picker/main.cc); so do
  // both processes here, whatever the build type, to measure what a release build does.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (!serve.empty()) return Serve(serve, endpoints, ratelimit);

  absl::Duration hold, duration, warmup;
  std::vector<double> rates;
  for (absl::string_view r : absl::StrSplit(rps_text, ',', absl::SkipWhitespace())) {
    double rate = 0;
    rates.push_back(absl::SimpleAtod(r, &rate) ? rate : -1);
  }
  if (!absl::ParseDuration(hold_text, &hold) || !absl::ParseDuration(duration_text, &duration) ||
      !absl::ParseDuration(warmup_text, &warmup) || duration <= absl::ZeroDuration() || rates.empty() ||
      std::any_of(rates.begin(), rates.end(), [](double r) { return r <= 0; }) || channels < 1) {
    std::fprintf(stderr, "picker_load: bad --rps, --hold, --duration, --warmup or --channels\n");
    return 2;
  }
  std::vector<Child> children;
  if (target.empty()) {
    for (absl::string_view s : absl::StrSplit(servers_text, ',', absl::SkipWhitespace())) {
      Child c;
      if ((s != "picker" && s != "bare") || !SpawnServer(std::string(s), endpoints, ratelimit, &c)) {
        std::fprintf(stderr, "picker_load: cannot start server '%s' (want picker or bare)\n", std::string(s).c_str());
        for (Child& started : children) StopServer(&started);
        return 2;
      }
      children.push_back(c);
    }
  } else {
    children.push_back(Child{"target", target_pid, -1, target});
  }
  std::vector<std::vector<std::unique_ptr<ext_proc::ExternalProcessor::Stub>>> stubs;
  for (const Child& c : children) {
    stubs.push_back(Stubs(c.address, channels));
    if (stubs.back().empty()) {
      std::fprintf(stderr, "picker_load: cannot connect to %s (%s)\n", c.address.c_str(), c.name.c_str());
      for (Child& started : children) StopServer(&started);
      return 2;
    }
  }

  const std::vector<ext_proc::ProcessingRequest> messages = bench::PickerRequestMessages();
  std::printf("load average %s; %d endpoints, %d connections, hold %s, %s per run after a %s warm-up\n",
              LoadAverage().c_str(), endpoints, channels, hold_text.c_str(), duration_text.c_str(),
              warmup_text.c_str());
  std::printf(
      "added latency: request headers + 2 KB body due -> pick back, ms; CPU: utime + stime per request, us\n"
      "server  asked started   picks  open     p50     p90     p99   p99.9      max   lag  srvCPU  genCPU failed\n");
  bool ok = true;
  for (int round = 0; round < rounds; ++round) {
    for (double rate : rates) {
      for (size_t i = 0; i < children.size(); ++i) {
        RunOptions o;
        o.rps = rate;
        o.hold = absl::ToChronoNanoseconds(hold);
        o.duration = absl::ToChronoNanoseconds(duration);
        o.warmup = absl::ToChronoNanoseconds(warmup);
        ok = Run(children[i].name, stubs[i], children[i].pid, messages, o) && ok;
      }
    }
  }
  std::printf("load average %s\n", LoadAverage().c_str());
  stubs.clear();
  for (Child& c : children) StopServer(&c);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace switchboard::picker

int main(int argc, char** argv) { return switchboard::picker::Main(argc, argv); }
