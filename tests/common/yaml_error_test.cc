#include "common/yaml_error.h"

#include "gtest/gtest.h"

namespace switchboard {
namespace {

TEST(YamlErrorTest, NamesFileLineAndField) {
  const YAML::Node root = YAML::Load("pools:\n  m:\n    lb_policy: random\n");
  const absl::Status s =
      YamlError("pools.yaml", root["pools"]["m"]["lb_policy"], "pools.m.lb_policy", "must be weighted");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "pools.yaml:3: pools.m.lb_policy: must be weighted");
  // A node made in code has no place in a file: line 0.
  EXPECT_EQ(YamlError("x.yaml", YAML::Node(5), "f", "m").message(), "x.yaml:0: f: m");
}

TEST(YamlErrorTest, NamesTheLineYamlCppThrewAt) {
  try {
    YAML::Load("a: 1\nb: [2\n");
    FAIL() << "no exception";
  } catch (const YAML::Exception& e) {
    const absl::Status s = YamlExceptionError("bad.yaml", e);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), "bad.yaml:" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    EXPECT_GE(e.mark.line, 1);
  }
}

}  // namespace
}  // namespace switchboard
