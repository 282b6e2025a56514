// Priority classes in the assignment (v1::PriorityClasses): what the control plane
// publishes and what gateways read back, so that both run DecideAdmission on the same
// configuration and headroom.
#ifndef SWITCHBOARD_CONTROLPLANE_POLICY_ADMISSION_PROTO_H_
#define SWITCHBOARD_CONTROLPLANE_POLICY_ADMISSION_PROTO_H_

#include <vector>

#include "controlplane/policy/admission.h"
#include "controlplane/policy/admission_queue.h"
#include "switchboard/v1/discovery.pb.h"

namespace switchboard::controlplane::policy {

// `config` with each class's headroom (same order as config.classes) and queue.
v1::PriorityClasses PriorityToProto(const AdmissionConfig& config, const std::vector<ClassHeadroom>& headrooms,
                                    const QueueConfig& queues = {});

// The configuration as published (headrooms are read from the message where needed).
AdmissionConfig AdmissionFromProto(const v1::PriorityClasses& published);
// The classes' queues as published (classes with queue_max 0 have none).
QueueConfig QueueFromProto(const v1::PriorityClasses& published);

}  // namespace switchboard::controlplane::policy

#endif  // SWITCHBOARD_CONTROLPLANE_POLICY_ADMISSION_PROTO_H_
