#include "common/metrics_listen.h"

#include <cstdio>
#include <exception>
#include <utility>

#include "absl/status/status.h"

namespace switchboard {

absl::StatusOr<std::unique_ptr<prometheus::Exposer>> ServeMetrics(const std::string& listen,
                                                                  std::shared_ptr<prometheus::Registry> registry) {
  if (listen.empty()) return std::unique_ptr<prometheus::Exposer>();
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(listen);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(e.what());
  }
  exposer->RegisterCollectable(std::move(registry));
  std::printf("metrics listening on port %d\n", exposer->GetListeningPorts().front());
  std::fflush(stdout);
  return exposer;
}

}  // namespace switchboard
