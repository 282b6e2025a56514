#include "controlplane/service/work_thread.h"

#include <pthread.h>

#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/notification.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane {
namespace {

// Work runs on the thread, in order; a full queue refuses at once (the running item does
// not count).
TEST(WorkThreadTest, RunsQueuedWorkAndRefusesWhenFull) {
  Notification started, release, second_ran;
  {
    WorkThread thread("sb-test", /*queue_limit=*/1);
    ASSERT_TRUE(thread.Post([&] {
      started.Notify();
      release.WaitForNotification();
    }));
    started.WaitForNotification();                              // The first is running,
    EXPECT_TRUE(thread.Post([&] { second_ran.Notify(); }));     // the second queued,
    EXPECT_FALSE(thread.Post([] { ADD_FAILURE() << "ran"; }));  // a third refused.
    release.Notify();
    EXPECT_TRUE(second_ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }  // The destructor joins.
}

// Unbounded: everything posted runs, in the order posted, on the named thread, and the
// destructor runs what is still queued before it joins.
TEST(WorkThreadTest, RunsEverythingInOrderOnItsNamedThreadAndDrainsOnDestruction) {
  Mutex mu;
  std::vector<int> order;
  std::string name;
  Notification release;
  {
    WorkThread thread("sb-ordered");
    ASSERT_TRUE(thread.Post([&] {
      char buf[16] = {};
      pthread_getname_np(pthread_self(), buf, sizeof(buf));
      MutexLock lock(&mu);
      name = buf;
    }));
    ASSERT_TRUE(thread.Post([&] { release.WaitForNotification(); }));
    for (int i = 0; i < 1000; ++i) {
      ASSERT_TRUE(thread.Post([&mu, &order, i] {
        MutexLock lock(&mu);
        order.push_back(i);
      }));
    }
    release.Notify();
  }
  MutexLock lock(&mu);
  EXPECT_EQ(name, "sb-ordered");
  ASSERT_EQ(order.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
}

}  // namespace
}  // namespace switchboard::controlplane
