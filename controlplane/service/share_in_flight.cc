// DiscoveryService.ShareInFlight: one stream per picker replica. Each report replaces the
// replica's counts on the board and is answered with the other replicas' sums for the
// pools it named; reads and writes alternate (one answer per report), so a replica that
// reports faster than it reads is slowed by flow control rather than queued.
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "controlplane/service/discovery_service.h"
#include "controlplane/service/grpc_status.h"
#include "controlplane/service/refused_stream.h"

namespace switchboard::controlplane {
namespace {

constexpr int kMaxPools = 64;
constexpr int kMaxEndpoints = 4096;
constexpr int kMaxPicks = 16;

// The counts of `report`, or InvalidArgument (what is wrong) for a report past the limits.
absl::StatusOr<client::PoolCounts> CountsOf(const v1::InFlightReport& report) {
  if (report.pools_size() > kMaxPools) {
    return absl::InvalidArgumentError(
        absl::StrCat(report.pools_size(), " pools in one report (limit ", kMaxPools, ")"));
  }
  client::PoolCounts counts;
  for (const v1::PoolInFlight& p : report.pools()) {
    if (p.pool().empty()) return absl::InvalidArgumentError("a pool without a name");
    if (p.endpoints_size() > kMaxEndpoints) {
      return absl::InvalidArgumentError(
          absl::StrCat("pool ", p.pool(), ": ", p.endpoints_size(), " endpoints (limit ", kMaxEndpoints, ")"));
    }
    client::EndpointCounts& pool = counts[p.pool()];
    for (const v1::EndpointInFlight& e : p.endpoints()) {
      if (e.address().empty()) return absl::InvalidArgumentError(absl::StrCat("pool ", p.pool(), ": an empty address"));
      pool[e.address()] += e.in_flight();
    }
  }
  if (report.picks_size() > kMaxPicks) {
    return absl::InvalidArgumentError(
        absl::StrCat(report.picks_size(), " picks in one report (limit ", kMaxPicks, ")"));
  }
  for (const v1::PickExplanation& p : report.picks()) {
    if (p.pool().empty() || p.candidates_size() > kMaxEndpoints) {
      return absl::InvalidArgumentError("a pick without a pool, or with more candidates than a pool has endpoints");
    }
  }
  return counts;
}

}  // namespace

class ShareStream final : public grpc::ServerBidiReactor<v1::InFlightReport, v1::PeersInFlight> {
 public:
  ShareStream(DiscoveryServiceImpl* service, std::unique_ptr<StreamGate::Ticket> ticket, std::string peer)
      : service_(service), ticket_(std::move(ticket)), peer_(std::move(peer)) {
    {
      MutexLock lock(&service_->board_mu_);
      id_ = ++service_->next_share_stream_;
    }
    StartRead(&report_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    absl::StatusOr<client::PoolCounts> counts = CountsOf(report_);
    if (!counts.ok()) {
      SB_LOG(WARNING) << "picker " << report_.subscriber_id() << " (" << peer_
                      << ") sent an invalid in-flight report: " << counts.status().message();
      Finish(ToGrpcStatus(counts.status()));
      return;
    }
    if (service_->recent_picks_ != nullptr) {
      for (v1::PickExplanation& p : *report_.mutable_picks()) {
        p.set_picker(report_.subscriber_id());
        service_->recent_picks_->Add(std::move(p));
      }
    }
    answer_.Clear();
    {
      MutexLock lock(&service_->board_mu_);
      service_->board_.Report(id_, *counts);
      answer_.set_peers(static_cast<uint32_t>(service_->board_.Peers(id_)));
      for (const auto& [pool, unused] : *counts) {
        v1::PoolInFlight* p = answer_.add_pools();
        p->set_pool(pool);
        for (const auto& [address, n] : service_->board_.Others(id_, pool)) {
          v1::EndpointInFlight* e = p->add_endpoints();
          e->set_address(address);
          e->set_in_flight(n);
        }
      }
    }
    StartWrite(&answer_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    StartRead(&report_);
  }

  void OnDone() override {
    {
      MutexLock lock(&service_->board_mu_);
      service_->board_.Remove(id_);
    }
    delete this;
  }

 private:
  DiscoveryServiceImpl* const service_;
  const std::unique_ptr<StreamGate::Ticket> ticket_;  // This stream's place under the limits (may be null).
  const std::string peer_;
  uint64_t id_ = 0;
  v1::InFlightReport report_;  // Owned by the single outstanding read.
  v1::PeersInFlight answer_;   // Owned by the single outstanding write.
};

grpc::ServerBidiReactor<v1::InFlightReport, v1::PeersInFlight>* DiscoveryServiceImpl::ShareInFlight(
    grpc::CallbackServerContext* context) {
  if (grpc::Status s = auth_->Check(*context, Access::kSubscribe); !s.ok()) {
    return new RefusedStream<v1::InFlightReport, v1::PeersInFlight>(s);
  }
  std::unique_ptr<StreamGate::Ticket> ticket;
  if (gate_ != nullptr) {
    absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> t = gate_->Admit(context->peer(), StreamKind::kSubscriber);
    if (!t.ok()) return new RefusedStream<v1::InFlightReport, v1::PeersInFlight>(ToGrpcStatus(t.status()));
    ticket = std::move(*t);
  }
  return new ShareStream(this, std::move(ticket), context->peer());
}

}  // namespace switchboard::controlplane
