#include "agent/agent.h"

#include <algorithm>
#include <future>

#include "common/log.h"
#include "google/protobuf/util/time_util.h"

namespace switchboard::agent {

using google::protobuf::util::TimeUtil;

Agent::Agent(AgentOptions options, std::vector<std::unique_ptr<Probe>> probes, std::unique_ptr<GpuSource> gpus,
             const Clock* clock, AgentMetrics* metrics)
    : options_(std::move(options)),
      probes_(std::move(probes)),
      gpus_(gpus ? std::move(gpus) : std::make_unique<NoGpuSource>()),
      clock_(clock),
      metrics_(metrics) {
  for (const std::string& target : options_.controlplanes) {
    ReporterOptions ro;
    ro.target = target;
    reporters_.push_back(std::make_unique<Reporter>(
        ro, clock_, [this] { return MakeHello(); }, [this](const v1::Command& c) { HandleCommand(c); }));
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
  *hello.mutable_report_interval() =
      TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(options_.report_interval));
  MutexLock lock(&mu_);
  for (const v1::GpuInfo& gpu : gpu_infos_) *hello.add_gpus() = gpu;
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

void Agent::ReadGpus(v1::Report* report) {
  const absl::Time now = clock_->MonotonicNow();
  // Half a report interval of slack, so that rounds that start a little early do not
  // postpone the read by a whole round.
  if (next_gpu_read_ && now < *next_gpu_read_ - options_.report_interval / 2) {
    for (const v1::GpuSample& s : last_gpu_samples_) *report->add_gpus() = s;
    return;
  }
  next_gpu_read_ = now + options_.gpu_interval;
  last_gpu_samples_.clear();
  absl::StatusOr<std::vector<GpuReading>> readings = gpus_->Read();
  if (!readings.ok()) {
    // Logged once per distinct error, not every second.
    if (std::string(readings.status().message()) != last_gpu_error_) {
      last_gpu_error_ = std::string(readings.status().message());
      SB_LOG(WARNING) << "GPU readings (" << gpus_->name() << ") failed: " << last_gpu_error_;
    }
    return;
  }
  last_gpu_error_.clear();
  MutexLock lock(&mu_);
  if (!gpus_known_) {
    gpus_known_ = true;
    for (const GpuReading& g : *readings) {
      v1::GpuInfo info;
      info.set_uuid(g.uuid);
      info.set_name(g.name);
      info.set_vram_total_bytes(g.vram_total_bytes);
      gpu_infos_.push_back(std::move(info));
    }
    SB_LOG(INFO) << "GPUs via " << gpus_->name() << ": " << gpu_infos_.size();
    if (metrics_) metrics_->gpus->Set(static_cast<double>(gpu_infos_.size()));
  }
  for (const GpuReading& g : *readings) {
    bool declared = false;
    for (const v1::GpuInfo& info : gpu_infos_) declared |= info.uuid() == g.uuid;
    if (!declared) continue;
    v1::GpuSample* s = report->add_gpus();
    s->set_uuid(g.uuid);
    s->set_vram_used_bytes(g.vram_used_bytes);
    s->set_has_utilization(g.utilization.has_value());
    s->set_utilization(g.utilization.value_or(0));
    s->set_temperature_celsius(g.temperature_celsius.value_or(0));
  }
  last_gpu_samples_.assign(report->gpus().begin(), report->gpus().end());
}

v1::Report Agent::ProbeRound() {
  const absl::Time now = clock_->MonotonicNow();
  std::vector<std::future<v1::EndpointReport>> polls;
  for (const auto& probe : probes_) {
    Probe* p = probe.get();
    polls.push_back(std::async(std::launch::async, [p, now] { return p->Poll(now); }));
  }
  v1::Report report;
  *report.mutable_agent_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_->Now()));
  ReadGpus(&report);
  for (auto& f : polls) *report.add_endpoints() = f.get();
  for (const v1::EndpointReport& ep : report.endpoints()) {
    // Once per change, so that a server that is not an inference server, is down, or runs
    // another engine than configured says so in the log without repeating every round.
    std::string& last = last_probe_error_[ep.address()];
    if (ep.probe_error() == last) continue;
    if (!ep.probe_error().empty()) {
      SB_LOG(WARNING) << "endpoint " << ep.address() << ": probe failed: " << ep.probe_error();
    } else {
      SB_LOG(INFO) << "endpoint " << ep.address() << ": probes succeed again";
    }
    last = ep.probe_error();
  }

  MutexLock lock(&mu_);
  for (v1::EndpointReport& ep : *report.mutable_endpoints()) {
    if (draining_ && ep.state() != v1::ENDPOINT_STATE_UNHEALTHY) ep.set_state(v1::ENDPOINT_STATE_DRAINING);
    if (metrics_ != nullptr) {
      metrics_->probes->Add({{"endpoint", ep.address()}, {"result", ep.probe_error().empty() ? "ok" : "error"}})
          .Increment();
      metrics_->probe_seconds->Add({{"endpoint", ep.address()}})
          .Set(ep.probe_latency().seconds() + ep.probe_latency().nanos() / 1e9);
      metrics_->endpoint_ready->Add({{"endpoint", ep.address()}}).Set(ep.state() == v1::ENDPOINT_STATE_READY ? 1 : 0);
      // The counts are cumulative in the report: count what they grew by since the last.
      auto last = last_.find(ep.address());
      const uint64_t checks_before = last == last_.end() ? 0 : last->second.checks_total();
      const uint64_t failures_before = last == last_.end() ? 0 : last->second.check_failures_total();
      const uint64_t failed = ep.check_failures_total() - std::min(failures_before, ep.check_failures_total());
      const uint64_t all = ep.checks_total() - std::min(checks_before, ep.checks_total());
      if (all > 0) {
        metrics_->checks->Add({{"endpoint", ep.address()}, {"result", "failed"}})
            .Increment(static_cast<double>(failed));
        metrics_->checks->Add({{"endpoint", ep.address()}, {"result", "ok"}})
            .Increment(static_cast<double>(all - std::min(all, failed)));
      }
    }
  }
  report.set_sequence(++sequence_);
  for (const v1::EndpointReport& ep : report.endpoints()) last_[ep.address()] = ep;
  return report;
}

bool Agent::AllIdle(const v1::Report& report) const {
  for (const v1::EndpointReport& ep : report.endpoints()) {
    if (ep.slots_busy() > 0 || ep.queue_depth() > 0) return false;
  }
  return true;
}

void Agent::Run() {
  ProbeRound();  // Learn models, slots and GPUs before the first Hello goes out.
  for (auto& r : reporters_) r->Start();
  last_reachable_ = clock_->MonotonicNow();
  while (true) {
    const absl::Time round_start = clock_->MonotonicNow();
    // Read before the round: only a round that started in a drain reports DRAINING, so
    // only such a round may be the last one (a SIGTERM during a round runs another).
    bool exit_when_idle;
    {
      MutexLock lock(&mu_);
      exit_when_idle = exit_when_idle_;
    }
    auto report = std::make_shared<const v1::Report>(ProbeRound());
    for (auto& r : reporters_) r->Publish(report);
    CheckControlPlanesReachable(clock_->MonotonicNow());
    if (metrics_ != nullptr) {
      metrics_->reports->Increment();
      for (size_t i = 0; i < reporters_.size(); ++i) {
        metrics_->controlplane_up->Add({{"target", options_.controlplanes[i]}}).Set(reporters_[i]->connected() ? 1 : 0);
      }
    }
    bool exit_now = false;
    {
      MutexLock lock(&mu_);
      if (exit_when_idle) {
        const bool idle = AllIdle(*report);
        const bool expired = clock_->MonotonicNow() >= drain_deadline_;
        if (idle || expired) {
          exit_reason_ = idle ? "drained: every endpoint is idle" : "drain timeout reached";
          SB_LOG(INFO) << exit_reason_ << ", exiting";
          exit_now = true;
        }
      }
    }
    if (exit_now) {
      // Make sure the control planes saw the last DRAINING report (bounded).
      for (auto& r : reporters_) r->WaitForAck(report->sequence(), absl::Seconds(2));
      return;
    }
    MutexLock lock(&mu_);
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || wake_; };
    clock_->AwaitWithDeadline(&mu_, Condition(&woken), round_start + options_.report_interval);
    if (stop_) {
      exit_reason_ = draining_ ? "stopped during its drain" : "stopped";
      return;
    }
    wake_ = false;
  }
}

void Agent::CheckControlPlanesReachable(absl::Time now) {
  if (!last_reachable_) last_reachable_ = now;
  for (const auto& r : reporters_) {
    if (!r->connected()) continue;
    if (unreachable_logged_) SB_LOG(INFO) << "reaching a control plane again";
    unreachable_logged_ = false;
    last_reachable_ = now;
    return;
  }
  if (unreachable_logged_ || reporters_.empty() || now - *last_reachable_ < options_.report_interval) return;
  unreachable_logged_ = true;
  std::string targets;
  for (size_t i = 0; i < reporters_.size(); ++i) {
    const std::string error = reporters_[i]->last_error();
    targets += (i ? "; " : "") + options_.controlplanes[i] + (error.empty() ? "" : " (" + error + ")");
  }
  SB_LOG(WARNING) << "no control plane reachable for "
                  << absl::FormatDuration(absl::Trunc(now - *last_reachable_, absl::Milliseconds(1)))
                  << ": reports are not delivered (still retrying): " << targets;
}

int Agent::Leave(absl::Duration timeout) {
  const std::string reason = exit_reason_.empty() ? "exiting" : exit_reason_;
  std::vector<std::future<bool>> left;
  for (auto& r : reporters_) {
    Reporter* reporter = r.get();
    left.push_back(
        std::async(std::launch::async, [reporter, &reason, timeout] { return reporter->Leave(reason, timeout); }));
  }
  int acknowledged = 0;
  for (auto& f : left) acknowledged += f.get() ? 1 : 0;
  SB_LOG(INFO) << "left " << acknowledged << " of " << reporters_.size() << " control plane(s) (" << reason << ")";
  return acknowledged;
}

void Agent::Stop() {
  MutexLock lock(&mu_);
  stop_ = true;
}

void Agent::StartDrain(bool exit_when_idle) {
  MutexLock lock(&mu_);
  if (!draining_) SB_LOG(INFO) << "draining" << (exit_when_idle ? " before exit" : "");
  draining_ = true;
  if (exit_when_idle && !exit_when_idle_) {
    exit_when_idle_ = true;
    drain_deadline_ = clock_->MonotonicNow() + options_.drain_timeout;
  }
  wake_ = true;  // Report DRAINING now, not at the next tick.
  if (metrics_ != nullptr) metrics_->draining->Set(1);
}

void Agent::Undrain() {
  MutexLock lock(&mu_);
  if (exit_when_idle_) return;  // Shutting down: stays drained.
  if (draining_) SB_LOG(INFO) << "undrained";
  draining_ = false;
  wake_ = true;
  if (metrics_ != nullptr) metrics_->draining->Set(0);
}

bool Agent::draining() const {
  MutexLock lock(&mu_);
  return draining_;
}

void Agent::HandleCommand(const v1::Command& command) {
  if (command.has_drain()) {
    SB_LOG(INFO) << "control plane asks to drain";
    StartDrain(/*exit_when_idle=*/false);
  } else if (command.has_undrain()) {
    Undrain();
  }
}

}  // namespace switchboard::agent
