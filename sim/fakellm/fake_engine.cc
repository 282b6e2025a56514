#include "sim/fakellm/fake_engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace switchboard::fakellm {

int EstimateTokens(const std::string& text) { return std::max<int>(1, static_cast<int>(text.size() + 3) / 4); }

FakeEngine::FakeEngine(FakeEngineOptions options)
    : options_(std::move(options)), started_(absl::Now()), slots_(std::max(1, options_.slots)) {}

bool FakeEngine::Ready() const { return absl::Now() - started_ >= options_.startup_delay; }

void FakeEngine::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

bool FakeEngine::stopped() const {
  absl::MutexLock lock(&mu_);
  return stopped_;
}

void FakeEngine::WaitUntilStopped() const {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&stopped_));
}

int FakeEngine::idle_slots() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.busy; }));
}

int FakeEngine::AcquireSlot(int prompt_tokens, int max_tokens) {
  absl::MutexLock lock(&mu_);
  const uint64_t ticket = next_ticket_++;
  ++deferred_;
  auto can_go = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stopped_) return true;
    if (ticket != serving_ticket_) return false;
    return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.busy; });
  };
  mu_.Await(absl::Condition(&can_go));
  --deferred_;
  ++serving_ticket_;
  if (stopped_) return -1;
  int id = 0;
  while (slots_[id].busy) ++id;
  Slot& s = slots_[id];
  s = Slot();
  s.busy = true;
  s.task_id = next_task_id_++;
  s.prompt_tokens = prompt_tokens;
  s.max_tokens = max_tokens;
  return id;
}

bool FakeEngine::SleepUntil(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  // Emulating compute time is this program's job; Stop() cuts it short.
  mu_.AwaitWithDeadline(absl::Condition(&stopped_), deadline);
  return !stopped_;
}

bool FakeEngine::Prefill(int slot) {
  absl::Duration d;
  {
    absl::MutexLock lock(&mu_);
    d = absl::Seconds(slots_[slot].prompt_tokens / std::max(1e-3, options_.prefill_tokens_per_second));
  }
  const absl::Time start = absl::Now();
  if (!SleepUntil(start + d)) return false;
  absl::MutexLock lock(&mu_);
  slots_[slot].prefill_time = absl::Now() - start;
  slots_[slot].next_token_at = absl::Now();
  return true;
}

bool FakeEngine::DecodeToken(int slot) {
  absl::Time due;
  {
    absl::MutexLock lock(&mu_);
    due = slots_[slot].next_token_at + absl::Seconds(1.0 / std::max(1e-3, options_.tokens_per_second));
  }
  if (!SleepUntil(due)) return false;
  absl::MutexLock lock(&mu_);
  Slot& s = slots_[slot];
  s.decode_time += due - s.next_token_at;
  s.next_token_at = due;
  ++s.decoded;
  n_decode_total_ += 1;
  return true;
}

void FakeEngine::ReleaseSlot(int slot) {
  absl::MutexLock lock(&mu_);
  Slot& s = slots_[slot];
  const double prefill_s = absl::ToDoubleSeconds(s.prefill_time);
  const double decode_s = absl::ToDoubleSeconds(s.decode_time);
  prompt_tokens_total_ += s.prompt_tokens;
  prompt_seconds_total_ += prefill_s;
  tokens_predicted_total_ += s.decoded;
  tokens_predicted_seconds_total_ += decode_s;
  scrape_prompt_tokens_ += s.prompt_tokens;
  scrape_prompt_seconds_ += prefill_s;
  scrape_predicted_tokens_ += s.decoded;
  scrape_predicted_seconds_ += decode_s;
  n_tokens_max_ = std::max<int64_t>(n_tokens_max_, s.prompt_tokens + s.decoded);
  s.busy = false;
}

std::string FakeEngine::MetricsText() {
  absl::MutexLock lock(&mu_);
  int busy = 0;
  for (const Slot& s : slots_) busy += s.busy ? 1 : 0;
  auto rate = [](double tokens, double seconds) { return seconds > 0 ? tokens / seconds : 0.0; };
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, double value) {
    absl::StrAppendFormat(&out, "# HELP llamacpp:%s %s\n# TYPE llamacpp:%s %s\nllamacpp:%s %.6g\n", name,
                          help, name, type, name, value);
  };
  metric("prompt_tokens_total", "counter", "Number of prompt tokens processed", prompt_tokens_total_);
  metric("prompt_seconds_total", "counter", "Total time spent processing prompts", prompt_seconds_total_);
  metric("tokens_predicted_total", "counter", "Number of generation tokens processed", tokens_predicted_total_);
  metric("tokens_predicted_seconds_total", "counter", "Total time spent generating tokens",
         tokens_predicted_seconds_total_);
  metric("n_decode_total", "counter", "Total number of llama_decode() calls", n_decode_total_);
  metric("n_tokens_max", "counter", "Largest observed sequence length", static_cast<double>(n_tokens_max_));
  metric("prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s",
         rate(scrape_prompt_tokens_, scrape_prompt_seconds_));
  metric("predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s",
         rate(scrape_predicted_tokens_, scrape_predicted_seconds_));
  metric("requests_processing", "gauge", "Number of requests processing", busy);
  metric("requests_deferred", "gauge", "Number of requests deferred", deferred_);
  // As in llama.cpp, each scrape resets the per-scrape throughput gauges.
  scrape_prompt_tokens_ = scrape_prompt_seconds_ = scrape_predicted_tokens_ = scrape_predicted_seconds_ = 0;
  return out;
}

std::string FakeEngine::SlotsJson() const {
  absl::MutexLock lock(&mu_);
  nlohmann::json slots = nlohmann::json::array();
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    nlohmann::json j = {{"id", i}, {"n_ctx", options_.n_ctx}, {"speculative", false}, {"is_processing", s.busy}};
    if (s.task_id > 0 || s.busy) {
      j["id_task"] = s.task_id;
      j["n_prompt_tokens"] = s.prompt_tokens + s.decoded;
      j["n_prompt_tokens_processed"] = s.prompt_tokens;
      j["n_prompt_tokens_cache"] = 0;
      j["params"] = {{"n_predict", s.max_tokens}};
      j["next_token"] = nlohmann::json::array(
          {{{"has_next_token", s.busy}, {"n_remain", s.max_tokens - s.decoded}, {"n_decoded", s.decoded}}});
    }
    slots.push_back(std::move(j));
  }
  return slots.dump();
}

std::string FakeEngine::PropsJson() const {
  nlohmann::json j = {
      {"default_generation_settings", {{"n_ctx", options_.n_ctx}, {"params", {{"n_predict", -1}}}}},
      {"total_slots", options_.slots},
      {"model_alias", options_.model},
      {"model_path", "/models/" + options_.model + ".gguf"},
      {"build_info", "fakellm"},
      {"endpoint_slots", true},
      {"endpoint_metrics", true},
      {"is_sleeping", false}};
  return j.dump();
}

std::string FakeEngine::ModelsJson() const {
  const std::string path = "/models/" + options_.model + ".gguf";
  nlohmann::json j = {
      {"models", nlohmann::json::array({{{"name", path}, {"model", path}}})},
      {"object", "list"},
      {"data", nlohmann::json::array({{{"id", path},
                                       {"object", "model"},
                                       {"owned_by", "llamacpp"},
                                       {"meta", {{"n_ctx_train", options_.n_ctx}}}}})}};
  return j.dump();
}

}  // namespace switchboard::fakellm
