#include "controlplane/xds/sotw_stream.h"

#include <optional>
#include <string>
#include <vector>

#include "controlplane/xds/type_urls.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "gtest/gtest.h"
#include "tests/controlplane/xds/catalog_fixtures.h"

namespace switchboard::controlplane::xds {
namespace {

using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;
using RequestKind = SotwStream::RequestKind;

using xds_test::ClassCatalog;

std::shared_ptr<const Catalog> CatalogOf(const std::vector<std::pair<std::string, uint32_t>>& pools) {
  return xds_test::PoolsCatalog(pools, ClientKind::kGrpc);
}

DiscoveryRequest Request(const std::string& type, const std::vector<std::string>& names, const std::string& nonce = "",
                         const std::string& version = "") {
  DiscoveryRequest r;
  r.set_type_url(type);
  for (const auto& n : names) r.add_resource_names(n);
  r.set_response_nonce(nonce);
  r.set_version_info(version);
  return r;
}

DiscoveryRequest Ack(const DiscoveryResponse& response, const std::vector<std::string>& names) {
  return Request(response.type_url(), names, response.nonce(), response.version_info());
}

DiscoveryRequest Nack(const DiscoveryResponse& response, const std::vector<std::string>& names) {
  DiscoveryRequest r = Request(response.type_url(), names, response.nonce(), "");
  r.mutable_error_detail()->set_code(3);
  r.mutable_error_detail()->set_message("bad weight");
  return r;
}

std::vector<std::string> Names(const DiscoveryResponse& response) {
  std::vector<std::string> names;
  for (const auto& any : response.resources()) {
    if (any.type_url() == kClusterLoadAssignmentType) {
      envoy::config::endpoint::v3::ClusterLoadAssignment cla;
      any.UnpackTo(&cla);
      names.push_back(cla.cluster_name());
    } else if (any.type_url() == kClusterType) {
      envoy::config::cluster::v3::Cluster cluster;
      any.UnpackTo(&cluster);
      names.push_back(cluster.name());
    } else {
      names.push_back("?");
    }
  }
  return names;
}

TEST(SotwStreamTest, FirstRequestAnsweredThenAckIsQuiet) {
  SotwStream s;
  auto catalog = CatalogOf({{"a", 1}, {"b", 2}});
  EXPECT_FALSE(s.NextResponse(*catalog));  // Nothing asked yet.
  EXPECT_EQ(s.OnRequest(Request(kClusterLoadAssignmentType, {"a"})), RequestKind::kFirst);
  auto r = s.NextResponse(*catalog);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type_url(), kClusterLoadAssignmentType);
  EXPECT_EQ(Names(*r), std::vector<std::string>{"a"});
  EXPECT_FALSE(r->nonce().empty());
  EXPECT_FALSE(s.NextResponse(*catalog));  // Sent; nothing changed.
  EXPECT_EQ(s.OnRequest(Ack(*r, {"a"})), RequestKind::kAck);
  EXPECT_EQ(s.AckedVersion(kClusterLoadAssignmentType), r->version_info());
  EXPECT_FALSE(s.NextResponse(*catalog));  // An ACK is not answered.
}

TEST(SotwStreamTest, RespondsOnlyWhenItsResourcesChange) {
  SotwStream s;
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  auto r1 = s.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}}));
  ASSERT_TRUE(r1);
  s.OnRequest(Ack(*r1, {"a"}));
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"a", 1}, {"b", 9}})));  // Another pool changed.
  auto r2 = s.NextResponse(*CatalogOf({{"a", 5}, {"b", 9}}));
  ASSERT_TRUE(r2);
  EXPECT_NE(r2->version_info(), r1->version_info());
  EXPECT_NE(r2->nonce(), r1->nonce());
}

TEST(SotwStreamTest, NackIsRecordedAndNotAnsweredByResending) {
  SotwStream s;
  auto good = CatalogOf({{"a", 1}});
  auto bad = CatalogOf({{"a", 2}});
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  auto r1 = s.NextResponse(*good);
  s.OnRequest(Ack(*r1, {"a"}));
  auto r2 = s.NextResponse(*bad);
  ASSERT_TRUE(r2);
  DiscoveryRequest nack = Nack(*r2, {"a"});
  nack.set_version_info(r1->version_info());  // The client keeps the good version.
  EXPECT_EQ(s.OnRequest(nack), RequestKind::kNack);
  EXPECT_EQ(s.LastNack(kClusterLoadAssignmentType), "bad weight");
  EXPECT_EQ(s.AckedVersion(kClusterLoadAssignmentType), r1->version_info());
  EXPECT_FALSE(s.NextResponse(*bad));  // No resend loop.
  EXPECT_FALSE(s.NextResponse(*bad));
  auto r3 = s.NextResponse(*CatalogOf({{"a", 3}}));  // New content: sent.
  ASSERT_TRUE(r3);
}

TEST(SotwStreamTest, AChangeToOnePoolSendsOnlyItsAssignment) {
  SotwStream s;
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a", "b", "c"}));
  auto r1 = s.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}, {"c", 1}}));
  ASSERT_TRUE(r1);
  EXPECT_EQ(Names(*r1), (std::vector<std::string>{"a", "b", "c"}));  // The first answer: all.
  s.OnRequest(Ack(*r1, {"a", "b", "c"}));
  auto r2 = s.NextResponse(*CatalogOf({{"a", 1}, {"b", 5}, {"c", 1}}));
  ASSERT_TRUE(r2);
  EXPECT_EQ(Names(*r2), (std::vector<std::string>{"b"}));  // EDS is per resource: b only.
  EXPECT_NE(r2->version_info(), r1->version_info());
  s.OnRequest(Ack(*r2, {"a", "b", "c"}));
  // A reconnect (empty nonce) gets everything again.
  SotwStream again;
  again.OnRequest(Request(kClusterLoadAssignmentType, {"a", "b", "c"}, "", r2->version_info()));
  auto r3 = again.NextResponse(*CatalogOf({{"a", 1}, {"b", 5}, {"c", 1}}));
  ASSERT_TRUE(r3);
  EXPECT_EQ(Names(*r3), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(r3->version_info(), r2->version_info());
}

TEST(SotwStreamTest, WireBytesParseToTheResponseAndShareTheResources) {
  auto catalog = CatalogOf({{"a", 1}, {"b", 2}});
  SotwStream s1, s2;
  s1.OnRequest(Request(kClusterLoadAssignmentType, {"a", "b"}));
  s2.OnRequest(Request(kClusterLoadAssignmentType, {"a", "b"}));
  auto out1 = s1.Next(*catalog);
  auto out2 = s2.Next(*catalog);
  ASSERT_TRUE(out1 && out2);
  grpc::ByteBuffer wire1 = ToWire(*out1), wire2 = ToWire(*out2);
  std::vector<grpc::Slice> slices1, slices2;
  ASSERT_TRUE(wire1.Dump(&slices1).ok());
  ASSERT_TRUE(wire2.Dump(&slices2).ok());
  std::string bytes;
  for (const auto& slice : slices1) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  DiscoveryResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.SerializeAsString(), ToMessage(*out1).SerializeAsString());
  EXPECT_EQ(Names(parsed), (std::vector<std::string>{"a", "b"}));
  // Both streams' bytes for a's assignment are one buffer, the resource's own.
  ASSERT_EQ(slices1.size(), 3u);  // The stream's own fields, then a and b.
  ASSERT_EQ(slices2.size(), 3u);
  const std::string& entry = catalog->Of(kClusterLoadAssignmentType).at("a")->SotwEntry();
  EXPECT_EQ(static_cast<const void*>(slices1[1].begin()), static_cast<const void*>(entry.data()));
  EXPECT_EQ(static_cast<const void*>(slices2[1].begin()), static_cast<const void*>(entry.data()));
}

TEST(SotwStreamTest, StaleNonceIsIgnored) {
  SotwStream s;
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  auto r1 = s.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}}));
  auto r2 = s.NextResponse(*CatalogOf({{"a", 2}, {"b", 1}}));
  ASSERT_TRUE(r1 && r2);
  // A request answering r1 (now superseded) that asks for b: ignored, b is not sent.
  EXPECT_EQ(s.OnRequest(Ack(*r1, {"a", "b"})), RequestKind::kStale);
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"a", 2}, {"b", 1}})));
  // A stale NACK is ignored as well.
  EXPECT_EQ(s.OnRequest(Nack(*r1, {"a"})), RequestKind::kStale);
  EXPECT_EQ(s.LastNack(kClusterLoadAssignmentType), "");
  // The current nonce with b: b is sent (a, which the client has, is not sent again).
  EXPECT_EQ(s.OnRequest(Ack(*r2, {"a", "b"})), RequestKind::kAck);
  auto r3 = s.NextResponse(*CatalogOf({{"a", 2}, {"b", 1}}));
  ASSERT_TRUE(r3);
  EXPECT_EQ(Names(*r3), (std::vector<std::string>{"b"}));
}

TEST(SotwStreamTest, EmptyNamesOnEdsUnsubscribes) {
  SotwStream s;
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  auto r1 = s.NextResponse(*CatalogOf({{"a", 1}}));
  EXPECT_EQ(s.OnRequest(Ack(*r1, {})), RequestKind::kAck);
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"a", 2}})));  // No longer subscribed.
  // And subscribing again sends it again, even unchanged.
  auto r2 = s.NextResponse(*CatalogOf({{"a", 2}}));
  EXPECT_FALSE(r2);
  s.OnRequest(Ack(*r1, {"a"}));  // r1 is still the last nonce sent.
  EXPECT_TRUE(s.NextResponse(*CatalogOf({{"a", 2}})));
}

TEST(SotwStreamTest, NamesRequestedBeforeTheyExistArePushedWhenTheyAppear) {
  SotwStream s;
  s.OnRequest(Request(kClusterLoadAssignmentType, {"later"}));
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"a", 1}})));
  auto r = s.NextResponse(*CatalogOf({{"a", 1}, {"later", 4}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(Names(*r), std::vector<std::string>{"later"});
}

TEST(SotwStreamTest, CdsIsCompleteAndNotAnsweredEmpty) {
  SotwStream s;
  EXPECT_EQ(s.OnRequest(Request(kClusterType, {}, "", "version-from-before-a-restart")),
            RequestKind::kFirst);  // Wildcard.
  // No clusters yet (a restarted control plane before its agents report): not answered,
  // so the client keeps what it has.
  EXPECT_FALSE(s.NextResponse(*CatalogOf({})));
  auto r1 = s.NextResponse(*CatalogOf({{"a", 1}}));
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->resources_size(), 1);
  s.OnRequest(Ack(*r1, {}));  // Still wildcard.
  auto r2 = s.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}}));
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->resources_size(), 2);  // Every cluster, not only the new one.
  s.OnRequest(Ack(*r2, {}));
  auto r3 = s.NextResponse(*CatalogOf({{"b", 1}}));
  ASSERT_TRUE(r3);  // A removal is a change: the complete set without it.
  EXPECT_EQ(r3->resources_size(), 1);
  s.OnRequest(Ack(*r3, {}));
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"b", 7}})));  // EDS content is not CDS content.
  auto r4 = s.NextResponse(*CatalogOf({}));
  ASSERT_TRUE(r4);  // The last cluster removed: an empty list, once sent clusters are gone.
  EXPECT_EQ(r4->resources_size(), 0);
}

TEST(SotwStreamTest, ExplicitLdsNamesThenEmptyUnsubscribes) {
  SotwStream s;
  s.OnRequest(Request(kListenerType, {"a"}));
  auto r1 = s.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}}));
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->resources_size(), 1);  // Only what was asked for.
  s.OnRequest(Ack(*r1, {}));           // Not the first request: unsubscribe, not wildcard.
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"c", 1}})));
}

TEST(SotwStreamTest, ReconnectWithLastVersionGetsTheSameVersion) {
  auto catalog = CatalogOf({{"a", 3}});
  SotwStream before;
  before.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  auto r1 = before.NextResponse(*catalog);
  SotwStream after;  // A new stream (a restarted control plane or another replica).
  EXPECT_EQ(after.OnRequest(Request(kClusterLoadAssignmentType, {"a"}, "", r1->version_info())), RequestKind::kFirst);
  auto r2 = after.NextResponse(*catalog);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->version_info(), r1->version_info());
}

TEST(SotwStreamTest, MakeBeforeBreakOrder) {
  SotwStream s;
  auto catalog = CatalogOf({{"a", 1}});
  s.OnRequest(Request(kRouteConfigurationType, {"a"}));
  s.OnRequest(Request(kListenerType, {"a"}));
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  s.OnRequest(Request(kClusterType, {"a"}));
  std::vector<std::string> order;
  std::optional<DiscoveryResponse> cds, eds;
  while (auto r = s.NextResponse(*catalog)) {
    order.push_back(r->type_url());
    if (r->type_url() == kClusterType) cds = r;
    if (r->type_url() == kClusterLoadAssignmentType) eds = r;
  }
  // Listeners and routes wait until the client has taken the clusters they name.
  EXPECT_EQ(order, (std::vector<std::string>{kClusterType, kClusterLoadAssignmentType}));
  ASSERT_TRUE(cds);
  ASSERT_TRUE(eds);
  EXPECT_EQ(s.OnRequest(Ack(*cds, {"a"})), RequestKind::kAck);
  // The cluster is taken, its endpoints not yet: a route to it would find none.
  EXPECT_FALSE(s.NextResponse(*catalog));
  EXPECT_EQ(s.OnRequest(Ack(*eds, {"a"})), RequestKind::kAck);
  while (auto r = s.NextResponse(*catalog)) order.push_back(r->type_url());
  EXPECT_EQ(order, (std::vector<std::string>{kClusterType, kClusterLoadAssignmentType, kListenerType,
                                             kRouteConfigurationType}));
}

TEST(SotwStreamTest, ANewClustersRouteWaitsForItsEndpoints) {
  // Every cluster, their endpoints by name, the routes that name them (one per pool).
  SotwStream s;
  s.OnRequest(Request(kClusterType, {}));
  s.OnRequest(Request(kRouteConfigurationType, {"a", "b"}));
  auto a = CatalogOf({{"a", 1}});
  auto cds1 = s.NextResponse(*a);
  ASSERT_TRUE(cds1);
  s.OnRequest(Ack(*cds1, {}));
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));  // Subscribes once it has the cluster.
  auto eds1 = s.NextResponse(*a);
  ASSERT_TRUE(eds1);
  EXPECT_EQ(eds1->type_url(), kClusterLoadAssignmentType);
  EXPECT_FALSE(s.NextResponse(*a));
  s.OnRequest(Ack(*eds1, {"a"}));
  auto rds1 = s.NextResponse(*a);
  ASSERT_TRUE(rds1);
  EXPECT_EQ(rds1->type_url(), kRouteConfigurationType);
  s.OnRequest(Ack(*rds1, {"a", "b"}));

  // Pool b appears: its cluster, and once that is ACKed the route still waits until the
  // client has subscribed to b's endpoints and answered them.
  auto ab = CatalogOf({{"a", 1}, {"b", 1}});
  auto cds2 = s.NextResponse(*ab);
  ASSERT_TRUE(cds2);
  EXPECT_EQ(cds2->type_url(), kClusterType);
  EXPECT_FALSE(s.NextResponse(*ab));
  s.OnRequest(Ack(*cds2, {}));
  EXPECT_FALSE(s.NextResponse(*ab)) << "the route names b; the client has no endpoints for it";
  s.OnRequest(Ack(*eds1, {"a", "b"}));  // The subscription grows (an ACK of the old version).
  auto eds2 = s.NextResponse(*ab);
  ASSERT_TRUE(eds2);
  EXPECT_EQ(eds2->type_url(), kClusterLoadAssignmentType);
  EXPECT_EQ(Names(*eds2), (std::vector<std::string>{"b"}));  // a is unchanged.
  EXPECT_FALSE(s.NextResponse(*ab));
  s.OnRequest(Ack(*eds2, {"a", "b"}));
  auto rds2 = s.NextResponse(*ab);
  ASSERT_TRUE(rds2);
  EXPECT_EQ(rds2->type_url(), kRouteConfigurationType);

  // A changed assignment of a cluster the client has holds nothing up.
  s.OnRequest(Ack(*rds2, {"a", "b"}));
  auto changed = CatalogOf({{"a", 5}, {"b", 1}});
  auto eds3 = s.NextResponse(*changed);
  ASSERT_TRUE(eds3);
  EXPECT_EQ(eds3->type_url(), kClusterLoadAssignmentType);
}

TEST(SotwStreamTest, ClassClustersWaitForThePoolsEndpoints) {
  // Envoy: every cluster, the endpoints of pool a, the one route configuration.
  SotwStream s;
  s.OnRequest(Request(kClusterType, {}));
  s.OnRequest(Request(kRouteConfigurationType, {kEnvoyRouteName}));
  auto plain = ClassCatalog("a", 1, false);
  auto cds1 = s.NextResponse(*plain);
  ASSERT_TRUE(cds1);
  s.OnRequest(Ack(*cds1, {}));
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  auto eds1 = s.NextResponse(*plain);
  ASSERT_TRUE(eds1);
  s.OnRequest(Ack(*eds1, {"a"}));
  auto rds1 = s.NextResponse(*plain);
  ASSERT_TRUE(rds1);
  EXPECT_EQ(rds1->type_url(), kRouteConfigurationType);
  s.OnRequest(Ack(*rds1, {kEnvoyRouteName}));

  // a's endpoints change and are on their way when its classes turn on.
  auto eds2 = s.NextResponse(*ClassCatalog("a", 2, false));
  ASSERT_TRUE(eds2);
  EXPECT_EQ(eds2->type_url(), kClusterLoadAssignmentType);
  auto classes = ClassCatalog("a", 2, true);
  auto cds2 = s.NextResponse(*classes);
  ASSERT_TRUE(cds2);
  EXPECT_EQ(Names(*cds2), (std::vector<std::string>{"a", "a~hi", "a~lo"}));
  s.OnRequest(Ack(*cds2, {}));
  // The routes name a~hi and a~lo, which read assignment a: they wait for its answer.
  EXPECT_FALSE(s.NextResponse(*classes)) << "a~hi and a~lo have no endpoints on the client yet";
  s.OnRequest(Ack(*eds2, {"a"}));
  auto rds2 = s.NextResponse(*classes);
  ASSERT_TRUE(rds2);
  EXPECT_EQ(rds2->type_url(), kRouteConfigurationType);
  s.OnRequest(Ack(*rds2, {kEnvoyRouteName}));
  EXPECT_FALSE(s.NextResponse(*classes));
}

TEST(SotwStreamTest, EndpointsTakenBeforeTheClusterAreNotAwaited) {
  SotwStream s;
  auto a = CatalogOf({{"a", 1}});
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  auto eds = s.NextResponse(*a);
  ASSERT_TRUE(eds);
  s.OnRequest(Ack(*eds, {"a"}));
  s.OnRequest(Request(kClusterType, {"a"}));
  s.OnRequest(Request(kListenerType, {"a"}));
  auto cds = s.NextResponse(*a);
  ASSERT_TRUE(cds);
  EXPECT_EQ(cds->type_url(), kClusterType);
  s.OnRequest(Ack(*cds, {"a"}));
  auto lds = s.NextResponse(*a);
  ASSERT_TRUE(lds);
  EXPECT_EQ(lds->type_url(), kListenerType);
}

TEST(SotwStreamTest, AStreamWithoutEndpointsDoesNotWaitForThem) {
  // A client that takes clusters and routes here and endpoints elsewhere.
  SotwStream s;
  s.OnRequest(Request(kClusterType, {}));
  s.OnRequest(Request(kRouteConfigurationType, {"a", "b"}));
  auto a = CatalogOf({{"a", 1}});
  auto cds = s.NextResponse(*a);
  ASSERT_TRUE(cds);
  s.OnRequest(Ack(*cds, {}));
  auto rds = s.NextResponse(*a);
  ASSERT_TRUE(rds);
  EXPECT_EQ(rds->type_url(), kRouteConfigurationType);
}

TEST(SotwStreamTest, ClustersAreRemovedOnlyAfterTheRoutesThatNameThem) {
  SotwStream s;
  s.OnRequest(Request(kClusterType, {}));  // Wildcard, as Envoy asks.
  s.OnRequest(Request(kListenerType, {}));
  auto both = CatalogOf({{"a", 1}, {"b", 1}});
  auto cds1 = s.NextResponse(*both);
  ASSERT_TRUE(cds1);
  EXPECT_EQ(cds1->type_url(), kClusterType);
  s.OnRequest(Ack(*cds1, {}));
  auto lds1 = s.NextResponse(*both);
  ASSERT_TRUE(lds1);
  EXPECT_EQ(lds1->type_url(), kListenerType);
  EXPECT_EQ(lds1->resources_size(), 2);

  // Pool a goes: the listener update goes out first, the cluster stays until it is ACKed.
  auto only_b = CatalogOf({{"b", 1}});
  auto lds2 = s.NextResponse(*only_b);
  ASSERT_TRUE(lds2);
  EXPECT_EQ(lds2->type_url(), kListenerType);
  EXPECT_EQ(lds2->resources_size(), 1);
  EXPECT_FALSE(s.NextResponse(*only_b));  // lds1 and lds2 are unanswered.
  s.OnRequest(Ack(*lds1, {}));            // Stale: still waiting for lds2's answer.
  EXPECT_FALSE(s.NextResponse(*only_b));
  s.OnRequest(Ack(*lds2, {}));
  auto cds2 = s.NextResponse(*only_b);
  ASSERT_TRUE(cds2);
  EXPECT_EQ(cds2->type_url(), kClusterType);
  EXPECT_EQ(Names(*cds2), std::vector<std::string>{"b"});
  EXPECT_FALSE(s.NextResponse(*only_b));
}

TEST(SotwStreamTest, ChangedClustersStillGoOutWhileARemovalWaits) {
  SotwStream s;
  s.OnRequest(Request(kClusterType, {}));
  s.OnRequest(Request(kListenerType, {}));
  auto cds1 = s.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}}));
  ASSERT_TRUE(cds1);
  s.OnRequest(Ack(*cds1, {}));
  auto lds1 = s.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}}));
  ASSERT_TRUE(lds1);
  // a goes and c comes while the listener response is unanswered: c is made at once
  // (the kept a still in it), a is broken only after the listeners moved on.
  auto catalog = CatalogOf({{"b", 1}, {"c", 1}});
  auto cds2 = s.NextResponse(*catalog);
  ASSERT_TRUE(cds2);
  EXPECT_EQ(cds2->type_url(), kClusterType);
  EXPECT_EQ(Names(*cds2), (std::vector<std::string>{"a", "b", "c"}));
  s.OnRequest(Ack(*cds2, {}));
  auto lds2 = s.NextResponse(*catalog);
  ASSERT_TRUE(lds2);
  EXPECT_EQ(lds2->type_url(), kListenerType);
  s.OnRequest(Ack(*lds2, {}));
  auto cds3 = s.NextResponse(*catalog);
  ASSERT_TRUE(cds3);
  EXPECT_EQ(Names(*cds3), (std::vector<std::string>{"b", "c"}));
}

TEST(SotwStreamTest, ASlowClientGetsOnlyTheNewestVersion) {
  SotwStream s;
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  auto r1 = s.NextResponse(*CatalogOf({{"a", 1}}));
  ASSERT_TRUE(r1);
  // Versions 2..9 are published while the client is busy; only the newest is sent.
  std::shared_ptr<const Catalog> newest;
  for (uint32_t w = 2; w <= 9; ++w) newest = CatalogOf({{"a", w}});
  auto r2 = s.NextResponse(*newest);
  ASSERT_TRUE(r2);
  EXPECT_FALSE(s.NextResponse(*newest));  // No backlog of the versions in between.
  SotwStream fresh;
  fresh.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  EXPECT_EQ(fresh.NextResponse(*newest)->version_info(), r2->version_info());
}

TEST(SotwStreamTest, UnknownTypeIsIgnored) {
  SotwStream s;
  EXPECT_EQ(s.OnRequest(Request("type.googleapis.com/envoy.config.core.v3.Nothing", {"a"})), RequestKind::kUnknownType);
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"a", 1}})));
}

}  // namespace
}  // namespace switchboard::controlplane::xds
