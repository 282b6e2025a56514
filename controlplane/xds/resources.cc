#include "controlplane/xds/resources.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "common/host_port.h"
#include "controlplane/xds/priority_resources.h"
#include "controlplane/xds/type_urls.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/load_balancing_policies/least_request/v3/least_request.pb.h"
#include "envoy/extensions/load_balancing_policies/override_host/v3/override_host.pb.h"
#include "envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace switchboard::controlplane::xds {
namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::config::core::v3::HealthStatus;
using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
using envoy::extensions::load_balancing_policies::override_host::v3::OverrideHost;

std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string bytes;
  google::protobuf::io::StringOutputStream raw(&bytes);
  google::protobuf::io::CodedOutputStream coded(&raw);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  google::protobuf::Duration out;
  const int64_t ms = absl::ToInt64Milliseconds(d);
  out.set_seconds(ms / 1000);
  out.set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
  return out;
}

Cluster::LbPolicy EnvoyLbPolicy(v1::LbPolicy policy) {
  switch (policy) {
    case v1::LB_POLICY_ROUND_ROBIN:
      return Cluster::ROUND_ROBIN;
    case v1::LB_POLICY_WEIGHTED:       // Envoy's least request honors endpoint weights.
    case v1::LB_POLICY_LEAST_REQUEST:  // Same, with the weights that matter to it.
    case v1::LB_POLICY_SLOT_BASED:     // The nearest Envoy has: fewest requests in flight.
    default:
      return Cluster::LEAST_REQUEST;
  }
}

}  // namespace

ClientKind ClientKindOf(const envoy::config::core::v3::Node& node) {
  return absl::EqualsIgnoreCase(node.user_agent_name(), "envoy") ? ClientKind::kEnvoy : ClientKind::kGrpc;
}

envoy::config::listener::v3::Listener BuildListener(const std::string& pool) {
  HttpConnectionManager hcm;
  hcm.set_stat_prefix(pool);
  auto* rds = hcm.mutable_rds();
  rds->set_route_config_name(pool);
  rds->mutable_config_source()->mutable_ads();
  rds->mutable_config_source()->set_resource_api_version(envoy::config::core::v3::V3);
  auto* router = hcm.add_http_filters();  // Last: the filter that routes.
  router->set_name("envoy.filters.http.router");
  router->mutable_typed_config()->PackFrom(envoy::extensions::filters::http::router::v3::Router());

  envoy::config::listener::v3::Listener listener;
  listener.set_name(pool);
  listener.mutable_api_listener()->mutable_api_listener()->PackFrom(hcm);
  return listener;
}

envoy::config::route::v3::RouteConfiguration BuildRouteConfiguration(const std::string& pool) {
  envoy::config::route::v3::RouteConfiguration config;
  config.set_name(pool);
  auto* host = config.add_virtual_hosts();
  host->set_name(pool);
  host->add_domains("*");
  auto* route = host->add_routes();
  route->mutable_match()->set_prefix("");
  route->mutable_route()->set_cluster(pool);
  return config;
}

envoy::config::route::v3::RouteConfiguration BuildEnvoyRouteConfiguration(const std::vector<std::string>& pools) {
  envoy::config::route::v3::RouteConfiguration config;
  config.set_name(kEnvoyRouteName);
  auto* host = config.add_virtual_hosts();
  host->set_name(kEnvoyRouteName);
  host->add_domains("*");
  std::vector<std::string> sorted = pools;
  std::sort(sorted.begin(), sorted.end());
  for (const std::string& pool : sorted) {
    auto* route = host->add_routes();
    route->set_name(pool);
    route->mutable_match()->set_prefix("/");
    auto* header = route->mutable_match()->add_headers();
    header->set_name(kModelHeader);
    header->mutable_string_match()->set_exact(pool);
    route->mutable_route()->set_cluster(pool);
  }
  return config;
}

Cluster BuildCluster(const v1::Assignment& assignment, ClientKind kind, const policy::PoolPolicy* pool) {
  Cluster cluster;
  cluster.set_name(assignment.pool());
  cluster.set_type(Cluster::EDS);
  auto* eds = cluster.mutable_eds_cluster_config()->mutable_eds_config();
  eds->mutable_ads();
  eds->set_resource_api_version(envoy::config::core::v3::V3);
  cluster.mutable_connect_timeout()->set_seconds(5);
  // gRPC 1.51 NACKs every policy but ROUND_ROBIN and RING_HASH; it honors weights through
  // the locality weights of the assignment instead.
  cluster.set_lb_policy(kind == ClientKind::kGrpc ? Cluster::ROUND_ROBIN : EnvoyLbPolicy(assignment.lb_policy()));
  if (kind != ClientKind::kEnvoy || pool == nullptr) return cluster;

  // Switchboard's breaker in Envoy's terms: the 5xx share over the requests of an
  // interval, the same ejection times and the same cap on the ejected share.
  const policy::CircuitConfig& circuit = pool->policy.circuit;
  auto* od = cluster.mutable_outlier_detection();
  od->mutable_failure_percentage_threshold()->set_value(
      static_cast<uint32_t>(std::lround(std::clamp(circuit.max_error_rate, 0.0, 1.0) * 100)));
  od->mutable_enforcing_failure_percentage()->set_value(100);
  od->mutable_failure_percentage_minimum_hosts()->set_value(1);
  od->mutable_failure_percentage_request_volume()->set_value(
      static_cast<uint32_t>(std::clamp<int64_t>(circuit.min_requests, 1, 1000000)));
  *od->mutable_base_ejection_time() = ToProtoDuration(circuit.base_ejection);
  *od->mutable_max_ejection_time() = ToProtoDuration(circuit.max_ejection);
  od->mutable_max_ejection_percent()->set_value(
      static_cast<uint32_t>(std::lround(std::clamp(circuit.max_ejection_share, 0.0, 1.0) * 100)));

  // One set of thresholds, for the default routing priority (the only one routes use here).
  const policy::EnvoyClusterConfig& limits = pool->envoy;
  auto* thresholds = cluster.mutable_circuit_breakers()->add_thresholds();
  thresholds->mutable_max_connections()->set_value(limits.max_connections);
  thresholds->mutable_max_pending_requests()->set_value(limits.max_pending_requests);
  thresholds->mutable_max_requests()->set_value(limits.max_requests);
  thresholds->mutable_max_retries()->set_value(limits.max_retries);

  if (limits.override_host) {
    // The picker's choice first (header, then the metadata its ext_proc answer sets);
    // without one, or when it names no endpoint of the cluster, the weighted policy
    // that lb_policy would have been (Envoy ignores lb_policy once this is set).
    OverrideHost override_host;
    override_host.add_override_host_sources()->set_header(kDestinationEndpointHeader);
    auto* metadata = override_host.add_override_host_sources()->mutable_metadata();
    metadata->set_key(kDestinationMetadataNamespace);
    metadata->add_path()->set_key(kDestinationEndpointHeader);
    auto* fallback = override_host.mutable_fallback_policy()->add_policies()->mutable_typed_extension_config();
    if (cluster.lb_policy() == Cluster::ROUND_ROBIN) {
      fallback->set_name("envoy.load_balancing_policies.round_robin");
      fallback->mutable_typed_config()->PackFrom(
          envoy::extensions::load_balancing_policies::round_robin::v3::RoundRobin());
    } else {
      fallback->set_name("envoy.load_balancing_policies.least_request");
      fallback->mutable_typed_config()->PackFrom(
          envoy::extensions::load_balancing_policies::least_request::v3::LeastRequest());
    }
    auto* policy = cluster.mutable_load_balancing_policy()->add_policies()->mutable_typed_extension_config();
    policy->set_name("envoy.load_balancing_policies.override_host");
    policy->mutable_typed_config()->PackFrom(override_host);
  }
  return cluster;
}

ClusterLoadAssignment BuildClusterLoadAssignment(const v1::Assignment& assignment) {
  ClusterLoadAssignment cla;
  cla.set_cluster_name(assignment.pool());
  std::set<std::string> seen;  // Clients reject a cluster that lists an address twice.
  for (const v1::AssignedEndpoint& ep : assignment.endpoints()) {
    if (ep.circuit() == v1::CIRCUIT_STATE_OPEN) continue;
    const bool draining = ep.state() == v1::ENDPOINT_STATE_DRAINING;
    if (ep.weight() == 0 && !draining) continue;  // Starting, unhealthy or excluded by policy.
    absl::StatusOr<HostPort> hp = ParseHostPort(ep.address());
    if (!hp.ok() || !seen.insert(ep.address()).second) continue;
    const uint32_t weight = ep.weight() == 0 ? 1 : ep.weight();  // Weights must be >= 1.

    auto* locality = cla.add_endpoints();
    locality->mutable_locality()->set_zone(ep.node_id());
    locality->mutable_locality()->set_sub_zone(ep.address());
    locality->mutable_load_balancing_weight()->set_value(weight * kLocalityWeightScale);
    auto* lb = locality->add_lb_endpoints();
    auto* socket = lb->mutable_endpoint()->mutable_address()->mutable_socket_address();
    socket->set_address(hp->host);
    socket->set_port_value(static_cast<uint32_t>(hp->port));
    lb->set_health_status(draining ? envoy::config::core::v3::DRAINING : envoy::config::core::v3::HEALTHY);
    lb->mutable_load_balancing_weight()->set_value(weight);
  }
  return cla;
}

const std::map<std::string, std::shared_ptr<const Resource>>& Catalog::Of(const std::string& type_url) const {
  static const auto* const empty = new std::map<std::string, std::shared_ptr<const Resource>>();
  auto it = types.find(type_url);
  return it == types.end() ? *empty : it->second;
}

std::shared_ptr<const Resource> MakeResource(const std::string& name, const google::protobuf::Message& message) {
  auto resource = std::make_shared<Resource>();
  resource->name = name;
  const std::string bytes = DeterministicBytes(message);
  resource->any.set_type_url(absl::StrCat("type.googleapis.com/", message.GetDescriptor()->full_name()));
  resource->any.set_value(bytes);
  resource->version = HashHex(bytes);
  return resource;
}

const std::string& Resource::SotwEntry() const {
  absl::call_once(sotw_once_, [this] {
    envoy::service::discovery::v3::DiscoveryResponse one;
    *one.add_resources() = any;
    sotw_entry_ = DeterministicBytes(one);
  });
  return sotw_entry_;
}

const std::string& Resource::DeltaEntry() const {
  absl::call_once(delta_once_, [this] {
    envoy::service::discovery::v3::DeltaDiscoveryResponse one;
    auto* resource = one.add_resources();
    resource->set_name(name);
    resource->set_version(version);
    *resource->mutable_resource() = any;
    delta_entry_ = DeterministicBytes(one);
  });
  return delta_entry_;
}

PoolResources BuildPoolResources(const Snapshot& snap, ClientKind kind, const policy::PoolPolicy* pool_config) {
  PoolResources out;
  out.version = snap.version;
  const std::string& pool = snap.pool;
  // Envoy takes listeners with sockets; an ApiListener is for proxyless gRPC only.
  if (kind == ClientKind::kGrpc) out.resources.emplace_back(kListenerType, MakeResource(pool, BuildListener(pool)));
  out.resources.emplace_back(kRouteConfigurationType, MakeResource(pool, BuildRouteConfiguration(pool)));
  const envoy::config::cluster::v3::Cluster cluster = BuildCluster(snap.assignment, kind, pool_config);
  out.resources.emplace_back(kClusterType, MakeResource(pool, cluster));
  if (kind == ClientKind::kEnvoy) {
    for (const auto& c : BuildClassClusters(snap.assignment, cluster)) {
      out.resources.emplace_back(kClusterType, MakeResource(c.name(), c));
    }
  }
  out.resources.emplace_back(kClusterLoadAssignmentType,
                             MakeResource(pool, BuildClusterLoadAssignment(snap.assignment)));
  return out;
}

std::shared_ptr<const Catalog> BuildCatalog(const std::vector<std::shared_ptr<const Snapshot>>& snapshots,
                                            ClientKind kind, const policy::FleetConfig* config,
                                            std::map<std::string, PoolResources>* reuse) {
  auto catalog = std::make_shared<Catalog>();
  // Every type is present, possibly empty: an empty LDS or CDS answer is a real answer.
  for (const char* type_url : {kListenerType, kRouteConfigurationType, kClusterType, kClusterLoadAssignmentType}) {
    catalog->types[type_url];
  }
  if (kind == ClientKind::kEnvoy) {
    std::vector<std::string> pools;
    for (const auto& snap : snapshots) pools.push_back(snap->pool);
    envoy::config::route::v3::RouteConfiguration envoy_routes = BuildEnvoyRouteConfiguration(pools);
    std::vector<const v1::Assignment*> published;
    for (const auto& snap : snapshots) published.push_back(&snap->assignment);
    ApplyClassRoutes(published, kModelHeader, &envoy_routes);  // Priority classes: POOL~CLASS.
    catalog->types[kRouteConfigurationType][kEnvoyRouteName] = MakeResource(kEnvoyRouteName, envoy_routes);
  }
  std::map<std::string, PoolResources> built;
  for (const std::shared_ptr<const Snapshot>& snap : snapshots) {
    PoolResources* pool = nullptr;
    if (reuse != nullptr) {
      auto it = reuse->find(snap->pool);
      if (it != reuse->end() && it->second.version == snap->version)
        pool = &(built[snap->pool] = std::move(it->second));
    }
    if (pool == nullptr) {
      const policy::PoolPolicy* pool_config = config != nullptr ? &config->For(snap->pool) : nullptr;
      pool = &(built[snap->pool] = BuildPoolResources(*snap, kind, pool_config));
    }
    for (const auto& [type_url, resource] : pool->resources) catalog->types[type_url][resource->name] = resource;
  }
  if (reuse != nullptr) *reuse = std::move(built);
  return catalog;
}

}  // namespace switchboard::controlplane::xds
