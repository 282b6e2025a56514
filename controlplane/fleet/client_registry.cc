#include "controlplane/fleet/client_registry.h"

#include <string>
#include <vector>

namespace switchboard::controlplane {

namespace {
std::string Clip(const std::string& s, size_t n) { return s.size() <= n ? s : s.substr(0, n) + "..."; }
}  // namespace

uint64_t ClientRegistry::Add(const std::string& protocol, const std::string& peer) {
  const absl::Time now = clock_->Now();
  MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  ConnectedClient& c = clients_[id];
  c.id = id;
  c.protocol = protocol;
  c.peer = Clip(peer, kMaxField);
  c.connected_since = now;
  return id;
}

void ClientRegistry::Identify(uint64_t id, const std::string& client_id, const std::string& user_agent) {
  MutexLock lock(&mu_);
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  it->second.client_id = Clip(client_id, kMaxField);
  it->second.user_agent = Clip(user_agent, kMaxField);
}

void ClientRegistry::AddResource(uint64_t id, const std::string& resource) {
  MutexLock lock(&mu_);
  auto it = clients_.find(id);
  if (it == clients_.end() || it->second.resources.size() >= kMaxResources) return;
  it->second.resources.insert(Clip(resource, kMaxField));
}

void ClientRegistry::Ack(uint64_t id, const std::string& resource, const std::string& version) {
  MutexLock lock(&mu_);
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  auto& acked = it->second.acked;
  const std::string key = Clip(resource, kMaxField);
  if (acked.count(key) == 0 && acked.size() >= kMaxResources) return;
  acked[key] = Clip(version, kMaxField);
}

void ClientRegistry::Nack(uint64_t id, const std::string& resource, const std::string& message) {
  const absl::Time now = clock_->Now();
  MutexLock lock(&mu_);
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  it->second.last_nack_resource = Clip(resource, kMaxField);
  it->second.last_nack = Clip(message, kMaxNackMessage);
  it->second.last_nack_time = now;
}

void ClientRegistry::Remove(uint64_t id) {
  MutexLock lock(&mu_);
  clients_.erase(id);
}

std::vector<ConnectedClient> ClientRegistry::List() const {
  MutexLock lock(&mu_);
  std::vector<ConnectedClient> out;
  out.reserve(clients_.size());
  for (const auto& [id, c] : clients_) out.push_back(c);
  return out;
}

}  // namespace switchboard::controlplane
