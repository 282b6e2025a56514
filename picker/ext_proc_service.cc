#include "picker/ext_proc_service.h"

#include <malloc.h>

#include <deque>
#include <optional>

#include "common/mutex.h"

namespace switchboard::picker {
namespace {

class ProcessReactor final : public grpc::ServerBidiReactor<ext_proc::ProcessingRequest, ext_proc::ProcessingResponse> {
 public:
  ProcessReactor(PoolTable* table, const ExchangeOptions* options, PickerMetrics* metrics)
      : exchange_(table, options, metrics), options_(options), metrics_(metrics) {
    metrics_->streams->Increment();
    exchange_.set_on_release([this](client::PickResult result) { Released(std::move(result)); });
    StartRead(&request_);
  }

  // Reads are one at a time, and none is started while the exchange awaits the rate
  // limits, so the exchange is only ever touched by one callback.
  void OnReadDone(bool ok) override {
    if (!ok) {  // Envoy half-closed (or the stream broke): finish once the answers are out.
      {
        MutexLock lock(&mu_);
        reads_done_ = true;
      }
      Pump();
      return;
    }
    Queue(exchange_.Handle(request_));
    Continue();
  }

  // After the exchange took a message or a verdict: the next read, or a wait.
  void Continue() {
    if (exchange_.awaiting_release()) {
      // Held in its class's queue: no read until the table releases it (at the latest at
      // the class's deadline, or when the picker closes its queues), which may have
      // happened already on another thread.
      std::optional<client::PickResult> released;
      {
        MutexLock lock(&mu_);
        held_waiting_ = true;
        if (!released_.has_value()) return;
        released.swap(released_);
        held_waiting_ = false;
      }
      Queue(exchange_.ResumeHeld(*released));
      Continue();
      return;
    }
    if (!exchange_.awaiting_rate_limit()) {
      StartRead(&request_);
      return;
    }
    // The pick waits for the rate limits; so does this stream's next read (the exchange
    // takes no message meanwhile), but no thread waits: the answer resumes the stream.
    // The call has a deadline, so the reactor (which cannot end while a read is not
    // started again) always hears back.
    options_->rate_limits->CheckAsync(exchange_.rate_limit_keys(), [this](RateLimitVerdict verdict) {
      Queue(exchange_.Resume(verdict));
      Continue();
    });
  }

  // The table released the held request (any thread): resume now if the exchange is
  // waiting for it, else Continue finds it.
  void Released(client::PickResult result) {
    {
      MutexLock lock(&mu_);
      if (!held_waiting_) {
        released_ = std::move(result);
        return;
      }
      held_waiting_ = false;
    }
    Queue(exchange_.ResumeHeld(result));
    Continue();
  }

  void OnWriteDone(bool ok) override {
    {
      MutexLock lock(&mu_);
      writing_ = false;
      queue_.pop_front();
      if (!ok) queue_.clear();  // The stream is broken; reads fail next and end it.
    }
    Pump();
  }

  void OnDone() override {
    exchange_.End();
    metrics_->streams->Decrement();
    delete this;
  }

 private:
  void Queue(std::vector<ext_proc::ProcessingResponse> answers) {
    {
      MutexLock lock(&mu_);
      for (ext_proc::ProcessingResponse& a : answers) queue_.push_back(std::move(a));
    }
    Pump();
  }

  // Starts the next write, or finishes once reads are over and every answer is written.
  // gRPC is called outside the mutex: it may run a callback inline.
  void Pump() {
    ext_proc::ProcessingResponse* next = nullptr;
    bool finish = false;
    {
      MutexLock lock(&mu_);
      if (writing_ || finished_) return;
      if (!queue_.empty()) {
        writing_ = true;
        next = &queue_.front();  // A deque keeps its elements in place as it grows at the back.
      } else if (reads_done_) {
        finished_ = true;
        finish = true;
      }
    }
    if (next != nullptr) StartWrite(next);
    if (finish) Finish(grpc::Status::OK);
  }

  Exchange exchange_;
  const ExchangeOptions* const options_;
  PickerMetrics* const metrics_;
  ext_proc::ProcessingRequest request_;
  Mutex mu_;
  std::deque<ext_proc::ProcessingResponse> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool held_waiting_ ABSL_GUARDED_BY(mu_) = false;                   // Continue saw the exchange held.
  std::optional<client::PickResult> released_ ABSL_GUARDED_BY(mu_);  // Released before that.
};

}  // namespace

grpc::ServerBidiReactor<ext_proc::ProcessingRequest, ext_proc::ProcessingResponse>* ExtProcService::Process(
    grpc::CallbackServerContext* /*context*/) {
  return new ProcessReactor(table_, options_, metrics_);
}

void ConfigureExtProcServer(grpc::ServerBuilder* builder) { builder->AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0); }

void KeepFreedMemoryForStreams() {
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_TOP_PAD, 16 << 20);  // Grow a heap by 16 MiB at a time (pages are touched only when used).
}

}  // namespace switchboard::picker
