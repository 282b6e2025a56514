#include "controlplane/service/discovery_service.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "absl/time/clock.h"
#include "common/log.h"
#include "common/mutex.h"
#include "controlplane/service/grpc_status.h"
#include "controlplane/service/refused_stream.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/support/proto_buffer_reader.h"

namespace switchboard::controlplane {

// One subscriber. Latest-wins: at most one write is in flight; when it completes the
// stream sends the newest snapshot of any subscribed pool whose version it has not
// sent yet, so a slow subscriber skips intermediate versions instead of queueing them.
// The bytes written are the snapshot's assignment serialized once (Snapshot::
// assignment_bytes) and shared by every stream without a copy: the slice written refers
// to them and holds a reference to the snapshot until gRPC releases it. So the method is
// served raw (grpc::ByteBuffer both ways) and requests are parsed here.
class SubscribeStream final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  SubscribeStream(DiscoveryServiceImpl* service, grpc::CallbackServerContext* context,
                  std::unique_ptr<StreamGate::Ticket> ticket)
      : service_(service),
        ticket_(std::move(ticket)),
        peer_(context->peer()),
        client_id_(service->clients_ == nullptr ? 0 : service->clients_->Add("native", peer_)),
        user_agent_(UserAgentOf(*context)) {
    service_->metrics_->subscriber_streams->Increment();
    StartRead(&request_bytes_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      MutexLock lock(&mu_);
      finish_requested_ = true;
      PumpLocked();
      return;
    }
    if (!ParseRequest()) {
      MutexLock lock(&mu_);
      finish_requested_ = true;
      finish_status_ = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "SubscribeRequest does not parse");
      PumpLocked();
      return;
    }
    const bool first = !subscribed_;
    if (first) {
      subscribed_ = true;
      MutexLock lock(&mu_);
      subscriber_id_ = request_.subscriber_id();
      all_pools_ = request_.pools().empty();
      pools_.insert(request_.pools().begin(), request_.pools().end());
      if (client_id_ != 0) {
        ClientRegistry& clients = *service_->clients_;
        clients.Identify(client_id_, subscriber_id_, user_agent_);
        if (all_pools_) clients.AddResource(client_id_, "*");
        for (const std::string& pool : pools_) clients.AddResource(client_id_, pool);
      }
    }
    if (request_.outcomes_size() > 0) AddOutcomes();
    if (first) {
      watcher_id_ = service_->store_->AddWatcher([this] {
        MutexLock lock(&mu_);
        PumpLocked();
      });
      MutexLock lock(&mu_);
      PumpLocked();
    } else if (request_.has_error_detail() && request_.error_detail().code() != 0) {
      service_->metrics_->subscriber_nacks->Increment();
      SB_LOG(WARNING) << "subscriber " << request_.subscriber_id() << " (" << peer_ << ") NACKed nonce "
                      << request_.response_nonce() << ": " << request_.error_detail().message();
      if (client_id_ != 0) service_->clients_->Nack(client_id_, PoolOfNonce(), request_.error_detail().message());
    } else if (request_.outcomes_size() == 0 || !request_.response_nonce().empty()) {
      service_->metrics_->subscriber_acks->Increment();  // Outcomes alone are no ACK.
      if (client_id_ != 0 && !request_.response_nonce().empty()) {
        const std::string pool = PoolOfNonce();
        if (!pool.empty()) service_->clients_->Ack(client_id_, pool, request_.version_info());
      }
    }
    StartRead(&request_bytes_);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&mu_);
    if (!ok) {
      finish_requested_ = true;
    } else {
      service_->metrics_->assignments_sent->Increment();
      if (in_flight_ && !in_flight_->assignment.stale()) {
        // From the publication, or from the subscription for a snapshot older than it.
        const absl::Time published =
            std::max(started_, absl::FromUnixNanos(google::protobuf::util::TimeUtil::TimestampToNanoseconds(
                                   in_flight_->assignment.generated_at())));
        service_->metrics_->push_latency->Observe(
            absl::ToDoubleSeconds(std::max(absl::Now() - published, absl::ZeroDuration())));
      }
    }
    in_flight_.reset();
    PumpLocked();
  }

  void OnDone() override {
    if (watcher_id_ != 0) service_->store_->RemoveWatcher(watcher_id_);
    if (client_id_ != 0) service_->clients_->Remove(client_id_);
    service_->metrics_->subscriber_streams->Decrement();
    delete this;
  }

 private:
  bool ParseRequest() {
    request_.Clear();
    grpc::ProtoBufferReader reader(&request_bytes_);
    const bool parsed = request_.ParseFromZeroCopyStream(&reader);
    request_bytes_.Clear();
    return parsed;
  }

  // The snapshot's serialized assignment as one slice that keeps the snapshot alive.
  static grpc::ByteBuffer WireOf(const std::shared_ptr<const Snapshot>& snap) {
    const std::string& bytes = snap->assignment_bytes.Get(snap->assignment);
    auto* owner = new std::shared_ptr<const Snapshot>(snap);
    grpc::Slice slice(
        const_cast<char*>(bytes.data()), bytes.size(),
        [](void* p) { delete static_cast<std::shared_ptr<const Snapshot>*>(p); }, owner);
    return grpc::ByteBuffer(&slice, 1);
  }

  static std::string UserAgentOf(const grpc::CallbackServerContext& context) {
    auto it = context.client_metadata().find("user-agent");
    if (it == context.client_metadata().end() || it->second.empty()) return "native";
    return std::string(it->second.data(), it->second.size());
  }

  // The pool of the Assignment a reply answers: its nonce is the version sent ("" when it
  // answers none this stream sent).
  std::string PoolOfNonce() {
    MutexLock lock(&mu_);
    auto it = nonce_pools_.find(request_.response_nonce());
    return it == nonce_pools_.end() ? "" : it->second;
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (in_flight_ || finished_) return;
    if (finish_requested_) {
      finished_ = true;
      Finish(finish_status_);
      return;
    }
    for (const std::shared_ptr<const Snapshot>& snap : service_->store_->All()) {
      if (!all_pools_ && pools_.count(snap->pool) == 0) continue;
      // The same version served stale after a restart and then live again is sent
      // again: the subscriber learns that it is no longer stale.
      const std::string sent_key = snap->assignment.stale() ? snap->version + " stale" : snap->version;
      auto sent = sent_versions_.find(snap->pool);
      if (sent != sent_versions_.end() && sent->second == sent_key) continue;
      sent_versions_[snap->pool] = sent_key;
      if (client_id_ != 0) {
        // Remembers the last nonce sent for each pool, so a reply can be matched to it.
        auto& previous = last_nonce_of_pool_[snap->pool];
        if (!previous.empty()) nonce_pools_.erase(previous);
        previous = snap->assignment.nonce();
        nonce_pools_[previous] = snap->pool;
      }
      in_flight_ = snap;
      out_ = WireOf(snap);
      StartWrite(&out_);
      return;
    }
  }

  // Gateway outcomes are evidence, not the stream's business: a bad batch is counted and
  // logged, and the stream carries on.
  void AddOutcomes() {
    if (service_->fleet_ == nullptr) return;
    ControlPlaneMetrics& m = *service_->metrics_;
    const size_t n = static_cast<size_t>(request_.outcomes_size());
    absl::StatusOr<size_t> added = service_->fleet_->AddGatewayOutcomes(request_.outcomes());
    if (!added.ok()) {
      m.gateway_outcomes_rejected->Increment(static_cast<double>(n));
      if (!outcomes_error_logged_) {  // Once per stream: the metric counts the rest.
        outcomes_error_logged_ = true;
        MutexLock lock(&mu_);
        SB_LOG(WARNING) << "subscriber " << subscriber_id_ << " (" << peer_
                        << ") reported invalid outcomes (ignored; logged once per stream): "
                        << added.status().message();
      }
      return;
    }
    m.gateway_outcomes_added->Increment(static_cast<double>(*added));
    m.gateway_outcomes_unknown->Increment(static_cast<double>(n - *added));
  }

  DiscoveryServiceImpl* const service_;
  const std::unique_ptr<StreamGate::Ticket> ticket_;  // This stream's place under the limits (may be null).
  const std::string peer_;
  const uint64_t client_id_;  // In the service's ClientRegistry; 0 when there is none.
  const std::string user_agent_;
  const absl::Time started_ = absl::Now();  // Wall time, as snapshots' generated_at.
  grpc::ByteBuffer request_bytes_;          // Owned by the single outstanding read.
  v1::SubscribeRequest request_;            // request_bytes_ parsed; touched only from read callbacks.
  bool subscribed_ = false;                 // Touched only from read callbacks.
  bool outcomes_error_logged_ = false;      // Likewise.
  int watcher_id_ = 0;                      // Set before the first write; read in OnDone.

  Mutex mu_;
  std::string subscriber_id_ ABSL_GUARDED_BY(mu_);
  bool all_pools_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::string> pools_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> sent_versions_ ABSL_GUARDED_BY(mu_);  // Version, + " stale" if it was.
  std::shared_ptr<const Snapshot> in_flight_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer out_ ABSL_GUARDED_BY(mu_);                                   // in_flight_'s bytes, while written.
  std::map<std::string, std::string> nonce_pools_ ABSL_GUARDED_BY(mu_);         // Nonce -> pool.
  std::map<std::string, std::string> last_nonce_of_pool_ ABSL_GUARDED_BY(mu_);  // Pool -> nonce.
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* DiscoveryServiceImpl::Subscribe(
    grpc::CallbackServerContext* context) {
  if (grpc::Status s = auth_->Check(*context, Access::kSubscribe); !s.ok()) {
    return new RefusedStream<grpc::ByteBuffer, grpc::ByteBuffer>(s);
  }
  std::unique_ptr<StreamGate::Ticket> ticket;
  if (gate_ != nullptr) {
    absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> t = gate_->Admit(context->peer(), StreamKind::kSubscriber);
    if (!t.ok()) return new RefusedStream<grpc::ByteBuffer, grpc::ByteBuffer>(ToGrpcStatus(t.status()));
    ticket = std::move(*t);
  }
  return new SubscribeStream(this, context, std::move(ticket));
}

}  // namespace switchboard::controlplane
