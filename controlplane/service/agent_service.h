// AgentService: a thin adapter from the Connect stream onto FleetState.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_AGENT_SERVICE_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_AGENT_SERVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/log_limiter.h"
#include "common/mutex.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/metrics.h"
#include "controlplane/service/authorizer.h"
#include "controlplane/service/limits.h"
#include "controlplane/service/work_thread.h"
#include "grpcpp/support/byte_buffer.h"
#include "switchboard/v1/agent.grpc.pb.h"

namespace switchboard::controlplane {

class AgentStream;

// Connect is served raw (bytes in, bytes out) so that a message protobuf cannot parse
// (a string field that is not UTF-8, or not protobuf at all) is answered with
// INVALID_ARGUMENT: gRPC's own parsing would end the stream as if the agent had closed it.
class AgentServiceImpl final : public v1::AgentService::WithRawCallbackMethod_Connect<v1::AgentService::Service> {
 public:
  // `ingest_threads` (at least 1) handle the streams' messages, each stream on one.
  AgentServiceImpl(FleetState* fleet, const Clock* clock, ControlPlaneMetrics* metrics, int ingest_threads = 2);

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Connect(grpc::CallbackServerContext* context) override;

  // Called with (node id, reason) when an agent is refused for its identity.
  using RefusalSink = std::function<void(const std::string& node_id, const std::string& reason)>;
  // Whose Hello may claim which node (default: everyone's any), and where refusals go
  // (an event). `auth` must outlive the service. Call before serving.
  void set_authorizer(const Authorizer* auth, RefusalSink on_refused) {
    auth_ = auth;
    on_refused_ = std::move(on_refused);
  }

  // Streams per peer and the report rate (default: unlimited). Must outlive the service.
  void set_stream_gate(StreamGate* gate) { gate_ = gate; }

  // Queues `command` on the node's open stream; false when the node has none.
  bool SendCommand(const std::string& node_id, const v1::Command& command);

 private:
  friend class AgentStream;
  void Register(const std::string& node_id, AgentStream* stream, const std::string& identity);
  // The identity of the stream that owns `node_id`, or "" when none does.
  std::string OwnerIdentity(const std::string& node_id);
  void Unregister(const std::string& node_id, AgentStream* stream);
  WorkThread* IngestFor(uint64_t stream_id) { return ingest_[stream_id % ingest_.size()].get(); }
  // Runs FleetState's change hook for reports applied on a poller: on an ingest thread,
  // once for every burst of them (the hook wakes the reconciler, which takes its lock).
  void NotifyChangedSoon();

  Mutex streams_mu_;
  // Streams that own a node (after an accepted Hello), by node id.
  std::map<std::string, AgentStream*> streams_ ABSL_GUARDED_BY(streams_mu_);
  std::map<std::string, std::string> identities_ ABSL_GUARDED_BY(streams_mu_);  // Node id -> Caller::Describe().
  FleetState* const fleet_;
  const Clock* const clock_;
  ControlPlaneMetrics* const metrics_;
  std::atomic<uint64_t> next_stream_id_{1};
  const Authorizer* auth_ = Authorizer::AllowAll();
  RefusalSink on_refused_;
  StreamGate* gate_ = nullptr;
  // "rejected message" lines: one per peer host per 10 s, with the count held back (a
  // flood of malformed messages is counted by the metric, not logged line by line).
  LogRateLimiter rejected_log_{absl::Seconds(10)};
  std::atomic<bool> change_posted_{false};  // A NotifyChanged is queued and has not started.
  // Handle the streams' messages that a poller must not (all but reports applied at
  // once, see AgentStream); more than one, so that ingest keeps
  // gRPC's own parallelism on a busy machine (a single thread gets one thread's share of
  // the CPU). Last: destroyed (joined) first, while what their work touches is still there.
  std::vector<std::unique_ptr<WorkThread>> ingest_;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_AGENT_SERVICE_H_
