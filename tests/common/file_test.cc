#include "common/file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace switchboard {
namespace {

TEST(ReadWholeFileTest, ReadsEveryByteOrNamesTheFlagAndPath) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / absl::StrCat("file-", getpid());
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "secret.pem").string();
  const std::string bytes("line one\r\nsecret-material\0tail\n", 31);
  std::ofstream(path, std::ios::binary) << bytes;
  absl::StatusOr<std::string> text = ReadWholeFile(path, "--tls-key");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, bytes);

  const std::string empty = (dir / "empty").string();
  std::ofstream(empty).close();
  text = ReadWholeFile(empty, "--tls-key");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "");

  text = ReadWholeFile((dir / "missing").string(), "--admin-tokens");
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(text.status().message(),
            absl::StrCat("--admin-tokens ", (dir / "missing").string(), ": cannot read the file"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace switchboard
