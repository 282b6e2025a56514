// SnapshotStore: the newest snapshot of every pool, and who wants to hear of changes.
// Thread-safe. Publishers (Subscribe streams, admin) read shared_ptr<const Snapshot>
// and never copy assignments.
#ifndef SWITCHBOARD_CONTROLPLANE_SNAPSHOT_SNAPSHOT_STORE_H_
#define SWITCHBOARD_CONTROLPLANE_SNAPSHOT_SNAPSHOT_STORE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "controlplane/snapshot/snapshot.h"

namespace switchboard::controlplane {

class SnapshotStore {
 public:
  using Watcher = std::function<void()>;

  // Replaces the snapshots of the given pools and notifies every watcher once.
  void Publish(const std::vector<std::shared_ptr<const Snapshot>>& snapshots);
  // Replaces snapshots whose version is unchanged but whose admin details (latency,
  // KV-cache use, report age...) moved. Subscribers are not notified: nothing they
  // receive changed.
  void Refresh(const std::vector<std::shared_ptr<const Snapshot>>& snapshots);

  std::shared_ptr<const Snapshot> Get(const std::string& pool) const;
  std::vector<std::shared_ptr<const Snapshot>> All() const;

  // Watchers run on the publishing thread, after the store is updated; they must not
  // block. RemoveWatcher returns only when no call to that watcher is running, so the
  // watcher's owner may be destroyed right after.
  int AddWatcher(Watcher watcher);
  void RemoveWatcher(int id);

 private:
  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<const Snapshot>> pools_ ABSL_GUARDED_BY(mu_);

  // Held while watchers run (never together with mu_), so removal waits for them.
  Mutex watchers_mu_;
  std::map<int, Watcher> watchers_ ABSL_GUARDED_BY(watchers_mu_);
  int next_watcher_id_ ABSL_GUARDED_BY(watchers_mu_) = 1;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SNAPSHOT_SNAPSHOT_STORE_H_
