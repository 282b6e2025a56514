// DiscoveryService: native xDS-style assignment streams over the SnapshotStore.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_DISCOVERY_SERVICE_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_DISCOVERY_SERVICE_H_

#include "controlplane/metrics.h"
#include "controlplane/snapshot/snapshot_store.h"
#include "switchboard/v1/discovery.grpc.pb.h"

namespace switchboard::controlplane {

class DiscoveryServiceImpl final : public v1::DiscoveryService::CallbackService {
 public:
  DiscoveryServiceImpl(SnapshotStore* store, ControlPlaneMetrics* metrics) : store_(store), metrics_(metrics) {}

  grpc::ServerBidiReactor<v1::SubscribeRequest, v1::Assignment>* Subscribe(
      grpc::CallbackServerContext* context) override;

 private:
  friend class SubscribeStream;
  SnapshotStore* const store_;
  ControlPlaneMetrics* const metrics_;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_DISCOVERY_SERVICE_H_
