#include "controlplane/xds/ads_service.h"

#include <optional>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "controlplane/service/refused_stream.h"
#include "controlplane/xds/delta_stream.h"
#include "controlplane/xds/sotw_stream.h"
#include "controlplane/xds/wire.h"
#include "grpcpp/support/proto_buffer_reader.h"

namespace switchboard::controlplane::xds {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryRequest;

// One ADS stream, state of the world (Protocol = SotwStream, Request = DiscoveryRequest)
// or delta (DeltaStream, DeltaDiscoveryRequest). At most one write is in flight; when it
// completes, or when the snapshots change, the stream asks its protocol for the next
// response against the newest catalog, so a slow client skips intermediate versions.
// Raw: requests arrive as bytes and are parsed here; responses go out assembled from
// shared resource bytes (wire.h).
template <typename Protocol, typename Request>
class AdsStream final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  AdsStream(AdsService* service, grpc::CallbackServerContext* context, std::unique_ptr<StreamGate::Ticket> ticket)
      : service_(service),
        ticket_(std::move(ticket)),
        peer_(context->peer()),
        client_id_(
            service->clients_ == nullptr
                ? 0
                : service->clients_->Add(std::is_same_v<Protocol, SotwStream> ? "ads-sotw" : "ads-delta", peer_)) {
    service_->metrics_->xds_streams->Increment();
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
      finish_status_ = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "discovery request does not parse");
      PumpLocked();
      return;
    }
    bool first_message = false;
    {
      MutexLock lock(&mu_);
      if (!has_node_) {
        first_message = true;
        has_node_ = true;
        node_id_ = request_.node().id();
        kind_ = ClientKindOf(request_.node());
        user_agent_ = request_.node().user_agent_name();
        if (!request_.node().user_agent_version().empty()) {
          absl::StrAppend(&user_agent_, "/", request_.node().user_agent_version());
        }
        if (client_id_ != 0) service_->clients_->Identify(client_id_, node_id_, user_agent_);
      }
      const RequestKind what = state_.OnRequest(request_);
      Record(what);
      UpdateRegistry(what);
      if (!first_message) PumpLocked();
    }
    if (first_message) {
      // Registered after the first request, so the watcher sees a complete stream.
      watcher_id_ = service_->AddStream([this] {
        MutexLock lock(&mu_);
        PumpLocked();
      });
      MutexLock lock(&mu_);
      PumpLocked();
    }
    StartRead(&request_bytes_);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      finish_requested_ = true;
    } else {
      service_->metrics_->xds_responses_sent->Increment();
    }
    PumpLocked();
  }

  void OnDone() override {
    if (watcher_id_ != 0) service_->RemoveStream(watcher_id_);
    if (client_id_ != 0) service_->clients_->Remove(client_id_);
    service_->metrics_->xds_streams->Decrement();
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

  // What `sbctl clients` shows: the types asked for, the last ACKed version of each, the
  // last NACK.
  void UpdateRegistry(RequestKind what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (client_id_ == 0) return;
    ClientRegistry& clients = *service_->clients_;
    const std::string& type_url = request_.type_url();
    switch (what) {
      case RequestKind::kFirst:
        clients.AddResource(client_id_, type_url);
        break;
      case RequestKind::kAck:
        clients.AddResource(client_id_, type_url);
        clients.Ack(client_id_, type_url, state_.AckedVersion(type_url));
        break;
      case RequestKind::kNack:
        clients.Nack(client_id_, type_url, request_.error_detail().message());
        break;
      case RequestKind::kStale:
      case RequestKind::kUnknownType:
        break;
    }
  }

  void Record(RequestKind what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    switch (what) {
      case RequestKind::kAck:
        service_->metrics_->xds_acks->Increment();
        break;
      case RequestKind::kNack: {
        service_->metrics_->xds_nacks->Increment();
        // The client's words, clipped: a NACK must not fill the log or the history.
        constexpr size_t kMaxMessage = 1024;
        const std::string detail =
            absl::StrCat(request_.type_url().substr(0, 200), " nonce ", request_.response_nonce().substr(0, 64), ": ",
                         request_.error_detail().message().substr(0, kMaxMessage), " (", user_agent_.substr(0, 100),
                         ", ", peer_, ")");
        SB_LOG(WARNING) << "xDS client " << node_id_ << " NACKed " << detail;
        if (service_->history_ != nullptr) {
          service_->history_->RecordEvent({service_->clock_->Now(), "xds_nack", "", node_id_, "", detail});
        }
        break;
      }
      case RequestKind::kUnknownType:
        SB_LOG(INFO) << "xDS client " << node_id_ << " asked for unserved type " << request_.type_url();
        break;
      case RequestKind::kFirst:
      case RequestKind::kStale:
        break;
    }
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (finish_requested_) {
      finished_ = true;
      Finish(finish_status_);
      return;
    }
    if (!has_node_) return;
    auto next = state_.Next(*service_->CurrentCatalog(kind_));
    if (!next) return;
    response_ = ToWire(*next);
    writing_ = true;
    StartWrite(&response_);
  }

  AdsService* const service_;
  const std::unique_ptr<StreamGate::Ticket> ticket_;  // This stream's place under the limits (may be null).
  const std::string peer_;
  const uint64_t client_id_;        // In the service's ClientRegistry; 0 when there is none.
  grpc::ByteBuffer request_bytes_;  // Owned by the single outstanding read.
  Request request_;                 // request_bytes_ parsed; touched only from read callbacks.
  int watcher_id_ = 0;              // Set by the read callback before any write; read in OnDone.

  Mutex mu_;
  bool has_node_ ABSL_GUARDED_BY(mu_) = false;
  std::string node_id_ ABSL_GUARDED_BY(mu_);
  std::string user_agent_ ABSL_GUARDED_BY(mu_);
  ClientKind kind_ ABSL_GUARDED_BY(mu_) = ClientKind::kGrpc;
  Protocol state_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer response_ ABSL_GUARDED_BY(mu_);  // The write in flight.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

AdsService::AdsService(SnapshotStore* store, ControlPlaneMetrics* metrics, HistoryStore* history, const Clock* clock,
                       ConfigSource config, ClientRegistry* clients, PushCoalescing coalescing)
    : store_(store),
      metrics_(metrics),
      history_(history),
      clock_(clock),
      config_(std::move(config)),
      clients_(clients),
      fanout_(coalescing.push_threads) {
  {
    MutexLock lock(&mu_);
    published_ = store_->All();
  }
  coalescer_ = std::make_unique<PushCoalescer>(clock_, coalescing, [this] { Push(); });
  store_watcher_ = store_->AddWatcher([this] { coalescer_->Notify(); });
}

AdsService::~AdsService() {
  store_->RemoveWatcher(store_watcher_);
  coalescer_.reset();  // Joins its thread: no push runs after this.
}

int AdsService::AddStream(std::function<void()> pump) {
  MutexLock lock(&streams_mu_);
  const int id = next_stream_id_++;
  streams_[id] = std::move(pump);
  return id;
}

void AdsService::RemoveStream(int id) {
  MutexLock lock(&streams_mu_);
  streams_.erase(id);
}

void AdsService::Push() {
  std::vector<std::shared_ptr<const Snapshot>> snapshots = store_->All();
  {
    MutexLock lock(&mu_);
    published_ = std::move(snapshots);
    ++published_generation_;
  }
  // Each pump builds its response against the catalog just published (built once, by
  // the first stream of each kind) and starts a write; none waits for the network. The
  // writes start on several threads (gRPC writes on the thread that starts them).
  MutexLock lock(&streams_mu_);
  std::vector<std::function<void()>*> pumps;
  pumps.reserve(streams_.size());
  for (auto& [id, pump] : streams_) pumps.push_back(&pump);
  fanout_.Run(pumps.size(), [&pumps](size_t i) { (*pumps[i])(); });
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* AdsService::StreamAggregatedResources(
    grpc::CallbackServerContext* context) {
  if (grpc::Status s = auth_->Check(*context, Access::kSubscribe); !s.ok()) {
    return new RefusedStream<grpc::ByteBuffer, grpc::ByteBuffer>(s);
  }
  absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> ticket = Admit(*context);
  if (!ticket.ok())
    return new RefusedStream<grpc::ByteBuffer, grpc::ByteBuffer>(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(ticket.status().message())));
  return new AdsStream<SotwStream, DiscoveryRequest>(this, context, std::move(*ticket));
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* AdsService::DeltaAggregatedResources(
    grpc::CallbackServerContext* context) {
  if (grpc::Status s = auth_->Check(*context, Access::kSubscribe); !s.ok()) {
    return new RefusedStream<grpc::ByteBuffer, grpc::ByteBuffer>(s);
  }
  absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> ticket = Admit(*context);
  if (!ticket.ok())
    return new RefusedStream<grpc::ByteBuffer, grpc::ByteBuffer>(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(ticket.status().message())));
  return new AdsStream<DeltaStream, DeltaDiscoveryRequest>(this, context, std::move(*ticket));
}

absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> AdsService::Admit(const grpc::CallbackServerContext& context) {
  if (gate_ == nullptr) return std::unique_ptr<StreamGate::Ticket>();
  return gate_->Admit(context.peer(), StreamKind::kSubscriber);
}

std::shared_ptr<const Catalog> AdsService::CurrentCatalog(ClientKind kind) {
  std::shared_ptr<const policy::FleetConfig> config = config_ ? config_() : nullptr;
  MutexLock lock(&mu_);
  CachedCatalog& cached = kind == ClientKind::kEnvoy ? envoy_catalog_ : grpc_catalog_;
  // Every stream asks at every push: checking the generation first keeps that cheap.
  if (cached.catalog != nullptr && cached.generation == published_generation_ && cached.config == config) {
    return cached.catalog;
  }
  const std::vector<std::shared_ptr<const Snapshot>>& snapshots = published_;
  std::vector<std::pair<std::string, std::string>> versions;
  versions.reserve(snapshots.size());
  for (const auto& snap : snapshots) versions.emplace_back(snap->pool, snap->version);
  cached.generation = published_generation_;
  if (cached.catalog == nullptr || cached.versions != versions || cached.config != config) {
    if (cached.config != config) cached.pools.clear();  // Every pool's settings may differ.
    cached.catalog = BuildCatalog(snapshots, kind, config.get(), &cached.pools);
    cached.versions = std::move(versions);
    cached.config = std::move(config);
  }
  return cached.catalog;
}

}  // namespace switchboard::controlplane::xds
