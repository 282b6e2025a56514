// Priority classes for Envoy (docs/configuration.md, "Priority classes"): per class of a
// pool POOL a Cluster named POOL~CLASS over the pool's endpoints (EDS service name POOL:
// the same ClusterLoadAssignment), whose circuit breaker lets that class keep at most its
// share of the pool's slots in flight, and routes on the x-priority and x-tenant headers
// that choose among them as ClassifyRequest (controlplane/policy/admission.h) does:
//
//   x-model: POOL, x-tenant: T, x-priority: X   -> POOL~X  (X less important than T's class)
//   x-model: POOL, x-tenant: T                  -> POOL~(T's class)
//   x-model: POOL, x-priority: X                -> POOL~X
//   x-model: POOL                               -> POOL~(default class)
//
// Envoy's breaker counts the requests of one Envoy in flight on one cluster: each Envoy
// replica enforces a class's limit on its own, and only on that class's own requests (it
// does not see the other classes' load as the picker does).
#ifndef SWITCHBOARD_CONTROLPLANE_XDS_PRIORITY_RESOURCES_H_
#define SWITCHBOARD_CONTROLPLANE_XDS_PRIORITY_RESOURCES_H_

#include <string>
#include <vector>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/config/route/v3/route_components.pb.h"
#include "switchboard/v1/discovery.pb.h"

namespace switchboard::controlplane::xds {

inline constexpr char kClassSeparator = '~';

// POOL~CLASS.
std::string ClassClusterName(const std::string& pool, const std::string& class_name);

// One Cluster per class of `assignment` (none without classes), each a copy of
// `pool_cluster` (the pool's own Cluster for Envoy) renamed, reading the pool's EDS
// resource, with max_requests = max(1, floor(class limit in slots)) unless the pool's own
// threshold is lower.
std::vector<envoy::config::cluster::v3::Cluster> BuildClassClusters(
    const v1::Assignment& assignment, const envoy::config::cluster::v3::Cluster& pool_cluster);

// Appends to `host` the routes of the pool's classes (none without classes), most
// specific first; the last one matches every request of the pool. `model_header` is the
// header that names the pool.
void AppendClassRoutes(const v1::Assignment& assignment, const std::string& model_header,
                       envoy::config::route::v3::VirtualHost* host);

// In Envoy's RouteConfiguration (one route per pool, named after it), replaces the route
// of each pool of `assignments` that has classes with its class routes, in place.
void ApplyClassRoutes(const std::vector<const v1::Assignment*>& assignments, const std::string& model_header,
                      envoy::config::route::v3::RouteConfiguration* config);

}  // namespace switchboard::controlplane::xds

#endif  // SWITCHBOARD_CONTROLPLANE_XDS_PRIORITY_RESOURCES_H_
