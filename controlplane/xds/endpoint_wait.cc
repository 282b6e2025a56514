#include "controlplane/xds/endpoint_wait.h"

#include "envoy/config/cluster/v3/cluster.pb.h"

namespace switchboard::controlplane::xds {

std::string EndpointWait::ServiceOf(const Resource& cluster) {
  envoy::config::cluster::v3::Cluster c;
  if (cluster.any.UnpackTo(&c) && !c.eds_cluster_config().service_name().empty()) {
    return c.eds_cluster_config().service_name();
  }
  return cluster.name;
}

void EndpointWait::ClusterAdded(const std::string& cluster, const std::string& service, bool has_endpoints) {
  if (has_endpoints) {
    waiting_.erase(cluster);
  } else {
    waiting_[cluster] = service;
  }
}

void EndpointWait::ClusterRemoved(const std::string& cluster) { waiting_.erase(cluster); }

void EndpointWait::Retain(const std::map<std::string, std::string>& sent) {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    it = sent.count(it->first) != 0 ? std::next(it) : waiting_.erase(it);
  }
}

void EndpointWait::EndpointsAnswered(const std::map<std::string, std::string>& assignments) {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    it = assignments.count(it->second) != 0 ? waiting_.erase(it) : std::next(it);
  }
}

bool EndpointWait::Awaiting(const std::map<std::string, std::shared_ptr<const Resource>>& assignments) const {
  for (const auto& [cluster, service] : waiting_) {
    if (assignments.count(service) != 0) return true;
  }
  return false;
}

}  // namespace switchboard::controlplane::xds
