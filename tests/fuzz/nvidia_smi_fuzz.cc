// libFuzzer target: the agent's reading of `nvidia-smi --query-gpu ... --format=csv`
// output (the fallback GPU source). Nothing may crash; every GPU read back has a uuid.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/gpu/nvidia_smi_gpu_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto gpus = switchboard::agent::ParseNvidiaSmiCsv(text);
  if (gpus.ok()) {
    for (const auto& g : *gpus) {
      if (g.uuid.empty()) std::abort();
    }
  }
  return 0;
}
