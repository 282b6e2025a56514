#include "controlplane/fleet/recent_picks.h"

#include <algorithm>
#include <utility>

namespace switchboard::controlplane {

void RecentPicks::Add(v1::PickExplanation pick) {
  MutexLock lock(&mu_);
  auto it = by_pool_.find(pick.pool());
  if (it == by_pool_.end()) {
    if (by_pool_.size() >= max_pools_) return;
    it = by_pool_.emplace(pick.pool(), std::deque<v1::PickExplanation>()).first;
  }
  it->second.push_back(std::move(pick));
  while (it->second.size() > per_pool_) it->second.pop_front();
}

std::vector<v1::PickExplanation> RecentPicks::Latest(const std::string& pool, size_t n) const {
  MutexLock lock(&mu_);
  std::vector<v1::PickExplanation> out;
  auto it = by_pool_.find(pool);
  if (it == by_pool_.end()) return out;
  for (auto p = it->second.rbegin(); p != it->second.rend() && out.size() < n; ++p) out.push_back(*p);
  return out;
}

}  // namespace switchboard::controlplane
