#include "controlplane/fleet/pools.h"

#include <algorithm>
#include <iterator>
#include <set>
#include <utility>

namespace switchboard::controlplane {

std::map<std::string, std::vector<EndpointView>> GroupByPool(std::vector<EndpointView> endpoints) {
  std::map<std::string, std::vector<EndpointView>> pools;
  for (EndpointView& ep : endpoints) {
    std::set<std::string> models(ep.models.begin(), ep.models.end());  // No duplicates.
    if (models.empty()) continue;
    // Copied into every pool but the last, moved into that one: one pass holds one copy
    // of an endpoint that serves one model.
    const std::string last = *models.rbegin();
    models.erase(std::prev(models.end()));
    for (const std::string& model : models) pools[model].push_back(ep);
    pools[last].push_back(std::move(ep));
  }
  for (auto& [name, eps] : pools) {
    std::sort(eps.begin(), eps.end(), [](const EndpointView& a, const EndpointView& b) {
      return std::tie(a.node_id, a.address) < std::tie(b.node_id, b.address);
    });
  }
  return pools;
}

}  // namespace switchboard::controlplane
