#include "controlplane/policy/admission_queue.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace switchboard::controlplane::policy {

absl::Status ValidateQueueConfig(const AdmissionConfig& classes, const QueueConfig& queues) {
  for (const auto& [name, q] : queues) {
    if (classes.Find(name) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("queue of class '", name, "': no such class"));
    }
    if (q.max > 100000) {
      return absl::InvalidArgumentError(absl::StrCat("queue of class '", name, "': max ", q.max, " is over 100000"));
    }
    if (q.deadline <= absl::ZeroDuration() || q.deadline > absl::Minutes(10)) {
      return absl::InvalidArgumentError(absl::StrCat("queue of class '", name, "': deadline ",
                                                     absl::FormatDuration(q.deadline), " is not in (0, 10m]"));
    }
  }
  return absl::OkStatus();
}

size_t AdmissionQueue::size() const {
  size_t n = 0;
  for (const auto& [name, c] : classes_) n += c.held;
  return n;
}

size_t AdmissionQueue::size(const std::string& class_name) const {
  auto it = classes_.find(class_name);
  return it == classes_.end() ? 0 : it->second.held;
}

EnqueueDecision DecideEnqueue(const QueueConfig& config, const std::string& class_name, const std::string& tenant,
                              uint64_t id, AdmissionQueue* queue, absl::Time now) {
  EnqueueDecision d;
  auto q = config.find(class_name);
  if (q == config.end() || q->second.max == 0) {
    d.reason = absl::StrCat("class ", class_name, " has no queue");
    return d;
  }
  AdmissionQueue::ClassState& c = queue->classes_[class_name];
  if (c.held >= q->second.max) {
    d.reason = absl::StrCat("queue of class ", class_name, " is full (", c.held, " of ", q->second.max, ")");
    return d;
  }
  d.hold = true;
  d.deadline = now + q->second.deadline;
  c.tenants[tenant].push_back({id, d.deadline});
  ++c.held;
  d.reason = absl::StrCat("held in the queue of class ", class_name, " (", c.held, " of ", q->second.max, ") until ",
                          absl::FormatDuration(q->second.deadline), " from now");
  return d;
}

QueueRelease DecideQueueRelease(const AdmissionConfig& classes, const std::vector<ClassHeadroom>& headrooms,
                                AdmissionQueue* queue, absl::Time now) {
  QueueRelease r;
  // Expired first, so that a request past its deadline is never admitted late.
  for (auto& [name, c] : queue->classes_) {
    for (auto it = c.tenants.begin(); it != c.tenants.end();) {
      std::deque<AdmissionQueue::Held>& held = it->second;
      for (auto h = held.begin(); h != held.end();) {
        if (h->deadline <= now) {
          r.expired.push_back(h->id);
          h = held.erase(h);
          --c.held;
        } else {
          ++h;
        }
      }
      it = held.empty() ? c.tenants.erase(it) : std::next(it);
    }
  }
  std::vector<std::string> parts;
  size_t released = 0;                        // Slots taken by this pass: every class's headroom shrinks by them.
  for (const ClassHeadroom& h : headrooms) {  // In rank order: the most important first.
    auto cit = queue->classes_.find(h.name);
    if (cit == queue->classes_.end() || cit->second.held == 0) continue;
    AdmissionQueue::ClassState& c = cit->second;
    size_t admitted = 0;
    while (c.held > 0) {
      const AdmissionDecision a = DecideAdmission(classes, h.name, h.headroom_slots - static_cast<double>(released));
      if (!a.admit) break;
      // Round robin: the first tenant at or after the cursor, else the first one.
      auto t = c.tenants.lower_bound(c.next_tenant);
      if (t == c.tenants.end()) t = c.tenants.begin();
      r.admitted.push_back(t->second.front().id);
      t->second.pop_front();
      --c.held;
      ++admitted;
      ++released;
      // The cursor moves past this tenant: the next tenant in name order goes next.
      auto next = std::next(t);
      c.next_tenant = next == c.tenants.end() ? std::string() : next->first;
      if (t->second.empty()) c.tenants.erase(t);
    }
    if (admitted > 0) parts.push_back(absl::StrCat(admitted, " of ", h.name));
    if (c.held > 0) {
      parts.push_back(absl::StrCat(c.held, " of ", h.name, " wait (headroom ",
                                   h.headroom_slots - static_cast<double>(released), " slots)"));
    }
  }
  if (!r.expired.empty()) parts.push_back(absl::StrCat(r.expired.size(), " past their deadline"));
  r.reason = parts.empty() ? "nothing held" : absl::StrCat("queue: ", absl::StrJoin(parts, "; "));
  return r;
}

bool RemoveQueued(uint64_t id, AdmissionQueue* queue) {
  for (auto& [name, c] : queue->classes_) {
    for (auto it = c.tenants.begin(); it != c.tenants.end(); ++it) {
      auto h = std::find_if(it->second.begin(), it->second.end(),
                            [id](const AdmissionQueue::Held& x) { return x.id == id; });
      if (h == it->second.end()) continue;
      it->second.erase(h);
      --c.held;
      if (it->second.empty()) c.tenants.erase(it);
      return true;
    }
  }
  return false;
}

}  // namespace switchboard::controlplane::policy
