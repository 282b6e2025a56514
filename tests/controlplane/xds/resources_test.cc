#include "controlplane/xds/resources.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/xds/type_urls.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/load_balancing_policies/override_host/v3/override_host.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane::xds {
namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;

v1::AssignedEndpoint Ep(const std::string& address, uint32_t weight, v1::EndpointState state = v1::ENDPOINT_STATE_READY,
                        v1::CircuitState circuit = v1::CIRCUIT_STATE_CLOSED) {
  v1::AssignedEndpoint ep;
  ep.set_address(address);
  ep.set_node_id("node-" + address);
  ep.set_weight(weight);
  ep.set_state(state);
  ep.set_circuit(circuit);
  return ep;
}

v1::Assignment Pool(const std::string& name, const std::vector<v1::AssignedEndpoint>& endpoints,
                    v1::LbPolicy policy = v1::LB_POLICY_WEIGHTED) {
  v1::Assignment a;
  a.set_pool(name);
  a.set_lb_policy(policy);
  for (const auto& ep : endpoints) *a.add_endpoints() = ep;
  return a;
}

std::shared_ptr<const Snapshot> Snap(const v1::Assignment& assignment, const std::string& version) {
  auto snap = std::make_shared<Snapshot>();
  snap->pool = assignment.pool();
  snap->version = version;
  snap->assignment = assignment;
  return snap;
}

TEST(ResourcesTest, ClientKindFromUserAgent) {
  envoy::config::core::v3::Node node;
  EXPECT_EQ(ClientKindOf(node), ClientKind::kGrpc);
  node.set_user_agent_name("gRPC C-core");
  EXPECT_EQ(ClientKindOf(node), ClientKind::kGrpc);
  node.set_user_agent_name("grpc-java");
  EXPECT_EQ(ClientKindOf(node), ClientKind::kGrpc);
  node.set_user_agent_name("envoy");
  EXPECT_EQ(ClientKindOf(node), ClientKind::kEnvoy);
}

TEST(ResourcesTest, ListenerIsAnApiListenerWithRdsOverAdsAndTheRouterLast) {
  auto listener = BuildListener("chat");
  EXPECT_EQ(listener.name(), "chat");
  ASSERT_EQ(listener.api_listener().api_listener().type_url(), kHttpConnectionManagerType);
  HttpConnectionManager hcm;
  ASSERT_TRUE(listener.api_listener().api_listener().UnpackTo(&hcm));
  EXPECT_EQ(hcm.rds().route_config_name(), "chat");
  EXPECT_TRUE(hcm.rds().config_source().has_ads());
  EXPECT_EQ(hcm.rds().config_source().resource_api_version(), envoy::config::core::v3::V3);
  ASSERT_GE(hcm.http_filters_size(), 1);
  EXPECT_EQ(hcm.http_filters(hcm.http_filters_size() - 1).typed_config().type_url(), kRouterType);
}

TEST(ResourcesTest, RouteSendsEverythingToThePoolsCluster) {
  auto config = BuildRouteConfiguration("chat");
  EXPECT_EQ(config.name(), "chat");
  ASSERT_EQ(config.virtual_hosts_size(), 1);
  EXPECT_EQ(config.virtual_hosts(0).domains(0), "*");
  ASSERT_EQ(config.virtual_hosts(0).routes_size(), 1);
  EXPECT_EQ(config.virtual_hosts(0).routes(0).match().prefix(), "");
  EXPECT_EQ(config.virtual_hosts(0).routes(0).route().cluster(), "chat");
}

TEST(ResourcesTest, EnvoyRouteByModelHeader) {
  auto config = BuildEnvoyRouteConfiguration({"qwen", "llama"});
  EXPECT_EQ(config.name(), kEnvoyRouteName);
  ASSERT_EQ(config.virtual_hosts_size(), 1);
  const auto& host = config.virtual_hosts(0);
  EXPECT_EQ(host.domains(0), "*");
  ASSERT_EQ(host.routes_size(), 2);
  const std::vector<std::string> want = {"llama", "qwen"};  // Sorted: same pools, same bytes.
  for (int i = 0; i < 2; ++i) {
    const auto& route = host.routes(i);
    EXPECT_EQ(route.match().prefix(), "/");
    ASSERT_EQ(route.match().headers_size(), 1);
    EXPECT_EQ(route.match().headers(0).name(), "x-model");
    EXPECT_EQ(route.match().headers(0).string_match().exact(), want[i]);
    EXPECT_EQ(route.route().cluster(), want[i]);
  }
}

TEST(ResourcesTest, ClusterPolicyByClientKind) {
  struct Case {
    v1::LbPolicy pool_policy;
    ClientKind kind;
    Cluster::LbPolicy want;
  };
  const Case cases[] = {
      {v1::LB_POLICY_WEIGHTED, ClientKind::kEnvoy, Cluster::LEAST_REQUEST},
      {v1::LB_POLICY_LEAST_REQUEST, ClientKind::kEnvoy, Cluster::LEAST_REQUEST},
      {v1::LB_POLICY_SLOT_BASED, ClientKind::kEnvoy, Cluster::LEAST_REQUEST},
      {v1::LB_POLICY_ROUND_ROBIN, ClientKind::kEnvoy, Cluster::ROUND_ROBIN},
      {v1::LB_POLICY_WEIGHTED, ClientKind::kGrpc, Cluster::ROUND_ROBIN},
      {v1::LB_POLICY_LEAST_REQUEST, ClientKind::kGrpc, Cluster::ROUND_ROBIN},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(v1::LbPolicy_Name(c.pool_policy));
    Cluster cluster = BuildCluster(Pool("chat", {}, c.pool_policy), c.kind);
    EXPECT_EQ(cluster.name(), "chat");
    EXPECT_EQ(cluster.type(), Cluster::EDS);
    EXPECT_TRUE(cluster.eds_cluster_config().eds_config().has_ads());
    EXPECT_EQ(cluster.eds_cluster_config().service_name(), "");  // The EDS name is the cluster's.
    EXPECT_EQ(cluster.lb_policy(), c.want);
  }
}

TEST(ResourcesTest, EnvoyOutlierDetectionFromThePoolsBreaker) {
  policy::PoolPolicy pool;
  policy::CircuitConfig& circuit = pool.policy.circuit;
  circuit.max_error_rate = 0.25;
  circuit.min_requests = 40;
  circuit.base_ejection = absl::Milliseconds(1500);
  circuit.max_ejection = absl::Seconds(120);
  circuit.max_ejection_share = 0.3;
  Cluster envoy = BuildCluster(Pool("chat", {}), ClientKind::kEnvoy, &pool);
  ASSERT_TRUE(envoy.has_outlier_detection());
  const auto& od = envoy.outlier_detection();
  EXPECT_EQ(od.failure_percentage_threshold().value(), 25u);
  EXPECT_EQ(od.enforcing_failure_percentage().value(), 100u);
  EXPECT_EQ(od.failure_percentage_request_volume().value(), 40u);
  EXPECT_EQ(od.failure_percentage_minimum_hosts().value(), 1u);
  EXPECT_EQ(od.base_ejection_time().seconds(), 1);
  EXPECT_EQ(od.base_ejection_time().nanos(), 500000000);
  EXPECT_EQ(od.max_ejection_time().seconds(), 120);
  EXPECT_EQ(od.max_ejection_percent().value(), 30u);

  EXPECT_FALSE(BuildCluster(Pool("chat", {}), ClientKind::kGrpc, &pool).has_outlier_detection());
  EXPECT_FALSE(BuildCluster(Pool("chat", {}), ClientKind::kEnvoy).has_outlier_detection());

  // Through the catalog, each pool with its own settings.
  policy::FleetConfig fleet;
  fleet.pools["strict"].policy.circuit.max_error_rate = 0.1;
  auto catalog =
      BuildCatalog({Snap(Pool("strict", {}), "v1"), Snap(Pool("other", {}), "v2")}, ClientKind::kEnvoy, &fleet);
  Cluster strict, other;
  ASSERT_TRUE(catalog->Of(kClusterType).at("strict")->any.UnpackTo(&strict));
  ASSERT_TRUE(catalog->Of(kClusterType).at("other")->any.UnpackTo(&other));
  EXPECT_EQ(strict.outlier_detection().failure_percentage_threshold().value(), 10u);
  EXPECT_EQ(other.outlier_detection().failure_percentage_threshold().value(),
            static_cast<uint32_t>(policy::CircuitConfig().max_error_rate * 100));
}

TEST(ResourcesTest, EnvoyCircuitBreakerThresholdsFromThePoolsConfig) {
  policy::PoolPolicy pool;
  pool.envoy.max_connections = 64;
  pool.envoy.max_pending_requests = 32;
  pool.envoy.max_requests = 256;
  pool.envoy.max_retries = 2;
  Cluster envoy = BuildCluster(Pool("chat", {}), ClientKind::kEnvoy, &pool);
  ASSERT_EQ(envoy.circuit_breakers().thresholds_size(), 1);
  const auto& t = envoy.circuit_breakers().thresholds(0);
  EXPECT_EQ(t.max_connections().value(), 64u);
  EXPECT_EQ(t.max_pending_requests().value(), 32u);
  EXPECT_EQ(t.max_requests().value(), 256u);
  EXPECT_EQ(t.max_retries().value(), 2u);
  // Zero is a real limit (reject everything), so it is sent, not dropped.
  pool.envoy.max_retries = 0;
  envoy = BuildCluster(Pool("chat", {}), ClientKind::kEnvoy, &pool);
  EXPECT_TRUE(envoy.circuit_breakers().thresholds(0).has_max_retries());
  EXPECT_EQ(envoy.circuit_breakers().thresholds(0).max_retries().value(), 0u);

  // The defaults are Envoy's own; gRPC clients and configless clusters get none.
  const policy::FleetConfig defaults = policy::DefaultFleetConfig();
  envoy = BuildCluster(Pool("chat", {}), ClientKind::kEnvoy, &defaults.defaults);
  EXPECT_EQ(envoy.circuit_breakers().thresholds(0).max_requests().value(), 1024u);
  EXPECT_EQ(envoy.circuit_breakers().thresholds(0).max_retries().value(), 3u);
  EXPECT_FALSE(BuildCluster(Pool("chat", {}), ClientKind::kGrpc, &pool).has_circuit_breakers());
  EXPECT_FALSE(BuildCluster(Pool("chat", {}), ClientKind::kEnvoy).has_circuit_breakers());

  // Through the catalog, per pool; a change of thresholds is a new Cluster version.
  policy::FleetConfig fleet;
  fleet.pools["small"].envoy.max_requests = 8;
  auto catalog = BuildCatalog({Snap(Pool("small", {}), "v1"), Snap(Pool("big", {}), "v2")}, ClientKind::kEnvoy, &fleet);
  Cluster small, big;
  ASSERT_TRUE(catalog->Of(kClusterType).at("small")->any.UnpackTo(&small));
  ASSERT_TRUE(catalog->Of(kClusterType).at("big")->any.UnpackTo(&big));
  EXPECT_EQ(small.circuit_breakers().thresholds(0).max_requests().value(), 8u);
  EXPECT_EQ(big.circuit_breakers().thresholds(0).max_requests().value(), 1024u);
  fleet.pools["small"].envoy.max_requests = 9;
  auto changed = BuildCatalog({Snap(Pool("small", {}), "v1"), Snap(Pool("big", {}), "v2")}, ClientKind::kEnvoy, &fleet);
  EXPECT_NE(changed->Of(kClusterType).at("small")->version, catalog->Of(kClusterType).at("small")->version);
  EXPECT_EQ(changed->Of(kClusterType).at("big")->version, catalog->Of(kClusterType).at("big")->version);
}

TEST(ResourcesTest, OverrideHostPolicyOnlyWhenThePoolAsksForIt) {
  using envoy::extensions::load_balancing_policies::override_host::v3::OverrideHost;
  policy::PoolPolicy pool;
  EXPECT_FALSE(BuildCluster(Pool("chat", {}), ClientKind::kEnvoy, &pool).has_load_balancing_policy());

  pool.envoy.override_host = true;
  EXPECT_FALSE(BuildCluster(Pool("chat", {}), ClientKind::kGrpc, &pool).has_load_balancing_policy());
  struct Case {
    v1::LbPolicy pool_policy;
    std::string fallback_name;
    std::string fallback_type;
  };
  const Case cases[] = {
      {v1::LB_POLICY_WEIGHTED, "envoy.load_balancing_policies.least_request", kLeastRequestType},
      {v1::LB_POLICY_LEAST_REQUEST, "envoy.load_balancing_policies.least_request", kLeastRequestType},
      {v1::LB_POLICY_ROUND_ROBIN, "envoy.load_balancing_policies.round_robin", kRoundRobinType},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(v1::LbPolicy_Name(c.pool_policy));
    Cluster cluster = BuildCluster(Pool("chat", {}, c.pool_policy), ClientKind::kEnvoy, &pool);
    ASSERT_EQ(cluster.load_balancing_policy().policies_size(), 1);
    const auto& ext = cluster.load_balancing_policy().policies(0).typed_extension_config();
    EXPECT_EQ(ext.name(), "envoy.load_balancing_policies.override_host");
    EXPECT_EQ(ext.typed_config().type_url(), kOverrideHostType);
    OverrideHost override_host;
    ASSERT_TRUE(ext.typed_config().UnpackTo(&override_host));
    ASSERT_EQ(override_host.override_host_sources_size(), 2);
    EXPECT_EQ(override_host.override_host_sources(0).header(), "x-gateway-destination-endpoint");
    EXPECT_EQ(override_host.override_host_sources(1).metadata().key(), "envoy.lb");
    ASSERT_EQ(override_host.override_host_sources(1).metadata().path_size(), 1);
    EXPECT_EQ(override_host.override_host_sources(1).metadata().path(0).key(), "x-gateway-destination-endpoint");
    ASSERT_EQ(override_host.fallback_policy().policies_size(), 1);
    const auto& fallback = override_host.fallback_policy().policies(0).typed_extension_config();
    EXPECT_EQ(fallback.name(), c.fallback_name);
    EXPECT_EQ(fallback.typed_config().type_url(), c.fallback_type);
    // Envoy ignores lb_policy under load_balancing_policy; it stays what it would be.
    EXPECT_EQ(cluster.lb_policy(),
              c.pool_policy == v1::LB_POLICY_ROUND_ROBIN ? Cluster::ROUND_ROBIN : Cluster::LEAST_REQUEST);
  }
}

TEST(ResourcesTest, AssignmentLayoutAndHealth) {
  struct Case {
    std::string name;
    v1::AssignedEndpoint endpoint;
    bool present;
    envoy::config::core::v3::HealthStatus health;
    uint32_t weight;
  };
  const Case cases[] = {
      {"ready", Ep("10.0.0.1:8000", 100), true, envoy::config::core::v3::HEALTHY, 100},
      {"draining keeps a weight >= 1", Ep("10.0.0.2:8000", 0, v1::ENDPOINT_STATE_DRAINING), true,
       envoy::config::core::v3::DRAINING, 1},
      {"open circuit left out", Ep("10.0.0.3:8000", 0, v1::ENDPOINT_STATE_READY, v1::CIRCUIT_STATE_OPEN), false,
       envoy::config::core::v3::UNKNOWN, 0},
      {"open circuit with a weight still left out",
       Ep("10.0.0.3:8000", 50, v1::ENDPOINT_STATE_READY, v1::CIRCUIT_STATE_OPEN), false,
       envoy::config::core::v3::UNKNOWN, 0},
      {"half open keeps its small weight",
       Ep("10.0.0.4:8000", 8, v1::ENDPOINT_STATE_READY, v1::CIRCUIT_STATE_HALF_OPEN), true,
       envoy::config::core::v3::HEALTHY, 8},
      {"starting left out", Ep("10.0.0.5:8000", 0, v1::ENDPOINT_STATE_STARTING), false,
       envoy::config::core::v3::UNKNOWN, 0},
      {"unhealthy left out", Ep("10.0.0.6:8000", 0, v1::ENDPOINT_STATE_UNHEALTHY), false,
       envoy::config::core::v3::UNKNOWN, 0},
      {"not host:port left out", Ep("nonsense", 10), false, envoy::config::core::v3::UNKNOWN, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ClusterLoadAssignment cla = BuildClusterLoadAssignment(Pool("chat", {c.endpoint}));
    EXPECT_EQ(cla.cluster_name(), "chat");
    if (!c.present) {
      EXPECT_EQ(cla.endpoints_size(), 0);
      continue;
    }
    ASSERT_EQ(cla.endpoints_size(), 1);
    const auto& locality = cla.endpoints(0);
    EXPECT_EQ(locality.load_balancing_weight().value(), c.weight * kLocalityWeightScale);  // What gRPC honors.
    EXPECT_EQ(locality.priority(), 0u);
    ASSERT_EQ(locality.lb_endpoints_size(), 1);
    const auto& lb = locality.lb_endpoints(0);
    EXPECT_EQ(lb.health_status(), c.health);
    EXPECT_EQ(lb.load_balancing_weight().value(), c.weight);  // What Envoy honors.
    const auto& socket = lb.endpoint().address().socket_address();
    EXPECT_EQ(absl::StrCat(socket.address(), ":", socket.port_value()), c.endpoint.address());
  }
}

TEST(ResourcesTest, OneDistinctLocalityPerEndpointAndNoDuplicateAddresses) {
  v1::AssignedEndpoint again = Ep("10.0.0.1:8000", 5);
  again.set_node_id("other-node");
  ClusterLoadAssignment cla =
      BuildClusterLoadAssignment(Pool("chat", {Ep("10.0.0.1:8000", 10), Ep("10.0.0.2:8000", 20), again}));
  ASSERT_EQ(cla.endpoints_size(), 2);
  EXPECT_NE(cla.endpoints(0).locality().SerializeAsString(), cla.endpoints(1).locality().SerializeAsString());
  EXPECT_EQ(cla.endpoints(0).load_balancing_weight().value(), 10u * kLocalityWeightScale);
  EXPECT_EQ(cla.endpoints(1).load_balancing_weight().value(), 20u * kLocalityWeightScale);
}

TEST(ResourcesTest, IpV6Address) {
  ClusterLoadAssignment cla = BuildClusterLoadAssignment(Pool("chat", {Ep("[::1]:9000", 3)}));
  ASSERT_EQ(cla.endpoints_size(), 1);
  EXPECT_EQ(cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().address(), "::1");
  EXPECT_EQ(cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().port_value(), 9000u);
}

TEST(ResourcesTest, CatalogPerClientKindWithContentHashVersions) {
  std::vector<std::shared_ptr<const Snapshot>> snaps = {Snap(Pool("a", {Ep("10.0.0.1:1", 1)}), "v1"),
                                                        Snap(Pool("b", {Ep("10.0.0.2:1", 2)}), "v2")};
  auto grpc = BuildCatalog(snaps, ClientKind::kGrpc);
  auto envoy = BuildCatalog(snaps, ClientKind::kEnvoy);
  for (const char* type : {kListenerType, kRouteConfigurationType, kClusterType, kClusterLoadAssignmentType}) {
    SCOPED_TRACE(type);
    ASSERT_EQ(grpc->Of(type).size(), 2u);
    for (const auto& [name, resource] : grpc->Of(type)) {
      EXPECT_EQ(resource->name, name);
      EXPECT_EQ(resource->any.type_url(), type);
      EXPECT_EQ(resource->version.size(), 16u);
    }
  }
  EXPECT_TRUE(envoy->Of(kListenerType).empty());  // ApiListeners are for proxyless gRPC.
  EXPECT_EQ(envoy->Of(kRouteConfigurationType).count(kEnvoyRouteName), 1u);
  EXPECT_EQ(grpc->Of(kRouteConfigurationType).count(kEnvoyRouteName), 0u);
  EXPECT_EQ(envoy->Of(kClusterType).size(), 2u);
  // The CDS resources differ by kind (the LB policy), the EDS ones do not.
  EXPECT_NE(grpc->Of(kClusterType).at("a")->version, envoy->Of(kClusterType).at("a")->version);
  EXPECT_EQ(grpc->Of(kClusterLoadAssignmentType).at("a")->version,
            envoy->Of(kClusterLoadAssignmentType).at("a")->version);

  // Same content, same versions (a restart, a replica); a changed weight changes only its EDS resource.
  auto again = BuildCatalog(snaps, ClientKind::kGrpc);
  EXPECT_EQ(again->Of(kClusterLoadAssignmentType).at("a")->version,
            grpc->Of(kClusterLoadAssignmentType).at("a")->version);
  snaps[0] = Snap(Pool("a", {Ep("10.0.0.1:1", 7)}), "v3");
  auto changed = BuildCatalog(snaps, ClientKind::kGrpc);
  EXPECT_NE(changed->Of(kClusterLoadAssignmentType).at("a")->version,
            grpc->Of(kClusterLoadAssignmentType).at("a")->version);
  EXPECT_EQ(changed->Of(kClusterLoadAssignmentType).at("b")->version,
            grpc->Of(kClusterLoadAssignmentType).at("b")->version);
  EXPECT_EQ(changed->Of(kClusterType).at("a")->version, grpc->Of(kClusterType).at("a")->version);
  EXPECT_EQ(changed->Of(kListenerType).at("a")->version, grpc->Of(kListenerType).at("a")->version);
}

TEST(ResourcesTest, VersionIsAStableHashOfTheContent) {
  // Pinned: a change to it changes every client's versions at upgrade (a resend, not an error).
  auto resource = MakeResource("chat", BuildRouteConfiguration("chat"));
  EXPECT_EQ(resource->version, MakeResource("chat", BuildRouteConfiguration("chat"))->version);
  EXPECT_NE(resource->version, MakeResource("chat2", BuildRouteConfiguration("chat2"))->version);
}

TEST(ResourcesTest, CatalogRebuildsOnlyThePoolsThatChanged) {
  std::vector<std::shared_ptr<const Snapshot>> snaps = {Snap(Pool("a", {Ep("10.0.0.1:1", 1)}), "v1"),
                                                        Snap(Pool("b", {Ep("10.0.0.2:1", 2)}), "v2")};
  std::map<std::string, PoolResources> reuse;
  auto first = BuildCatalog(snaps, ClientKind::kGrpc, nullptr, &reuse);
  EXPECT_EQ(reuse.size(), 2u);
  snaps[0] = Snap(Pool("a", {Ep("10.0.0.1:1", 7)}), "v3");
  auto second = BuildCatalog(snaps, ClientKind::kGrpc, nullptr, &reuse);
  for (const char* type : {kListenerType, kRouteConfigurationType, kClusterType, kClusterLoadAssignmentType}) {
    SCOPED_TRACE(type);
    // b's snapshot kept its version: the very same resources (not rebuilt, not re-encoded).
    EXPECT_EQ(second->Of(type).at("b"), first->Of(type).at("b"));
    EXPECT_NE(second->Of(type).at("a"), first->Of(type).at("a"));
  }
  EXPECT_NE(second->Of(kClusterLoadAssignmentType).at("a")->version,
            first->Of(kClusterLoadAssignmentType).at("a")->version);
  // The same content as a build without reuse.
  auto fresh = BuildCatalog(snaps, ClientKind::kGrpc);
  for (const char* type : {kListenerType, kRouteConfigurationType, kClusterType, kClusterLoadAssignmentType}) {
    for (const auto& [name, resource] : fresh->Of(type))
      EXPECT_EQ(second->Of(type).at(name)->version, resource->version);
  }
  // A pool gone from the snapshots is gone from the catalog and from the reuse map.
  snaps.pop_back();
  auto third = BuildCatalog(snaps, ClientKind::kGrpc, nullptr, &reuse);
  EXPECT_EQ(third->Of(kClusterType).count("b"), 0u);
  EXPECT_EQ(reuse.count("b"), 0u);
  EXPECT_EQ(third->Of(kClusterType).at("a"), second->Of(kClusterType).at("a"));
}

TEST(ResourcesTest, WireEntriesAreOneResponseElement) {
  auto resource = MakeResource("a", BuildClusterLoadAssignment(Pool("a", {Ep("10.0.0.1:1", 3)})));
  envoy::service::discovery::v3::DiscoveryResponse sotw;
  ASSERT_TRUE(sotw.ParseFromString(resource->SotwEntry()));
  ASSERT_EQ(sotw.resources_size(), 1);
  EXPECT_EQ(sotw.resources(0).SerializeAsString(), resource->any.SerializeAsString());
  envoy::service::discovery::v3::DeltaDiscoveryResponse delta;
  ASSERT_TRUE(delta.ParseFromString(resource->DeltaEntry()));
  ASSERT_EQ(delta.resources_size(), 1);
  EXPECT_EQ(delta.resources(0).name(), "a");
  EXPECT_EQ(delta.resources(0).version(), resource->version);
  EXPECT_EQ(delta.resources(0).resource().SerializeAsString(), resource->any.SerializeAsString());
  EXPECT_EQ(&resource->SotwEntry(), &resource->SotwEntry());  // Encoded once.
}

}  // namespace
}  // namespace switchboard::controlplane::xds
