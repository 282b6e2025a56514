#include "agent/reporter/reporter.h"

#include "common/log.h"
#include "common/net.h"

namespace switchboard::agent {

Reporter::Reporter(ReporterOptions options, const Clock* clock, std::function<v1::Hello()> make_hello,
                   std::function<void(const v1::Command&)> on_command)
    : options_(std::move(options)),
      clock_(clock),
      make_hello_(std::move(make_hello)),
      on_command_(std::move(on_command)),
      rng_(options_.seed != 0 ? options_.seed : std::random_device{}()) {}

Reporter::~Reporter() { Stop(); }

void Reporter::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Reporter::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    if (active_context_ != nullptr) active_context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

void Reporter::Publish(std::shared_ptr<const v1::Report> report) {
  MutexLock lock(&mu_);
  latest_ = std::move(report);
}

bool Reporter::connected() const {
  MutexLock lock(&mu_);
  return connected_;
}

uint64_t Reporter::last_acked_sequence() const {
  MutexLock lock(&mu_);
  return acked_sequence_;
}

bool Reporter::WaitForAck(uint64_t sequence, absl::Duration timeout) {
  MutexLock lock(&mu_);
  // A stream that is open but not acknowledged yet (the Hello's ack may still be on its
  // way) is worth waiting for; between attempts there is nothing to wait for.
  auto done = [this, sequence]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return acked_sequence_ >= sequence || active_context_ == nullptr || stream_broken_ || stop_;
  };
  clock_->AwaitWithTimeout(&mu_, Condition(&done), timeout);
  return acked_sequence_ >= sequence;
}

bool Reporter::Leave(const std::string& reason, absl::Duration timeout) {
  MutexLock lock(&mu_);
  goodbye_ = reason;
  goodbye_timeout_ = timeout;
  if (active_context_ == nullptr || stream_broken_) return false;
  auto done = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return goodbye_done_ || active_context_ == nullptr || stop_; };
  // The stream's own wait is bounded by `timeout`; a little more covers its write.
  clock_->AwaitWithTimeout(&mu_, Condition(&done), timeout + absl::Milliseconds(500));
  return left_;
}

std::string Reporter::last_error() const {
  MutexLock lock(&mu_);
  return last_error_;
}

void Reporter::Loop() {
  absl::Duration backoff = options_.initial_backoff;
  while (true) {
    const absl::Time started = clock_->MonotonicNow();
    {
      // A new channel per attempt: a failed connection of an old one keeps answering
      // with its cached error for seconds after the control plane is back (common/net.h).
      auto stub = v1::AgentService::NewStub(MakeDedicatedChannel(options_.target));
      RunStream(stub.get());
    }
    if (clock_->MonotonicNow() - started >= options_.healthy_stream) backoff = options_.initial_backoff;
    // Full jitter in [backoff/2, backoff]: agents that lost the same control plane do
    // not all come back in the same millisecond.
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    const absl::Duration wait = backoff * jitter(rng_);
    backoff = std::min(backoff * 2, options_.max_backoff);
    MutexLock lock(&mu_);
    auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || goodbye_.has_value(); };
    if (clock_->AwaitWithTimeout(&mu_, Condition(&stopped), wait)) return;
  }
}

void Reporter::RunStream(v1::AgentService::Stub* stub) {
  grpc::ClientContext context;
  {
    MutexLock lock(&mu_);
    if (stop_ || goodbye_) return;
    active_context_ = &context;
    stream_broken_ = false;
    sent_sequence_ = 0;
  }
  auto stream = stub->Connect(&context);
  v1::AgentMessage hello;
  *hello.mutable_hello() = make_hello_();
  bool ok = stream->Write(hello);

  std::thread reader;
  if (ok) {
    reader = std::thread([this, &stream] {
      v1::ControlMessage msg;
      while (stream->Read(&msg)) {
        if (msg.has_command()) {
          if (on_command_) on_command_(msg.command());
          continue;
        }
        MutexLock lock(&mu_);
        if (msg.has_ack()) {
          if (!connected_) {
            SB_LOG(INFO) << "connected to control plane " << options_.target;
          }
          connected_ = true;
          acked_sequence_ = msg.ack().sequence();
        }
      }
      MutexLock lock(&mu_);
      stream_broken_ = true;
    });
    v1::AgentMessage goodbye;  // Set when Leave was called.
    absl::Duration goodbye_timeout;
    while (true) {
      std::shared_ptr<const v1::Report> report;
      {
        MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stop_ || stream_broken_ || goodbye_ || (latest_ && latest_->sequence() > sent_sequence_);
        };
        mu_.Await(Condition(&ready));
        if (stop_ || stream_broken_) break;
        if (goodbye_) {
          goodbye.mutable_goodbye()->set_reason(*goodbye_);
          goodbye_timeout = goodbye_timeout_;
          break;
        }
        report = latest_;
        sent_sequence_ = report->sequence();
      }
      v1::AgentMessage msg;
      *msg.mutable_report() = *report;
      if (!stream->Write(msg)) break;
    }
    if (goodbye.has_goodbye()) {
      const bool written = stream->Write(goodbye);
      stream->WritesDone();
      // The control plane ends the stream once it has removed the node; cancelling
      // before that could drop the Goodbye in flight.
      MutexLock lock(&mu_);
      auto closed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stream_broken_ || stop_; };
      left_ = written && clock_->AwaitWithTimeout(&mu_, Condition(&closed), goodbye_timeout) && stream_broken_;
      goodbye_done_ = true;
    } else {
      stream->WritesDone();
    }
  }
  context.TryCancel();  // Unblocks the reader if the server has not ended the stream.
  if (reader.joinable()) reader.join();
  grpc::Status status = stream->Finish();
  bool was_connected;
  {
    MutexLock lock(&mu_);
    active_context_ = nullptr;
    was_connected = connected_;
    connected_ = false;
    last_error_ = status.ok() ? "the control plane ended the stream" : status.error_message();
    if (stop_ || goodbye_done_) return;
  }
  if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
      status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    SB_LOG(ERROR) << "control plane " << options_.target << " rejected this agent: " << status.error_message();
  } else if (was_connected) {
    SB_LOG(WARNING) << "lost control plane " << options_.target << ": " << status.error_message();
  } else {
    SB_LOG(DEBUG) << "cannot reach control plane " << options_.target << ": " << status.error_message();
  }
}

}  // namespace switchboard::agent
