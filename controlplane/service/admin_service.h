// AdminService: read-only views over FleetState and the SnapshotStore (for sbctl).
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_ADMIN_SERVICE_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_ADMIN_SERVICE_H_

#include "common/clock.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/snapshot/snapshot_store.h"
#include "switchboard/v1/admin.grpc.pb.h"

namespace switchboard::controlplane {

class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  AdminServiceImpl(const FleetState* fleet, const SnapshotStore* store, const Clock* clock)
      : fleet_(fleet), store_(store), clock_(clock) {}

  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* context,
                                      const v1::ListNodesRequest* request,
                                      v1::ListNodesResponse* response) override;
  grpc::ServerUnaryReactor* ListPools(grpc::CallbackServerContext* context,
                                      const v1::ListPoolsRequest* request,
                                      v1::ListPoolsResponse* response) override;
  grpc::ServerUnaryReactor* GetPool(grpc::CallbackServerContext* context,
                                    const v1::GetPoolRequest* request, v1::Pool* response) override;

 private:
  const FleetState* const fleet_;
  const SnapshotStore* const store_;
  const Clock* const clock_;
};

// The admin view of one snapshot.
void FillPool(const Snapshot& snapshot, v1::Pool* pool);

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_ADMIN_SERVICE_H_
