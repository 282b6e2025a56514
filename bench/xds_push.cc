// xDS push latency: N ADS subscribers (SotW, EDS of one pool, as Envoy asks) on a real
// switchboard-controlplane, one pool of M endpoints reported by agents over the agent
// protocol. Each round changes one endpoint's state in a report and measures, for every
// subscriber, the time from sending that report to receiving the new assignment; also
// the control plane's CPU time over the rounds (/proc/PID/stat).
//
// usage: xds_push [--subscribers N] [--endpoints M] [--rounds R] [--channels C]
//                 [--xds-quiet D] [--xds-max-delay D]
// (docs/performance.md records a run.)
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
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
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

constexpr char kPool[] = "bench";
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

// One ADS stream subscribed to the pool's EDS, ACKing every response and noting when
// each arrived.
class XdsSubscriber {
 public:
  XdsSubscriber(std::shared_ptr<grpc::Channel> channel, int id) : stub_(AggregatedDiscoveryService::NewStub(channel)) {
    stream_ = stub_->StreamAggregatedResources(&context_);
    DiscoveryRequest request;
    request.mutable_node()->set_id(absl::StrCat("bench-", id));
    request.mutable_node()->set_user_agent_name("envoy");
    request.set_type_url(kEdsType);
    request.add_resource_names(kPool);
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
      ack.add_resource_names(kPool);
      ack.set_version_info(response.version_info());
      ack.set_response_nonce(response.nonce());
      if (!stream_->Write(ack)) return;
    }
  }

  std::unique_ptr<AggregatedDiscoveryService::Stub> stub_;
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

}  // namespace

int main(int argc, char** argv) {
  int subscribers = 1000, endpoints = 1000, rounds = 30, channels = 50;
  std::string quiet = "10ms", max_delay = "100ms";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--subscribers") {
      subscribers = std::stoi(value);
    } else if (flag == "--endpoints") {
      endpoints = std::stoi(value);
    } else if (flag == "--rounds") {
      rounds = std::stoi(value);
    } else if (flag == "--channels") {
      channels = std::stoi(value);
    } else if (flag == "--xds-quiet") {
      quiet = value;
    } else if (flag == "--xds-max-delay") {
      max_delay = value;
    } else {
      std::cerr << "xds_push: unknown flag " << flag << "\n";
      return 2;
    }
  }
  if (subscribers < 1 || endpoints < 1 || rounds < 1 || channels < 1) {
    std::cerr << "xds_push: every count must be at least 1\n";
    return 2;
  }
  using switchboard::testing::AgentClient;
  using switchboard::testing::Subprocess;
  auto cp = Subprocess::Start("switchboard-controlplane",  // From SWITCHBOARD_BIN_DIR (default build/bin).
                              {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "", "--insecure",
                               "--xds-quiet", quiet, "--xds-max-delay", max_delay});
  auto port = cp->WaitForPort("grpc listening on port ", absl::Seconds(30));
  if (!port.ok()) {
    std::cerr << "xds_push: " << port.status() << "\n";
    return 1;
  }
  const std::string target = absl::StrCat("127.0.0.1:", *port);

  // Agents: 100 endpoints per node, distinct IP literals.
  constexpr int kPerNode = 100;
  std::vector<std::unique_ptr<AgentClient>> agents;
  for (int first = 0; first < endpoints; first += kPerNode) {
    std::vector<switchboard::v1::EndpointInfo> infos;
    std::vector<switchboard::v1::EndpointReport> reports;
    for (int i = first; i < std::min(endpoints, first + kPerNode); ++i) {
      switchboard::v1::EndpointInfo info;
      info.set_address(absl::StrCat("10.", i / 65536, ".", (i / 256) % 256, ".", i % 256, ":8000"));
      info.set_engine(switchboard::v1::ENGINE_LLAMACPP);
      info.add_models(kPool);
      info.set_slots_total(4);
      info.set_capacity_hint(1);
      infos.push_back(info);
      switchboard::v1::EndpointReport report;
      report.set_address(info.address());
      report.set_state(switchboard::v1::ENDPOINT_STATE_READY);
      report.add_models(kPool);
      report.set_slots_total(4);
      reports.push_back(report);
    }
    agents.push_back(std::make_unique<AgentClient>(target, absl::StrCat("node-", first / kPerNode), infos, reports));
  }

  // Subscribers, spread over separate connections.
  std::vector<std::shared_ptr<grpc::Channel>> conns;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("switchboard.bench.connection", c);  // A distinct connection per channel.
    args.SetMaxReceiveMessageSize(64 << 20);
    conns.push_back(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }
  std::vector<std::unique_ptr<XdsSubscriber>> subs;
  for (int s = 0; s < subscribers; ++s) subs.push_back(std::make_unique<XdsSubscriber>(conns[s % channels], s));

  // Wait until every subscriber has an assignment and the pool has settled (no response
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
    std::cerr << "xds_push: not every subscriber got the pool within 120 s\n";
    return 1;
  }
  for (std::vector<int> before = counts();;) {
    absl::SleepFor(absl::Seconds(1));  // The benchmark's settle time, not synchronization.
    std::vector<int> now = counts();
    if (now == before) break;
    before = now;
  }

  std::printf("xds_push: rounds start\n");
  std::fflush(stdout);
  std::vector<absl::Duration> latencies;
  const absl::Duration cpu_before = CpuTime(cp->pid());
  const absl::Time wall_before = absl::Now();
  int lost = 0;
  for (int r = 0; r < rounds; ++r) {
    const std::vector<int> base = counts();
    const size_t agent = static_cast<size_t>(r) % agents.size();
    const absl::Time sent = absl::Now();
    agents[agent]->Update(static_cast<size_t>(r / static_cast<int>(agents.size())) % kPerNode,
                          [&](switchboard::v1::EndpointReport* report) {
                            report->set_state(report->state() == switchboard::v1::ENDPOINT_STATE_READY
                                                  ? switchboard::v1::ENDPOINT_STATE_DRAINING
                                                  : switchboard::v1::ENDPOINT_STATE_READY);
                          });
    deadline = absl::Now() + absl::Seconds(10);
    while (!all_received(base) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(2));
    for (size_t i = 0; i < subs.size(); ++i) {
      if (subs[i]->received() > base[i]) {
        latencies.push_back(subs[i]->last_at() - sent);
      } else {
        ++lost;
      }
    }
    absl::SleepFor(absl::Milliseconds(300));  // Let the round's pushes end before the next.
  }
  const absl::Duration cpu = CpuTime(cp->pid()) - cpu_before;
  const absl::Duration wall = absl::Now() - wall_before;
  if (latencies.empty()) {
    std::cerr << "xds_push: no push arrived\n";
    return 1;
  }
  std::printf(
      "subscribers=%d endpoints=%d rounds=%d xds-quiet=%s xds-max-delay=%s\n"
      "report-to-receipt p50=%.1f ms p99=%.1f ms max=%.1f ms (%zu samples, %d missing)\n"
      "control-plane CPU %.2f s over %.1f s wall (%.0f%% of one core), %.1f ms per round\n",
      subscribers, endpoints, rounds, quiet.c_str(), max_delay.c_str(),
      absl::ToDoubleMilliseconds(Percentile(latencies, 0.5)), absl::ToDoubleMilliseconds(Percentile(latencies, 0.99)),
      absl::ToDoubleMilliseconds(Percentile(latencies, 1.0)), latencies.size(), lost, absl::ToDoubleSeconds(cpu),
      absl::ToDoubleSeconds(wall), 100 * absl::ToDoubleSeconds(cpu) / absl::ToDoubleSeconds(wall),
      absl::ToDoubleMilliseconds(cpu) / rounds);
  subs.clear();
  agents.clear();
  return lost == 0 ? 0 : 1;
}
