// History and the CLI as an operator uses them, with real binaries: two agents report to
// a control plane with a SQLite history; sbctl history/nodes/pool/events answer in
// tables, CSV and JSON with global flags on either side of the command and the
// documented exit codes; grpc.health.v1 and server reflection answer real gRPC calls.
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string out;
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer FromString(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

class HistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("history_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    cp_ = Subprocess::Start("switchboard-controlplane", {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                                                         "--db", (dir_ / "h.db").string(), "--insecure"});
    auto port = cp_->WaitForPort("grpc listening on port ", absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status();
    addr_ = absl::StrCat("127.0.0.1:", *port);
    for (int i = 1; i <= 2; ++i) {
      servers_.push_back(Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m", "--slots",
                                                                   "4", "--tokens-per-second", "50"}));
      auto sp = servers_.back()->WaitForPort("http listening on port ", absl::Seconds(20));
      ASSERT_TRUE(sp.ok()) << sp.status();
      addresses_.push_back(absl::StrCat("127.0.0.1:", *sp));
      agents_.push_back(Subprocess::Start(
          "switchboard-agent",
          {"--controlplane", addr_, "--backend", absl::StrCat("llamacpp=http://", addresses_.back()), "--node-id",
           absl::StrCat("n", i), "--report-interval", "250ms", "--gpu", "none", "--insecure"}));
    }
    // Both endpoints reported and routable: their joins and first circuit changes are
    // recorded before a test starts (EventsFollowPrintsNewEvents follows from then on).
    Subscriber subscriber(addr_, {"m"});
    ASSERT_TRUE(subscriber.WaitFor(
        "m",
        [](const v1::Assignment& a) {
          return a.endpoints_size() == 2 && a.endpoints(0).weight() > 0 && a.endpoints(1).weight() > 0;
        },
        Scaled(absl::Seconds(15))));
  }
  void TearDown() override {
    agents_.clear();
    servers_.clear();
    cp_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::pair<int, std::string> Sbctl(const std::string& args) { return RunSbctl(addr_, args); }

  std::filesystem::path dir_;
  std::string addr_;
  std::unique_ptr<Subprocess> cp_;
  std::vector<std::unique_ptr<Subprocess>> servers_, agents_;
  std::vector<std::string> addresses_;
};

TEST_F(HistoryTest, SbctlAnswersFromHistoryInEveryFormat) {
  // Samples are written once a second per pool: wait for a few in the history.
  std::string out;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto [rc, text] = Sbctl("history m --metric slots_total --since 5m --step 1s --csv");
        out = text;
        return rc == 0 && std::count(text.begin(), text.end(), '\n') >= 1 + 2 * 3;
      },
      Scaled(absl::Seconds(20)), absl::Milliseconds(200)))
      << out;
  EXPECT_THAT(out, HasSubstr("time,pool,node_id,address,metric,value\n"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat(",m,n1,", addresses_[0], ",slots_total,4\n")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat(",m,n2,", addresses_[1], ",slots_total,4\n")));

  // The table: one column per endpoint, then a sparkline per series.
  auto [rc, table] = Sbctl("history m --metric weight --since 5m --step 1s");
  EXPECT_EQ(rc, 0) << table;
  EXPECT_THAT(table, HasSubstr(absl::StrCat("n1/", addresses_[0])));
  EXPECT_THAT(table, HasSubstr("TREND"));
  EXPECT_THAT(table, HasSubstr("▁"));

  // One endpoint by NODE/ADDRESS; global --json before or after the command.
  auto [rc_a, json_a] = Sbctl(absl::StrCat("--json history n2/", addresses_[1], " --metric slots_total --since 5m"));
  auto [rc_b, json_b] = Sbctl(absl::StrCat("history n2/", addresses_[1], " --metric slots_total --since 5m --json"));
  EXPECT_EQ(rc_a, 0) << json_a;
  EXPECT_EQ(rc_b, 0) << json_b;
  EXPECT_THAT(json_a, HasSubstr("\"metric\": \"slots_total\""));
  EXPECT_THAT(json_a, HasSubstr(absl::StrCat("\"address\": \"", addresses_[1], "\"")));
  EXPECT_THAT(json_a, Not(HasSubstr(addresses_[0])));
  EXPECT_THAT(json_b, HasSubstr("\"series\": ["));

  // Pool metrics, nodes, pool, events.
  auto [rc_n, nodes] = Sbctl("nodes");
  EXPECT_EQ(rc_n, 0) << nodes;
  EXPECT_THAT(nodes, HasSubstr("n1"));
  EXPECT_THAT(nodes, HasSubstr(addresses_[1]));
  auto [rc_nj, nodes_json] = Sbctl("--json nodes");
  EXPECT_EQ(rc_nj, 0);
  EXPECT_THAT(nodes_json, HasSubstr("\"node_id\": \"n2\""));
  auto [rc_p, pool] = Sbctl("pool m");
  EXPECT_EQ(rc_p, 0) << pool;
  EXPECT_THAT(pool, HasSubstr(addresses_[0]));
  EXPECT_THAT(pool, HasSubstr("TTFT P95"));
  auto [rc_pj, pool_json] = Sbctl("pool m --json");
  EXPECT_THAT(pool_json, HasSubstr("\"name\": \"m\""));
  auto [rc_e, events] = Sbctl("events --pool m --since 1h --json");
  EXPECT_EQ(rc_e, 0) << events;
  EXPECT_THAT(events, HasSubstr("\"kind\": \"endpoint_joined\""));

  // Usage errors exit 2 and say what is allowed; a refusal or an unreachable control
  // plane exits 1 and says what to do.
  auto [rc_m, bad_metric] = Sbctl("history m --metric nope --since 1h");
  EXPECT_EQ(rc_m, 2);
  EXPECT_THAT(bad_metric, HasSubstr("endpoint metrics are"));
  auto [rc_s, bad_since] = Sbctl("history m --since yesterday");
  EXPECT_EQ(rc_s, 2);
  EXPECT_THAT(bad_since, HasSubstr("RFC 3339"));
  EXPECT_EQ(Sbctl("history").first, 2);
  auto [rc_u, unknown] = Sbctl("pool nope");
  EXPECT_EQ(rc_u, 1);
  EXPECT_THAT(unknown, HasSubstr("nope"));
  auto [rc_x, unreachable] = RunSbctl("127.0.0.1:1", "nodes");
  EXPECT_EQ(rc_x, 1);
  EXPECT_THAT(unreachable, HasSubstr("is the control plane running at 127.0.0.1:1"));

  auto [rc_c, completion] = Sbctl("completion bash");
  EXPECT_EQ(rc_c, 0);
  EXPECT_THAT(completion, HasSubstr("complete -F _sbctl sbctl"));
  EXPECT_THAT(completion, HasSubstr("history) COMPREPLY"));
  auto [rc_h, help] = Sbctl("--help");
  EXPECT_EQ(rc_h, 0);
  EXPECT_THAT(help, HasSubstr("Examples:"));
}

TEST_F(HistoryTest, EventsFollowPrintsNewEvents) {
  // Only events from now on: the endpoints' joins are older. Whether the drain lands
  // before the first read or while following, it is the one event printed.
  const std::string now = absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone());
  auto follow = Subprocess::Start(
      "sbctl", {"--insecure", "--controlplane", addr_, "events", "--follow", "--json", "--since", now, "--count", "1"});
  auto [rc, out] = Sbctl("drain n2");
  ASSERT_EQ(rc, 0) << out;
  auto line = follow->WaitForLine("{", Scaled(absl::Seconds(10)));
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_THAT(*line, HasSubstr("drain_requested"));
  EXPECT_EQ(follow->Wait(), 0);
}

TEST_F(HistoryTest, HealthAndReflectionAnswerRealGrpcClients) {
  auto channel = grpc::CreateChannel(addr_, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  // grpc.health.v1.Health/Check with an empty HealthCheckRequest (service ""): the
  // answer is HealthCheckResponse{status: SERVING}, field 1 = 1 on the wire.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::ByteBuffer request = FromString(""), response;
  Notification done;
  grpc::Status status;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(ToString(response), std::string("\x08\x01", 2));

  // Server reflection: list_services (field 7) names the Switchboard services.
  grpc::CompletionQueue cq;
  grpc::ClientContext rctx;
  rctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  void* tag;
  bool ok;
  auto call = stub.PrepareCall(&rctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  call->WriteLast(FromString(std::string("\x3a\x00", 2)), grpc::WriteOptions(), reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer listing;
  call->Read(&listing, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  const std::string services = ToString(listing);
  EXPECT_THAT(services, HasSubstr("switchboard.v1.AdminService"));
  EXPECT_THAT(services, HasSubstr("grpc.health.v1.Health"));
  rctx.TryCancel();
  grpc::Status finish;
  call->Finish(&finish, reinterpret_cast<void*>(4));
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(4)) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace
}  // namespace switchboard::testing
