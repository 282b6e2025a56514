#ifndef SWITCHBOARD_CONTROLPLANE_XDS_ENDPOINT_WAIT_H_
#define SWITCHBOARD_CONTROLPLANE_XDS_ENDPOINT_WAIT_H_

#include <map>
#include <memory>
#include <string>

#include "controlplane/xds/resources.h"

namespace switchboard::controlplane::xds {

// Make before break, shared by SotwStream and DeltaStream: the clusters a client was sent
// as new, each waiting until the client has answered an EDS response carrying the
// assignment it reads. That assignment is named by the cluster's EDS service name, which
// is not always the cluster's name: a priority class cluster POOL~CLASS reads POOL's.
class EndpointWait {
 public:
  // The assignment a Cluster resource reads: its eds_cluster_config.service_name, or its
  // own name when that is empty (or the resource is not a Cluster).
  static std::string ServiceOf(const Resource& cluster);

  // `cluster` was sent as new: it waits unless `has_endpoints` says the client already
  // answered its assignment.
  void ClusterAdded(const std::string& cluster, const std::string& service, bool has_endpoints);
  // `cluster` is no longer sent: it waits for nothing.
  void ClusterRemoved(const std::string& cluster);
  // Keeps only the clusters in `sent` (cluster name -> version).
  void Retain(const std::map<std::string, std::string>& sent);
  // The client answered an EDS response carrying `assignments` (name -> version).
  void EndpointsAnswered(const std::map<std::string, std::string>& assignments);
  // Whether a waiting cluster's assignment exists in `assignments` (the catalog's), i.e.
  // will reach the client.
  bool Awaiting(const std::map<std::string, std::shared_ptr<const Resource>>& assignments) const;
  size_t size() const { return waiting_.size(); }

 private:
  std::map<std::string, std::string> waiting_;  // Cluster name -> EDS service name.
};

}  // namespace switchboard::controlplane::xds

#endif  // SWITCHBOARD_CONTROLPLANE_XDS_ENDPOINT_WAIT_H_
