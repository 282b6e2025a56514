// AdminService (sbctl): turns requests into FleetState / SnapshotStore reads and
// FleetOperations calls, and their answers into responses. The rules are in
// FleetOperations; this class only adapts.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_ADMIN_SERVICE_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_ADMIN_SERVICE_H_

#include "common/clock.h"
#include "controlplane/fleet/client_registry.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/fleet/recent_picks.h"
#include "controlplane/operations.h"
#include "controlplane/ratelimit/limiter.h"
#include "controlplane/service/authorizer.h"
#include "controlplane/service/work_thread.h"
#include "controlplane/snapshot/snapshot_store.h"
#include "switchboard/v1/admin.grpc.pb.h"

namespace switchboard::controlplane {

class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  // Pointers must outlive the service; `clients` may be null (ListClients answers none).
  // Events and History read SQLite on `reads` (never on a reactor); without it they are
  // refused (UNAVAILABLE).
  AdminServiceImpl(const FleetState* fleet, const SnapshotStore* store, FleetOperations* ops, const Clock* clock,
                   const ClientRegistry* clients = nullptr, WorkThread* reads = nullptr)
      : fleet_(fleet), store_(store), ops_(ops), clock_(clock), clients_(clients), reads_(reads) {}

  // Who may call what (default: everyone). `auth` must outlive the service.
  void set_authorizer(const Authorizer* auth) { auth_ = auth; }
  // The global rate limits ListRateLimits shows (null: none). Must outlive the service.
  void set_rate_limiter(const ratelimit::RateLimiter* limiter) { rate_limiter_ = limiter; }
  // The pickers' last picks, for Explain (default: none). Must outlive the service.
  void set_recent_picks(const RecentPicks* picks) { recent_picks_ = picks; }

  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* context, const v1::ListNodesRequest* request,
                                      v1::ListNodesResponse* response) override;
  grpc::ServerUnaryReactor* ListPools(grpc::CallbackServerContext* context, const v1::ListPoolsRequest* request,
                                      v1::ListPoolsResponse* response) override;
  grpc::ServerUnaryReactor* GetPool(grpc::CallbackServerContext* context, const v1::GetPoolRequest* request,
                                    v1::Pool* response) override;
  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* context, const v1::DrainRequest* request,
                                  v1::DrainResponse* response) override;
  grpc::ServerUnaryReactor* Undrain(grpc::CallbackServerContext* context, const v1::DrainRequest* request,
                                    v1::DrainResponse* response) override;
  grpc::ServerUnaryReactor* Explain(grpc::CallbackServerContext* context, const v1::ExplainRequest* request,
                                    v1::ExplainResponse* response) override;
  grpc::ServerUnaryReactor* SetReplicas(grpc::CallbackServerContext* context, const v1::SetReplicasRequest* request,
                                        v1::SetReplicasResponse* response) override;
  grpc::ServerUnaryReactor* Events(grpc::CallbackServerContext* context, const v1::EventsRequest* request,
                                   v1::EventsResponse* response) override;
  grpc::ServerUnaryReactor* ListClients(grpc::CallbackServerContext* context, const v1::ListClientsRequest* request,
                                        v1::ListClientsResponse* response) override;
  grpc::ServerUnaryReactor* History(grpc::CallbackServerContext* context, const v1::HistoryRequest* request,
                                    v1::HistoryResponse* response) override;
  // In admin_rate_limits.cc.
  grpc::ServerUnaryReactor* ListRateLimits(grpc::CallbackServerContext* context,
                                           const v1::ListRateLimitsRequest* request,
                                           v1::ListRateLimitsResponse* response) override;

 private:
  grpc::Status SetDrain(const v1::DrainRequest& request, bool drain, const std::string& caller,
                        v1::DrainResponse* response);
  // Finishes `reactor` with the refusal and returns false when the caller may not.
  bool Allowed(grpc::CallbackServerContext* context, Access access, grpc::ServerUnaryReactor* reactor,
               Caller* caller = nullptr) const;
  // Finishes `reactor` OK once the operator's change is on disk (UNAVAILABLE if saving it
  // failed).
  void FinishWhenDurable(grpc::ServerUnaryReactor* reactor);
  // Runs `read` on the read executor and finishes `reactor` with its status there;
  // RESOURCE_EXHAUSTED at once when the executor's queue is full.
  void FinishAfterRead(grpc::ServerUnaryReactor* reactor, std::function<grpc::Status()> read);

  const FleetState* const fleet_;
  const SnapshotStore* const store_;
  FleetOperations* const ops_;
  const Clock* const clock_;
  const ClientRegistry* const clients_;
  WorkThread* const reads_;
  const Authorizer* auth_ = Authorizer::AllowAll();
  const ratelimit::RateLimiter* rate_limiter_ = nullptr;
  const RecentPicks* recent_picks_ = nullptr;
};

// The admin view of one snapshot.
void FillPool(const Snapshot& snapshot, v1::Pool* pool);

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_ADMIN_SERVICE_H_
