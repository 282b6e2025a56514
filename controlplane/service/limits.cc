#include "controlplane/service/limits.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace switchboard::controlplane {

absl::Status DecideStreamAdmission(const StreamCounts& counts, StreamKind kind, const std::string& peer,
                                   const ServiceLimits& limits) {
  if (counts.from_peer >= limits.max_streams_per_peer) {
    return absl::ResourceExhaustedError(absl::StrCat(peer, " already has ", counts.from_peer,
                                                     " open streams, the most one address may keep "
                                                     "(--max-streams-per-peer ",
                                                     limits.max_streams_per_peer, ")"));
  }
  if (kind == StreamKind::kSubscriber && counts.subscribers >= limits.max_subscribers) {
    return absl::ResourceExhaustedError(absl::StrCat("this control plane already serves ", counts.subscribers,
                                                     " subscribers, its most (--max-subscribers ",
                                                     limits.max_subscribers, "); connect to another replica"));
  }
  return absl::OkStatus();
}

absl::Status AdmitReport(ReportBucket& bucket, absl::Time now, const ServiceLimits& limits) {
  const double burst = std::max(1.0, limits.report_burst);
  if (bucket.tokens < 0) {
    bucket.tokens = burst;
  } else if (now > bucket.last) {
    bucket.tokens =
        std::min(burst, bucket.tokens + absl::ToDoubleSeconds(now - bucket.last) * limits.max_reports_per_second);
  }
  bucket.last = std::max(bucket.last, now);
  if (bucket.tokens < 1) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("reports arrive faster than %g per second with bursts of %g (--max-report-rate); "
                        "reconnect and report at the agent's --report-interval",
                        limits.max_reports_per_second, burst));
  }
  bucket.tokens -= 1;
  return absl::OkStatus();
}

std::string PeerAddress(const std::string& grpc_peer) {
  const size_t colon = grpc_peer.rfind(':');
  const size_t scheme = grpc_peer.find(':');
  if (colon == std::string::npos || colon == scheme) return grpc_peer;  // "unix:/path": one peer.
  return grpc_peer.substr(0, colon);
}

std::unique_ptr<LimitMetrics> LimitMetrics::Create(prometheus::Registry& registry) {
  auto m = std::make_unique<LimitMetrics>();
  auto& family = prometheus::BuildCounter()
                     .Name("switchboard_limit_exceeded_total")
                     .Help("Calls ended with RESOURCE_EXHAUSTED, by the limit they met")
                     .Register(registry);
  m->streams_per_peer = &family.Add({{"limit", "streams_per_peer"}});
  m->subscribers = &family.Add({{"limit", "subscribers"}});
  m->report_rate = &family.Add({{"limit", "report_rate"}});
  m->fleet = &family.Add({{"limit", "fleet_size"}});
  return m;
}

absl::StatusOr<std::unique_ptr<StreamGate::Ticket>> StreamGate::Admit(const std::string& grpc_peer, StreamKind kind) {
  const std::string peer = PeerAddress(grpc_peer);
  MutexLock lock(&mu_);
  StreamCounts counts;
  auto it = per_peer_.find(peer);
  counts.from_peer = it == per_peer_.end() ? 0 : it->second;
  counts.subscribers = subscribers_;
  absl::Status s = DecideStreamAdmission(counts, kind, peer, limits_);
  if (!s.ok()) {
    if (metrics_ != nullptr) {
      (counts.from_peer >= limits_.max_streams_per_peer ? metrics_->streams_per_peer : metrics_->subscribers)
          ->Increment();
    }
    return s;
  }
  ++per_peer_[peer];
  if (kind == StreamKind::kSubscriber) ++subscribers_;
  return std::unique_ptr<Ticket>(new Ticket(this, peer, kind));
}

void StreamGate::Release(const std::string& peer, StreamKind kind) {
  MutexLock lock(&mu_);
  auto it = per_peer_.find(peer);
  if (it != per_peer_.end() && --it->second <= 0) per_peer_.erase(it);
  if (kind == StreamKind::kSubscriber) --subscribers_;
}

StreamGate::Ticket::~Ticket() { gate_->Release(peer_, kind_); }

}  // namespace switchboard::controlplane
