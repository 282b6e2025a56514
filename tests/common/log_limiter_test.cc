#include "common/log_limiter.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace switchboard {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1000);

// One line per key per interval; the next line let through counts those held back.
TEST(LogRateLimiterTest, OneLinePerKeyPerIntervalWithTheCountHeldBack) {
  struct Step {
    const char* key;
    double at_seconds;
    bool log;
    uint64_t suppressed;
  };
  const Step steps[] = {
      {"a", 0, true, 0},     {"a", 1, false, 0},  {"a", 9.9, false, 0}, {"b", 5, true, 0},   {"a", 10, true, 2},
      {"a", 10.5, false, 0}, {"b", 14, false, 0}, {"b", 15, true, 1},   {"a", 100, true, 1}, {"a", 200, true, 0},
  };
  LogRateLimiter limiter(absl::Seconds(10));
  for (const Step& s : steps) {
    SCOPED_TRACE(::testing::Message() << s.key << " at " << s.at_seconds << "s");
    const LogRateLimiter::Verdict v = limiter.Admit(s.key, kStart + absl::Seconds(s.at_seconds));
    EXPECT_EQ(v.log, s.log);
    EXPECT_EQ(v.suppressed, s.suppressed);
  }
}

// A flood of distinct keys (a new port per connection) past max_keys shares one slot:
// the lines stay bounded.
TEST(LogRateLimiterTest, KeysPastTheLimitShareOneSlot) {
  LogRateLimiter limiter(absl::Seconds(10), /*max_keys=*/4);
  int logged = 0;
  for (int i = 0; i < 1000; ++i) logged += limiter.Admit("peer-" + std::to_string(i), kStart).log ? 1 : 0;
  EXPECT_EQ(logged, 4);  // Three keys of their own and the shared slot.
  // After an interval the quiet keys are forgotten and new ones get slots again.
  const LogRateLimiter::Verdict later = limiter.Admit("peer-new", kStart + absl::Seconds(11));
  EXPECT_TRUE(later.log);
  EXPECT_EQ(later.suppressed, 0u);
  const LogRateLimiter::Verdict shared = limiter.Admit("peer-other", kStart + absl::Seconds(11));
  EXPECT_TRUE(shared.log);
}

TEST(LogRateLimiterTest, SuffixSaysHowManyWereHeldBack) {
  EXPECT_EQ(LogRateLimiter::Suffix({true, 0}), "");
  EXPECT_EQ(LogRateLimiter::Suffix({true, 1}), " (1 similar line suppressed)");
  EXPECT_EQ(LogRateLimiter::Suffix({true, 997}), " (997 similar lines suppressed)");
}

}  // namespace
}  // namespace switchboard
