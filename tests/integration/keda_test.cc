// KEDA's external scaler on a real control plane: a client built from KEDA's proto does
// what KEDA's operator and the HPA do with the answers (tests/controlplane/keda_hpa.h)
// and must land on the replica count sbctl shows, across scale up, down, to zero and
// back; StreamIsActive pushes every change; an advisory pool is left alone. And
// --scale-exec on the same control plane.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "keda/externalscaler.grpc.pb.h"
#include "tests/controlplane/keda_hpa.h"
#include "tests/integration/harness.h"

namespace switchboard::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kConfig[] = R"(
pools:
  m:
    autoscaling:
      sync_period: 250ms
      min_replicas: 0
      max_replicas: 8
      metrics:
        - {type: queue_per_replica, target: 2}
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 0
)";

class KedaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("keda_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    config_ = (dir_ / "pools.yaml").string();
    std::ofstream(config_) << kConfig;
    cp_ = Subprocess::Start("switchboard-controlplane", {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "",
                                                         "--config", config_, "--insecure"});
    auto port = cp_->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(port.ok()) << port.status();
    addr_ = absl::StrCat("127.0.0.1:", *port);
    server_ = Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m", "--slots", "2"});
    auto sp = server_->WaitForPort("http listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(sp.ok()) << sp.status();
    agent_ = Subprocess::Start("switchboard-agent",
                               {"--controlplane", addr_, "--backend", absl::StrCat("llamacpp=http://127.0.0.1:", *sp),
                                "--node-id", "n1", "--report-interval", "250ms", "--gpu", "none", "--insecure"});
    stub_ = externalscaler::ExternalScaler::NewStub(grpc::CreateChannel(addr_, grpc::InsecureChannelCredentials()));
    ref_.set_name("llm");
    ref_.set_namespace_("default");
    (*ref_.mutable_scalermetadata())["pool"] = "m";
    ASSERT_TRUE(WaitFor([&] { return SbctlDesired() >= 0; }, Scaled(absl::Seconds(15))));
  }

  // sbctl status's desired replicas for pool m; -1 when it shows none.
  int SbctlDesired() {
    auto [rc, out] = RunSbctl(addr_, "status m");
    std::smatch m;
    if (rc != 0 || !std::regex_search(out, m, std::regex("desired replicas ([0-9]+)"))) return -1;
    return std::stoi(m[1]);
  }

  template <typename Call>
  grpc::Status Rpc(Call call) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return call(&ctx);
  }

  // One KEDA check and HPA sync from `current`, as KEDA would make them.
  int32_t KedaReplicas(int32_t current) {
    externalscaler::GetMetricSpecResponse spec;
    EXPECT_TRUE(Rpc([&](grpc::ClientContext* c) { return stub_->GetMetricSpec(c, ref_, &spec); }).ok());
    EXPECT_EQ(spec.metricspecs_size(), 1);
    externalscaler::GetMetricsRequest req;
    *req.mutable_scaledobjectref() = ref_;
    req.set_metricname(spec.metricspecs(0).metricname());
    externalscaler::GetMetricsResponse metrics;
    EXPECT_TRUE(Rpc([&](grpc::ClientContext* c) { return stub_->GetMetrics(c, req, &metrics); }).ok());
    EXPECT_EQ(metrics.metricvalues_size(), 1);
    externalscaler::IsActiveResponse active;
    EXPECT_TRUE(Rpc([&](grpc::ClientContext* c) { return stub_->IsActive(c, ref_, &active); }).ok());
    if (spec.metricspecs_size() != 1 || metrics.metricvalues_size() != 1) return -1;
    // The pool's ScaledObject: minReplicaCount 0, maxReplicaCount 8 (as its config).
    return KedaHpaReplicas(current, active.result(), metrics.metricvalues(0).metricvaluefloat(),
                           spec.metricspecs(0).targetsizefloat(), ScaledObjectBounds{0, 8, 0.1});
  }

  std::filesystem::path dir_;
  std::string config_, addr_;
  std::unique_ptr<Subprocess> cp_, server_, agent_;
  std::unique_ptr<externalscaler::ExternalScaler::Stub> stub_;
  externalscaler::ScaledObjectRef ref_;
};

TEST_F(KedaTest, KedaAndHpaLandOnSbctlsDesiredReplicas) {
  // StreamIsActive (external-push) open throughout: every change is pushed.
  grpc::ClientContext stream_ctx;
  auto stream = stub_->StreamIsActive(&stream_ctx, ref_);
  Mutex mu;
  std::vector<bool> pushed;
  std::thread reader([&] {
    externalscaler::IsActiveResponse r;
    while (stream->Read(&r)) {
      MutexLock lock(&mu);
      pushed.push_back(r.result());
    }
  });
  auto pushes = [&] {
    MutexLock lock(&mu);
    return pushed;
  };
  ASSERT_TRUE(WaitFor([&] { return !pushes().empty(); }, Scaled(absl::Seconds(5)))) << "no answer at open";

  // The autoscaler's own decision (idle: zero, as min_replicas allows), once it holds
  // still: KEDA's and the HPA's arithmetic from the Deployment as created (1 replica).
  int32_t replicas = -1;
  EXPECT_TRUE(WaitFor(
      [&] {
        const int before = SbctlDesired();
        replicas = KedaReplicas(1);
        return replicas == before && SbctlDesired() == before;
      },
      Scaled(absl::Seconds(10))))
      << replicas << " vs sbctl " << SbctlDesired();
  for (int target : {3, 6, 2, 0, 4}) {  // Up, up, down, to zero, back.
    SCOPED_TRACE(absl::StrCat("scale to ", target));
    const size_t before = pushes().size();
    auto [rc, out] = RunSbctl(addr_, absl::StrCat("scale m ", target, " --for 10m --reason keda-test"));
    ASSERT_EQ(rc, 0) << out;
    ASSERT_TRUE(WaitFor([&] { return SbctlDesired() == target; }, Scaled(absl::Seconds(10))));
    replicas = KedaReplicas(replicas);
    EXPECT_EQ(replicas, target);
    ASSERT_TRUE(WaitFor([&] { return pushes().size() > before; }, Scaled(absl::Seconds(5)))) << "not pushed";
    EXPECT_EQ(pushes().back(), target > 0);
  }

  stream_ctx.TryCancel();
  reader.join();
}

TEST_F(KedaTest, MetricSpecIsPushedAndBadTriggersAreRefused) {
  grpc::ClientContext ctx;
  auto stream = stub_->StreamMetricSpec(&ctx, ref_);
  externalscaler::GetMetricSpecResponse spec;
  ASSERT_TRUE(stream->Read(&spec));
  ASSERT_EQ(spec.metricspecs_size(), 1);
  EXPECT_EQ(spec.metricspecs(0).metricname(), "switchboard-desired-replicas");
  EXPECT_DOUBLE_EQ(spec.metricspecs(0).targetsizefloat(), 1.0);
  ctx.TryCancel();
  EXPECT_FALSE(stream->Read(&spec));

  externalscaler::IsActiveResponse active;
  externalscaler::ScaledObjectRef no_pool;
  no_pool.set_name("x");
  grpc::Status s = Rpc([&](grpc::ClientContext* c) { return stub_->IsActive(c, no_pool, &active); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("pool: NAME"));
  (*no_pool.mutable_scalermetadata())["pool"] = "nope";
  s = Rpc([&](grpc::ClientContext* c) { return stub_->IsActive(c, no_pool, &active); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s.error_message(), HasSubstr("known: m"));
  externalscaler::GetMetricsRequest req;
  *req.mutable_scaledobjectref() = ref_;
  req.set_metricname("other");
  externalscaler::GetMetricsResponse metrics;
  s = Rpc([&](grpc::ClientContext* c) { return stub_->GetMetrics(c, req, &metrics); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);

  // Advisory (reloaded on SIGHUP): KEDA gets no answer to act on.
  std::ofstream(config_) << kConfig << "    advisory: true\n";
  cp_->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor(
      [&] {
        return Rpc([&](grpc::ClientContext* c) { return stub_->IsActive(c, ref_, &active); }).error_code() ==
               grpc::StatusCode::FAILED_PRECONDITION;
      },
      Scaled(absl::Seconds(5))));
}

// --scale-exec on a real control plane: a script runs on each change of desired
// replicas, and its failure is an event sbctl shows.
TEST(ScaleExecTest, RunsOnChangesAndFailuresAreEvents) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "scale_exec_cp";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string config = (dir / "pools.yaml").string(), log = (dir / "log").string();
  const std::string script = (dir / "scale.sh").string();
  std::ofstream(config) << kConfig;
  std::ofstream(script) << "#!/bin/sh\necho \"$1 $2\" >> " << log
                        << "\nif [ \"$2\" = 5 ]; then echo quota exceeded >&2; exit 3; fi\n";
  chmod(script.c_str(), 0755);
  auto cp = Subprocess::Start("switchboard-controlplane",
                              {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", (dir / "h.db").string(),
                               "--config", config, "--scale-exec", script + " {pool} {replicas}", "--insecure"});
  auto port = cp->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string addr = absl::StrCat("127.0.0.1:", *port);
  auto server = Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m", "--slots", "2"});
  auto sp = server->WaitForPort("http listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(sp.ok()) << sp.status();
  auto agent = Subprocess::Start("switchboard-agent",
                                 {"--controlplane", addr, "--backend", absl::StrCat("llamacpp=http://127.0.0.1:", *sp),
                                  "--node-id", "n1", "--report-interval", "250ms", "--gpu", "none", "--insecure"});
  auto read_log = [&] {
    std::stringstream s;
    s << std::ifstream(log).rdbuf();
    return s.str();
  };
  ASSERT_TRUE(WaitFor([&] { return RunSbctl(addr, "status m").first == 0; }, Scaled(absl::Seconds(15))));
  for (int replicas : {5, 2}) {
    auto [rc, out] = RunSbctl(addr, absl::StrCat("scale m ", replicas, " --for 10m"));
    ASSERT_EQ(rc, 0) << out;
    EXPECT_TRUE(WaitFor([&] { return read_log().find(absl::StrCat("m ", replicas, "\n")) != std::string::npos; },
                        Scaled(absl::Seconds(10))))
        << read_log();
  }
  std::string events;
  EXPECT_TRUE(WaitFor(
      [&] {
        events = RunSbctl(addr, "events m").second;
        return events.find("scale_exec_failed pool=m") != std::string::npos &&
               events.find("5 replicas: exit 3: quota exceeded") != std::string::npos &&
               events.find("2 replicas: exit 0") != std::string::npos;
      },
      Scaled(absl::Seconds(10))))
      << events;
}

}  // namespace
}  // namespace switchboard::testing
