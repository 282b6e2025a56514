#include "controlplane/xds/delta_stream.h"

#include <string>
#include <vector>

#include "controlplane/xds/type_urls.h"
#include "gtest/gtest.h"
#include "tests/controlplane/xds/catalog_fixtures.h"

namespace switchboard::controlplane::xds {
namespace {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;

using xds_test::ClassCatalog;

std::shared_ptr<const Catalog> CatalogOf(const std::vector<std::pair<std::string, uint32_t>>& pools) {
  return xds_test::PoolsCatalog(pools, ClientKind::kEnvoy);
}

DeltaDiscoveryRequest Request(const std::string& type, const std::vector<std::string>& subscribe,
                              const std::vector<std::string>& unsubscribe = {}, const std::string& nonce = "") {
  DeltaDiscoveryRequest r;
  r.set_type_url(type);
  for (const auto& n : subscribe) r.add_resource_names_subscribe(n);
  for (const auto& n : unsubscribe) r.add_resource_names_unsubscribe(n);
  r.set_response_nonce(nonce);
  return r;
}

std::vector<std::string> Names(const DeltaDiscoveryResponse& r) {
  std::vector<std::string> names;
  for (const auto& res : r.resources()) names.push_back(res.name());
  return names;
}

std::vector<std::string> Removed(const DeltaDiscoveryResponse& r) {
  return {r.removed_resources().begin(), r.removed_resources().end()};
}

TEST(DeltaStreamTest, SubscribeSendsOnlyChangesAndAckIsQuiet) {
  DeltaStream s;
  EXPECT_EQ(s.OnRequest(Request(kClusterLoadAssignmentType, {"a"})), RequestKind::kFirst);
  auto r1 = s.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}}));
  ASSERT_TRUE(r1);
  EXPECT_EQ(Names(*r1), std::vector<std::string>{"a"});
  EXPECT_FALSE(r1->resources(0).version().empty());
  EXPECT_EQ(s.AckedVersion(kClusterLoadAssignmentType), "");  // Sent, not yet ACKed.
  EXPECT_EQ(s.OnRequest(Request(kClusterLoadAssignmentType, {}, {}, r1->nonce())), RequestKind::kAck);
  EXPECT_EQ(s.AckedVersion(kClusterLoadAssignmentType), r1->system_version_info());
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}})));
  // Subscribing to b sends b alone.
  s.OnRequest(Request(kClusterLoadAssignmentType, {"b"}, {}, r1->nonce()));
  auto r2 = s.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}}));
  ASSERT_TRUE(r2);
  EXPECT_EQ(Names(*r2), std::vector<std::string>{"b"});
  // A change to a sends a alone.
  auto r3 = s.NextResponse(*CatalogOf({{"a", 2}, {"b", 1}}));
  ASSERT_TRUE(r3);
  EXPECT_EQ(Names(*r3), std::vector<std::string>{"a"});
}

TEST(DeltaStreamTest, UnsubscribeEvenOnAStaleNonce) {
  DeltaStream s;
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a", "b"}));
  auto r1 = s.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}}));
  auto r2 = s.NextResponse(*CatalogOf({{"a", 2}, {"b", 1}}));
  ASSERT_TRUE(r1 && r2);
  EXPECT_EQ(s.OnRequest(Request(kClusterLoadAssignmentType, {}, {"a"}, r1->nonce())), RequestKind::kStale);
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"a", 3}, {"b", 1}})));  // a is no longer subscribed.
  auto r3 = s.NextResponse(*CatalogOf({{"a", 3}, {"b", 2}}));
  ASSERT_TRUE(r3);
  EXPECT_EQ(Names(*r3), std::vector<std::string>{"b"});
}

TEST(DeltaStreamTest, RemovedResourcesAreListed) {
  DeltaStream s;
  s.OnRequest(Request(kClusterType, {}));  // Wildcard.
  auto r1 = s.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}}));
  ASSERT_TRUE(r1);
  EXPECT_EQ(Names(*r1), (std::vector<std::string>{"a", "b"}));
  // A cluster is removed only once the client has answered the last Cluster response.
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"b", 1}})));
  EXPECT_EQ(s.OnRequest(Request(kClusterType, {}, {}, r1->nonce())), RequestKind::kAck);
  auto r2 = s.NextResponse(*CatalogOf({{"b", 1}}));
  ASSERT_TRUE(r2);
  EXPECT_TRUE(Names(*r2).empty());
  EXPECT_EQ(Removed(*r2), std::vector<std::string>{"a"});
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"b", 1}})));
}

TEST(DeltaStreamTest, ClustersAreRemovedOnlyAfterTheRoutesThatNameThem) {
  DeltaStream s;
  s.OnRequest(Request(kClusterType, {"*"}));
  s.OnRequest(Request(kRouteConfigurationType, {"a", "b"}));
  auto both = CatalogOf({{"a", 1}, {"b", 1}});
  auto cds1 = s.NextResponse(*both);
  ASSERT_TRUE(cds1);
  EXPECT_EQ(cds1->type_url(), kClusterType);
  EXPECT_FALSE(s.NextResponse(*both));  // Routes wait for the clusters' answer.
  s.OnRequest(Request(kClusterType, {}, {}, cds1->nonce()));
  auto rds1 = s.NextResponse(*both);
  ASSERT_TRUE(rds1);
  EXPECT_EQ(rds1->type_url(), kRouteConfigurationType);

  auto only_b = CatalogOf({{"b", 1}});
  auto rds2 = s.NextResponse(*only_b);  // The route a is removed first.
  ASSERT_TRUE(rds2);
  EXPECT_EQ(rds2->type_url(), kRouteConfigurationType);
  EXPECT_EQ(Removed(*rds2), std::vector<std::string>{"a"});
  EXPECT_FALSE(s.NextResponse(*only_b));
  s.OnRequest(Request(kRouteConfigurationType, {}, {}, rds2->nonce()));
  auto cds2 = s.NextResponse(*only_b);
  ASSERT_TRUE(cds2);
  EXPECT_EQ(cds2->type_url(), kClusterType);
  EXPECT_EQ(Removed(*cds2), std::vector<std::string>{"a"});
}

TEST(DeltaStreamTest, ANewClustersRouteWaitsForItsEndpoints) {
  DeltaStream s;
  s.OnRequest(Request(kClusterType, {"*"}));
  s.OnRequest(Request(kRouteConfigurationType, {kEnvoyRouteName}));
  auto a = CatalogOf({{"a", 1}});
  auto cds1 = s.NextResponse(*a);
  ASSERT_TRUE(cds1);
  s.OnRequest(Request(kClusterType, {}, {}, cds1->nonce()));
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  auto eds1 = s.NextResponse(*a);
  ASSERT_TRUE(eds1);
  EXPECT_EQ(eds1->type_url(), kClusterLoadAssignmentType);
  EXPECT_FALSE(s.NextResponse(*a)) << "the route waits for a's endpoints";
  s.OnRequest(Request(kClusterLoadAssignmentType, {}, {}, eds1->nonce()));
  auto rds1 = s.NextResponse(*a);
  ASSERT_TRUE(rds1);
  EXPECT_EQ(rds1->type_url(), kRouteConfigurationType);
  s.OnRequest(Request(kRouteConfigurationType, {}, {}, rds1->nonce()));

  // Pool b appears: cluster, ACK, subscription to its endpoints, their ACK, then the route.
  auto ab = CatalogOf({{"a", 1}, {"b", 1}});
  auto cds2 = s.NextResponse(*ab);
  ASSERT_TRUE(cds2);
  EXPECT_EQ(Names(*cds2), std::vector<std::string>{"b"});
  s.OnRequest(Request(kClusterType, {}, {}, cds2->nonce()));
  EXPECT_FALSE(s.NextResponse(*ab)) << "the client has b's cluster, not its endpoints";
  s.OnRequest(Request(kClusterLoadAssignmentType, {"b"}));
  auto eds2 = s.NextResponse(*ab);
  ASSERT_TRUE(eds2);
  EXPECT_EQ(Names(*eds2), std::vector<std::string>{"b"});
  EXPECT_FALSE(s.NextResponse(*ab));
  s.OnRequest(Request(kClusterLoadAssignmentType, {}, {}, eds2->nonce()));
  auto rds2 = s.NextResponse(*ab);
  ASSERT_TRUE(rds2);
  EXPECT_EQ(rds2->type_url(), kRouteConfigurationType);
}

TEST(DeltaStreamTest, ClassClustersWaitForThePoolsEndpoints) {
  DeltaStream s;
  s.OnRequest(Request(kClusterType, {"*"}));
  s.OnRequest(Request(kRouteConfigurationType, {kEnvoyRouteName}));
  auto plain = ClassCatalog("a", 1, false);
  auto cds1 = s.NextResponse(*plain);
  ASSERT_TRUE(cds1);
  s.OnRequest(Request(kClusterType, {}, {}, cds1->nonce()));
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  auto eds1 = s.NextResponse(*plain);
  ASSERT_TRUE(eds1);
  s.OnRequest(Request(kClusterLoadAssignmentType, {}, {}, eds1->nonce()));
  auto rds1 = s.NextResponse(*plain);
  ASSERT_TRUE(rds1);
  s.OnRequest(Request(kRouteConfigurationType, {}, {}, rds1->nonce()));

  // a's endpoints change and are on their way when its classes turn on.
  auto eds2 = s.NextResponse(*ClassCatalog("a", 2, false));
  ASSERT_TRUE(eds2);
  EXPECT_EQ(eds2->type_url(), kClusterLoadAssignmentType);
  auto classes = ClassCatalog("a", 2, true);
  auto cds2 = s.NextResponse(*classes);
  ASSERT_TRUE(cds2);
  EXPECT_EQ(Names(*cds2), (std::vector<std::string>{"a~hi", "a~lo"}));
  s.OnRequest(Request(kClusterType, {}, {}, cds2->nonce()));
  // The route names a~hi and a~lo, which read assignment a: it waits for a's answer.
  EXPECT_FALSE(s.NextResponse(*classes)) << "a~hi and a~lo have no endpoints on the client yet";
  s.OnRequest(Request(kClusterLoadAssignmentType, {}, {}, eds2->nonce()));
  auto rds2 = s.NextResponse(*classes);
  ASSERT_TRUE(rds2);
  EXPECT_EQ(rds2->type_url(), kRouteConfigurationType);
  s.OnRequest(Request(kRouteConfigurationType, {}, {}, rds2->nonce()));
  EXPECT_FALSE(s.NextResponse(*classes));
}

TEST(DeltaStreamTest, InitialResourceVersionsSkipWhatTheClientHas) {
  auto catalog = CatalogOf({{"a", 1}, {"b", 1}});
  DeltaStream before;
  before.OnRequest(Request(kClusterLoadAssignmentType, {"a", "b"}));
  auto r1 = before.NextResponse(*catalog);
  ASSERT_TRUE(r1);

  // Reconnect: a unchanged, b changed since, c gone.
  DeltaStream after;
  DeltaDiscoveryRequest request = Request(kClusterLoadAssignmentType, {"a", "b", "c"});
  for (const auto& res : r1->resources()) (*request.mutable_initial_resource_versions())[res.name()] = res.version();
  (*request.mutable_initial_resource_versions())["c"] = "old";
  EXPECT_EQ(after.OnRequest(request), RequestKind::kFirst);
  auto r2 = after.NextResponse(*CatalogOf({{"a", 1}, {"b", 5}}));
  ASSERT_TRUE(r2);
  EXPECT_EQ(Names(*r2), std::vector<std::string>{"b"});
  EXPECT_EQ(Removed(*r2), std::vector<std::string>{"c"});
}

TEST(DeltaStreamTest, NackIsNotAnsweredByResending) {
  DeltaStream s;
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a"}));
  auto r1 = s.NextResponse(*CatalogOf({{"a", 1}}));
  ASSERT_TRUE(r1);
  DeltaDiscoveryRequest nack = Request(kClusterLoadAssignmentType, {}, {}, r1->nonce());
  nack.mutable_error_detail()->set_code(3);
  nack.mutable_error_detail()->set_message("no");
  EXPECT_EQ(s.OnRequest(nack), RequestKind::kNack);
  EXPECT_EQ(s.LastNack(kClusterLoadAssignmentType), "no");
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"a", 1}})));
  EXPECT_TRUE(s.NextResponse(*CatalogOf({{"a", 2}})));
}

TEST(DeltaStreamTest, ExplicitWildcardAndNamesThatAppearLater) {
  DeltaStream s;
  s.OnRequest(Request(kClusterLoadAssignmentType, {"later"}));
  EXPECT_FALSE(s.NextResponse(*CatalogOf({{"a", 1}})));
  auto r = s.NextResponse(*CatalogOf({{"a", 1}, {"later", 1}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(Names(*r), std::vector<std::string>{"later"});

  DeltaStream w;
  w.OnRequest(Request(kClusterLoadAssignmentType, {"*"}));
  auto all = w.NextResponse(*CatalogOf({{"a", 1}, {"b", 1}}));
  ASSERT_TRUE(all);
  EXPECT_EQ(Names(*all), (std::vector<std::string>{"a", "b"}));
}

TEST(DeltaStreamTest, WireBytesParseToTheResponse) {
  DeltaStream s;
  s.OnRequest(Request(kClusterLoadAssignmentType, {"a", "b"}));
  auto out = s.Next(*CatalogOf({{"a", 1}, {"b", 2}}));
  ASSERT_TRUE(out);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(ToWire(*out).Dump(&slices).ok());
  std::string bytes;
  for (const auto& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  envoy::service::discovery::v3::DeltaDiscoveryResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.SerializeAsString(), ToMessage(*out).SerializeAsString());
  ASSERT_EQ(parsed.resources_size(), 2);
  EXPECT_EQ(parsed.resources(0).name(), "a");
  EXPECT_EQ(parsed.resources(1).name(), "b");
  EXPECT_EQ(parsed.type_url(), kClusterLoadAssignmentType);
  EXPECT_FALSE(parsed.nonce().empty());
}

}  // namespace
}  // namespace switchboard::controlplane::xds
