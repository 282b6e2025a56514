// Grouping of endpoints into model pools.
#ifndef SWITCHBOARD_CONTROLPLANE_FLEET_POOLS_H_
#define SWITCHBOARD_CONTROLPLANE_FLEET_POOLS_H_

#include <map>
#include <string>
#include <vector>

#include "controlplane/fleet/fleet_state.h"

namespace switchboard::controlplane {

// A pool is every endpoint serving one model id, as its server reports it. An endpoint
// serving several models is in several pools; one that reports no model yet (still
// loading) is in none. Pools and their endpoints come out sorted (by name, then by
// node id and address) so that the same fleet always yields the same pools.
std::map<std::string, std::vector<EndpointView>> GroupByPool(std::vector<EndpointView> endpoints);

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_FLEET_POOLS_H_
