// Reading a whole file, for the PEM, token and key files every binary loads.
#ifndef SWITCHBOARD_COMMON_FILE_H_
#define SWITCHBOARD_COMMON_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace switchboard {

// The bytes of the file at `path`, as they are. A file that cannot be read is
// InvalidArgument "WHAT PATH: cannot read the file", where `what` names the flag that gave
// the path; the message never holds any of the file's content.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path, absl::string_view what);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_FILE_H_
