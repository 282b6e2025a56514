// One request's routing decision, as an endpoint picker (switchboard-picker, the
// simulator's switchboard_picker policy) makes it: which endpoints may take the request,
// whether the pool is too full to admit it, which one takes it and which ones follow as
// fallbacks (the gateway tries them in order when an attempt fails).
//
//   eligible  = endpoints with a weight (READY, circuit not open: the control plane gives
//               the others weight 0), restricted to the gateway's subset hint when it
//               sends one; none: kUnavailable (the gateway answers 503)
//   admission = the pool's occupancy (busy + queued + the pickers' change since the
//               assignment: EstimatedOccupancy, client/picker.h) over its slots; above
//               shed_occupancy: kShed (429 with Retry-After)
//   pick      = the session's server when the request names a session and that server
//               is not full (rendezvous hashing: a session stays put while the pool
//               changes around it), otherwise PickEndpoint (client/picker.h)
//   fallbacks = the other eligible endpoints by expected time to first token, best first
//
// Every decision explains itself: a one-line reason, and for every endpoint why it was
// picked, a fallback, passed over or excluded. Formatting those lines costs more than the
// decision (2.8 against 2.0 us at 8 endpoints, 15 against 6 us at 64), so a caller that
// keeps only some decisions' explanations asks for the facts alone (PickDetail::kFacts)
// and formats the ones it keeps with ExplainPick; the lines are the same either way.
//
// Pure: no I/O, no clock, randomness from the caller.
#ifndef SWITCHBOARD_CLIENT_PICK_DECISION_H_
#define SWITCHBOARD_CLIENT_PICK_DECISION_H_

#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/picker.h"

namespace switchboard::client {

struct CandidateEndpoint {
  std::string address;  // ip:port, as the gateway connects to it.
  PickerEndpoint load;
};

struct PickPolicy {
  PickerConfig picker;
  int fallbacks = 2;  // Endpoints listed after the pick (fewer when the pool has fewer).
  // Shed when occupancy / slots of the eligible endpoints exceeds this; 0 = never shed.
  double shed_occupancy = 0;
  absl::Duration retry_after = absl::Seconds(1);  // Sent with a 429.
  // A session's server is passed over when its occupancy / slots is at least this (a
  // full server would make the session wait longer than a cold prefix cache costs).
  double affinity_max_occupancy = 1.0;
};

struct PickRequest {
  double prompt_tokens = 0;
  std::string session_id;           // Empty: no affinity.
  std::vector<std::string> subset;  // The gateway's subset hint; empty: every endpoint.
};

enum class PickVerdict { kRoute, kUnavailable, kShed };

// What became of one endpoint (the facts behind ScoredEndpoint::why).
enum class EndpointFate {
  kExcludedWeight,  // Weight 0: not ready, circuit open or drained.
  kExcludedSubset,  // Not in the gateway's subset hint.
  kShed,            // Eligible, but the pool sheds.
  kPicked,
  kSessionElsewhere,  // Eligible, but the session's server took the request.
  kNotDrawn,          // Not among the weighted draws.
  kPassedOver,        // Drawn, with a higher expected TTFT than the pick.
};

// One endpoint of the pool as the decision saw it, and what became of it.
struct ScoredEndpoint {
  std::string address;
  uint32_t weight = 0;  // As the decision used it (0 = excluded).
  uint32_t slots_total = 0;
  double occupancy = 0;              // Estimated requests in flight (EstimatedOccupancy).
  double expected_ttft_seconds = 0;  // 0 for an excluded endpoint.
  EndpointFate fate = EndpointFate::kExcludedWeight;
  int drawn = 0;     // Times drawn (kPicked, kPassedOver).
  int fallback = 0;  // Its place among the fallbacks (1 = first); 0: not one.
  std::string why;   // Picked, fallback, passed over or excluded, and why (ExplainPick).
};

enum class PickDetail {
  kExplained,  // reason and every why formatted.
  kFacts,      // kRoute and kShed leave them to ExplainPick (kUnavailable is always explained).
};

struct PickResult {
  PickVerdict verdict = PickVerdict::kUnavailable;
  std::vector<std::string> endpoints;  // kRoute: the pick, then the fallbacks.
  absl::Duration retry_after;          // kShed.
  // One line: why this verdict and this pick (starting with reason_prefix). Empty until
  // explained when decided with PickDetail::kFacts.
  std::string reason;
  // Every endpoint: the eligible ones first (in the pool's order), then the excluded ones.
  std::vector<ScoredEndpoint> scores;

  // The facts the reason is formatted from.
  bool explained = false;
  std::string reason_prefix;           // The caller's: an earlier decision (such as a priority class).
  int pick = -1;                       // Index of the pick in scores (kRoute).
  int draws = 0;                       // Weighted draws made; 0: the session's server took it.
  int session_server = -1;             // Index in scores of the session's server; -1: no session.
  double session_occupancy_ratio = 0;  // Its occupancy over its slots.
  double total_weight = 0;             // Of the eligible endpoints.
  double occupancy = 0, slots = 0;     // Of the eligible endpoints (kShed).
  double shed_bound = 0;               // PickPolicy::shed_occupancy (kShed).
  double prompt_tokens = 0;
  int eligible = 0;
};

PickResult DecidePick(const std::vector<CandidateEndpoint>& endpoints, const PickRequest& request,
                      const PickPolicy& policy, std::mt19937_64& rng, PickDetail detail = PickDetail::kExplained);

// Formats `result`'s reason (after its reason_prefix) and every endpoint's why from its
// facts; does nothing when they are formatted already.
void ExplainPick(PickResult* result);

}  // namespace switchboard::client

#endif  // SWITCHBOARD_CLIENT_PICK_DECISION_H_
