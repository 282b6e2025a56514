#include "agent/probe/llamacpp_probe.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/prometheus_text.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace switchboard::agent {
namespace {

using json = nlohmann::json;

}  // namespace

std::string HttpFailure(const std::string& path, const HttpResponse& r) {
  if (!r.error.empty()) return absl::StrCat(path, ": ", r.error);
  std::string excerpt = r.body.substr(0, 120);
  for (char& c : excerpt) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return absl::StrCat(path, ": HTTP ", r.status, excerpt.empty() ? "" : absl::StrCat(" ", excerpt));
}

namespace {

std::optional<json> ParseJson(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

// Larger than any count, id or token total a server reports, and exact as a double; keeps
// sums and differences of two fields far from int64's limits.
constexpr int64_t kMaxField = int64_t{1} << 53;

// A non-negative integer field no larger than kMaxField, or nullopt if missing, of another
// type or out of that range (a double past int64's range converts to undefined behaviour).
std::optional<int64_t> IntField(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return std::nullopt;
  const json& v = j[key];
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    return u <= static_cast<uint64_t>(kMaxField) ? std::optional<int64_t>(static_cast<int64_t>(u)) : std::nullopt;
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    return i >= 0 && i <= kMaxField ? std::optional<int64_t>(i) : std::nullopt;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    return d >= 0 && d <= static_cast<double>(kMaxField) ? std::optional<int64_t>(static_cast<int64_t>(d))
                                                         : std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::string CleanModelName(const std::string& id) {
  std::string name = id;
  size_t slash = name.find_last_of('/');
  if (slash != std::string::npos && slash + 1 < name.size()) name = name.substr(slash + 1);
  if (absl::EndsWithIgnoreCase(name, ".gguf")) name.resize(name.size() - 5);
  return name.empty() ? id : name;
}

std::string LlamaCppProbe::PollOnce(absl::Time now, v1::EndpointReport* out, bool* loading) {
  const std::string& base = options_.base_url;
  HttpResponse health = http_->Get(base + "/health", options_.timeout);
  if (!health.error.empty()) return HttpFailure("/health", health);
  if (health.status == 503 && absl::StrContains(health.body, "Loading model")) {
    *loading = true;
    out->mutable_models()->Assign(models_.begin(), models_.end());
    out->set_slots_total(total_slots_);
    return "";
  }
  std::optional<json> hj = ParseJson(health.body);
  if (health.status != 200 || !hj || !hj->is_object()) {
    return health.status == 200 ? "/health: body is not a JSON object" : HttpFailure("/health", health);
  }
  // 2024 builds: {"status":"ok"|"no slot available","slots_idle":N,"slots_processing":M}.
  std::optional<int64_t> h_idle = IntField(*hj, "slots_idle");
  std::optional<int64_t> h_busy = IntField(*hj, "slots_processing");

  if (total_slots_ == 0) {
    if (std::string e = FetchProps(); !e.empty()) return e;
  }
  if (models_.empty()) {
    if (std::string e = FetchModels(); !e.empty()) return e;
  }
  out->mutable_models()->Assign(models_.begin(), models_.end());
  out->set_slots_total(total_slots_);

  bool have_load = false;
  bool kv_gauge = false;
  if (metrics_supported_) {
    bool unsupported = false;
    if (std::string e = ReadMetrics(now, out, &unsupported, &kv_gauge); !e.empty()) return e;
    if (unsupported) {
      metrics_supported_ = false;
    } else {
      have_load = true;
    }
  }
  if (have_load && (out->slots_busy() > 0 || last_busy_ > 0) && slots_supported_) {
    // /slots for the finished requests (llama.cpp counts none) and, in current builds,
    // which export no KV gauge, the KV estimate; only while busy and once more as the
    // slots empty, to count the last requests (polling /slots costs the server; see
    // inference-servers.md).
    bool unsupported = false;
    if (std::string e = ReadSlots(now, /*busy_known=*/true, /*estimate_kv=*/!kv_gauge, out, &unsupported); !e.empty()) {
      return e;
    }
    if (unsupported) slots_supported_ = false;
  }
  if (!have_load && slots_supported_) {
    bool unsupported = false;
    if (std::string e = ReadSlots(now, /*busy_known=*/false, /*estimate_kv=*/true, out, &unsupported); !e.empty()) {
      return e;
    }
    if (unsupported) {
      slots_supported_ = false;
    } else {
      have_load = true;
    }
  }
  if (!have_load && h_busy) {
    // Bounded before the casts; the busy > total check below rejects what is still absurd.
    constexpr int64_t kMaxSlots = 65536;
    out->set_slots_busy(static_cast<uint32_t>(std::min(*h_busy, kMaxSlots + 1)));
    if (total_slots_ == 0 && h_idle) {
      out->set_slots_total(static_cast<uint32_t>(std::min(*h_idle + *h_busy, kMaxSlots)));
    }
  }
  if (out->slots_busy() > out->slots_total()) {
    return absl::StrCat("server reports ", out->slots_busy(), " busy slots of ", out->slots_total());
  }
  last_busy_ = out->slots_busy();
  // Zero means "no counter" to the control plane: report the count once there is one.
  if (finished_requests_ > 0) out->set_requests_total(finished_requests_);
  return "";
}

std::string LlamaCppProbe::FetchProps() {
  HttpResponse r = http_->Get(options_.base_url + "/props", options_.timeout);
  if (r.status != 200) return HttpFailure("/props", r);
  std::optional<json> j = ParseJson(r.body);
  if (!j || !j->is_object()) return "/props: body is not a JSON object";
  std::optional<int64_t> total = IntField(*j, "total_slots");
  if (!total || *total <= 0 || *total > 65536) return "/props: total_slots missing or absurd";
  total_slots_ = static_cast<uint32_t>(*total);
  return "";
}

std::string LlamaCppProbe::FetchModels() {
  HttpResponse r = http_->Get(options_.base_url + "/v1/models", options_.timeout);
  if (r.status != 200) return HttpFailure("/v1/models", r);
  std::optional<json> j = ParseJson(r.body);
  if (!j || !j->is_object() || !j->contains("data") || !(*j)["data"].is_array()) {
    return "/v1/models: no data[] list";
  }
  std::vector<std::string> models;
  for (const json& m : (*j)["data"]) {
    if (m.is_object() && m.contains("id") && m["id"].is_string() && !m["id"].get<std::string>().empty()) {
      models.push_back(CleanModelName(m["id"].get<std::string>()));
    }
  }
  if (models.empty()) return "/v1/models: no model ids";
  models_ = std::move(models);
  return "";
}

std::string LlamaCppProbe::ReadMetrics(absl::Time now, v1::EndpointReport* out, bool* unsupported, bool* kv_gauge) {
  HttpResponse r = http_->Get(options_.base_url + "/metrics", options_.timeout);
  if (r.status == 501 || r.status == 404) {
    *unsupported = true;
    return "";
  }
  if (r.status != 200) return HttpFailure("/metrics", r);
  absl::StatusOr<PromScrape> scrape = PromScrape::Parse(r.body);
  if (!scrape.ok()) return absl::StrCat("/metrics: ", scrape.status().message());
  std::optional<double> processing = scrape->Value("llamacpp:requests_processing");
  std::optional<double> deferred = scrape->Value("llamacpp:requests_deferred");
  // Bounded before the cast: a double past uint32's range converts to undefined behaviour.
  constexpr double kMaxCount = 1e7;
  if (!processing || !deferred || !std::isfinite(*processing) || !std::isfinite(*deferred) || *processing < 0 ||
      *deferred < 0 || *processing > kMaxCount || *deferred > kMaxCount) {
    return "/metrics: requests_processing / requests_deferred missing or invalid";
  }
  out->set_slots_busy(static_cast<uint32_t>(*processing));
  out->set_queue_depth(static_cast<uint32_t>(*deferred));
  std::optional<double> kv = scrape->Value("llamacpp:kv_cache_usage_ratio");
  *kv_gauge = kv && *kv >= 0 && *kv <= 1;
  if (*kv_gauge) out->set_kv_cache_usage(*kv);  // 2024 builds only.

  // Rates from counters. They grow only when a request finishes (llama.cpp), so a rate
  // is per finished work.
  if (std::optional<CounterPair::Growth> g =
          decode_counters_.Update(now, scrape->Value("llamacpp:tokens_predicted_total"),
                                  scrape->Value("llamacpp:tokens_predicted_seconds_total"))) {
    if (g->seconds > 0) out->set_tokens_per_second(g->first / g->seconds);
    if (g->Ratio() > 0) slot_tokens_per_second_ = g->Ratio();
  }
  out->set_slot_tokens_per_second(slot_tokens_per_second_);

  // Prefill speed: prompt tokens over the time spent on prompts, between two scrapes.
  if (std::optional<CounterPair::Growth> g = prefill_counters_.Update(
          now, scrape->Value("llamacpp:prompt_tokens_total"), scrape->Value("llamacpp:prompt_seconds_total"));
      g && g->Ratio() > 0) {
    prefill_tokens_per_second_ = g->Ratio();
  }
  out->set_prefill_tokens_per_second(prefill_tokens_per_second_);
  return "";
}

std::string LlamaCppProbe::ReadSlots(absl::Time now, bool busy_known, bool estimate_kv, v1::EndpointReport* out,
                                     bool* unsupported) {
  HttpResponse r = http_->Get(options_.base_url + "/slots", options_.timeout);
  if (r.status == 501 || r.status == 404) {
    *unsupported = true;
    return "";
  }
  if (r.status != 200) return HttpFailure("/slots", r);
  std::optional<json> j = ParseJson(r.body);
  if (!j || !j->is_array()) return "/slots: body is not a JSON array";
  uint32_t busy = 0;
  double used_tokens = 0, ctx_tokens = 0;
  double decoded_delta = 0, decoding_slots = 0;
  std::map<int64_t, std::pair<int64_t, int64_t>> progress;  // slot id -> (task id, n_decoded)
  std::map<int64_t, SlotTask> tasks;
  for (const json& slot : *j) {
    if (!slot.is_object()) return "/slots: entry is not an object";
    bool processing = false;
    if (slot.contains("is_processing") && slot["is_processing"].is_boolean()) {
      processing = slot["is_processing"].get<bool>();
    } else if (std::optional<int64_t> state = IntField(slot, "state")) {
      processing = *state != 0;  // Before Nov 2024: 0 idle, else busy.
    } else {
      return "/slots: slot has neither is_processing nor state";
    }
    busy += processing ? 1 : 0;
    if (std::optional<int64_t> n_ctx = IntField(slot, "n_ctx"); n_ctx && *n_ctx > 0) {
      ctx_tokens += static_cast<double>(*n_ctx);
      if (processing) {
        // n_prompt_tokens counts the prompt plus the tokens generated so far.
        if (std::optional<int64_t> used = IntField(slot, "n_prompt_tokens"); used && *used > 0) {
          used_tokens += static_cast<double>(*used);
        }
      }
    }
    // Decode progress: next_token is an array of one object (code) or an object (README).
    std::optional<int64_t> id = IntField(slot, "id"), task = IntField(slot, "id_task");
    if (id) {
      // Finished requests: the task seen running is gone (the slot idle or on another
      // task), and a task id not seen before on an idle slot started and ended unseen.
      SlotTask now_task{task, processing};
      if (auto prev = slot_tasks_.find(*id); prev != slot_tasks_.end()) {
        const bool changed = task && task != prev->second.task;
        if (prev->second.processing && (changed || !processing)) ++finished_requests_;
        if (changed && !processing) ++finished_requests_;
      }
      tasks[*id] = now_task;
    }
    if (processing && id && task && slot.contains("next_token")) {
      const json& nt =
          slot["next_token"].is_array() && !slot["next_token"].empty() ? slot["next_token"][0] : slot["next_token"];
      if (std::optional<int64_t> decoded = IntField(nt, "n_decoded")) {
        progress[*id] = {*task, *decoded};
        auto prev = slot_progress_.find(*id);
        if (prev != slot_progress_.end() && prev->second.first == *task && *decoded > prev->second.second) {
          decoded_delta += static_cast<double>(*decoded - prev->second.second);
          decoding_slots += 1;
        }
      }
    }
  }
  if (slot_progress_at_ && decoding_slots > 0) {
    const double dt = absl::ToDoubleSeconds(now - *slot_progress_at_);
    if (dt > 0) slot_tokens_per_second_ = decoded_delta / decoding_slots / dt;
  }
  slot_progress_ = std::move(progress);
  slot_progress_at_ = now;
  slot_tasks_ = std::move(tasks);
  if (ctx_tokens > 0 && estimate_kv) {
    out->set_kv_cache_usage(std::min(1.0, used_tokens / ctx_tokens));
    out->set_kv_cache_estimated(true);
  }
  if (busy_known) return "";
  if (total_slots_ == 0) out->set_slots_total(static_cast<uint32_t>(j->size()));
  out->set_slots_busy(busy);
  out->set_slot_tokens_per_second(slot_tokens_per_second_);
  return "";
}

}  // namespace switchboard::agent
