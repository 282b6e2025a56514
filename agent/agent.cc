#include "agent/agent.h"

#include <future>

#include "google/protobuf/util/time_util.h"

namespace switchboard::agent {

Agent::Agent(AgentOptions options, std::vector<std::unique_ptr<Probe>> probes, const Clock* clock)
    : options_(std::move(options)), probes_(std::move(probes)), clock_(clock) {
  for (const std::string& target : options_.controlplanes) {
    ReporterOptions ro;
    ro.target = target;
    reporters_.push_back(std::make_unique<Reporter>(ro, [this] { return MakeHello(); }));
  }
}

Agent::~Agent() {
  Stop();
  for (auto& r : reporters_) r->Stop();
}

v1::Hello Agent::MakeHello() const {
  v1::Hello hello;
  hello.set_node_id(options_.node_id);
  hello.mutable_labels()->insert(options_.labels.begin(), options_.labels.end());
  hello.set_agent_version(kAgentVersion);
  *hello.mutable_report_interval() = google::protobuf::util::TimeUtil::NanosecondsToDuration(
      absl::ToInt64Nanoseconds(options_.report_interval));
  absl::MutexLock lock(&mu_);
  for (const auto& probe : probes_) {
    v1::EndpointInfo* ep = hello.add_endpoints();
    ep->set_address(probe->options().address);
    ep->set_engine(probe->engine());
    ep->set_capacity_hint(probe->options().capacity_hint);
    auto last = last_.find(probe->options().address);
    if (last != last_.end()) {
      ep->mutable_models()->CopyFrom(last->second.models());
      ep->set_slots_total(last->second.slots_total());
    }
  }
  return hello;
}

v1::Report Agent::ProbeRound() {
  const absl::Time now = clock_->MonotonicNow();
  std::vector<std::future<v1::EndpointReport>> polls;
  for (const auto& probe : probes_) {
    Probe* p = probe.get();
    polls.push_back(std::async(std::launch::async, [p, now] { return p->Poll(now); }));
  }
  v1::Report report;
  *report.mutable_agent_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_->Now()));
  for (auto& f : polls) *report.add_endpoints() = f.get();
  absl::MutexLock lock(&mu_);
  report.set_sequence(++sequence_);
  for (const v1::EndpointReport& ep : report.endpoints()) last_[ep.address()] = ep;
  return report;
}

void Agent::Run() {
  ProbeRound();  // Learn models and slots before the first Hello goes out.
  for (auto& r : reporters_) r->Start();
  while (true) {
    const absl::Time round_start = clock_->MonotonicNow();
    auto report = std::make_shared<const v1::Report>(ProbeRound());
    for (auto& r : reporters_) r->Publish(report);
    absl::MutexLock lock(&mu_);
    auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    const absl::Duration elapsed = clock_->MonotonicNow() - round_start;
    if (mu_.AwaitWithTimeout(absl::Condition(&stopped), options_.report_interval - elapsed)) return;
  }
}

void Agent::Stop() {
  absl::MutexLock lock(&mu_);
  stop_ = true;
}

}  // namespace switchboard::agent
