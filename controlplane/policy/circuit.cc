#include "controlplane/policy/circuit.h"

#include <algorithm>
#include <limits>

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
std::string EvidenceFailure(const CircuitInput& in, const CircuitMemory& m, const CircuitConfig& config) {
  auto over = [&config](const Outcomes& o, int64_t min) {
    return o.total > 0 && o.total >= min && static_cast<double>(o.failed) / o.total > config.max_error_rate;
  };
  // Runs for every endpoint at every reconcile: text only for a verdict.
  auto rate = [&config](const Outcomes& o, const char* source) {
    return absl::StrFormat("5xx rate %d%% over %d requests in %s (%s; limit %d%%)",
                           Percent(static_cast<double>(o.failed) / o.total), o.total, Seconds(config.error_window),
                           source, Percent(config.max_error_rate));
  };
  if (Outcomes o = m.server.Sum(); over(o, config.min_requests)) {
    return rate(o, "server counters");
  }
  if (Outcomes o = m.gateways.Sum(); over(o, config.min_requests)) {
    return rate(o, "reported by gateways");
  }
  if (Outcomes o = m.checks.Sum(); over(o, config.min_checks)) {
    return absl::StrCat(absl::StrFormat("active checks: %d of %d failed in %s (limit %d%%)", o.failed, o.total,
                                        Seconds(config.error_window), Percent(config.max_error_rate)),
                        in.check_error.empty() ? "" : absl::StrCat("; last: ", in.check_error));
  }
  return "";
}

}  // namespace

Outcomes OutcomeWindow::Feed(uint64_t total, uint64_t failed, absl::Time now, absl::Duration window) {
  const int64_t now_ns = absl::ToUnixNanos(now);  // Saturates for the infinite past and future.
  const int64_t window_ns = std::max<int64_t>(0, absl::ToInt64Nanoseconds(window));
  const int64_t since_ns = now_ns < std::numeric_limits<int64_t>::min() + window_ns
                               ? std::numeric_limits<int64_t>::min()
                               : now_ns - window_ns;
  while (count_ > 0 && buckets_[oldest_].start_ns < since_ns) {
    sum_total_ -= buckets_[oldest_].total;
    sum_failed_ -= buckets_[oldest_].failed;
    oldest_ = (oldest_ + 1) % kBuckets;
    --count_;
  }
  if (!has_baseline_ || total < last_total_ || failed < last_failed_) {
    has_baseline_ = true;
    last_total_ = total;
    last_failed_ = failed;
    return {};
  }
  Outcomes growth;
  growth.total = static_cast<int64_t>(std::min(total - last_total_, kMaxGrowth));
  // Two counters read at once can disagree by a request in flight; never more failures
  // than outcomes.
  growth.failed = std::min(static_cast<int64_t>(std::min(failed - last_failed_, kMaxGrowth)), growth.total);
  last_total_ = total;
  last_failed_ = failed;
  if (growth.total == 0) return growth;
  // kBuckets buckets, each begun at least window / (kBuckets - 1) after the one before,
  // span the window.
  if (count_ == 0 || now_ns >= newest_until_ns_) {
    if (count_ == kBuckets) {  // Only after the window grew (a new configuration): the oldest goes early.
      sum_total_ -= buckets_[oldest_].total;
      sum_failed_ -= buckets_[oldest_].failed;
      oldest_ = (oldest_ + 1) % kBuckets;
      --count_;
    }
    buckets_[(oldest_ + count_) % kBuckets] = Bucket{now_ns, 0, 0};
    ++count_;
    const int64_t span_ns = window_ns / (kBuckets - 1);
    newest_until_ns_ =
        now_ns > std::numeric_limits<int64_t>::max() - span_ns ? std::numeric_limits<int64_t>::max() : now_ns + span_ns;
  }
  Bucket& newest = buckets_[(oldest_ + count_ - 1) % kBuckets];
  // A bucket lasts window / 7: its counts stay far below 2^32 unless fed garbage, and
  // then they saturate (and the sums count what the bucket holds).
  const Bucket before = newest;
  newest.total = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{newest.total} + growth.total, UINT32_MAX));
  newest.failed = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{newest.failed} + growth.failed, newest.total));
  sum_total_ += newest.total - before.total;
  sum_failed_ += newest.failed - before.failed;
  return growth;
}

void OutcomeWindow::Clear() {
  sum_total_ = sum_failed_ = 0;
  oldest_ = count_ = 0;
  newest_until_ns_ = 0;
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
  //    endpoints not routable for other reasons; the failure verdicts. A CLOSED endpoint
  //    without a verdict (nearly all of them) is decided here: one walk over the memories.
  struct Pending {
    size_t i;
    std::string failure;   // The verdict; "" for none.
    std::string released;  // Why its trial began early ("" when it did not).
  };
  std::vector<Pending> pending;  // HALF_OPEN, or with a verdict: steps 3 and 4.
  // OPEN and up: those ejected for a failure verdict keep their places under the cap
  // before those back from being down.
  std::vector<size_t> open_for_failure, open_after_down;
  size_t eligible = 0;  // Not plainly down: what the ejection cap is a share of.
  for (size_t i = 0; i < n; ++i) {
    const CircuitInput& in = inputs[i];
    CircuitMemory& m = (*memories)[i];
    const Outcomes server = m.server.Feed(in.requests_total, in.errors_total, now, config.error_window);
    const Outcomes checks = m.checks.Feed(in.checks_total, in.check_failures_total, now, config.error_window);
    const Outcomes gateways =
        m.gateways.Feed(in.gateway_requests_total, in.gateway_errors_total, now, config.error_window);
    if (m.state == v1::CIRCUIT_STATE_HALF_OPEN) {
      m.trial_failures += server.failed + checks.failed + gateways.failed;
      m.trial_successes += (in.errors_counted ? server.total - server.failed : 0) + (checks.total - checks.failed) +
                           (gateways.total - gateways.failed);
    }
    CircuitDecision& d = out[i];
    d = DecideCircuit(in, config);
    if (d.circuit == v1::CIRCUIT_STATE_OPEN || !in.reported) {
      // Already OPEN: the ejection's clock keeps running from its start.
      if (d.circuit == v1::CIRCUIT_STATE_OPEN && in.reported && m.state != v1::CIRCUIT_STATE_OPEN) {
        Eject(&m, d.reason, /*down=*/true, config, now);
      }
      continue;
    }
    ++eligible;
    if (!d.routable) continue;  // STARTING, DRAINING: excluded, not failing.
    if (m.state == v1::CIRCUIT_STATE_OPEN) {
      (m.ejected_while_down ? open_after_down : open_for_failure).push_back(i);
      continue;
    }
    std::string failure = EvidenceFailure(in, m, config);
    if (failure.empty() && median > 0 && in.ttft_p95_seconds > config.latency_outlier_factor * median &&
        in.ttft_p95_seconds > absl::ToDoubleSeconds(config.latency_floor)) {
      failure = absl::StrFormat("latency outlier: TTFT p95 %.2fs > %.1f x pool median %.2fs", in.ttft_p95_seconds,
                                config.latency_outlier_factor, median);
    }
    if (m.state == v1::CIRCUIT_STATE_CLOSED && failure.empty()) {
      if (m.times_ejected > 0 && now - m.changed_at >= config.max_ejection) m.times_ejected = 0;  // Forgiven.
      continue;  // Routable, as DecideCircuit said.
    }
    pending.push_back({i, std::move(failure), ""});
  }

  // 2. Ejections under way, within the cap (at least one may always be ejected, as in
  //    Envoy); beyond the cap an ejection ends early in a trial (fail open). A trial is
  //    judged on what it shows: it starts with no verdict.
  const size_t cap = std::max<size_t>(1, static_cast<size_t>(config.max_ejection_share * eligible));
  const int cap_percent = Percent(config.max_ejection_share);
  size_t open_now = 0;
  for (const std::vector<size_t>* open : {&open_for_failure, &open_after_down}) {
    for (size_t i : *open) {
      CircuitMemory& m = (*memories)[i];
      if (now - m.changed_at >= m.ejection) {
        StartTrial(&m, now);
        pending.push_back({i, "", ""});
        continue;
      }
      if (open_now < cap) {
        ++open_now;
        out[i].circuit = v1::CIRCUIT_STATE_OPEN;
        out[i].routable = false;
        out[i].reason =
            absl::StrCat("ejected (", m.open_reason, "); half-open in ", Seconds(m.ejection - (now - m.changed_at)));
        continue;
      }
      pending.push_back({i, "",
                         absl::StrCat("ejection (", m.open_reason, ") ended early: ", open_now, " of ", eligible,
                                      " are already ejected (cap ", cap_percent, "%), failing open; ")});
      StartTrial(&m, now);
    }
  }

  // 3. Trials, and closed circuits with a verdict.
  std::vector<const Pending*> candidates;  // Endpoints a failure would (re-)eject.
  for (Pending& p : pending) {
    CircuitMemory& m = (*memories)[p.i];
    CircuitDecision& d = out[p.i];
    if (m.state == v1::CIRCUIT_STATE_HALF_OPEN) {
      const int64_t s = m.trial_successes, f = m.trial_failures;
      if (p.failure.empty() && f > 0 && static_cast<double>(f) > config.max_error_rate * static_cast<double>(s + f)) {
        p.failure = absl::StrFormat("failed its trial: %d of %d outcomes failed (limit %d%%)", f, s + f,
                                    Percent(config.max_error_rate));
      }
      if (!p.failure.empty()) {
        candidates.push_back(&p);  // Back to OPEN, for longer (subject to the cap).
        continue;
      }
      const absl::Duration left = config.half_open_duration - (now - m.changed_at);
      if (left <= absl::ZeroDuration() && s >= config.half_open_successes) {
        m.state = v1::CIRCUIT_STATE_CLOSED;
        m.changed_at = now;
        d.reason = absl::StrFormat("ready: passed its trial (%d successes, %d failures)", s, f);
        continue;
      }
      d.circuit = v1::CIRCUIT_STATE_HALF_OPEN;
      d.weight_cap = config.half_open_weight;
      d.reason =
          absl::StrCat(p.released, "half-open after ", m.times_ejected, " ejection(s): trial traffic, ", s, " of ",
                       config.half_open_successes, " successes needed, ", f, " failures",
                       left > absl::ZeroDuration() ? absl::StrCat(", for at least ", Seconds(left), " more") : "");
      continue;
    }
    candidates.push_back(&p);  // CLOSED with a verdict.
  }

  // 4. Eject candidates while the cap allows; the rest stay routable and say why.
  for (const Pending* p : candidates) {
    CircuitMemory& m = (*memories)[p->i];
    CircuitDecision& d = out[p->i];
    if (open_now < cap) {
      ++open_now;
      Eject(&m, p->failure, /*down=*/false, config, now);
      d.circuit = v1::CIRCUIT_STATE_OPEN;
      d.routable = false;
      d.weight_cap = 0;
      d.reason = absl::StrCat("ejected (", p->failure, ") for ", Seconds(m.ejection));
    } else {
      if (m.state == v1::CIRCUIT_STATE_HALF_OPEN) {
        d.circuit = v1::CIRCUIT_STATE_HALF_OPEN;
        d.weight_cap = config.half_open_weight;
      }
      d.reason = absl::StrCat("would eject (", p->failure, ") but ", open_now, " of ", eligible,
                              " are already ejected (cap ", cap_percent, "%): failing open");
    }
  }
  return out;
}

}  // namespace switchboard::controlplane::policy
