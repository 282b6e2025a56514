#include "common/token_file.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kViewer[] = "viewer-token-1";
constexpr char kOps[] = "ops-token-2";
const absl::Duration kInterval = absl::Seconds(10);
const absl::Duration kRealTimeout = absl::Seconds(20);

std::string Entry(const std::string& name, const std::string& role, const std::string& token) {
  return absl::StrCat("- name: ", name, "\n  role: ", role, "\n  sha256: ", Sha256Hex(token), "\n");
}

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::path(::testing::TempDir()) / absl::StrCat("tokens-", getpid(), "-", ++counter_, ".yaml"))
                .string();
    Write(Entry("viewer", "read", kViewer) + Entry("ops", "admin", kOps));
  }
  void TearDown() override { std::remove(path_.c_str()); }

  // Replaces the file at once (rename), as editors and Kubernetes' symlink swap do.
  void Write(const std::string& text) {
    std::ofstream(path_ + ".new") << text;
    std::filesystem::rename(path_ + ".new", path_);
  }

  static inline int counter_ = 0;
  std::string path_;
};

TEST_F(TokenFileTest, RevokedTokenIsGoneAfterRefresh) {
  FakeClock clock;
  auto file = TokenFile::Open(path_, absl::ZeroDuration(), &clock);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_NE((*file)->Current()->Find(kViewer), nullptr);
  ASSERT_EQ((*file)->Refresh().value_or(true), false) << "unchanged content is no change";

  Write(Entry("ops", "admin", kOps));
  absl::StatusOr<bool> changed = (*file)->Refresh();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  EXPECT_EQ((*file)->Current()->Find(kViewer), nullptr);
  ASSERT_NE((*file)->Current()->Find(kOps), nullptr);
  EXPECT_EQ((*file)->Current()->Find(kOps)->role, Role::kAdmin);
}

TEST_F(TokenFileTest, BadOrMissingFileKeepsTheTokensInForce) {
  FakeClock clock;
  auto file = TokenFile::Open(path_, absl::ZeroDuration(), &clock);
  ASSERT_TRUE(file.ok()) << file.status();
  const std::shared_ptr<const TokenTable> before = (*file)->Current();

  Write("- name: half-written\n  role: admin\n");
  absl::StatusOr<bool> changed = (*file)->Refresh();
  ASSERT_FALSE(changed.ok());
  EXPECT_THAT(changed.status().message(), HasSubstr("keeping the tokens in force"));
  EXPECT_EQ((*file)->Current(), before);
  // The same bad content again is no news: reported once.
  EXPECT_EQ((*file)->Refresh().value_or(true), false);

  std::remove(path_.c_str());
  changed = (*file)->Refresh();
  ASSERT_FALSE(changed.ok());
  EXPECT_THAT(changed.status().message(), HasSubstr("cannot read the file"));
  EXPECT_NE((*file)->Current()->Find(kViewer), nullptr);

  // Fixed: in force again.
  Write(Entry("viewer", "read", kViewer));
  changed = (*file)->Refresh();
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  EXPECT_EQ((*file)->Current()->Find(kOps), nullptr);
}

TEST_F(TokenFileTest, OpenFailsOnABadFileWithoutEchoingHashes) {
  FakeClock clock;
  Write(absl::StrCat("- name: x\n  role: root\n  sha256: ", Sha256Hex("secret"), "\n"));
  auto file = TokenFile::Open(path_, kInterval, &clock);
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), HasSubstr("role must be read or admin"));
  EXPECT_THAT(file.status().message(), Not(HasSubstr(Sha256Hex("secret"))));
  EXPECT_FALSE(TokenFile::Open(path_ + ".absent", kInterval, &clock).ok());
}

// The watcher re-reads the file every interval of the injected clock and reports each
// change once.
TEST_F(TokenFileTest, WatcherFollowsTheFile) {
  FakeClock clock;
  Mutex mu;
  std::vector<absl::Status> changes;  // Guarded by mu.
  auto file = TokenFile::Open(path_, kInterval, &clock, [&](const absl::Status& status, size_t) {
    MutexLock lock(&mu);
    changes.push_back(status);
  });
  ASSERT_TRUE(file.ok()) << file.status();
  auto await_changes = [&](size_t n) {
    MutexLock lock(&mu);
    auto enough = [&] { return changes.size() >= n; };
    return SystemClock::Get()->AwaitWithTimeout(&mu, Condition(&enough), kRealTimeout);
  };

  Write(Entry("ops", "admin", kOps));
  EXPECT_NE((*file)->Current()->Find(kViewer), nullptr) << "nothing is re-read before the interval";
  ASSERT_TRUE(clock.AwaitWaiters(1, kRealTimeout));
  clock.Advance(kInterval);
  ASSERT_TRUE(await_changes(1));
  EXPECT_EQ((*file)->Current()->Find(kViewer), nullptr);

  Write("not: [a list");
  ASSERT_TRUE(clock.AwaitWaiters(1, kRealTimeout));
  clock.Advance(kInterval);
  ASSERT_TRUE(await_changes(2));
  ASSERT_TRUE(clock.AwaitWaiters(1, kRealTimeout));
  clock.Advance(kInterval);  // Same bad content: not reported again.
  ASSERT_TRUE(clock.AwaitWaiters(1, kRealTimeout));
  MutexLock lock(&mu);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_TRUE(changes[0].ok()) << changes[0];
  EXPECT_FALSE(changes[1].ok());
  EXPECT_NE((*file)->Current()->Find(kOps), nullptr);
}

}  // namespace
}  // namespace switchboard
