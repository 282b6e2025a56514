// Validation of everything an agent sends. Runs before any state is touched: a message
// that fails is rejected whole (INVALID_ARGUMENT) and changes nothing.
#ifndef SWITCHBOARD_CONTROLPLANE_FLEET_VALIDATION_H_
#define SWITCHBOARD_CONTROLPLANE_FLEET_VALIDATION_H_

#include "absl/status/status.h"
#include "common/node_id.h"
#include "switchboard/v1/agent.pb.h"

namespace switchboard::controlplane {

// Limits on agent input. Generous for real fleets, small enough to bound memory.
struct ValidationLimits {
  size_t max_id_length = kMaxNodeIdLength;  // Node ids (common/node_id.h).
  size_t max_model_length = 256;
  size_t max_label_length = 256;
  size_t max_labels = 64;
  size_t max_endpoints = 256;  // Per node.
  size_t max_gpus = 64;
  size_t max_models = 64;  // Per endpoint.
  uint32_t max_slots = 65536;
  uint32_t max_queue = 10'000'000;
  double max_latency_seconds = 86400;
  double max_tokens_per_second = 1e9;
};

absl::Status ValidateModelId(absl::string_view model, const ValidationLimits& limits = {});
absl::Status ValidateHello(const v1::Hello& hello, const ValidationLimits& limits = {});
// Checks a report on its own and against the node's Hello (only declared endpoints).
// `last_sequence` is the previous report's sequence on this stream (0 before the first).
absl::Status ValidateReport(const v1::Report& report, const v1::Hello& hello, uint64_t last_sequence,
                            const ValidationLimits& limits = {});

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_FLEET_VALIDATION_H_
