#include "client/pick_decision.h"

#include <algorithm>
#include <cstdint>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/hash.h"

namespace switchboard::client {
namespace {

// Rendezvous (highest random weight) score of a session on an endpoint: each session
// prefers one endpoint, and removing an endpoint moves only the sessions it held. Stable
// across processes, so every picker replica agrees; the final mix (splitmix64's) spreads
// FNV-1a's close outputs for close inputs.
uint64_t RendezvousScore(const std::string& session, const std::string& address) {
  uint64_t z = Fnv1a64(absl::StrCat(session, "\n", address)) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void DecideAmong(const std::vector<const CandidateEndpoint*>& eligible, bool empty_pool,
                 const std::set<std::string>& subset, const PickRequest& request, const PickPolicy& policy,
                 std::mt19937_64& rng, PickResult& result);

}  // namespace

PickResult DecidePick(const std::vector<CandidateEndpoint>& endpoints, const PickRequest& request,
                      const PickPolicy& policy, std::mt19937_64& rng, PickDetail detail) {
  PickResult result;
  result.prompt_tokens = request.prompt_tokens;
  const std::set<std::string> subset(request.subset.begin(), request.subset.end());
  std::vector<const CandidateEndpoint*> eligible;
  eligible.reserve(endpoints.size());
  std::vector<ScoredEndpoint> excluded;
  for (const CandidateEndpoint& c : endpoints) {
    const bool out_of_subset = !subset.empty() && subset.count(c.address) == 0;
    if (c.load.weight == 0 || out_of_subset) {
      ScoredEndpoint& s = excluded.emplace_back();
      s.address = c.address;
      s.weight = c.load.weight;
      s.slots_total = c.load.slots_total;
      s.occupancy = EstimatedOccupancy(c.load, policy.picker);
      s.fate = c.load.weight == 0 ? EndpointFate::kExcludedWeight : EndpointFate::kExcludedSubset;
      continue;
    }
    eligible.push_back(&c);
  }
  DecideAmong(eligible, endpoints.empty(), subset, request, policy, rng, result);
  for (ScoredEndpoint& s : excluded) result.scores.push_back(std::move(s));
  if (detail == PickDetail::kExplained) ExplainPick(&result);
  return result;
}

void ExplainPick(PickResult* result) {
  if (result->explained) return;
  result->explained = true;
  std::string how;  // Why the pick.
  if (result->verdict == PickVerdict::kRoute) {
    if (result->draws == 0) {
      how = absl::StrFormat("session affinity (occupancy %.2f of slots)", result->session_occupancy_ratio);
    } else {
      if (result->session_server >= 0) {
        how = absl::StrFormat("session's server %s full (occupancy %.2f of slots); ",
                              result->scores[result->session_server].address, result->session_occupancy_ratio);
      }
      absl::StrAppend(&how, "lowest expected TTFT of ", result->draws, " weighted draws");
    }
  }
  const double pick_ttft = result->pick >= 0 ? result->scores[result->pick].expected_ttft_seconds : 0;
  for (ScoredEndpoint& s : result->scores) {
    switch (s.fate) {
      case EndpointFate::kExcludedWeight:
        s.why = "excluded: weight 0 (not ready, circuit open or drained)";
        break;
      case EndpointFate::kExcludedSubset:
        s.why = "excluded: not in the gateway's subset hint";
        break;
      case EndpointFate::kShed:
        s.why = "not routed: the pool sheds";
        break;
      case EndpointFate::kPicked:
        s.why = absl::StrCat("picked: ", how);
        break;
      case EndpointFate::kSessionElsewhere:
        s.why = "passed over: the session's server takes it";
        break;
      case EndpointFate::kNotDrawn:
        s.why = absl::StrFormat("not drawn (weight %d of %.0f)", s.weight, result->total_weight);
        break;
      case EndpointFate::kPassedOver:
        s.why = absl::StrFormat("drawn %dx, passed over: expected TTFT %.3fs > %.3fs", s.drawn, s.expected_ttft_seconds,
                                pick_ttft);
        break;
    }
    if (s.fallback > 0) absl::StrAppend(&s.why, "; fallback ", s.fallback);
  }
  switch (result->verdict) {
    case PickVerdict::kUnavailable:
      result->reason = absl::StrCat(result->reason_prefix, result->reason);
      break;
    case PickVerdict::kShed:
      result->reason = absl::StrCat(
          result->reason_prefix,
          absl::StrFormat("shed: pool occupancy %.0f over %.0f slots = %.2f > bound %.2f", result->occupancy,
                          result->slots, result->occupancy / result->slots, result->shed_bound));
      break;
    case PickVerdict::kRoute:
      result->reason = absl::StrCat(result->reason_prefix,
                                    absl::StrFormat("%s: %s, expected TTFT %.3fs for %.0f prompt tokens (%d eligible)",
                                                    result->scores[result->pick].address, how, pick_ttft,
                                                    result->prompt_tokens, result->eligible));
      break;
  }
}

namespace {

// DecidePick on the eligible endpoints: fills in `result`'s facts but for the excluded
// endpoints (the reason only when none is eligible).
void DecideAmong(const std::vector<const CandidateEndpoint*>& eligible, bool empty_pool,
                 const std::set<std::string>& subset, const PickRequest& request, const PickPolicy& policy,
                 std::mt19937_64& rng, PickResult& result) {
  if (eligible.empty()) {
    result.verdict = PickVerdict::kUnavailable;
    result.reason = empty_pool       ? "the pool has no endpoints"
                    : subset.empty() ? "no endpoint of the pool is ready (all excluded: weight 0)"
                                     : absl::StrCat("no ready endpoint in the gateway's subset (",
                                                    absl::StrJoin(request.subset, ","), ")");
    return;
  }

  result.eligible = static_cast<int>(eligible.size());
  std::vector<double> prefill, decode;
  prefill.reserve(eligible.size());
  decode.reserve(eligible.size());
  for (const CandidateEndpoint* c : eligible) {
    prefill.push_back(c->load.prefill_tokens_per_second);
    decode.push_back(c->load.decode_tokens_per_second);
  }
  const double fallback_prefill = MedianOfKnown(prefill, 1000);
  const double fallback_decode = MedianOfKnown(decode, 30);
  result.scores.reserve(eligible.size());
  for (const CandidateEndpoint* c : eligible) {
    ScoredEndpoint& s = result.scores.emplace_back();
    s.address = c->address;
    s.weight = c->load.weight;
    s.slots_total = c->load.slots_total;
    s.occupancy = EstimatedOccupancy(c->load, policy.picker);
    s.expected_ttft_seconds =
        ExpectedTtftSeconds(c->load, request.prompt_tokens, policy.picker, fallback_prefill, fallback_decode);
    result.occupancy += s.occupancy;
    result.slots += std::max<uint32_t>(1, c->load.slots_total);
    result.total_weight += c->load.weight;
  }

  if (policy.shed_occupancy > 0 && result.occupancy / result.slots > policy.shed_occupancy) {
    result.verdict = PickVerdict::kShed;
    result.retry_after = policy.retry_after;
    result.shed_bound = policy.shed_occupancy;
    for (ScoredEndpoint& s : result.scores) s.fate = EndpointFate::kShed;
    return;
  }

  int pick = -1;
  if (!request.session_id.empty()) {
    int best = 0;
    uint64_t best_score = RendezvousScore(request.session_id, eligible[0]->address);
    for (int i = 1; i < static_cast<int>(eligible.size()); ++i) {
      const uint64_t score = RendezvousScore(request.session_id, eligible[i]->address);
      if (score > best_score) best = i, best_score = score;
    }
    result.session_server = best;
    result.session_occupancy_ratio =
        result.scores[best].occupancy / std::max<uint32_t>(1, eligible[best]->load.slots_total);
    if (result.session_occupancy_ratio < policy.affinity_max_occupancy) pick = best;
  }
  if (pick < 0) {
    std::vector<PickerEndpoint> loads;
    loads.reserve(eligible.size());
    for (const CandidateEndpoint* c : eligible) loads.push_back(c->load);
    std::vector<int> drawn;
    pick = PickEndpoint(loads, request.prompt_tokens, policy.picker, rng, &drawn);
    result.draws = std::max(1, policy.picker.draws);
    for (int i = 0; i < static_cast<int>(eligible.size()); ++i) {
      result.scores[i].drawn = drawn[i];
      result.scores[i].fate = drawn[i] == 0 ? EndpointFate::kNotDrawn : EndpointFate::kPassedOver;
    }
  } else {
    for (ScoredEndpoint& s : result.scores) s.fate = EndpointFate::kSessionElsewhere;
  }
  result.pick = pick;
  result.scores[pick].fate = EndpointFate::kPicked;

  std::vector<int> rest;
  rest.reserve(eligible.size());
  for (int i = 0; i < static_cast<int>(eligible.size()); ++i) {
    if (i != pick) rest.push_back(i);
  }
  std::stable_sort(rest.begin(), rest.end(), [&](int a, int b) {
    return result.scores[a].expected_ttft_seconds < result.scores[b].expected_ttft_seconds;
  });
  rest.resize(std::min<size_t>(rest.size(), std::max(0, policy.fallbacks)));
  result.verdict = PickVerdict::kRoute;
  result.endpoints.reserve(rest.size() + 1);
  result.endpoints.push_back(eligible[pick]->address);
  for (size_t k = 0; k < rest.size(); ++k) {
    result.endpoints.push_back(eligible[rest[k]]->address);
    result.scores[rest[k]].fallback = static_cast<int>(k) + 1;
  }
}

}  // namespace

}  // namespace switchboard::client
