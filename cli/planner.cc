#include "cli/planner.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace switchboard::cli {
namespace {

struct Format {
  const char* name;
  double value;
};

// Effective bits per weight of llama.cpp's GGUF types (with their block scales), and
// plain formats. Approximate for the k-quants, whose mix varies slightly per model.
const Format kWeightFormats[] = {
    {"f32", 32},      {"f16", 16},      {"bf16", 16},     {"fp8", 8},       {"int8", 8},
    {"int4", 4.25},   {"q8_0", 8.5},    {"q6_k", 6.5625}, {"q5_k_m", 5.69}, {"q5_0", 5.5},
    {"q4_k_m", 4.85}, {"q4_k_s", 4.58}, {"q4_0", 4.55},   {"q3_k_m", 3.91}, {"q2_k", 2.63},
};

// KV-cache element sizes: llama.cpp's --cache-type-k/-v (q8_0: 34 bytes per 32
// values, q4_0: 18 per 32), vLLM's fp8.
const Format kKvFormats[] = {
    {"f32", 4}, {"f16", 2}, {"bf16", 2}, {"fp8", 1}, {"q8_0", 34.0 / 32}, {"q4_0", 18.0 / 32},
};

template <size_t N>
absl::StatusOr<double> Lookup(const Format (&table)[N], const std::string& name, const char* what) {
  const std::string key = absl::AsciiStrToLower(name);
  std::vector<std::string> known;
  for (const Format& f : table) {
    if (key == f.name) return f.value;
    known.push_back(f.name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown ", what, " '", name, "' (known: ", absl::StrJoin(known, ", "), ")"));
}

}  // namespace

const std::vector<ModelShape>& ModelCatalog() {
  static const auto* catalog = new std::vector<ModelShape>{
      // name, parameters, layers, kv_heads, head_dim (from each model's config.json)
      {"llama-3-8b", 8.03e9, 32, 8, 128},   {"llama-3-70b", 70.6e9, 80, 8, 128}, {"llama-2-7b", 6.74e9, 32, 32, 128},
      {"llama-2-13b", 13.0e9, 40, 40, 128}, {"mistral-7b", 7.24e9, 32, 8, 128},  {"mixtral-8x7b", 46.7e9, 32, 8, 128},
      {"qwen2.5-7b", 7.62e9, 28, 4, 128},   {"qwen2.5-72b", 72.7e9, 80, 8, 128}, {"gemma-2-9b", 9.24e9, 42, 8, 256},
      {"phi-3-mini", 3.82e9, 32, 32, 96},
  };
  return *catalog;
}

const std::vector<GpuModel>& GpuCatalog() {
  static const auto* catalog = new std::vector<GpuModel>{
      {"T4", 16ull << 30, 65, 320},          {"L4", 24ull << 30, 121, 300},
      {"A10G", 24ull << 30, 125, 600},       {"RTX 4090", 24ull << 30, 165, 1008},
      {"L40S", 48ull << 30, 362, 864},       {"A100 40GB", 40ull << 30, 312, 1555},
      {"A100 80GB", 80ull << 30, 312, 2039}, {"H100 80GB", 80ull << 30, 989, 3350},
      {"H200", 141ull << 30, 989, 4800},     {"MI300X", 192ull << 30, 1307, 5300},
  };
  return *catalog;
}

absl::StatusOr<ModelShape> FindModel(const std::string& name) {
  const std::string key = absl::AsciiStrToLower(name);
  std::vector<std::string> known;
  for (const ModelShape& m : ModelCatalog()) {
    if (m.name == key) return m;
    known.push_back(m.name);
  }
  return absl::NotFoundError(absl::StrCat("unknown model '", name, "' (known: ", absl::StrJoin(known, ", "),
                                          "; or give --params, --layers, --kv-heads and --head-dim)"));
}

absl::StatusOr<double> BitsPerWeight(const std::string& quant) { return Lookup(kWeightFormats, quant, "--quant"); }
absl::StatusOr<double> KvBytesPerElement(const std::string& kv_type) {
  return Lookup(kKvFormats, kv_type, "--kv-type");
}

absl::StatusOr<Plan> MakePlan(const PlanRequest& r) {
  const ModelShape& m = r.model;
  if (!(m.parameters > 0) || m.parameters > 1e13 || m.layers <= 0 || m.layers > 1000 || m.kv_heads <= 0 ||
      m.kv_heads > 1024 || m.head_dim <= 0 || m.head_dim > 4096) {
    return absl::InvalidArgumentError("model shape must have parameters > 0 and layers, kv heads, head dim in range");
  }
  if (r.ctx_per_slot <= 0 || r.ctx_per_slot > (1 << 24))
    return absl::InvalidArgumentError("--ctx must be 1..16M tokens");
  if (r.slots <= 0 || r.slots > 65536) return absl::InvalidArgumentError("--slots must be 1..65536");
  if (!(r.usable_fraction > 0) || r.usable_fraction > 1)
    return absl::InvalidArgumentError("usable fraction must be in (0, 1]");
  if (!(r.runtime_overhead_bytes >= 0) || !(r.activation_share >= 0)) {
    return absl::InvalidArgumentError("overheads must be >= 0");
  }
  Plan p;
  absl::StatusOr<double> bpw = BitsPerWeight(r.quant);
  if (!bpw.ok()) return bpw.status();
  absl::StatusOr<double> kv_bytes = KvBytesPerElement(r.kv_type);
  if (!kv_bytes.ok()) return kv_bytes.status();
  p.bits_per_weight = *bpw;
  p.kv_bytes_per_element = *kv_bytes;
  const double weights = m.parameters * *bpw / 8;
  const double per_token = 2.0 * m.layers * m.kv_heads * m.head_dim * *kv_bytes;
  const double tokens = static_cast<double>(r.ctx_per_slot) * r.slots;
  const double overhead = r.runtime_overhead_bytes + r.activation_share * weights;
  p.weights_bytes = static_cast<uint64_t>(std::llround(weights));
  p.kv_bytes_per_token = static_cast<uint64_t>(std::llround(per_token));
  p.kv_cache_bytes = static_cast<uint64_t>(std::llround(per_token * tokens));
  p.overhead_bytes = static_cast<uint64_t>(std::llround(overhead));
  p.total_bytes = p.weights_bytes + p.kv_cache_bytes + p.overhead_bytes;

  for (const GpuModel& gpu : GpuCatalog()) {
    GpuFit fit;
    fit.gpu = gpu;
    for (int n : {1, 2, 4, 8}) {
      // Weights and KV split evenly; every GPU carries its own runtime overhead.
      const double per_gpu =
          (weights + per_token * tokens + r.activation_share * weights) / n + r.runtime_overhead_bytes;
      const double usable = gpu.memory_bytes * r.usable_fraction;
      if (per_gpu <= usable) {
        fit.count = n;
        fit.headroom_bytes = usable - per_gpu;
        break;
      }
    }
    p.gpus.push_back(fit);
  }
  std::stable_sort(p.gpus.begin(), p.gpus.end(), [](const GpuFit& a, const GpuFit& b) {
    const int ca = a.count == 0 ? 99 : a.count, cb = b.count == 0 ? 99 : b.count;
    if (ca != cb) return ca < cb;
    return a.gpu.memory_bytes < b.gpu.memory_bytes;  // The smallest GPU that fits first.
  });
  return p;
}

}  // namespace switchboard::cli
