// Size-aware endpoint picking, for gateways that see each request before routing it (a
// custom gateway on the native Subscribe stream, the load generator, the simulator).
//
// Envoy-style weighted least request cannot know that a 5,000-token prompt takes 3 s of
// prefill on a slow server and 0.6 s on a fast one; a gateway that reads the request can.
// PickEndpoint draws a few candidates in proportion to the control plane's weights (so
// that gateways acting on the same assignment spread out rather than pile onto one
// server) and takes the one with the lowest expected time to first token:
//
//   occupancy = slots busy + queued (as of the assignment)
//               + (requests this gateway sent there since - those of its requests that
//                  finished there since
//                  + the change in the other gateways' requests in flight there since,
//                    when they share them: client/in_flight_share.h)
//                 x gateways / gateways seen
//   wait      = max(0, occupancy - slots + 1) x mean service time / slots
//   TTFT      = wait + prompt tokens / prefill speed + 1 / decode speed
//
// where the mean service time is mean prompt / prefill speed + mean output / decode speed.
// A gateway that does not share sees only its own traffic between assignments; scaled by
// the number of gateways, the change in its own outstanding requests estimates everyone's
// (arrivals and completions), so a fast server that has freed slots since the report
// looks free again. Gateways that share see each other's and need no scaling, or only
// for those that do not reach them.
// Speeds come from the assignment (measured by the agents); an endpoint with no
// measurement yet takes the median of those that have one.
#ifndef SWITCHBOARD_CLIENT_PICKER_H_
#define SWITCHBOARD_CLIENT_PICKER_H_

#include <cstdint>
#include <random>
#include <vector>

namespace switchboard::client {

struct PickerEndpoint {
  uint32_t weight = 0;  // From the assignment; 0 = never picked.
  uint32_t slots_total = 0;
  uint32_t slots_free = 0;
  uint32_t queue_depth = 0;
  double decode_tokens_per_second = 0;   // Of one sequence; 0 = unknown.
  double prefill_tokens_per_second = 0;  // 0 = unknown.
  uint32_t sent_since_assignment = 0;    // By this gateway, since the assignment arrived.
  uint32_t done_since_assignment = 0;    // This gateway's requests that finished since then.
  // The other gateways' requests in flight here now minus when the assignment arrived, as
  // they shared them (0 when they do not share).
  double peers_change = 0;
};

struct PickerConfig {
  // Candidates drawn in proportion to weight (with replacement). More draws find the
  // free fast server more often; drawing (rather than scanning all) keeps gateways that
  // share a stale view from all choosing the same one. 8 was best in the simulator
  // (docs/policy-evaluation.md).
  int draws = 8;
  // Gateways sharing the pool over those whose requests this one counts (itself and the
  // peers it hears from): scales the counted change since the assignment to everyone's.
  double gateways = 1;
  double mean_prompt_tokens = 1000;
  double mean_output_tokens = 130;
};

// The median of the positive, finite values; `otherwise` when there is none. The fallback
// speed of an endpoint not measured yet.
double MedianOfKnown(std::vector<double> values, double otherwise);

// Occupancy of `e` as the picker estimates it (see the formula above).
double EstimatedOccupancy(const PickerEndpoint& e, const PickerConfig& config);

// Expected seconds to the first token of a `prompt_tokens` request on `e`, with unknown
// speeds replaced by the fallbacks.
double ExpectedTtftSeconds(const PickerEndpoint& e, double prompt_tokens, const PickerConfig& config,
                           double fallback_prefill, double fallback_decode);

// The index of the endpoint to send a `prompt_tokens` request to, or -1 when no endpoint
// has a weight. `drawn`, when given, receives how many times each endpoint was drawn.
int PickEndpoint(const std::vector<PickerEndpoint>& endpoints, double prompt_tokens, const PickerConfig& config,
                 std::mt19937_64& rng, std::vector<int>* drawn = nullptr);

}  // namespace switchboard::client

#endif  // SWITCHBOARD_CLIENT_PICKER_H_
