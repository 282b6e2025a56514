#include "agent/probe/probe.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/probe/auto_probe.h"
#include "agent/probe/llamacpp_probe.h"
#include "agent/probe/metrics_engine_probe.h"
#include "common/clock.h"
#include "common/net.h"
#include "google/protobuf/util/time_util.h"

namespace switchboard::agent {

v1::EndpointReport HealthTrackingProbe::Poll(absl::Time now) {
  v1::EndpointReport out;
  out.set_address(options_.address);
  out.set_engine(engine());
  // The real duration of real requests, whatever clock drives the rounds.
  const SystemClock& real = *SystemClock::Get();
  const absl::Time start = real.MonotonicNow();
  bool loading = false;
  std::string error = PollOnce(now, &out, &loading);
  *out.mutable_probe_latency() =
      google::protobuf::util::TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(real.MonotonicNow() - start));

  if (error.empty()) {
    consecutive_failures_ = 0;
    if (!healthy_ && ++consecutive_successes_ >= options_.thresholds.successes_to_recover) healthy_ = true;
  } else {
    consecutive_successes_ = 0;
    if (++consecutive_failures_ >= options_.thresholds.failures_to_unhealthy) healthy_ = false;
  }

  if (error.empty() && healthy_) {
    if (loading) {
      out.set_state(v1::ENDPOINT_STATE_STARTING);
    } else {
      out.set_state(v1::ENDPOINT_STATE_READY);
      ever_ready_ = true;
      last_good_ = out;
    }
    check_.Update(now, options_.base_url, &out);
    return out;
  }
  // Failing (or recovering): keep the last known shape, but mark it.
  v1::EndpointReport failed = last_good_;
  failed.set_address(options_.address);
  failed.set_engine(engine());
  failed.set_tokens_per_second(0);
  failed.clear_ttft_p50_seconds();
  failed.clear_ttft_p95_seconds();
  failed.clear_e2e_p50_seconds();
  failed.clear_e2e_p95_seconds();
  *failed.mutable_probe_latency() = out.probe_latency();
  failed.set_probe_error(error.empty() ? "recovering" : error);
  if (!ever_ready_) {
    // Never answered sanely yet: a server still starting (vLLM and TGI refuse
    // connections until their model is loaded). Never routed; not a failure.
    failed.set_state(v1::ENDPOINT_STATE_STARTING);
    failed.set_slots_busy(0);
    failed.set_queue_depth(0);
  } else if (healthy_) {
    // Under the failure threshold: carry on with the last good numbers.
    failed.set_state(v1::ENDPOINT_STATE_READY);
  } else {
    failed.set_state(v1::ENDPOINT_STATE_UNHEALTHY);
    failed.set_slots_busy(0);
    failed.set_queue_depth(0);
  }
  check_.Update(now, options_.base_url, &failed);  // Only READY starts a check.
  return failed;
}

absl::StatusOr<BackendSpec> ParseBackendSpec(const std::string& spec) {
  std::vector<std::string> parts = absl::StrSplit(spec, ',');
  size_t eq = parts[0].find('=');
  if (eq == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--backend '", spec, "': want ENGINE=URL, e.g. llamacpp=http://127.0.0.1:8080"));
  }
  BackendSpec out;
  out.engine = parts[0].substr(0, eq);
  std::string url = parts[0].substr(eq + 1);
  if (out.engine != "llamacpp" && out.engine != "vllm" && out.engine != "sglang" && out.engine != "tgi" &&
      out.engine != "auto") {
    return absl::InvalidArgumentError(absl::StrCat("--backend '", spec, "': unknown engine '", out.engine,
                                                   "' (known: llamacpp, vllm, sglang, tgi, auto)"));
  }
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat("--backend '", spec, "': the URL must start with http://"));
  }
  rest = absl::StripSuffix(rest, "/");
  if (rest.find('/') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--backend '", spec, "': give the server's base URL, no path"));
  }
  absl::StatusOr<HostPort> hp = ParseHostPort(rest);
  if (!hp.ok() || hp->port == 0) {
    return absl::InvalidArgumentError(absl::StrCat("--backend '", spec, "': the URL needs host:port"));
  }
  out.options.base_url = absl::StrCat("http://", rest);
  out.options.address = hp->ToString();
  for (size_t i = 1; i < parts.size(); ++i) {
    absl::string_view opt = parts[i];
    if (absl::ConsumePrefix(&opt, "capacity=")) {
      if (!absl::SimpleAtod(opt, &out.options.capacity_hint) || !(out.options.capacity_hint > 0) ||
          out.options.capacity_hint > 1e6) {
        return absl::InvalidArgumentError(absl::StrCat("--backend '", spec, "': capacity must be a positive number"));
      }
    } else if (absl::ConsumePrefix(&opt, "max_seqs=")) {
      if (!absl::SimpleAtoi(opt, &out.options.max_seqs) || out.options.max_seqs == 0 || out.options.max_seqs > 65536) {
        return absl::InvalidArgumentError(absl::StrCat("--backend '", spec, "': max_seqs must be 1..65536"));
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--backend '", spec, "': unknown option '", parts[i], "' (known: capacity=X, max_seqs=N)"));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Probe>> MakeProbe(const BackendSpec& spec, HttpClient* http) {
  if (spec.engine == "llamacpp") return std::unique_ptr<Probe>(new LlamaCppProbe(spec.options, http));
  if (spec.engine == "vllm") return std::unique_ptr<Probe>(new MetricsEngineProbe(VllmSpec(), spec.options, http));
  if (spec.engine == "sglang") return std::unique_ptr<Probe>(new MetricsEngineProbe(SglangSpec(), spec.options, http));
  if (spec.engine == "tgi") return std::unique_ptr<Probe>(new MetricsEngineProbe(TgiSpec(), spec.options, http));
  if (spec.engine == "auto") return std::unique_ptr<Probe>(new AutoProbe(spec.options, http));
  return absl::InvalidArgumentError(absl::StrCat("unknown engine '", spec.engine, "'"));
}

}  // namespace switchboard::agent
