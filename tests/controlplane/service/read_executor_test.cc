#include "controlplane/service/read_executor.h"

#include "common/notification.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane {
namespace {

// Work runs on the executor's thread, in order; a full queue refuses at once.
TEST(ReadExecutorTest, RunsQueuedWorkAndRefusesWhenFull) {
  Notification started, release, second_ran;
  {
    ReadExecutor executor(/*queue_limit=*/1);
    ASSERT_TRUE(executor.Post([&] {
      started.Notify();
      release.WaitForNotification();
    }));
    started.WaitForNotification();                                // The first is running,
    EXPECT_TRUE(executor.Post([&] { second_ran.Notify(); }));     // the second queued,
    EXPECT_FALSE(executor.Post([] { ADD_FAILURE() << "ran"; }));  // a third refused.
    release.Notify();
    EXPECT_TRUE(second_ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }  // The destructor joins.
}

}  // namespace
}  // namespace switchboard::controlplane
