// Notification (common/notification.h): waiters wake on Notify, timeouts report false.
#include "common/notification.h"

#include <thread>

#include "gtest/gtest.h"

namespace switchboard {
namespace {

TEST(NotificationTest, WaitersWakeOnNotifyAndTimeoutsReportFalse) {
  Notification ready;
  EXPECT_FALSE(ready.HasBeenNotified());
  EXPECT_FALSE(ready.WaitForNotificationWithTimeout(absl::Milliseconds(1)));
  Notification woke;
  std::thread waiter([&] {
    ready.WaitForNotification();
    woke.Notify();
  });
  EXPECT_FALSE(woke.HasBeenNotified());
  ready.Notify();
  ready.Notify();  // Harmless.
  EXPECT_TRUE(woke.WaitForNotificationWithTimeout(absl::Seconds(30)));
  waiter.join();
  EXPECT_TRUE(ready.HasBeenNotified());
  EXPECT_TRUE(ready.WaitForNotificationWithTimeout(absl::ZeroDuration()));
}

}  // namespace
}  // namespace switchboard
