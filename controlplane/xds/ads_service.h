// AggregatedDiscoveryService: xDS v3 ADS for Envoy and proxyless gRPC clients, served on
// the control plane's gRPC port from the SnapshotStore. Each stream's protocol is a
// SotwStream; this is the gRPC plumbing and the shared catalog of resources.
#ifndef SWITCHBOARD_CONTROLPLANE_XDS_ADS_SERVICE_H_
#define SWITCHBOARD_CONTROLPLANE_XDS_ADS_SERVICE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "controlplane/fleet/client_registry.h"
#include "controlplane/history/history_store.h"
#include "controlplane/metrics.h"
#include "controlplane/service/authorizer.h"
#include "controlplane/service/limits.h"
#include "controlplane/snapshot/snapshot_store.h"
#include "controlplane/xds/push_coalescer.h"
#include "controlplane/xds/push_fanout.h"
#include "controlplane/xds/resources.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"

namespace switchboard::controlplane::xds {

// Both methods are served raw (grpc::ByteBuffer both ways): requests are parsed here,
// and responses are assembled from resources encoded once and shared (wire.h), so a
// push serializes and copies nothing per subscriber but its nonce and version.
class AdsService final
    : public envoy::service::discovery::v3::AggregatedDiscoveryService::WithRawCallbackMethod_StreamAggregatedResources<
          envoy::service::discovery::v3::AggregatedDiscoveryService::WithRawCallbackMethod_DeltaAggregatedResources<
              envoy::service::discovery::v3::AggregatedDiscoveryService::Service>> {
 public:
  // The running pool configuration (reloaded on SIGHUP); may return null.
  using ConfigSource = std::function<std::shared_ptr<const policy::FleetConfig>()>;

  // `history` may be null (no NACK events recorded); `config` may be empty; `clients` may
  // be null (streams are then not listed). Changes of the store reach the streams
  // coalesced per `coalescing`.
  AdsService(SnapshotStore* store, ControlPlaneMetrics* metrics, HistoryStore* history, const Clock* clock,
             ConfigSource config = nullptr, ClientRegistry* clients = nullptr, PushCoalescing coalescing = {});
  ~AdsService() override;

  // Who may subscribe (default: everyone). `auth` must outlive the service.
  void set_authorizer(const Authorizer* auth) { auth_ = auth; }
  // Streams per peer and subscribers in all (default: unlimited). Must outlive the service.
  void set_stream_gate(StreamGate* gate) { gate_ = gate; }

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StreamAggregatedResources(
      grpc::CallbackServerContext* context) override;

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* DeltaAggregatedResources(
      grpc::CallbackServerContext* context) override;

  // The resources for clients of `kind` as of the last push (the store's snapshots when
  // the coalescer last pushed). Built once per change and shared by every stream.
  std::shared_ptr<const Catalog> CurrentCatalog(ClientKind kind);

  // Pushes made so far (each one offered to every stream).
  int64_t pushes() const { return coalescer_->pushes(); }

 private:
  template <typename Protocol, typename Request>
  friend class AdsStream;

  // Streams register a pump, run on every push. RemoveStream returns only when that
  // pump is not running.
  int AddStream(std::function<void()> pump);
  void RemoveStream(int id);
  // Takes the store's snapshots as the ones served and pumps every stream.
  void Push();

  // A place for one more stream under the limits (null ticket without a gate).
  absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> Admit(const grpc::CallbackServerContext& context);

  struct CachedCatalog {
    // What it was built from: (pool, version) of every snapshot. A refresh of a snapshot's
    // admin details keeps its version and does not rebuild the catalog.
    std::vector<std::pair<std::string, std::string>> versions;
    std::shared_ptr<const policy::FleetConfig> config;  // And with this configuration.
    int64_t generation = -1;                            // published_generation_ when checked.
    std::shared_ptr<const Catalog> catalog;
    std::map<std::string, PoolResources> pools;  // Each pool's resources, reused while unchanged.
  };

  SnapshotStore* const store_;
  ControlPlaneMetrics* const metrics_;
  HistoryStore* const history_;
  const Clock* const clock_;
  const ConfigSource config_;
  ClientRegistry* const clients_;
  const Authorizer* auth_ = Authorizer::AllowAll();
  StreamGate* gate_ = nullptr;

  Mutex mu_;
  std::vector<std::shared_ptr<const Snapshot>> published_ ABSL_GUARDED_BY(mu_);
  int64_t published_generation_ ABSL_GUARDED_BY(mu_) = 0;  // Counts the pushes that changed published_.
  CachedCatalog grpc_catalog_ ABSL_GUARDED_BY(mu_);
  CachedCatalog envoy_catalog_ ABSL_GUARDED_BY(mu_);

  Mutex streams_mu_;  // Held while pumping; never taken under mu_.
  std::map<int, std::function<void()>> streams_ ABSL_GUARDED_BY(streams_mu_);
  int next_stream_id_ ABSL_GUARDED_BY(streams_mu_) = 1;

  PushFanOut fanout_;  // Runs the streams' pumps of a push; used by the coalescer's thread only.
  std::unique_ptr<PushCoalescer> coalescer_;
  int store_watcher_ = 0;
};

}  // namespace switchboard::controlplane::xds

#endif  // SWITCHBOARD_CONTROLPLANE_XDS_ADS_SERVICE_H_
