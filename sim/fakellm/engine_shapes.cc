#include "sim/fakellm/engine_shapes.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace switchboard::fakellm {
namespace {

using json = nlohmann::json;

void Metric(std::string* out, const std::string& name, const char* type, double value, const std::string& labels = "") {
  absl::StrAppendFormat(out, "# HELP %s %s\n# TYPE %s %s\n%s%s %.9g\n", name, name, name, type, name,
                        labels.empty() ? "" : absl::StrCat("{", labels, "}"), value);
}

void HistogramText(std::string* out, const std::string& name, const std::vector<double>& buckets, double sum,
                   const std::string& labels, const std::vector<double>& bounds = FakeEngine::LatencyBuckets()) {
  absl::StrAppendFormat(out, "# HELP %s %s\n# TYPE %s histogram\n", name, name, name);
  const std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < bounds.size(); ++i) {
    absl::StrAppendFormat(out, "%s_bucket{%s%sle=\"%g\"} %.0f\n", name, labels, sep, bounds[i], buckets[i]);
  }
  absl::StrAppendFormat(out, "%s_bucket{%s%sle=\"+Inf\"} %.0f\n", name, labels, sep, buckets.back());
  const std::string braces = labels.empty() ? "" : absl::StrCat("{", labels, "}");
  absl::StrAppendFormat(out, "%s_sum%s %.9g\n%s_count%s %.0f\n", name, braces, sum, name, braces, buckets.back());
}

HttpAnswer Json(int status, const json& j) { return {status, j.dump()}; }

}  // namespace

absl::StatusOr<Flavor> ParseFlavor(const std::string& name) {
  if (name == "llamacpp") return Flavor::kLlamaCpp;
  if (name == "llamacpp-2024") return Flavor::kLlamaCpp2024;
  if (name == "vllm") return Flavor::kVllm;
  if (name == "sglang") return Flavor::kSglang;
  if (name == "tgi") return Flavor::kTgi;
  return absl::InvalidArgumentError(absl::StrCat("unknown engine '", name, "'"));
}

HttpAnswer HealthAnswer(Flavor flavor, FakeEngine& engine) {
  switch (flavor) {
    case Flavor::kLlamaCpp:
      return Json(200, {{"status", "ok"}});
    case Flavor::kLlamaCpp2024: {
      const int idle = engine.idle_slots();
      const int busy = engine.options().slots - idle;
      return Json(
          200, {{"status", idle > 0 ? "ok" : "no slot available"}, {"slots_idle", idle}, {"slots_processing", busy}});
    }
    case Flavor::kVllm:
    case Flavor::kSglang:
    case Flavor::kTgi:
      return {200, "", "text/plain"};
  }
  return {500, ""};
}

HttpAnswer LoadingAnswer(Flavor flavor) {
  switch (flavor) {
    case Flavor::kLlamaCpp:
    case Flavor::kLlamaCpp2024:
      return Json(503, {{"error", {{"code", 503}, {"message", "Loading model"}, {"type", "unavailable_error"}}}});
    case Flavor::kTgi:
      return Json(503, {{"error", "unhealthy"}, {"error_type", "healthcheck"}});
    case Flavor::kVllm:
    case Flavor::kSglang:
      return {503, "", "text/plain"};
  }
  return {503, ""};
}

HttpAnswer MetricsAnswer(Flavor flavor, FakeEngine& engine) {
  const bool llama = flavor == Flavor::kLlamaCpp || flavor == Flavor::kLlamaCpp2024;
  FakeEngine::Stats st = engine.ReadStats(/*reset_scrape=*/llama);
  const std::string model = engine.options().model;
  std::string out;
  const double kv = st.kv_tokens_total > 0 ? st.kv_tokens_used / st.kv_tokens_total : 0;
  switch (flavor) {
    case Flavor::kLlamaCpp:
    case Flavor::kLlamaCpp2024: {
      const std::string p = "llamacpp:";
      Metric(&out, p + "prompt_tokens_total", "counter", st.prompt_tokens_total);
      Metric(&out, p + "prompt_seconds_total", "counter", st.prompt_seconds_total);
      Metric(&out, p + "tokens_predicted_total", "counter", st.tokens_predicted_total);
      Metric(&out, p + "tokens_predicted_seconds_total", "counter", st.tokens_predicted_seconds_total);
      Metric(&out, p + "n_decode_total", "counter", st.n_decode_total);
      Metric(&out, p + "n_tokens_max", "counter", static_cast<double>(st.n_tokens_max));
      Metric(&out, p + "prompt_tokens_seconds", "gauge", st.scrape_prompt_tokens_per_s);
      Metric(&out, p + "predicted_tokens_seconds", "gauge", st.scrape_predicted_tokens_per_s);
      Metric(&out, p + "requests_processing", "gauge", st.slots_busy);
      Metric(&out, p + "requests_deferred", "gauge", st.deferred);
      if (flavor == Flavor::kLlamaCpp2024) {
        Metric(&out, p + "kv_cache_usage_ratio", "gauge", kv);
        Metric(&out, p + "kv_cache_tokens", "gauge", st.kv_tokens_used);
      }
      break;
    }
    case Flavor::kVllm: {
      const std::string l = absl::StrCat("model_name=\"", model, "\"");
      Metric(&out, "vllm:num_requests_running", "gauge", st.slots_busy, l);
      Metric(&out, "vllm:num_requests_waiting", "gauge", st.deferred, l);
      Metric(&out, "vllm:kv_cache_usage_perc", "gauge", kv, l);
      Metric(&out, "vllm:prompt_tokens_total", "counter", st.prompt_tokens_total, l);
      Metric(&out, "vllm:generation_tokens_total", "counter", st.tokens_decoded_live, l);
      Metric(&out, "vllm:request_success_total", "counter", st.requests_success,
             absl::StrCat("finished_reason=\"length\",", l));
      HistogramText(&out, "vllm:time_to_first_token_seconds", st.ttft_buckets, st.ttft_sum, l);
      HistogramText(&out, "vllm:e2e_request_latency_seconds", st.e2e_buckets, st.e2e_sum, l);
      HistogramText(&out, "vllm:request_prefill_time_seconds", st.prefill_buckets, st.prefill_sum, l);
      HistogramText(&out, "vllm:request_prompt_tokens", st.prompt_len_buckets, st.prompt_len_sum, l,
                    FakeEngine::TokenBuckets());
      break;
    }
    case Flavor::kSglang: {
      const std::string l = absl::StrCat("model_name=\"", model, "\"");
      Metric(&out, "sglang:num_running_reqs", "gauge", st.slots_busy, l);
      Metric(&out, "sglang:num_queue_reqs", "gauge", st.deferred, l);
      Metric(&out, "sglang:token_usage", "gauge", kv, l);
      Metric(&out, "sglang:num_used_tokens", "gauge", st.kv_tokens_used, l);
      Metric(&out, "sglang:max_total_num_tokens", "gauge", st.kv_tokens_total, l);
      Metric(&out, "sglang:prompt_tokens_total", "counter", st.prompt_tokens_total, l);
      Metric(&out, "sglang:generation_tokens_total", "counter", st.tokens_decoded_live, l);
      Metric(&out, "sglang:num_requests_total", "counter", st.requests_total, l);
      HistogramText(&out, "sglang:time_to_first_token_seconds", st.ttft_buckets, st.ttft_sum, l);
      HistogramText(&out, "sglang:e2e_request_latency_seconds", st.e2e_buckets, st.e2e_sum, l);
      break;
    }
    case Flavor::kTgi: {
      Metric(&out, "tgi_queue_size", "gauge", st.deferred);
      Metric(&out, "tgi_batch_current_size", "gauge", st.slots_busy);
      Metric(&out, "tgi_request_count", "counter", st.requests_total);
      Metric(&out, "tgi_request_success", "counter", st.requests_success);
      Metric(&out, "tgi_request_failure", "counter", st.requests_failed, "err=\"generation\"");
      HistogramText(&out, "tgi_request_duration", st.e2e_buckets, st.e2e_sum, "");
      // tgi_request_generated_tokens is a histogram of counts; its _sum is what matters.
      absl::StrAppendFormat(&out,
                            "# TYPE tgi_request_generated_tokens histogram\n"
                            "tgi_request_generated_tokens_bucket{le=\"+Inf\"} %.0f\n"
                            "tgi_request_generated_tokens_sum %.0f\n"
                            "tgi_request_generated_tokens_count %.0f\n",
                            st.requests_success, st.tokens_predicted_total, st.requests_success);
      break;
    }
  }
  return {200, out, "text/plain; version=0.0.4"};
}

HttpAnswer ModelsAnswer(Flavor flavor, const FakeEngine& engine) {
  const std::string& model = engine.options().model;
  switch (flavor) {
    case Flavor::kLlamaCpp:
    case Flavor::kLlamaCpp2024: {
      const std::string path = "/models/" + model + ".gguf";
      return Json(200, {{"models", json::array({{{"name", path}, {"model", path}}})},
                        {"object", "list"},
                        {"data", json::array({{{"id", path},
                                               {"object", "model"},
                                               {"owned_by", "llamacpp"},
                                               {"meta", {{"n_ctx_train", engine.options().n_ctx}}}}})}});
    }
    case Flavor::kVllm:
      return Json(200, {{"object", "list"},
                        {"data", json::array({{{"id", model},
                                               {"object", "model"},
                                               {"owned_by", "vllm"},
                                               {"max_model_len", engine.options().n_ctx}}})}});
    case Flavor::kSglang:
      return Json(200, {{"object", "list"},
                        {"data", json::array({{{"id", model}, {"object", "model"}, {"owned_by", "sglang"}}})}});
    case Flavor::kTgi:
      return Json(200, {{"object", "list"},
                        {"data", json::array({{{"id", model}, {"object", "model"}, {"owned_by", model}}})}});
  }
  return {404, ""};
}

HttpAnswer PropsAnswer(const FakeEngine& engine) {
  return Json(200, {{"default_generation_settings", {{"n_ctx", engine.options().n_ctx}}},
                    {"total_slots", engine.options().slots},
                    {"model_alias", engine.options().model},
                    {"model_path", "/models/" + engine.options().model + ".gguf"},
                    {"build_info", "fakellm"},
                    {"is_sleeping", false}});
}

HttpAnswer InfoAnswer(const FakeEngine& engine) {
  return Json(200, {{"model_id", engine.options().model},
                    {"max_concurrent_requests", engine.options().slots},
                    {"max_input_tokens", engine.options().n_ctx - 1},
                    {"max_total_tokens", engine.options().n_ctx},
                    {"version", "3.3.4"}});
}

HttpAnswer LoadAnswer(FakeEngine& engine) {
  FakeEngine::Stats st = engine.ReadStats(false);
  return Json(200, json::array({{{"dp_rank", 0}, {"num_reqs", st.slots_busy}, {"num_waiting_reqs", st.deferred}}}));
}

}  // namespace switchboard::fakellm
