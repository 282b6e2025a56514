#include "controlplane/snapshot/snapshot_store.h"

namespace switchboard::controlplane {

void SnapshotStore::Publish(const std::vector<std::shared_ptr<const Snapshot>>& snapshots) {
  if (snapshots.empty()) return;
  {
    MutexLock lock(&mu_);
    for (const auto& snap : snapshots) pools_[snap->pool] = snap;
  }
  MutexLock lock(&watchers_mu_);
  for (auto& [id, watcher] : watchers_) watcher();
}

void SnapshotStore::Refresh(const std::vector<std::shared_ptr<const Snapshot>>& snapshots) {
  MutexLock lock(&mu_);
  for (const auto& snap : snapshots) pools_[snap->pool] = snap;
}

std::shared_ptr<const Snapshot> SnapshotStore::Get(const std::string& pool) const {
  MutexLock lock(&mu_);
  auto it = pools_.find(pool);
  return it == pools_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const Snapshot>> SnapshotStore::All() const {
  MutexLock lock(&mu_);
  std::vector<std::shared_ptr<const Snapshot>> out;
  out.reserve(pools_.size());
  for (const auto& [name, snap] : pools_) out.push_back(snap);
  return out;
}

int SnapshotStore::AddWatcher(Watcher watcher) {
  MutexLock lock(&watchers_mu_);
  int id = next_watcher_id_++;
  watchers_[id] = std::move(watcher);
  return id;
}

void SnapshotStore::RemoveWatcher(int id) {
  MutexLock lock(&watchers_mu_);
  watchers_.erase(id);
}

}  // namespace switchboard::controlplane
