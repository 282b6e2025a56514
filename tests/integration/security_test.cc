// TLS, mTLS agent identities, admin token roles and the secure default, with a test CA
// made by Debian's openssl and the real binaries on loopback.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/auth.h"
#include "common/notification.h"
#include "common/tls.h"
#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "keda/externalscaler.grpc.pb.h"
#include "switchboard/v1/admin.grpc.pb.h"
#include "switchboard/v1/agent.grpc.pb.h"
#include "switchboard/v1/discovery.grpc.pb.h"
#include "tests/integration/harness.h"
#include "tests/integration/test_ca.h"

namespace switchboard::testing {
namespace {

namespace ext_proc = ::envoy::service::ext_proc::v3;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kReadToken[] = "read-token-4f9c1d2e7a";
constexpr char kAdminToken[] = "admin-token-b83e6a0f51";

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / absl::StrCat("security-", getpid(), "-", ++counter_);
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto ca = TestCa::Create(dir_.string(), "fleet-ca");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::make_unique<TestCa>(*ca);
    auto other = TestCa::Create(dir_.string(), "other-ca");
    ASSERT_TRUE(other.ok()) << other.status();
    other_ca_ = std::make_unique<TestCa>(*other);
    auto server = ca_->Issue("server", {"IP:127.0.0.1", "DNS:localhost"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    tokens_ = (dir_ / "tokens.yaml").string();
    std::ofstream(tokens_) << "- name: viewer\n  role: read\n  sha256: " << Sha256Hex(kReadToken) << "\n"
                           << "- name: ops\n  role: admin\n  sha256: " << Sha256Hex(kAdminToken) << "\n";
    WriteFile("read.token", kReadToken);
    WriteFile("admin.token", kAdminToken);
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text << "\n";
    return path;
  }

  // A TLS control plane with --client-ca and admin tokens, plus `extra` flags.
  void StartTlsControlPlane(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--listen",
                                     "127.0.0.1:0",
                                     "--metrics-listen",
                                     metrics_listen_,
                                     "--db",
                                     (dir_ / "h.db").string(),
                                     "--tls-cert",
                                     server_.cert,
                                     "--tls-key",
                                     server_.key,
                                     "--client-ca",
                                     ca_->cert(),
                                     "--admin-tokens",
                                     tokens_,
                                     "--tls-reload-interval",
                                     "1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    cp_ = Subprocess::Start("switchboard-controlplane", args);
    auto port = cp_->WaitForPort("grpc listening on port ", absl::Seconds(20));
    ASSERT_TRUE(port.ok()) << port.status();
    cp_addr_ = absl::StrCat("127.0.0.1:", *port);
    if (!metrics_listen_.empty()) {
      auto mport = cp_->WaitForPort("metrics listening on port ", absl::Seconds(20));
      ASSERT_TRUE(mport.ok()) << mport.status();
      metrics_port_ = *mport;
    }
  }

  // Runs sbctl over TLS (trusting the fleet CA) with the given token file ("" = none).
  std::pair<int, std::string> Sbctl(const std::string& token_file, std::vector<std::string> args,
                                    const std::string& ca = "") {
    std::vector<std::string> all = {"--ca", ca.empty() ? ca_->cert() : ca, "--controlplane", cp_addr_, "--timeout",
                                    "5s"};
    if (!token_file.empty()) {
      all.push_back("--token-file");
      all.push_back((dir_ / token_file).string());
    }
    all.insert(all.end(), args.begin(), args.end());
    return RunToExit("sbctl", all, absl::Seconds(30));
  }

  // Opens AgentService.Connect with `flags`' credentials and sends a Hello for
  // `node_id`. Returns the stream's status once it ends, or OK when the control plane
  // acknowledged the Hello (the stream is then kept open in `open_`).
  grpc::Status Hello(const std::string& node_id, const TlsFlags& flags) {
    auto credentials = MakeChannelCredentials(flags);
    if (!credentials.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, std::string(credentials.status().message()));
    auto conn = std::make_unique<OpenAgent>();
    conn->stub = v1::AgentService::NewStub(grpc::CreateChannel(cp_addr_, *credentials));
    conn->context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(Scaled(absl::Seconds(15))));
    conn->stream = conn->stub->Connect(&conn->context);
    v1::AgentMessage hello;
    hello.mutable_hello()->set_node_id(node_id);
    hello.mutable_hello()->set_agent_version("security-test");
    conn->stream->Write(hello);
    v1::ControlMessage reply;
    if (conn->stream->Read(&reply) && reply.has_ack()) {
      open_.push_back(std::move(conn));
      return grpc::Status::OK;
    }
    return conn->stream->Finish();
  }

  TlsFlags ClientFlags(const CertFiles& cert) {
    TlsFlags f;
    f.ca = ca_->cert();
    f.cert = cert.cert;
    f.key = cert.key;
    return f;
  }

  struct OpenAgent {
    std::unique_ptr<v1::AgentService::Stub> stub;
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControlMessage>> stream;
  };

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<TestCa> ca_, other_ca_;
  CertFiles server_;
  std::string tokens_;
  std::string metrics_listen_;  // --metrics-listen of StartTlsControlPlane ("" = none).
  int metrics_port_ = 0;
  std::unique_ptr<Subprocess> cp_;
  std::string cp_addr_;
  std::vector<std::unique_ptr<OpenAgent>> open_;
};

// Plaintext is never implicit: no TLS flags and no --insecure fails the start, and so
// does --insecure beside TLS flags.
TEST_F(SecurityTest, SecureByDefault) {
  const std::string cp = BinDir() + "/switchboard-controlplane";  // Absolute: no --insecure added.
  auto [rc, out] = RunToExit(cp, {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", ""}, absl::Seconds(20));
  EXPECT_EQ(rc, 2) << out;
  EXPECT_THAT(out, HasSubstr("TLS needs --tls-cert and --tls-key"));
  EXPECT_THAT(out, HasSubstr("--insecure"));
  std::tie(rc, out) = RunToExit(cp,
                                {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "", "--insecure",
                                 "--tls-cert", server_.cert, "--tls-key", server_.key},
                                absl::Seconds(20));
  EXPECT_EQ(rc, 2) << out;
  EXPECT_THAT(out, HasSubstr("--insecure cannot be combined"));
  // A key that is not the certificate's is caught at start, naming the files only.
  auto other = ca_->Issue("other", {"DNS:other"});
  ASSERT_TRUE(other.ok());
  std::tie(rc, out) = RunToExit(cp,
                                {"--listen", "127.0.0.1:0", "--metrics-listen", "", "--db", "", "--tls-cert",
                                 server_.cert, "--tls-key", other->key},
                                absl::Seconds(20));
  EXPECT_EQ(rc, 2) << out;
  EXPECT_THAT(out, HasSubstr("is not the private key of --tls-cert"));
  EXPECT_THAT(out, Not(HasSubstr("PRIVATE KEY")));
  // --insecure logs its warning.
  std::tie(rc, out) = RunToExit("sbctl", {"--insecure", "plan", "--model", "llama-3-8b"}, absl::Seconds(20));
  EXPECT_EQ(rc, 0) << out;
}

// mTLS: only a certificate from the fleet CA that names the node may speak for it.
TEST_F(SecurityTest, AgentIdentityMustMatchCertificate) {
  StartTlsControlPlane();
  auto n1 = ca_->Issue("n1", {"DNS:n1"});
  auto n1_spiffe = ca_->Issue("n1-spiffe", {"URI:spiffe://fleet.example/node/n1"});
  auto n2 = ca_->Issue("n2", {"DNS:n2"});
  auto n3 = ca_->Issue("n3", {"URI:spiffe://fleet.example/node/n3"});
  auto foreign = other_ca_->Issue("n1", {"DNS:n1"});
  ASSERT_TRUE(n1.ok() && n1_spiffe.ok() && n2.ok() && n3.ok() && foreign.ok());

  TlsFlags no_cert;
  no_cert.ca = ca_->cert();
  grpc::Status s = Hello("n1", no_cert);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("no client certificate"));

  s = Hello("n1", ClientFlags(*foreign));  // Another CA: the handshake itself fails.
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << "should not get past the handshake";

  s = Hello("n1", ClientFlags(*n2));  // n2's certificate claiming n1.
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("names neither DNS:n1"));

  EXPECT_TRUE(Hello("n1", ClientFlags(*n1)).ok());  // DNS SAN = node id.
  EXPECT_TRUE(Hello("n3", ClientFlags(*n3)).ok());  // URI SAN spiffe://DOMAIN/node/NODE_ID.

  // n1 is connected as cert:n1; another certificate that also names n1 is refused.
  s = Hello("n1", ClientFlags(*n1_spiffe));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("connected from another identity"));

  // The refusals are events; the accepted nodes are listed.
  auto [rc, out] = Sbctl("read.token", {"events"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("agent_refused"));
  std::tie(rc, out) = Sbctl("read.token", {"status", "--json"});
  EXPECT_EQ(rc, 0) << out;

  // The real agent with its certificate connects over mTLS.
  auto fake = Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m"});
  auto fake_port = fake->WaitForPort("http listening on port ", absl::Seconds(20));
  ASSERT_TRUE(fake_port.ok()) << fake_port.status();
  auto n4 = ca_->Issue("n4", {"DNS:n4"});
  ASSERT_TRUE(n4.ok());
  auto agent = Subprocess::Start(
      "switchboard-agent", {"--controlplane", cp_addr_, "--ca", ca_->cert(), "--cert", n4->cert, "--key", n4->key,
                            "--backend", absl::StrCat("llamacpp=http://127.0.0.1:", *fake_port), "--node-id", "n4",
                            "--report-interval", "250ms", "--gpu", "none", "--health-listen", "127.0.0.1:0"});
  auto health_port = agent->WaitForPort("grpc health listening on port ", absl::Seconds(20));
  ASSERT_TRUE(health_port.ok()) << health_port.status();
  EXPECT_TRUE(WaitFor(
      [&] {
        auto [code, text] = Sbctl("read.token", {"status"});
        return code == 0 && text.find(absl::StrCat("127.0.0.1:", *fake_port)) != std::string::npos;
      },
      absl::Seconds(30), absl::Milliseconds(300)));
  // Its health listener serves TLS with the agent's certificate (--cert/--key).
  TlsFlags trust;
  trust.ca = ca_->cert();
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("n4");
  const std::string health_addr = absl::StrCat("127.0.0.1:", *health_port);
  auto tls_channel = grpc::CreateCustomChannel(health_addr, *MakeChannelCredentials(trust), args);
  EXPECT_TRUE(tls_channel->WaitForConnected(std::chrono::system_clock::now() +
                                            absl::ToChronoSeconds(Scaled(absl::Seconds(10)))));
  auto plain_channel = grpc::CreateChannel(health_addr, grpc::InsecureChannelCredentials());
  EXPECT_FALSE(plain_channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(2)));
}

// A new server certificate on disk is served to new connections without a restart.
TEST_F(SecurityTest, RotatedServerCertificateIsPickedUp) {
  // Start with the files in a place of their own, so that rotation replaces them.
  const std::string cert = (dir_ / "live.crt").string(), key = (dir_ / "live.key").string();
  std::filesystem::copy_file(server_.cert, cert);
  std::filesystem::copy_file(server_.key, key);
  server_ = {cert, key};
  StartTlsControlPlane();
  auto [rc, out] = Sbctl("read.token", {"status"});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = Sbctl("read.token", {"status"}, other_ca_->cert());
  EXPECT_NE(rc, 0) << "the other CA must not be trusted yet: " << out;

  // Rotate to a certificate from the other CA (rename: each file changes at once).
  auto rotated = other_ca_->Issue("server", {"IP:127.0.0.1"});
  ASSERT_TRUE(rotated.ok());
  std::filesystem::copy_file(rotated->cert, cert + ".new");
  std::filesystem::copy_file(rotated->key, key + ".new");
  std::filesystem::rename(key + ".new", key);
  std::filesystem::rename(cert + ".new", cert);
  EXPECT_TRUE(WaitFor([&] { return Sbctl("read.token", {"status"}, other_ca_->cert()).first == 0; }, absl::Seconds(30),
                      absl::Milliseconds(200)));
  std::tie(rc, out) = Sbctl("read.token", {"status"});
  EXPECT_NE(rc, 0) << "the old certificate is no longer served: " << out;
  EXPECT_TRUE(cp_->running());
}

// KEDA's external scaler calls are a subscriber's: KEDA can present only a client
// certificate (TriggerAuthentication caCert, tlsClientCert, tlsClientKey), which
// --subscriber-auth cert requires; without one, unary and streaming calls are refused.
TEST_F(SecurityTest, KedaScalerNeedsSubscriberCredentials) {
  StartTlsControlPlane({"--subscriber-auth", "cert"});
  externalscaler::ScaledObjectRef ref;
  ref.set_name("llama");
  ref.set_namespace_("default");
  (*ref.mutable_scalermetadata())["pool"] = "absent-pool";
  auto call = [&](const TlsFlags& flags) {
    auto credentials = MakeChannelCredentials(flags);
    EXPECT_TRUE(credentials.ok());
    auto stub = externalscaler::ExternalScaler::NewStub(grpc::CreateChannel(cp_addr_, *credentials));
    grpc::ClientContext unary;
    unary.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(Scaled(absl::Seconds(10))));
    externalscaler::IsActiveResponse active;
    grpc::Status unary_status = stub->IsActive(&unary, ref, &active);
    grpc::ClientContext streaming;
    streaming.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(Scaled(absl::Seconds(10))));
    auto stream = stub->StreamIsActive(&streaming, ref);
    while (stream->Read(&active)) {
    }
    return std::make_pair(unary_status, stream->Finish());
  };
  TlsFlags no_cert;
  no_cert.ca = ca_->cert();
  auto [unary, streaming] = call(no_cert);
  EXPECT_EQ(unary.error_code(), grpc::StatusCode::UNAUTHENTICATED) << unary.error_message();
  EXPECT_THAT(unary.error_message(), HasSubstr("client certificate"));
  EXPECT_EQ(streaming.error_code(), grpc::StatusCode::UNAUTHENTICATED) << streaming.error_message();

  // KEDA's certificate from the fleet CA: past the check, to the scaler's own answer.
  auto keda = ca_->Issue("keda", {"DNS:keda-operator.keda"});
  ASSERT_TRUE(keda.ok()) << keda.status();
  std::tie(unary, streaming) = call(ClientFlags(*keda));
  EXPECT_EQ(unary.error_code(), grpc::StatusCode::NOT_FOUND) << unary.error_message();
  EXPECT_THAT(unary.error_message(), HasSubstr("absent-pool"));
  EXPECT_EQ(streaming.error_code(), grpc::StatusCode::NOT_FOUND) << streaming.error_message();
}

// --admin-tokens is followed on disk: a token revoked from the file is refused without a
// restart, a broken file keeps the tokens in force, and both are events.
TEST_F(SecurityTest, RevokedTokenIsRefusedAfterTheFileChanges) {
  StartTlsControlPlane();  // --tls-reload-interval 1s.
  // Plain variables, not a structured binding: C++17 lambdas cannot capture those (clang).
  int rc = 0;
  std::string out;
  std::tie(rc, out) = Sbctl("read.token", {"status"});
  ASSERT_EQ(rc, 0) << out;

  auto replace_tokens = [&](const std::string& text) {
    std::ofstream(tokens_ + ".new") << text;
    std::filesystem::rename(tokens_ + ".new", tokens_);
  };
  replace_tokens(absl::StrCat("- name: ops\n  role: admin\n  sha256: ", Sha256Hex(kAdminToken), "\n"));
  EXPECT_TRUE(WaitFor(
      [&] {
        std::tie(rc, out) = Sbctl("read.token", {"status"});
        return rc != 0;
      },
      absl::Seconds(30), absl::Milliseconds(200)));
  EXPECT_THAT(out, HasSubstr("matches no entry"));
  std::tie(rc, out) = Sbctl("admin.token", {"status"});
  EXPECT_EQ(rc, 0) << out;

  // Half-written: refused as a whole, the tokens in force stay.
  replace_tokens("- name: ops\n  role: admin\n");
  EXPECT_TRUE(WaitFor(
      [&] {
        std::tie(rc, out) = Sbctl("admin.token", {"events"});
        return rc == 0 && out.find("admin_tokens_reload_failed") != std::string::npos;
      },
      absl::Seconds(30), absl::Milliseconds(200)))
      << out;
  EXPECT_THAT(out, HasSubstr("admin_tokens_reloaded"));
  EXPECT_THAT(out, HasSubstr("keeping the tokens in force"));
  std::tie(rc, out) = Sbctl("read.token", {"status"});
  EXPECT_NE(rc, 0) << out;
  EXPECT_TRUE(cp_->running());
}

// The metrics port (/metrics and the dashboard) serves HTTPS only, with the gRPC port's
// certificate, and follows its rotation without a restart (curl, openssl s_client).
TEST_F(SecurityTest, MetricsPortServesHttps) {
  const std::string cert = (dir_ / "live.crt").string(), key = (dir_ / "live.key").string();
  std::filesystem::copy_file(server_.cert, cert);
  std::filesystem::copy_file(server_.key, key);
  server_ = {cert, key};
  metrics_listen_ = "127.0.0.1:0";
  StartTlsControlPlane();
  const std::string base = absl::StrCat("https://127.0.0.1:", metrics_port_);
  auto curl = [&](const std::string& ca, const std::string& url) {
    return RunToExit("/usr/bin/curl", {"-sS", "--max-time", "10", "--cacert", ca, url}, absl::Seconds(30));
  };
  auto [rc, out] = curl(ca_->cert(), base + "/metrics");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("switchboard_auth_refused_total"));
  std::tie(rc, out) = curl(ca_->cert(), base + "/api/fleet");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("pools"));
  // No plaintext on that port.
  std::tie(rc, out) = RunToExit(
      "/usr/bin/curl", {"-sS", "--max-time", "10", absl::StrCat("http://127.0.0.1:", metrics_port_, "/metrics")},
      absl::Seconds(30));
  EXPECT_THAT(out, Not(HasSubstr("switchboard_auth_refused_total")));
  // The certificate must chain to the fleet CA.
  std::tie(rc, out) = curl(other_ca_->cert(), base + "/metrics");
  EXPECT_NE(rc, 0) << out;

  // Rotation: the other CA's certificate is served to new connections.
  auto rotated = other_ca_->Issue("server", {"IP:127.0.0.1"});
  ASSERT_TRUE(rotated.ok());
  std::filesystem::copy_file(rotated->cert, cert + ".new");
  std::filesystem::copy_file(rotated->key, key + ".new");
  std::filesystem::rename(key + ".new", key);
  std::filesystem::rename(cert + ".new", cert);
  EXPECT_TRUE(WaitFor([&] { return curl(other_ca_->cert(), base + "/metrics").first == 0; }, absl::Seconds(30),
                      absl::Milliseconds(200)));
  std::tie(rc, out) = curl(ca_->cert(), base + "/metrics");
  EXPECT_NE(rc, 0) << "the old certificate is no longer served: " << out;
  // openssl s_client sees the rotated issuer.
  std::tie(rc, out) = RunToExit("/bin/sh",
                                {"-c", absl::StrCat("openssl s_client -connect 127.0.0.1:", metrics_port_, " -CAfile ",
                                                    other_ca_->cert(), " </dev/null 2>&1")},
                                absl::Seconds(30));
  EXPECT_THAT(out, HasSubstr("other-ca"));
  EXPECT_THAT(out, HasSubstr("Verify return code: 0 (ok)"));
  EXPECT_TRUE(cp_->running());
}

// switchboard-sync's /metrics: HTTPS with --tls-cert/--tls-key, only to clients with a
// certificate from --client-ca, following a rotated certificate without a restart; plain
// HTTP only with --insecure (curl, as Prometheus would scrape it).
TEST_F(SecurityTest, SyncMetricsServeHttpsWithClientCertificates) {
  const std::string cert = (dir_ / "sync.crt").string(), key = (dir_ / "sync.key").string();
  std::filesystem::copy_file(server_.cert, cert);
  std::filesystem::copy_file(server_.key, key);
  auto scraper = ca_->Issue("prometheus", {"DNS:prometheus"});
  auto stranger = other_ca_->Issue("prometheus", {"DNS:prometheus"});
  ASSERT_TRUE(scraper.ok() && stranger.ok());
  // No control plane listens on port 1: the metrics listener starts regardless.
  const std::vector<std::string> proxy = {
      "nginx", "--pool", "p", "--out", (dir_ / "up.conf").string(), "--check-cmd", "true", "--reload-cmd", "true"};
  auto sync_args = [&](std::vector<std::string> flags) {
    flags.insert(flags.begin(), {"--controlplane", "127.0.0.1:1", "--ca", ca_->cert()});
    flags.insert(flags.end(), proxy.begin(), proxy.end());
    return flags;
  };
  auto sync = Subprocess::Start("switchboard-sync",
                                sync_args({"--metrics-listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key,
                                           "--client-ca", ca_->cert(), "--tls-reload-interval", "1s"}));
  auto port = sync->WaitForPort("metrics listening on port ", absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string url = absl::StrCat("https://127.0.0.1:", *port, "/metrics");
  auto curl = [&](const std::string& ca, const CertFiles* client) {
    std::vector<std::string> args = {"-sS", "--max-time", "10", "--cacert", ca};
    if (client != nullptr) args.insert(args.end(), {"--cert", client->cert, "--key", client->key});
    args.push_back(url);
    return RunToExit("/usr/bin/curl", args, absl::Seconds(30));
  };
  auto [rc, out] = curl(ca_->cert(), &*scraper);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("switchboard_sync_changes_total"));
  // No client certificate, or one from another CA: refused at the handshake.
  std::tie(rc, out) = curl(ca_->cert(), nullptr);
  EXPECT_NE(rc, 0) << out;
  EXPECT_THAT(out, Not(HasSubstr("switchboard_sync_changes_total")));
  std::tie(rc, out) = curl(ca_->cert(), &*stranger);
  EXPECT_NE(rc, 0) << out;
  EXPECT_THAT(out, Not(HasSubstr("switchboard_sync_changes_total")));
  // No plaintext on that port; a server certificate from another CA is not trusted.
  std::tie(rc, out) =
      RunToExit("/usr/bin/curl", {"-sS", "--max-time", "10", absl::StrCat("http://127.0.0.1:", *port, "/metrics")},
                absl::Seconds(30));
  EXPECT_THAT(out, Not(HasSubstr("switchboard_sync_changes_total")));
  std::tie(rc, out) = curl(other_ca_->cert(), &*scraper);
  EXPECT_NE(rc, 0) << out;

  // Rotation: a certificate from the other CA is served to new connections.
  auto rotated = other_ca_->Issue("server", {"IP:127.0.0.1"});
  ASSERT_TRUE(rotated.ok());
  std::filesystem::copy_file(rotated->cert, cert + ".new");
  std::filesystem::copy_file(rotated->key, key + ".new");
  std::filesystem::rename(key + ".new", key);
  std::filesystem::rename(cert + ".new", cert);
  EXPECT_TRUE(WaitFor([&] { return curl(other_ca_->cert(), &*scraper).first == 0; }, absl::Seconds(30),
                      absl::Milliseconds(200)));
  EXPECT_TRUE(sync->running());

  // Plain HTTP needs --insecure; TLS flags beside --insecure, or without a listener, are
  // usage errors.
  for (const std::vector<std::string>& flags : std::vector<std::vector<std::string>>{
           {"--metrics-listen", "127.0.0.1:0"},
           {"--metrics-listen", "127.0.0.1:0", "--tls-cert", cert},
           {"--tls-cert", cert, "--tls-key", key},
       }) {
    std::tie(rc, out) = RunToExit("switchboard-sync", sync_args(flags), absl::Seconds(10));
    EXPECT_EQ(rc, 2) << absl::StrJoin(flags, " ") << ": " << out;
  }
  std::tie(rc, out) = RunToExit("switchboard-sync",
                                {"--controlplane", "127.0.0.1:1", "--insecure", "--metrics-listen", "127.0.0.1:0",
                                 "--tls-cert", cert, "--tls-key", key, "nginx", "--pool", "p", "--out", "/tmp/x"},
                                absl::Seconds(10));
  EXPECT_EQ(rc, 2) << out;
  EXPECT_THAT(out, HasSubstr("--insecure cannot be combined"));
  auto plain = Subprocess::Start(
      "switchboard-sync",
      {"--controlplane", "127.0.0.1:1", "--insecure", "--metrics-listen", "127.0.0.1:0", "nginx", "--pool", "p",
       "--out", (dir_ / "up2.conf").string(), "--check-cmd", "true", "--reload-cmd", "true"});
  port = plain->WaitForPort("metrics listening on port ", absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  std::tie(rc, out) =
      RunToExit("/usr/bin/curl", {"-sS", "--max-time", "10", absl::StrCat("http://127.0.0.1:", *port, "/metrics")},
                absl::Seconds(30));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("switchboard_sync_changes_total"));
}

// Admin roles: no token cannot read or write, read can only read, admin can do both,
// and every write is an event that names its caller.
TEST_F(SecurityTest, AdminTokenRoles) {
  cp_ = Subprocess::Start("switchboard-controlplane", {"--insecure", "--listen", "127.0.0.1:0", "--metrics-listen", "",
                                                       "--db", (dir_ / "h.db").string(), "--admin-tokens", tokens_});
  auto port = cp_->WaitForPort("grpc listening on port ", absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  cp_addr_ = absl::StrCat("127.0.0.1:", *port);
  auto sbctl = [&](const std::string& token_file, std::vector<std::string> args) {
    std::vector<std::string> all = {"--controlplane", cp_addr_, "--timeout", "5s"};
    if (!token_file.empty()) {
      all.push_back("--token-file");
      all.push_back((dir_ / token_file).string());
    }
    all.insert(all.end(), args.begin(), args.end());
    return RunToExit("sbctl", all, absl::Seconds(30));
  };
  auto [rc, out] = sbctl("", {"drain", "n1"});
  EXPECT_NE(rc, 0);
  EXPECT_THAT(out, HasSubstr("needs a bearer token"));
  std::tie(rc, out) = sbctl("", {"scale", "m", "2"});
  EXPECT_NE(rc, 0);
  EXPECT_THAT(out, HasSubstr("needs a bearer token"));
  std::tie(rc, out) = sbctl("", {"status"});
  EXPECT_NE(rc, 0) << out;

  std::tie(rc, out) = sbctl("read.token", {"status"});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = sbctl("read.token", {"drain", "n1"});
  EXPECT_NE(rc, 0);
  EXPECT_THAT(out, HasSubstr("token:viewer has role read; this call needs role admin"));

  const std::string wrong = WriteFile("wrong.token", "not-a-token");
  std::tie(rc, out) = sbctl("wrong.token", {"status"});
  EXPECT_NE(rc, 0);
  EXPECT_THAT(out, HasSubstr("matches no entry"));
  EXPECT_THAT(out, Not(HasSubstr("not-a-token")));

  // Admin may write (the node is unknown, so NOT_FOUND: past the role check).
  std::tie(rc, out) = sbctl("admin.token", {"drain", "n1"});
  EXPECT_THAT(out, Not(HasSubstr("role")));
  EXPECT_THAT(out, HasSubstr("n1"));
  // $SWITCHBOARD_TOKEN works as --token-file does.
  setenv("SWITCHBOARD_TOKEN", kAdminToken, 1);
  std::tie(rc, out) = sbctl("", {"events"});
  unsetenv("SWITCHBOARD_TOKEN");
  EXPECT_EQ(rc, 0) << out;

  // A write that succeeds names its caller: an agent for n5, drained by ops.
  auto fake = Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m"});
  auto fake_port = fake->WaitForPort("http listening on port ", absl::Seconds(20));
  ASSERT_TRUE(fake_port.ok());
  auto agent =
      Subprocess::Start("switchboard-agent", {"--controlplane", cp_addr_, "--backend",
                                              absl::StrCat("llamacpp=http://127.0.0.1:", *fake_port), "--node-id", "n5",
                                              "--report-interval", "250ms", "--gpu", "none"});
  EXPECT_TRUE(WaitFor(
      [&] {
        return sbctl("admin.token", {"drain", "n5"}).first == 0;
      },
      absl::Seconds(30), absl::Milliseconds(200)));
  std::tie(rc, out) = sbctl("admin.token", {"events"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("by token:ops"));
}

// --subscriber-auth token: a subscriber without a token is refused, one with a token
// gets assignments.
TEST_F(SecurityTest, SubscriberAuth) {
  StartTlsControlPlane({"--subscriber-auth", "token"});
  TlsFlags flags;
  flags.ca = ca_->cert();
  auto credentials = MakeChannelCredentials(flags);
  ASSERT_TRUE(credentials.ok());
  auto stub = v1::DiscoveryService::NewStub(grpc::CreateChannel(cp_addr_, *credentials));
  grpc::ClientContext refused_context;
  refused_context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(Scaled(absl::Seconds(10))));
  auto stream = stub->Subscribe(&refused_context);
  v1::SubscribeRequest req;
  req.set_subscriber_id("no-token");
  stream->Write(req);
  v1::Assignment a;
  EXPECT_FALSE(stream->Read(&a));
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();

  // With a token the stream is served: it is listed among the connected clients.
  grpc::ClientContext with_token;
  with_token.AddMetadata("authorization", absl::StrCat("Bearer ", kReadToken));
  auto served = stub->Subscribe(&with_token);
  req.set_subscriber_id("with-token");
  served->Write(req);
  auto admin = v1::AdminService::NewStub(grpc::CreateChannel(cp_addr_, *credentials));
  EXPECT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext context;
        context.AddMetadata("authorization", absl::StrCat("Bearer ", kReadToken));
        v1::ListClientsResponse response;
        return admin->ListClients(&context, v1::ListClientsRequest(), &response).ok() && response.clients_size() == 1;
      },
      absl::Seconds(10)));
  with_token.TryCancel();
  served->Finish();
}

// switchboard-picker over TLS: its ext_proc listener presents the certificate it is
// given (a client trusting the fleet CA is answered; plaintext and a client trusting
// another CA are not), and it subscribes to a TLS control plane that wants a token.
TEST_F(SecurityTest, PickerServesAndSubscribesOverTls) {
  StartTlsControlPlane({"--subscriber-auth", "token"});
  auto cert = ca_->Issue("picker", {"IP:127.0.0.1", "DNS:localhost"});
  ASSERT_TRUE(cert.ok()) << cert.status();
  // Neither TLS flags nor --insecure: refused.
  auto [rc, out] = RunToExit(BinDir() + "/switchboard-picker", {"--controlplane", cp_addr_, "--listen", "127.0.0.1:0"},
                             absl::Seconds(20));
  EXPECT_EQ(rc, 2) << out;
  EXPECT_THAT(out, HasSubstr("--tls-cert"));

  auto picker = Subprocess::Start(
      "switchboard-picker", {"--tls-cert", cert->cert, "--tls-key", cert->key, "--ca", ca_->cert(), "--token-file",
                             (dir_ / "read.token").string(), "--controlplane", cp_addr_, "--listen", "127.0.0.1:0",
                             "--pool", "llama", "--tls-reload-interval", "1s", "--metrics-listen", "127.0.0.1:0"});
  // The metrics port is printed first.
  auto metrics_port = picker->WaitForPort("metrics listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
  auto port = picker->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string target = absl::StrCat("127.0.0.1:", *port);

  // Its /metrics speaks HTTPS with the same certificate; plain HTTP is refused.
  std::tie(rc, out) = RunToExit("/usr/bin/curl",
                                {"-sS", "--max-time", "10", "--cacert", ca_->cert(),
                                 absl::StrCat("https://127.0.0.1:", *metrics_port, "/metrics")},
                                absl::Seconds(30));
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("switchboard_build_info"));
  std::tie(rc, out) = RunToExit(
      "/usr/bin/curl", {"-sS", "--max-time", "10", absl::StrCat("http://127.0.0.1:", *metrics_port, "/metrics")},
      absl::Seconds(30));
  EXPECT_THAT(out, Not(HasSubstr("switchboard_build_info")));

  // Subscribed over TLS with the token: the control plane lists its stream.
  TlsFlags trusting;
  trusting.ca = ca_->cert();
  auto credentials = MakeChannelCredentials(trusting);
  ASSERT_TRUE(credentials.ok());
  auto admin = v1::AdminService::NewStub(grpc::CreateChannel(cp_addr_, *credentials));
  EXPECT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext context;
        context.AddMetadata("authorization", absl::StrCat("Bearer ", kReadToken));
        v1::ListClientsResponse response;
        if (!admin->ListClients(&context, v1::ListClientsRequest(), &response).ok()) return false;
        for (const v1::ConnectedClient& c : response.clients()) {
          if (absl::StartsWith(c.client_id(), "switchboard-picker-")) return true;
        }
        return false;
      },
      Scaled(absl::Seconds(10))));

  // One request as Envoy sends it: no assignment for the pool yet, so a 503, over TLS.
  auto ask = [&](std::shared_ptr<grpc::ChannelCredentials> channel_credentials) {
    auto stub = ext_proc::ExternalProcessor::NewStub(grpc::CreateChannel(target, channel_credentials));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(Scaled(absl::Seconds(10))));
    auto stream = stub->Process(&context);
    ext_proc::ProcessingRequest headers;
    auto* h = headers.mutable_request_headers()->mutable_headers()->add_headers();
    h->set_key(":path");
    h->set_raw_value("/v1/completions");
    headers.mutable_request_headers()->set_end_of_stream(false);
    stream->Write(headers);
    ext_proc::ProcessingRequest body;
    body.mutable_request_body()->set_body(R"({"model":"llama","prompt":"hi"})");
    body.mutable_request_body()->set_end_of_stream(true);
    stream->Write(body);
    ext_proc::ProcessingResponse response;
    const int code = stream->Read(&response) && response.has_immediate_response()
                         ? static_cast<int>(response.immediate_response().status().code())
                         : 0;
    context.TryCancel();
    (void)stream->Finish();
    return code;
  };
  EXPECT_EQ(ask(*credentials), 503);
  EXPECT_EQ(ask(grpc::InsecureChannelCredentials()), 0);  // Plaintext to a TLS port.
  TlsFlags other;
  other.ca = other_ca_->cert();
  auto wrong = MakeChannelCredentials(other);
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(ask(*wrong), 0);  // A certificate the client does not trust.
}

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string out;
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// grpc.health.v1.Health/Check for `service` as a generic call (no health proto is compiled
// here): the call's status, and whether the answer is SERVING.
std::pair<grpc::Status, bool> HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(Scaled(absl::Seconds(5))));
  // HealthCheckRequest{service = 1}: field 1, length-delimited.
  grpc::Slice slice(absl::StrCat(std::string(1, '\x0a'), std::string(1, static_cast<char>(service.size())), service));
  grpc::ByteBuffer request(&slice, 1), response;
  grpc::Status status;
  Notification done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = s;
                   done.Notify();
                 });
  done.WaitForNotification();
  const std::string answer = status.ok() ? Bytes(response) : "";
  return {status, answer == std::string("\x08\x01", 2)};  // HealthCheckResponse{status = SERVING}.
}

// One grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo exchange (the version
// Debian's gRPC serves) asking for the services (ServerReflectionRequest.list_services =
// "*", field 7), as a generic call: the call's status and the answer's bytes.
std::pair<grpc::Status, std::string> ListServices(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(Scaled(absl::Seconds(5))));
  auto call = stub.PrepareCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  auto next = [&] { return cq.Next(&tag, &ok) && ok; };  // One operation in flight at a time.
  call->StartCall(nullptr);
  std::string answer;
  if (next()) {
    grpc::Slice slice(std::string("\x3a\x01*", 3));
    grpc::ByteBuffer request(&slice, 1), response;
    call->Write(request, nullptr);
    if (next()) {
      call->WritesDone(nullptr);
      next();
      call->Read(&response, nullptr);
      if (next()) answer = Bytes(response);
    }
  }
  grpc::Status status;
  call->Finish(&status, nullptr);
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return {status, answer};
}

// The picker's services besides ext_proc, as deploy/kubernetes/gateway/picker.yaml runs
// it (TLS to the gateway, a client certificate alone toward a cert-or-token control
// plane): --health-plaintext serves the health port in plaintext, for the kubelet's gRPC
// probe, and only health there; without it that port is TLS. Server reflection is off
// unless --reflection, and then only on the ext_proc port.
TEST_F(SecurityTest, PickerHealthForProbesAndReflectionOnlyWhenAsked) {
  StartTlsControlPlane({"--subscriber-auth", "cert-or-token"});
  auto cert = ca_->Issue("picker", {"IP:127.0.0.1", "DNS:localhost"});
  ASSERT_TRUE(cert.ok()) << cert.status();
  TlsFlags trusting;
  trusting.ca = ca_->cert();
  auto tls = MakeChannelCredentials(trusting);
  ASSERT_TRUE(tls.ok());
  struct Picker {
    std::unique_ptr<Subprocess> process;
    std::string ext_proc, health;
  };
  auto start = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"--tls-cert",     cert->cert, "--tls-key", cert->key,     "--ca",
                                     ca_->cert(),      "--cert",   cert->cert,  "--key",       cert->key,
                                     "--controlplane", cp_addr_,   "--listen",  "127.0.0.1:0", "--health-listen",
                                     "127.0.0.1:0",    "--pool",   "llama"};
    args.insert(args.end(), extra.begin(), extra.end());
    Picker p;
    p.process = Subprocess::Start("switchboard-picker", args);
    auto port = p.process->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
    auto health = p.process->WaitForPort("grpc health listening on port ", Scaled(absl::Seconds(20)));
    EXPECT_TRUE(port.ok() && health.ok());
    if (port.ok()) p.ext_proc = absl::StrCat("127.0.0.1:", *port);
    if (health.ok()) p.health = absl::StrCat("127.0.0.1:", *health);
    return p;
  };
  auto plain = [](const std::string& target) {
    return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  };
  auto secure = [&](const std::string& target) { return grpc::CreateChannel(target, *tls); };

  Picker probed = start({"--health-plaintext"});
  ASSERT_FALSE(probed.ext_proc.empty() || probed.health.empty());
  // Subscribed with its certificate alone (no token): the control plane lists its stream.
  auto admin = v1::AdminService::NewStub(secure(cp_addr_));
  EXPECT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext context;
        context.AddMetadata("authorization", absl::StrCat("Bearer ", kReadToken));
        v1::ListClientsResponse response;
        if (!admin->ListClients(&context, v1::ListClientsRequest(), &response).ok()) return false;
        for (const v1::ConnectedClient& c : response.clients()) {
          if (absl::StartsWith(c.client_id(), "switchboard-picker-")) return true;
        }
        return false;
      },
      Scaled(absl::Seconds(10))));
  // The health port answers a plaintext probe: alive, not ready (no assignment for llama).
  auto [live_status, live] = HealthCheck(plain(probed.health), "liveness");
  EXPECT_TRUE(live_status.ok()) << live_status.error_message();
  EXPECT_TRUE(live);
  auto [ready_status, ready] = HealthCheck(plain(probed.health), "readiness");
  EXPECT_TRUE(ready_status.ok()) << ready_status.error_message();
  EXPECT_FALSE(ready);
  // The ext_proc port stays TLS only, and serves health there too.
  EXPECT_FALSE(HealthCheck(plain(probed.ext_proc), "liveness").first.ok());
  EXPECT_TRUE(HealthCheck(secure(probed.ext_proc), "liveness").second);
  // No reflection on either port.
  EXPECT_EQ(ListServices(secure(probed.ext_proc)).first.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(ListServices(plain(probed.health)).first.error_code(), grpc::StatusCode::UNIMPLEMENTED);

  // --reflection, and the health port left TLS (no --health-plaintext).
  Picker reflecting = start({"--reflection"});
  ASSERT_FALSE(reflecting.ext_proc.empty() || reflecting.health.empty());
  auto [listed_status, listed] = ListServices(secure(reflecting.ext_proc));
  EXPECT_TRUE(listed_status.ok()) << listed_status.error_message();
  EXPECT_THAT(listed, HasSubstr("envoy.service.ext_proc.v3.ExternalProcessor"));
  EXPECT_EQ(ListServices(secure(reflecting.health)).first.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_FALSE(HealthCheck(plain(reflecting.health), "liveness").first.ok());
  EXPECT_TRUE(HealthCheck(secure(reflecting.health), "liveness").second);
}

// Limits: oversize, over-rate and too-many inputs end with RESOURCE_EXHAUSTED naming the
// limit, are counted, and the control plane keeps serving everyone else.
TEST_F(SecurityTest, LimitsHold) {
  cp_ = Subprocess::Start(
      "switchboard-controlplane",
      {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--db", "", "--max-message-size", "65536",
       "--max-streams-per-peer", "3", "--max-report-rate", "2", "--max-endpoints-per-node", "2"});
  auto port = cp_->WaitForPort("grpc listening on port ", absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  auto metrics_port = cp_->WaitForPort("metrics listening on port ", absl::Seconds(20));
  ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
  cp_addr_ = absl::StrCat("127.0.0.1:", *port);
  // One stream: Hello for `node` with `endpoints` endpoints and a label of `label_bytes`,
  // then `reports` reports at once. Returns how the stream ended.
  auto run_agent = [&](const std::string& node, int endpoints, size_t label_bytes, int reports) {
    auto stub = v1::AgentService::NewStub(grpc::CreateChannel(cp_addr_, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(Scaled(absl::Seconds(10))));
    auto stream = stub->Connect(&context);
    v1::AgentMessage hello;
    hello.mutable_hello()->set_node_id(node);
    if (label_bytes > 0) (*hello.mutable_hello()->mutable_labels())["big"] = std::string(label_bytes, 'x');
    for (int i = 0; i < endpoints; ++i) {
      v1::EndpointInfo* ep = hello.mutable_hello()->add_endpoints();
      ep->set_address(absl::StrCat("127.0.0.1:", 9000 + i));
      ep->add_models("m");
    }
    stream->Write(hello);
    for (int i = 1; i <= reports; ++i) {
      v1::AgentMessage report;
      report.mutable_report()->set_sequence(i);
      if (!stream->Write(report)) break;
    }
    stream->WritesDone();
    v1::ControlMessage reply;
    while (stream->Read(&reply)) {
    }
    return stream->Finish();
  };

  grpc::Status s = run_agent("big", 1, 100 * 1024, 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  s = run_agent("wide", 3, 0, 0);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("--max-endpoints-per-node"));
  s = run_agent("chatty", 1, 0, 20);  // A burst of 4 is allowed at 2 per second.
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("--max-report-rate"));
  EXPECT_TRUE(run_agent("calm", 1, 0, 2).ok());  // Others are served.

  // Three streams from 127.0.0.1 are the most; a fourth is refused, and once one ends
  // another may open. Every stream counts, the agents' above too: each holds its place
  // until the control plane is done with it, which may come after the agent has its
  // status, so wait for them to be gone.
  auto scrape = [&] {
    return RunToExit("/usr/bin/curl", {"-s", absl::StrCat("http://127.0.0.1:", *metrics_port, "/metrics")},
                     absl::Seconds(10))
        .second;
  };
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(scrape(), "switchboard_streams{service=\"agent\"} 0"); },
                      absl::Seconds(10)));
  auto stub = v1::DiscoveryService::NewStub(grpc::CreateChannel(cp_addr_, grpc::InsecureChannelCredentials()));
  struct Open {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderWriter<v1::SubscribeRequest, v1::Assignment>> stream;
  };
  auto open = [&] {
    auto o = std::make_unique<Open>();
    o->context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(Scaled(absl::Seconds(20))));
    o->stream = stub->Subscribe(&o->context);
    v1::SubscribeRequest req;
    req.set_subscriber_id("limits");
    req.add_pools("m");
    o->stream->Write(req);
    return o;
  };
  auto admin = v1::AdminService::NewStub(grpc::CreateChannel(cp_addr_, grpc::InsecureChannelCredentials()));
  auto subscribers = [&] {
    grpc::ClientContext context;
    v1::ListClientsResponse response;
    return admin->ListClients(&context, v1::ListClientsRequest(), &response).ok() ? response.clients_size() : -1;
  };
  std::vector<std::unique_ptr<Open>> streams;
  for (int i = 0; i < 3; ++i) {
    streams.push_back(open());
    EXPECT_TRUE(WaitFor([&] { return subscribers() == i + 1; }, absl::Seconds(10))) << "stream " << i;
  }
  auto fourth = open();
  v1::Assignment a;
  EXPECT_FALSE(fourth->stream->Read(&a));
  s = fourth->stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("--max-streams-per-peer 3"));
  streams.front()->context.TryCancel();
  streams.front()->stream->Finish();
  streams.erase(streams.begin());
  EXPECT_TRUE(WaitFor([&] { return subscribers() == 2; }, absl::Seconds(10)));
  streams.push_back(open());  // Its place was given back.
  EXPECT_TRUE(WaitFor([&] { return subscribers() == 3; }, absl::Seconds(10)));
  for (auto& o : streams) {
    o->context.TryCancel();
    o->stream->Finish();
  }

  // Each refusal is counted.
  auto [rc, text] = RunToExit("/usr/bin/curl", {"-s", absl::StrCat("http://127.0.0.1:", *metrics_port, "/metrics")},
                              absl::Seconds(10));
  EXPECT_THAT(text, HasSubstr("switchboard_limit_exceeded_total{limit=\"report_rate\"} 1"));
  EXPECT_THAT(text, HasSubstr("switchboard_limit_exceeded_total{limit=\"streams_per_peer\"} 1"));
  EXPECT_THAT(text, HasSubstr("switchboard_limit_exceeded_total{limit=\"fleet_size\"} 1"));
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A whole TLS run with tokens, every program logging at debug level: neither a token,
// a token's hash nor any line of a private key appears in any log or output.
TEST_F(SecurityTest, SecretsNeverLogged) {
  setenv("SWITCHBOARD_LOG_LEVEL", "debug", 1);
  const std::string cp_log = (dir_ / "cp.log").string(), agent_log = (dir_ / "agent.log").string();
  auto agent_cert = ca_->Issue("n1", {"DNS:n1"});
  ASSERT_TRUE(agent_cert.ok());
  cp_ = Subprocess::Start("/bin/sh",
                          {"-c", absl::StrCat("exec ", BinDir(),
                                              "/switchboard-controlplane --listen 127.0.0.1:0 --metrics-listen '' "
                                              "--db '' --tls-cert ",
                                              server_.cert, " --tls-key ", server_.key, " --client-ca ", ca_->cert(),
                                              " --admin-tokens ", tokens_, " 2>", cp_log)});
  auto port = cp_->WaitForPort("grpc listening on port ", absl::Seconds(20));
  ASSERT_TRUE(port.ok()) << port.status();
  cp_addr_ = absl::StrCat("127.0.0.1:", *port);
  auto fake = Subprocess::Start("switchboard-fakellm", {"--listen", "127.0.0.1:0", "--model", "m"});
  auto fake_port = fake->WaitForPort("http listening on port ", absl::Seconds(20));
  ASSERT_TRUE(fake_port.ok());
  auto agent = Subprocess::Start(
      "/bin/sh", {"-c", absl::StrCat("exec ", BinDir(), "/switchboard-agent --controlplane ", cp_addr_, " --ca ",
                                     ca_->cert(), " --cert ", agent_cert->cert, " --key ", agent_cert->key,
                                     " --backend llamacpp=http://127.0.0.1:", *fake_port,
                                     " --node-id n1 --report-interval 250ms --gpu none 2>", agent_log)});
  std::string outputs;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto [rc, out] = Sbctl("admin.token", {"drain", "n1"});
        outputs += out;
        return rc == 0;
      },
      absl::Seconds(30), absl::Milliseconds(300)));
  for (const char* file : {"read.token", "admin.token"}) outputs += Sbctl(file, {"status"}).second;
  outputs += Sbctl("read.token", {"scale", "m", "3"}).second;
  WriteFile("bad.token", "bad-token-0123456789");
  outputs += Sbctl("bad.token", {"status"}).second;
  setenv("SWITCHBOARD_TOKEN", kAdminToken, 1);
  outputs += Sbctl("", {"--insecure", "events"}).second;  // Refused (TLS server), token not echoed.
  unsetenv("SWITCHBOARD_TOKEN");
  cp_->Signal(SIGTERM);
  cp_->Wait();
  agent.reset();
  unsetenv("SWITCHBOARD_LOG_LEVEL");

  const std::string logs = ReadAll(cp_log) + ReadAll(agent_log) + outputs;
  EXPECT_THAT(logs, HasSubstr("token:viewer"));  // The caller is named...
  std::vector<std::string> secrets = {kReadToken, kAdminToken, "bad-token-0123456789", Sha256Hex(kReadToken),
                                      Sha256Hex(kAdminToken)};
  for (const std::string& key_file : {server_.key, agent_cert->key, std::string(dir_ / "fleet-ca.key")}) {
    std::istringstream key(ReadAll(key_file));
    for (std::string line; std::getline(key, line);) {
      if (line.size() > 16 && line.find("-----") == std::string::npos) secrets.push_back(line);
    }
  }
  ASSERT_GT(secrets.size(), 5u);
  for (const std::string& secret : secrets) EXPECT_THAT(logs, Not(HasSubstr(secret)));  // ...its secrets never.
}

}  // namespace
}  // namespace switchboard::testing
