#include "common/metrics_listen.h"

#include <cstdio>
#include <utility>

#include "absl/status/status.h"

namespace switchboard {

absl::StatusOr<std::unique_ptr<HttpServer>> ServeMetrics(const std::string& listen,
                                                         std::shared_ptr<prometheus::Registry> registry,
                                                         std::shared_ptr<HttpsCertificate> certificate,
                                                         const std::string& client_ca) {
  if (listen.empty()) return std::unique_ptr<HttpServer>();
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      MakeHttpServer(listen, /*num_threads=*/2, /*callbacks=*/nullptr, std::move(certificate), client_ca);
  if (!server.ok()) return absl::InvalidArgumentError(server.status().message());
  (*server)->exposer->RegisterCollectable(std::move(registry));
  std::printf("metrics listening on port %d\n", (*server)->port());
  std::fflush(stdout);
  return server;
}

}  // namespace switchboard
