// GPU readings from `nvidia-smi --query-gpu=... --format=csv,noheader,nounits`, the
// fallback when NVML cannot be loaded.
#ifndef SWITCHBOARD_AGENT_GPU_NVIDIA_SMI_GPU_SOURCE_H_
#define SWITCHBOARD_AGENT_GPU_NVIDIA_SMI_GPU_SOURCE_H_

#include <string>
#include <vector>

#include "agent/gpu/gpu_source.h"

namespace switchboard::agent {

// The query the agent runs (documented so that operators can run it by hand).
inline constexpr char kNvidiaSmiQuery[] =
    "nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu,"
    "temperature.gpu --format=csv,noheader,nounits";

// Parses its output: one line per GPU, ", "-separated, memory in MiB; "[N/A]" (or
// "[Not Supported]") leaves a field absent. A malformed line is an error.
absl::StatusOr<std::vector<GpuReading>> ParseNvidiaSmiCsv(const std::string& text);

class NvidiaSmiGpuSource final : public GpuSource {
 public:
  explicit NvidiaSmiGpuSource(std::string command = kNvidiaSmiQuery) : command_(std::move(command)) {}
  std::string name() const override { return "nvidia-smi"; }
  absl::StatusOr<std::vector<GpuReading>> Read() override;

 private:
  const std::string command_;
};

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_GPU_NVIDIA_SMI_GPU_SOURCE_H_
