#include "common/yaml_error.h"

#include "absl/strings/str_cat.h"

namespace switchboard {
namespace {

int Line(const YAML::Mark& mark) { return mark.line >= 0 ? mark.line + 1 : 0; }

}  // namespace

absl::Status YamlError(const std::string& file, const YAML::Node& node, const std::string& field,
                       const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat(file, ":", Line(node.Mark()), ": ", field, ": ", message));
}

absl::Status YamlExceptionError(const std::string& file, const YAML::Exception& e) {
  return absl::InvalidArgumentError(absl::StrCat(file, ":", Line(e.mark), ": ", e.msg));
}

}  // namespace switchboard
