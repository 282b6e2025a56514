// --scale-exec 'CMD {pool} {replicas}': runs an operator's command whenever a pool's
// desired replicas change, for whatever acts on them outside Kubernetes' autoscalers (a
// cloud API, `kubectl scale`, a script).
//
// The command line is split into words (single or double quotes group words; there are
// no escapes) and run directly, not through a shell; {pool} and {replicas} are replaced
// in every word, and the environment also carries SWITCHBOARD_POOL and
// SWITCHBOARD_REPLICAS (what a `sh -c` wrapper should read, rather than pasting a pool
// name into shell code). Per pool, at most one run at a time: a change during a run is
// run when it ends, with the newest count (intermediate counts are skipped). A run
// past `timeout` is killed (its whole process group). Stale snapshots (served from
// history after a restart) and advisory pools run nothing. Every run ends in an event:
// scale_exec (exit 0) or scale_exec_failed (exit status, signal or timeout, and the end
// of its output).
//
// Thread-safe. Runs happen on one thread per busy pool; the destructor waits for the
// runs in progress (each at most `timeout`).
#ifndef SWITCHBOARD_CONTROLPLANE_SCALE_SCALE_EXEC_H_
#define SWITCHBOARD_CONTROLPLANE_SCALE_SCALE_EXEC_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "controlplane/history/history_store.h"
#include "controlplane/policy/pool_policy.h"
#include "controlplane/snapshot/snapshot_store.h"

namespace switchboard::controlplane {

// Splits a command template into words (see above). INVALID_ARGUMENT for an unclosed
// quote or an empty command.
absl::StatusOr<std::vector<std::string>> SplitCommand(const std::string& command);

// The words with {pool} and {replicas} replaced.
std::vector<std::string> ExpandCommand(const std::vector<std::string>& words, const std::string& pool,
                                       int32_t replicas);

// How one run ended.
struct ExecResult {
  bool ok = false;
  std::string detail;  // "exit 0", "exit 3", "killed by signal 9", "timed out after 2s"; + output's tail.
};

// Runs `argv` with `env` added to the environment, in its own process group, killing the
// group after `timeout`. Captures up to the last 512 bytes of stdout and stderr.
ExecResult RunCommand(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                      absl::Duration timeout);

struct ScaleExecOptions {
  std::string command;  // The template; checked by ScaleExecutor::Create.
  absl::Duration timeout = absl::Seconds(30);
};

class ScaleExecutor {
 public:
  using ConfigSource = std::function<std::shared_ptr<const policy::FleetConfig>()>;
  using EventSink = std::function<void(HistoryEvent)>;  // Called from run threads.
  using Clock = std::function<absl::Time()>;            // Wall time, for events.

  // Watches `store` from now on. Pointers must outlive the executor.
  static absl::StatusOr<std::unique_ptr<ScaleExecutor>> Create(ScaleExecOptions options, SnapshotStore* store,
                                                               ConfigSource config, EventSink events, Clock wall);
  ~ScaleExecutor();

  // Runs completed so far (tests wait on it), and whether any is running now.
  uint64_t runs_finished() const;

 private:
  ScaleExecutor(ScaleExecOptions options, std::vector<std::string> words, SnapshotStore* store, ConfigSource config,
                EventSink events, Clock wall);
  void OnPublish();
  void RunPool(const std::string& pool);

  struct PoolState {
    std::optional<int32_t> acted;    // The count last run (or running).
    std::optional<int32_t> pending;  // A newer count to run once the current run ends.
    bool running = false;
    std::thread thread;
  };

  const ScaleExecOptions options_;
  const std::vector<std::string> words_;
  SnapshotStore* const store_;
  const ConfigSource config_;
  const EventSink events_;
  const Clock wall_;
  int watcher_id_ = 0;

  mutable Mutex mu_;
  std::map<std::string, PoolState> pools_ ABSL_GUARDED_BY(mu_);
  uint64_t runs_finished_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SCALE_SCALE_EXEC_H_
