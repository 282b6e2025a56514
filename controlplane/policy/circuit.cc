#include "controlplane/policy/circuit.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace switchboard::controlplane::policy {
namespace {

enum class Verdict { kGood, kFailure };

std::string Seconds(absl::Duration d) { return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(100))); }

// Updates the counter window and returns the 5xx share over it (or -1 when too few
// requests were seen to judge).
double ErrorRate(const CircuitInput& in, CircuitMemory* m, const CircuitConfig& config, absl::Time now,
                 int64_t* requests_out) {
  *requests_out = 0;
  // Servers without request counters report 0 forever: no delta, never a verdict.
  if (!m->counters.empty() &&
      (in.requests_total < m->counters.back().requests || in.errors_total < m->counters.back().errors)) {
    m->counters.clear();  // The server restarted: start over.
  }
  m->counters.push_back({now, in.requests_total, in.errors_total});
  while (m->counters.size() > 1 && m->counters.front().time < now - config.error_window) m->counters.pop_front();
  const int64_t requests = static_cast<int64_t>(m->counters.back().requests - m->counters.front().requests);
  const int64_t errors = static_cast<int64_t>(m->counters.back().errors - m->counters.front().errors);
  *requests_out = requests;
  if (requests < config.min_requests) return -1;
  return static_cast<double>(errors) / requests;
}

}  // namespace

CircuitDecision DecideCircuit(const CircuitInput& in, const CircuitConfig& config) {
  CircuitDecision d;
  if (in.report_age > config.staleness_bound) {
    d.circuit = v1::CIRCUIT_STATE_OPEN;
    d.reason = absl::StrCat("stale: no report for ", Seconds(in.report_age), " (bound ",
                            absl::FormatDuration(config.staleness_bound), ")");
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

std::vector<CircuitDecision> DecidePoolCircuits(const std::vector<CircuitInput>& inputs,
                                                std::vector<CircuitMemory>* memories, const CircuitConfig& config,
                                                absl::Time now) {
  memories->resize(inputs.size());
  std::vector<CircuitDecision> out(inputs.size());

  // Pool median of TTFT p95 among endpoints that have latency data.
  std::vector<double> ttfts;
  for (const CircuitInput& in : inputs) {
    if (in.ttft_p95_seconds > 0 && in.state == v1::ENDPOINT_STATE_READY) ttfts.push_back(in.ttft_p95_seconds);
  }
  double median = 0;
  if (ttfts.size() >= 3) {
    std::sort(ttfts.begin(), ttfts.end());
    median = ttfts.size() % 2 ? ttfts[ttfts.size() / 2] : (ttfts[ttfts.size() / 2 - 1] + ttfts[ttfts.size() / 2]) / 2;
  }

  // 1. Plainly down, not routable for other reasons, and the soft verdicts.
  std::vector<size_t> candidates;  // Endpoints a soft failure would newly eject.
  size_t eligible = 0;             // Not plainly down: what the ejection cap is a share of.
  std::vector<std::string> failure(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const CircuitInput& in = inputs[i];
    CircuitMemory& m = (*memories)[i];
    CircuitDecision base = DecideCircuit(in, config);
    int64_t requests = 0;
    const double rate = ErrorRate(in, &m, config, now, &requests);
    if (base.circuit == v1::CIRCUIT_STATE_OPEN || !in.reported) {
      out[i] = base;  // Plainly down: no memory of soft ejections applies.
      continue;
    }
    ++eligible;
    if (!base.routable) {
      out[i] = base;  // STARTING, DRAINING: excluded, not failing.
      continue;
    }
    if (rate >= 0 && rate > config.max_error_rate) {
      failure[i] = absl::StrFormat("5xx rate %.0f%% over %d requests in %s (limit %.0f%%)", 100 * rate, requests,
                                   Seconds(config.error_window), 100 * config.max_error_rate);
    } else if (median > 0 && in.ttft_p95_seconds > config.latency_outlier_factor * median &&
               in.ttft_p95_seconds > absl::ToDoubleSeconds(config.latency_floor)) {
      failure[i] = absl::StrFormat("latency outlier: TTFT p95 %.2fs > %.1f x pool median %.2fs", in.ttft_p95_seconds,
                                   config.latency_outlier_factor, median);
    }
  }

  // 2. The state machine for endpoints that are up.
  size_t open_now = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!out[i].reason.empty()) continue;
    CircuitMemory& m = (*memories)[i];
    CircuitDecision& d = out[i];
    if (m.state == v1::CIRCUIT_STATE_OPEN) {
      if (now - m.changed_at >= m.ejection) {
        m.state = v1::CIRCUIT_STATE_HALF_OPEN;
        m.changed_at = now;
      } else {
        ++open_now;
        d.circuit = v1::CIRCUIT_STATE_OPEN;
        d.reason =
            absl::StrCat("ejected (", m.open_reason, "); half-open in ", Seconds(m.ejection - (now - m.changed_at)));
        continue;
      }
    }
    if (m.state == v1::CIRCUIT_STATE_HALF_OPEN) {
      if (!failure[i].empty()) {
        candidates.push_back(i);  // Failed its trial: back to OPEN (subject to the cap).
        continue;
      }
      if (now - m.changed_at >= config.half_open_duration) {
        m.state = v1::CIRCUIT_STATE_CLOSED;
        m.changed_at = now;
      } else {
        d.circuit = v1::CIRCUIT_STATE_HALF_OPEN;
        d.routable = true;
        d.weight_cap = config.half_open_weight;
        d.reason = absl::StrCat("half-open after ", m.times_ejected, " ejection(s): trial traffic for ",
                                Seconds(config.half_open_duration - (now - m.changed_at)), " more");
        continue;
      }
    }
    // CLOSED.
    if (!failure[i].empty()) {
      candidates.push_back(i);
      continue;
    }
    if (m.times_ejected > 0 && now - m.changed_at >= config.max_ejection) m.times_ejected = 0;  // Forgiven.
    d = DecideCircuit(inputs[i], config);
  }

  // 3. Eject candidates while the cap allows (at least one may always be ejected, as in
  //    Envoy); the rest stay routable and say why.
  const size_t cap = std::max<size_t>(1, static_cast<size_t>(config.max_ejection_share * eligible));
  for (size_t i : candidates) {
    CircuitMemory& m = (*memories)[i];
    CircuitDecision& d = out[i];
    if (open_now < cap) {
      ++open_now;
      ++m.times_ejected;
      m.ejection = std::min(config.base_ejection * m.times_ejected, config.max_ejection);
      m.state = v1::CIRCUIT_STATE_OPEN;
      m.changed_at = now;
      m.open_reason = failure[i];
      d.circuit = v1::CIRCUIT_STATE_OPEN;
      d.routable = false;
      d.reason = absl::StrCat("ejected (", failure[i], ") for ", Seconds(m.ejection));
    } else {
      d = DecideCircuit(inputs[i], config);
      if (m.state == v1::CIRCUIT_STATE_HALF_OPEN) {
        d.circuit = v1::CIRCUIT_STATE_HALF_OPEN;
        d.weight_cap = config.half_open_weight;
      }
      d.reason =
          absl::StrCat("would eject (", failure[i], ") but ", open_now, " of ", eligible, " are already ejected (cap ",
                       static_cast<int>(100 * config.max_ejection_share), "%): failing open");
    }
  }
  return out;
}

}  // namespace switchboard::controlplane::policy
