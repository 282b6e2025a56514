#include "controlplane/policy/circuit.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace switchboard::controlplane::policy {
namespace {

std::string Seconds(absl::Duration d) { return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(100))); }

int Percent(double share) { return static_cast<int>(100 * share + 0.5); }

// OPEN, for longer each time: min(base x times ejected, max).
void Eject(CircuitMemory* m, std::string reason, bool down, const CircuitConfig& config, absl::Time now) {
  ++m->times_ejected;
  m->ejection = std::min(config.base_ejection * m->times_ejected, config.max_ejection);
  m->state = v1::CIRCUIT_STATE_OPEN;
  m->changed_at = now;
  m->open_reason = std::move(reason);
  m->ejected_while_down = down;
}

// HALF_OPEN: judged on what the trial shows, so the windows start afresh (what they held
// came before or during the ejection: a server that healed meanwhile would fail on it).
void StartTrial(CircuitMemory* m, absl::Time now) {
  m->state = v1::CIRCUIT_STATE_HALF_OPEN;
  m->changed_at = now;
  m->trial_successes = m->trial_failures = 0;
  m->server.Clear();
  m->checks.Clear();
  m->gateways.Clear();
}

// The first source whose failure share over the window is over the limit, described; ""
// when none is.
std::string EvidenceFailure(const CircuitInput& in, const CircuitMemory& m, const CircuitConfig& config,
                            absl::Time now) {
  auto over = [&config](const Outcomes& o, int64_t min) {
    return o.total > 0 && o.total >= min && static_cast<double>(o.failed) / o.total > config.max_error_rate;
  };
  const std::string window = Seconds(config.error_window);
  const int limit = Percent(config.max_error_rate);
  if (Outcomes o = m.server.Sum(now, config.error_window); over(o, config.min_requests)) {
    return absl::StrFormat("5xx rate %d%% over %d requests in %s (server counters; limit %d%%)",
                           Percent(static_cast<double>(o.failed) / o.total), o.total, window, limit);
  }
  if (Outcomes o = m.gateways.Sum(now, config.error_window); over(o, config.min_requests)) {
    return absl::StrFormat("5xx rate %d%% over %d requests in %s (reported by gateways; limit %d%%)",
                           Percent(static_cast<double>(o.failed) / o.total), o.total, window, limit);
  }
  if (Outcomes o = m.checks.Sum(now, config.error_window); over(o, config.min_checks)) {
    return absl::StrCat(absl::StrFormat("active checks: %d of %d failed in %s (limit %d%%)", o.failed, o.total, window,
                                        limit),
                        in.check_error.empty() ? "" : absl::StrCat("; last: ", in.check_error));
  }
  return "";
}

}  // namespace

Outcomes OutcomeWindow::Feed(uint64_t total, uint64_t failed, absl::Time now, absl::Duration window) {
  if (!has_baseline_ || total < last_total_ || failed < last_failed_) {
    has_baseline_ = true;
    last_total_ = total;
    last_failed_ = failed;
    return {};
  }
  Outcomes growth;
  growth.total = static_cast<int64_t>(std::min<uint64_t>(total - last_total_, INT64_MAX / 4));
  // Two counters read at once can disagree by a request in flight; never more failures
  // than outcomes.
  growth.failed = std::min(static_cast<int64_t>(std::min<uint64_t>(failed - last_failed_, INT64_MAX / 4)), growth.total);
  last_total_ = total;
  last_failed_ = failed;
  if (growth.total == 0) return growth;
  // kBuckets buckets, each begun at least width after the one before, span the window.
  const absl::Duration width = window / (kBuckets - 1);
  if (buckets_[newest_].start == absl::InfinitePast() || now - buckets_[newest_].start >= width) {
    newest_ = (newest_ + 1) % kBuckets;
    buckets_[newest_] = Bucket{now, 0, 0};
  }
  buckets_[newest_].total += growth.total;
  buckets_[newest_].failed += growth.failed;
  return growth;
}

Outcomes OutcomeWindow::Sum(absl::Time now, absl::Duration window) const {
  Outcomes sum;
  for (const Bucket& b : buckets_) {
    if (b.start == absl::InfinitePast() || b.start < now - window) continue;
    sum.total += b.total;
    sum.failed += b.failed;
  }
  return sum;
}

void OutcomeWindow::Clear() {
  buckets_.fill(Bucket{});
  newest_ = 0;
}

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
  const size_t n = inputs.size();
  memories->resize(n);
  std::vector<CircuitDecision> out(n);

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

  // 1. Evidence; the plainly down (one more ejection each time they go down); the
  //    endpoints not routable for other reasons.
  std::vector<bool> decided(n, false);
  size_t eligible = 0;  // Not plainly down: what the ejection cap is a share of.
  for (size_t i = 0; i < n; ++i) {
    const CircuitInput& in = inputs[i];
    CircuitMemory& m = (*memories)[i];
    const Outcomes server = m.server.Feed(in.requests_total, in.errors_total, now, config.error_window);
    const Outcomes checks = m.checks.Feed(in.checks_total, in.check_failures_total, now, config.error_window);
    const Outcomes gateways = m.gateways.Feed(in.gateway_requests_total, in.gateway_errors_total, now, config.error_window);
    if (m.state == v1::CIRCUIT_STATE_HALF_OPEN) {
      m.trial_failures += server.failed + checks.failed + gateways.failed;
      m.trial_successes += (in.errors_counted ? server.total - server.failed : 0) + (checks.total - checks.failed) +
                           (gateways.total - gateways.failed);
    }
    const CircuitDecision base = DecideCircuit(in, config);
    if (base.circuit == v1::CIRCUIT_STATE_OPEN || !in.reported) {
      // Already OPEN: the ejection's clock keeps running from its start.
      if (base.circuit == v1::CIRCUIT_STATE_OPEN && in.reported && m.state != v1::CIRCUIT_STATE_OPEN) {
        Eject(&m, base.reason, /*down=*/true, config, now);
      }
      out[i] = base;
      decided[i] = true;
      continue;
    }
    ++eligible;
    if (!base.routable) {
      out[i] = base;  // STARTING, DRAINING: excluded, not failing.
      decided[i] = true;
    }
  }

  // 2. Ejections under way, within the cap (at least one may always be ejected, as in
  //    Envoy). Those ejected for a failure verdict keep their places before those back
  //    from being down; beyond the cap an ejection ends early in a trial (fail open).
  const size_t cap = std::max<size_t>(1, static_cast<size_t>(config.max_ejection_share * eligible));
  const int cap_percent = Percent(config.max_ejection_share);
  size_t open_now = 0;
  std::vector<std::string> released(n);  // Why a trial began early.
  for (bool down : {false, true}) {
    for (size_t i = 0; i < n; ++i) {
      CircuitMemory& m = (*memories)[i];
      if (decided[i] || m.state != v1::CIRCUIT_STATE_OPEN || m.ejected_while_down != down) continue;
      if (now - m.changed_at >= m.ejection) {
        StartTrial(&m, now);
        continue;
      }
      if (open_now < cap) {
        ++open_now;
        decided[i] = true;
        out[i].circuit = v1::CIRCUIT_STATE_OPEN;
        out[i].reason =
            absl::StrCat("ejected (", m.open_reason, "); half-open in ", Seconds(m.ejection - (now - m.changed_at)));
        continue;
      }
      released[i] = absl::StrCat("ejection (", m.open_reason, ") ended early: ", open_now, " of ", eligible,
                                 " are already ejected (cap ", cap_percent, "%), failing open; ");
      StartTrial(&m, now);
    }
  }

  // 3. Failure verdicts; trials and closed circuits.
  std::vector<std::string> failure(n);
  std::vector<size_t> candidates;  // Endpoints a failure would (re-)eject.
  for (size_t i = 0; i < n; ++i) {
    if (decided[i]) continue;
    const CircuitInput& in = inputs[i];
    CircuitMemory& m = (*memories)[i];
    CircuitDecision& d = out[i];
    failure[i] = EvidenceFailure(in, m, config, now);
    if (failure[i].empty() && median > 0 && in.ttft_p95_seconds > config.latency_outlier_factor * median &&
        in.ttft_p95_seconds > absl::ToDoubleSeconds(config.latency_floor)) {
      failure[i] = absl::StrFormat("latency outlier: TTFT p95 %.2fs > %.1f x pool median %.2fs", in.ttft_p95_seconds,
                                   config.latency_outlier_factor, median);
    }
    if (m.state == v1::CIRCUIT_STATE_HALF_OPEN) {
      const int64_t s = m.trial_successes, f = m.trial_failures;
      if (failure[i].empty() && f > 0 && static_cast<double>(f) > config.max_error_rate * static_cast<double>(s + f)) {
        failure[i] = absl::StrFormat("failed its trial: %d of %d outcomes failed (limit %d%%)", f, s + f,
                                     Percent(config.max_error_rate));
      }
      if (!failure[i].empty()) {
        candidates.push_back(i);  // Back to OPEN, for longer (subject to the cap).
        continue;
      }
      const absl::Duration left = config.half_open_duration - (now - m.changed_at);
      if (left <= absl::ZeroDuration() && s >= config.half_open_successes) {
        m.state = v1::CIRCUIT_STATE_CLOSED;
        m.changed_at = now;
        d = DecideCircuit(in, config);
        d.reason = absl::StrFormat("ready: passed its trial (%d successes, %d failures)", s, f);
        continue;
      }
      d.circuit = v1::CIRCUIT_STATE_HALF_OPEN;
      d.routable = true;
      d.weight_cap = config.half_open_weight;
      d.reason = absl::StrCat(released[i], "half-open after ", m.times_ejected, " ejection(s): trial traffic, ", s,
                              " of ", config.half_open_successes, " successes needed, ", f, " failures",
                              left > absl::ZeroDuration() ? absl::StrCat(", for at least ", Seconds(left), " more") : "");
      continue;
    }
    // CLOSED.
    if (!failure[i].empty()) {
      candidates.push_back(i);
      continue;
    }
    if (m.times_ejected > 0 && now - m.changed_at >= config.max_ejection) m.times_ejected = 0;  // Forgiven.
    d = DecideCircuit(in, config);
  }

  // 4. Eject candidates while the cap allows; the rest stay routable and say why.
  for (size_t i : candidates) {
    CircuitMemory& m = (*memories)[i];
    CircuitDecision& d = out[i];
    if (open_now < cap) {
      ++open_now;
      Eject(&m, failure[i], /*down=*/false, config, now);
      d.circuit = v1::CIRCUIT_STATE_OPEN;
      d.routable = false;
      d.weight_cap = 0;
      d.reason = absl::StrCat("ejected (", failure[i], ") for ", Seconds(m.ejection));
    } else {
      d = DecideCircuit(inputs[i], config);
      if (m.state == v1::CIRCUIT_STATE_HALF_OPEN) {
        d.circuit = v1::CIRCUIT_STATE_HALF_OPEN;
        d.weight_cap = config.half_open_weight;
      }
      d.reason = absl::StrCat("would eject (", failure[i], ") but ", open_now, " of ", eligible,
                              " are already ejected (cap ", cap_percent, "%): failing open");
    }
  }
  return out;
}

}  // namespace switchboard::controlplane::policy
