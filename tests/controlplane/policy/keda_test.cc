#include "controlplane/policy/keda.h"

#include <optional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/controlplane/keda_hpa.h"

namespace switchboard::controlplane::policy {
namespace {

using switchboard::testing::KedaHpaReplicas;
using switchboard::testing::ScaledObjectBounds;
using ::testing::HasSubstr;

struct Row {
  int32_t desired;
  std::optional<int32_t> min_replicas;
  bool active;
  double metric;
  const char* reason;
};

TEST(KedaAnswerTest, Table) {
  const Row rows[] = {
      {3, 1, true, 3, "metric 3 / target 1 -> 3 replicas"},
      {1, 0, true, 1, "metric 1 / target 1"},
      {40, 2, true, 40, "desired 40"},
      {0, 0, false, 0, "KEDA scales to zero"},
      {0, 1, true, 1, "min_replicas 1: held active at 1"},                   // Forced below min by hand.
      {0, std::nullopt, true, 1, "autoscaling off (no routable endpoint)"},  // Never left at zero.
      {-2, 0, false, 0, "KEDA scales to zero"},                              // Clamped to 0.
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(::testing::Message() << "desired " << r.desired);
    KedaAnswer a = KedaAnswerFor(r.desired, r.min_replicas);
    EXPECT_EQ(a.active, r.active);
    EXPECT_DOUBLE_EQ(a.metric_value, r.metric);
    EXPECT_DOUBLE_EQ(a.target, 1.0);
    EXPECT_THAT(a.reason, HasSubstr(r.reason));
  }
}

// From any starting count, KEDA and the HPA land on the desired count in one sync,
// wherever the HPA's tolerance lets them move (always with tolerance 0; with the default
// 10%, whenever the step is more than 10% of the current count).
TEST(KedaAnswerTest, KedaAndHpaLandOnDesired) {
  for (int32_t min : {0, 1, 2}) {
    const ScaledObjectBounds strict{min, 64, 0.0};
    const ScaledObjectBounds default_tolerance{min, 64, 0.1};
    for (int32_t current = 0; current <= 64; ++current) {
      for (int32_t desired = min; desired <= 64; ++desired) {
        KedaAnswer a = KedaAnswerFor(desired, min);
        SCOPED_TRACE(::testing::Message() << "min " << min << " current " << current << " desired " << desired);
        EXPECT_EQ(KedaHpaReplicas(current, a.active, a.metric_value, a.target, strict), desired);
        const int32_t start = current == 0 ? std::max(min, 1) : current;
        const bool beyond_tolerance = std::abs(1.0 - static_cast<double>(desired) / start) > 0.1;
        if (beyond_tolerance || desired == start || desired == 0) {
          EXPECT_EQ(KedaHpaReplicas(current, a.active, a.metric_value, a.target, default_tolerance), desired);
        }
      }
    }
  }
}

}  // namespace
}  // namespace switchboard::controlplane::policy
