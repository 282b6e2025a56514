#include "common/node_id.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard {
namespace {

using ::testing::HasSubstr;

TEST(ValidateNodeIdTest, AcceptsHostnames) {
  EXPECT_TRUE(ValidateNodeId("gpu-node-17.dc1.example.com").ok());
  EXPECT_TRUE(ValidateNodeId("node_1:a").ok());
}

TEST(ValidateNodeIdTest, RejectsEmptyHugeAndOddCharacters) {
  EXPECT_EQ(ValidateNodeId("").code(), absl::StatusCode::kInvalidArgument);
  const std::string huge(1 << 20, 'a');
  absl::Status s = ValidateNodeId(huge);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("1048576 bytes"));
  EXPECT_LT(s.message().size(), 200u) << "errors must not echo a megabyte back";
  EXPECT_EQ(ValidateNodeId("a b").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateNodeId("a/b").code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateNodeIdTest, HonorsTheGivenLimit) {
  EXPECT_TRUE(ValidateNodeId("abcd", 4).ok());
  EXPECT_EQ(ValidateNodeId("abcde", 4).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace switchboard
