// GPU readings through NVML, loaded with dlopen so the agent runs on hosts without a
// driver. Symbols and return codes: shared/reference/inference-servers.md.
#ifndef SWITCHBOARD_AGENT_GPU_NVML_GPU_SOURCE_H_
#define SWITCHBOARD_AGENT_GPU_NVML_GPU_SOURCE_H_

#include <memory>
#include <string>

#include "agent/gpu/gpu_source.h"

namespace switchboard::agent {

class NvmlGpuSource final : public GpuSource {
 public:
  // Loads `library` and calls nvmlInit_v2. Fails (UNAVAILABLE) when the library or a
  // symbol is missing or NVML does not initialize (no driver).
  static absl::StatusOr<std::unique_ptr<NvmlGpuSource>> Open(const std::string& library);
  ~NvmlGpuSource() override;  // nvmlShutdown, dlclose.

  std::string name() const override { return "nvml"; }
  absl::StatusOr<std::vector<GpuReading>> Read() override;

 private:
  struct Api;
  explicit NvmlGpuSource(std::unique_ptr<Api> api);
  std::unique_ptr<Api> api_;
};

}  // namespace switchboard::agent

#endif  // SWITCHBOARD_AGENT_GPU_NVML_GPU_SOURCE_H_
