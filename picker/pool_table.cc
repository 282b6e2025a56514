#include "picker/pool_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "controlplane/policy/admission_proto.h"
#include "google/protobuf/util/time_util.h"

namespace switchboard::picker {

PoolTable::PoolTable(std::vector<std::string> pools, client::PickPolicy policy, uint64_t seed, const Clock* clock)
    : pools_(std::move(pools)), policy_(std::move(policy)), clock_(clock), rng_(seed) {}

bool PoolTable::Serves(const std::string& pool) const {
  return pools_.empty() || std::find(pools_.begin(), pools_.end(), pool) != pools_.end();
}

absl::Status PoolTable::Apply(const v1::Assignment& a) {
  if (!Serves(a.pool())) return absl::InvalidArgumentError(absl::StrCat("pool ", a.pool(), " is not served here"));
  Released released;  // The new headroom may admit held requests.
  {
    MutexLock lock(&mu_);
    Pool& p = by_pool_[a.pool()];
    p.assignment = a;
    p.since.clear();
    p.admission = controlplane::policy::AdmissionFromProto(a.priority());
    p.headroom_slots.clear();
    for (const v1::PriorityClass& c : a.priority().classes()) p.headroom_slots[c.name()] = c.headroom_slots();
    p.queues = controlplane::policy::QueueFromProto(a.priority());
    p.peers.AssignmentApplied();
    ReleaseLocked(&released);
  }
  Call(std::move(released));
  return absl::OkStatus();
}

bool PoolTable::Ready() const {
  MutexLock lock(&mu_);
  if (pools_.empty()) return !by_pool_.empty();
  return std::all_of(pools_.begin(), pools_.end(),
                     [this](const std::string& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return by_pool_.count(p) > 0; });
}

void PoolTable::Candidates(const Pool& p, std::vector<client::CandidateEndpoint>* candidates,
                           client::PickPolicy* policy) const {
  candidates->reserve(p.assignment.endpoints_size());
  for (const v1::AssignedEndpoint& ep : p.assignment.endpoints()) {
    client::CandidateEndpoint c;
    c.address = ep.address();
    const bool routable = ep.state() == v1::ENDPOINT_STATE_READY && ep.circuit() != v1::CIRCUIT_STATE_OPEN;
    c.load.weight = routable ? ep.weight() : 0;
    c.load.slots_total = ep.slots_total();
    c.load.slots_free = ep.slots_free();
    c.load.queue_depth = ep.queue_depth();
    c.load.decode_tokens_per_second = ep.decode_tokens_per_second();
    c.load.prefill_tokens_per_second = ep.prefill_tokens_per_second();
    auto s = p.since.find(ep.address());
    if (s != p.since.end()) {
      c.load.sent_since_assignment = s->second.sent;
      c.load.done_since_assignment = s->second.done;
    }
    c.load.peers_change = p.peers.Change(ep.address());
    candidates->push_back(std::move(c));
  }
  *policy = policy_;
  policy->picker.gateways = p.peers.GatewaysScale(policy_.picker.gateways);
}

double PoolTable::Change(const std::vector<client::CandidateEndpoint>& candidates, const client::PickPolicy& policy) {
  // The published headroom less the change in occupancy since the assignment on the
  // routable endpoints, as EstimatedOccupancy counts it: this picker's requests sent
  // (and seen finish) plus the other pickers' shared change, scaled for the pickers it
  // does not hear from.
  double change = 0;
  for (const client::CandidateEndpoint& c : candidates) {
    if (c.load.weight == 0) continue;
    change += static_cast<double>(c.load.sent_since_assignment) - c.load.done_since_assignment + c.load.peers_change;
  }
  return change * std::max(1.0, policy.picker.gateways);
}

client::PickResult PoolTable::Route(const std::string& pool, Pool& p, const client::PickRequest& request,
                                    const std::vector<client::CandidateEndpoint>& candidates,
                                    const client::PickPolicy& policy, const std::string& class_reason) {
  client::PickResult r = client::DecidePick(candidates, request, policy, rng_);
  if (r.verdict == client::PickVerdict::kRoute) {
    ++p.since[r.endpoints.front()].sent;
    ++p.in_flight[r.endpoints.front()];
  }
  if (!class_reason.empty()) r.reason = absl::StrCat(class_reason, r.reason);
  picks_.push_back({pool, clock_->Now(), request.prompt_tokens, r});
  if (picks_.size() > kKeptPicks) picks_.pop_front();
  return r;
}

client::PickResult PoolTable::Pick(const std::string& pool, const client::PickRequest& request,
                                   absl::string_view priority, absl::string_view tenant, bool* class_refused,
                                   ReleaseCallback on_release, uint64_t* held) {
  MutexLock lock(&mu_);
  auto it = by_pool_.find(pool);
  if (it == by_pool_.end()) {
    client::PickResult r;
    r.verdict = client::PickVerdict::kUnavailable;
    r.reason = Serves(pool) ? absl::StrCat("no assignment for pool ", pool, " yet")
                            : absl::StrCat("model ", pool, " is not served by this picker");
    return r;
  }
  Pool& p = it->second;
  std::vector<client::CandidateEndpoint> candidates;
  client::PickPolicy policy;
  Candidates(p, &candidates, &policy);
  std::string class_reason;
  const bool any_routable = std::any_of(candidates.begin(), candidates.end(),
                                        [](const client::CandidateEndpoint& c) { return c.load.weight > 0; });
  if (p.admission.enabled() && any_routable) {  // None routable: DecidePick says so (503).
    const double change = Change(candidates, policy);
    const controlplane::policy::ClassChoice choice =
        controlplane::policy::ClassifyRequest(p.admission, priority, tenant);
    auto h = p.headroom_slots.find(choice.name);
    const double headroom = (h == p.headroom_slots.end() ? 0 : h->second) - change;
    const controlplane::policy::AdmissionDecision d =
        controlplane::policy::DecideAdmission(p.admission, choice.name, headroom);
    class_reason = absl::StrCat("class ", choice.name, " (", choice.reason, "): ");
    if (!d.admit) {
      if (class_refused != nullptr) *class_refused = true;
      client::PickResult r;
      r.verdict = client::PickVerdict::kShed;
      r.retry_after = policy_.retry_after;
      r.reason = absl::StrCat(class_reason, d.reason);
      if (on_release != nullptr && held != nullptr && !queues_closed_) {
        const uint64_t id = next_held_;
        const controlplane::policy::EnqueueDecision e = controlplane::policy::DecideEnqueue(
            p.queues, choice.name, std::string(tenant), id, &p.queue, clock_->MonotonicNow());
        if (e.hold) {
          ++next_held_;
          ++held_epoch_;
          held_[id] = HeldRequest{pool, request, class_reason, e.deadline, std::move(on_release)};
          *held = id;
          r.reason = absl::StrCat(r.reason, "; ", e.reason);
          return r;
        }
        r.reason = absl::StrCat(r.reason, "; ", e.reason);
      }
      picks_.push_back({pool, clock_->Now(), request.prompt_tokens, r});
      if (picks_.size() > kKeptPicks) picks_.pop_front();
      return r;
    }
  }
  return Route(pool, p, request, candidates, policy, class_reason);
}

bool PoolTable::Unhold(uint64_t held) {
  MutexLock lock(&mu_);
  auto it = held_.find(held);
  if (it == held_.end()) return false;
  auto p = by_pool_.find(it->second.pool);
  if (p != by_pool_.end()) controlplane::policy::RemoveQueued(held, &p->second.queue);
  held_.erase(it);
  return true;
}

void PoolTable::ReleaseLocked(Released* out) {
  if (held_.empty()) return;
  const absl::Time now = clock_->MonotonicNow();
  for (auto& [name, p] : by_pool_) {
    if (p.queue.size() == 0) continue;
    std::vector<client::CandidateEndpoint> candidates;
    client::PickPolicy policy;
    Candidates(p, &candidates, &policy);
    const double change = Change(candidates, policy);
    std::vector<controlplane::policy::ClassHeadroom> headrooms;
    for (const controlplane::policy::PriorityClass& c : p.admission.classes) {
      controlplane::policy::ClassHeadroom h;
      h.name = c.name;
      h.rank = c.rank;
      h.max_share = c.max_share;
      auto f = p.headroom_slots.find(c.name);
      h.headroom_slots = (f == p.headroom_slots.end() ? 0 : f->second) - change;
      headrooms.push_back(std::move(h));
    }
    const bool any_routable = std::any_of(candidates.begin(), candidates.end(),
                                          [](const client::CandidateEndpoint& c) { return c.load.weight > 0; });
    if (!any_routable) {
      for (controlplane::policy::ClassHeadroom& h : headrooms) h.headroom_slots = 0;  // Expire only.
    }
    const controlplane::policy::QueueRelease r =
        controlplane::policy::DecideQueueRelease(p.admission, headrooms, &p.queue, now);
    for (uint64_t id : r.expired) {
      auto h = held_.find(id);
      if (h == held_.end()) continue;
      client::PickResult result;
      result.verdict = client::PickVerdict::kShed;
      result.retry_after = policy_.retry_after;
      result.reason = absl::StrCat(h->second.class_reason, "held past its deadline; ", r.reason);
      picks_.push_back({name, clock_->Now(), h->second.request.prompt_tokens, result});
      if (picks_.size() > kKeptPicks) picks_.pop_front();
      out->emplace_back(std::move(h->second.on_release), std::move(result));
      held_.erase(h);
    }
    for (uint64_t id : r.admitted) {
      auto h = held_.find(id);
      if (h == held_.end()) continue;
      // Each admission counts as sent, so the next one sees the pool as it is then.
      std::vector<client::CandidateEndpoint> now_candidates;
      Candidates(p, &now_candidates, &policy);
      client::PickResult result = Route(name, p, h->second.request, now_candidates, policy,
                                        absl::StrCat(h->second.class_reason, "released from the queue: "));
      out->emplace_back(std::move(h->second.on_release), std::move(result));
      held_.erase(h);
    }
  }
  while (picks_.size() > kKeptPicks) picks_.pop_front();
}

void PoolTable::Call(Released released) {
  for (auto& [callback, result] : released) callback(std::move(result));
}

size_t PoolTable::ReleaseQueued() {
  Released released;
  {
    MutexLock lock(&mu_);
    ReleaseLocked(&released);
  }
  const size_t n = released.size();
  Call(std::move(released));
  return n;
}

size_t PoolTable::Held() const {
  MutexLock lock(&mu_);
  return held_.size();
}

void PoolTable::RunReleaseTimer() {
  mu_.Lock();
  while (!queues_closed_) {
    absl::Time next = absl::InfiniteFuture();
    for (const auto& [id, h] : held_) next = std::min(next, h.deadline);
    const uint64_t epoch = held_epoch_;
    auto changed = [this, epoch]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return queues_closed_ || held_epoch_ != epoch; };
    if (clock_->AwaitWithDeadline(&mu_, Condition(&changed), next)) continue;
    Released released;
    ReleaseLocked(&released);
    mu_.Unlock();
    Call(std::move(released));
    mu_.Lock();
  }
  mu_.Unlock();
}

void PoolTable::CloseQueues() {
  Released released;
  {
    MutexLock lock(&mu_);
    queues_closed_ = true;
    for (auto& [id, h] : held_) {
      client::PickResult result;
      result.verdict = client::PickVerdict::kUnavailable;
      result.reason = "the picker is shutting down";
      released.emplace_back(std::move(h.on_release), std::move(result));
      auto p = by_pool_.find(h.pool);
      if (p != by_pool_.end()) controlplane::policy::RemoveQueued(id, &p->second.queue);
    }
    held_.clear();
  }
  Call(std::move(released));
}

void PoolTable::Done(const std::string& pool, const std::string& picked) {
  Released released;  // A slot freed: held requests may go.
  {
    MutexLock lock(&mu_);
    auto it = by_pool_.find(pool);
    if (it == by_pool_.end()) return;
    ++it->second.since[picked].done;
    auto f = it->second.in_flight.find(picked);
    if (f != it->second.in_flight.end() && --f->second == 0) it->second.in_flight.erase(f);
    ReleaseLocked(&released);
  }
  Call(std::move(released));
}

client::PoolCounts PoolTable::InFlight() const {
  MutexLock lock(&mu_);
  client::PoolCounts out;
  for (const auto& [name, p] : by_pool_) {
    client::EndpointCounts& counts = out[name];
    for (const auto& [address, n] : p.in_flight) counts[address] = n;
  }
  return out;
}

void PoolTable::SetPeers(const v1::PeersInFlight& peers) {
  MutexLock lock(&mu_);
  const bool resumed = !sharing_;
  sharing_ = true;
  std::map<std::string, client::EndpointCounts> by_pool;
  for (const v1::PoolInFlight& pool : peers.pools()) {
    client::EndpointCounts& counts = by_pool[pool.pool()];
    for (const v1::EndpointInFlight& e : pool.endpoints()) counts[e.address()] += e.in_flight();
  }
  for (auto& [name, p] : by_pool_) {
    p.peers.Received(std::move(by_pool[name]), peers.peers());
    // Counts heard for the first time include requests older than the assignment (which
    // its reports already count): from here on, only their change.
    if (resumed) p.peers.AssignmentApplied();
  }
}

void PoolTable::PeersLost() {
  MutexLock lock(&mu_);
  sharing_ = false;
  for (auto& [name, p] : by_pool_) p.peers.Lost();
}

bool PoolTable::Outcome(const std::string& pool, const std::string& address, int status) {
  MutexLock lock(&mu_);
  auto it = by_pool_.find(pool);
  if (it == by_pool_.end()) return false;
  for (const v1::AssignedEndpoint& ep : it->second.assignment.endpoints()) {
    if (ep.address() != address) continue;
    v1::EndpointOutcome& o = outcomes_[{ep.node_id(), address}];
    o.set_requests(o.requests() + 1);
    if (status >= 500) o.set_errors(o.errors() + 1);
    return true;
  }
  return false;
}

std::vector<v1::PickExplanation> PoolTable::TakePicks() {
  std::deque<KeptPick> kept;
  {
    MutexLock lock(&mu_);
    kept.swap(picks_);
  }
  std::vector<v1::PickExplanation> out;
  for (const KeptPick& k : kept) {
    v1::PickExplanation& e = out.emplace_back();
    e.set_pool(k.pool);
    *e.mutable_decided_at() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(k.at));
    e.set_prompt_tokens(k.prompt_tokens);
    e.set_verdict(k.result.verdict == client::PickVerdict::kRoute  ? "route"
                  : k.result.verdict == client::PickVerdict::kShed ? "shed"
                                                                   : "unavailable");
    e.set_reason(k.result.reason);
    for (const client::ScoredEndpoint& c : k.result.scores) {
      v1::CandidateScore* cs = e.add_candidates();
      cs->set_address(c.address);
      cs->set_weight(c.weight);
      cs->set_expected_ttft_seconds(c.expected_ttft_seconds);
      cs->set_in_flight(c.occupancy);
      cs->set_slots_total(c.slots_total);
      cs->set_why(c.why);
    }
  }
  return out;
}

std::vector<v1::EndpointOutcome> PoolTable::TakeOutcomes() {
  MutexLock lock(&mu_);
  std::vector<v1::EndpointOutcome> out;
  for (auto& [key, o] : outcomes_) {
    o.set_node_id(key.first);
    o.set_address(key.second);
    out.push_back(std::move(o));
  }
  outcomes_.clear();
  return out;
}

void PoolTable::Restore(const std::vector<v1::EndpointOutcome>& outcomes) {
  MutexLock lock(&mu_);
  for (const v1::EndpointOutcome& o : outcomes) {
    v1::EndpointOutcome& mine = outcomes_[{o.node_id(), o.address()}];
    mine.set_requests(mine.requests() + o.requests());
    mine.set_errors(mine.errors() + o.errors());
  }
}

}  // namespace switchboard::picker
