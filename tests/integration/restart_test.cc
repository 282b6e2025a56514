// Restarts lose nothing: the control plane is killed with SIGKILL 20 times under load
// (agents with fakellm backends, a subscriber, a manual override, an idle pool whose
// scale-down is held) and after every restart the history file is intact, every
// acknowledged operator change is still there and in force, and subscribers get the
// last snapshot of every pool at once, stale, with the same version and desired
// replicas, until the agents have reported again.
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/net.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

// Two pools: `llama` under load with a manual override, `qwen` idle on three servers,
// which the autoscaler would scale down to one but the warm-up hold keeps at three for
// the 300 s scale-down window (the whole test).
constexpr char kConfig[] = R"(
defaults:
  autoscaling:
    sync_period: 500ms
    min_replicas: 1
    max_replicas: 20
    metrics:
      - {type: queue_per_replica, target: 1}
)";

// Every Assignment received, in order (the harness's Subscriber keeps only the newest).
class RecordingSubscriber {
 public:
  explicit RecordingSubscriber(const std::string& target) : stub_(v1::DiscoveryService::NewStub(MakeChannel(target))) {
    context_.set_wait_for_ready(true);
    stream_ = stub_->Subscribe(&context_);
    v1::SubscribeRequest req;
    req.set_subscriber_id("restart-test");
    stream_->Write(req);
    reader_ = std::thread([this] {
      v1::Assignment a;
      while (stream_->Read(&a)) {
        v1::SubscribeRequest ack;
        ack.set_version_info(a.version());
        ack.set_response_nonce(a.nonce());
        stream_->Write(ack);
        MutexLock lock(&mu_);
        received_.push_back(a);
      }
    });
  }
  ~RecordingSubscriber() {
    context_.TryCancel();
    reader_.join();
    stream_->Finish();
  }
  // Waits until some assignment satisfies `pred`.
  bool WaitFor(const std::function<bool(const std::vector<v1::Assignment>&)>& pred, absl::Duration timeout) {
    return WaitForCondition(pred, timeout);
  }
  std::vector<v1::Assignment> Received() {
    MutexLock lock(&mu_);
    return received_;
  }
  // The first assignment of `pool`, if any arrived.
  std::optional<v1::Assignment> First(const std::string& pool) {
    MutexLock lock(&mu_);
    for (const v1::Assignment& a : received_) {
      if (a.pool() == pool) return a;
    }
    return std::nullopt;
  }
  std::optional<v1::Assignment> Last(const std::string& pool) {
    MutexLock lock(&mu_);
    for (auto it = received_.rbegin(); it != received_.rend(); ++it) {
      if (it->pool() == pool) return *it;
    }
    return std::nullopt;
  }

 private:
  bool WaitForCondition(const std::function<bool(const std::vector<v1::Assignment>&)>& pred, absl::Duration timeout) {
    MutexLock lock(&mu_);
    auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pred(received_); };
    return mu_.AwaitWithTimeout(Condition(&holds), Scaled(timeout));
  }

  grpc::ClientContext context_;
  std::unique_ptr<v1::DiscoveryService::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::SubscribeRequest, v1::Assignment>> stream_;
  std::thread reader_;
  Mutex mu_;
  std::vector<v1::Assignment> received_ ABSL_GUARDED_BY(mu_);
};

bool LiveAndWhole(const v1::Assignment& a, int endpoints) {
  if (a.stale() || a.endpoints_size() != endpoints) return false;
  for (const auto& ep : a.endpoints()) {
    if (ep.weight() == 0) return false;
  }
  return true;
}

// The newest assignment of `pool` in `all` is live with every endpoint routable.
bool PoolLive(const std::vector<v1::Assignment>& all, const std::string& pool, int endpoints) {
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (it->pool() == pool) return LiveAndWhole(*it, endpoints);
  }
  return false;
}

std::string QueryOne(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out = "(cannot open)";
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    out = "(no row)";
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      out = text ? reinterpret_cast<const char*>(text) : "(null)";
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return out;
}

class RestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / ("restart_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "history.db").string();
    std::ofstream(dir_ / "pools.yaml") << kConfig;
  }
  void TearDown() override {
    for (auto& t : load_) t.join();
  }

  // Starts the control plane on `port` (0 the first time); returns the port.
  int StartControlPlane(int port) {
    cp_ = Subprocess::Start("switchboard-controlplane",
                            {"--listen", absl::StrCat("127.0.0.1:", port), "--metrics-listen", "", "--db", db_,
                             "--config", (dir_ / "pools.yaml").string(), "--insecure"});
    absl::StatusOr<int> p = cp_->WaitForPort("grpc listening on port ", absl::Seconds(20));
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : 0;
  }

  void StartFleet(const std::string& addr) {
    const std::vector<std::pair<std::string, int>> servers = {
        {"llama", 4}, {"llama", 4}, {"qwen", 2}, {"qwen", 2}, {"qwen", 2}};
    for (size_t i = 0; i < servers.size(); ++i) {
      auto server =
          Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", servers[i].first, "--slots",
                                                    std::to_string(servers[i].second), "--tokens-per-second", "20"});
      absl::StatusOr<int> port = server->WaitForPort("http listening on port ", absl::Seconds(20));
      ASSERT_TRUE(port.ok()) << port.status();
      if (servers[i].first == "llama") llama_ports_.push_back(*port);
      servers_.push_back(std::move(server));
      agents_.push_back(Subprocess::Start(
          "switchboard-agent",
          {"--controlplane", addr, "--backend", absl::StrCat("llamacpp=http://127.0.0.1:", *port), "--node-id",
           absl::StrCat("n", i + 1), "--report-interval", "250ms", "--gpu", "none", "--insecure"}));
    }
  }

  // Keeps the llama servers busy: two more 2-second requests on each.
  void AddLoad() {
    for (int port : llama_ports_) SendChatCompletions(port, 2, 40, &load_);
  }

  std::filesystem::path dir_;
  std::string db_;
  std::unique_ptr<Subprocess> cp_;
  std::vector<std::unique_ptr<Subprocess>> servers_, agents_;
  std::vector<int> llama_ports_;
  std::vector<std::thread> load_;
};

TEST_F(RestartTest, KillNineTwentyTimesLosesNothing) {
  const int port = StartControlPlane(0);
  ASSERT_NE(port, 0);
  const std::string addr = absl::StrCat("127.0.0.1:", port);
  StartFleet(addr);
  AddLoad();
  auto subscriber = std::make_unique<RecordingSubscriber>(addr);
  ASSERT_TRUE(subscriber->WaitFor([](const auto& all) { return PoolLive(all, "llama", 2) && PoolLive(all, "qwen", 3); },
                                  absl::Seconds(20)));
  // First start: three idle qwen servers are never published as fewer desired replicas.
  for (const v1::Assignment& a : subscriber->Received()) {
    if (a.pool() == "qwen" && a.endpoints_size() == 3) {
      EXPECT_GE(a.desired_replicas(), 3u) << a.DebugString();
    }
  }

  absl::Duration slowest_return;
  int same_as_last = 0;
  constexpr int kRestarts = 20;
  for (int i = 0; i < kRestarts; ++i) {
    SCOPED_TRACE(absl::StrCat("restart ", i + 1));
    AddLoad();
    const uint32_t override_replicas = 4 + i % 3;
    const std::string reason = absl::StrCat("iteration-", i);
    auto [rc, out] = RunSbctl(addr, absl::StrCat("scale llama ", override_replicas, " --for 1h --reason ", reason));
    ASSERT_EQ(rc, 0) << out;  // Acknowledged: on disk.
    ASSERT_TRUE(WaitFor(
        [&] {
          auto last = subscriber->Last("llama");
          return last && !last->stale() && last->desired_replicas() == override_replicas;
        },
        absl::Seconds(10)));
    // Snapshots are written behind the publication (milliseconds): kill once the history
    // has the newest version served, as a crash a moment later would find it.
    ASSERT_TRUE(WaitFor(
        [&] {
          for (const char* pool : {"llama", "qwen"}) {
            if (QueryOne(db_, absl::StrCat("SELECT version FROM pool_snapshots WHERE pool = '", pool, "'")) !=
                subscriber->Last(pool)->version()) {
              return false;
            }
          }
          return true;
        },
        absl::Seconds(10)));
    // What subscribers were served before the kill.
    std::map<std::string, std::set<std::string>> versions_seen;
    for (const v1::Assignment& a : subscriber->Received()) versions_seen[a.pool()].insert(a.version());
    const v1::Assignment llama_before = *subscriber->Last("llama");
    const v1::Assignment qwen_before = *subscriber->Last("qwen");

    cp_->Signal(SIGKILL);
    cp_->Wait();
    subscriber.reset();
    EXPECT_EQ(QueryOne(db_, "PRAGMA integrity_check"), "ok");
    EXPECT_EQ(QueryOne(db_, absl::StrCat("SELECT COUNT(*) FROM events WHERE kind = 'manual_replicas' AND detail "
                                         "LIKE '%",
                                         reason, "'")),
              "1")
        << "the acknowledged override's event";
    EXPECT_EQ(QueryOne(db_, "SELECT replicas FROM manual_overrides WHERE pool = 'llama'"),
              std::to_string(override_replicas));

    const absl::Time started = absl::Now();
    ASSERT_EQ(StartControlPlane(port), port);
    subscriber = std::make_unique<RecordingSubscriber>(addr);
    ASSERT_TRUE(subscriber->WaitFor(
        [](const auto& all) { return PoolLive(all, "llama", 2) && PoolLive(all, "qwen", 3); }, absl::Seconds(20)));
    slowest_return = std::max(slowest_return, absl::Now() - started);

    for (const auto& [pool, before] : {std::pair<std::string, v1::Assignment>{"llama", llama_before},
                                       std::pair<std::string, v1::Assignment>{"qwen", qwen_before}}) {
      SCOPED_TRACE(pool);
      std::optional<v1::Assignment> first = subscriber->First(pool);
      ASSERT_TRUE(first.has_value());
      EXPECT_TRUE(first->stale()) << "served from history first";
      EXPECT_EQ(versions_seen[pool].count(first->version()), 1u) << "a version served before the kill";
      EXPECT_EQ(first->desired_replicas(), before.desired_replicas());
      EXPECT_EQ(first->endpoints_size(), before.endpoints_size());
      same_as_last += first->version() == before.version() ? 1 : 0;
      // Never a partial or empty pool, nor fewer desired replicas, because of the restart.
      for (const v1::Assignment& a : subscriber->Received()) {
        if (a.pool() != pool) continue;
        EXPECT_EQ(a.endpoints_size(), before.endpoints_size()) << a.DebugString();
        EXPECT_GE(a.desired_replicas(), before.desired_replicas()) << a.DebugString();
      }
    }
    EXPECT_EQ(subscriber->Last("llama")->desired_replicas(), override_replicas) << "the override is in force";
    EXPECT_EQ(subscriber->Last("qwen")->desired_replicas(), 3u) << "the held scale-down is still held";
  }
  std::printf(
      "restarts: %d; slowest return to a live, whole fleet: %s; restored version was the last one served "
      "%d of %d times\n",
      kRestarts, absl::FormatDuration(slowest_return).c_str(), same_as_last, 2 * kRestarts);
  for (auto& agent : agents_) agent.reset();
  servers_.clear();  // Ends the outstanding requests.
}

}  // namespace
}  // namespace switchboard::testing
