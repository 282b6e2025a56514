#include "picker/pool_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "controlplane/policy/admission_proto.h"

namespace switchboard::picker {

PoolTable::PoolTable(std::vector<std::string> pools, client::PickPolicy policy, uint64_t seed)
    : pools_(std::move(pools)), policy_(std::move(policy)), rng_(seed) {}

bool PoolTable::Serves(const std::string& pool) const {
  return pools_.empty() || std::find(pools_.begin(), pools_.end(), pool) != pools_.end();
}

absl::Status PoolTable::Apply(const v1::Assignment& a) {
  if (!Serves(a.pool())) return absl::InvalidArgumentError(absl::StrCat("pool ", a.pool(), " is not served here"));
  MutexLock lock(&mu_);
  Pool& p = by_pool_[a.pool()];
  p.assignment = a;
  p.since.clear();
  p.admission = controlplane::policy::AdmissionFromProto(a.priority());
  p.headroom_slots.clear();
  for (const v1::PriorityClass& c : a.priority().classes()) p.headroom_slots[c.name()] = c.headroom_slots();
  return absl::OkStatus();
}

bool PoolTable::Ready() const {
  MutexLock lock(&mu_);
  if (pools_.empty()) return !by_pool_.empty();
  return std::all_of(pools_.begin(), pools_.end(),
                     [this](const std::string& p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return by_pool_.count(p) > 0; });
}

client::PickResult PoolTable::Pick(const std::string& pool, const client::PickRequest& request,
                                   absl::string_view priority, absl::string_view tenant, bool* class_refused) {
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
  candidates.reserve(p.assignment.endpoints_size());
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
    candidates.push_back(std::move(c));
  }
  std::string class_reason;
  const bool any_routable = std::any_of(candidates.begin(), candidates.end(),
                                        [](const client::CandidateEndpoint& c) { return c.load.weight > 0; });
  if (p.admission.enabled() && any_routable) {  // None routable: DecidePick says so (503).
    // The published headroom less what this picker sent to the routable endpoints since
    // (and saw finish), scaled by the number of pickers: the change in occupancy that
    // EstimatedOccupancy adds on the endpoints' side.
    double change = 0;
    for (const client::CandidateEndpoint& c : candidates) {
      if (c.load.weight == 0) continue;
      change += static_cast<double>(c.load.sent_since_assignment) - c.load.done_since_assignment;
    }
    change *= std::max(1.0, policy_.picker.gateways);
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
      return r;
    }
  }
  client::PickResult r = client::DecidePick(candidates, request, policy_, rng_);
  if (r.verdict == client::PickVerdict::kRoute) ++p.since[r.endpoints.front()].sent;
  if (!class_reason.empty()) r.reason = absl::StrCat(class_reason, r.reason);
  return r;
}

void PoolTable::Done(const std::string& pool, const std::string& picked) {
  MutexLock lock(&mu_);
  auto it = by_pool_.find(pool);
  if (it != by_pool_.end()) ++it->second.since[picked].done;
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
