// FleetState: the latest Hello and Report of every node, keyed by node id. One mutex
// guards all of it; callers get copies (EndpointView) and never hold references.
#ifndef SWITCHBOARD_CONTROLPLANE_FLEET_FLEET_STATE_H_
#define SWITCHBOARD_CONTROLPLANE_FLEET_FLEET_STATE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "controlplane/fleet/validation.h"
#include "switchboard/v1/admin.pb.h"
#include "switchboard/v1/agent.pb.h"
#include "switchboard/v1/discovery.pb.h"

namespace switchboard::controlplane {

// One endpoint as the policy sees it: a flat copy, safe to use without locks.
struct EndpointView {
  std::string node_id;
  std::string address;
  std::map<std::string, std::string> labels;  // The node's labels.
  v1::Engine engine = v1::ENGINE_UNSPECIFIED;
  std::vector<std::string> models;
  v1::EndpointState state = v1::ENDPOINT_STATE_UNSPECIFIED;
  uint32_t slots_total = 0;
  uint32_t slots_busy = 0;
  uint32_t queue_depth = 0;
  double kv_cache_usage = 0;
  double tokens_per_second = 0;
  double slot_tokens_per_second = 0;     // Last non-zero measurement (kept while idle).
  double prefill_tokens_per_second = 0;  // Likewise.
  double e2e_p50_seconds = 0;            // Likewise: how long a request holds a slot.
  double capacity_hint = 0;
  double ttft_p95_seconds = 0;
  uint64_t requests_total = 0;
  uint64_t errors_total = 0;
  bool errors_counted = false;  // errors_total is the server's own 5xx counter.
  uint64_t checks_total = 0;    // The agent's active checks, and the failed ones.
  uint64_t check_failures_total = 0;
  std::string check_error;
  // What gateways reported on their Subscribe streams, summed since this control plane
  // started (kept across the node's reconnects).
  uint64_t gateway_requests_total = 0;
  uint64_t gateway_errors_total = 0;
  std::string probe_error;
  bool reported = false;      // False until the first Report arrives.
  bool connected = false;     // The node's stream is open now.
  absl::Duration report_age;  // Since the node's last accepted Report (or Hello).
  // Other connected nodes that report this same address, sorted; empty when none. Such
  // an endpoint is excluded from routing (see BuildSnapshot).
  std::vector<std::string> duplicate_of;
};

// How an endpoint is named across a pool's snapshots, memories and events: "node/address"
// (an address is unique only within its node).
inline std::string EndpointKey(const std::string& node_id, const std::string& address) {
  return node_id + "/" + address;
}

struct NodeView {
  std::string node_id;
  std::map<std::string, std::string> labels;
  std::string agent_version;
  bool connected = false;
  absl::Duration last_report_age;
  uint32_t endpoint_count = 0;
  uint64_t last_sequence = 0;
  std::vector<v1::GpuStatus> gpus;
  bool drain_requested = false;
  std::vector<v1::NodeEndpoint> endpoints;  // Every declared endpoint, pool or not.
};

// A node that left on purpose (its agent said Goodbye), for the history.
struct Departure {
  std::string node_id;
  std::vector<std::string> addresses;
  std::string reason;
};

class FleetState {
 public:
  // `on_change` is called (without FleetState's lock held) after every accepted change
  // that can move a decision: not for a report that repeats every endpoint's last values.
  explicit FleetState(ValidationLimits limits = {}, std::function<void()> on_change = nullptr)
      : limits_(limits), on_change_(std::move(on_change)) {}

  // Binds `stream_id` to the node named in `hello`. While another stream holds the node
  // id, the new one is refused with ALREADY_EXISTS: one agent can never overwrite
  // another's node. (An agent that restarts comes back as soon as its old connection is
  // seen closed: at once when its process died, within the keepalive timeout on a
  // network partition.) A disconnected node's id may be taken by a new stream.
  absl::Status Connect(uint64_t stream_id, const v1::Hello& hello, absl::Time now);
  // Validates and applies a report from `stream_id`. Changes nothing on error.
  absl::Status ApplyReport(uint64_t stream_id, const std::string& node_id, const v1::Report& report, absl::Time now);
  // ApplyReport for a caller that must not wait (a gRPC poller): nullopt, with nothing
  // done, when another thread holds the fleet's lock. It does not run the change hook:
  // `*changed` says that the report changed an input of a decision while no earlier
  // change was waiting for a pass (TakeChangedPools), and then the caller runs
  // NotifyChanged() soon, on a thread that may wait.
  std::optional<absl::Status> TryApplyReport(uint64_t stream_id, const std::string& node_id, const v1::Report& report,
                                             absl::Time now, bool* changed);
  // Runs the change hook for changes applied by TryApplyReport.
  void NotifyChanged() { NotifyChange(/*all_pools=*/false); }
  // The stream ended. Its node's data stays (it ages and goes stale) until Forget.
  void Disconnect(uint64_t stream_id, const std::string& node_id, absl::Time now);
  // The agent on `stream_id` exits cleanly: its node and endpoints are removed now (not
  // after staleness) and a Departure is kept for TakeDepartures. FAILED_PRECONDITION
  // when the stream does not hold the node.
  absl::Status Leave(uint64_t stream_id, const std::string& node_id, const std::string& reason);
  // The departures since the last call, oldest first.
  std::vector<Departure> TakeDepartures();
  // Drops nodes that are disconnected and silent for longer than `retention`. Returns
  // the ids removed.
  std::vector<std::string> ForgetSilentNodes(absl::Duration retention, absl::Time now);

  // Adds what gateways saw of their requests since their previous report (deltas) to
  // the endpoints' evidence. Validates the whole batch first (INVALID_ARGUMENT: nothing is
  // added); outcomes for endpoints not known (any more) are skipped. Returns how many were
  // added. Triggers no reconcile: the periodic one picks them up.
  absl::StatusOr<size_t> AddGatewayOutcomes(const google::protobuf::RepeatedPtrField<v1::EndpointOutcome>& outcomes);

  // An operator's drain (kept across reconnects, clean exits, forgetting and, restored with
  // RestoreDrains, restarts, until undrained): the node's endpoints show DRAINING at
  // once, whatever the agent last said. Returns whether the node is connected now;
  // NOT_FOUND for an unknown node (undraining a drained node that is not connected is
  // allowed).
  absl::StatusOr<bool> SetDrainRequested(const std::string& node_id, bool drain);
  bool DrainRequested(const std::string& node_id) const;
  // Drains saved before a restart: they apply when the nodes connect.
  void RestoreDrains(const std::vector<std::string>& node_ids);

  std::vector<EndpointView> Endpoints(absl::Time now) const;
  // The same, for the endpoints in at least one of `pools` only (duplicate addresses are
  // still judged over the whole fleet). Null: every endpoint. Costs the size of those
  // pools, not of the fleet (an index kept up to date on every change).
  std::vector<EndpointView> Endpoints(absl::Time now, const std::set<std::string>* pools) const;

  // The endpoints grouped into pools exactly as GroupByPool(Endpoints(now, pools)) does
  // (fleet/pools.h: the same pools, endpoints and order), less the pools not in `pools`
  // (null: every pool). Built straight into each pool's vector, reserved from the index:
  // a pass holds one copy of the views, not a flat list and then the pools.
  std::map<std::string, std::vector<EndpointView>> EndpointsByPool(absl::Time now,
                                                                   const std::set<std::string>* pools) const;
  // The same into `views`, kept by the caller from one pass to the next: each asked-for
  // pool's views are refilled in place (an endpoint's strings, labels and model lists
  // reuse the storage of the view before them: a pass copies values, it does not
  // allocate), pools that are gone leave, and pools not asked for are left as they were.
  void RefreshEndpointsByPool(absl::Time now, const std::set<std::string>* pools,
                              std::map<std::string, std::vector<EndpointView>>* views) const;

  // The pools whose endpoints' reports changed since the last call; nullopt when
  // something else changed since (a node connected, left or was drained or forgotten:
  // any pool may be touched). Each call starts the next interval.
  std::optional<std::set<std::string>> TakeChangedPools();
  std::vector<NodeView> Nodes(absl::Time now) const;

 private:
  friend class FleetStateTestPeer;  // Holds mu_ in tests of what must not wait on it.
  // An endpoint's latest report as far as anything reads it (EndpointView's fields: the
  // rest of the message, such as TTFT p50 or the probe latency, is not kept), with the
  // last non-zero measurement of each speed (kept while idle). A report that Matches
  // the one before changes no decision.
  struct LatestReport {
    v1::EndpointState state = v1::ENDPOINT_STATE_UNSPECIFIED;
    v1::Engine engine = v1::ENGINE_UNSPECIFIED;
    uint32_t slots_total = 0, slots_busy = 0, queue_depth = 0;
    bool errors_counted = false;
    double kv_cache_usage = 0, tokens_per_second = 0, ttft_p95_seconds = 0;
    double slot_tps = 0, prefill_tps = 0, e2e_p50 = 0;  // Last non-zero; 0: none yet.
    uint64_t requests_total = 0, errors_total = 0, checks_total = 0, check_failures_total = 0;
    google::protobuf::RepeatedPtrField<std::string> models;  // Empty: the Hello's.
    std::string probe_error, check_error;
    // Takes `report`'s values (a speed only when measured, > 0).
    void Update(const v1::EndpointReport& report);
    // Whether Update(report) would change nothing.
    bool Matches(const v1::EndpointReport& report) const;
  };

  struct Node {
    v1::Hello hello;
    uint64_t stream_id = 0;
    bool connected = false;
    uint64_t last_sequence = 0;
    absl::Time last_seen;                        // Monotonic.
    std::map<std::string, LatestReport> latest;  // By address.
    std::map<std::string, v1::GpuSample> gpus;   // Latest sample by uuid.
    struct GatewayCounts {
      uint64_t requests = 0, errors = 0;
    };
    std::map<std::string, GatewayCounts> gateway;  // By address; declared endpoints only.
    bool reported = false;
  };

  // `all_pools`: the change may touch any pool (else the caller recorded its pools).
  void NotifyChange(bool all_pools = true);
  // Adds (`add`) or removes the node's entries in pool_members_ and claimants_, as its
  // Hello, models and connection stand now. Every change to those calls it with false
  // before and with true after, so the indexes always match nodes_.
  // ApplyReport's work under the lock; `*changed`: whether a decision input moved.
  absl::Status ApplyReportLocked(uint64_t stream_id, const std::string& node_id, const v1::Report& report,
                                 absl::Time now, bool* changed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IndexNodeLocked(const std::string& node_id, const Node& node, bool add) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fills `view->duplicate_of` from the index (connected claimants only).
  void AddDuplicatesLocked(EndpointView* view) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One endpoint as the policy sees it (duplicate_of left empty).
  EndpointView ViewLocked(const std::string& node_id, const Node& node, const v1::EndpointInfo& info,
                          absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The same into `view`, every field assigned (strings and containers keep their
  // capacity: refilling a view of the same endpoint allocates nothing).
  // `latest`: the node's latest report of the endpoint (null: none yet).
  void FillViewLocked(const std::string& node_id, const Node& node, const v1::EndpointInfo& info,
                      const LatestReport* latest, absl::Time now, EndpointView* view) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED when accepting `hello` would pass max_nodes or max_pools.
  absl::Status CheckSizeLocked(const v1::Hello& hello) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED when `node_id`'s endpoints serving `proposed` (one model list per
  // endpoint) instead of what they serve now would add pools past max_pools. Looks only at
  // the node's own pools and `proposed` in the index (no walk of the fleet).
  absl::Status CheckPoolsLocked(const std::string& node_id,
                                const std::vector<const google::protobuf::RepeatedPtrField<std::string>*>& proposed)
      const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The models an endpoint serves now: its latest report's list, or its Hello's.
  static const google::protobuf::RepeatedPtrField<std::string>& CurrentModels(const Node& node,
                                                                              const v1::EndpointInfo& info);

  const ValidationLimits limits_;
  const std::function<void()> on_change_;
  mutable Mutex mu_;
  std::map<std::string, Node> nodes_ ABSL_GUARDED_BY(mu_);
  std::vector<Departure> departures_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> drained_ ABSL_GUARDED_BY(mu_);        // Node ids, known or not.
  std::set<std::string> changed_pools_ ABSL_GUARDED_BY(mu_);  // Since TakeChangedPools.
  // Pool -> its endpoints (node id, address), as their current models place them: a
  // pool's endpoints and the number of pools are found without walking the fleet. Each
  // member points at its node's entry in nodes_ and that node's latest report of it (both
  // std::maps: an entry stays put until erased) and its position in the node's Hello;
  // IndexNodeLocked removes the members before any of them changes and adds them after,
  // so a pass's copy-out looks nothing up.
  struct Member {
    const Node* node;
    int endpoint;                // Index in node->hello.endpoints().
    const LatestReport* latest;  // In node->latest; null until the endpoint's first report.
  };
  using Members = std::map<std::pair<std::string, std::string>, Member>;
  std::map<std::string, Members> pool_members_ ABSL_GUARDED_BY(mu_);
  // Address -> the connected nodes that declare it (duplicates, without a walk).
  std::map<std::string, std::set<std::string>> claimants_ ABSL_GUARDED_BY(mu_);
  // How many claimants_ entries have more than one node: while none, a view needs no
  // duplicate lookup (the common case, and a map search per endpoint per pass).
  size_t duplicated_addresses_ ABSL_GUARDED_BY(mu_) = 0;
  bool all_pools_changed_ ABSL_GUARDED_BY(mu_) = true;
};

// For every address reported by more than one connected node: address -> those nodes,
// sorted. Such an address is ambiguous (a proxy cannot tell which server it reaches;
// often every host reports 127.0.0.1:PORT), so every claimant is excluded, not only the
// later one: which one came first differs between control-plane replicas.
std::map<std::string, std::vector<std::string>> DuplicateAddresses(const std::vector<EndpointView>& endpoints);

}  // namespace switchboard::controlplane

#endif  // SWITCHBOARD_CONTROLPLANE_FLEET_FLEET_STATE_H_
