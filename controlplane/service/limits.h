// Limits that hold: how many streams one peer may keep open, how many subscribers the
// control plane serves, how fast one node may report. Beyond a limit the call ends with
// RESOURCE_EXHAUSTED, a message naming the limit and its flag, and a count in
// switchboard_limit_exceeded_total{limit}; others are served as before.
//
// The decisions are pure functions of explicit counts and state; StreamGate only keeps
// the counts (one mutex) and hands out tickets that give a stream's place back when the
// stream ends.
#ifndef SWITCHBOARD_CONTROLPLANE_SERVICE_LIMITS_H_
#define SWITCHBOARD_CONTROLPLANE_SERVICE_LIMITS_H_

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace switchboard::controlplane {

struct ServiceLimits {
  int max_message_bytes = 4 << 20;     // --max-message-size: one gRPC message, either way in.
  int max_streams_per_peer = 1024;     // --max-streams-per-peer: agent + discovery + xDS streams of one IP.
  int max_subscribers = 10000;         // --max-subscribers: discovery + xDS streams in all.
  double max_reports_per_second = 20;  // --max-report-rate: per node, sustained.
  double report_burst = 40;            // Reports a node may send at once (state changes).
};

enum class StreamKind { kAgent, kSubscriber };

struct StreamCounts {
  int from_peer = 0;    // Open streams of the peer's address.
  int subscribers = 0;  // Open subscriber streams in all.
};

// OK, or RESOURCE_EXHAUSTED naming the limit, for one more stream of `kind` from `peer`.
absl::Status DecideStreamAdmission(const StreamCounts& counts, StreamKind kind, const std::string& peer,
                                   const ServiceLimits& limits);

// A node's report allowance: a token bucket refilled at max_reports_per_second up to
// report_burst.
struct ReportBucket {
  double tokens = -1;  // < 0: not started (full at the first report).
  absl::Time last = absl::InfinitePast();
};

// Takes one report from `bucket` at `now`: OK, or RESOURCE_EXHAUSTED naming the rate.
// `bucket` is the caller's state (one per stream), updated either way.
absl::Status AdmitReport(ReportBucket& bucket, absl::Time now, const ServiceLimits& limits);

// "ipv4:10.0.0.7:53122" -> "ipv4:10.0.0.7": what counts as one peer.
std::string PeerAddress(const std::string& grpc_peer);

struct LimitMetrics {
  prometheus::Counter* streams_per_peer;
  prometheus::Counter* subscribers;
  prometheus::Counter* report_rate;
  prometheus::Counter* fleet;  // Endpoints per node, nodes, pools (FleetState's limits).
  static std::unique_ptr<LimitMetrics> Create(prometheus::Registry& registry);
};

class StreamGate {
 public:
  // A stream's place; gives it back when destroyed.
  class Ticket {
   public:
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    friend class StreamGate;
    Ticket(StreamGate* gate, std::string peer, StreamKind kind) : gate_(gate), peer_(std::move(peer)), kind_(kind) {}
    StreamGate* gate_;
    std::string peer_;
    StreamKind kind_;
  };

  // `metrics` may be null; both must outlive the gate and every ticket.
  StreamGate(ServiceLimits limits, const LimitMetrics* metrics) : limits_(limits), metrics_(metrics) {}

  // A ticket for one more stream from `grpc_peer`, or RESOURCE_EXHAUSTED (counted).
  absl::StatusOr<std::unique_ptr<Ticket>> Admit(const std::string& grpc_peer, StreamKind kind);

  const ServiceLimits& limits() const { return limits_; }
  const LimitMetrics* metrics() const { return metrics_; }

 private:
  void Release(const std::string& peer, StreamKind kind);

  const ServiceLimits limits_;
  const LimitMetrics* const metrics_;
  Mutex mu_;
  std::map<std::string, int> per_peer_ ABSL_GUARDED_BY(mu_);
  int subscribers_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SERVICE_LIMITS_H_
