// FakeEngine: the slot model behind switchboard-fakellm. N slots; a request takes a free
// slot or waits in a FIFO queue (llama.cpp's "deferred" requests), spends
// prompt_tokens / prefill_tokens_per_second on prefill, then emits one token every
// 1 / tokens_per_second seconds. Time is the injected clock's (real in the binary:
// slots really fill and drain, so the agent and control plane see what they would see
// on a GPU server). Every absl::Time here is monotonic.
// Thread-safe: every HTTP handler thread calls in.
#ifndef SWITCHBOARD_SIM_FAKELLM_FAKE_ENGINE_H_
#define SWITCHBOARD_SIM_FAKELLM_FAKE_ENGINE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mutex.h"

namespace switchboard::fakellm {

struct FakeEngineOptions {
  std::string model = "llama-3-8b";
  int slots = 4;
  int n_ctx = 4096;               // Context per slot, in tokens.
  double tokens_per_second = 30;  // Decode speed of one sequence.
  double prefill_tokens_per_second = 2000;
  absl::Duration startup_delay = absl::ZeroDuration();
};

class FakeEngine {
 public:
  // `clock` must outlive the engine.
  explicit FakeEngine(FakeEngineOptions options, const Clock* clock = SystemClock::Get());

  const FakeEngineOptions& options() const { return options_; }
  const Clock& clock() const { return *clock_; }
  // False until startup_delay has passed ("Loading model").
  bool Ready() const;
  // Ends every wait and generation early (shutdown).
  void Stop();
  bool stopped() const;
  // Blocks until Stop (the "hang" fault).
  void WaitUntilStopped() const;

  // Blocks until a slot is free (or Stop); returns its id, or -1 when stopped.
  // `arrived` is when the request reached the server (for TTFT and end-to-end latency).
  int AcquireSlot(int prompt_tokens, int max_tokens, absl::Time arrived);
  // Sleeps through prefill; false when stopped.
  bool Prefill(int slot);
  // Sleeps until the next token is due and counts it; false when stopped.
  bool DecodeToken(int slot);
  // Frees the slot and adds the request to the counters (as llama.cpp does, only when a
  // request finishes).
  void ReleaseSlot(int slot);

  // Counts a request answered with an error (HTTP 5xx) without running it.
  void RecordFailure();

  // Bucket bounds (seconds) of the latency histograms, +Inf implied.
  static const std::vector<double>& LatencyBuckets();
  // Bucket bounds (tokens) of the prompt-length histogram, +Inf implied.
  static const std::vector<double>& TokenBuckets();

  // Everything an engine's /metrics shows, read at once.
  struct Stats {
    int slots_busy = 0;
    int deferred = 0;
    double kv_tokens_used = 0;   // Prompt + decoded tokens of busy slots.
    double kv_tokens_total = 0;  // slots x n_ctx.
    double prompt_tokens_total = 0, prompt_seconds_total = 0;
    double tokens_predicted_total = 0, tokens_predicted_seconds_total = 0;
    // Every token decoded so far, including unfinished requests (vLLM-style counters
    // grow per step; llama.cpp's only when a request ends).
    double tokens_decoded_live = 0;
    double n_decode_total = 0;
    int64_t n_tokens_max = 0;
    double requests_total = 0, requests_success = 0, requests_failed = 0;
    // Per-scrape throughput (llama.cpp's *_tokens_seconds gauges).
    double scrape_prompt_tokens_per_s = 0, scrape_predicted_tokens_per_s = 0;
    // Cumulative bucket counts (one per LatencyBuckets() bound, then +Inf), sum.
    std::vector<double> ttft_buckets, e2e_buckets, prefill_buckets;
    double ttft_sum = 0, e2e_sum = 0, prefill_sum = 0;
    // Prompt lengths of finished requests (TokenBuckets() bounds, then +Inf), sum.
    std::vector<double> prompt_len_buckets;
    double prompt_len_sum = 0;
  };
  // `reset_scrape`: reset the per-scrape gauges, as a llama.cpp scrape does.
  Stats ReadStats(bool reset_scrape);

  std::string SlotsJson(bool legacy_state) const;
  int idle_slots() const;

 private:
  struct Slot {
    bool busy = false;
    int64_t task_id = 0;
    int prompt_tokens = 0;
    int max_tokens = 0;
    int decoded = 0;
    absl::Time next_token_at;
    absl::Duration prefill_time;
    absl::Duration decode_time;
    absl::Time arrived;
  };
  static void Observe(const std::vector<double>& bounds, std::vector<double>* buckets, double* sum, double value);

  bool SleepUntil(absl::Time deadline);  // false when stopped

  const FakeEngineOptions options_;
  const Clock* const clock_;
  const absl::Time started_;
  mutable Mutex mu_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  int deferred_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 0;  // FIFO order of waiting requests.
  uint64_t serving_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_task_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Cumulative counters (llama.cpp semantics).
  double prompt_tokens_total_ ABSL_GUARDED_BY(mu_) = 0;
  double prompt_seconds_total_ ABSL_GUARDED_BY(mu_) = 0;
  double tokens_predicted_total_ ABSL_GUARDED_BY(mu_) = 0;
  double tokens_predicted_seconds_total_ ABSL_GUARDED_BY(mu_) = 0;
  double n_decode_total_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t n_tokens_max_ ABSL_GUARDED_BY(mu_) = 0;
  double requests_total_ ABSL_GUARDED_BY(mu_) = 0;
  double requests_success_ ABSL_GUARDED_BY(mu_) = 0;
  double requests_failed_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<double> ttft_buckets_ ABSL_GUARDED_BY(mu_);
  std::vector<double> e2e_buckets_ ABSL_GUARDED_BY(mu_);
  double ttft_sum_ ABSL_GUARDED_BY(mu_) = 0;
  double e2e_sum_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<double> prefill_buckets_ ABSL_GUARDED_BY(mu_);  // Seconds, per finished request.
  double prefill_sum_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<double> prompt_len_buckets_ ABSL_GUARDED_BY(mu_);  // Tokens, per finished request.
  double prompt_len_sum_ ABSL_GUARDED_BY(mu_) = 0;
  // For the *_tokens_seconds gauges, which reset at every scrape.
  double scrape_prompt_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  double scrape_prompt_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  double scrape_predicted_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  double scrape_predicted_seconds_ ABSL_GUARDED_BY(mu_) = 0;
};

// Rough token count of a text (about 4 characters per token), at least 1.
int EstimateTokens(const std::string& text);

}  // namespace switchboard::fakellm

#endif  // SWITCHBOARD_SIM_FAKELLM_FAKE_ENGINE_H_
