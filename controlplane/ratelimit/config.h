// The `rate_limits:` block of the pool configuration file (--config, YAML), reloaded with
// it on SIGHUP. Parsed here, on its own, so that the pools' settings and the rate limits
// can change apart; the pool parser only lets the key through.
//
//   rate_limits:
//     domain: switchboard          # Envoy's rate limit filter `domain` (default switchboard)
//     max_descriptors: 10000       # distinct descriptors counted at once (memory bound)
//     replicas: 1                  # divided mode: each of N replicas enforces ceil(limit/N)
//     rules:
//       - name: per-tenant-model
//         match: {tenant: "*", model: "*"}   # "*": any value, each counted on its own
//         requests_per_minute: 600
//         tokens_per_minute: 200000
//       - name: free-tier
//         match: {tenant: "*", class: free}
//         requests_per_second: 2
//         tokens_per_hour: 1000000
//
// Limits: {requests,tokens}_per_{second,minute,hour}, at least one per rule. Errors name
// the file, line and field; a file with errors changes nothing.
#ifndef SWITCHBOARD_CONTROLPLANE_RATELIMIT_CONFIG_H_
#define SWITCHBOARD_CONTROLPLANE_RATELIMIT_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "controlplane/ratelimit/sliding_window.h"

namespace switchboard::controlplane::ratelimit {

// Parses YAML text (the whole configuration file); `name` appears in errors. Without a
// `rate_limits` key: no rules (nothing is limited). The result is validated.
absl::StatusOr<RateLimitConfig> ParseRateLimitConfig(const std::string& yaml, const std::string& name);
absl::StatusOr<RateLimitConfig> LoadRateLimitConfig(const std::string& path);

}  // namespace switchboard::controlplane::ratelimit

#endif  // SWITCHBOARD_CONTROLPLANE_RATELIMIT_CONFIG_H_
