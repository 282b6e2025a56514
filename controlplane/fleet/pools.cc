#include "controlplane/fleet/pools.h"

#include <algorithm>
#include <iterator>
#include <set>
#include <utility>

namespace switchboard::controlplane {

std::map<std::string, std::vector<EndpointView>> GroupByPool(std::vector<EndpointView> endpoints) {
  std::map<std::string, std::vector<EndpointView>> pools;
  // Each pool's vector is reserved at its final size first: grown by doubling, the views
  // of a pass would take up to twice their room (one pass's memory peak, see
  // docs/performance.md).
  std::map<std::string, size_t> sizes;
  for (const EndpointView& ep : endpoints) {
    if (ep.models.size() == 1) {
      ++sizes[ep.models[0]];
      continue;
    }
    for (const std::string& model : std::set<std::string>(ep.models.begin(), ep.models.end())) ++sizes[model];
  }
  for (const auto& [model, size] : sizes) pools[model].reserve(size);
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
