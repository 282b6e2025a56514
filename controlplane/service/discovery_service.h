// DiscoveryService: native xDS-style assignment streams over the SnapshotStore; the
// endpoint outcomes gateways report on them go to FleetState.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_DISCOVERY_SERVICE_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_DISCOVERY_SERVICE_H_

#include "controlplane/fleet/client_registry.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/metrics.h"
#include "controlplane/snapshot/snapshot_store.h"
#include "switchboard/v1/discovery.grpc.pb.h"

namespace switchboard::controlplane {

class DiscoveryServiceImpl final : public v1::DiscoveryService::CallbackService {
 public:
  // `fleet` may be null (outcomes are then ignored), `clients` too (streams are then not
  // listed). All must outlive the service.
  DiscoveryServiceImpl(SnapshotStore* store, ControlPlaneMetrics* metrics, FleetState* fleet = nullptr,
                       ClientRegistry* clients = nullptr)
      : store_(store), metrics_(metrics), fleet_(fleet), clients_(clients) {}

  grpc::ServerBidiReactor<v1::SubscribeRequest, v1::Assignment>* Subscribe(
      grpc::CallbackServerContext* context) override;

 private:
  friend class SubscribeStream;
  SnapshotStore* const store_;
  ControlPlaneMetrics* const metrics_;
  FleetState* const fleet_;
  ClientRegistry* const clients_;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_DISCOVERY_SERVICE_H_
