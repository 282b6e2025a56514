#include "controlplane/xds/push_fanout.h"

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane::xds {
namespace {

TEST(PushFanOutTest, EveryIndexRunsOnceAndRunReturnsAfterTheLast) {
  for (int threads : {0, 1, 2, 4}) {
    SCOPED_TRACE(threads);
    PushFanOut fanout(threads);
    EXPECT_EQ(fanout.threads(), threads < 1 ? 1 : threads);
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}}) {
      std::vector<std::atomic<int>> calls(n);
      std::atomic<size_t> returned{0};
      fanout.Run(n, [&](size_t i) {
        calls[i].fetch_add(1);
        returned.fetch_add(1);
      });
      EXPECT_EQ(returned.load(), n);  // Run returned only after every call.
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(calls[i].load(), 1) << i;
    }
  }
}

TEST(PushFanOutTest, CallsSpreadOverTheThreads) {
  PushFanOut fanout(2);
  // The first call holds its thread until another thread has taken a call: with one
  // thread this would never end, so the test proves a second thread takes part.
  Mutex mu;
  std::set<std::thread::id> ids;
  bool second_started = false;
  fanout.Run(2, [&](size_t i) {
    MutexLock lock(&mu);
    ids.insert(std::this_thread::get_id());
    if (i == 0) {
      auto started = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return second_started; };
      mu.Await(Condition(&started));
    } else {
      second_started = true;
    }
  });
  EXPECT_EQ(ids.size(), 2u);
}

}  // namespace
}  // namespace switchboard::controlplane::xds
