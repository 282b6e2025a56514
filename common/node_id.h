// Node ids: how an agent names its host to the control plane (the agent checks its own
// flag with this before it connects; the control plane checks every Hello).
#ifndef SWITCHBOARD_COMMON_NODE_ID_H_
#define SWITCHBOARD_COMMON_NODE_ID_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace switchboard {

inline constexpr size_t kMaxNodeIdLength = 253;  // A DNS name fits.

// OK for 1..max_length bytes of letters, digits and . - _ : (a hostname, a Kubernetes
// node name); INVALID_ARGUMENT saying what is wrong otherwise.
absl::Status ValidateNodeId(absl::string_view node_id, size_t max_length = kMaxNodeIdLength);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_NODE_ID_H_
