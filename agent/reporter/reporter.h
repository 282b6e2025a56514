// Reporter: keeps one AgentService.Connect stream to one control plane. Sends a Hello on
// every (re)connect, then the newest Report whenever one is published (latest wins:
// nothing is buffered beyond the newest report). Reconnects with jittered exponential
// backoff capped at `max_backoff`, so a control plane that returns is rejoined quickly.
#ifndef SWITCHBOARD_AGENT_REPORTER_REPORTER_H_
#define SWITCHBOARD_AGENT_REPORTER_REPORTER_H_

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "switchboard/v1/agent.grpc.pb.h"

namespace switchboard::agent {

struct ReporterOptions {
  std::string target;  // host:port of a control plane.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Milliseconds(800);
  // A stream that stayed up this long was healthy: the next reconnect starts the backoff
  // over from `initial_backoff`.
  absl::Duration healthy_stream = absl::Seconds(5);
  uint32_t seed = 0;  // Jitter RNG; 0 = random.
};

class Reporter {
 public:
  // `make_hello` is called on every connect (from the reporter's thread); `on_command`
  // (may be empty) for every command the control plane sends (from its reader thread).
  // The backoff waits, WaitForAck and the stream's age are measured on `clock`, which
  // must outlive the Reporter.
  Reporter(ReporterOptions options, const Clock* clock, std::function<v1::Hello()> make_hello,
           std::function<void(const v1::Command&)> on_command = nullptr);
  ~Reporter();

  void Start();
  void Stop();

  // Hands over the newest report. Cheap; never blocks on the network.
  void Publish(std::shared_ptr<const v1::Report> report);

  bool connected() const;
  uint64_t last_acked_sequence() const;
  // Waits until `sequence` is acknowledged, no stream is open (between connection
  // attempts, or the stream broke), or `timeout` passes on the clock; true if
  // acknowledged.
  bool WaitForAck(uint64_t sequence, absl::Duration timeout);

  // The agent exits cleanly: sends a Goodbye with `reason` on the open stream (the
  // control plane removes the node at once), ends it and reconnects no more. Waits at
  // most `timeout` on the clock for the control plane to close the stream; true if it
  // did. False at once when no stream is open (the node then goes stale as after a crash).
  bool Leave(const std::string& reason, absl::Duration timeout);

  // Why the last connection attempt or stream ended (empty before any ended).
  std::string last_error() const;

 private:
  void Loop();
  // One stream's life; returns when it breaks or Stop is called.
  void RunStream(v1::AgentService::Stub* stub);

  const ReporterOptions options_;
  const Clock* const clock_;
  const std::function<v1::Hello()> make_hello_;
  const std::function<void(const v1::Command&)> on_command_;
  std::mt19937 rng_;  // Used only by the reporter thread.

  mutable Mutex mu_;
  std::shared_ptr<const v1::Report> latest_ ABSL_GUARDED_BY(mu_);
  uint64_t sent_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t acked_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  bool stream_broken_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<std::string> goodbye_ ABSL_GUARDED_BY(mu_);  // Set by Leave.
  absl::Duration goodbye_timeout_ ABSL_GUARDED_BY(mu_);
  bool goodbye_done_ ABSL_GUARDED_BY(mu_) = false;  // The Goodbye was tried (see left_).
  bool left_ ABSL_GUARDED_BY(mu_) = false;          // The control plane closed the stream after it.
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* active_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
};

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_REPORTER_REPORTER_H_
