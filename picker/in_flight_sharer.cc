#include "picker/in_flight_sharer.h"

#include <algorithm>

#include "common/log.h"
#include "switchboard/v1/discovery.grpc.pb.h"

namespace switchboard::picker {

InFlightSharer::InFlightSharer(PoolTable* table, PickerMetrics* metrics, ChannelFactory channel,
                               std::string subscriber_id, absl::Duration interval)
    : table_(table),
      metrics_(metrics),
      channel_(std::move(channel)),
      subscriber_id_(std::move(subscriber_id)),
      interval_(interval) {}

void InFlightSharer::Stop() {
  MutexLock lock(&mu_);
  stopped_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

uint64_t InFlightSharer::answers() const {
  MutexLock lock(&mu_);
  return answers_;
}

bool InFlightSharer::Wait(absl::Duration d) {
  MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(Condition(&stopped_), d);
  return !stopped_;
}

void InFlightSharer::Run() {
  absl::Duration backoff = absl::Milliseconds(200);
  bool warned = false;
  while (true) {
    const bool answered = Stream(channel_());
    table_->PeersLost();
    if (metrics_ != nullptr) {
      metrics_->share_peers->Set(0);
      metrics_->peer_requests_in_flight->Set(0);
    }
    if (answered) backoff = absl::Milliseconds(200), warned = false;
    if (!Wait(backoff)) return;
    if (!warned) {
      SB_LOG(WARNING) << "in-flight sharing with the control plane interrupted: picking with --replicas "
                         "scaling until it is back";
      warned = true;
    }
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

bool InFlightSharer::Stream(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::DiscoveryService::NewStub(channel);
  grpc::ClientContext context;
  {
    MutexLock lock(&mu_);
    if (stopped_) return false;
    context_ = &context;
  }
  auto stream = stub->ShareInFlight(&context);
  bool answered = false;
  while (true) {
    v1::InFlightReport report;
    report.set_subscriber_id(subscriber_id_);
    for (const auto& [pool, counts] : table_->InFlight()) {
      v1::PoolInFlight* p = report.add_pools();
      p->set_pool(pool);
      for (const auto& [address, n] : counts) {
        v1::EndpointInFlight* e = p->add_endpoints();
        e->set_address(address);
        e->set_in_flight(n);
      }
    }
    for (v1::PickExplanation& pick : table_->TakePicks()) *report.add_picks() = std::move(pick);
    v1::PeersInFlight answer;
    if (!stream->Write(report) || !stream->Read(&answer)) break;
    table_->SetPeers(answer);
    answered = true;
    if (metrics_ != nullptr) {
      double in_flight = 0;
      for (const v1::PoolInFlight& p : answer.pools()) {
        for (const v1::EndpointInFlight& e : p.endpoints()) in_flight += e.in_flight();
      }
      metrics_->share_peers->Set(answer.peers());
      metrics_->peer_requests_in_flight->Set(in_flight);
    }
    {
      MutexLock lock(&mu_);
      ++answers_;
    }
    if (!Wait(interval_)) break;
  }
  stream->WritesDone();
  const grpc::Status status = stream->Finish();
  if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
    SB_LOG(WARNING) << "in-flight sharing stream ended: " << status.error_message();
  }
  MutexLock lock(&mu_);
  context_ = nullptr;
  return answered;
}

}  // namespace switchboard::picker
