// Picker replicas' requests in flight, shared through the control plane
// (DiscoveryService.ShareInFlight), so that N replicas route as one would.
//
// A replica knows exactly what it sent and what finished since its last assignment; what
// it lacks is the same for the other replicas. Every share interval each replica writes
// its own requests in flight per endpoint (absolute counts) and reads back the sum of the
// other replicas' latest counts:
//
//   InFlightBoard  the control plane's side: the latest report of each replica; Others()
//                  sums everyone's but the asker's.
//   PeerInFlight   a replica's side, per pool: the others' counts as last received and as
//                  they were when the current assignment arrived; Change() is the
//                  difference, what the others added since the assignment (the agents'
//                  report behind the assignment already counts what they had before).
//
// Both are plain values (no locks, no I/O): switchboard-picker and the control plane wrap
// them in their own locking, and the simulator runs the same code with the exchange's
// delays (sim switchboard_picker_shared).
#ifndef SWITCHBOARD_CLIENT_IN_FLIGHT_SHARE_H_
#define SWITCHBOARD_CLIENT_IN_FLIGHT_SHARE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace switchboard::client {

using EndpointCounts = std::map<std::string, uint32_t>;    // Address -> requests in flight.
using PoolCounts = std::map<std::string, EndpointCounts>;  // Pool -> its endpoints' counts.

class InFlightBoard {
 public:
  // Takes `pools` as everything `replica` has in flight (replacing its previous report).
  void Report(uint64_t replica, PoolCounts pools);
  // Forgets `replica` (its stream ended).
  void Remove(uint64_t replica);
  // The sum of every other replica's latest counts for `pool` (endpoints with none left out).
  EndpointCounts Others(uint64_t replica, const std::string& pool) const;
  // Replicas reporting other than `replica`.
  size_t Peers(uint64_t replica) const;

 private:
  std::map<uint64_t, PoolCounts> by_replica_;
};

class PeerInFlight {
 public:
  // The others' counts from the latest answer, and how many others there are.
  void Received(EndpointCounts others, size_t peers) {
    now_ = std::move(others);
    peers_ = peers;
  }
  // Nothing heard from the others any more (the stream to the control plane is down):
  // Change() is 0 and GatewaysScale() the number of replicas, as without sharing.
  void Lost() { *this = PeerInFlight(); }
  // A new assignment arrived: the others' requests until now are in its reports' past.
  void AssignmentApplied() { at_assignment_ = now_; }
  // The others' requests in flight at `address` now minus when the assignment arrived
  // (negative when more of theirs finished than they sent).
  double Change(const std::string& address) const;
  // PickerConfig::gateways for `replicas` pickers of which this one hears from itself and
  // its peers: what they count, scaled up for the replicas it does not hear from (on
  // another control-plane replica); `replicas` with no answer yet.
  double GatewaysScale(double replicas) const;

 private:
  EndpointCounts now_, at_assignment_;
  size_t peers_ = 0;
};

}  // namespace switchboard::client

#endif  // SWITCHBOARD_CLIENT_IN_FLIGHT_SHARE_H_
