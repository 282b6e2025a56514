// The bounded per-class queue of priority classes (admission.h): a request that its class's
// headroom refuses may be held, when its class has a queue, instead of answered 429 at
// once, and admitted when capacity comes back.
//
//   hold      <=> the class has a queue (max > 0) and fewer than `max` of its requests are held
//   expire    <=> held past enqueued + the class's deadline (then 429 with Retry-After)
//   release   (each pass, with the classes' current headroom): the most important class
//             first; within a class the tenants take turns (round robin, each tenant's
//             requests in arrival order); a class releases while its headroom, less one
//             slot for every request released before it in this pass, is positive (or its
//             share is 1).
//
// Pure: the held requests are the caller's memory (AdmissionQueue), the time is passed in.
// No I/O, no clock, no threads.
#ifndef SWITCHBOARD_CONTROLPLANE_POLICY_ADMISSION_QUEUE_H_
#define SWITCHBOARD_CONTROLPLANE_POLICY_ADMISSION_QUEUE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "controlplane/policy/admission.h"

namespace switchboard::controlplane::policy {

struct ClassQueueConfig {
  uint32_t max = 0;                            // Requests held at once; 0: no queue (429 at once).
  absl::Duration deadline = absl::Seconds(1);  // The longest a request is held.
};

// Class name -> its queue; classes not named have none.
using QueueConfig = std::map<std::string, ClassQueueConfig>;

// Every queue named is a class of `classes`, max <= 100000, deadline in (0, 10 min].
absl::Status ValidateQueueConfig(const AdmissionConfig& classes, const QueueConfig& queues);

struct EnqueueDecision;
struct QueueRelease;

// The requests held, per class: the memory of the decisions below. Not thread-safe.
class AdmissionQueue {
 public:
  size_t size() const;
  size_t size(const std::string& class_name) const;

 private:
  struct Held {
    uint64_t id;
    absl::Time deadline;
  };
  struct ClassState {
    std::map<std::string, std::deque<Held>> tenants;  // Tenant -> held, oldest first.
    std::string next_tenant;                          // Round robin: the first tenant >= this goes next.
    size_t held = 0;
  };
  friend EnqueueDecision DecideEnqueue(const QueueConfig&, const std::string&, const std::string&, uint64_t,
                                       AdmissionQueue*, absl::Time);
  friend QueueRelease DecideQueueRelease(const AdmissionConfig&, const std::vector<ClassHeadroom>&, AdmissionQueue*,
                                         absl::Time);
  friend bool RemoveQueued(uint64_t, AdmissionQueue*);
  std::map<std::string, ClassState> classes_;
};

struct EnqueueDecision {
  bool hold = false;  // false: answer 429 now.
  absl::Time deadline = absl::InfinitePast();
  std::string reason;
};

// A request `id` of `class_name` and `tenant` (may be empty) that DecideAdmission refused:
// held (and remembered in `queue`) or refused.
EnqueueDecision DecideEnqueue(const QueueConfig& config, const std::string& class_name, const std::string& tenant,
                              uint64_t id, AdmissionQueue* queue, absl::Time now);

struct QueueRelease {
  std::vector<uint64_t> admitted;  // In the order to admit them.
  std::vector<uint64_t> expired;   // Past their deadline: 429.
  std::string reason;              // One line: how many of which class, and why the rest wait.
};

// One pass over the held requests at `now`, with the classes' headroom as DecideAdmission
// would use it (`headrooms`, as ClassHeadrooms returns them, less what was sent since).
// Removes what it admits or expires from `queue`.
QueueRelease DecideQueueRelease(const AdmissionConfig& classes, const std::vector<ClassHeadroom>& headrooms,
                                AdmissionQueue* queue, absl::Time now);

// The request `id` left on its own (its stream ended): forgotten. False if not held.
bool RemoveQueued(uint64_t id, AdmissionQueue* queue);

}  // namespace switchboard::controlplane::policy

#endif  // SWITCHBOARD_CONTROLPLANE_POLICY_ADMISSION_QUEUE_H_
