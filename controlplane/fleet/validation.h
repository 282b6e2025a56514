// Validation of everything an agent (or a gateway reporting outcomes) sends. Runs before
// any state is touched: a message that fails is rejected whole (INVALID_ARGUMENT) and
// changes nothing.
#ifndef SWITCHBOARD_CONTROLPLANE_FLEET_VALIDATION_H_
#define SWITCHBOARD_CONTROLPLANE_FLEET_VALIDATION_H_

#include "absl/status/status.h"
#include "common/node_id.h"
#include "switchboard/v1/agent.pb.h"
#include "switchboard/v1/discovery.pb.h"

namespace switchboard::controlplane {

// Limits on agent input. Generous for real fleets, small enough to bound memory.
struct ValidationLimits {
  size_t max_id_length = kMaxNodeIdLength;  // Node ids (common/node_id.h).
  size_t max_model_length = 256;
  size_t max_label_length = 256;
  size_t max_labels = 64;
  size_t max_endpoints = 256;  // Per node (--max-endpoints-per-node); beyond: RESOURCE_EXHAUSTED.
  size_t max_nodes = 100000;   // Nodes known at once (--max-nodes); beyond: RESOURCE_EXHAUSTED.
  size_t max_pools = 10000;    // Pools declared in Hellos (--max-pools); beyond: RESOURCE_EXHAUSTED.
  size_t max_gpus = 64;
  size_t max_models = 64;  // Per endpoint.
  uint32_t max_slots = 65536;
  uint32_t max_queue = 10'000'000;
  double max_latency_seconds = 86400;
  double max_tokens_per_second = 1e9;
  size_t max_outcomes = 4096;                     // Per SubscribeRequest.
  uint64_t max_outcome_requests = 1'000'000'000;  // One endpoint's requests in one gateway report.
};

absl::Status ValidateModelId(absl::string_view model, const ValidationLimits& limits = {});
absl::Status ValidateHello(const v1::Hello& hello, const ValidationLimits& limits = {});
// Checks a report on its own and against the node's Hello (only declared endpoints).
// `last_sequence` is the previous report's sequence on this stream (0 before the first).
absl::Status ValidateReport(const v1::Report& report, const v1::Hello& hello, uint64_t last_sequence,
                            const ValidationLimits& limits = {});
// Checks the outcomes a gateway reports (ids, errors <= requests, absurd counts).
absl::Status ValidateOutcomes(const google::protobuf::RepeatedPtrField<v1::EndpointOutcome>& outcomes,
                              const ValidationLimits& limits = {});

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_FLEET_VALIDATION_H_
