// Where GPU readings come from: NVML (dlopen'ed at run time: no link dependency),
// nvidia-smi as a fallback, or nothing on a host without NVIDIA GPUs.
#ifndef SWITCHBOARD_AGENT_GPU_GPU_SOURCE_H_
#define SWITCHBOARD_AGENT_GPU_GPU_SOURCE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace switchboard::agent {

struct GpuReading {
  std::string uuid;
  std::string name;
  uint64_t vram_total_bytes = 0;
  uint64_t vram_used_bytes = 0;
  uint64_t vram_free_bytes = 0;
  std::optional<double> utilization;  // 0..1; absent when not supported (MIG).
  std::optional<double> temperature_celsius;
};

class GpuSource {
 public:
  virtual ~GpuSource() = default;
  virtual std::string name() const = 0;  // "nvml", "nvidia-smi", "none"
  // One reading per GPU. Errors are for the caller to log; they never crash the agent.
  virtual absl::StatusOr<std::vector<GpuReading>> Read() = 0;
};

// No GPUs (a CPU host, or --gpu none).
class NoGpuSource final : public GpuSource {
 public:
  std::string name() const override { return "none"; }
  absl::StatusOr<std::vector<GpuReading>> Read() override { return std::vector<GpuReading>{}; }
};

// `mode`: "auto" (NVML, else nvidia-smi, else none), "nvml", "nvidia-smi" or "none".
// `nvml_library`: the path or soname dlopen'ed for NVML.
absl::StatusOr<std::unique_ptr<GpuSource>> MakeGpuSource(const std::string& mode, const std::string& nvml_library);

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_GPU_GPU_SOURCE_H_
