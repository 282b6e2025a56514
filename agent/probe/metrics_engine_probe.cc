#include "agent/probe/metrics_engine_probe.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "agent/probe/llamacpp_probe.h"
#include "common/prometheus_text.h"
#include "nlohmann/json.hpp"

namespace switchboard::agent {
namespace {

using json = nlohmann::json;
constexpr uint32_t kDefaultMaxSeqs = 256;

// p50 and p95 of what a histogram observed since the previous scrape; 0 when nothing was.
void IntervalQuantiles(const std::optional<Histogram>& now, std::optional<Histogram>* before, double* p50,
                       double* p95) {
  if (now && *before) {
    if (std::optional<Histogram> d = HistogramDelta(*now, **before)) {
      *p50 = HistogramQuantile(*d, 0.50).value_or(0);
      *p95 = HistogramQuantile(*d, 0.95).value_or(0);
    }
  }
  *before = now;  // A failed delta (server restart) re-baselines here.
}

bool FiniteNonNegative(std::optional<double> v) { return v && std::isfinite(*v) && *v >= 0; }
// A counter that converts to uint64 (a double past its range converts to undefined behaviour).
bool CounterFits(std::optional<double> v) { return FiniteNonNegative(v) && *v < 9e18; }

}  // namespace

const EngineSpec& VllmSpec() {
  static const EngineSpec* spec = [] {
    auto* s = new EngineSpec;
    s->engine = v1::ENGINE_VLLM;
    s->running = "vllm:num_requests_running";
    s->waiting = "vllm:num_requests_waiting";
    s->kv_usage = {"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"};  // new, then <= 0.9
    s->ttft_histogram = "vllm:time_to_first_token_seconds";
    s->e2e_histogram = "vllm:e2e_request_latency_seconds";
    s->generated_tokens = "vllm:generation_tokens_total";
    s->requests = {"vllm:request_success_total"};
    // V1 engine (0.7+): per-request histograms observed when a request finishes; their
    // _sum series pair up (prompt tokens, seconds from scheduled to first token).
    s->prefill_tokens = "vllm:request_prompt_tokens_sum";
    s->prefill_seconds = "vllm:request_prefill_time_seconds_sum";
    return s;
  }();
  return *spec;
}

const EngineSpec& SglangSpec() {
  static const EngineSpec* spec = [] {
    auto* s = new EngineSpec;
    s->engine = v1::ENGINE_SGLANG;
    s->running = "sglang:num_running_reqs";
    s->waiting = "sglang:num_queue_reqs";
    s->kv_usage = {"sglang:token_usage"};
    s->ttft_histogram = "sglang:time_to_first_token_seconds";
    s->e2e_histogram = "sglang:e2e_request_latency_seconds";
    s->generated_tokens = "sglang:generation_tokens_total";
    s->requests = {"sglang:num_requests_total"};
    return s;
  }();
  return *spec;
}

const EngineSpec& TgiSpec() {
  static const EngineSpec* spec = [] {
    auto* s = new EngineSpec;
    s->engine = v1::ENGINE_TGI;
    s->running = "tgi_batch_current_size";
    s->waiting = "tgi_queue_size";
    s->e2e_histogram = "tgi_request_duration";
    s->generated_tokens = "tgi_request_generated_tokens_sum";
    // tgi_request_count counts requests as they arrive; finished ones are these two.
    s->requests = {"tgi_request_success", "tgi_request_failure"};
    s->failures = "tgi_request_failure";
    // Invalid requests (422) and a full queue (429) say nothing against the server.
    s->client_failure_kinds = {"validation", "overloaded"};
    s->models_from_info = true;
    return s;
  }();
  return *spec;
}

std::string MetricsEngineProbe::FetchModels() {
  if (spec_.models_from_info) {
    HttpResponse r = http_->Get(options_.base_url + "/info", options_.timeout);
    if (r.status != 200) return HttpFailure("/info", r);
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("model_id") || !j["model_id"].is_string()) {
      return "/info: no model_id";
    }
    models_ = {j["model_id"].get<std::string>()};
    if (j.contains("max_concurrent_requests") && j["max_concurrent_requests"].is_number_unsigned()) {
      // Read at full width, then capped: a value past uint32 must not wrap to a small one.
      slots_total_ = static_cast<uint32_t>(std::min<uint64_t>(j["max_concurrent_requests"].get<uint64_t>(), 65536));
    }
  } else {
    HttpResponse r = http_->Get(options_.base_url + "/v1/models", options_.timeout);
    if (r.status != 200) return HttpFailure("/v1/models", r);
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("data") || !j["data"].is_array()) {
      return "/v1/models: no data[] list";
    }
    std::vector<std::string> models;
    for (const json& m : j["data"]) {
      if (m.is_object() && m.contains("id") && m["id"].is_string() && !m["id"].get<std::string>().empty()) {
        models.push_back(m["id"].get<std::string>());
      }
    }
    if (models.empty()) return "/v1/models: no model ids";
    models_ = std::move(models);
  }
  if (options_.max_seqs > 0) slots_total_ = options_.max_seqs;  // Configuration wins.
  if (slots_total_ == 0) slots_total_ = kDefaultMaxSeqs;
  return "";
}

std::string MetricsEngineProbe::PollOnce(absl::Time now, v1::EndpointReport* out, bool* /*loading*/) {
  HttpResponse health = http_->Get(options_.base_url + "/health", options_.timeout);
  if (health.status != 200) return HttpFailure("/health", health);
  if (models_.empty()) {
    if (std::string e = FetchModels(); !e.empty()) return e;
  }
  out->mutable_models()->Assign(models_.begin(), models_.end());
  out->set_slots_total(slots_total_);

  HttpResponse r = http_->Get(options_.base_url + "/metrics", options_.timeout);
  if (r.status != 200) return HttpFailure("/metrics", r);
  absl::StatusOr<PromScrape> scrape = PromScrape::Parse(r.body);
  if (!scrape.ok()) return absl::StrCat("/metrics: ", scrape.status().message());

  std::optional<double> running = scrape->Sum(spec_.running);
  std::optional<double> waiting = scrape->Sum(spec_.waiting);
  if (!FiniteNonNegative(running) || !FiniteNonNegative(waiting)) {
    return absl::StrCat("/metrics: ", spec_.running, " / ", spec_.waiting, " missing or invalid");
  }
  // A batch can briefly exceed a configured limit we were told; never report busy > total.
  out->set_slots_busy(static_cast<uint32_t>(std::min<double>(*running, slots_total_)));
  out->set_queue_depth(static_cast<uint32_t>(std::min(*waiting, 1e7)));
  bool kv_found = false;
  for (const std::string& name : spec_.kv_usage) {
    std::optional<double> kv = scrape->Value(name);
    if (FiniteNonNegative(kv) && *kv <= 1) {
      out->set_kv_cache_usage(*kv);
      kv_found = true;
      break;
    }
  }
  if (!kv_found) {
    // No KV gauge (TGI): estimate from batch occupancy, and say so.
    out->set_kv_cache_usage(slots_total_ > 0 ? std::min(1.0, *running / slots_total_) : 0);
    out->set_kv_cache_estimated(true);
  }

  std::optional<Histogram> ttft, e2e;
  if (!spec_.ttft_histogram.empty()) ttft = ReadHistogram(*scrape, spec_.ttft_histogram);
  if (!spec_.e2e_histogram.empty()) e2e = ReadHistogram(*scrape, spec_.e2e_histogram);
  double p50 = 0, p95 = 0;
  IntervalQuantiles(ttft, &last_ttft_, &p50, &p95);
  out->set_ttft_p50_seconds(p50);
  out->set_ttft_p95_seconds(p95);
  p50 = p95 = 0;
  IntervalQuantiles(e2e, &last_e2e_, &p50, &p95);
  out->set_e2e_p50_seconds(p50);
  out->set_e2e_p95_seconds(p95);

  if (std::optional<CounterPair::Growth> g = generated_.Update(now, scrape->Sum(spec_.generated_tokens));
      g && g->seconds > 0) {
    const double tps = g->first / g->seconds;
    out->set_tokens_per_second(tps);
    // No per-sequence timing counter here: decode speed per busy sequence.
    if (tps > 0 && *running >= 1) slot_tokens_per_second_ = tps / *running;
  }
  out->set_slot_tokens_per_second(slot_tokens_per_second_);

  // Prefill speed: prompt tokens over prefill time, both observed as requests finish.
  if (!spec_.prefill_tokens.empty()) {
    if (std::optional<CounterPair::Growth> g =
            prefill_.Update(now, scrape->Sum(spec_.prefill_tokens), scrape->Sum(spec_.prefill_seconds));
        g && g->Ratio() > 0) {
      prefill_tokens_per_second_ = g->Ratio();
    }
  }
  out->set_prefill_tokens_per_second(prefill_tokens_per_second_);

  std::optional<double> requests;
  for (const std::string& name : spec_.requests) {
    if (std::optional<double> v = scrape->Sum(name)) requests = requests.value_or(0) + *v;
  }
  // TGI creates its failure series at the first failure: none yet is zero.
  std::optional<double> failures = spec_.failures.empty() ? 0.0 : scrape->Sum(spec_.failures).value_or(0);
  if (failures) {
    for (const PromSample& sample : scrape->samples()) {
      if (sample.name != spec_.failures) continue;
      auto kind = sample.labels.find("err");
      if (kind != sample.labels.end() && std::find(spec_.client_failure_kinds.begin(), spec_.client_failure_kinds.end(),
                                                   kind->second) != spec_.client_failure_kinds.end()) {
        *failures -= sample.value;
      }
    }
  }
  if (CounterFits(requests)) out->set_requests_total(static_cast<uint64_t>(*requests));
  if (CounterFits(failures) && CounterFits(requests) && *failures <= *requests) {
    out->set_errors_total(static_cast<uint64_t>(*failures));
    // Only a real 5xx counter makes requests - errors successes (SGLang's request count
    // includes failed requests, and it has no failure counter).
    out->set_errors_counted(!spec_.failures.empty());
  }
  return "";
}

}  // namespace switchboard::agent
