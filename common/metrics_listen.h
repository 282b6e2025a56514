// The Prometheus /metrics listener every server binary offers (--metrics-listen).
#ifndef SWITCHBOARD_COMMON_METRICS_LISTEN_H_
#define SWITCHBOARD_COMMON_METRICS_LISTEN_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/https.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace switchboard {

// Serves `registry` on `listen` (HOST:PORT; port 0 picks one) and prints "metrics listening
// on port N" on stdout, flushed, for scripts and tests to read. An empty `listen` serves
// nothing and returns null. A port that cannot be bound is an error (prometheus-cpp
// reports it by throwing; this turns it into a status). With `certificate`, HTTPS only,
// and with `client_ca` too, only for clients with a certificate from that CA
// (MakeHttpServer in common/https.h).
absl::StatusOr<std::unique_ptr<HttpServer>> ServeMetrics(const std::string& listen,
                                                         std::shared_ptr<prometheus::Registry> registry,
                                                         std::shared_ptr<HttpsCertificate> certificate = nullptr,
                                                         const std::string& client_ca = "");

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_METRICS_LISTEN_H_
