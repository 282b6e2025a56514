#include "controlplane/policy/admission_queue.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

AdmissionConfig Classes() {
  AdmissionConfig c;
  c.classes = {{"interactive", 0, 1.0}, {"standard", 1, 0.8}, {"batch", 2, 0.5}};
  c.default_class = "standard";
  return c;
}

QueueConfig Queues() { return {{"standard", {3, absl::Seconds(2)}}, {"batch", {2, absl::Seconds(5)}}}; }

// Headroom of each class, in rank order, as ClassHeadrooms would publish it.
std::vector<ClassHeadroom> Headrooms(double standard, double batch) {
  return {{"interactive", 0, 1.0, 10, 10}, {"standard", 1, 0.8, 8, standard}, {"batch", 2, 0.5, 5, batch}};
}

TEST(AdmissionQueueTest, HoldsUpToTheClassMaxElseRefuses) {
  AdmissionQueue q;
  const QueueConfig config = Queues();
  struct Case {
    std::string class_name;
    bool hold;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"interactive", false, "class interactive has no queue"},
      {"standard", true, "(1 of 3)"},
      {"standard", true, "(2 of 3)"},
      {"standard", true, "(3 of 3)"},
      {"standard", false, "queue of class standard is full (3 of 3)"},
      {"batch", true, "(1 of 2)"},
  };
  uint64_t id = 0;
  for (const Case& c : cases) {
    const EnqueueDecision d = DecideEnqueue(config, c.class_name, "t", ++id, &q, kT0);
    EXPECT_EQ(d.hold, c.hold) << id;
    EXPECT_THAT(d.reason, HasSubstr(c.reason)) << id;
    if (d.hold) {
      EXPECT_EQ(d.deadline, kT0 + config.at(c.class_name).deadline);
    }
  }
  EXPECT_EQ(q.size("standard"), 3u);
  EXPECT_EQ(q.size(), 4u);
}

TEST(AdmissionQueueTest, HigherClassFirstAndEveryReleaseTakesASlotFromAll) {
  AdmissionQueue q;
  const QueueConfig config = Queues();
  ASSERT_TRUE(DecideEnqueue(config, "batch", "b", 1, &q, kT0).hold);
  ASSERT_TRUE(DecideEnqueue(config, "standard", "s", 2, &q, kT0).hold);
  ASSERT_TRUE(DecideEnqueue(config, "standard", "s", 3, &q, kT0).hold);
  // No headroom: nothing moves.
  QueueRelease r = DecideQueueRelease(Classes(), Headrooms(0, -3), &q, kT0 + absl::Milliseconds(100));
  EXPECT_THAT(r.admitted, IsEmpty());
  EXPECT_THAT(r.reason, HasSubstr("2 of standard wait"));
  // Standard has 3 slots of headroom and batch 1: standard takes 2 (its requests, oldest
  // first), and the batch request would now find 1 - 2 < 0: it waits although it was held
  // first.
  r = DecideQueueRelease(Classes(), Headrooms(3, 1), &q, kT0 + absl::Milliseconds(200));
  EXPECT_THAT(r.admitted, ElementsAre(2, 3));
  EXPECT_THAT(r.reason, HasSubstr("2 of standard"));
  EXPECT_THAT(r.reason, HasSubstr("1 of batch wait"));
  EXPECT_EQ(q.size(), 1u);
  r = DecideQueueRelease(Classes(), Headrooms(3, 1), &q, kT0 + absl::Milliseconds(300));
  EXPECT_THAT(r.admitted, ElementsAre(1));
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(DecideQueueRelease(Classes(), Headrooms(3, 1), &q, kT0).reason, "nothing held");
}

TEST(AdmissionQueueTest, TenantsOfAClassTakeTurns) {
  AdmissionQueue q;
  QueueConfig config = {{"standard", {100, absl::Seconds(10)}}};
  // Tenant a floods (5 requests) before b (2) and c (1) arrive.
  uint64_t id = 0;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(DecideEnqueue(config, "standard", "a", ++id, &q, kT0).hold);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(DecideEnqueue(config, "standard", "b", ++id, &q, kT0).hold);
  ASSERT_TRUE(DecideEnqueue(config, "standard", "c", ++id, &q, kT0).hold);
  // One slot at a time: a, b, c, a, b, a, a, a.
  std::vector<uint64_t> order;
  for (int i = 0; i < 8; ++i) {
    QueueRelease r = DecideQueueRelease(Classes(), Headrooms(1, -1), &q, kT0);
    ASSERT_EQ(r.admitted.size(), 1u) << i;
    order.push_back(r.admitted[0]);
  }
  EXPECT_THAT(order, ElementsAre(1, 6, 8, 2, 7, 3, 4, 5));
  // And several at once follow the same turns.
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(DecideEnqueue(config, "standard", "a", ++id, &q, kT0).hold);
  ASSERT_TRUE(DecideEnqueue(config, "standard", "b", ++id, &q, kT0).hold);
  QueueRelease r = DecideQueueRelease(Classes(), Headrooms(3, -1), &q, kT0);
  EXPECT_THAT(r.admitted, ElementsAre(9, 11, 10));
}

TEST(AdmissionQueueTest, ExpiresAtTheDeadlineNeverAdmitsLate) {
  AdmissionQueue q;
  const QueueConfig config = Queues();
  ASSERT_TRUE(DecideEnqueue(config, "standard", "a", 1, &q, kT0).hold);
  ASSERT_TRUE(DecideEnqueue(config, "standard", "a", 2, &q, kT0 + absl::Seconds(1)).hold);
  // At 2 s the first is due: it expires even though there is room now.
  QueueRelease r = DecideQueueRelease(Classes(), Headrooms(5, 5), &q, kT0 + absl::Seconds(2));
  EXPECT_THAT(r.expired, ElementsAre(1));
  EXPECT_THAT(r.admitted, ElementsAre(2));
  EXPECT_THAT(r.reason, HasSubstr("1 past their deadline"));
  EXPECT_EQ(q.size(), 0u);
  // A full queue has room again once its requests expire.
  for (uint64_t id = 10; id < 13; ++id) ASSERT_TRUE(DecideEnqueue(config, "standard", "a", id, &q, kT0).hold);
  EXPECT_FALSE(DecideEnqueue(config, "standard", "a", 13, &q, kT0).hold);
  r = DecideQueueRelease(Classes(), Headrooms(0, 0), &q, kT0 + absl::Seconds(2));
  EXPECT_THAT(r.expired, ElementsAre(10, 11, 12));
  EXPECT_TRUE(DecideEnqueue(config, "standard", "a", 14, &q, kT0 + absl::Seconds(2)).hold);
}

TEST(AdmissionQueueTest, ARequestThatLeavesIsForgotten) {
  AdmissionQueue q;
  const QueueConfig config = Queues();
  ASSERT_TRUE(DecideEnqueue(config, "batch", "a", 1, &q, kT0).hold);
  ASSERT_TRUE(DecideEnqueue(config, "batch", "b", 2, &q, kT0).hold);
  EXPECT_TRUE(RemoveQueued(1, &q));
  EXPECT_FALSE(RemoveQueued(1, &q));
  EXPECT_EQ(q.size("batch"), 1u);
  EXPECT_THAT(DecideQueueRelease(Classes(), Headrooms(5, 5), &q, kT0).admitted, ElementsAre(2));
}

TEST(AdmissionQueueTest, ValidatesTheConfig) {
  const AdmissionConfig classes = Classes();
  EXPECT_TRUE(ValidateQueueConfig(classes, Queues()).ok());
  struct Case {
    QueueConfig queues;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{{"gold", {1, absl::Seconds(1)}}}, "queue of class 'gold': no such class"},
      {{{"batch", {100001, absl::Seconds(1)}}}, "max 100001 is over 100000"},
      {{{"batch", {1, absl::ZeroDuration()}}}, "deadline 0 is not in (0, 10m]"},
      {{{"batch", {1, absl::Minutes(11)}}}, "deadline 11m is not in (0, 10m]"},
  };
  for (const Case& c : cases) {
    const absl::Status s = ValidateQueueConfig(classes, c.queues);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.error;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.error));
  }
}

}  // namespace
}  // namespace switchboard::controlplane::policy
