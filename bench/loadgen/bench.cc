#include "bench/loadgen/bench.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/loadgen/clients.h"
#include "bench/loadgen/workload.h"
#include "common/net.h"
#include "nlohmann/json.hpp"

namespace switchboard::bench {
namespace {

struct Options {
  Workload workload;
  int subscribers = 100;
  bool subscriber_acks = false;
  double rate = 1;  // Reports per second per agent; 0: closed loop.
  absl::Duration duration = absl::Seconds(10);
  absl::Duration warmup = absl::Seconds(3);
  absl::Duration marker_interval = absl::Milliseconds(250);
  absl::Duration rss_every = absl::ZeroDuration();
  bool baseline = true;
  bool bare_markers_only = false;  // Else the bare server sends as many messages as the control plane did.
  bool history = true;
  std::string controlplane_bin;
  std::vector<std::string> controlplane_args;
  std::string self;
};

// A server process with its stdout read for the port line; stderr goes to a log file.
class Child {
 public:
  static std::unique_ptr<Child> Start(const std::string& binary, const std::vector<std::string>& args,
                                      const std::string& log_path) {
    int out[2];
    if (pipe(out) != 0) return nullptr;
    const pid_t pid = fork();
    if (pid < 0) return nullptr;
    if (pid == 0) {
      dup2(out[1], 1);
      const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log >= 0) dup2(log, 2);
      close(out[0]);
      close(out[1]);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(binary.c_str()));
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      std::perror(binary.c_str());
      _exit(127);
    }
    close(out[1]);
    auto child = std::unique_ptr<Child>(new Child(pid, out[0]));
    return child;
  }
  ~Child() {
    Stop();
    if (reader_.joinable()) reader_.join();
  }
  pid_t pid() const { return pid_; }
  // The port from "grpc listening on port N", or 0 after `timeout`.
  int WaitForPort(absl::Duration timeout) {
    MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return port_ != 0 || eof_; };
    mu_.AwaitWithTimeout(Condition(&ready), timeout);
    return port_;
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {  // Up to 10 s, then SIGKILL.
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = 0;
        return;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

 private:
  Child(pid_t pid, int fd) : pid_(pid) {
    reader_ = std::thread([this, fd] {
      FILE* in = fdopen(fd, "r");
      char line[512];
      const std::string prefix = "grpc listening on port ";
      while (in != nullptr && std::fgets(line, sizeof(line), in) != nullptr) {
        const std::string text(line);
        if (text.rfind(prefix, 0) == 0) {
          int port = 0;
          if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text.substr(prefix.size())), &port)) {
            MutexLock lock(&mu_);
            port_ = port;
          }
        }
      }
      if (in != nullptr) fclose(in);
      MutexLock lock(&mu_);
      eof_ = true;
    });
  }
  pid_t pid_;
  std::thread reader_;
  Mutex mu_;
  int port_ ABSL_GUARDED_BY(mu_) = 0;
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
};

// CPU time (user + system) of `pid`, from /proc/PID/stat.
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(text.substr(close + 2), ' ');
  if (fields.size() < 13) return 0;
  double utime = 0, stime = 0;
  if (!absl::SimpleAtod(fields[11], &utime) || !absl::SimpleAtod(fields[12], &stime)) return 0;
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Resident set size of `pid` in bytes (VmRSS from /proc/PID/status).
double RssBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      double kib = 0;
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (parts.size() >= 2 && absl::SimpleAtod(parts[1], &kib)) return kib * 1024;
    }
  }
  return 0;
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double PercentileMs(std::vector<absl::Duration> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return absl::ToDoubleMilliseconds(v[i]);
}

// Runs the clients against one server process and measures it.
nlohmann::json RunTarget(const std::string& name, const std::string& binary, const std::vector<std::string>& args,
                         const Options& o) {
  nlohmann::json r;
  r["target"] = name;
  char dir_template[] = "/tmp/switchboard-loadgen-XXXXXX";
  const char* dir = mkdtemp(dir_template);
  const std::string log = absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name, ".log");
  std::vector<std::string> full_args = args;
  // The control plane's history serves this run only: removed when it returns (a long
  // run writes hundreds of megabytes). The server's log stays, named in "log".
  std::optional<ScratchDatabase> db;
  if (name == "switchboard" && o.history) {
    db.emplace("switchboard-loadgen-history");
    full_args.push_back("--db");
    full_args.push_back(db->path());
    r["history_db"] = db->path();
  }
  std::unique_ptr<Child> child = Child::Start(binary, full_args, log);
  const int port = child ? child->WaitForPort(absl::Seconds(30)) : 0;
  if (port == 0) {
    r["error"] = absl::StrCat("did not start (", binary, "; its log: ", log, ")");
    return r;
  }
  const std::string target = absl::StrCat("127.0.0.1:", port);
  const double rss_idle = RssBytes(child->pid());

  StreamOutcomes agent_outcomes, subscriber_outcomes;
  MarkerBook book(o.subscribers);
  std::atomic<uint32_t> marker{0};
  const int n = o.workload.agents;
  std::vector<std::unique_ptr<AgentStream>> agents;
  agents.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    agents.push_back(std::make_unique<AgentStream>(i, o.workload, MakeDedicatedChannel(target), o.rate <= 0,
                                                   &agent_outcomes, &marker));
  }
  const absl::Time connect_deadline = absl::Now() + absl::Seconds(60) + absl::Milliseconds(10) * n;
  auto count_agents = [&] {
    return std::count_if(agents.begin(), agents.end(), [](const auto& a) { return a->hello_acked(); });
  };
  auto count_settled = [&] {  // Connected, or ended (refused).
    return std::count_if(agents.begin(), agents.end(), [](const auto& a) { return a->hello_acked() || a->ended(); });
  };
  while (count_settled() < n && absl::Now() < connect_deadline) absl::SleepFor(absl::Milliseconds(20));
  const int64_t agents_connected = count_agents();

  // Paced reports: agent i's reports are spread evenly over each interval.
  std::atomic<bool> stop_pacing{false};
  std::thread pacer;
  if (o.rate > 0) {
    pacer = std::thread([&] {
      const absl::Time start = absl::Now();
      const double per_second = o.rate * n;
      uint64_t sent = 0;
      while (!stop_pacing.load()) {
        const double due = absl::ToDoubleSeconds(absl::Now() - start) * per_second;
        for (; static_cast<double>(sent) < due; ++sent) agents[sent % static_cast<uint64_t>(n)]->Send();
        absl::SleepFor(absl::Milliseconds(1));  // The pacing tick.
      }
    });
  }

  std::vector<std::unique_ptr<SubscriberStream>> subs;
  subs.reserve(static_cast<size_t>(o.subscribers));
  for (int i = 0; i < o.subscribers; ++i) {
    subs.push_back(std::make_unique<SubscriberStream>(i, MakeDedicatedChannel(target), &subscriber_outcomes, &book,
                                                      o.subscriber_acks));
  }
  auto count_subs = [&] {
    return std::count_if(subs.begin(), subs.end(), [](const auto& s) { return s->received() > 0; });
  };
  const absl::Time sub_deadline = absl::Now() + absl::Seconds(60) + absl::Milliseconds(10) * o.subscribers;
  while (count_subs() < o.subscribers && absl::Now() < sub_deadline) absl::SleepFor(absl::Milliseconds(20));
  const int64_t subscribers_connected = count_subs();
  absl::SleepFor(o.warmup);

  auto acked = [&] {
    uint64_t sum = 0;
    for (const auto& a : agents) sum += a->acked();
    return sum;
  };
  auto pushes = [&] {
    int64_t sum = 0, bytes = 0;
    for (const auto& s : subs) {
      sum += s->received();
      bytes += s->bytes();
    }
    return std::make_pair(sum, bytes);
  };
  auto acks = [&] {
    int64_t sum = 0;
    for (const auto& s : subs) sum += s->acks();
    return sum;
  };
  auto overruns = [&] {
    uint64_t sum = 0;
    for (const auto& a : agents) sum += a->overruns();
    return sum;
  };
  const double cpu0 = CpuSeconds(child->pid()), self0 = SelfCpuSeconds();
  const uint64_t acked0 = acked(), overruns0 = overruns();
  const auto [pushes0, bytes0] = pushes();
  const int64_t acks0 = acks();
  const absl::Time t0 = absl::Now();
  nlohmann::json rss_samples = nlohmann::json::array();
  absl::Time next_marker = t0, next_rss = t0 + o.rss_every;
  while (absl::Now() < t0 + o.duration) {
    const absl::Time now = absl::Now();
    if (now >= next_marker && !agents.empty()) {
      marker.store(book.Issue());
      agents[0]->Send();
      next_marker += o.marker_interval;
    }
    if (o.rss_every > absl::ZeroDuration() && now >= next_rss) {
      rss_samples.push_back({absl::ToDoubleSeconds(now - t0), RssBytes(child->pid()) / (1 << 20)});
      next_rss += o.rss_every;
    }
    absl::SleepFor(std::min(next_marker, t0 + o.duration) - absl::Now());
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  const double cpu = CpuSeconds(child->pid()) - cpu0, self = SelfCpuSeconds() - self0;
  const uint64_t reports = acked() - acked0;
  const auto [pushes1, bytes1] = pushes();
  const int64_t acks1 = acks();
  const uint64_t window_overruns = overruns() - overruns0;
  // Late markers: give the last ones up to 3 s to arrive everywhere.
  const int issued = book.Summarize().issued;
  for (absl::Time grace = absl::Now() + absl::Seconds(3); absl::Now() < grace;) {
    if (book.Summarize().complete >= issued) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  const double rss = RssBytes(child->pid());
  const MarkerBook::Summary markers = book.Summarize();

  stop_pacing.store(true);
  if (pacer.joinable()) pacer.join();
  // The streams that ended before the run cancelled them (each stream knows whether it
  // did; an agent's end is only reported once it is cancelled).
  for (auto& a : agents) a->Cancel();
  for (auto& s : subs) s->Cancel();
  agent_outcomes.AwaitDone(n, absl::Seconds(30));
  subscriber_outcomes.AwaitDone(o.subscribers, absl::Seconds(30));
  const int64_t agent_rejects = agent_outcomes.rejects(), agent_errors = agent_outcomes.errors();
  const int64_t sub_errors = subscriber_outcomes.rejects() + subscriber_outcomes.errors();
  nlohmann::json ended = nlohmann::json::object();
  for (const auto& [code, entry] : agent_outcomes.Unexpected()) {
    ended[absl::StrCat("agent ", code)] = {{"streams", entry.first}, {"first_message", entry.second}};
  }
  for (const auto& [code, entry] : subscriber_outcomes.Unexpected()) {
    ended[absl::StrCat("subscriber ", code)] = {{"streams", entry.first}, {"first_message", entry.second}};
  }
  child->Stop();

  const double endpoints = static_cast<double>(n) * o.workload.endpoints_per_agent;
  r["agents_connected"] = agents_connected;
  r["subscribers_connected"] = subscribers_connected;
  r["seconds"] = seconds;
  r["reports_per_s"] = static_cast<double>(reports) / seconds;
  r["cpu_cores"] = cpu / seconds;
  r["cpu_us_per_report"] = reports > 0 ? 1e6 * cpu / static_cast<double>(reports) : -1;
  r["loadgen_cpu_cores"] = self / seconds;
  r["rss_idle_mib"] = rss_idle / (1 << 20);
  r["rss_mib"] = rss / (1 << 20);
  r["rss_bytes_per_endpoint"] = endpoints > 0 ? (rss - rss_idle) / endpoints : 0;
  r["markers_issued"] = markers.issued;
  r["markers_complete"] = markers.complete;
  r["push_to_last_p50_ms"] = PercentileMs(markers.to_last, 0.5);
  r["push_to_last_p99_ms"] = PercentileMs(markers.to_last, 0.99);
  r["push_to_last_max_ms"] = PercentileMs(markers.to_last, 1.0);
  r["push_to_first_p50_ms"] = PercentileMs(markers.to_first, 0.5);
  r["push_each_p50_ms"] = PercentileMs(markers.each, 0.5);
  r["push_each_p99_ms"] = PercentileMs(markers.each, 0.99);
  r["pushes_per_s"] = static_cast<double>(pushes1 - pushes0) / seconds;
  r["acks_per_s"] = static_cast<double>(acks1 - acks0) / seconds;
  r["push_bytes_avg"] =
      pushes1 > pushes0 ? static_cast<double>(bytes1 - bytes0) / static_cast<double>(pushes1 - pushes0) : 0;
  r["report_overruns"] = window_overruns;
  r["rejects"] = agent_rejects;
  r["errors"] = agent_errors + sub_errors;
  r["streams_ended_early"] = ended;
  if (!rss_samples.empty()) r["rss_samples_mib"] = rss_samples;
  r["log"] = log;
  return r;
}

void PrintTable(const nlohmann::json& out) {
  const nlohmann::json& sb = out["switchboard"];
  const bool bare = out.contains("bare");
  std::printf("%-26s %14s %14s %8s\n", "", "switchboard", bare ? "bare gRPC" : "", bare ? "ratio" : "");
  static const char* kRows[][2] = {
      {"agents_connected", "agents connected"},
      {"subscribers_connected", "subscribers connected"},
      {"reports_per_s", "accepted reports/s"},
      {"cpu_cores", "server CPU (cores)"},
      {"cpu_us_per_report", "server CPU us/report"},
      {"loadgen_cpu_cores", "loadgen CPU (cores)"},
      {"rss_mib", "server RSS MiB"},
      {"rss_bytes_per_endpoint", "RSS bytes/endpoint"},
      {"rss_over_bare_bytes_per_endpoint", "RSS over bare B/endpoint"},
      {"push_to_first_p50_ms", "to first sub p50 ms"},
      {"push_to_last_p50_ms", "to last sub p50 ms"},
      {"push_to_last_p99_ms", "to last sub p99 ms"},
      {"push_to_last_max_ms", "to last sub max ms"},
      {"push_each_p50_ms", "each delivery p50 ms"},
      {"push_each_p99_ms", "each delivery p99 ms"},
      {"markers_complete", "markers reaching all"},
      {"pushes_per_s", "pushes/s"},
      {"acks_per_s", "subscriber acks/s"},
      {"push_bytes_avg", "bytes per push"},
      {"report_overruns", "report overruns"},
      {"rejects", "rejects"},
      {"errors", "errors / disconnects"},
  };
  for (const auto& row : kRows) {
    const char* key = row[0];
    if (!sb.contains(key)) continue;
    std::string a = absl::StrFormat("%.1f", sb[key].get<double>()), b, ratio;
    if (bare && out["bare"].contains(key)) {
      b = absl::StrFormat("%.1f", out["bare"][key].get<double>());
      if (out["ratio"].contains(key) && !out["ratio"][key].is_null()) {
        ratio = absl::StrFormat("%.2fx", out["ratio"][key].get<double>());
      }
    }
    std::printf("%-26s %14s %14s %8s\n", row[1], a.c_str(), b.c_str(), ratio.c_str());
  }
  if (bare) {
    const double beat = out["config"]["bare_broadcasts_per_s"].get<double>();
    if (beat > 0) {
      std::printf(
          "(bare: each marker at once, and %.1f broadcasts a second in all: what each subscriber received "
          "from switchboard)\n",
          beat);
    } else {
      std::printf("(bare: broadcasts only when a marker arrives)\n");
    }
  }
  for (const char* side : {"switchboard", "bare"}) {
    if (!out.contains(side)) continue;
    for (const auto& [what, e] : out[side]["streams_ended_early"].items()) {
      std::printf("%s: %lld %s streams ended early (first: %s)\n", side,
                  static_cast<long long>(e["streams"].get<int64_t>()), what.c_str(),
                  e["first_message"].get<std::string>().c_str());
    }
  }
}

}  // namespace

int RunLoadgenBench(int argc, char** argv) {
  Options o;
  std::string duration = "10s", warmup = "3s", marker_interval = "250ms", rss_every = "0s";
  bool json = false, no_baseline = false, no_history = false;
  CLI::App app{
      "switchboard-loadgen bench: N simulated agents and M native subscribers over real gRPC streams against a "
      "real switchboard-controlplane (started here, loopback), then the same clients against a bare gRPC server; "
      "prints both and their ratio."};
  app.add_option("--agents", o.workload.agents, "simulated agents (one stream and connection each)")
      ->capture_default_str();
  app.add_option("--endpoints-per-agent", o.workload.endpoints_per_agent, "endpoints each agent reports")
      ->capture_default_str();
  app.add_option("--pools", o.workload.pools, "pools the endpoints are spread over (subscribers watch bench-0)")
      ->capture_default_str();
  app.add_option("--subscribers", o.subscribers, "native subscribers of pool bench-0 (one connection each)")
      ->capture_default_str();
  app.add_flag("--subscriber-acks", o.subscriber_acks,
               "subscribers ACK every assignment they read, as gateways do (default: they only read)");
  app.add_option("--rate", o.rate, "reports per second per agent; 0: closed loop (each agent as fast as it can)")
      ->capture_default_str();
  app.add_option("--change-probability", o.workload.change_probability,
                 "chance that an endpoint's load changes from one report to the next")
      ->capture_default_str();
  app.add_option("--duration", duration, "measured window")->capture_default_str();
  app.add_option("--warmup", warmup, "time between connecting and measuring")->capture_default_str();
  app.add_option("--marker-interval", marker_interval, "how often agent 0 sends a latency marker")
      ->capture_default_str();
  app.add_option("--rss-every", rss_every, "sample the server's RSS this often (soak runs; 0s: off)")
      ->capture_default_str();
  app.add_flag("--no-baseline", no_baseline, "skip the bare-gRPC server");
  app.add_flag("--bare-markers-only", o.bare_markers_only,
               "the bare server broadcasts only when a marker arrives (default: it also broadcasts on a steady "
               "beat, so that each subscriber receives as many messages a second as it did from the control plane)");
  app.add_flag("--no-history", no_history, "run the control plane without --db");
  app.add_option("--controlplane-bin", o.controlplane_bin,
                 "switchboard-controlplane to start (default: next to this binary)");
  app.add_option("--controlplane-arg", o.controlplane_args, "extra flag for the control plane (repeatable)")
      ->allow_extra_args(false);
  app.add_flag("--json", json, "print JSON instead of a table");
  CLI11_PARSE(app, argc, argv);
  for (auto [text, out] : {std::pair{&duration, &o.duration}, std::pair{&warmup, &o.warmup},
                           std::pair{&marker_interval, &o.marker_interval}, std::pair{&rss_every, &o.rss_every}}) {
    if (!absl::ParseDuration(*text, out) || *out < absl::ZeroDuration()) {
      std::cerr << "switchboard-loadgen bench: bad duration " << *text << "\n";
      return 2;
    }
  }
  if (o.workload.agents < 1 || o.workload.endpoints_per_agent < 1 || o.workload.pools < 1 || o.subscribers < 0 ||
      o.rate < 0 || o.marker_interval <= absl::ZeroDuration() || o.duration <= absl::ZeroDuration()) {
    std::cerr << "switchboard-loadgen bench: agents, endpoints, pools and intervals must be positive\n";
    return 2;
  }
  o.baseline = !no_baseline;
  o.history = !no_history;
  char self[4096];
  const ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0) {
    std::cerr << "switchboard-loadgen bench: cannot find its own binary\n";
    return 1;
  }
  o.self.assign(self, static_cast<size_t>(len));
  if (o.controlplane_bin.empty()) {
    o.controlplane_bin = o.self.substr(0, o.self.rfind('/') + 1) + "switchboard-controlplane";
  }
  // Thousands of connections: one descriptor each.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  signal(SIGPIPE, SIG_IGN);

  const int streams = o.workload.agents + o.subscribers + 16;
  std::vector<std::string> cp_args = {"--listen",
                                      "127.0.0.1:0",
                                      "--metrics-listen",
                                      "",
                                      "--insecure",
                                      "--max-streams-per-peer",
                                      absl::StrCat(streams),
                                      "--max-subscribers",
                                      absl::StrCat(streams),
                                      "--max-report-rate",
                                      "1000000",
                                      "--db",
                                      ""};
  if (o.history) cp_args.resize(cp_args.size() - 2);  // RunTarget adds --db with a fresh file.
  cp_args.insert(cp_args.end(), o.controlplane_args.begin(), o.controlplane_args.end());
  const std::vector<std::string> bare_args = {"bench-bare-server",
                                              "--agents",
                                              absl::StrCat(o.workload.agents),
                                              "--endpoints-per-agent",
                                              absl::StrCat(o.workload.endpoints_per_agent),
                                              "--pools",
                                              absl::StrCat(o.workload.pools)};

  nlohmann::json out;
  out["config"] = {{"agents", o.workload.agents},
                   {"endpoints_per_agent", o.workload.endpoints_per_agent},
                   {"pools", o.workload.pools},
                   {"subscribers", o.subscribers},
                   {"subscriber_acks", o.subscriber_acks},
                   {"rate_per_agent", o.rate},
                   {"closed_loop", o.rate <= 0},
                   {"change_probability", o.workload.change_probability},
                   {"duration_s", absl::ToDoubleSeconds(o.duration)},
                   {"marker_interval_ms", absl::ToDoubleMilliseconds(o.marker_interval)},
                   {"history", o.history},
                   {"controlplane_args", o.controlplane_args}};
  out["switchboard"] = RunTarget("switchboard", o.controlplane_bin, cp_args, o);
  if (o.baseline) {
    // The same bytes to the same subscribers: the bare broadcaster sends each subscriber as
    // many messages a second as the control plane did (each marker at once, and the
    // assignment again whenever that many have not gone out).
    std::vector<std::string> args = bare_args;
    const nlohmann::json& sb = out["switchboard"];
    double beat = 0;
    if (!o.bare_markers_only && sb.contains("pushes_per_s") && sb["subscribers_connected"].get<int64_t>() > 0) {
      beat = sb["pushes_per_s"].get<double>() / static_cast<double>(sb["subscribers_connected"].get<int64_t>());
    }
    out["config"]["bare_broadcasts_per_s"] = beat;
    if (beat > 0) {
      args.push_back("--broadcasts-per-second");
      args.push_back(absl::StrCat(beat));
    }
    out["bare"] = RunTarget("bare", o.self, args, o);
    nlohmann::json ratio = nlohmann::json::object();
    for (const auto& [key, value] : out["switchboard"].items()) {
      if (!value.is_number() || !out["bare"].contains(key) || !out["bare"][key].is_number()) continue;
      const double b = out["bare"][key].get<double>(), s = value.get<double>();
      ratio[key] = b > 0 && s >= 0 ? nlohmann::json(s / b) : nlohmann::json(nullptr);
    }
    out["ratio"] = ratio;
    // What the control plane keeps per endpoint beyond what gRPC itself holds for the same
    // connections and streams (the bare server keeps no state): its own live state.
    if (out["switchboard"].contains("rss_mib") && out["bare"].contains("rss_mib")) {
      const double endpoints = static_cast<double>(o.workload.agents) * o.workload.endpoints_per_agent;
      out["switchboard"]["rss_over_bare_bytes_per_endpoint"] =
          (out["switchboard"]["rss_mib"].get<double>() - out["bare"]["rss_mib"].get<double>()) * (1 << 20) / endpoints;
    }
  }
  const bool failed = out["switchboard"].contains("error") || (o.baseline && out["bare"].contains("error"));
  if (json) {
    std::cout << out.dump(2) << "\n";
  } else if (!failed) {
    PrintTable(out);
  }
  if (failed) {
    for (const char* side : {"switchboard", "bare"}) {
      if (out.contains(side) && out[side].contains("error")) {
        std::cerr << "switchboard-loadgen bench: " << side << " " << out[side]["error"].get<std::string>() << "\n";
      }
    }
    return 1;
  }
  return out["switchboard"]["agents_connected"].get<int64_t>() > 0 ? 0 : 1;
}

}  // namespace switchboard::bench
