// The translation from a pool's Snapshot to the xDS v3 resources Envoy and proxyless gRPC
// clients read. Pure functions: the same snapshots give the same resources, byte for byte,
// on every replica and after a restart, so per-resource versions are content hashes.
//
// Per pool POOL, every resource is named POOL:
//   Listener               (gRPC clients only) ApiListener -> HttpConnectionManager, RDS over
//                          ADS, the router filter last; the target `xds:///POOL`.
//   RouteConfiguration     one virtual host for every domain, one route to cluster POOL.
//   Cluster                EDS over ADS; ROUND_ROBIN for gRPC clients (gRPC 1.51 rejects
//                          other policies), the pool's policy for Envoy.
//   ClusterLoadAssignment  one locality per endpoint, the weight as the endpoint's weight
//                          (Envoy honors it) and, scaled, as the locality's (gRPC does).
// For Envoy also one RouteConfiguration named kEnvoyRouteName that sends a request to the
// pool named by its x-model header (deploy/envoy/envoy.yaml listens with it).
#ifndef SWITCHBOARD_CONTROLPLANE_XDS_RESOURCES_H_
#define SWITCHBOARD_CONTROLPLANE_XDS_RESOURCES_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/call_once.h"
#include "controlplane/policy/pool_policy.h"
#include "controlplane/snapshot/snapshot.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/core/v3/base.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "google/protobuf/any.pb.h"

namespace switchboard::controlplane::xds {

// Which kind of xDS client a stream serves; some resources differ between them.
enum class ClientKind {
  kGrpc,   // Proxyless gRPC (and any client that does not say it is Envoy).
  kEnvoy,  // node.user_agent_name "envoy".
};

ClientKind ClientKindOf(const envoy::config::core::v3::Node& node);

envoy::config::listener::v3::Listener BuildListener(const std::string& pool);
envoy::config::route::v3::RouteConfiguration BuildRouteConfiguration(const std::string& pool);

inline constexpr char kEnvoyRouteName[] = "switchboard";
inline constexpr char kModelHeader[] = "x-model";
// Every pool behind one listener: a route per pool matching `x-model: POOL`, in pool
// name order; a request naming no known pool matches none (Envoy answers 404).
envoy::config::route::v3::RouteConfiguration BuildEnvoyRouteConfiguration(const std::vector<std::string>& pools);
// For Envoy, `pool` (the pool's configuration; null: none of this) adds what Envoy
// enforces by itself between pushes: its breaker settings as outlier detection, the
// circuit-breaker thresholds of `pool->envoy`, and, when `pool->envoy.override_host`
// asks for it, the override_host load-balancing policy with the pool's own policy as
// fallback. gRPC clients get none of it (1.51 may not take it).
envoy::config::cluster::v3::Cluster BuildCluster(const v1::Assignment& assignment, ClientKind kind,
                                                 const policy::PoolPolicy* pool = nullptr);

// The header and dynamic-metadata key an endpoint picker names its pick with (the
// Gateway API Inference Extension's endpoint-picker protocol), read by override_host.
inline constexpr char kDestinationEndpointHeader[] = "x-gateway-destination-endpoint";
inline constexpr char kDestinationMetadataNamespace[] = "envoy.lb";
envoy::config::endpoint::v3::ClusterLoadAssignment BuildClusterLoadAssignment(const v1::Assignment& assignment);

// Locality weights are the endpoint weights times this. gRPC 1.51 picks a locality with
// an off-by-one over the cumulative integer weights, which takes one unit from a
// locality's share (3% of a weight-32 endpoint's traffic next to 64 and 128); scaled,
// the error vanishes. Envoy ignores locality weights here (no locality-weighted LB) and
// 128 x 1000 x endpoints stays far below 2^32 for any real pool.
inline constexpr uint32_t kLocalityWeightScale = 1000;

// One resource ready to send: its name, a content-hash version, and the packed message.
// Shared (immutable once built) by every stream that sends it; so are its wire entries.
struct Resource {
  std::string name;
  std::string version;
  google::protobuf::Any any;

  // `any` as one element of DiscoveryResponse.resources on the wire (field tag, length,
  // the Any's bytes), serialized on first use and then shared: a response is assembled
  // from these without serializing or copying a resource per stream. Thread-safe; set
  // the fields above before the first call.
  const std::string& SotwEntry() const;
  // As one element of DeltaDiscoveryResponse.resources (a discovery Resource: name,
  // version and the Any). Same contract.
  const std::string& DeltaEntry() const;

 private:
  mutable absl::once_flag sotw_once_;
  mutable std::string sotw_entry_;
  mutable absl::once_flag delta_once_;
  mutable std::string delta_entry_;
};

// Everything a client of one kind may subscribe to: type URL -> name -> resource.
struct Catalog {
  std::map<std::string, std::map<std::string, std::shared_ptr<const Resource>>> types;

  // The resources of `type_url` (empty map when none).
  const std::map<std::string, std::shared_ptr<const Resource>>& Of(const std::string& type_url) const;
};

// The resources one pool contributes to a catalog (every type but Envoy's route over all
// pools), and the snapshot version they were built from.
struct PoolResources {
  std::string version;
  std::vector<std::pair<const char*, std::shared_ptr<const Resource>>> resources;  // (type URL, resource).
};
PoolResources BuildPoolResources(const Snapshot& snap, ClientKind kind, const policy::PoolPolicy* pool_config);

// `config` (may be null: no outlier detection) gives each pool's settings. `reuse` (may
// be null) carries each pool's resources from one call to the next: a pool whose
// snapshot version is the one recorded there is not rebuilt, so a change to one pool
// costs that pool's resources only. The caller clears it when `config` changes. On
// return it holds exactly the pools of `snapshots`.
std::shared_ptr<const Catalog> BuildCatalog(const std::vector<std::shared_ptr<const Snapshot>>& snapshots,
                                            ClientKind kind, const policy::FleetConfig* config = nullptr,
                                            std::map<std::string, PoolResources>* reuse = nullptr);

// A resource from a message: packs it and versions it by a hash of its deterministic
// serialization.
std::shared_ptr<const Resource> MakeResource(const std::string& name, const google::protobuf::Message& message);

}  // namespace switchboard::controlplane::xds

#endif  // SWITCHBOARD_CONTROLPLANE_XDS_RESOURCES_H_
