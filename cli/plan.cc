#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "common/table.h"
#include "nlohmann/json.hpp"

namespace switchboard::cli {
namespace {

std::string GiB(double bytes) { return absl::StrFormat("%.2f GiB", bytes / (1024.0 * 1024 * 1024)); }

}  // namespace

int RunPlan(const PlanOptions& options, std::ostream& out, std::ostream& err) {
  PlanRequest request = options.request;
  if (!options.model.empty()) {
    absl::StatusOr<ModelShape> model = FindModel(options.model);
    if (!model.ok()) {
      err << "sbctl plan: " << model.status().message() << "\n";
      return 2;
    }
    request.model = *model;
  }
  // Custom parameters override (or, without --model, define) the shape.
  if (options.parameters > 0) request.model.parameters = options.parameters;
  if (options.layers > 0) request.model.layers = options.layers;
  if (options.kv_heads > 0) request.model.kv_heads = options.kv_heads;
  if (options.head_dim > 0) request.model.head_dim = options.head_dim;
  if (request.model.name.empty()) request.model.name = "custom";
  absl::StatusOr<Plan> plan = MakePlan(request);
  if (!plan.ok()) {
    err << "sbctl plan: " << plan.status().message() << "\n";
    return 2;
  }
  if (options.json) {
    nlohmann::json gpus = nlohmann::json::array();
    for (const GpuFit& f : plan->gpus) {
      gpus.push_back({{"gpu", f.gpu.name},
                      {"memory_bytes", f.gpu.memory_bytes},
                      {"count", f.count},
                      {"fits", f.count > 0},
                      {"headroom_per_gpu_bytes", static_cast<uint64_t>(f.headroom_bytes)}});
    }
    nlohmann::json j = {{"model", request.model.name},
                        {"parameters", request.model.parameters},
                        {"layers", request.model.layers},
                        {"kv_heads", request.model.kv_heads},
                        {"head_dim", request.model.head_dim},
                        {"quant", request.quant},
                        {"bits_per_weight", plan->bits_per_weight},
                        {"kv_type", request.kv_type},
                        {"ctx_per_slot", request.ctx_per_slot},
                        {"slots", request.slots},
                        {"weights_bytes", plan->weights_bytes},
                        {"kv_cache_bytes", plan->kv_cache_bytes},
                        {"kv_cache_per_token_bytes", plan->kv_bytes_per_token},
                        {"overhead_bytes", plan->overhead_bytes},
                        {"total_bytes", plan->total_bytes},
                        {"gpus", gpus}};
    out << j.dump(2) << "\n";
    return 0;
  }
  const ModelShape& m = request.model;
  out << absl::StrFormat("%s: %.2fB parameters, %d layers, %d KV heads x %d dims; %s weights, %s KV cache\n", m.name,
                         m.parameters / 1e9, m.layers, m.kv_heads, m.head_dim, request.quant, request.kv_type);
  out << absl::StrFormat("  weights   %10s  (%.3g params x %.4g bits / 8)\n", GiB(plan->weights_bytes), m.parameters,
                         plan->bits_per_weight);
  out << absl::StrFormat(
      "  KV cache  %10s  (2 x %d layers x %d heads x %d dims x %.4g bytes = %d bytes/token,\n"
      "                          x %d ctx x %d slots)\n",
      GiB(plan->kv_cache_bytes), m.layers, m.kv_heads, m.head_dim, plan->kv_bytes_per_element, plan->kv_bytes_per_token,
      request.ctx_per_slot, request.slots);
  out << absl::StrFormat("  overhead  %10s  (runtime %s + %.0f%% of weights)\n", GiB(plan->overhead_bytes),
                         GiB(request.runtime_overhead_bytes), 100 * request.activation_share);
  out << absl::StrFormat("  total     %10s\n\n", GiB(plan->total_bytes));
  Table t({"GPU", "MEMORY", "GPUS NEEDED", "HEADROOM PER GPU"});
  for (const GpuFit& f : plan->gpus) {
    t.AddRow({f.gpu.name, GiB(f.gpu.memory_bytes), f.count > 0 ? std::to_string(f.count) : "does not fit on 8",
              f.count > 0 ? GiB(f.headroom_bytes) : "-"});
  }
  t.Print(out, "  ");
  out << absl::StrFormat("  (a GPU counts %.0f%% of its memory as usable)\n", 100 * request.usable_fraction);
  return 0;
}

}  // namespace switchboard::cli
