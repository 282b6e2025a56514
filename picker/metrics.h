// switchboard-picker's Prometheus metrics (--metrics-listen), declared in one place.
#ifndef SWITCHBOARD_PICKER_METRICS_H_
#define SWITCHBOARD_PICKER_METRICS_H_

#include <memory>

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace switchboard::picker {

struct PickerMetrics {
  std::shared_ptr<prometheus::Registry> registry;
  // switchboard_picker_requests_total{result}: routed | unavailable (503) | shed (429) |
  // class_refused (429: the request's priority class has no headroom) | bad_request (400:
  // no model, body not JSON) | too_large (413) | rate_limited (429: over a global rate
  // limit, or the Rate Limit Service failed with --ratelimit-failure-mode deny).
  prometheus::Counter* routed = nullptr;
  prometheus::Counter* unavailable = nullptr;
  prometheus::Counter* shed = nullptr;
  prometheus::Counter* class_refused = nullptr;
  prometheus::Counter* bad_request = nullptr;
  prometheus::Counter* too_large = nullptr;
  prometheus::Counter* rate_limited = nullptr;
  // switchboard_picker_ratelimit_errors_total: Rate Limit Service calls that failed or
  // missed --ratelimit-timeout (answered by --ratelimit-failure-mode).
  prometheus::Counter* rate_limit_errors = nullptr;
  // Answers seen on the response path: switchboard_picker_responses_total{class} 2xx.. 5xx.
  prometheus::Counter* responses_ok = nullptr;
  prometheus::Counter* responses_client_error = nullptr;
  prometheus::Counter* responses_server_error = nullptr;
  prometheus::Gauge* streams = nullptr;             // ext_proc streams open.
  prometheus::Counter* assignments = nullptr;       // Assignments applied.
  prometheus::Counter* outcome_reports = nullptr;   // SubscribeRequests carrying outcomes sent.
  prometheus::Histogram* decide_seconds = nullptr;  // Time to decide a pick (body parsed).
  // In-flight sharing (--share-interval): the other replicas heard from through the
  // control plane (0 while sharing is down), and their requests in flight as last heard.
  prometheus::Gauge* share_peers = nullptr;
  prometheus::Gauge* peer_requests_in_flight = nullptr;
};

std::unique_ptr<PickerMetrics> MakePickerMetrics();

}  // namespace switchboard::picker

#endif  // SWITCHBOARD_PICKER_METRICS_H_
