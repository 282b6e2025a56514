// Holds a FleetState's lock from a test, as a long reconcile pass would, to show what
// must not wait on it (a gRPC poller) and what may.
#ifndef SWITCHBOARD_TESTS_CONTROLPLANE_FLEET_STATE_PEER_H_
#define SWITCHBOARD_TESTS_CONTROLPLANE_FLEET_STATE_PEER_H_

#include "absl/base/thread_annotations.h"
#include "controlplane/fleet/fleet_state.h"

namespace switchboard::controlplane {

class FleetStateTestPeer {
 public:
  static void Lock(FleetState& fleet) ABSL_NO_THREAD_SAFETY_ANALYSIS { fleet.mu_.Lock(); }
  static void Unlock(FleetState& fleet) ABSL_NO_THREAD_SAFETY_ANALYSIS { fleet.mu_.Unlock(); }
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_TESTS_CONTROLPLANE_FLEET_STATE_PEER_H_
