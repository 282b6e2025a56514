#include "sim/fakellm/fake_engine.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace switchboard::fakellm {

int EstimateTokens(const std::string& text) { return std::max<int>(1, static_cast<int>(text.size() + 3) / 4); }

FakeEngine::FakeEngine(FakeEngineOptions options, const Clock* clock)
    : options_(std::move(options)),
      clock_(clock),
      started_(clock_->MonotonicNow()),
      slots_(std::max(1, options_.slots)),
      ttft_buckets_(LatencyBuckets().size() + 1, 0),
      e2e_buckets_(LatencyBuckets().size() + 1, 0),
      prefill_buckets_(LatencyBuckets().size() + 1, 0),
      prompt_len_buckets_(TokenBuckets().size() + 1, 0) {}

const std::vector<double>& FakeEngine::LatencyBuckets() {
  static const std::vector<double>* buckets = new std::vector<double>{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80};
  return *buckets;
}

const std::vector<double>& FakeEngine::TokenBuckets() {
  static const std::vector<double>* buckets =
      new std::vector<double>{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000};
  return *buckets;
}

void FakeEngine::Observe(const std::vector<double>& bounds, std::vector<double>* buckets, double* sum, double value) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (value <= bounds[i]) (*buckets)[i] += 1;
  }
  buckets->back() += 1;  // +Inf
  *sum += value;
}

void FakeEngine::RecordFailure() {
  MutexLock lock(&mu_);
  requests_total_ += 1;
  requests_failed_ += 1;
}

bool FakeEngine::Ready() const { return clock_->MonotonicNow() - started_ >= options_.startup_delay; }

void FakeEngine::Stop() {
  MutexLock lock(&mu_);
  stopped_ = true;
}

bool FakeEngine::stopped() const {
  MutexLock lock(&mu_);
  return stopped_;
}

void FakeEngine::WaitUntilStopped() const {
  MutexLock lock(&mu_);
  mu_.Await(Condition(&stopped_));
}

int FakeEngine::idle_slots() const {
  MutexLock lock(&mu_);
  return static_cast<int>(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.busy; }));
}

int FakeEngine::AcquireSlot(int prompt_tokens, int max_tokens, absl::Time arrived) {
  MutexLock lock(&mu_);
  const uint64_t ticket = next_ticket_++;
  ++deferred_;
  auto can_go = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (stopped_) return true;
    if (ticket != serving_ticket_) return false;
    return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.busy; });
  };
  mu_.Await(Condition(&can_go));
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
  s.arrived = arrived;
  return id;
}

bool FakeEngine::SleepUntil(absl::Time deadline) {
  MutexLock lock(&mu_);
  // Emulating compute time is this program's job; Stop() cuts it short.
  clock_->AwaitWithDeadline(&mu_, Condition(&stopped_), deadline);
  return !stopped_;
}

bool FakeEngine::Prefill(int slot) {
  absl::Duration d;
  {
    MutexLock lock(&mu_);
    d = absl::Seconds(slots_[slot].prompt_tokens / std::max(1e-3, options_.prefill_tokens_per_second));
  }
  const absl::Time start = clock_->MonotonicNow();
  if (!SleepUntil(start + d)) return false;
  const absl::Time end = clock_->MonotonicNow();
  MutexLock lock(&mu_);
  slots_[slot].prefill_time = end - start;
  slots_[slot].next_token_at = end;
  return true;
}

bool FakeEngine::DecodeToken(int slot) {
  absl::Time due;
  {
    MutexLock lock(&mu_);
    due = slots_[slot].next_token_at + absl::Seconds(1.0 / std::max(1e-3, options_.tokens_per_second));
  }
  if (!SleepUntil(due)) return false;
  MutexLock lock(&mu_);
  Slot& s = slots_[slot];
  s.decode_time += due - s.next_token_at;
  s.next_token_at = due;
  ++s.decoded;
  if (s.decoded == 1) Observe(LatencyBuckets(), &ttft_buckets_, &ttft_sum_, absl::ToDoubleSeconds(due - s.arrived));
  n_decode_total_ += 1;
  return true;
}

void FakeEngine::ReleaseSlot(int slot) {
  MutexLock lock(&mu_);
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
  requests_total_ += 1;
  requests_success_ += 1;
  Observe(LatencyBuckets(), &e2e_buckets_, &e2e_sum_, absl::ToDoubleSeconds(clock_->MonotonicNow() - s.arrived));
  Observe(LatencyBuckets(), &prefill_buckets_, &prefill_sum_, prefill_s);
  Observe(TokenBuckets(), &prompt_len_buckets_, &prompt_len_sum_, s.prompt_tokens);
  s.busy = false;
}

FakeEngine::Stats FakeEngine::ReadStats(bool reset_scrape) {
  MutexLock lock(&mu_);
  Stats st;
  for (const Slot& s : slots_) {
    if (!s.busy) continue;
    ++st.slots_busy;
    st.kv_tokens_used += s.prompt_tokens + s.decoded;
  }
  st.kv_tokens_total = static_cast<double>(slots_.size()) * options_.n_ctx;
  st.deferred = deferred_;
  st.prompt_tokens_total = prompt_tokens_total_;
  st.prompt_seconds_total = prompt_seconds_total_;
  st.tokens_predicted_total = tokens_predicted_total_;
  st.tokens_predicted_seconds_total = tokens_predicted_seconds_total_;
  st.n_decode_total = n_decode_total_;
  st.tokens_decoded_live = n_decode_total_;  // One decode call per token here.
  st.n_tokens_max = n_tokens_max_;
  st.requests_total = requests_total_;
  st.requests_success = requests_success_;
  st.requests_failed = requests_failed_;
  auto rate = [](double tokens, double seconds) { return seconds > 0 ? tokens / seconds : 0.0; };
  st.scrape_prompt_tokens_per_s = rate(scrape_prompt_tokens_, scrape_prompt_seconds_);
  st.scrape_predicted_tokens_per_s = rate(scrape_predicted_tokens_, scrape_predicted_seconds_);
  st.ttft_buckets = ttft_buckets_;
  st.e2e_buckets = e2e_buckets_;
  st.ttft_sum = ttft_sum_;
  st.e2e_sum = e2e_sum_;
  st.prefill_buckets = prefill_buckets_;
  st.prefill_sum = prefill_sum_;
  st.prompt_len_buckets = prompt_len_buckets_;
  st.prompt_len_sum = prompt_len_sum_;
  if (reset_scrape) {
    scrape_prompt_tokens_ = scrape_prompt_seconds_ = scrape_predicted_tokens_ = scrape_predicted_seconds_ = 0;
  }
  return st;
}

std::string FakeEngine::SlotsJson(bool legacy_state) const {
  MutexLock lock(&mu_);
  nlohmann::json slots = nlohmann::json::array();
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    nlohmann::json j = {{"id", i}, {"n_ctx", options_.n_ctx}, {"speculative", false}};
    if (legacy_state) {
      j["state"] = s.busy ? 1 : 0;  // Before Nov 2024 (b4027).
    } else {
      j["is_processing"] = s.busy;
    }
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

}  // namespace switchboard::fakellm
