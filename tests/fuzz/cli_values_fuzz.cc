// libFuzzer target: the values operators type on command lines: sbctl's ages and times
// (--since, --window), host:port addresses and node ids. Nothing may crash; an accepted
// age is positive and an accepted node id passes the same check again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cli/output.h"
#include "common/host_port.h"
#include "common/node_id.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace switchboard;
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<absl::Duration> age = cli::ParseAge(text);
  if (age.ok() && *age <= absl::ZeroDuration()) std::abort();
  (void)cli::ParseSince(text, absl::FromUnixSeconds(1'700'000'000));
  absl::StatusOr<HostPort> hp = ParseHostPort(text);
  if (hp.ok() && hp->port > 65535) std::abort();
  (void)ValidateNodeId(text, kMaxNodeIdLength);
  return 0;
}
