// host:port addresses, as flags and agents write them.
#ifndef SWITCHBOARD_COMMON_HOST_PORT_H_
#define SWITCHBOARD_COMMON_HOST_PORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace switchboard {

struct HostPort {
  std::string host;  // Without brackets for IPv6.
  int port = 0;      // 0..65535; 0 asks the kernel for a free port when listening.
  std::string ToString() const;
};

// Parses "host:port", "[v6]:port" or ":port" (host defaults to 0.0.0.0).
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_HOST_PORT_H_
