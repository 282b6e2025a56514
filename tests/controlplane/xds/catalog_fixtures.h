// Catalogs for the xDS stream tests (SotW and delta): pools of one ready endpoint whose
// weight makes the pool's EDS version.
#ifndef SWITCHBOARD_TESTS_CONTROLPLANE_XDS_CATALOG_FIXTURES_H_
#define SWITCHBOARD_TESTS_CONTROLPLANE_XDS_CATALOG_FIXTURES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controlplane/xds/resources.h"

namespace switchboard::controlplane::xds::xds_test {

// Pool `name` with one ready endpoint of weight `weight`.
inline std::shared_ptr<Snapshot> OneEndpointPool(const std::string& name, uint32_t weight) {
  auto snap = std::make_shared<Snapshot>();
  snap->pool = name;
  snap->assignment.set_pool(name);
  auto* ep = snap->assignment.add_endpoints();
  ep->set_address("10.0.0.1:8000");
  ep->set_weight(weight);
  ep->set_state(v1::ENDPOINT_STATE_READY);
  ep->set_circuit(v1::CIRCUIT_STATE_CLOSED);
  return snap;
}

// A catalog for `kind` with one pool per (name, weight).
inline std::shared_ptr<const Catalog> PoolsCatalog(const std::vector<std::pair<std::string, uint32_t>>& pools,
                                                   ClientKind kind) {
  std::vector<std::shared_ptr<const Snapshot>> snaps;
  for (const auto& [name, weight] : pools) snaps.push_back(OneEndpointPool(name, weight));
  return BuildCatalog(snaps, kind);
}

// An Envoy catalog of pool `name` (4 slots, all free), with priority classes hi and lo or
// without: their clusters name~hi and name~lo read the pool's assignment, `name`.
inline std::shared_ptr<const Catalog> ClassCatalog(const std::string& name, uint32_t weight, bool classes) {
  std::shared_ptr<Snapshot> snap = OneEndpointPool(name, weight);
  auto* ep = snap->assignment.mutable_endpoints(0);
  ep->set_slots_total(4);
  ep->set_slots_free(4);
  if (classes) {
    auto* priority = snap->assignment.mutable_priority();
    priority->set_default_class("lo");
    for (const char* c : {"hi", "lo"}) {
      auto* pc = priority->add_classes();
      pc->set_name(c);
      pc->set_rank(priority->classes_size() - 1);
      pc->set_max_share(1.0);
      pc->set_limit_slots(4);
      pc->set_headroom_slots(4);
    }
  }
  return BuildCatalog({snap}, ClientKind::kEnvoy);
}

}  // namespace switchboard::controlplane::xds::xds_test

#endif  // SWITCHBOARD_TESTS_CONTROLPLANE_XDS_CATALOG_FIXTURES_H_
