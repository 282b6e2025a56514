// Capacity planner (sbctl plan): how much GPU memory a model needs to serve N slots of
// a given context, and which GPUs fit it. Pure arithmetic, unit-tested by hand.
//
//   weights  = parameters x bits-per-weight / 8
//   KV cache = 2 (K and V) x layers x kv_heads x head_dim x bytes-per-element x tokens,
//              tokens = context-per-slot x slots        (all slots full: the worst case)
//   overhead = runtime_overhead (CUDA context and compute buffers, default 0.5 GiB)
//              + activation_share x weights (default 5%)
// A GPU "fits" when the total is at most usable_fraction (default 0.9) of its memory;
// several GPUs split the model evenly (tensor parallel, counts 1, 2, 4 or 8).
#ifndef SWITCHBOARD_CLI_PLANNER_H_
#define SWITCHBOARD_CLI_PLANNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace switchboard::cli {

struct ModelShape {
  std::string name;
  double parameters = 0;  // Count, e.g. 8.03e9.
  int layers = 0;
  int kv_heads = 0;  // Grouped-query attention: fewer than attention heads.
  int head_dim = 0;
};

struct GpuModel {
  std::string name;
  uint64_t memory_bytes = 0;
  double fp16_tflops = 0;
  double bandwidth_gbps = 0;  // Memory bandwidth, GB/s: what decode speed follows.
};

struct PlanRequest {
  ModelShape model;
  std::string quant = "Q4_K_M";  // Weight format.
  std::string kv_type = "f16";   // KV-cache element type.
  int64_t ctx_per_slot = 4096;
  int slots = 1;
  double runtime_overhead_bytes = 512.0 * 1024 * 1024;
  double activation_share = 0.05;
  double usable_fraction = 0.90;
};

struct GpuFit {
  GpuModel gpu;
  int count = 0;              // GPUs needed (0: does not fit even on 8).
  double headroom_bytes = 0;  // Usable memory left per GPU.
};

struct Plan {
  double bits_per_weight = 0;
  double kv_bytes_per_element = 0;
  uint64_t kv_bytes_per_token = 0;
  uint64_t weights_bytes = 0;
  uint64_t kv_cache_bytes = 0;
  uint64_t overhead_bytes = 0;
  uint64_t total_bytes = 0;
  std::vector<GpuFit> gpus;  // Every catalog GPU; fitting ones first, fewest GPUs first.
};

// Known models and GPUs (names are case-insensitive).
const std::vector<ModelShape>& ModelCatalog();
const std::vector<GpuModel>& GpuCatalog();
absl::StatusOr<ModelShape> FindModel(const std::string& name);
// Bits per weight of a format: GGUF types (effective, block scales included) and
// f32/f16/bf16/fp8/int8/int4.
absl::StatusOr<double> BitsPerWeight(const std::string& quant);
absl::StatusOr<double> KvBytesPerElement(const std::string& kv_type);

absl::StatusOr<Plan> MakePlan(const PlanRequest& request);

}  // namespace switchboard::cli

#endif  // SWITCHBOARD_CLI_PLANNER_H_
