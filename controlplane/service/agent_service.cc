#include "controlplane/service/agent_service.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/mutex.h"
#include "controlplane/service/grpc_status.h"
#include "controlplane/service/refused_stream.h"

namespace switchboard::controlplane {
namespace {

// The host of a gRPC peer ("ipv4:10.0.0.1:41234" -> "ipv4:10.0.0.1"): one key for every
// connection a host opens, whatever its port.
std::string PeerHost(const std::string& peer) {
  const size_t colon = peer.rfind(':');
  return colon == std::string::npos || colon == 0 ? peer : peer.substr(0, colon);
}

}  // namespace

// One agent's Connect stream. Reads one message at a time; acks coalesce (only the
// newest sequence is acked when writes lag). The reactor's callbacks never wait: gRPC
// runs them on its few poller threads, which also read every connection and answer its
// HTTP/2 pings. Each message is decoded on the poller that read it (CPU only, as any
// gRPC server does). A report of a connected node, nearly every message, is then applied
// and acked right there when the fleet's lock is free (FleetState::TryApplyReport):
// the reconciler holds that lock for part of every pass, and a poller waiting on it
// leaves every connection's pings waiting too. Everything else (a Hello, a Goodbye, a
// rejection and its log line, a report that found the lock taken) goes to the stream's
// ingest thread, always the same one for a stream, which then starts the next read. So
// one read is outstanding per stream, its messages stay in order, and flow control still
// pushes back on a flooding agent.
class AgentStream final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  AgentStream(AgentServiceImpl* service, grpc::CallbackServerContext* context,
              std::unique_ptr<StreamGate::Ticket> ticket)
      : service_(service),
        ticket_(std::move(ticket)),
        stream_id_(service->next_stream_id_++),
        peer_(context->peer()),
        caller_(service->auth_->CallerOf(*context)),
        ingest_(service->IngestFor(stream_id_)) {
    service_->metrics_->agent_streams->Increment();
    StartRead(&in_bytes_);
  }

  // A report applied at once starts the next read here. Anything else (or the read's
  // failure) goes to the stream's ingest thread; no read is outstanding until that has
  // handled it, so in_bytes_, in_, parsed_, node_id_ and reports_ are its alone
  // meanwhile. The message holds a reference: a Finish the ingest thread calls lets gRPC
  // run OnDone at once on a poller, and the stream must outlive what the ingest thread
  // still does with it (releasing mu_, at least).
  void OnReadDone(bool ok) override {
    if (ok) {
      parsed_ = Parse();
      if (parsed_.ok() && in_.has_report() && !node_id_.empty()) {
        std::optional<absl::Status> handled = HandleReport(/*wait=*/false);
        if (handled && handled->ok()) {
          StartRead(&in_bytes_);
          return;
        }
        // Refused (answered, and logged, by the ingest thread), or the lock was taken.
        if (handled) parsed_ = std::move(*handled);
      }
    }
    refs_.fetch_add(1, std::memory_order_relaxed);
    ingest_->Post([this, ok] {
      HandleRead(ok);
      Unref();
    });
  }

  // On the ingest thread: one message, then the next read (or the end of the stream).
  void HandleRead(bool ok) {
    if (!ok) {  // The agent closed its side or went away.
      Disconnect();
      FinishWhenIdle(grpc::Status::OK);
      return;
    }
    absl::Status status = std::move(parsed_);
    if (status.ok()) status = Handle();
    if (!status.ok()) {
      service_->metrics_->Rejected(status.code())->Increment();
      if (status.code() == absl::StatusCode::kResourceExhausted && service_->gate_ != nullptr &&
          service_->gate_->metrics() != nullptr) {
        const LimitMetrics* m = service_->gate_->metrics();
        (absl::StrContains(status.message(), "--max-report-rate") ? m->report_rate : m->fleet)->Increment();
      }
      const LogRateLimiter::Verdict log =
          service_->rejected_log_.Admit(PeerHost(peer_), service_->clock_->MonotonicNow());
      if (log.log) {
        SB_LOG(WARNING) << "rejected message from " << peer_ << (node_id_.empty() ? "" : " node=" + node_id_) << ": "
                        << status.message() << LogRateLimiter::Suffix(log);
      }
      Disconnect();
      FinishWhenIdle(ToGrpcStatus(status));
      return;
    }
    if (in_.has_goodbye()) {  // The agent exits cleanly: its node has left (Handle).
      Disconnect();
      FinishWhenIdle(grpc::Status::OK);
      return;
    }
    StartRead(&in_bytes_);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) pending_ack_.reset();  // The stream is going away; a read error follows.
    PumpLocked();
  }

  // Sends `command` after any write in flight. Callable from any thread.
  void QueueCommand(const v1::Command& command) {
    MutexLock lock(&mu_);
    if (finished_ || finish_status_.has_value()) return;
    pending_commands_.push_back(command);
    PumpLocked();
  }

  void OnDone() override {
    Disconnect();
    if (!node_id_.empty()) service_->Unregister(node_id_, this);
    service_->metrics_->agent_streams->Decrement();
    Unref();  // gRPC's reference; a message still on the ingest thread holds another.
  }

 private:
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  absl::Status Parse() {
    in_.Clear();
    if (!grpc::SerializationTraits<v1::AgentMessage>::Deserialize(&in_bytes_, &in_).ok()) {
      return absl::InvalidArgumentError(
          "the message is not a valid AgentMessage (not protobuf, or a string field that is not UTF-8)");
    }
    return absl::OkStatus();
  }

  absl::Status Handle() {
    const absl::Time now = service_->clock_->MonotonicNow();
    if (in_.has_hello()) {
      if (!node_id_.empty()) return absl::InvalidArgumentError("second Hello on one stream");
      if (absl::Status s = CheckIdentity(in_.hello().node_id()); !s.ok()) return s;
      absl::Status s = service_->fleet_->Connect(stream_id_, in_.hello(), now);
      if (!s.ok()) return s;
      node_id_ = in_.hello().node_id();
      service_->Register(node_id_, this, caller_.Describe());
      service_->metrics_->hellos_accepted->Increment();
      SB_LOG(INFO) << "agent connected: node=" << node_id_ << " peer=" << peer_
                   << " endpoints=" << in_.hello().endpoints_size();
      QueueAck(0);
      if (service_->fleet_->DrainRequested(node_id_)) {
        v1::Command drain;
        drain.mutable_drain();
        QueueCommand(drain);  // An operator's drain outlives reconnects.
      }
      return absl::OkStatus();
    }
    if (in_.has_report()) {
      if (node_id_.empty()) return absl::InvalidArgumentError("Report before Hello");
      return *HandleReport(/*wait=*/true);
    }
    if (in_.has_goodbye()) {
      if (node_id_.empty()) return absl::InvalidArgumentError("Goodbye before Hello");
      absl::Status s = service_->fleet_->Leave(stream_id_, node_id_, in_.goodbye().reason());
      if (!s.ok()) return s;
      SB_LOG(INFO) << "agent left: node=" << node_id_ << " (" << in_.goodbye().reason().substr(0, 256) << ")";
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError("empty AgentMessage");
  }

  // The report in in_ of a connected node: within the node's report rate, applied,
  // acked. Without `wait` (on a poller) nullopt, with nothing changed, when the fleet's
  // lock is taken; the change hook then runs later, on an ingest thread.
  std::optional<absl::Status> HandleReport(bool wait) {
    const absl::Time now = service_->clock_->MonotonicNow();
    ReportBucket bucket = reports_;  // Kept only once the report is decided.
    if (service_->gate_ != nullptr) {
      if (absl::Status s = AdmitReport(bucket, now, service_->gate_->limits()); !s.ok()) {
        return absl::ResourceExhaustedError(absl::StrCat("node ", node_id_, ": ", s.message()));
      }
    }
    bool changed = false;
    std::optional<absl::Status> applied =
        wait ? service_->fleet_->ApplyReport(stream_id_, node_id_, in_.report(), now)
             : service_->fleet_->TryApplyReport(stream_id_, node_id_, in_.report(), now, &changed);
    if (!applied) return std::nullopt;
    reports_ = bucket;
    if (!applied->ok()) return applied;
    if (changed) service_->NotifyChangedSoon();
    service_->metrics_->reports_accepted->Increment();
    QueueAck(in_.report().sequence());
    return absl::OkStatus();
  }

  // The caller's certificate must name `node_id` (with --client-ca), and no stream of
  // another identity may own it. A refusal is an event.
  absl::Status CheckIdentity(const std::string& node_id) {
    AuthDecision decision = service_->auth_->CheckAgent(caller_, node_id);
    if (decision.allowed && service_->auth_->agent_certificates_required()) {
      const std::string owner = service_->OwnerIdentity(node_id);
      if (!owner.empty() && owner != caller_.Describe()) {
        decision = {false, absl::StatusCode::kPermissionDenied,
                    absl::StrCat("node ", node_id, " is connected from another identity (", owner, ")")};
      }
    }
    if (decision.allowed) return absl::OkStatus();
    if (service_->on_refused_) {
      service_->on_refused_(node_id, absl::StrCat(decision.reason, "; peer ", peer_, ", ", caller_.Describe()));
    }
    return absl::Status(decision.code, decision.reason);
  }

  void Disconnect() {
    MutexLock lock(&mu_);
    if (disconnected_ || node_id_.empty()) {
      disconnected_ = true;
      return;
    }
    disconnected_ = true;
    service_->fleet_->Disconnect(stream_id_, node_id_, service_->clock_->MonotonicNow());
    SB_LOG(INFO) << "agent disconnected: node=" << node_id_;
  }

  void QueueAck(uint64_t sequence) {
    MutexLock lock(&mu_);
    pending_ack_ = sequence;
    PumpLocked();
  }

  void FinishWhenIdle(grpc::Status status) {
    MutexLock lock(&mu_);
    pending_ack_.reset();
    finish_status_ = std::move(status);
    PumpLocked();
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (!pending_commands_.empty()) {
      out_.Clear();
      *out_.mutable_command() = std::move(pending_commands_.front());
      pending_commands_.pop_front();
      WriteOutLocked();
      return;
    }
    if (pending_ack_.has_value()) {
      out_.Clear();
      out_.mutable_ack()->set_sequence(*pending_ack_);
      pending_ack_.reset();
      WriteOutLocked();
      return;
    }
    if (finish_status_.has_value()) {
      finished_ = true;
      Finish(*finish_status_);
    }
  }

  void WriteOutLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    bool own_buffer = false;
    out_bytes_.Clear();
    (void)grpc::SerializationTraits<v1::ControlMessage>::Serialize(out_, &out_bytes_, &own_buffer);
    writing_ = true;
    StartWrite(&out_bytes_);
  }

  AgentServiceImpl* const service_;
  const std::unique_ptr<StreamGate::Ticket> ticket_;  // This stream's place under the limits (may be null).
  const uint64_t stream_id_;
  const std::string peer_;
  const Caller caller_;        // What the TLS handshake proved about the peer.
  grpc::ByteBuffer in_bytes_;  // Owned by the single outstanding read.
  WorkThread* const ingest_;   // Handles this stream's messages, in order.
  v1::AgentMessage in_;        // Parsed from in_bytes_ by the read callback.
  absl::Status parsed_;        // Whether it parsed.
  std::atomic<int> refs_{1};   // gRPC's until OnDone, and one per message posted to ingest_.
  std::string node_id_;        // Set by the Hello; touched only by the message's handler (and OnDone).
  ReportBucket reports_;       // The node's report allowance; touched only by the message's handler.

  Mutex mu_;
  v1::ControlMessage out_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer out_bytes_ ABSL_GUARDED_BY(mu_);  // out_, serialized for the write in flight.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool disconnected_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<uint64_t> pending_ack_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::Command> pending_commands_ ABSL_GUARDED_BY(mu_);  // Few: operator actions.
  std::optional<grpc::Status> finish_status_ ABSL_GUARDED_BY(mu_);
};

AgentServiceImpl::AgentServiceImpl(FleetState* fleet, const Clock* clock, ControlPlaneMetrics* metrics,
                                   int ingest_threads)
    : fleet_(fleet), clock_(clock), metrics_(metrics) {
  for (int i = 0; i < std::max(1, ingest_threads); ++i) ingest_.push_back(std::make_unique<WorkThread>("sb-ingest"));
}

void AgentServiceImpl::NotifyChangedSoon() {
  if (change_posted_.exchange(true, std::memory_order_acq_rel)) return;  // The queued one covers this change.
  ingest_[0]->Post([this] {
    change_posted_.store(false, std::memory_order_release);  // Before the hook: later changes post again.
    fleet_->NotifyChanged();
  });
}

void AgentServiceImpl::Register(const std::string& node_id, AgentStream* stream, const std::string& identity) {
  MutexLock lock(&streams_mu_);
  streams_[node_id] = stream;
  identities_[node_id] = identity;
}

void AgentServiceImpl::Unregister(const std::string& node_id, AgentStream* stream) {
  MutexLock lock(&streams_mu_);
  auto it = streams_.find(node_id);
  if (it != streams_.end() && it->second == stream) {
    streams_.erase(it);
    identities_.erase(node_id);
  }
}

std::string AgentServiceImpl::OwnerIdentity(const std::string& node_id) {
  MutexLock lock(&streams_mu_);
  auto it = identities_.find(node_id);
  return it == identities_.end() ? "" : it->second;
}

bool AgentServiceImpl::SendCommand(const std::string& node_id, const v1::Command& command) {
  // Holding streams_mu_ keeps the stream alive: OnDone unregisters under it first.
  MutexLock lock(&streams_mu_);
  auto it = streams_.find(node_id);
  if (it == streams_.end()) return false;
  it->second->QueueCommand(command);
  return true;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* AgentServiceImpl::Connect(
    grpc::CallbackServerContext* context) {
  std::unique_ptr<StreamGate::Ticket> ticket;
  if (gate_ != nullptr) {
    absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> t = gate_->Admit(context->peer(), StreamKind::kAgent);
    if (!t.ok()) return new RefusedStream<grpc::ByteBuffer, grpc::ByteBuffer>(ToGrpcStatus(t.status()));
    ticket = std::move(*t);
  }
  return new AgentStream(this, context, std::move(ticket));
}

}  // namespace switchboard::controlplane
