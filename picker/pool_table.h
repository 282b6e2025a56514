// The picker's view of its pools: the latest assignment of each (from the control plane),
// this replica's requests sent to and finished on each endpoint since that assignment,
// its requests in flight and the other replicas' (shared through the control plane:
// client/in_flight_share.h), and the outcomes (answered, 5xx) per served endpoint not yet
// reported to the control plane. Thread-safe: every ext_proc stream, the subscription and
// the share stream use one table.
#ifndef SWITCHBOARD_PICKER_POOL_TABLE_H_
#define SWITCHBOARD_PICKER_POOL_TABLE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "client/in_flight_share.h"
#include "client/pick_decision.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "controlplane/policy/admission.h"
#include "controlplane/policy/admission_queue.h"
#include "switchboard/v1/discovery.pb.h"

namespace switchboard::picker {

class PoolTable {
 public:
  // `pools`: the pools this picker serves; empty = every pool the control plane sends.
  // `clock` (default: the system's) stamps the picks kept for explaining.
  PoolTable(std::vector<std::string> pools, client::PickPolicy policy, uint64_t seed,
            const Clock* clock = SystemClock::Get());

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
  //
  // When `on_release` is given and the refused class has a queue in the assignment
  // (controlplane/policy/admission_queue.h) with room, the request is held instead:
  // *held is set, the result returned means nothing, and `on_release` is called exactly
  // once later, from whichever thread runs the release pass and without the table's lock,
  // with the pick made when the request is admitted (kRoute, or what DecidePick says
  // then), a kShed with Retry-After past the class's deadline, or kUnavailable when the
  // table closes its queues. Unhold takes a held request back without calling it.
  using ReleaseCallback = std::function<void(client::PickResult)>;
  client::PickResult Pick(const std::string& pool, const client::PickRequest& request, absl::string_view priority = {},
                          absl::string_view tenant = {}, bool* class_refused = nullptr,
                          ReleaseCallback on_release = nullptr, uint64_t* held = nullptr);
  // A held request (the id Pick set in *held) leaves: true if it was still held (its
  // callback will not be called), false if it was released already.
  bool Unhold(uint64_t held);
  // One release pass over every pool's held requests at the clock's monotonic now
  // (admits what the classes' headroom allows, most important class first, and expires
  // what is past its deadline). Apply and Done run one; RunReleaseTimer runs one at each
  // deadline. Returns the number of callbacks called.
  size_t ReleaseQueued();
  // Requests held now, in every pool.
  size_t Held() const;
  // Runs release passes at the held requests' deadlines (on the table's clock) until
  // CloseQueues; for a thread of its own.
  void RunReleaseTimer();
  // Answers every held request kUnavailable (503) and holds no more; ends RunReleaseTimer.
  void CloseQueues();
  // A request Pick routed to `picked` in `pool` is over (answered or abandoned).
  void Done(const std::string& pool, const std::string& picked);
  // `address` of `pool` answered a request with HTTP `status` (the gateway's served
  // endpoint): one request, and one error when the status is 5xx. Addresses the pool's
  // assignment lacks are not counted (false).
  bool Outcome(const std::string& pool, const std::string& address, int status);

  // This replica's requests in flight, for every pool it holds an assignment of (pools
  // with none included, so that the answer covers them).
  client::PoolCounts InFlight() const;
  // The other replicas' requests in flight, as the control plane answered a report.
  void SetPeers(const v1::PeersInFlight& peers);
  // The share stream is down: pick as if alone among --replicas replicas.
  void PeersLost();

  // The last picks decided since the previous call (at most kKeptPicks, oldest first),
  // for the control plane to explain (InFlightReport.picks).
  static constexpr size_t kKeptPicks = 16;
  std::vector<v1::PickExplanation> TakePicks();

  // The outcomes since the last call, as deltas for SubscribeRequest.outcomes.
  std::vector<v1::EndpointOutcome> TakeOutcomes();
  // Puts outcomes that could not be sent back, to go with the next report.
  void Restore(const std::vector<v1::EndpointOutcome>& outcomes);

 private:
  struct Pool {
    v1::Assignment assignment;
    // The assignment's endpoints as DecidePick takes them, built once per assignment: a
    // pick updates their counts since the assignment (and the peers' change) in place
    // rather than copying the pool per request.
    std::vector<client::CandidateEndpoint> candidates;
    std::map<std::string, size_t> index;        // Address -> its place in candidates.
    std::map<std::string, uint32_t> in_flight;  // By address; kept across assignments.
    client::PeerInFlight peers;
    // The assignment's priority classes (none: classes off) and headroom by class.
    controlplane::policy::AdmissionConfig admission;
    std::map<std::string, double> headroom_slots;
    controlplane::policy::QueueConfig queues;  // The assignment's queues by class.
    controlplane::policy::AdmissionQueue queue;
  };
  struct HeldRequest {
    std::string pool;
    client::PickRequest request;
    std::string class_reason;
    absl::Time deadline;
    ReleaseCallback on_release;
  };
  using Released = std::vector<std::pair<ReleaseCallback, client::PickResult>>;
  // Brings `p`'s candidates up to date with the other replicas' change and gives the
  // policy for them (the gateways this replica stands for).
  void Refresh(Pool& p, client::PickPolicy* policy) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The change in occupancy since the assignment on the routable candidates, as
  // EstimatedOccupancy counts it.
  static controlplane::policy::OccupancyChange Change(const std::vector<client::CandidateEndpoint>& candidates);
  // DecidePick (facts only), counting a kRoute as sent, and keeping the pick for explaining.
  client::PickResult Route(const std::string& pool, Pool& p, const client::PickRequest& request,
                           const client::PickPolicy& policy, std::string class_reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseLocked(Released* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Call(Released released);
  const std::vector<std::string> pools_;
  const client::PickPolicy policy_;
  const Clock* const clock_;
  mutable Mutex mu_;
  std::map<std::string, Pool> by_pool_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, v1::EndpointOutcome> outcomes_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  bool sharing_ ABSL_GUARDED_BY(mu_) = false;
  struct KeptPick {
    std::string pool;
    absl::Time at;
    client::PickResult result;  // Its facts; explained when taken (TakePicks).
  };
  void Keep(const std::string& pool, const client::PickResult& result) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The last kKeptPicks picks, a ring: copying a pick over an older one reuses its storage.
  std::array<KeptPick, kKeptPicks> kept_ ABSL_GUARDED_BY(mu_);
  size_t kept_next_ ABSL_GUARDED_BY(mu_) = 0;   // Where the next pick goes.
  size_t kept_count_ ABSL_GUARDED_BY(mu_) = 0;  // Picks kept since the last TakePicks.
  std::map<uint64_t, HeldRequest> held_ ABSL_GUARDED_BY(mu_);
  uint64_t next_held_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t held_epoch_ ABSL_GUARDED_BY(mu_) = 0;  // Changes when a request is held (the timer rereads deadlines).
  bool queues_closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace switchboard::picker

#endif  // SWITCHBOARD_PICKER_POOL_TABLE_H_
