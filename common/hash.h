// Stable 64-bit content hash (FNV-1a). Used for snapshot versions, which must be the same
// on every control-plane replica, across restarts and builds: std::hash promises none of that.
#ifndef SWITCHBOARD_COMMON_HASH_H_
#define SWITCHBOARD_COMMON_HASH_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace switchboard {

uint64_t Fnv1a64(absl::string_view data);
// 16 lowercase hex digits.
std::string HashHex(absl::string_view data);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_HASH_H_
