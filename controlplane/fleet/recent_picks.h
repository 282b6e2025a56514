// The last picks each pool's picker replicas reported (DiscoveryService.ShareInFlight),
// for `sbctl explain POOL --request`. Bounded: `per_pool` picks for each of at most
// `max_pools` pools (picks for further pools are dropped). Thread-safe.
#ifndef SWITCHBOARD_CONTROLPLANE_FLEET_RECENT_PICKS_H_
#define SWITCHBOARD_CONTROLPLANE_FLEET_RECENT_PICKS_H_

#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "switchboard/v1/discovery.pb.h"

namespace switchboard::controlplane {

class RecentPicks {
 public:
  explicit RecentPicks(size_t per_pool = 64, size_t max_pools = 1024) : per_pool_(per_pool), max_pools_(max_pools) {}

  void Add(v1::PickExplanation pick);
  // Up to `n` of `pool`'s picks, newest first.
  std::vector<v1::PickExplanation> Latest(const std::string& pool, size_t n) const;

 private:
  const size_t per_pool_, max_pools_;
  mutable Mutex mu_;
  std::map<std::string, std::deque<v1::PickExplanation>> by_pool_ ABSL_GUARDED_BY(mu_);  // Oldest first.
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_FLEET_RECENT_PICKS_H_
