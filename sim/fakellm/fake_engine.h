// FakeEngine: the slot model behind switchboard-fakellm. N slots; a request takes a free
// slot or waits in a FIFO queue (llama.cpp's "deferred" requests), spends
// prompt_tokens / prefill_tokens_per_second on prefill, then emits one token every
// 1 / tokens_per_second seconds. Time is real: slots really fill and drain, so the
// agent and control plane see what they would see on a GPU server.
// Thread-safe: every HTTP handler thread calls in.
#ifndef SWITCHBOARD_SIM_FAKELLM_FAKE_ENGINE_H_
#define SWITCHBOARD_SIM_FAKELLM_FAKE_ENGINE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace switchboard::fakellm {

struct FakeEngineOptions {
  std::string model = "llama-3-8b";
  int slots = 4;
  int n_ctx = 4096;                          // Context per slot, in tokens.
  double tokens_per_second = 30;             // Decode speed of one sequence.
  double prefill_tokens_per_second = 2000;
  absl::Duration startup_delay = absl::ZeroDuration();
};

class FakeEngine {
 public:
  explicit FakeEngine(FakeEngineOptions options);

  const FakeEngineOptions& options() const { return options_; }
  // False until startup_delay has passed ("Loading model").
  bool Ready() const;
  // Ends every wait and generation early (shutdown).
  void Stop();
  bool stopped() const;
  // Blocks until Stop (the "hang" fault).
  void WaitUntilStopped() const;

  // Blocks until a slot is free (or Stop); returns its id, or -1 when stopped.
  int AcquireSlot(int prompt_tokens, int max_tokens);
  // Sleeps through prefill; false when stopped.
  bool Prefill(int slot);
  // Sleeps until the next token is due and counts it; false when stopped.
  bool DecodeToken(int slot);
  // Frees the slot and adds the request to the counters (as llama.cpp does, only when a
  // request finishes).
  void ReleaseSlot(int slot);

  std::string MetricsText();   // Prometheus text, llama.cpp names.
  std::string SlotsJson() const;
  std::string PropsJson() const;
  std::string ModelsJson() const;
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
  };

  bool SleepUntil(absl::Time deadline);  // false when stopped

  const FakeEngineOptions options_;
  const absl::Time started_;
  mutable absl::Mutex mu_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  int deferred_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 0;   // FIFO order of waiting requests.
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
