// Agent: probes every local endpoint once per report interval (concurrently, one thread
// per endpoint so one hung server cannot delay the others), reads the GPUs, and hands
// each round's Report to one Reporter per control plane.
//
// Draining: StartDrain makes every endpoint report DRAINING at once (a round runs
// immediately). With exit_when_idle (SIGTERM), Run returns once every endpoint has no
// busy slot and no queue, or when the drain timeout passes, after the last report is
// acknowledged (bounded wait); the caller then says goodbye with Leave. A drain from the
// control plane (sbctl drain) does not exit; Undrain reverses it.
#ifndef SWITCHBOARD_AGENT_AGENT_H_
#define SWITCHBOARD_AGENT_AGENT_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "agent/gpu/gpu_source.h"
#include "agent/metrics.h"
#include "agent/probe/probe.h"
#include "agent/reporter/reporter.h"
#include "common/clock.h"
#include "common/mutex.h"

namespace switchboard::agent {

inline constexpr char kAgentVersion[] = "0.2.0";

struct AgentOptions {
  std::string node_id;
  std::map<std::string, std::string> labels;
  std::vector<std::string> controlplanes;
  absl::Duration report_interval = absl::Seconds(1);
  absl::Duration drain_timeout = absl::Minutes(5);
  // Read the GPUs at most this often; the reports in between repeat the last readings
  // (VRAM moves slowly, and nvidia-smi costs a process per read). 0: every report.
  absl::Duration gpu_interval = absl::ZeroDuration();
};

class Agent {
 public:
  // `gpus` may be null (no GPUs); `metrics` may be null. `metrics` and `clock` must
  // outlive the Agent.
  Agent(AgentOptions options, std::vector<std::unique_ptr<Probe>> probes, std::unique_ptr<GpuSource> gpus,
        const Clock* clock, AgentMetrics* metrics = nullptr);
  ~Agent();

  // Probes and reports until Stop, or until a SIGTERM drain completes. Blocks.
  void Run();
  // Stops at once (no drain).
  void Stop();
  void StartDrain(bool exit_when_idle);
  void Undrain();
  bool draining() const;

  // The agent exits cleanly (after Run returns): tells every control plane it is leaving
  // (a Goodbye: the node is removed at once rather than going stale), waiting at most
  // `timeout` for them together. Returns how many acknowledged by closing the stream.
  int Leave(absl::Duration timeout);

  // The Hello sent on every (re)connect: declared endpoints and GPUs as last seen.
  v1::Hello MakeHello() const;
  // One probe round (public for tests).
  v1::Report ProbeRound();

 private:
  void HandleCommand(const v1::Command& command);
  void ReadGpus(v1::Report* report);
  bool AllIdle(const v1::Report& report) const;
  // Logs, once per change, that no control plane has been reachable for a report interval.
  void CheckControlPlanesReachable(absl::Time now);

  const AgentOptions options_;
  const std::vector<std::unique_ptr<Probe>> probes_;
  const std::unique_ptr<GpuSource> gpus_;
  const Clock* const clock_;
  AgentMetrics* const metrics_;
  std::vector<std::unique_ptr<Reporter>> reporters_;

  mutable Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;  // Run a round now.
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool exit_when_idle_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time drain_deadline_ ABSL_GUARDED_BY(mu_);
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, v1::EndpointReport> last_ ABSL_GUARDED_BY(mu_);  // By address.
  // GPUs are declared once, from the first good reading (no hot-plug).
  std::vector<v1::GpuInfo> gpu_infos_ ABSL_GUARDED_BY(mu_);
  bool gpus_known_ ABSL_GUARDED_BY(mu_) = false;
  // Touched only by the thread running probe rounds (and Leave, after Run returned).
  std::string last_gpu_error_;
  std::map<std::string, std::string> last_probe_error_;  // By address; logged on change.
  std::optional<absl::Time> last_reachable_;             // Monotonic; any control plane connected.
  bool unreachable_logged_ = false;
  std::string exit_reason_;                      // Why Run returned, for the Goodbye.
  std::optional<absl::Time> next_gpu_read_;      // Monotonic; none: read at the next round.
  std::vector<v1::GpuSample> last_gpu_samples_;  // Repeated until the next read.
};

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_AGENT_H_
