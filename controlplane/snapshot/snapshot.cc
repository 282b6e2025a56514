#include "controlplane/snapshot/snapshot.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/hash.h"
#include "controlplane/policy/admission_proto.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/time_util.h"

namespace switchboard::controlplane {
namespace {

// Speeds go into the assignment rounded, so that measurement noise does not make a new
// version at every report (1234.5 -> 1200, 61.7 -> 62, 0 stays 0).
double TwoSignificantDigits(double v) {
  if (!(v > 0) || !std::isfinite(v)) return 0;
  // The scale is the power of ten with 10 * scale <= v < 100 * scale, looked up instead
  // of computed with log10 and pow (two of each per endpoint per pass, 7% of a pass).
  static constexpr double kScales[] = {1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e0,
                                       1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10};
  constexpr size_t kCount = sizeof(kScales) / sizeof(kScales[0]);
  double scale;
  if (v < 10 * kScales[0] || v >= 100 * kScales[kCount - 1]) {
    scale = std::pow(10.0, std::floor(std::log10(v)) - 1);
  } else {
    size_t i = 0;
    while (i + 1 < kCount && 10 * kScales[i + 1] <= v) ++i;
    scale = kScales[i];
  }
  return std::round(v / scale) * scale;
}

// Whether `key` is EndpointKey(node_id, address), without building it.
bool IsKeyOf(const std::string& key, const std::string& node_id, const std::string& address) {
  return key.size() == node_id.size() + 1 + address.size() && key.compare(0, node_id.size(), node_id) == 0 &&
         key[node_id.size()] == '/' && key.compare(node_id.size() + 1, std::string::npos, address) == 0;
}

// Lines `memories` up with `endpoints`: the same endpoints in the same order as the last
// pass (nearly always) leave it untouched; otherwise every endpoint keeps its memory, a new
// one starts afresh and those that left the pool are forgotten.
void MatchMemories(const std::vector<EndpointView>& endpoints, CircuitMemories* memories) {
  bool same = memories->keys.size() == endpoints.size() && memories->memories.size() == endpoints.size();
  for (size_t i = 0; same && i < endpoints.size(); ++i) {
    same = IsKeyOf(memories->keys[i], endpoints[i].node_id, endpoints[i].address);
  }
  if (same) return;
  std::map<std::string, size_t> old_index;  // Key -> index in the old vectors.
  for (size_t i = 0; i < memories->keys.size() && i < memories->memories.size(); ++i) {
    old_index.emplace(memories->keys[i], i);
  }
  CircuitMemories next;
  next.keys.reserve(endpoints.size());
  next.memories.reserve(endpoints.size());
  for (const EndpointView& ep : endpoints) {
    next.keys.push_back(EndpointKey(ep.node_id, ep.address));
    auto old = old_index.find(next.keys.back());
    next.memories.push_back(old == old_index.end() ? policy::CircuitMemory()
                                                   : std::move(memories->memories[old->second]));
  }
  *memories = std::move(next);
}

}  // namespace

namespace {

std::unique_ptr<google::protobuf::Arena> NewSnapshotArena() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = 4096;
  options.max_block_size = 64 * 1024;  // Bounds what the last block leaves unused.
  return std::make_unique<google::protobuf::Arena>(options);
}

}  // namespace

Snapshot::Snapshot()
    : arena_(NewSnapshotArena()), assignment(*google::protobuf::Arena::CreateMessage<v1::Assignment>(arena_.get())) {}

Snapshot::Snapshot(const Snapshot& other)
    : SnapshotFields(other),
      arena_(NewSnapshotArena()),
      assignment(*google::protobuf::Arena::CreateMessage<v1::Assignment>(arena_.get())) {
  assignment.CopyFrom(other.assignment);
}

const std::string& LazyWireBytes::Get(const google::protobuf::MessageLite& message) const {
  absl::call_once(once_, [&] { message.SerializeToString(&bytes_); });
  return bytes_;
}

void LazyWireBytes::Set(std::string bytes) {
  absl::call_once(once_, [&] { bytes_ = std::move(bytes); });
}

std::string ComputeVersion(const v1::Assignment& assignment) {
  std::string content;
  return ComputeVersion(assignment, &content);
}

std::string ComputeVersion(const v1::Assignment& assignment, std::string* content) {
  // Only an assignment that carries the excluded fields is copied to clear them (a new
  // snapshot has none yet: no copy of a whole pool per pass).
  std::optional<v1::Assignment> cleared;
  if (!assignment.version().empty() || !assignment.nonce().empty() || assignment.stale() ||
      assignment.has_generated_at()) {
    cleared.emplace(assignment);
    cleared->clear_version();
    cleared->clear_nonce();
    cleared->clear_stale();
    cleared->clear_generated_at();
  }
  const v1::Assignment& hashed = cleared ? *cleared : assignment;
  content->clear();
  {
    google::protobuf::io::StringOutputStream raw(content);
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.SetSerializationDeterministic(true);  // Sorted map keys.
    hashed.SerializeToCodedStream(&coded);
  }
  return HashHex(*content);
}

std::shared_ptr<const Snapshot> BuildSnapshot(const std::string& pool, const std::vector<EndpointView>& endpoints,
                                              const Snapshot* previous, const policy::PolicyConfig& config,
                                              absl::Time now, CircuitMemories* memories, absl::Time monotonic_now,
                                              const std::optional<policy::ReplicaDecision>& replicas) {
  // The previous weights, by position while the pool's endpoints stay the same (nearly
  // every pass: no copy of the keys); through a map built on the first mismatch.
  std::optional<std::map<std::pair<std::string, std::string>, uint32_t>> previous_weights;
  auto previous_weight = [&](size_t i, const EndpointView& ep) -> uint32_t {
    if (previous == nullptr) return 0;
    const auto& before = previous->assignment.endpoints();
    if (!previous_weights && i < static_cast<size_t>(before.size())) {
      const v1::AssignedEndpoint& same = before[static_cast<int>(i)];
      if (same.node_id() == ep.node_id && same.address() == ep.address) return same.weight();
    }
    if (!previous_weights) {
      previous_weights.emplace();
      for (const v1::AssignedEndpoint& b : before) (*previous_weights)[{b.node_id(), b.address()}] = b.weight();
    }
    auto prev = previous_weights->find({ep.node_id, ep.address});
    return prev == previous_weights->end() ? 0 : prev->second;
  };

  std::vector<policy::CircuitInput> circuit_inputs;
  circuit_inputs.reserve(endpoints.size());
  std::vector<policy::CircuitMemory> no_memory;  // Without `memories`: every call starts afresh.
  if (memories != nullptr) MatchMemories(endpoints, memories);
  std::vector<policy::CircuitMemory>* memory = memories != nullptr ? &memories->memories : &no_memory;
  for (const EndpointView& ep : endpoints) {
    policy::CircuitInput ci;
    ci.state = ep.state;
    ci.reported = ep.reported;
    ci.probe_error = ep.probe_error;
    ci.report_age = ep.report_age;
    ci.requests_total = ep.requests_total;
    ci.errors_total = ep.errors_total;
    ci.errors_counted = ep.errors_counted;
    ci.checks_total = ep.checks_total;
    ci.check_failures_total = ep.check_failures_total;
    ci.check_error = ep.check_error;
    ci.gateway_requests_total = ep.gateway_requests_total;
    ci.gateway_errors_total = ep.gateway_errors_total;
    ci.ttft_p95_seconds = ep.ttft_p95_seconds;
    circuit_inputs.push_back(std::move(ci));
  }
  std::vector<policy::CircuitDecision> circuits =
      policy::DecidePoolCircuits(circuit_inputs, memory, config.circuit, monotonic_now);
  circuit_inputs = {};  // Freed before the snapshot is built: one pass's peak is the sum.
  // An address that two nodes report is ambiguous: neither is routed to (see
  // DuplicateAddresses). The breaker's memory is left as it was.
  for (size_t i = 0; i < endpoints.size(); ++i) {
    if (endpoints[i].duplicate_of.empty()) continue;
    circuits[i].circuit = v1::CIRCUIT_STATE_OPEN;
    circuits[i].routable = false;
    circuits[i].weight_cap = 0;
    circuits[i].reason =
        absl::StrCat("duplicate address: also reported by node ", absl::StrJoin(endpoints[i].duplicate_of, ", "),
                     "; excluded until only one node reports it");
  }

  std::vector<policy::WeightInput> weight_inputs;
  weight_inputs.reserve(endpoints.size());
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const EndpointView& ep = endpoints[i];
    policy::WeightInput wi;
    wi.routable = circuits[i].routable;
    wi.slots_total = ep.slots_total;
    wi.slots_busy = ep.slots_busy;
    wi.queue_depth = ep.queue_depth;
    wi.slot_tokens_per_second = ep.slot_tokens_per_second;
    wi.slot_seconds_per_request = ep.e2e_p50_seconds;
    wi.capacity_hint = ep.capacity_hint;
    wi.previous_weight = previous_weight(i, ep);
    wi.weight_cap = circuits[i].weight_cap;
    weight_inputs.push_back(wi);
  }
  // Explained on request (Snapshot::WeightExplanations), from the inputs kept.
  policy::PoolWeights weights = policy::ComputeWeights(weight_inputs, config.weights, /*explain=*/false);

  auto snap = std::make_shared<Snapshot>();
  snap->pool = pool;
  snap->capacity_source = weights.capacity_source;
  snap->weight_config = config.weights;
  v1::Assignment& a = snap->assignment;
  a.set_pool(pool);
  a.set_lb_policy(config.lb_policy);
  a.mutable_endpoints()->Reserve(static_cast<int>(endpoints.size()));
  snap->facts.reserve(endpoints.size());
  uint32_t routable = 0;
  policy::RoutableOccupancy occupancy;  // For the priority classes' headroom.
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const EndpointView& ep = endpoints[i];
    const uint32_t weight = weights.endpoints[i].weight;
    routable += weight > 0 ? 1 : 0;
    occupancy.Add(weight > 0, ep.slots_total, ep.slots_busy, ep.queue_depth);
    v1::AssignedEndpoint* out = a.add_endpoints();
    out->set_address(ep.address);
    out->set_node_id(ep.node_id);
    out->set_weight(weight);
    out->set_state(ep.state);
    out->set_circuit(circuits[i].circuit);
    out->set_slots_total(ep.slots_total);
    out->set_slots_free(ep.slots_total - std::min(ep.slots_busy, ep.slots_total));
    out->set_queue_depth(ep.queue_depth);
    out->mutable_labels()->insert(ep.labels.begin(), ep.labels.end());
    out->set_decode_tokens_per_second(TwoSignificantDigits(ep.slot_tokens_per_second));
    out->set_prefill_tokens_per_second(TwoSignificantDigits(ep.prefill_tokens_per_second));

    EndpointFacts& f = snap->facts.emplace_back();
    f.weight_input = weight_inputs[i];
    f.kv_cache_usage = ep.kv_cache_usage;
    f.tokens_per_second = ep.tokens_per_second;
    f.ttft_p95_seconds = ep.ttft_p95_seconds;
    f.report_age_ns = absl::ToInt64Nanoseconds(ep.report_age);
    f.requests_total = ep.requests_total;
    f.errors_total = ep.errors_total;
    f.checks_total = ep.checks_total;
    f.check_failures_total = ep.check_failures_total;
    f.gateway_requests_total = ep.gateway_requests_total;
    f.gateway_errors_total = ep.gateway_errors_total;
    f.engine = ep.engine;
    f.errors_counted = ep.errors_counted;
    f.circuit_reason = std::move(circuits[i].reason);
    f.circuit_reason.shrink_to_fit();  // Built by appending: capacity to spare.
    if (!ep.probe_error.empty() || !ep.check_error.empty() || !ep.duplicate_of.empty()) {
      f.rare = std::make_shared<const EndpointFacts::Rare>(
          EndpointFacts::Rare{ep.probe_error, ep.check_error, ep.duplicate_of});
    }
  }
  if (replicas) {
    a.set_desired_replicas(static_cast<uint32_t>(std::max(0, replicas->desired)));
    snap->autoscale_explanation = replicas->explanation;
    snap->scaling_signals = replicas->signals;
  } else {
    a.set_desired_replicas(routable);
    snap->autoscale_explanation = "no autoscaling configured: desired = routable endpoints";
  }
  if (config.admission.enabled()) {
    *a.mutable_priority() = policy::PriorityToProto(
        config.admission, policy::ClassHeadrooms(config.admission, occupancy.occupancy_slots, occupancy.slots),
        config.queues);
  }
  std::string bytes;
  snap->version = ComputeVersion(a, &bytes);
  a.set_version(snap->version);
  a.set_nonce(snap->version);
  *a.mutable_generated_at() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(now));
  // What subscribers are sent: the bytes just hashed, then the fields set after them (a
  // message's fields may come in any order; a parser merges them), so a published version
  // is serialized once, not once for its version and again for its subscribers.
  v1::Assignment tail;
  tail.set_version(a.version());
  tail.set_nonce(a.nonce());
  *tail.mutable_generated_at() = a.generated_at();
  tail.AppendToString(&bytes);
  snap->assignment_bytes.Set(std::move(bytes));
  return snap;
}

std::shared_ptr<const Snapshot> RestoredSnapshot(v1::Assignment stored) {
  auto snap = std::make_shared<Snapshot>();
  snap->pool = stored.pool();
  snap->version = stored.version();
  snap->restored = true;
  stored.set_stale(true);
  snap->facts.reserve(static_cast<size_t>(stored.endpoints_size()));
  for (const v1::AssignedEndpoint& ep : stored.endpoints()) {
    EndpointFacts& f = snap->facts.emplace_back();
    f.weight_input.slots_total = ep.slots_total();
    f.weight_input.slots_busy = ep.slots_total() - std::min(ep.slots_free(), ep.slots_total());
    f.weight_input.queue_depth = ep.queue_depth();
    f.weight_input.slot_tokens_per_second = ep.decode_tokens_per_second();
    f.circuit_reason = "restored from history after a restart; not reported since";
  }
  snap->autoscale_explanation = absl::StrCat("desired ", stored.desired_replicas(),
                                             ": restored from history after a restart, until the pool's nodes report");
  snap->assignment = std::move(stored);
  return snap;
}

v1::EndpointStatus Snapshot::Detail(size_t i) const {
  const v1::AssignedEndpoint& ep = assignment.endpoints(static_cast<int>(i));
  const EndpointFacts& f = facts[i];
  v1::EndpointStatus d;
  d.set_address(ep.address());
  d.set_node_id(ep.node_id());
  d.set_engine(f.engine);
  d.set_state(ep.state());
  d.set_circuit(ep.circuit());
  d.set_weight(ep.weight());
  d.set_slots_total(f.weight_input.slots_total);
  d.set_slots_busy(f.weight_input.slots_busy);
  d.set_queue_depth(f.weight_input.queue_depth);
  d.set_kv_cache_usage(f.kv_cache_usage);
  d.set_tokens_per_second(f.tokens_per_second);
  d.set_slot_tokens_per_second(f.weight_input.slot_tokens_per_second);
  d.set_ttft_p95_seconds(f.ttft_p95_seconds);
  if (!restored) *d.mutable_report_age() = google::protobuf::util::TimeUtil::NanosecondsToDuration(f.report_age_ns);
  d.set_reason(f.circuit_reason);
  if (f.rare != nullptr) {
    d.set_probe_error(f.rare->probe_error);
    d.set_check_error(f.rare->check_error);
    for (const std::string& other : f.rare->duplicate_of) d.add_duplicate_of(other);
  }
  d.set_checks_total(f.checks_total);
  d.set_check_failures_total(f.check_failures_total);
  d.set_gateway_requests_total(f.gateway_requests_total);
  d.set_gateway_errors_total(f.gateway_errors_total);
  d.set_requests_total(f.requests_total);
  d.set_errors_total(f.errors_total);
  d.set_errors_counted(f.errors_counted);
  return d;
}

std::vector<std::string> Snapshot::WeightExplanations() const {
  std::vector<std::string> out;
  if (restored) {
    out.assign(facts.size(), "restored from history after a restart");
    return out;
  }
  std::vector<policy::WeightInput> inputs;
  inputs.reserve(facts.size());
  for (const EndpointFacts& f : facts) inputs.push_back(f.weight_input);
  policy::PoolWeights weights = policy::ComputeWeights(inputs, weight_config);
  out.reserve(facts.size());
  for (policy::WeightResult& w : weights.endpoints) out.push_back(std::move(w.reason));
  return out;
}

}  // namespace switchboard::controlplane
