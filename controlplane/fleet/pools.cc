#include "controlplane/fleet/pools.h"

#include <algorithm>
#include <set>

namespace switchboard::controlplane {

std::map<std::string, std::vector<EndpointView>> GroupByPool(const std::vector<EndpointView>& endpoints) {
  std::map<std::string, std::vector<EndpointView>> pools;
  for (const EndpointView& ep : endpoints) {
    std::set<std::string> models(ep.models.begin(), ep.models.end());  // No duplicates.
    for (const std::string& model : models) pools[model].push_back(ep);
  }
  for (auto& [name, eps] : pools) {
    std::sort(eps.begin(), eps.end(), [](const EndpointView& a, const EndpointView& b) {
      return std::tie(a.node_id, a.address) < std::tie(b.node_id, b.address);
    });
  }
  return pools;
}

}  // namespace switchboard::controlplane
