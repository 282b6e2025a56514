#include "controlplane/policy/admission_proto.h"

namespace switchboard::controlplane::policy {

v1::PriorityClasses PriorityToProto(const AdmissionConfig& config, const std::vector<ClassHeadroom>& headrooms,
                                    const QueueConfig& queues) {
  v1::PriorityClasses out;
  if (!config.enabled()) return out;
  out.set_default_class(config.default_class);
  out.mutable_tenant_classes()->insert(config.tenant_classes.begin(), config.tenant_classes.end());
  for (size_t i = 0; i < config.classes.size(); ++i) {
    const PriorityClass& c = config.classes[i];
    v1::PriorityClass* p = out.add_classes();
    p->set_name(c.name);
    p->set_rank(static_cast<uint32_t>(c.rank));
    p->set_max_share(c.max_share);
    if (i < headrooms.size()) {
      p->set_limit_slots(headrooms[i].limit_slots);
      p->set_headroom_slots(headrooms[i].headroom_slots);
    }
    if (auto q = queues.find(c.name); q != queues.end() && q->second.max > 0) {
      p->set_queue_max(q->second.max);
      p->set_queue_deadline_seconds(absl::ToDoubleSeconds(q->second.deadline));
    }
  }
  return out;
}

AdmissionConfig AdmissionFromProto(const v1::PriorityClasses& published) {
  AdmissionConfig config;
  config.default_class = published.default_class();
  config.tenant_classes.insert(published.tenant_classes().begin(), published.tenant_classes().end());
  for (const v1::PriorityClass& p : published.classes()) {
    PriorityClass c;
    c.name = p.name();
    c.rank = static_cast<int32_t>(p.rank());
    c.max_share = p.max_share();
    config.classes.push_back(std::move(c));
  }
  return config;
}

QueueConfig QueueFromProto(const v1::PriorityClasses& published) {
  QueueConfig queues;
  for (const v1::PriorityClass& p : published.classes()) {
    if (p.queue_max() == 0 || !(p.queue_deadline_seconds() > 0)) continue;
    queues[p.name()] = ClassQueueConfig{p.queue_max(), absl::Seconds(p.queue_deadline_seconds())};
  }
  return queues;
}

}  // namespace switchboard::controlplane::policy
