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
    p.candidates.clear();
    p.index.clear();
    p.candidates.reserve(a.endpoints_size());
    for (const v1::AssignedEndpoint& ep : a.endpoints()) {
      p.index.emplace(ep.address(), p.candidates.size());
      client::CandidateEndpoint& c = p.candidates.emplace_back();
      c.address = ep.address();
      const bool routable = ep.state() == v1::ENDPOINT_STATE_READY && ep.circuit() != v1::CIRCUIT_STATE_OPEN;
      c.load.weight = routable ? ep.weight() : 0;
      c.load.slots_total = ep.slots_total();
      c.load.slots_free = ep.slots_free();
      c.load.queue_depth = ep.queue_depth();
      c.load.decode_tokens_per_second = ep.decode_tokens_per_second();
      c.load.prefill_tokens_per_second = ep.prefill_tokens_per_second();
    }
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

void PoolTable::Refresh(Pool& p, client::PickPolicy* policy) const {
  for (client::CandidateEndpoint& c : p.candidates) c.load.peers_change = p.peers.Change(c.address);
  *policy = policy_;
  policy->picker.gateways = p.peers.GatewaysScale(policy_.picker.gateways);
}

controlplane::policy::OccupancyChange PoolTable::Change(const std::vector<client::CandidateEndpoint>& candidates) {
  // This picker's requests sent (and seen finish) plus the other pickers' shared change.
  controlplane::policy::OccupancyChange change;
  for (const client::CandidateEndpoint& c : candidates) {
    change.Add(c.load.weight > 0, static_cast<double>(c.load.sent_since_assignment),
               static_cast<double>(c.load.done_since_assignment), c.load.peers_change);
  }
  return change;
}

client::PickResult PoolTable::Route(const std::string& pool, Pool& p, const client::PickRequest& request,
                                    const client::PickPolicy& policy, std::string class_reason) {
  // Only the kept picks that are taken are explained (TakePicks, outside the lock), or a
  // caller that wants this one's reason (ExplainPick).
  client::PickResult r = client::DecidePick(p.candidates, request, policy, rng_, client::PickDetail::kFacts);
  if (r.verdict == client::PickVerdict::kRoute) {
    ++p.candidates[p.index.at(r.endpoints.front())].load.sent_since_assignment;
    ++p.in_flight[r.endpoints.front()];
  }
  r.reason_prefix = std::move(class_reason);
  Keep(pool, r);
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
    r.explained = true;
    return r;
  }
  Pool& p = it->second;
  client::PickPolicy policy;
  Refresh(p, &policy);
  const std::vector<client::CandidateEndpoint>& candidates = p.candidates;
  std::string class_reason;
  const bool any_routable = std::any_of(candidates.begin(), candidates.end(),
                                        [](const client::CandidateEndpoint& c) { return c.load.weight > 0; });
  if (p.admission.enabled() && any_routable) {  // None routable: DecidePick says so (503).
    // The published headroom less the change in occupancy since the assignment on the
    // routable endpoints, scaled for the pickers it does not hear from.
    const controlplane::policy::OccupancyChange change = Change(candidates);
    const controlplane::policy::ClassChoice choice =
        controlplane::policy::ClassifyRequest(p.admission, priority, tenant);
    auto h = p.headroom_slots.find(choice.name);
    const double headroom = controlplane::policy::HeadroomSinceAssignment(h == p.headroom_slots.end() ? 0 : h->second,
                                                                          change, policy.picker.gateways);
    const controlplane::policy::AdmissionDecision d =
        controlplane::policy::DecideAdmission(p.admission, choice.name, headroom);
    class_reason = absl::StrCat("class ", choice.name, " (", choice.reason, "): ");
    if (!d.admit) {
      if (class_refused != nullptr) *class_refused = true;
      client::PickResult r;
      r.verdict = client::PickVerdict::kShed;
      r.retry_after = policy_.retry_after;
      r.reason = absl::StrCat(class_reason, d.reason);
      r.explained = true;
      r.prompt_tokens = request.prompt_tokens;
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
      Keep(pool, r);
      return r;
    }
  }
  return Route(pool, p, request, policy, std::move(class_reason));
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
    client::PickPolicy policy;
    Refresh(p, &policy);
    const controlplane::policy::OccupancyChange change = Change(p.candidates);
    std::vector<controlplane::policy::ClassHeadroom> headrooms;
    for (const controlplane::policy::PriorityClass& c : p.admission.classes) {
      controlplane::policy::ClassHeadroom h;
      h.name = c.name;
      h.rank = c.rank;
      h.max_share = c.max_share;
      auto f = p.headroom_slots.find(c.name);
      h.headroom_slots = controlplane::policy::HeadroomSinceAssignment(f == p.headroom_slots.end() ? 0 : f->second,
                                                                       change, policy.picker.gateways);
      headrooms.push_back(std::move(h));
    }
    const bool any_routable = std::any_of(p.candidates.begin(), p.candidates.end(),
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
      result.explained = true;
      result.prompt_tokens = h->second.request.prompt_tokens;
      Keep(name, result);
      out->emplace_back(std::move(h->second.on_release), std::move(result));
      held_.erase(h);
    }
    for (uint64_t id : r.admitted) {
      auto h = held_.find(id);
      if (h == held_.end()) continue;
      // Each admission counts as sent (Route), so the next one sees the pool as it is then.
      client::PickResult result =
          Route(name, p, h->second.request, policy, absl::StrCat(h->second.class_reason, "released from the queue: "));
      out->emplace_back(std::move(h->second.on_release), std::move(result));
      held_.erase(h);
    }
  }
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

void PoolTable::Keep(const std::string& pool, const client::PickResult& result) {
  KeptPick& k = kept_[kept_next_];
  k.pool = pool;
  k.at = clock_->Now();
  k.result = result;
  kept_next_ = (kept_next_ + 1) % kKeptPicks;
  kept_count_ = std::min(kept_count_ + 1, kKeptPicks);
}

void PoolTable::Done(const std::string& pool, const std::string& picked) {
  Released released;  // A slot freed: held requests may go.
  {
    MutexLock lock(&mu_);
    auto it = by_pool_.find(pool);
    if (it == by_pool_.end()) return;
    auto c = it->second.index.find(picked);
    if (c != it->second.index.end()) ++it->second.candidates[c->second].load.done_since_assignment;
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
  std::vector<KeptPick> kept;
  {
    MutexLock lock(&mu_);
    kept.reserve(kept_count_);
    for (size_t i = kept_count_; i > 0; --i) kept.push_back(kept_[(kept_next_ + kKeptPicks - i) % kKeptPicks]);
    kept_count_ = 0;
  }
  std::vector<v1::PickExplanation> out;
  for (KeptPick& k : kept) {
    client::ExplainPick(&k.result);
    v1::PickExplanation& e = out.emplace_back();
    e.set_pool(k.pool);
    *e.mutable_decided_at() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(k.at));
    e.set_prompt_tokens(k.result.prompt_tokens);
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
