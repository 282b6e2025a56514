#include "common/hash.h"

#include "absl/strings/str_format.h"

namespace switchboard {

uint64_t Fnv1a64(absl::string_view data) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string HashHex(absl::string_view data) { return absl::StrFormat("%016x", Fnv1a64(data)); }

}  // namespace switchboard
