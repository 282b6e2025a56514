#include "controlplane/policy/keda.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace switchboard::controlplane::policy {

KedaAnswer KedaAnswerFor(int32_t desired, std::optional<int32_t> min_replicas) {
  KedaAnswer answer;
  desired = std::max(desired, 0);
  const bool zero_allowed = min_replicas.has_value() && *min_replicas == 0;
  if (desired > 0) {
    answer.active = true;
    answer.metric_value = desired;
    answer.reason = absl::StrCat("desired ", desired, ": metric ", desired, " / target 1 -> ", desired, " replicas");
    return answer;
  }
  if (zero_allowed) {
    answer.active = false;
    answer.metric_value = 0;
    answer.reason = "desired 0 and min_replicas 0: inactive, KEDA scales to zero";
    return answer;
  }
  // Zero is not allowed here: stay active at one replica so the pool can come back.
  answer.active = true;
  answer.metric_value = 1;
  answer.reason = min_replicas.has_value()
                      ? absl::StrCat("desired 0 but min_replicas ", *min_replicas, ": held active at 1 replica")
                      : "desired 0 with autoscaling off (no routable endpoint): held active at 1 replica";
  return answer;
}

}  // namespace switchboard::controlplane::policy
