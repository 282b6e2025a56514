// The ADS protocol, driven by hand over a real stream against the real control plane:
// ACK, NACK (no resend loop), stale nonces, unsubscribe, wildcard, names that appear
// later. "Nothing was sent" is shown with a fence: the server handles requests in order
// and writes what a request causes before it reads the next, so when the response to a
// later request is the next message, the earlier request caused none.
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/net.h"
#include "common/prometheus_text.h"
#include "controlplane/xds/resources.h"
#include "controlplane/xds/type_urls.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/integration/harness.h"
#include "tests/interop/agent_client.h"

namespace switchboard::testing {
namespace {

namespace xds = controlplane::xds;
using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

v1::EndpointReport Report(const std::string& address, const std::vector<std::string>& models, uint32_t slots) {
  v1::EndpointReport r;
  r.set_address(address);
  r.set_state(v1::ENDPOINT_STATE_READY);
  for (const auto& m : models) r.add_models(m);
  r.set_slots_total(slots);
  return r;
}

class AdsProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = absl::StrCat(::testing::TempDir(), "/ads_protocol_", getpid(), ".db");
    std::filesystem::remove(db_);
    cp_ = Subprocess::Start("switchboard-controlplane",
                            {"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--db", db_, "--insecure"});
    auto port = cp_->WaitForPort("grpc listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(port.ok()) << port.status();
    auto metrics_port = cp_->WaitForPort("metrics listening on port ", Scaled(absl::Seconds(20)));
    ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
    metrics_port_ = *metrics_port;
    cp_addr_ = absl::StrCat("127.0.0.1:", *port);

    // Pools "a" and "b"; the third endpoint reports no model until a test gives it "c".
    std::vector<v1::EndpointInfo> infos;
    std::vector<v1::EndpointReport> reports = {Report("127.0.0.1:7001", {"a"}, 4), Report("127.0.0.1:7002", {"b"}, 4),
                                               Report("127.0.0.1:7003", {}, 4)};
    for (const auto& r : reports) {
      v1::EndpointInfo info;
      info.set_address(r.address());
      info.set_slots_total(r.slots_total());
      infos.push_back(info);
    }
    agent_ = std::make_unique<AgentClient>(cp_addr_, "n1", infos, reports);
    subscriber_ = std::make_unique<Subscriber>(cp_addr_, std::vector<std::string>{});
    for (const char* pool : {"a", "b"}) {
      ASSERT_TRUE(subscriber_->WaitFor(
          pool, [](const v1::Assignment& x) { return !x.endpoints().empty(); }, Scaled(absl::Seconds(20))));
    }

    stub_ = AggregatedDiscoveryService::NewStub(MakeChannel(cp_addr_));
    // A message that never comes fails the test at this deadline instead of hanging it.
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stream_ = stub_->StreamAggregatedResources(&context_);
  }

  void TearDown() override {
    if (stream_) {
      context_.TryCancel();
      stream_->Finish();
    }
    cp_.reset();
    std::filesystem::remove(db_);
  }

  void Send(const std::string& type, const std::vector<std::string>& names, const std::string& nonce = "",
            const std::string& version = "", const std::string& error = "") {
    DiscoveryRequest r;
    if (first_) {
      r.mutable_node()->set_id("hand-driven");
      r.mutable_node()->set_user_agent_name(user_agent_);
      first_ = false;
    }
    r.set_type_url(type);
    for (const auto& n : names) r.add_resource_names(n);
    r.set_response_nonce(nonce);
    r.set_version_info(version);
    if (!error.empty()) {
      r.mutable_error_detail()->set_code(3);
      r.mutable_error_detail()->set_message(error);
    }
    ASSERT_TRUE(stream_->Write(r));
  }

  DiscoveryResponse Read() {
    DiscoveryResponse response;
    EXPECT_TRUE(stream_->Read(&response));
    return response;
  }

  void Ack(const DiscoveryResponse& r, const std::vector<std::string>& names) {
    Send(r.type_url(), names, r.nonce(), r.version_info());
  }

  // The names of the resources in `r`.
  static std::vector<std::string> Names(const DiscoveryResponse& r) {
    std::vector<std::string> names;
    for (const auto& any : r.resources()) {
      if (any.type_url() == xds::kClusterLoadAssignmentType) {
        envoy::config::endpoint::v3::ClusterLoadAssignment cla;
        any.UnpackTo(&cla);
        names.push_back(cla.cluster_name());
      } else if (any.type_url() == xds::kClusterType) {
        envoy::config::cluster::v3::Cluster cluster;
        any.UnpackTo(&cluster);
        names.push_back(cluster.name());
      } else {
        names.push_back(any.type_url());
      }
    }
    return names;
  }

  // A fence: a first request of a type not yet subscribed on this stream, so an answer
  // is certain; returns the next message, which must be that answer.
  DiscoveryResponse Fence(const std::string& type, const std::vector<std::string>& names) {
    Send(type, names);
    return Read();
  }

  double Metric(const std::string& name, const std::map<std::string, std::string>& labels) {
    httplib::Client http("127.0.0.1", metrics_port_);
    auto res = http.Get("/metrics");
    if (!res) return -1;
    auto scrape = PromScrape::Parse(res->body);
    return scrape.ok() ? scrape->Value(name, labels).value_or(0) : -1;
  }

  std::string db_;
  std::unique_ptr<Subprocess> cp_;
  std::string cp_addr_;
  int metrics_port_ = 0;
  std::unique_ptr<AgentClient> agent_;
  std::unique_ptr<Subscriber> subscriber_;
  std::unique_ptr<AggregatedDiscoveryService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<DiscoveryRequest, DiscoveryResponse>> stream_;
  bool first_ = true;
  std::string user_agent_ = "test";
};

TEST_F(AdsProtocolTest, AckIsNotAnsweredAndNackDoesNotLoop) {
  Send(xds::kClusterLoadAssignmentType, {"a"});
  DiscoveryResponse eds = Read();
  EXPECT_EQ(Names(eds), std::vector<std::string>{"a"});
  Ack(eds, {"a"});
  // The ACK caused nothing: the next message answers the next request.
  DiscoveryResponse cds = Fence(xds::kClusterType, {"a"});
  EXPECT_EQ(cds.type_url(), xds::kClusterType);
  Ack(cds, {"a"});  // Listeners wait until the clusters are taken (make before break).

  // A NACK of the EDS response: recorded, and the rejected version is not sent again.
  Send(xds::kClusterLoadAssignmentType, {"a"}, eds.nonce(), "", "rejected for the test");
  EXPECT_EQ(Fence(xds::kListenerType, {"a"}).type_url(), xds::kListenerType);
  EXPECT_TRUE(WaitFor(
      [&] {
        return Metric("switchboard_xds_replies_total", {{"type", "nack"}}) == 1;
      },
      Scaled(absl::Seconds(10))));

  // A change to pool a's assignment is sent, with a new version.
  agent_->Update(0, [](v1::EndpointReport* r) { r->set_state(v1::ENDPOINT_STATE_DRAINING); });
  DiscoveryResponse changed = Read();
  EXPECT_EQ(changed.type_url(), xds::kClusterLoadAssignmentType);
  EXPECT_NE(changed.version_info(), eds.version_info());
}

// `sbctl clients --json`, parsed; an empty response if sbctl failed or printed no JSON.
v1::ListClientsResponse SbctlClients(const std::string& target) {
  v1::ListClientsResponse out;
  auto [code, text] = RunSbctl(target, "clients --json");
  const size_t begin = text.find('{');
  const size_t end = text.rfind('}');
  if (code != 0 || begin == std::string::npos || end == std::string::npos) {
    ADD_FAILURE() << "sbctl clients --json: exit " << code << ": " << text;
    return out;
  }
  auto status = google::protobuf::util::JsonStringToMessage(text.substr(begin, end - begin + 1), &out);
  EXPECT_TRUE(status.ok()) << status << ": " << text;
  return out;
}

const v1::ConnectedClient* FindClient(const v1::ListClientsResponse& clients, const std::string& id) {
  for (const auto& c : clients.clients()) {
    if (c.client_id() == id) return &c;
  }
  return nullptr;
}

TEST_F(AdsProtocolTest, SbctlClientsShowsAcksNacksAndDisconnects) {
  Send(xds::kClusterLoadAssignmentType, {"a"});
  DiscoveryResponse eds = Read();
  Ack(eds, {"a"});
  DiscoveryResponse cds = Fence(xds::kClusterType, {"a"});
  ASSERT_EQ(cds.type_url(), xds::kClusterType);
  Send(xds::kClusterType, {"a"}, cds.nonce(), "", "cluster a rejected for the test");

  // The native subscriber ACKs every assignment; the newest of pool a is the one to see.
  v1::Assignment native_a;
  ASSERT_TRUE(subscriber_->WaitFor(
      "a", [](const v1::Assignment& x) { return !x.endpoints().empty(); }, Scaled(absl::Seconds(10)), &native_a));

  v1::ListClientsResponse clients;
  EXPECT_TRUE(WaitFor(
      [&] {
        clients = SbctlClients(cp_addr_);
        const v1::ConnectedClient* ads = FindClient(clients, "hand-driven");
        const v1::ConnectedClient* native = FindClient(clients, "integration-test");
        return ads != nullptr && !ads->last_nack().empty() && native != nullptr &&
               native->acked_versions().count("a") != 0 && native->acked_versions().at("a") == native_a.version();
      },
      Scaled(absl::Seconds(10)), absl::Milliseconds(100)))
      << clients.DebugString();

  const v1::ConnectedClient* ads = FindClient(clients, "hand-driven");
  ASSERT_NE(ads, nullptr);
  EXPECT_EQ(ads->protocol(), "ads-sotw");
  EXPECT_EQ(ads->user_agent(), "test");
  EXPECT_NE(ads->peer().find("127.0.0.1"), std::string::npos) << ads->peer();
  ASSERT_EQ(ads->acked_versions().count(xds::kClusterLoadAssignmentType), 1u);
  EXPECT_EQ(ads->acked_versions().at(xds::kClusterLoadAssignmentType), eds.version_info());
  EXPECT_EQ(ads->acked_versions().count(xds::kClusterType), 0u);  // Only NACKed.
  EXPECT_EQ(ads->last_nack_resource(), xds::kClusterType);
  EXPECT_EQ(ads->last_nack(), "cluster a rejected for the test");
  EXPECT_TRUE(ads->has_last_nack_time());
  EXPECT_TRUE(ads->has_connected_since());
  EXPECT_EQ(std::vector<std::string>(ads->resources().begin(), ads->resources().end()),
            (std::vector<std::string>{xds::kClusterType, xds::kClusterLoadAssignmentType}));

  const v1::ConnectedClient* native = FindClient(clients, "integration-test");
  ASSERT_NE(native, nullptr);
  EXPECT_EQ(native->protocol(), "native");
  EXPECT_NE(native->user_agent().find("grpc-c++"), std::string::npos) << native->user_agent();
  EXPECT_EQ(std::vector<std::string>(native->resources().begin(), native->resources().end()),
            std::vector<std::string>{"*"});
  EXPECT_TRUE(native->last_nack().empty());

  // The table names both.
  auto [code, table] = RunSbctl(cp_addr_, "clients");
  EXPECT_EQ(code, 0) << table;
  EXPECT_NE(table.find("hand-driven"), std::string::npos) << table;
  EXPECT_NE(table.find("cluster a rejected for the test"), std::string::npos) << table;
  EXPECT_NE(table.find("integration-test"), std::string::npos) << table;
  EXPECT_NE(table.find(absl::StrCat("a=", native_a.version().substr(0, 12))), std::string::npos) << table;
  EXPECT_NE(table.find(absl::StrCat("ClusterLoadAssignment=", eds.version_info().substr(0, 12))), std::string::npos)
      << table;

  // Disconnected clients disappear.
  context_.TryCancel();
  stream_->Finish();
  stream_.reset();
  subscriber_.reset();
  EXPECT_TRUE(WaitFor(
      [&] {
        clients = SbctlClients(cp_addr_);
        return FindClient(clients, "hand-driven") == nullptr && FindClient(clients, "integration-test") == nullptr;
      },
      Scaled(absl::Seconds(10)), absl::Milliseconds(100)))
      << clients.DebugString();
}

TEST_F(AdsProtocolTest, SbctlClientsShowsDeltaSubscribers) {
  using envoy::service::discovery::v3::DeltaDiscoveryRequest;
  using envoy::service::discovery::v3::DeltaDiscoveryResponse;
  grpc::ClientContext context;
  auto delta = stub_->DeltaAggregatedResources(&context);
  DeltaDiscoveryRequest request;
  request.mutable_node()->set_id("delta-envoy");
  request.mutable_node()->set_user_agent_name("envoy");
  request.mutable_node()->set_user_agent_version("1.36.0");
  request.set_type_url(xds::kClusterLoadAssignmentType);
  request.add_resource_names_subscribe("a");
  ASSERT_TRUE(delta->Write(request));
  DeltaDiscoveryResponse response;
  ASSERT_TRUE(delta->Read(&response));
  ASSERT_EQ(response.resources_size(), 1);
  DeltaDiscoveryRequest ack;
  ack.set_type_url(xds::kClusterLoadAssignmentType);
  ack.set_response_nonce(response.nonce());
  ASSERT_TRUE(delta->Write(ack));

  v1::ListClientsResponse clients;
  const v1::ConnectedClient* found = nullptr;
  EXPECT_TRUE(WaitFor(
      [&] {
        clients = SbctlClients(cp_addr_);
        found = FindClient(clients, "delta-envoy");
        return found != nullptr && found->acked_versions().count(xds::kClusterLoadAssignmentType) != 0;
      },
      Scaled(absl::Seconds(10)), absl::Milliseconds(100)))
      << clients.DebugString();
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->protocol(), "ads-delta");
  EXPECT_EQ(found->user_agent(), "envoy/1.36.0");
  EXPECT_EQ(found->acked_versions().at(xds::kClusterLoadAssignmentType), response.system_version_info());
  EXPECT_EQ(std::vector<std::string>(found->resources().begin(), found->resources().end()),
            std::vector<std::string>{xds::kClusterLoadAssignmentType});
  // Listed next to the state-of-the-world and native subscribers.
  EXPECT_NE(FindClient(clients, "integration-test"), nullptr);
  auto [code, table] = RunSbctl(cp_addr_, "clients");
  EXPECT_EQ(code, 0) << table;
  EXPECT_NE(table.find("delta-envoy"), std::string::npos) << table;
  EXPECT_NE(table.find("ads-delta"), std::string::npos) << table;

  context.TryCancel();
  delta->Finish();
  EXPECT_TRUE(WaitFor(
      [&] {
        clients = SbctlClients(cp_addr_);
        return FindClient(clients, "delta-envoy") == nullptr;
      },
      Scaled(absl::Seconds(10)), absl::Milliseconds(100)))
      << clients.DebugString();
}

TEST_F(AdsProtocolTest, StaleNonceIsIgnored) {
  Send(xds::kClusterLoadAssignmentType, {"a"});
  DiscoveryResponse eds = Read();
  // Names b with a nonce that was never sent: ignored, b is not sent.
  Send(xds::kClusterLoadAssignmentType, {"a", "b"}, "no-such-nonce", eds.version_info());
  EXPECT_EQ(Fence(xds::kClusterType, {"a"}).type_url(), xds::kClusterType);
  // With the current nonce, b is sent (alone: EDS goes per resource, and a is unchanged).
  Ack(eds, {"a", "b"});
  DiscoveryResponse added = Read();
  EXPECT_EQ(added.type_url(), xds::kClusterLoadAssignmentType);
  EXPECT_EQ(Names(added), (std::vector<std::string>{"b"}));
}

TEST_F(AdsProtocolTest, EmptyNamesUnsubscribe) {
  Send(xds::kClusterLoadAssignmentType, {"a"});
  DiscoveryResponse eds = Read();
  Ack(eds, {});
  agent_->Update(0, [](v1::EndpointReport* r) { r->set_state(v1::ENDPOINT_STATE_DRAINING); });
  ASSERT_TRUE(subscriber_->WaitFor(
      "a",
      [](const v1::Assignment& x) {
        return x.endpoints_size() == 1 && x.endpoints(0).state() == v1::ENDPOINT_STATE_DRAINING;
      },
      Scaled(absl::Seconds(20))));
  // Pool a changed, and nothing came for it: the next message answers the fence.
  EXPECT_EQ(Fence(xds::kClusterType, {"a"}).type_url(), xds::kClusterType);
}

TEST_F(AdsProtocolTest, WildcardCdsListsEveryPoolAndNamesAppearLater) {
  Send(xds::kClusterType, {});  // Envoy's way: every cluster.
  DiscoveryResponse cds = Read();
  EXPECT_EQ(Names(cds), (std::vector<std::string>{"a", "b"}));
  Ack(cds, {});
  // Endpoints of every cluster, and of c, which is not there yet.
  Send(xds::kClusterLoadAssignmentType, {"a", "b", "c"});
  DiscoveryResponse eds_ab = Read();
  EXPECT_EQ(Names(eds_ab), (std::vector<std::string>{"a", "b"}));
  Ack(eds_ab, {"a", "b", "c"});
  // Routes once the client has the clusters' endpoints (make before break).
  EXPECT_EQ(Fence(xds::kRouteConfigurationType, {"a"}).type_url(), xds::kRouteConfigurationType);

  agent_->Update(2, [](v1::EndpointReport* r) { r->add_models("c"); });
  // Pool c appears: the complete cluster list first, then its assignment (make before break).
  DiscoveryResponse cds2 = Read();
  EXPECT_EQ(cds2.type_url(), xds::kClusterType);
  EXPECT_EQ(Names(cds2), (std::vector<std::string>{"a", "b", "c"}));
  DiscoveryResponse eds = Read();
  EXPECT_EQ(eds.type_url(), xds::kClusterLoadAssignmentType);
  EXPECT_EQ(Names(eds), (std::vector<std::string>{"c"}));  // Per resource: a and b did not change.
}

TEST_F(AdsProtocolTest, EnvoyGetsItsPolicyOutlierDetectionAndTheModelRoutes) {
  user_agent_ = "envoy";
  Send(xds::kClusterType, {});
  DiscoveryResponse cds = Read();
  ASSERT_EQ(cds.resources_size(), 2);
  for (const auto& any : cds.resources()) {
    envoy::config::cluster::v3::Cluster cluster;
    ASSERT_TRUE(any.UnpackTo(&cluster));
    EXPECT_EQ(cluster.lb_policy(), envoy::config::cluster::v3::Cluster::LEAST_REQUEST) << cluster.name();
    EXPECT_TRUE(cluster.has_outlier_detection()) << cluster.name();
  }
  Ack(cds, {});
  Send(xds::kRouteConfigurationType, {xds::kEnvoyRouteName});
  DiscoveryResponse rds = Read();
  ASSERT_EQ(rds.resources_size(), 1);
  envoy::config::route::v3::RouteConfiguration routes;
  ASSERT_TRUE(rds.resources(0).UnpackTo(&routes));
  EXPECT_EQ(routes.name(), xds::kEnvoyRouteName);
  ASSERT_EQ(routes.virtual_hosts(0).routes_size(), 2);
  EXPECT_EQ(routes.virtual_hosts(0).routes(0).route().cluster(), "a");
  EXPECT_EQ(routes.virtual_hosts(0).routes(1).route().cluster(), "b");
  // Envoy takes its listeners from its bootstrap: none is served.
  Send(xds::kListenerType, {});
  EXPECT_EQ(Fence(xds::kClusterLoadAssignmentType, {"a"}).type_url(), xds::kClusterLoadAssignmentType);
}

TEST_F(AdsProtocolTest, DeltaSubscribeUnsubscribeAndReconnect) {
  using envoy::service::discovery::v3::DeltaDiscoveryRequest;
  using envoy::service::discovery::v3::DeltaDiscoveryResponse;
  auto request = [](const std::string& type, const std::vector<std::string>& subscribe,
                    const std::vector<std::string>& unsubscribe, const std::string& nonce) {
    DeltaDiscoveryRequest r;
    r.set_type_url(type);
    for (const auto& n : subscribe) r.add_resource_names_subscribe(n);
    for (const auto& n : unsubscribe) r.add_resource_names_unsubscribe(n);
    r.set_response_nonce(nonce);
    return r;
  };
  auto names = [](const DeltaDiscoveryResponse& r) {
    std::vector<std::string> out;
    for (const auto& res : r.resources()) out.push_back(res.name());
    return out;
  };

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto delta = stub_->DeltaAggregatedResources(&ctx);
  DeltaDiscoveryRequest first = request(xds::kClusterLoadAssignmentType, {"a"}, {}, "");
  first.mutable_node()->set_id("delta-client");
  first.mutable_node()->set_user_agent_name("envoy");
  ASSERT_TRUE(delta->Write(first));
  DeltaDiscoveryResponse r1;
  ASSERT_TRUE(delta->Read(&r1));
  EXPECT_EQ(names(r1), std::vector<std::string>{"a"});

  // Subscribing to b sends b alone.
  ASSERT_TRUE(delta->Write(request(xds::kClusterLoadAssignmentType, {"b"}, {}, r1.nonce())));
  DeltaDiscoveryResponse r2;
  ASSERT_TRUE(delta->Read(&r2));
  EXPECT_EQ(names(r2), std::vector<std::string>{"b"});
  const std::string b_version = r2.resources(0).version();

  // Unsubscribed from a, a change to a sends nothing: the next message answers the fence.
  ASSERT_TRUE(delta->Write(request(xds::kClusterLoadAssignmentType, {}, {"a"}, r2.nonce())));
  agent_->Update(0, [](v1::EndpointReport* r) { r->set_state(v1::ENDPOINT_STATE_DRAINING); });
  ASSERT_TRUE(subscriber_->WaitFor(
      "a", [](const v1::Assignment& x) { return x.endpoints(0).state() == v1::ENDPOINT_STATE_DRAINING; },
      Scaled(absl::Seconds(20))));
  ASSERT_TRUE(delta->Write(request(xds::kClusterType, {"a"}, {}, "")));
  DeltaDiscoveryResponse fence;
  ASSERT_TRUE(delta->Read(&fence));
  EXPECT_EQ(fence.type_url(), xds::kClusterType);
  ctx.TryCancel();
  delta->Finish();

  // A reconnecting client with b's version is not sent b again.
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto again = stub_->DeltaAggregatedResources(&ctx2);
  DeltaDiscoveryRequest resume = request(xds::kClusterLoadAssignmentType, {"b"}, {}, "");
  resume.mutable_node()->set_id("delta-client");
  (*resume.mutable_initial_resource_versions())["b"] = b_version;
  ASSERT_TRUE(again->Write(resume));
  ASSERT_TRUE(again->Write(request(xds::kClusterType, {"b"}, {}, "")));
  DeltaDiscoveryResponse next;
  ASSERT_TRUE(again->Read(&next));
  EXPECT_EQ(next.type_url(), xds::kClusterType);
  ctx2.TryCancel();
  again->Finish();
}

}  // namespace
}  // namespace switchboard::testing
