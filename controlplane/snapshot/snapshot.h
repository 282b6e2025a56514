// Snapshot: the immutable, versioned assignment of one pool, shared by every publisher.
#ifndef SWITCHBOARD_CONTROLPLANE_SNAPSHOT_SNAPSHOT_H_
#define SWITCHBOARD_CONTROLPLANE_SNAPSHOT_SNAPSHOT_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/time/time.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/policy/circuit.h"
#include "controlplane/policy/pool_policy.h"
#include "controlplane/policy/replicas.h"
#include "controlplane/policy/weights.h"
#include "google/protobuf/arena.h"
#include "switchboard/v1/admin.pb.h"
#include "switchboard/v1/discovery.pb.h"

namespace switchboard::controlplane {

// A message's wire bytes, serialized on first use and then shared: every subscriber
// stream of a snapshot sends the same bytes, so an assignment is serialized once per
// version, not once per subscriber. Thread-safe. A copy starts empty (the copy's message
// may be changed before it is sent).
class LazyWireBytes {
 public:
  LazyWireBytes() = default;
  LazyWireBytes(const LazyWireBytes&) {}
  LazyWireBytes& operator=(const LazyWireBytes&) = delete;
  // `message` must not change after the first call.
  const std::string& Get(const google::protobuf::MessageLite& message) const;
  // Sets the bytes before any Get (which then returns them); ignored after one. `bytes`
  // must parse to the message Get would be called with.
  void Set(std::string bytes);

 private:
  mutable absl::once_flag once_;
  mutable std::string bytes_;
};

// What a snapshot keeps of one endpoint beyond its assignment entry, for the admin API,
// the metrics and the history: the facts, not their presentation. EndpointStatus and the
// weight's explanation are built from them on request (Snapshot::Detail,
// Snapshot::WeightExplanations), so a snapshot costs about 200 bytes per endpoint here
// instead of a second protobuf message and a sentence per endpoint. Strings are rare:
// the circuit's reason is short in the common case ("ready", within the string's inline
// capacity), and what agents report on failure sits behind `rare`, null when empty.
struct EndpointFacts {
  // The weight policy's input, exactly as it was decided on (slots, queue, speeds, the
  // previous weight, the circuit's cap): the explanation is recomputed from it.
  policy::WeightInput weight_input;
  double kv_cache_usage = 0;
  double tokens_per_second = 0;
  double ttft_p95_seconds = 0;
  int64_t report_age_ns = 0;
  uint64_t requests_total = 0;
  uint64_t errors_total = 0;
  uint64_t checks_total = 0;
  uint64_t check_failures_total = 0;
  uint64_t gateway_requests_total = 0;
  uint64_t gateway_errors_total = 0;
  v1::Engine engine = v1::ENGINE_UNSPECIFIED;
  bool errors_counted = false;
  std::string circuit_reason;
  struct Rare {
    std::string probe_error;
    std::string check_error;
    std::vector<std::string> duplicate_of;
  };
  std::shared_ptr<const Rare> rare;  // Null: all empty.
};

// Everything a Snapshot holds besides its assignment (copied member by member).
struct SnapshotFields {
  std::string pool;
  std::string version;  // == assignment.version(): hash of the content.
  // One per assignment endpoint, same order (see EndpointFacts).
  std::vector<EndpointFacts> facts;
  // The weight rule the weights were computed with (for WeightExplanations).
  policy::WeightConfig weight_config;
  bool restored = false;  // Served from history after a restart (RestoredSnapshot).
  policy::CapacitySource capacity_source = policy::CapacitySource::kEqual;
  std::string autoscale_explanation;  // How desired_replicas came about.
  // What the autoscaler saw at its last sync (current replicas, demand); nullopt with
  // autoscaling off and for a snapshot restored from history. Not part of the version.
  std::optional<policy::PoolSignals> scaling_signals;
  // `assignment` serialized, for the native Subscribe streams (set `assignment` first).
  LazyWireBytes assignment_bytes;
};

struct Snapshot : SnapshotFields {
  Snapshot();
  // A copy has its own arena and assignment (which may be changed before it is sent).
  Snapshot(const Snapshot& other);
  Snapshot& operator=(const Snapshot&) = delete;

 private:
  // Holds the assignment: a pool's assignment is a message per endpoint with its strings
  // and labels, built by every pass that changes the pool and freed with the snapshot;
  // on an arena that is a few block allocations and one release instead of thousands.
  std::unique_ptr<google::protobuf::Arena> arena_;

 public:
  v1::Assignment& assignment;  // What subscribers receive (nonce = version). On arena_.

  size_t size() const { return facts.size(); }
  // What the admin API shows of endpoint `i` (< size()).
  v1::EndpointStatus Detail(size_t i) const;
  // The weight policy's reason for every endpoint's weight, same order: the policy run
  // again on the inputs it decided on (pure, so the same words and numbers). Costs one
  // weight computation over the pool: for explain requests, not for every pass.
  std::vector<std::string> WeightExplanations() const;
};

// Circuit-breaker memory of a pool's endpoints: `memories[i]` belongs to the endpoint
// `keys[i]` ("node/address"), in the order of the pool's endpoints at the last pass. Kept
// as two parallel vectors, not a map: while the pool's endpoints stay the same (nearly
// every pass) the policy works on `memories` in place, without copying or allocating.
struct CircuitMemories {
  std::vector<std::string> keys;
  std::vector<policy::CircuitMemory> memories;
};

// Runs the policy over one pool's endpoints and builds its snapshot; `replicas` is the
// autoscaler's decision (nullopt: desired replicas = the routable endpoints). `previous` (may be
// null) supplies the weights that hysteresis compares against. `now` is wall time for
// generated_at only: it is not part of the version. `memories` (may be null: no memory,
// every call starts CLOSED) carries the breakers' state across calls, against
// `monotonic_now`.
std::shared_ptr<const Snapshot> BuildSnapshot(const std::string& pool, const std::vector<EndpointView>& endpoints,
                                              const Snapshot* previous, const policy::PolicyConfig& config,
                                              absl::Time now, CircuitMemories* memories = nullptr,
                                              absl::Time monotonic_now = absl::InfinitePast(),
                                              const std::optional<policy::ReplicaDecision>& replicas = std::nullopt);

// A snapshot served from history after a restart: `stored` as it was published, marked
// stale (same version), its admin details rebuilt from the assignment.
std::shared_ptr<const Snapshot> RestoredSnapshot(v1::Assignment stored);

// The version of an assignment: a hash of its deterministic serialization with the
// version, nonce, stale and generated_at fields cleared. Same content, same version, on every
// replica and after a restart.
std::string ComputeVersion(const v1::Assignment& assignment);
// The same, and the deterministic serialization it hashed into `content` (the assignment
// without its version, nonce, stale and generated_at fields).
std::string ComputeVersion(const v1::Assignment& assignment, std::string* content);

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_SNAPSHOT_SNAPSHOT_H_
