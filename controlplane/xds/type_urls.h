// The xDS v3 type URLs Switchboard serves and embeds. They derive from the proto package
// and message names, so they are exactly upstream's (checked in envoy_api_test.cc).
#ifndef SWITCHBOARD_CONTROLPLANE_XDS_TYPE_URLS_H_
#define SWITCHBOARD_CONTROLPLANE_XDS_TYPE_URLS_H_

namespace switchboard::controlplane::xds {

inline constexpr char kListenerType[] = "type.googleapis.com/envoy.config.listener.v3.Listener";
inline constexpr char kRouteConfigurationType[] = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
inline constexpr char kClusterType[] = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
inline constexpr char kClusterLoadAssignmentType[] =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
inline constexpr char kHttpConnectionManagerType[] =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
inline constexpr char kRouterType[] = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
inline constexpr char kLeastRequestType[] =
    "type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest";
inline constexpr char kRoundRobinType[] =
    "type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin";
// Newer than the npm copy (not in kAllTypeUrls; checked against recorded upstream numbers).
inline constexpr char kOverrideHostType[] =
    "type.googleapis.com/envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost";

// Every type URL above, for tests and iteration.
inline constexpr const char* kAllTypeUrls[] = {
    kListenerType, kRouteConfigurationType, kClusterType,   kClusterLoadAssignmentType, kHttpConnectionManagerType,
    kRouterType,   kLeastRequestType,       kRoundRobinType};

}  // namespace switchboard::controlplane::xds

#endif  // SWITCHBOARD_CONTROLPLANE_XDS_TYPE_URLS_H_
