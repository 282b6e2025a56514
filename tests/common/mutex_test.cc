// The project's Mutex (common/mutex.h): the same behaviour whether it is Abseil's (normal
// builds) or the std::mutex stand-in (ThreadSanitizer builds).
#include "common/mutex.h"

#include <thread>

#include "gtest/gtest.h"

namespace switchboard {
namespace {

// A condition is re-evaluated when another thread changes the state under the mutex.
TEST(MutexTest, AwaitSeesChangesMadeUnderTheMutex) {
  Mutex mu;
  int count = 0;
  std::thread counter([&] {
    for (int i = 0; i < 100; ++i) {
      MutexLock lock(&mu);
      ++count;
    }
  });
  {
    MutexLock lock(&mu);
    auto done = [&count] { return count == 100; };
    EXPECT_TRUE(mu.AwaitWithTimeout(Condition(&done), absl::Seconds(30)));
    auto never = [] { return false; };
    EXPECT_FALSE(mu.AwaitWithTimeout(Condition(&never), absl::Milliseconds(1)));
  }
  counter.join();
}

}  // namespace
}  // namespace switchboard
