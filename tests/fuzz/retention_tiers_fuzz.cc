// libFuzzer target: --history-retention ("RAW,MINUTE,HOUR"). Nothing may crash; an
// accepted value keeps the documented order (positive, never shrinking) and reads back
// the same after formatting.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "controlplane/history/tiers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace switchboard::controlplane;
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<RetentionTiers> tiers = ParseRetentionTiers(text);
  if (!tiers.ok()) {
    if (tiers.status().message().empty()) std::abort();
    return 0;
  }
  if (tiers->raw <= absl::ZeroDuration() || tiers->minute < tiers->raw || tiers->hour < tiers->minute) std::abort();
  absl::StatusOr<RetentionTiers> again = ParseRetentionTiers(FormatRetentionTiers(*tiers));
  if (!again.ok() || again->raw != tiers->raw || again->minute != tiers->minute || again->hour != tiers->hour) {
    std::abort();
  }
  return 0;
}
