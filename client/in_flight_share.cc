#include "client/in_flight_share.h"

#include <algorithm>

namespace switchboard::client {

void InFlightBoard::Report(uint64_t replica, PoolCounts pools) { by_replica_[replica] = std::move(pools); }

void InFlightBoard::Remove(uint64_t replica) { by_replica_.erase(replica); }

EndpointCounts InFlightBoard::Others(uint64_t replica, const std::string& pool) const {
  EndpointCounts sum;
  for (const auto& [id, pools] : by_replica_) {
    if (id == replica) continue;
    auto it = pools.find(pool);
    if (it == pools.end()) continue;
    for (const auto& [address, n] : it->second) {
      if (n > 0) sum[address] += n;
    }
  }
  return sum;
}

size_t InFlightBoard::Peers(uint64_t replica) const { return by_replica_.size() - by_replica_.count(replica); }

double PeerInFlight::Change(const std::string& address) const {
  auto now = now_.find(address);
  auto then = at_assignment_.find(address);
  return (now == now_.end() ? 0.0 : now->second) - (then == at_assignment_.end() ? 0.0 : then->second);
}

double PeerInFlight::GatewaysScale(double replicas) const {
  return std::max(1.0, replicas / static_cast<double>(1 + peers_));
}

}  // namespace switchboard::client
