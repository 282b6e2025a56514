// Active check: the cheapest request that shows whether a server can serve, for engines
// that do not count their own failed requests (llama.cpp, vLLM, SGLang; see
// docs/operations.md). A completion of one token ("max_tokens": 1) of the model the
// server serves, POSTed to /v1/completions, which every supported engine speaks. It runs
// at most once per `interval` and only while the last poll saw a free slot and no queue,
// so it never waits behind, or takes a slot from, real traffic. It runs on its own
// thread: a server that hangs on completions delays no report; its verdict is read at a
// later poll. The counts go into every report (checks_total, check_failures_total,
// check_error); the control plane's circuit breaker judges them.
//
// Verdicts: a 2xx whose body is a completion succeeded; a 5xx, no answer (refused,
// reset, timeout) or a 2xx that is not a completion failed; a 4xx is no verdict (the
// check's own request was refused: a configuration matter, not a failing server), and
// says so in check_error.
#ifndef SWITCHBOARD_AGENT_PROBE_ACTIVE_CHECK_H_
#define SWITCHBOARD_AGENT_PROBE_ACTIVE_CHECK_H_

#include <cstdint>
#include <future>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/probe/http_client.h"
#include "switchboard/v1/agent.pb.h"

namespace switchboard::agent {

struct ActiveCheckOptions {
  enum class Mode {
    kAuto,  // On, except for engines that count their own 5xx (TGI).
    kOn,
    kOff,
  };
  Mode mode = Mode::kAuto;
  absl::Duration interval = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(5);
};

// "auto" | "on" | "off".
absl::StatusOr<ActiveCheckOptions::Mode> ParseActiveCheckMode(const std::string& text);

// Whether checks run for `engine` under `mode`.
bool ActiveChecksEnabled(ActiveCheckOptions::Mode mode, v1::Engine engine);

struct CheckVerdict {
  enum class Kind { kSuccess, kFailure, kNoVerdict };
  Kind kind = Kind::kSuccess;
  std::string message;  // Empty on success.
};

// Judges one answer to the check's request.
CheckVerdict JudgeCheck(const HttpResponse& response);

// One endpoint's checks. Not thread-safe: one probe thread calls it (as Probe::Poll).
class ActiveCheck {
 public:
  // `http` must outlive the check.
  ActiveCheck(ActiveCheckOptions options, HttpClient* http) : options_(options), http_(http) {}
  ~ActiveCheck() { Wait(); }
  ActiveCheck(const ActiveCheck&) = delete;
  ActiveCheck& operator=(const ActiveCheck&) = delete;

  // Called at every poll, with the report as filled so far. Collects the verdict of a
  // check that finished; starts one if checks are enabled for `report.engine()`, one is
  // due at `now` (monotonic; the first an interval after the first Update), none is in
  // flight, the report is READY with a free slot and no queue, and it names a model.
  // Then writes the counts into `report`.
  void Update(absl::Time now, const std::string& base_url, v1::EndpointReport* report);
  // Blocks until the check in flight, if any, is done (at most the timeout); its verdict
  // is collected at the next Update. For shutdown and tests.
  void Wait();

 private:
  void Collect(const HttpResponse& response);

  const ActiveCheckOptions options_;
  HttpClient* const http_;
  std::optional<std::future<HttpResponse>> in_flight_;
  std::optional<absl::Time> next_;  // Monotonic; none before the first Update.
  uint64_t checks_ = 0, failures_ = 0;
  std::string last_error_;
};

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_PROBE_ACTIVE_CHECK_H_
