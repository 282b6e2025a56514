#include "controlplane/service/keda_scaler_service.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/mutex.h"
#include "controlplane/service/grpc_status.h"
#include "controlplane/service/refused_stream.h"

namespace switchboard::controlplane {
namespace {

using externalscaler::GetMetricSpecResponse;
using externalscaler::IsActiveResponse;
using externalscaler::ScaledObjectRef;

constexpr size_t kMaxNameBytes = 253;  // A Kubernetes object name's limit.

void FillSpec(const policy::KedaAnswer& answer, GetMetricSpecResponse* response) {
  externalscaler::MetricSpec* spec = response->add_metricspecs();
  spec->set_metricname(policy::kKedaMetricName);
  spec->set_targetsizefloat(answer.target);
  spec->set_targetsize(static_cast<int64_t>(answer.target));
}

}  // namespace

absl::StatusOr<policy::KedaAnswer> KedaScalerService::Answer(const ScaledObjectRef& ref) const {
  auto it = ref.scalermetadata().find("pool");
  if (it == ref.scalermetadata().end() || it->second.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ScaledObject '", ref.namespace_(), "/", ref.name(),
                     "': the trigger's metadata needs `pool: NAME` (the Switchboard pool it follows)"));
  }
  const std::string& pool = it->second;
  if (pool.size() > kMaxNameBytes) return absl::InvalidArgumentError("pool name longer than 253 bytes");
  const std::shared_ptr<const policy::FleetConfig> config = config_();
  const policy::PoolPolicy& pp = config->For(pool);
  std::optional<int32_t> min_replicas;
  if (pp.autoscale.has_value()) min_replicas = pp.autoscale->min_replicas;
  int32_t desired = 0;
  if (std::shared_ptr<const Snapshot> snap = store_->Get(pool)) {
    desired = static_cast<int32_t>(snap->assignment.desired_replicas());
  } else if (config->pools.count(pool) > 0) {
    desired = min_replicas.value_or(0);  // Configured, no endpoint yet.
  } else {
    std::vector<std::string> known;
    for (const auto& s : store_->All()) known.push_back(s->pool);
    for (const auto& [name, unused] : config->pools) {
      if (store_->Get(name) == nullptr) known.push_back(name);
    }
    return absl::NotFoundError(absl::StrCat("no pool named '", pool, "' (neither reported nor configured); known: ",
                                            known.empty() ? "(none yet)" : absl::StrJoin(known, ", ")));
  }
  if (pp.advisory) {
    return absl::FailedPreconditionError(absl::StrCat("pool '", pool, "' is advisory (advisory: true): ", desired,
                                                      " replicas recommended, Switchboard does not act"));
  }
  return policy::KedaAnswerFor(desired, min_replicas);
}

// A pushed stream: sends `Make`'s response at once and again whenever its key changes
// (checked on every snapshot publication). Latest-wins: at most one write in flight; a
// change during it is sent when it completes. An error at the start ends the stream
// with it; later, an error (e.g. the pool became advisory) sends nothing.
template <typename Response>
class KedaStream final : public grpc::ServerWriteReactor<Response> {
 public:
  // Fills the response and the key that identifies its content.
  using Make = std::function<void(const policy::KedaAnswer&, Response*, std::string* key)>;

  KedaStream(KedaScalerService* service, const ScaledObjectRef& ref, Make make)
      : service_(service), ref_(ref), make_(std::move(make)) {
    if (service_->metrics_ != nullptr) service_->metrics_->keda_streams->Increment();
    absl::StatusOr<policy::KedaAnswer> first = service_->Answer(ref_);
    if (!first.ok() && first.status().code() != absl::StatusCode::kFailedPrecondition) {
      MutexLock lock(&mu_);
      finished_ = true;
      this->Finish(ToGrpcStatus(first.status()));
      return;
    }
    watcher_id_ = service_->store_->AddWatcher([this] {
      MutexLock lock(&mu_);
      PumpLocked();
    });
    MutexLock lock(&mu_);
    PumpLocked();
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&mu_);
    in_flight_ = false;
    if (!ok) finish_requested_ = true;
    PumpLocked();
  }

  void OnCancel() override {
    MutexLock lock(&mu_);
    finish_requested_ = true;
    PumpLocked();
  }

  void OnDone() override {
    if (watcher_id_ != 0) service_->store_->RemoveWatcher(watcher_id_);
    if (service_->metrics_ != nullptr) service_->metrics_->keda_streams->Decrement();
    delete this;
  }

 private:
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (in_flight_ || finished_) return;
    if (finish_requested_) {
      finished_ = true;
      this->Finish(grpc::Status::OK);
      return;
    }
    absl::StatusOr<policy::KedaAnswer> answer = service_->Answer(ref_);
    if (!answer.ok()) return;
    Response next;
    std::string key;
    make_(*answer, &next, &key);
    if (sent_any_ && key == sent_key_) return;
    sent_any_ = true;
    sent_key_ = std::move(key);
    response_ = std::move(next);
    in_flight_ = true;
    this->StartWrite(&response_);
  }

  KedaScalerService* const service_;
  const ScaledObjectRef ref_;
  const Make make_;
  int watcher_id_ = 0;  // Set in the constructor; read in OnDone.

  Mutex mu_;
  Response response_ ABSL_GUARDED_BY(mu_);  // Owned by the write in flight.
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool sent_any_ ABSL_GUARDED_BY(mu_) = false;
  std::string sent_key_ ABSL_GUARDED_BY(mu_);
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::ServerUnaryReactor* KedaScalerService::IsActive(grpc::CallbackServerContext* context,
                                                      const ScaledObjectRef* request, IsActiveResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status refused = auth_->Check(*context, Access::kSubscribe); !refused.ok()) {
    reactor->Finish(refused);
    return reactor;
  }
  absl::StatusOr<policy::KedaAnswer> answer = Answer(*request);
  if (answer.ok()) response->set_result(answer->active);
  reactor->Finish(ToGrpcStatus(answer.status()));
  return reactor;
}

grpc::ServerUnaryReactor* KedaScalerService::GetMetricSpec(grpc::CallbackServerContext* context,
                                                           const ScaledObjectRef* request,
                                                           GetMetricSpecResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status refused = auth_->Check(*context, Access::kSubscribe); !refused.ok()) {
    reactor->Finish(refused);
    return reactor;
  }
  absl::StatusOr<policy::KedaAnswer> answer = Answer(*request);
  if (answer.ok()) FillSpec(*answer, response);
  reactor->Finish(ToGrpcStatus(answer.status()));
  return reactor;
}

grpc::ServerUnaryReactor* KedaScalerService::GetMetrics(grpc::CallbackServerContext* context,
                                                        const externalscaler::GetMetricsRequest* request,
                                                        externalscaler::GetMetricsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status refused = auth_->Check(*context, Access::kSubscribe); !refused.ok()) {
    reactor->Finish(refused);
    return reactor;
  }
  if (!request->metricname().empty() && request->metricname() != policy::kKedaMetricName) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 absl::StrCat("unknown metric '", request->metricname(), "'; this scaler serves '",
                                              policy::kKedaMetricName, "'")));
    return reactor;
  }
  absl::StatusOr<policy::KedaAnswer> answer = Answer(request->scaledobjectref());
  if (answer.ok()) {
    externalscaler::MetricValue* value = response->add_metricvalues();
    value->set_metricname(policy::kKedaMetricName);
    value->set_metricvaluefloat(answer->metric_value);
    value->set_metricvalue(static_cast<int64_t>(answer->metric_value));
  }
  reactor->Finish(ToGrpcStatus(answer.status()));
  return reactor;
}

grpc::ServerWriteReactor<IsActiveResponse>* KedaScalerService::StreamIsActive(grpc::CallbackServerContext* context,
                                                                              const ScaledObjectRef* request) {
  if (grpc::Status refused = auth_->Check(*context, Access::kSubscribe); !refused.ok()) {
    return new RefusedWriteStream<IsActiveResponse>(refused);
  }
  // Keyed on the metric too: every change of desired replicas is pushed.
  return new KedaStream<IsActiveResponse>(this, *request,
                                          [](const policy::KedaAnswer& a, IsActiveResponse* r, std::string* key) {
                                            r->set_result(a.active);
                                            *key = absl::StrCat(a.active, "/", a.metric_value);
                                          });
}

grpc::ServerWriteReactor<GetMetricSpecResponse>* KedaScalerService::StreamMetricSpec(
    grpc::CallbackServerContext* context, const ScaledObjectRef* request) {
  if (grpc::Status refused = auth_->Check(*context, Access::kSubscribe); !refused.ok()) {
    return new RefusedWriteStream<GetMetricSpecResponse>(refused);
  }
  return new KedaStream<GetMetricSpecResponse>(
      this, *request, [](const policy::KedaAnswer& a, GetMetricSpecResponse* r, std::string* key) {
        FillSpec(a, r);
        *key = absl::StrCat(a.target);
      });
}

}  // namespace switchboard::controlplane
