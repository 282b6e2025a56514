// xDS push latency: N ADS subscribers (SotW, EDS of every pool, as Envoy asks) on a real
// switchboard-controlplane, M endpoints spread over P pools (one node per pool and 100
// endpoints at most per node, as a fleet serves a model per pool) reported by agents over
// the agent protocol. Each round changes one endpoint's state in a report and measures,
// for every subscriber, the time from sending that report to receiving the new
// assignment; also the server's CPU time over the rounds (/proc/PID/stat). Then the same
// clients against a bare gRPC server that broadcasts the same size of assignment from one
// thread (xds_bare_server.h), and the ratio of the two.
//
// usage: xds_push [--subscribers N] [--endpoints M] [--pools P] [--rounds R] [--channels C]
//                 [--xds-quiet D] [--xds-max-delay D] [--reconcile-coalesce D] [--no-baseline]
//                 [--controlplane-arg FLAG=VALUE ...]
// (docs/performance.md records runs.)
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>
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

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/xds_bare_server.h"
#include "common/mutex.h"
#include "common/net.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "tests/integration/harness.h"
#include "tests/interop/agent_client.h"

namespace {

using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;
using switchboard::Mutex;
using switchboard::MutexLock;

constexpr char kEdsType[] = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

// Control-plane CPU time so far (user + system), from /proc/PID/stat.
absl::Duration CpuTime(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  std::vector<std::string> fields;
  std::string field;
  for (size_t i = close + 2; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == ' ') {
      fields.push_back(field);
      field.clear();
    } else {
      field += text[i];
    }
  }
  // Fields after the command: state is [0], utime [11], stime [12] (in clock ticks).
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return absl::Seconds((std::stod(fields[11]) + std::stod(fields[12])) / ticks);
}

// One ADS stream subscribed to every pool's EDS (as Envoy, once it has the clusters),
// ACKing every response and noting when each arrived.
class XdsSubscriber {
 public:
  XdsSubscriber(std::shared_ptr<grpc::Channel> channel, int id, std::vector<std::string> pools)
      : stub_(AggregatedDiscoveryService::NewStub(channel)), pools_(std::move(pools)) {
    stream_ = stub_->StreamAggregatedResources(&context_);
    DiscoveryRequest request;
    request.mutable_node()->set_id(absl::StrCat("bench-", id));
    request.mutable_node()->set_user_agent_name("envoy");
    request.set_type_url(kEdsType);
    for (const std::string& pool : pools_) request.add_resource_names(pool);
    stream_->Write(request);
    thread_ = std::thread([this] { Run(); });
  }
  ~XdsSubscriber() {
    context_.TryCancel();
    thread_.join();
  }
  // Responses received, and when the last one came.
  int received() const {
    MutexLock lock(&mu_);
    return received_;
  }
  absl::Time last_at() const {
    MutexLock lock(&mu_);
    return last_at_;
  }

 private:
  void Run() {
    DiscoveryResponse response;
    while (stream_->Read(&response)) {
      const absl::Time now = absl::Now();
      {
        MutexLock lock(&mu_);
        ++received_;
        last_at_ = now;
      }
      DiscoveryRequest ack;
      ack.set_type_url(kEdsType);
      for (const std::string& pool : pools_) ack.add_resource_names(pool);
      ack.set_version_info(response.version_info());
      ack.set_response_nonce(response.nonce());
      if (!stream_->Write(ack)) return;
    }
  }

  std::unique_ptr<AggregatedDiscoveryService::Stub> stub_;
  const std::vector<std::string> pools_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<DiscoveryRequest, DiscoveryResponse>> stream_;
  mutable Mutex mu_;
  int received_ = 0;
  absl::Time last_at_;
  std::thread thread_;
};

absl::Duration Percentile(std::vector<absl::Duration> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

std::string PoolName(int pools, int pool) { return pools == 1 ? "bench" : absl::StrCat("bench-", pool); }

struct Options {
  int subscribers = 1000, endpoints = 1000, pools = 1, rounds = 30, channels = 50;
};

struct Result {
  absl::Duration p50, p99, max, last_p99;  // last_p99: of each round's last subscriber.
  size_t samples = 0;
  int missing = 0;
  absl::Duration cpu, wall;
};

// Runs the rounds against the server at `target` (process `pid`); nullopt on failure.
std::optional<Result> Measure(const std::string& target, pid_t pid, const Options& o) {
  using switchboard::testing::AgentClient;
  const int per_pool = std::max(1, o.endpoints / o.pools);
  const int per_node = std::min(100, per_pool);
  // Agents: node k serves pool k % pools; distinct IP literals.
  std::vector<std::unique_ptr<AgentClient>> agents;
  std::vector<int> node_sizes;
  int next_address = 0;
  for (int pool = 0; pool < o.pools; ++pool) {
    for (int first = 0; first < per_pool; first += per_node) {
      const std::string name = PoolName(o.pools, pool);
      std::vector<switchboard::v1::EndpointInfo> infos;
      std::vector<switchboard::v1::EndpointReport> reports;
      for (int j = first; j < std::min(per_pool, first + per_node); ++j) {
        const int i = next_address++;
        switchboard::v1::EndpointInfo info;
        info.set_address(absl::StrCat("10.", i / 65536, ".", (i / 256) % 256, ".", i % 256, ":8000"));
        info.set_engine(switchboard::v1::ENGINE_LLAMACPP);
        info.add_models(name);
        info.set_slots_total(4);
        info.set_capacity_hint(1);
        infos.push_back(info);
        switchboard::v1::EndpointReport report;
        report.set_address(info.address());
        report.set_state(switchboard::v1::ENDPOINT_STATE_READY);
        report.add_models(name);
        report.set_slots_total(4);
        reports.push_back(report);
      }
      // Node ids "node-K" with K % pools == pool: what the bare server reads the pool from.
      node_sizes.push_back(static_cast<int>(infos.size()));
      agents.push_back(std::make_unique<AgentClient>(target, absl::StrCat("node-", pool + o.pools * (first / per_node)),
                                                     infos, reports));
    }
  }
  std::vector<std::string> pool_names;
  for (int p = 0; p < o.pools; ++p) pool_names.push_back(PoolName(o.pools, p));

  // Subscribers, spread over separate connections.
  std::vector<std::shared_ptr<grpc::Channel>> conns;
  for (int c = 0; c < o.channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("switchboard.bench.connection", c);  // A distinct connection per channel.
    args.SetMaxReceiveMessageSize(64 << 20);
    conns.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }
  std::vector<std::unique_ptr<XdsSubscriber>> subs;
  for (int s = 0; s < o.subscribers; ++s) {
    subs.push_back(std::make_unique<XdsSubscriber>(conns[s % o.channels], s, pool_names));
  }

  // Wait until every subscriber has an assignment and the pools have settled (no response
  // for 1 s after the last).
  auto all_received = [&](const std::vector<int>& base) {
    for (size_t i = 0; i < subs.size(); ++i) {
      if (subs[i]->received() <= base[i]) return false;
    }
    return true;
  };
  auto counts = [&] {
    std::vector<int> c;
    for (const auto& s : subs) c.push_back(s->received());
    return c;
  };
  const std::vector<int> zero(subs.size(), 0);
  absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (!all_received(zero) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  if (!all_received(zero)) {
    std::cerr << "xds_push: not every subscriber got the pools within 120 s\n";
    return std::nullopt;
  }
  for (std::vector<int> before = counts();;) {
    absl::SleepFor(absl::Seconds(1));  // The benchmark's settle time, not synchronization.
    std::vector<int> now = counts();
    if (now == before) break;
    before = now;
  }

  std::printf("xds_push: rounds start\n");
  std::fflush(stdout);
  Result result;
  std::vector<absl::Duration> latencies, lasts;
  const absl::Duration cpu_before = CpuTime(pid);
  const absl::Time wall_before = absl::Now();
  for (int r = 0; r < o.rounds; ++r) {
    const std::vector<int> base = counts();
    const size_t agent = static_cast<size_t>(r) % agents.size();
    const size_t endpoint =
        static_cast<size_t>(r / static_cast<int>(agents.size())) % static_cast<size_t>(node_sizes[agent]);
    const absl::Time sent = absl::Now();
    agents[agent]->Update(endpoint, [&](switchboard::v1::EndpointReport* report) {
      report->set_state(report->state() == switchboard::v1::ENDPOINT_STATE_READY
                            ? switchboard::v1::ENDPOINT_STATE_DRAINING
                            : switchboard::v1::ENDPOINT_STATE_READY);
    });
    deadline = absl::Now() + absl::Seconds(10);
    while (!all_received(base) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(2));
    absl::Duration last = absl::ZeroDuration();
    for (size_t i = 0; i < subs.size(); ++i) {
      if (subs[i]->received() > base[i]) {
        latencies.push_back(subs[i]->last_at() - sent);
        last = std::max(last, latencies.back());
      } else {
        ++result.missing;
      }
    }
    lasts.push_back(last);
    absl::SleepFor(absl::Milliseconds(300));  // Let the round's pushes end before the next.
  }
  result.cpu = CpuTime(pid) - cpu_before;
  result.wall = absl::Now() - wall_before;
  subs.clear();
  agents.clear();
  if (latencies.empty()) {
    std::cerr << "xds_push: no push arrived\n";
    return std::nullopt;
  }
  result.p50 = Percentile(latencies, 0.5);
  result.p99 = Percentile(latencies, 0.99);
  result.max = Percentile(latencies, 1.0);
  result.last_p99 = Percentile(lasts, 0.99);
  result.samples = latencies.size();
  return result;
}

void Print(const char* what, const Result& r, int rounds) {
  std::printf(
      "%s: report-to-receipt p50=%.1f ms p99=%.1f ms max=%.1f ms, last subscriber p99=%.1f ms (%zu samples, %d "
      "missing)\n"
      "%s: server CPU %.2f s over %.1f s wall (%.0f%% of one core), %.1f ms per round\n",
      what, absl::ToDoubleMilliseconds(r.p50), absl::ToDoubleMilliseconds(r.p99), absl::ToDoubleMilliseconds(r.max),
      absl::ToDoubleMilliseconds(r.last_p99), r.samples, r.missing, what, absl::ToDoubleSeconds(r.cpu),
      absl::ToDoubleSeconds(r.wall), 100 * absl::ToDoubleSeconds(r.cpu) / absl::ToDoubleSeconds(r.wall),
      absl::ToDoubleMilliseconds(r.cpu) / rounds);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string quiet = "10ms", max_delay = "100ms", coalesce;
  std::vector<std::string> extra;  // --controlplane-arg, repeatable.
  bool baseline = true;
  if (argc == 4 && std::string(argv[1]) == "--bare-server") {  // The baseline's own process.
    return switchboard::bench::RunXdsBareServer(std::stoi(argv[2]), std::stoi(argv[3]));
  }
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i], value;
    if (flag == "--no-baseline") {
      baseline = false;
      continue;
    }
    if (const size_t eq = flag.find('='); eq != std::string::npos) {  // --flag=value
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      std::cerr << "xds_push: " << flag << " needs a value\n";
      return 2;
    }
    if (flag == "--subscribers") {
      o.subscribers = std::stoi(value);
    } else if (flag == "--endpoints") {
      o.endpoints = std::stoi(value);
    } else if (flag == "--pools") {
      o.pools = std::stoi(value);
    } else if (flag == "--rounds") {
      o.rounds = std::stoi(value);
    } else if (flag == "--channels") {
      o.channels = std::stoi(value);
    } else if (flag == "--xds-quiet") {
      quiet = value;
    } else if (flag == "--xds-max-delay") {
      max_delay = value;
    } else if (flag == "--reconcile-coalesce") {
      coalesce = value;
    } else if (flag == "--controlplane-arg") {
      extra.push_back(value);
    } else {
      std::cerr << "xds_push: unknown flag " << flag << "\n";
      return 2;
    }
  }
  if (o.subscribers < 1 || o.endpoints < 1 || o.rounds < 1 || o.channels < 1 || o.pools < 1 || o.pools > o.endpoints) {
    std::cerr << "xds_push: every count must be at least 1, and pools at most endpoints\n";
    return 2;
  }
  using switchboard::testing::Subprocess;
  std::vector<std::string> cp_args = {"--listen", "127.0.0.1:0", "--metrics-listen", "",    "--db",
                                      "",         "--insecure",  "--xds-quiet",      quiet, "--xds-max-delay",
                                      max_delay};
  if (!coalesce.empty()) cp_args.insert(cp_args.end(), {"--reconcile-coalesce", coalesce});
  cp_args.insert(cp_args.end(), extra.begin(), extra.end());
  std::optional<Result> cp_result;
  {
    auto cp = Subprocess::Start("switchboard-controlplane", cp_args);  // From SWITCHBOARD_BIN_DIR (default build/bin).
    auto port = cp->WaitForPort("grpc listening on port ", absl::Seconds(30));
    if (!port.ok()) {
      std::cerr << "xds_push: " << port.status() << "\n";
      return 1;
    }
    cp_result = Measure(absl::StrCat("127.0.0.1:", *port), cp->pid(), o);
  }
  if (!cp_result) return 1;
  std::printf("subscribers=%d endpoints=%d pools=%d rounds=%d xds-quiet=%s xds-max-delay=%s reconcile-coalesce=%s\n",
              o.subscribers, o.endpoints, o.pools, o.rounds, quiet.c_str(), max_delay.c_str(),
              coalesce.empty() ? "default" : coalesce.c_str());
  Print("control plane", *cp_result, o.rounds);
  if (!baseline) return cp_result->missing == 0 ? 0 : 1;

  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return 1;
  self[n] = '\0';
  std::optional<Result> bare_result;
  {
    auto bare = Subprocess::Start(
        self, {"--bare-server", std::to_string(o.pools), std::to_string(std::max(1, o.endpoints / o.pools))});
    auto port = bare->WaitForPort("grpc listening on port ", absl::Seconds(30));
    if (!port.ok()) {
      std::cerr << "xds_push: bare server: " << port.status() << "\n";
      return 1;
    }
    bare_result = Measure(absl::StrCat("127.0.0.1:", *port), bare->pid(), o);
  }
  if (!bare_result) return 1;
  Print("bare broadcast", *bare_result, o.rounds);
  std::printf("ratio (control plane / bare): p50 %.2fx, p99 %.2fx, last subscriber p99 %.2fx, CPU per round %.2fx\n",
              absl::FDivDuration(cp_result->p50, bare_result->p50),
              absl::FDivDuration(cp_result->p99, bare_result->p99),
              absl::FDivDuration(cp_result->last_p99, bare_result->last_p99),
              absl::FDivDuration(cp_result->cpu, bare_result->cpu));
  return cp_result->missing == 0 && bare_result->missing == 0 ? 0 : 1;
}
