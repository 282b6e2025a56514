// DiscoveryService: native xDS-style assignment streams over the SnapshotStore; the
// endpoint outcomes gateways report on them go to FleetState. ShareInFlight
// (share_in_flight.cc): picker replicas' requests in flight, summed for each other.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_DISCOVERY_SERVICE_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_DISCOVERY_SERVICE_H_

#include "absl/base/thread_annotations.h"
#include "client/in_flight_share.h"
#include "common/mutex.h"
#include "controlplane/fleet/client_registry.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/fleet/recent_picks.h"
#include "controlplane/metrics.h"
#include "controlplane/service/authorizer.h"
#include "controlplane/service/limits.h"
#include "controlplane/snapshot/snapshot_store.h"
#include "switchboard/v1/discovery.grpc.pb.h"

namespace switchboard::controlplane {

// Subscribe is served raw (grpc::ByteBuffer): every stream writes the snapshot's
// assignment serialized once, not once per subscriber (discovery_service.cc).
class DiscoveryServiceImpl final
    : public v1::DiscoveryService::WithRawCallbackMethod_Subscribe<
          v1::DiscoveryService::WithCallbackMethod_ShareInFlight<v1::DiscoveryService::Service>> {
 public:
  // `fleet` may be null (outcomes are then ignored), `clients` too (streams are then not
  // listed). All must outlive the service.
  DiscoveryServiceImpl(SnapshotStore* store, ControlPlaneMetrics* metrics, FleetState* fleet = nullptr,
                       ClientRegistry* clients = nullptr)
      : store_(store), metrics_(metrics), fleet_(fleet), clients_(clients) {}

  // Who may subscribe (default: everyone). `auth` must outlive the service.
  void set_authorizer(const Authorizer* auth) { auth_ = auth; }
  // Streams per peer and subscribers in all (default: unlimited). Must outlive the service.
  void set_stream_gate(StreamGate* gate) { gate_ = gate; }
  // Where the picks pickers report on ShareInFlight go (default: nowhere). Must outlive
  // the service.
  void set_recent_picks(RecentPicks* picks) { recent_picks_ = picks; }

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Subscribe(grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<v1::InFlightReport, v1::PeersInFlight>* ShareInFlight(
      grpc::CallbackServerContext* context) override;

 private:
  friend class SubscribeStream;
  friend class ShareStream;
  SnapshotStore* const store_;
  ControlPlaneMetrics* const metrics_;
  FleetState* const fleet_;
  ClientRegistry* const clients_;
  const Authorizer* auth_ = Authorizer::AllowAll();
  StreamGate* gate_ = nullptr;
  RecentPicks* recent_picks_ = nullptr;
  // The replicas' latest counts, by stream (ShareInFlight).
  Mutex board_mu_;
  client::InFlightBoard board_ ABSL_GUARDED_BY(board_mu_);
  uint64_t next_share_stream_ ABSL_GUARDED_BY(board_mu_) = 0;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_DISCOVERY_SERVICE_H_
