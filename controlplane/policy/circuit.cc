#include "controlplane/policy/circuit.h"

#include "absl/strings/str_cat.h"

namespace switchboard::controlplane::policy {

CircuitDecision DecideCircuit(const CircuitInput& in, const CircuitConfig& config) {
  CircuitDecision d;
  if (in.report_age > config.staleness_bound) {
    d.circuit = v1::CIRCUIT_STATE_OPEN;
    d.reason = absl::StrCat("stale: no report for ", absl::FormatDuration(absl::Trunc(in.report_age, absl::Milliseconds(100))),
                            " (bound ", absl::FormatDuration(config.staleness_bound), ")");
    return d;
  }
  if (!in.reported) {
    d.reason = "waiting for the first report";
    return d;  // Not a failure: CLOSED, but nothing to route on yet.
  }
  if (in.state == v1::ENDPOINT_STATE_UNHEALTHY) {
    d.circuit = v1::CIRCUIT_STATE_OPEN;
    d.reason = in.probe_error.empty() ? "unhealthy" : absl::StrCat("unhealthy: ", in.probe_error);
    return d;
  }
  switch (in.state) {
    case v1::ENDPOINT_STATE_STARTING:
      d.reason = "starting: model loading";
      return d;
    case v1::ENDPOINT_STATE_DRAINING:
      d.reason = "draining";
      return d;
    case v1::ENDPOINT_STATE_READY:
      d.routable = true;
      d.reason = "ready";
      return d;
    default:
      d.circuit = v1::CIRCUIT_STATE_OPEN;
      d.reason = "unknown state";
      return d;
  }
}

}  // namespace switchboard::controlplane::policy
