// libFuzzer target: the pool configuration (--config YAML) parser. Nothing may crash or
// hang, a refusal names the file, and an accepted configuration holds what the parser
// promises (the autoscaler's bounds are ordered).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "controlplane/config/pool_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  auto config = switchboard::controlplane::ParseFleetConfig(yaml, "f.yaml");
  if (!config.ok()) {
    if (!absl::StrContains(config.status().message(), "f.yaml")) std::abort();
    return 0;
  }
  auto check = [](const switchboard::controlplane::policy::PoolPolicy& p) {
    if (p.autoscale.has_value() &&
        (p.autoscale->min_replicas < 0 || p.autoscale->min_replicas > p.autoscale->max_replicas)) {
      std::abort();
    }
    if (p.autoscale_sync_period <= absl::ZeroDuration()) std::abort();
  };
  check(config->defaults);
  for (const auto& [name, pool] : config->pools) check(pool);
  return 0;
}
