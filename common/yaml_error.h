// Errors of the YAML files Switchboard reads (pools, rate limits), all in one form:
// "FILE:LINE: FIELD: MESSAGE", LINE counted from 1 (0 when yaml-cpp knows none).
#ifndef SWITCHBOARD_COMMON_YAML_ERROR_H_
#define SWITCHBOARD_COMMON_YAML_ERROR_H_

#include <string>

#include "absl/status/status.h"
#include "yaml-cpp/yaml.h"

namespace switchboard {

// InvalidArgument "FILE:LINE: FIELD: MESSAGE" for what is wrong with `node`.
absl::Status YamlError(const std::string& file, const YAML::Node& node, const std::string& field,
                       const std::string& message);

// InvalidArgument "FILE:LINE: MESSAGE" for what yaml-cpp threw (a syntax or type error).
absl::Status YamlExceptionError(const std::string& file, const YAML::Exception& e);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_YAML_ERROR_H_
