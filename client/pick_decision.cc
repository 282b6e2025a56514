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
                      const PickPolicy& policy, std::mt19937_64& rng) {
  PickResult result;
  const std::set<std::string> subset(request.subset.begin(), request.subset.end());
  std::vector<const CandidateEndpoint*> eligible;
  std::vector<ScoredEndpoint> excluded;
  for (const CandidateEndpoint& c : endpoints) {
    const bool out_of_subset = !subset.empty() && subset.count(c.address) == 0;
    if (c.load.weight == 0 || out_of_subset) {
      excluded.push_back({c.address, c.load.weight, c.load.slots_total, EstimatedOccupancy(c.load, policy.picker), 0,
                          c.load.weight == 0 ? "excluded: weight 0 (not ready, circuit open or drained)"
                                             : "excluded: not in the gateway's subset hint"});
      continue;
    }
    eligible.push_back(&c);
  }
  DecideAmong(eligible, endpoints.empty(), subset, request, policy, rng, result);
  for (ScoredEndpoint& s : excluded) result.scores.push_back(std::move(s));
  return result;
}

namespace {

// DecidePick on the eligible endpoints: fills in `result` but for the excluded endpoints.
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

  std::vector<double> prefill, decode;
  double occupancy = 0, slots = 0;
  for (const CandidateEndpoint* c : eligible) {
    prefill.push_back(c->load.prefill_tokens_per_second);
    decode.push_back(c->load.decode_tokens_per_second);
    occupancy += EstimatedOccupancy(c->load, policy.picker);
    slots += std::max<uint32_t>(1, c->load.slots_total);
  }
  const double fallback_prefill = MedianOfKnown(prefill, 1000);
  const double fallback_decode = MedianOfKnown(decode, 30);
  for (const CandidateEndpoint* c : eligible) {
    result.scores.push_back(
        {c->address, c->load.weight, c->load.slots_total, EstimatedOccupancy(c->load, policy.picker),
         ExpectedTtftSeconds(c->load, request.prompt_tokens, policy.picker, fallback_prefill, fallback_decode), ""});
  }

  if (policy.shed_occupancy > 0 && occupancy / slots > policy.shed_occupancy) {
    result.verdict = PickVerdict::kShed;
    result.retry_after = policy.retry_after;
    result.reason = absl::StrFormat("shed: pool occupancy %.0f over %.0f slots = %.2f > bound %.2f", occupancy, slots,
                                    occupancy / slots, policy.shed_occupancy);
    for (ScoredEndpoint& s : result.scores) s.why = "not routed: the pool sheds";
    return;
  }

  int pick = -1;
  std::string why;
  if (!request.session_id.empty()) {
    int best = 0;
    for (int i = 1; i < static_cast<int>(eligible.size()); ++i) {
      if (RendezvousScore(request.session_id, eligible[i]->address) >
          RendezvousScore(request.session_id, eligible[best]->address)) {
        best = i;
      }
    }
    const PickerEndpoint& e = eligible[best]->load;
    const double ratio = EstimatedOccupancy(e, policy.picker) / std::max<uint32_t>(1, e.slots_total);
    if (ratio < policy.affinity_max_occupancy) {
      pick = best;
      why = absl::StrFormat("session affinity (occupancy %.2f of slots)", ratio);
    } else {
      why = absl::StrFormat("session's server %s full (occupancy %.2f of slots); ", eligible[best]->address, ratio);
    }
  }
  std::vector<int> drawn;  // Empty: the session's server, no draws.
  if (pick < 0) {
    std::vector<PickerEndpoint> loads;
    for (const CandidateEndpoint* c : eligible) loads.push_back(c->load);
    pick = PickEndpoint(loads, request.prompt_tokens, policy.picker, rng, &drawn);
    absl::StrAppend(&why, "lowest expected TTFT of ", std::max(1, policy.picker.draws), " weighted draws");
  }

  std::vector<int> rest;
  for (int i = 0; i < static_cast<int>(eligible.size()); ++i) {
    if (i != pick) rest.push_back(i);
  }
  std::stable_sort(rest.begin(), rest.end(), [&](int a, int b) {
    return result.scores[a].expected_ttft_seconds < result.scores[b].expected_ttft_seconds;
  });
  rest.resize(std::min<size_t>(rest.size(), std::max(0, policy.fallbacks)));
  result.verdict = PickVerdict::kRoute;
  result.endpoints.push_back(eligible[pick]->address);
  for (int i : rest) result.endpoints.push_back(eligible[i]->address);
  double total_weight = 0;
  for (const CandidateEndpoint* c : eligible) total_weight += c->load.weight;
  const double pick_ttft = result.scores[pick].expected_ttft_seconds;
  for (int i = 0; i < static_cast<int>(eligible.size()); ++i) {
    ScoredEndpoint& s = result.scores[i];
    const auto fallback = std::find(rest.begin(), rest.end(), i);
    if (i == pick) {
      s.why = absl::StrCat("picked: ", why);
    } else if (drawn.empty()) {
      s.why = "passed over: the session's server takes it";
    } else if (drawn[i] == 0) {
      s.why = absl::StrFormat("not drawn (weight %d of %.0f)", s.weight, total_weight);
    } else {
      s.why = absl::StrFormat("drawn %dx, passed over: expected TTFT %.3fs > %.3fs", drawn[i], s.expected_ttft_seconds,
                              pick_ttft);
    }
    if (fallback != rest.end()) absl::StrAppend(&s.why, "; fallback ", fallback - rest.begin() + 1);
  }
  result.reason = absl::StrFormat("%s: %s, expected TTFT %.3fs for %.0f prompt tokens (%d eligible)",
                                  eligible[pick]->address, why, result.scores[pick].expected_ttft_seconds,
                                  request.prompt_tokens, static_cast<int>(eligible.size()));
}

}  // namespace

}  // namespace switchboard::client
