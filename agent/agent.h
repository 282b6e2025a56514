// Agent: probes every local endpoint once per report interval (concurrently, one thread
// per endpoint so one hung server cannot delay the others) and hands each round's Report
// to one Reporter per control plane.
#ifndef SWITCHBOARD_AGENT_AGENT_H_
#define SWITCHBOARD_AGENT_AGENT_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/probe/probe.h"
#include "agent/reporter/reporter.h"
#include "common/clock.h"

namespace switchboard::agent {

inline constexpr char kAgentVersion[] = "0.1.0";

struct AgentOptions {
  std::string node_id;
  std::map<std::string, std::string> labels;
  std::vector<std::string> controlplanes;
  absl::Duration report_interval = absl::Seconds(1);
};

class Agent {
 public:
  Agent(AgentOptions options, std::vector<std::unique_ptr<Probe>> probes, const Clock* clock);
  ~Agent();

  // Probes and reports until Stop. Blocks.
  void Run();
  void Stop();

  // The Hello sent on every (re)connect: declared endpoints with what was last probed.
  v1::Hello MakeHello() const;
  // One probe round (public for tests): polls every probe concurrently.
  v1::Report ProbeRound();

 private:
  const AgentOptions options_;
  const std::vector<std::unique_ptr<Probe>> probes_;
  const Clock* const clock_;
  std::vector<std::unique_ptr<Reporter>> reporters_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, v1::EndpointReport> last_ ABSL_GUARDED_BY(mu_);  // By address.
};

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_AGENT_H_
