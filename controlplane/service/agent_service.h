// AgentService: a thin adapter from the Connect stream onto FleetState.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_AGENT_SERVICE_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_AGENT_SERVICE_H_

#include <atomic>

#include "common/clock.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/metrics.h"
#include "switchboard/v1/agent.grpc.pb.h"

namespace switchboard::controlplane {

class AgentServiceImpl final : public v1::AgentService::CallbackService {
 public:
  AgentServiceImpl(FleetState* fleet, const Clock* clock, ControlPlaneMetrics* metrics)
      : fleet_(fleet), clock_(clock), metrics_(metrics) {}

  grpc::ServerBidiReactor<v1::AgentMessage, v1::ControlMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  friend class AgentStream;
  FleetState* const fleet_;
  const Clock* const clock_;
  ControlPlaneMetrics* const metrics_;
  std::atomic<uint64_t> next_stream_id_{1};
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_AGENT_SERVICE_H_
