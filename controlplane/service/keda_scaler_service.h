// KEDA's external scaler (externalscaler.ExternalScaler) on the control plane's gRPC
// port: a ScaledObject trigger of type `external` or `external-push` with metadata
// `pool: NAME` makes KEDA and its HPA follow the pool's desired replicas. The arithmetic
// is policy::KedaAnswerFor; this class finds the pool and adapts.
//
// Answers:
//   - no `pool` in the trigger metadata: INVALID_ARGUMENT;
//   - a pool neither published nor named in the configuration: NOT_FOUND (listing the
//     known pools); a configured pool with no endpoints yet answers its min_replicas;
//   - an advisory pool (`advisory: true` in its configuration): FAILED_PRECONDITION on
//     the unary calls, and the streams stay open without a value, so neither KEDA nor
//     the HPA acts; its decisions are still published everywhere else.
// Callers: KEDA's gRPC client can present only a TLS client certificate (the
// TriggerAuthentication parameters caCert, tlsClientCert, tlsClientKey), never a header,
// so every call is authorized as a subscriber's (Access::kSubscribe: --subscriber-auth);
// what it reads, a pool's desired replicas, every subscriber reads in its assignments.
// StreamIsActive pushes an answer at once and on every change of the pool's desired
// replicas (each one makes KEDA check the scaler, and so the HPA's metric, at once);
// StreamMetricSpec pushes the spec at once (it never changes).
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_KEDA_SCALER_SERVICE_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_KEDA_SCALER_SERVICE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "controlplane/metrics.h"
#include "controlplane/policy/keda.h"
#include "controlplane/policy/pool_policy.h"
#include "controlplane/service/authorizer.h"
#include "controlplane/snapshot/snapshot_store.h"
#include "keda/externalscaler.grpc.pb.h"

namespace switchboard::controlplane {

class KedaScalerService final : public externalscaler::ExternalScaler::CallbackService {
 public:
  using ConfigSource = std::function<std::shared_ptr<const policy::FleetConfig>()>;

  // Pointers must outlive the service; `metrics` may be null.
  KedaScalerService(SnapshotStore* store, ConfigSource config, ControlPlaneMetrics* metrics)
      : store_(store), config_(std::move(config)), metrics_(metrics) {}

  // Must outlive the service; default: Authorizer::AllowAll().
  void set_authorizer(const Authorizer* auth) { auth_ = auth; }

  // The answer for the trigger `ref` now (see above for the errors).
  absl::StatusOr<policy::KedaAnswer> Answer(const externalscaler::ScaledObjectRef& ref) const;

  grpc::ServerUnaryReactor* IsActive(grpc::CallbackServerContext* context,
                                     const externalscaler::ScaledObjectRef* request,
                                     externalscaler::IsActiveResponse* response) override;
  grpc::ServerWriteReactor<externalscaler::IsActiveResponse>* StreamIsActive(
      grpc::CallbackServerContext* context, const externalscaler::ScaledObjectRef* request) override;
  grpc::ServerUnaryReactor* GetMetricSpec(grpc::CallbackServerContext* context,
                                          const externalscaler::ScaledObjectRef* request,
                                          externalscaler::GetMetricSpecResponse* response) override;
  grpc::ServerUnaryReactor* GetMetrics(grpc::CallbackServerContext* context,
                                       const externalscaler::GetMetricsRequest* request,
                                       externalscaler::GetMetricsResponse* response) override;
  grpc::ServerWriteReactor<externalscaler::GetMetricSpecResponse>* StreamMetricSpec(
      grpc::CallbackServerContext* context, const externalscaler::ScaledObjectRef* request) override;

 private:
  template <typename Response>
  friend class KedaStream;
  SnapshotStore* const store_;
  const ConfigSource config_;
  ControlPlaneMetrics* const metrics_;
  const Authorizer* auth_ = Authorizer::AllowAll();
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_KEDA_SCALER_SERVICE_H_
