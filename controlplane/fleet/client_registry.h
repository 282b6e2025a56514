// ClientRegistry: the discovery clients connected now (ADS SotW and delta streams, native
// Subscribe streams), for `sbctl clients`. The streams update it from their gRPC
// callbacks: every method takes one short mutex and never blocks on anything else.
#ifndef SWITCHBOARD_CONTROLPLANE_FLEET_CLIENT_REGISTRY_H_
#define SWITCHBOARD_CONTROLPLANE_FLEET_CLIENT_REGISTRY_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mutex.h"

namespace switchboard::controlplane {

struct ConnectedClient {
  uint64_t id = 0;        // This registry's, in connection order.
  std::string protocol;   // "ads-sotw", "ads-delta" or "native".
  std::string client_id;  // xDS node.id, or the native subscriber_id.
  std::string user_agent;
  std::string peer;  // gRPC's peer string, e.g. ipv4:127.0.0.1:41234.
  absl::Time connected_since;
  std::set<std::string> resources;                   // xDS type URLs, or pools ("*" = every pool).
  std::map<std::string, std::string> acked;          // Type URL or pool -> last ACKed version.
  std::string last_nack_resource;                    // Type URL or pool of the last NACK.
  std::string last_nack;                             // Its message, clipped to kMaxNackMessage.
  absl::Time last_nack_time = absl::InfinitePast();  // InfinitePast: never NACKed.
};

class ClientRegistry {
 public:
  static constexpr size_t kMaxNackMessage = 512;
  // Clips what a client sends (ids, user agents, resource names) so a client cannot grow
  // the registry without bound.
  static constexpr size_t kMaxField = 256;
  static constexpr size_t kMaxResources = 64;

  explicit ClientRegistry(const Clock* clock) : clock_(clock) {}

  // A stream connected; returns its id for the calls below.
  uint64_t Add(const std::string& protocol, const std::string& peer);
  // Ids of the client and its user agent, once its first request says them.
  void Identify(uint64_t id, const std::string& client_id, const std::string& user_agent);
  void AddResource(uint64_t id, const std::string& resource);
  void Ack(uint64_t id, const std::string& resource, const std::string& version);
  void Nack(uint64_t id, const std::string& resource, const std::string& message);
  // The stream ended.
  void Remove(uint64_t id);

  // Every connected client, in connection order.
  std::vector<ConnectedClient> List() const;

 private:
  const Clock* const clock_;
  mutable Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, ConnectedClient> clients_ ABSL_GUARDED_BY(mu_);
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_FLEET_CLIENT_REGISTRY_H_
