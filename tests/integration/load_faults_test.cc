// Load faults against the real control plane binary over loopback: a subscriber that
// stops reading, an agent flapping its connection, a thundering herd of reconnecting
// agents, and ten thousand malformed or hostile agent messages. The agents here are
// in-process clients of the real AgentService protocol (the real agent needs a probed
// inference server per endpoint; a thousand of them do not fit in a test).
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/mutex.h"
#include "common/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "switchboard/v1/admin.grpc.pb.h"
#include "switchboard/v1/agent.grpc.pb.h"
#include "switchboard/v1/discovery.grpc.pb.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

using ::testing::HasSubstr;

// What the kernel says a process used: CPU (user + system) and resident memory.
struct ProcUsage {
  double cpu_seconds = 0;
  int64_t rss_bytes = 0;
};

ProcUsage ReadProcUsage(pid_t pid) {
  ProcUsage usage;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start at "state", field 3.
  std::istringstream fields(content.substr(content.rfind(')') + 2));
  std::vector<std::string> f((std::istream_iterator<std::string>(fields)), std::istream_iterator<std::string>());
  if (f.size() > 12) {
    usage.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) usage.rss_bytes = std::stoll(line.substr(6)) * 1024;
  }
  return usage;
}

// A channel of its own (its own TCP connection), so that streams spread over several.
std::shared_ptr<grpc::Channel> NewChannel(const std::string& target, int index) {
  grpc::ChannelArguments args;
  args.SetInt("switchboard.test.channel_index", index);
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

// One agent connection speaking AgentService.Connect as the real agent does: a Hello,
// then Reports, each answered by an Ack; a refused message ends the stream with a status.
class FakeAgent {
 public:
  explicit FakeAgent(v1::AgentService::Stub* stub) : stub_(stub) {}
  ~FakeAgent() { Cancel(); }

  // Opens a new stream (ending any previous one abruptly).
  void Open() {
    Cancel();
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    stream_ = stub_->Connect(context_.get());
  }
  // Sends `message` and waits for its Ack: OK, or the status the control plane ended the
  // stream with.
  grpc::Status Send(const v1::AgentMessage& message) {
    if (stream_ == nullptr) Open();
    v1::ControlMessage reply;
    if (stream_->Write(message)) {
      while (stream_->Read(&reply)) {
        if (reply.has_ack()) return grpc::Status::OK;
      }
    }
    grpc::Status status = stream_->Finish();
    stream_.reset();
    return status.ok() ? grpc::Status(grpc::StatusCode::UNKNOWN, "stream ended without an ack") : status;
  }
  grpc::Status Hello(const v1::Hello& hello) {
    v1::AgentMessage m;
    *m.mutable_hello() = hello;
    return Send(m);
  }
  grpc::Status Report(const v1::Report& report) {
    v1::AgentMessage m;
    *m.mutable_report() = report;
    return Send(m);
  }
  // Ends the stream as a crashed agent or a broken connection does.
  void Cancel() {
    if (stream_ != nullptr) {
      context_->TryCancel();
      stream_->Finish();
      stream_.reset();
    }
  }
  // Ends the stream as an agent that closes its side (without Goodbye: it comes back).
  grpc::Status Close() {
    if (stream_ == nullptr) return grpc::Status::OK;
    stream_->WritesDone();
    v1::ControlMessage reply;
    while (stream_->Read(&reply)) {
    }
    grpc::Status status = stream_->Finish();
    stream_.reset();
    return status;
  }

 private:
  v1::AgentService::Stub* const stub_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControlMessage>> stream_;
};

v1::Hello MakeAgentHello(const std::string& node_id, const std::vector<std::string>& addresses,
                         const std::string& model, uint32_t slots) {
  v1::Hello hello;
  hello.set_node_id(node_id);
  hello.set_agent_version("load-faults-test");
  for (const std::string& address : addresses) {
    v1::EndpointInfo* ep = hello.add_endpoints();
    ep->set_address(address);
    ep->set_engine(v1::ENGINE_LLAMACPP);
    if (!model.empty()) ep->add_models(model);
    ep->set_slots_total(slots);
  }
  return hello;
}

// A report of every endpoint of `hello` READY with `busy` slots busy.
v1::Report MakeAgentReport(const v1::Hello& hello, uint64_t sequence, uint32_t busy) {
  v1::Report report;
  report.set_sequence(sequence);
  for (const v1::EndpointInfo& info : hello.endpoints()) {
    v1::EndpointReport* ep = report.add_endpoints();
    ep->set_address(info.address());
    ep->set_engine(info.engine());
    *ep->mutable_models() = info.models();
    ep->set_state(v1::ENDPOINT_STATE_READY);
    ep->set_slots_total(info.slots_total());
    ep->set_slots_busy(busy);
    ep->set_tokens_per_second(10.0 * busy);
  }
  return report;
}

class LoadFaultsTest : public ::testing::Test {
 protected:
  // Starts the control plane with `extra` flags. Its log is kept to errors: the hostile
  // test alone makes it log ten thousand rejections.
  // With `log_file`, its stderr goes there, at level warning.
  void StartControlPlane(std::vector<std::string> extra = {}, const std::string& log_file = "") {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("load_faults_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::vector<std::string> args = {"--listen",    "127.0.0.1:0", "--metrics-listen",
                                     "127.0.0.1:0", "--db",        (dir_ / "h.db").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    setenv("SWITCHBOARD_LOG_LEVEL", log_file.empty() ? "error" : "warning", 1);
    if (log_file.empty()) {
      cp_ = Subprocess::Start("switchboard-controlplane", args);
    } else {
      cp_ = Subprocess::Start(
          "/bin/sh", {"-c", absl::StrCat("exec ", BinDir(), "/switchboard-controlplane ",
                                         absl::StrJoin(WithTransportDefaults("switchboard-controlplane", args), " "),
                                         " 2>", log_file)});
    }
    unsetenv("SWITCHBOARD_LOG_LEVEL");
    auto port = cp_->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(port.ok()) << port.status();
    addr_ = absl::StrCat("127.0.0.1:", *port);
    channel_ = NewChannel(addr_, 0);
    agents_ = v1::AgentService::NewStub(channel_);
    admin_ = v1::AdminService::NewStub(channel_);
  }

  std::vector<v1::Node> ListNodes() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::ListNodesResponse response;
    grpc::Status s = admin_->ListNodes(&ctx, v1::ListNodesRequest(), &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {response.nodes().begin(), response.nodes().end()};
  }

  int ConnectedNodes() {
    int n = 0;
    for (const v1::Node& node : ListNodes()) n += node.connected() ? 1 : 0;
    return n;
  }

  std::filesystem::path dir_;
  std::unique_ptr<Subprocess> cp_;
  std::string addr_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

// A subscriber that opens its stream, asks for pools and then never reads: the control
// plane keeps at most one assignment in flight for it (latest-wins), so its memory stays
// bounded however many versions pass, and a reading subscriber sees every change as
// promptly as without it.
TEST_F(LoadFaultsTest, SubscriberThatStopsReadingCostsNoBacklog) {
  // No duty bound: the rounds follow each other at once, and what is measured is the
  // backlog, not how often a pass over this large pool may run (under a sanitizer a
  // pass takes long enough for the bound to space the rounds by seconds).
  StartControlPlane({"--max-report-rate", "1000", "--reconcile-max-duty", "1"});
  // Large assignments make a backlog visible: 200 endpoints each carrying the node's 32
  // labels of 100 bytes come to about 700 KB per version.
  v1::Hello hello = MakeAgentHello("big", {}, "m", 1000);
  for (int i = 0; i < 200; ++i) {
    v1::EndpointInfo* ep = hello.add_endpoints();
    ep->set_address(absl::StrCat("10.0.", i / 100, ".", i % 100, ":8000"));
    ep->set_engine(v1::ENGINE_LLAMACPP);
    ep->add_models("m");
    ep->set_slots_total(1000);
  }
  for (int i = 0; i < 32; ++i) (*hello.mutable_labels())[absl::StrCat("label-", i)] = std::string(100, 'a' + i % 26);
  FakeAgent agent(agents_.get());
  ASSERT_TRUE(agent.Hello(hello).ok());
  uint64_t sequence = 0;
  // Each round's report makes a new version: endpoint slots_free encodes the round.
  auto report_round = [&](uint32_t round) { return agent.Report(MakeAgentReport(hello, ++sequence, round)); };
  ASSERT_TRUE(report_round(0).ok());
  Subscriber reader(addr_, {"m"});
  auto shows_round = [](uint32_t round) {
    return [round](const v1::Assignment& a) {
      return a.endpoints_size() == 200 && a.endpoints(0).slots_free() == 1000 - round;
    };
  };
  v1::Assignment first;
  ASSERT_TRUE(reader.WaitFor("m", shows_round(0), Scaled(absl::Seconds(20)), &first));
  const size_t assignment_bytes = first.ByteSizeLong();
  ASSERT_GT(assignment_bytes, 500u * 1000);

  // Rounds until the reader sees each one, timed: first without, then with stalled
  // subscribers.
  auto run_rounds = [&](uint32_t from, uint32_t to, std::vector<double>* latencies_ms) {
    for (uint32_t round = from; round < to; ++round) {
      const absl::Time sent = absl::Now();
      ASSERT_TRUE(report_round(round).ok());
      ASSERT_TRUE(reader.WaitFor("m", shows_round(round), Scaled(absl::Seconds(10)))) << "round " << round;
      latencies_ms->push_back(absl::ToDoubleMilliseconds(absl::Now() - sent));
    }
  };
  std::vector<double> before_ms;
  run_rounds(1, 11, &before_ms);

  constexpr int kStalled = 8;
  // Each on a connection of its own, as separate gateways are.
  std::vector<std::unique_ptr<v1::DiscoveryService::Stub>> discovery;
  std::vector<std::unique_ptr<grpc::ClientContext>> stalled_contexts;
  std::vector<std::unique_ptr<grpc::ClientReaderWriter<v1::SubscribeRequest, v1::Assignment>>> stalled;
  for (int i = 0; i < kStalled; ++i) {
    discovery.push_back(v1::DiscoveryService::NewStub(NewChannel(addr_, 50 + i)));
    stalled_contexts.push_back(std::make_unique<grpc::ClientContext>());
    stalled.push_back(discovery.back()->Subscribe(stalled_contexts.back().get()));
    v1::SubscribeRequest request;
    request.set_subscriber_id(absl::StrCat("stalled-", i));
    request.add_pools("m");
    ASSERT_TRUE(stalled.back()->Write(request));
  }
  const ProcUsage start = ReadProcUsage(cp_->pid());
  constexpr uint32_t kRounds = 60;
  std::vector<double> during_ms;
  run_rounds(11, 11 + kRounds, &during_ms);
  const ProcUsage end = ReadProcUsage(cp_->pid());

  // Queuing every version for every stalled subscriber would hold kStalled * kRounds
  // assignments (about 340 MB); latest-wins holds at most a couple per subscriber, plus
  // what the transport buffers.
  const double backlog_bytes = static_cast<double>(kStalled) * kRounds * assignment_bytes;
  const double grown_bytes = static_cast<double>(end.rss_bytes - start.rss_bytes);
  // Not under ASan: its quarantine keeps freed memory resident by design.
  if (!SanitizerBuild()) {
    EXPECT_LT(grown_bytes, backlog_bytes / 4) << "RSS grew by " << grown_bytes / 1e6 << " MB";
  }
  std::sort(before_ms.begin(), before_ms.end());
  std::sort(during_ms.begin(), during_ms.end());
  const double median_before = before_ms[before_ms.size() / 2];
  const double median_during = during_ms[during_ms.size() / 2];
  std::cerr << "report-to-reader latency, median: " << median_before << " ms alone, " << median_during << " ms with "
            << kStalled << " stalled subscribers (max " << during_ms.back() << " ms); RSS " << start.rss_bytes / 1e6
            << " -> " << end.rss_bytes / 1e6 << " MB; assignment " << assignment_bytes / 1e3 << " KB\n";
  // Generous: a shared machine is noisy, while a reader waiting behind stalled writes
  // would take seconds (or never see the round).
  EXPECT_LT(median_during, std::max(4 * median_before, median_before + 250));

  // A stalled subscriber that reads again skips to the newest version: it receives far
  // fewer assignments than were published, and the last is the newest.
  v1::Assignment a;
  int received = 0;
  while (stalled[0]->Read(&a)) {
    ++received;
    if (a.endpoints_size() == 200 && a.endpoints(0).slots_free() == 1000 - (10 + kRounds)) break;
  }
  EXPECT_EQ(a.endpoints(0).slots_free(), 1000 - (10 + kRounds)) << "the newest version arrives";
  EXPECT_LT(received, static_cast<int>(kRounds) / 2) << "intermediate versions were skipped";
  for (size_t i = 0; i < stalled.size(); ++i) stalled_contexts[i]->TryCancel();
  for (auto& s : stalled) s->Finish();
}

// An agent whose connection flaps (100 times, faster than the 100 a minute the control
// plane must survive), alternately closing cleanly and vanishing: the control plane stays
// up, uses bounded CPU, tracks no stale streams, and ends with the node connected and its
// last report applied; a steady agent beside it is untouched.
TEST_F(LoadFaultsTest, FlappingAgentEndsInTheRightState) {
  StartControlPlane();
  const v1::Hello steady_hello = MakeAgentHello("steady", {"10.1.0.1:8000"}, "m", 4);
  FakeAgent steady(agents_.get());
  ASSERT_TRUE(steady.Hello(steady_hello).ok());
  ASSERT_TRUE(steady.Report(MakeAgentReport(steady_hello, 1, 1)).ok());
  Subscriber subscriber(addr_, {"m"});
  ASSERT_TRUE(subscriber.WaitFor(
      "m", [](const v1::Assignment& a) { return a.endpoints_size() == 1 && a.endpoints(0).weight() > 0; },
      Scaled(absl::Seconds(20))));

  const v1::Hello flapper_hello = MakeAgentHello("flapper", {"10.1.0.2:8000"}, "m", 4);
  auto channel = NewChannel(addr_, 1);
  auto stub = v1::AgentService::NewStub(channel);
  FakeAgent flapper(stub.get());
  const ProcUsage start = ReadProcUsage(cp_->pid());
  const absl::Time started = absl::Now();
  constexpr int kFlaps = 100;
  int refused_while_old_stream_open = 0;
  for (int flap = 0; flap < kFlaps; ++flap) {
    flapper.Open();
    grpc::Status s = flapper.Hello(flapper_hello);
    // After a vanished connection the control plane may not have seen the old stream
    // end yet: the node id is still taken, and the agent retries, as the real one does.
    while (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
      ++refused_while_old_stream_open;
      ASSERT_LT(refused_while_old_stream_open, 10000);
      s = flapper.Hello(flapper_hello);
    }
    ASSERT_TRUE(s.ok()) << flap << ": " << s.error_message();
    ASSERT_TRUE(flapper.Report(MakeAgentReport(flapper_hello, 1, flap % 4)).ok());
    ASSERT_TRUE(flapper.Report(MakeAgentReport(flapper_hello, 2, (flap + 1) % 5)).ok());
    if (flap + 1 == kFlaps) break;  // The last connection stays up.
    if (flap % 2 == 0) {
      EXPECT_TRUE(flapper.Close().ok());
    } else {
      flapper.Cancel();
    }
  }
  const double wall_seconds = absl::ToDoubleSeconds(absl::Now() - started);
  const ProcUsage end = ReadProcUsage(cp_->pid());
  const double cpu_seconds = end.cpu_seconds - start.cpu_seconds;
  std::cerr << kFlaps << " flaps in " << wall_seconds << " s, control plane CPU " << cpu_seconds << " s, "
            << refused_while_old_stream_open << " Hellos refused while the old stream was open\n";
  // Bounded: well under a core for the flaps' duration (each flap costs a Hello, two
  // reports and a reconcile).
  EXPECT_LT(cpu_seconds, std::max(absl::ToDoubleSeconds(Scaled(absl::Seconds(2))), wall_seconds));

  // Final state: both nodes connected, the flapper's last report (busy 100 % 5 = 0 of 4)
  // in the assignment, and the steady agent's endpoint as it was.
  EXPECT_TRUE(WaitFor([&] { return ConnectedNodes() == 2; }, Scaled(absl::Seconds(10))));
  v1::Assignment last;
  EXPECT_TRUE(subscriber.WaitFor(
      "m",
      [](const v1::Assignment& a) {
        if (a.endpoints_size() != 2) return false;
        for (const v1::AssignedEndpoint& ep : a.endpoints()) {
          if (ep.node_id() == "flapper" && (ep.slots_free() != 4 || ep.weight() == 0)) return false;
          if (ep.node_id() == "steady" && (ep.slots_free() != 3 || ep.weight() == 0)) return false;
        }
        return true;
      },
      Scaled(absl::Seconds(10)), &last))
      << last.DebugString();
  for (const v1::Node& node : ListNodes()) {
    EXPECT_TRUE(node.connected()) << node.node_id();
    EXPECT_EQ(node.last_sequence(), node.node_id() == "flapper" ? 2u : 1u) << node.node_id();
  }
  // The steady stream still works.
  EXPECT_TRUE(steady.Report(MakeAgentReport(steady_hello, 2, 2)).ok());
  auto [code, out] = RunSbctl(addr_, "status");
  EXPECT_EQ(code, 0) << out;
}

// A thousand agents connected, then every connection lost at once and every agent
// reconnecting at the same moment (a control-plane network blip): no crash, bounded CPU,
// and the final state has every node connected with its new report.
TEST_F(LoadFaultsTest, ThunderingHerdOfReconnectingAgents) {
  // All agents come from 127.0.0.1 here; a fleet's come from a thousand addresses.
  StartControlPlane({"--max-streams-per-peer", "5000"});
  // A sanitizer build runs each reconnect several times slower: a smaller herd there.
  const int kAgents = SanitizerBuild() ? 200 : 1000;
  constexpr int kChannels = 8;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::AgentService::Stub>> stubs;
  for (int i = 0; i < kChannels; ++i) {
    channels.push_back(NewChannel(addr_, 100 + i));
    stubs.push_back(v1::AgentService::NewStub(channels.back()));
  }
  std::vector<v1::Hello> hellos;
  std::vector<std::unique_ptr<FakeAgent>> agents;
  for (int i = 0; i < kAgents; ++i) {
    hellos.push_back(
        MakeAgentHello(absl::StrCat("herd-", i), {absl::StrCat("10.2.", i / 250, ".", i % 250, ":8000")}, "herd", 4));
    agents.push_back(std::make_unique<FakeAgent>(stubs[i % kChannels].get()));
  }
  // Every agent runs on its own thread, as a fleet's agents run on their own hosts.
  std::atomic<int> failures{0};
  std::atomic<int> refused{0};
  auto run_all = [&](const std::function<void(int)>& body) {
    std::vector<std::thread> threads;
    Mutex start_mu;  // A barrier: every thread starts once all are ready.
    int ready = 0;
    for (int i = 0; i < kAgents; ++i) {
      threads.emplace_back([&, i] {
        {
          MutexLock lock(&start_mu);
          ++ready;
          auto all_ready = [&] { return ready == kAgents; };
          start_mu.Await(Condition(&all_ready));
        }
        body(i);
      });
    }
    for (auto& t : threads) t.join();
  };
  auto connect = [&](int i, uint32_t busy) {
    grpc::Status s = agents[i]->Hello(hellos[i]);
    std::mt19937 rng(i);
    for (int attempt = 0; s.error_code() == grpc::StatusCode::ALREADY_EXISTS && attempt < 200; ++attempt) {
      // The old stream is not seen closed yet: back off with jitter, as the real agent.
      ++refused;
      std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 20));
      s = agents[i]->Hello(hellos[i]);
    }
    if (!s.ok() || !agents[i]->Report(MakeAgentReport(hellos[i], 1, busy)).ok()) ++failures;
  };
  run_all([&](int i) { connect(i, 0); });
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(WaitFor([&] { return ConnectedNodes() == kAgents; }, Scaled(absl::Seconds(30))));
  Subscriber subscriber(addr_, {"herd"});
  ASSERT_TRUE(subscriber.WaitFor(
      "herd", [&](const v1::Assignment& a) { return a.endpoints_size() == kAgents; }, Scaled(absl::Seconds(30))));

  const ProcUsage start = ReadProcUsage(cp_->pid());
  const absl::Time started = absl::Now();
  run_all([&](int i) {
    agents[i]->Cancel();
    connect(i, 1);
  });
  EXPECT_EQ(failures.load(), 0);
  v1::Assignment last;
  const bool converged = subscriber.WaitFor(
      "herd",
      [&](const v1::Assignment& a) {
        if (a.endpoints_size() != kAgents) return false;
        for (const v1::AssignedEndpoint& ep : a.endpoints()) {
          if (ep.slots_free() != 3 || ep.weight() == 0) return false;
        }
        return true;
      },
      Scaled(absl::Seconds(60)), &last);
  const double wall_seconds = absl::ToDoubleSeconds(absl::Now() - started);
  const ProcUsage end = ReadProcUsage(cp_->pid());
  EXPECT_TRUE(converged) << last.endpoints_size() << " endpoints";
  const double cpu_seconds = end.cpu_seconds - start.cpu_seconds;
  std::cerr << kAgents << " agents reconnected at once: converged in " << wall_seconds << " s, control plane CPU "
            << cpu_seconds << " s, RSS " << end.rss_bytes / 1e6 << " MB, " << refused.load()
            << " Hellos refused while the old stream was open\n";
  EXPECT_LT(cpu_seconds, absl::ToDoubleSeconds(Scaled(absl::Seconds(10))))
      << "bounded: a few milliseconds per reconnect, not a storm";
  std::vector<v1::Node> nodes = ListNodes();
  EXPECT_EQ(nodes.size(), static_cast<size_t>(kAgents));
  for (const v1::Node& node : nodes) {
    EXPECT_TRUE(node.connected()) << node.node_id();
    EXPECT_EQ(node.last_sequence(), 1u) << node.node_id();
  }
  auto [code, out] = RunSbctl(addr_, "status");
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("herd"));
  // Agents leave at once too.
  run_all([&](int i) { agents[i]->Cancel(); });
  EXPECT_TRUE(WaitFor([&] { return ConnectedNodes() == 0; }, Scaled(absl::Seconds(30))));
}

// One hostile case: messages the control plane accepts first (`setup`), then the one it
// must refuse with one of `codes`.
struct HostileCase {
  std::string kind;
  std::vector<v1::AgentMessage> setup;
  v1::AgentMessage message;
  std::vector<grpc::StatusCode> codes;
};

v1::AgentMessage HelloMessage(const v1::Hello& hello) {
  v1::AgentMessage m;
  *m.mutable_hello() = hello;
  return m;
}

v1::AgentMessage ReportMessage(const v1::Report& report) {
  v1::AgentMessage m;
  *m.mutable_report() = report;
  return m;
}

// Text of `n` random code points, control characters included (valid UTF-8: the wire
// format demands it of strings, so a client library cannot send less).
std::string RandomText(std::mt19937& rng, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t cp = rng() % 4 == 0 ? rng() % 0x20 : 0x20 + rng() % 0x2000;
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }
  out.push_back('\x01');  // At least one control character.
  return out;
}

// The `index`th hostile case for the agent `node_id` (whose Hello is `hello`), from a
// deterministic stream of kinds and values. `victim` is a connected node's id.
HostileCase MakeHostileCase(int index, const v1::Hello& hello, const std::string& victim) {
  std::mt19937 rng(index);
  constexpr auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  HostileCase c;
  c.codes = {kInvalid};
  const v1::AgentMessage hello_message = HelloMessage(hello);
  v1::Report report = MakeAgentReport(hello, 1, 1);
  for (v1::EndpointReport& ep : *report.mutable_endpoints()) ep.add_models("m");  // Would join the pool.
  v1::EndpointReport* ep = report.mutable_endpoints(0);
  const double kNonFinite[] = {std::nan(""), std::numeric_limits<double>::infinity(),
                               -std::numeric_limits<double>::infinity(), -1.0};
  const double bad_number = kNonFinite[rng() % 4];
  v1::Hello h = hello;
  switch (index % 17) {
    case 0:
      c.kind = "random bytes in the node id";
      h.set_node_id(RandomText(rng, 1 + rng() % 40));
      c.message = HelloMessage(h);
      return c;
    case 1:
      c.kind = "huge strings in the Hello";
      if (rng() % 2 == 0) {
        h.set_node_id(std::string(300 + rng() % 100000, 'n'));
      } else {
        (*h.mutable_labels())["k"] = std::string(257 + rng() % 100000, 'v');
      }
      c.message = HelloMessage(h);
      return c;
    case 2:
      c.kind = "random bytes in an endpoint address";
      h.mutable_endpoints(0)->set_address(RandomText(rng, 1 + rng() % 30));
      c.message = HelloMessage(h);
      return c;
    case 3:
      c.kind = "impossible endpoint and GPU counts";
      if (rng() % 2 == 0) {
        for (int i = 0; i < 300; ++i)
          h.add_endpoints()->set_address(absl::StrCat("10.8.", i / 200, ".", i % 200, ":1"));
        c.codes = {grpc::StatusCode::RESOURCE_EXHAUSTED};
      } else {
        for (int i = 0; i < 100; ++i) h.add_gpus()->set_uuid(absl::StrCat("GPU-", i));
      }
      c.message = HelloMessage(h);
      return c;
    case 4:
      c.kind = "node-id collision";
      h.set_node_id(victim);
      c.message = HelloMessage(h);
      c.codes = {grpc::StatusCode::ALREADY_EXISTS};
      return c;
    case 5:
      c.kind = "messages out of protocol order";
      switch (rng() % 4) {
        case 0:
          c.message = ReportMessage(report);  // Report before Hello.
          break;
        case 1:
          c.message.mutable_goodbye()->set_reason("bye");  // Goodbye before Hello.
          break;
        case 2:
          break;  // An empty message.
        default:
          c.setup = {hello_message};
          c.message = hello_message;  // A second Hello.
      }
      return c;
    case 6:
      c.kind = "NaN, infinite or negative numbers";
      c.setup = {hello_message};
      switch (rng() % 6) {
        case 0:
          ep->set_kv_cache_usage(bad_number);
          break;
        case 1:
          ep->set_ttft_p95_seconds(bad_number);
          break;
        case 2:
          ep->set_tokens_per_second(bad_number);
          break;
        case 3:
          ep->set_e2e_p50_seconds(bad_number);
          break;
        case 4:
          ep->set_prefill_tokens_per_second(bad_number);
          break;
        default:
          ep->set_slot_tokens_per_second(bad_number);
      }
      c.message = ReportMessage(report);
      return c;
    case 7:
      c.kind = "negative counts (as a client's signed -N arrives in an unsigned field)";
      c.setup = {hello_message};
      switch (rng() % 4) {
        case 0:
          ep->set_slots_total(static_cast<uint32_t>(-static_cast<int32_t>(1 + rng() % 100)));
          break;
        case 1:
          ep->set_queue_depth(static_cast<uint32_t>(-static_cast<int32_t>(1 + rng() % 100)));
          break;
        case 2:
          ep->set_checks_total(1);
          ep->set_check_failures_total(static_cast<uint64_t>(-static_cast<int64_t>(1 + rng() % 100)));
          break;
        default:
          ep->mutable_probe_latency()->set_seconds(-static_cast<int64_t>(1 + rng() % 100));
      }
      c.message = ReportMessage(report);
      return c;
    case 8: {
      c.kind = "out-of-order sequence";
      // An accepted report without a model (it joins no pool), then an older sequence.
      v1::Report first = MakeAgentReport(hello, 5 + rng() % 100, 0);
      c.setup = {hello_message, ReportMessage(first)};
      report.set_sequence(rng() % (first.sequence() + 1));
      c.message = ReportMessage(report);
      return c;
    }
    case 9:
      c.kind = "impossible slot counts";
      c.setup = {hello_message};
      if (rng() % 2 == 0) {
        ep->set_slots_busy(ep->slots_total() + 1 + rng() % 1000);
      } else {
        ep->set_slots_total(65537 + rng() % 1000000);
      }
      c.message = ReportMessage(report);
      return c;
    case 10:
      c.kind = "undeclared endpoint or GPU";
      c.setup = {hello_message};
      if (rng() % 2 == 0) {
        ep->set_address(absl::StrCat("10.7.0.", rng() % 250, ":8000"));
      } else {
        v1::GpuSample* gpu = report.add_gpus();
        gpu->set_uuid(RandomText(rng, 8));
      }
      c.message = ReportMessage(report);
      return c;
    case 11:
      c.kind = "huge strings in a Report";
      c.setup = {hello_message};
      if (rng() % 2 == 0) {
        ep->set_probe_error(std::string(4097 + rng() % 100000, 'e'));
      } else {
        ep->add_models(std::string(257 + rng() % 10000, 'm'));
      }
      c.message = ReportMessage(report);
      return c;
    case 12:
      c.kind = "random bytes in a model id";
      c.setup = {hello_message};
      ep->add_models(RandomText(rng, 1 + rng() % 40));
      c.message = ReportMessage(report);
      return c;
    case 13:
      c.kind = "GPU figures out of range";
      h.add_gpus()->set_uuid("GPU-h");
      h.mutable_gpus(0)->set_vram_total_bytes(1 << 20);
      c.setup = {HelloMessage(h)};
      {
        v1::GpuSample* gpu = report.add_gpus();
        gpu->set_uuid("GPU-h");
        if (rng() % 2 == 0) {
          gpu->set_vram_used_bytes((1 << 20) + 1 + rng() % 1000);
        } else {
          gpu->set_utilization(rng() % 2 == 0 ? bad_number : 1.5);
        }
      }
      c.message = ReportMessage(report);
      return c;
    case 15:
      c.kind = "random bytes (not UTF-8) in a string field";
      // Protobuf's parser refuses such a message before Switchboard sees it.
      {
        std::string bytes = RandomText(rng, 4);
        for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>(0x80 | rng() % 0x80));
        if (rng() % 2 == 0) {
          h.set_node_id(bytes);
        } else {
          h.mutable_endpoints(0)->add_models(bytes);
        }
      }
      c.message = HelloMessage(h);
      return c;
    case 14:
      c.kind = "control characters in text operators read";
      if (rng() % 2 == 0) {
        h.set_agent_version(RandomText(rng, 10));
      } else {
        h.add_gpus()->set_uuid("GPU-x");
        h.mutable_gpus(0)->set_name(RandomText(rng, 10));
      }
      c.message = HelloMessage(h);
      return c;
    default:
      c.kind = "a message over the size limit";
      // Only every 16th of these (they cost a few megabytes each); the rest are too
      // many models for one endpoint.
      if ((index / 17) % 16 == 0) {
        h.set_agent_version(std::string(5 << 20, 'x'));
        c.codes = {grpc::StatusCode::RESOURCE_EXHAUSTED};
      } else {
        for (int i = 0; i < 65; ++i) h.mutable_endpoints(0)->add_models(absl::StrCat("m", i));
      }
      c.message = HelloMessage(h);
      return c;
  }
}

// A flood of malformed agent messages (a node id that is not UTF-8: protobuf logs an
// error of its own for each one it parses) is counted one by one in the metric but logged
// in a bounded number of lines: one per peer host (and per protobuf source line) per 10 s.
TEST_F(LoadFaultsTest, MalformedMessageFloodLogsABoundedNumberOfLines) {
  const std::string log = (std::filesystem::path(::testing::TempDir()) / "load_faults_flood.log").string();
  StartControlPlane({}, log);
  auto metrics_port = cp_->WaitForPort("metrics listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
  auto rejected = [&] {
    auto [rc, text] = RunToExit("/usr/bin/curl", {"-s", absl::StrCat("http://127.0.0.1:", *metrics_port, "/metrics")},
                                absl::Seconds(30));
    const std::string series = "switchboard_agent_messages_total{kind=\"any\",result=\"invalid_argument\"} ";
    const size_t at = text.find(series);
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + series.size()));
  };
  const double before = rejected();
  ASSERT_GE(before, 0);

  google::protobuf::LogHandler* log_handler = google::protobuf::SetLogHandler(nullptr);  // Serializing logs too.
  constexpr int kMessages = 1000;
  v1::AgentMessage bad;
  bad.mutable_hello()->set_node_id("bad-\xff\xfe-node");
  bad.mutable_hello()->set_agent_version("load-faults-test");
  int invalid = 0;
  FakeAgent agent(agents_.get());
  for (int i = 0; i < kMessages; ++i) {
    agent.Open();
    invalid += agent.Send(bad).error_code() == grpc::StatusCode::INVALID_ARGUMENT ? 1 : 0;
  }
  google::protobuf::SetLogHandler(log_handler);
  EXPECT_EQ(invalid, kMessages);
  EXPECT_TRUE(WaitFor([&] { return rejected() - before == kMessages; }, Scaled(absl::Seconds(20))))
      << "rejected: " << rejected() - before;

  cp_->Signal(SIGTERM);
  cp_->Wait();
  std::ifstream in(log);
  int rejected_lines = 0, protobuf_lines = 0, lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    rejected_lines += absl::StrContains(line, "rejected message from") ? 1 : 0;
    protobuf_lines += absl::StrContains(line, "UTF-8") && !absl::StrContains(line, "rejected message") ? 1 : 0;
  }
  // However long the flood took on a loaded machine: a line per 10 s at most, plus one.
  const int bound = 2 + static_cast<int>(absl::ToDoubleSeconds(Scaled(absl::Seconds(60))) / 10);
  EXPECT_GE(rejected_lines, 1);
  EXPECT_LE(rejected_lines, bound);
  EXPECT_GE(protobuf_lines, 1) << "protobuf's own complaint is logged (rate limited), not lost";
  EXPECT_LE(protobuf_lines, bound);
  EXPECT_LE(lines, 2 * bound + 10);
}

// Ten thousand malformed or hostile messages, on four connections at once: each is
// refused with a clear error, the control plane keeps serving, and nothing else changes
// (the honest node, its pool's version, what subscribers received).
TEST_F(LoadFaultsTest, HostileMessagesAreRefusedAndChangeNothingElse) {
  StartControlPlane({"--max-report-rate", "100000"});
  const v1::Hello honest_hello = MakeAgentHello("honest", {"10.3.0.1:8000"}, "m", 4);
  FakeAgent honest(agents_.get());
  ASSERT_TRUE(honest.Hello(honest_hello).ok());
  ASSERT_TRUE(honest.Report(MakeAgentReport(honest_hello, 1, 1)).ok());
  Subscriber subscriber(addr_, {"m"});
  v1::Assignment before;
  ASSERT_TRUE(subscriber.WaitFor(
      "m", [](const v1::Assignment& a) { return a.endpoints_size() == 1 && a.endpoints(0).weight() > 0; },
      Scaled(absl::Seconds(20)), &before));
  const std::vector<v1::Node> nodes_before = ListNodes();
  ASSERT_EQ(nodes_before.size(), 1u);
  // The honest agent keeps reporting the same load throughout (so its endpoint never
  // goes stale), every 250 ms, as a real agent would.
  Notification stop_honest;
  std::atomic<uint64_t> honest_sequence{1};
  std::atomic<int> honest_failures{0};
  std::thread honest_reporter([&] {
    while (!stop_honest.WaitForNotificationWithTimeout(absl::Milliseconds(250))) {
      if (!honest.Report(MakeAgentReport(honest_hello, ++honest_sequence, 1)).ok()) ++honest_failures;
    }
  });

  // Serializing the cases with bytes that are not UTF-8 makes protobuf log an error each.
  google::protobuf::LogHandler* log_handler = google::protobuf::SetLogHandler(nullptr);
  const int kMessages = SanitizerBuild() ? 2000 : 10000;
  constexpr int kWorkers = 4;
  std::atomic<int> next{0};
  std::atomic<int> refused{0};
  Mutex mu;
  std::vector<std::string> failures;  // Guarded by mu.
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      auto channel = NewChannel(addr_, 200 + w);
      auto stub = v1::AgentService::NewStub(channel);
      // Each worker's agent has a node id of its own: the only node these messages may touch.
      const v1::Hello hello = MakeAgentHello(absl::StrCat("mallory-", w), {absl::StrCat("10.4.0.", w, ":8000")}, "", 4);
      FakeAgent agent(stub.get());
      for (int i = next++; i < kMessages; i = next++) {
        const HostileCase c = MakeHostileCase(i, hello, "honest");
        agent.Open();
        std::string failure;
        for (const v1::AgentMessage& m : c.setup) {
          if (grpc::Status s = agent.Send(m); !s.ok()) failure = absl::StrCat("setup refused: ", s.error_message());
        }
        grpc::Status s = failure.empty() ? agent.Send(c.message) : grpc::Status::OK;
        if (failure.empty()) {
          if (s.ok()) {
            failure = "accepted";
          } else if (std::find(c.codes.begin(), c.codes.end(), s.error_code()) == c.codes.end()) {
            failure = absl::StrCat("code ", s.error_code(), ": ", s.error_message());
          } else if (s.error_message().size() < 10) {
            failure = absl::StrCat("unclear error '", s.error_message(), "'");
          } else {
            ++refused;
          }
        }
        agent.Cancel();
        if (!failure.empty()) {
          MutexLock lock(&mu);
          failures.push_back(absl::StrCat("#", i, " (", c.kind, "): ", failure));
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  stop_honest.Notify();
  honest_reporter.join();
  EXPECT_EQ(honest_failures.load(), 0);
  google::protobuf::SetLogHandler(log_handler);
  EXPECT_EQ(refused.load(), kMessages);
  for (size_t i = 0; i < std::min<size_t>(failures.size(), 20); ++i) ADD_FAILURE() << failures[i];

  // Nothing else changed: the honest node as it was, the pool's version the same, and no
  // assignment pushed since.
  std::vector<v1::Node> nodes_after = ListNodes();
  int mallories = 0;
  for (const v1::Node& node : nodes_after) {
    if (node.node_id().rfind("mallory-", 0) == 0) {
      ++mallories;
      continue;
    }
    ASSERT_EQ(node.node_id(), "honest");
    v1::Node expected = nodes_before[0];
    expected.clear_last_report_age();
    expected.clear_last_sequence();
    v1::Node actual = node;
    actual.clear_last_report_age();
    actual.clear_last_sequence();
    EXPECT_EQ(actual.SerializeAsString(), expected.SerializeAsString()) << actual.DebugString();
  }
  EXPECT_EQ(mallories, kWorkers);
  EXPECT_EQ(nodes_after.size(), static_cast<size_t>(kWorkers + 1));
  const std::vector<v1::Assignment> seen = subscriber.Seen("m");
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().version(), before.version());
  {
    grpc::ClientContext ctx;
    v1::GetPoolRequest request;
    request.set_pool("m");
    v1::Pool pool;
    ASSERT_TRUE(admin_->GetPool(&ctx, request, &pool).ok());
    EXPECT_EQ(pool.version(), before.version());
    EXPECT_EQ(pool.assignment().endpoints_size(), 1);
  }

  // And it keeps serving: the honest agent's next report reaches the subscriber.
  ASSERT_TRUE(honest.Report(MakeAgentReport(honest_hello, ++honest_sequence, 3)).ok());
  EXPECT_TRUE(subscriber.WaitFor(
      "m", [](const v1::Assignment& a) { return a.endpoints_size() == 1 && a.endpoints(0).slots_free() == 1; },
      Scaled(absl::Seconds(10))));
  auto [code, out] = RunSbctl(addr_, "status");
  EXPECT_EQ(code, 0) << out;
}

}  // namespace
}  // namespace switchboard::testing
