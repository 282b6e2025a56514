// The picker's view of its pools: the latest assignment of each (from the control plane),
// this replica's requests sent to and finished on each endpoint since that assignment,
// and the outcomes (answered, 5xx) per served endpoint not yet reported to the control
// plane. Thread-safe: every ext_proc stream and the subscription share one table.
#ifndef SWITCHBOARD_PICKER_POOL_TABLE_H_
#define SWITCHBOARD_PICKER_POOL_TABLE_H_

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "client/pick_decision.h"
#include "common/mutex.h"
#include "controlplane/policy/admission.h"
#include "switchboard/v1/discovery.pb.h"

namespace switchboard::picker {

class PoolTable {
 public:
  // `pools`: the pools this picker serves; empty = every pool the control plane sends.
  PoolTable(std::vector<std::string> pools, client::PickPolicy policy, uint64_t seed);

  // Takes `a` as its pool's current assignment and restarts the pool's counts since the
  // assignment. InvalidArgument for a pool this picker does not serve (nothing changes).
  absl::Status Apply(const v1::Assignment& a);
  // Holds an assignment for every pool it serves (for at least one when it serves all).
  bool Ready() const;
  bool Serves(const std::string& pool) const;

  // Decides where a request for `pool` goes; a kRoute counts as sent to the pick. When the
  // pool has priority classes, the request's class (from `priority` and `tenant`, the
  // x-priority and x-tenant headers) must have headroom first (otherwise kShed, and
  // *class_refused is set when given); its class is named in the reason.
  client::PickResult Pick(const std::string& pool, const client::PickRequest& request, absl::string_view priority = {},
                          absl::string_view tenant = {}, bool* class_refused = nullptr);
  // A request Pick routed to `picked` in `pool` is over (answered or abandoned).
  void Done(const std::string& pool, const std::string& picked);
  // `address` of `pool` answered a request with HTTP `status` (the gateway's served
  // endpoint): one request, and one error when the status is 5xx. Addresses the pool's
  // assignment lacks are not counted (false).
  bool Outcome(const std::string& pool, const std::string& address, int status);

  // The outcomes since the last call, as deltas for SubscribeRequest.outcomes.
  std::vector<v1::EndpointOutcome> TakeOutcomes();
  // Puts outcomes that could not be sent back, to go with the next report.
  void Restore(const std::vector<v1::EndpointOutcome>& outcomes);

 private:
  struct Since {
    uint32_t sent = 0, done = 0;
  };
  struct Pool {
    v1::Assignment assignment;
    std::map<std::string, Since> since;  // By address.
    // The assignment's priority classes (none: classes off) and headroom by class.
    controlplane::policy::AdmissionConfig admission;
    std::map<std::string, double> headroom_slots;
  };
  const std::vector<std::string> pools_;
  const client::PickPolicy policy_;
  mutable Mutex mu_;
  std::map<std::string, Pool> by_pool_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, v1::EndpointOutcome> outcomes_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace switchboard::picker

#endif  // SWITCHBOARD_PICKER_POOL_TABLE_H_
