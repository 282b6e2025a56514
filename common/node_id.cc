#include "common/node_id.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace switchboard {

absl::Status ValidateNodeId(absl::string_view node_id, size_t max_length) {
  if (node_id.empty()) return absl::InvalidArgumentError("node_id is empty");
  if (node_id.size() > max_length) {
    return absl::InvalidArgumentError(absl::StrCat("node_id is ", node_id.size(), " bytes; the limit is ", max_length));
  }
  for (char c : node_id) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '-' && c != '_' && c != ':') {
      const std::string shown = node_id.size() <= 64
                                    ? std::string(node_id)
                                    : absl::StrCat(node_id.substr(0, 64), "...(", node_id.size(), " bytes)");
      return absl::InvalidArgumentError(
          absl::StrCat("node_id '", shown, "' may hold only letters, digits and . - _ :"));
    }
  }
  return absl::OkStatus();
}

}  // namespace switchboard
