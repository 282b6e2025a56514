// AgentService: a thin adapter from the Connect stream onto FleetState.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_AGENT_SERVICE_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_AGENT_SERVICE_H_

#include <atomic>
#include <map>
#include <string>

#include "common/clock.h"
#include "common/mutex.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/metrics.h"
#include "switchboard/v1/agent.grpc.pb.h"

namespace switchboard::controlplane {

class AgentStream;

class AgentServiceImpl final : public v1::AgentService::CallbackService {
 public:
  AgentServiceImpl(FleetState* fleet, const Clock* clock, ControlPlaneMetrics* metrics)
      : fleet_(fleet), clock_(clock), metrics_(metrics) {}

  grpc::ServerBidiReactor<v1::AgentMessage, v1::ControlMessage>* Connect(grpc::CallbackServerContext* context) override;

  // Queues `command` on the node's open stream; false when the node has none.
  bool SendCommand(const std::string& node_id, const v1::Command& command);

 private:
  friend class AgentStream;
  void Register(const std::string& node_id, AgentStream* stream);
  void Unregister(const std::string& node_id, AgentStream* stream);

  Mutex streams_mu_;
  // Streams that own a node (after an accepted Hello), by node id.
  std::map<std::string, AgentStream*> streams_ ABSL_GUARDED_BY(streams_mu_);
  FleetState* const fleet_;
  const Clock* const clock_;
  ControlPlaneMetrics* const metrics_;
  std::atomic<uint64_t> next_stream_id_{1};
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_AGENT_SERVICE_H_
