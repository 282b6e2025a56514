#include "controlplane/fleet/fleet_state.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace switchboard::controlplane {
namespace {

bool Declares(const v1::Hello& hello, const std::string& address) {
  for (const v1::EndpointInfo& ep : hello.endpoints()) {
    if (ep.address() == address) return true;
  }
  return false;
}

using Models = google::protobuf::RepeatedPtrField<std::string>;

bool SameModels(const Models& a, const Models& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

absl::Status FleetState::Connect(uint64_t stream_id, const v1::Hello& hello, absl::Time now) {
  RETURN_IF_ERROR(ValidateHello(hello, limits_));
  {
    MutexLock lock(&mu_);
    auto existing = nodes_.find(hello.node_id());
    if (existing != nodes_.end() && existing->second.connected && existing->second.stream_id != stream_id) {
      return absl::AlreadyExistsError(absl::StrCat("node ", hello.node_id(),
                                                   " is already connected on another stream; "
                                                   "node ids must be unique per control plane"));
    }
    RETURN_IF_ERROR(CheckSizeLocked(hello));
    Node& node = nodes_[hello.node_id()];
    IndexNodeLocked(hello.node_id(), node, /*add=*/false);
    node.hello = hello;
    node.stream_id = stream_id;
    node.connected = true;
    node.last_sequence = 0;
    node.last_seen = now;
    // Forget what was seen of endpoints the node no longer declares.
    for (auto it = node.latest.begin(); it != node.latest.end();) {
      it = Declares(hello, it->first) ? std::next(it) : node.latest.erase(it);
    }
    for (auto it = node.gateway.begin(); it != node.gateway.end();) {
      it = Declares(hello, it->first) ? std::next(it) : node.gateway.erase(it);
    }
    IndexNodeLocked(hello.node_id(), node, /*add=*/true);
  }
  NotifyChange();
  return absl::OkStatus();
}

const google::protobuf::RepeatedPtrField<std::string>& FleetState::CurrentModels(const Node& node,
                                                                                 const v1::EndpointInfo& info) {
  auto latest = node.latest.find(info.address());
  if (latest != node.latest.end() && !latest->second.models.empty()) return latest->second.models;
  return info.models();
}

absl::Status FleetState::CheckSizeLocked(const v1::Hello& hello) const {
  if (nodes_.count(hello.node_id()) == 0 && nodes_.size() >= limits_.max_nodes) {
    return absl::ResourceExhaustedError(absl::StrCat("this control plane already knows ", nodes_.size(),
                                                     " nodes, its most (--max-nodes ", limits_.max_nodes, ")"));
  }
  // What each endpoint will serve once connected: a known node's endpoints keep their
  // last reported models (Connect keeps the reports of the addresses still declared).
  auto known = nodes_.find(hello.node_id());
  std::vector<const Models*> proposed;
  for (const v1::EndpointInfo& ep : hello.endpoints()) {
    const Models* models = &ep.models();
    if (known != nodes_.end()) {
      auto latest = known->second.latest.find(ep.address());
      if (latest != known->second.latest.end() && !latest->second.models.empty()) models = &latest->second.models;
    }
    proposed.push_back(models);
  }
  return CheckPoolsLocked(hello.node_id(), proposed);
}

absl::Status FleetState::CheckPoolsLocked(const std::string& node_id,
                                          const std::vector<const Models*>& proposed) const {
  // Pools that exist only through this node's endpoints: they go if the node stops
  // serving them. (Members sort by node id: the first and the last tell.)
  auto own_only = [&](const std::string& pool) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = pool_members_.find(pool);
    return it != pool_members_.end() && it->second.begin()->first.first == node_id &&
           it->second.rbegin()->first.first == node_id;
  };
  const size_t now = pool_members_.size();
  size_t others = now;  // Pools of every other node, as their endpoints stand.
  if (auto node = nodes_.find(node_id); node != nodes_.end()) {
    std::set<std::string> own;
    for (const v1::EndpointInfo& ep : node->second.hello.endpoints()) {
      const Models& models = CurrentModels(node->second, ep);
      own.insert(models.begin(), models.end());
    }
    for (const std::string& pool : own) others -= own_only(pool) ? 1 : 0;
  }
  std::set<std::string> added;  // Proposed pools that no other node serves.
  for (const Models* models : proposed) {
    for (const std::string& m : *models) {
      if (pool_members_.count(m) == 0 || own_only(m)) added.insert(m);
    }
  }
  const size_t after = others + added.size();
  if (after > now && after > limits_.max_pools) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "node ", node_id, " would make ", after, " pools, more than the most (--max-pools ", limits_.max_pools, ")"));
  }
  return absl::OkStatus();
}

void FleetState::IndexNodeLocked(const std::string& node_id, const Node& node, bool add) {
  for (int i = 0; i < node.hello.endpoints_size(); ++i) {
    const v1::EndpointInfo& info = node.hello.endpoints(i);
    const LatestReport* latest = nullptr;
    if (add) {
      auto it = node.latest.find(info.address());
      if (it != node.latest.end()) latest = &it->second;
    }
    for (const std::string& pool : CurrentModels(node, info)) {
      if (add) {
        pool_members_[pool].insert_or_assign({node_id, info.address()}, Member{&node, i, latest});
      } else if (auto it = pool_members_.find(pool); it != pool_members_.end()) {
        it->second.erase({node_id, info.address()});
        if (it->second.empty()) pool_members_.erase(it);
      }
    }
    if (!node.connected) continue;
    if (add) {
      std::set<std::string>& nodes = claimants_[info.address()];
      if (nodes.insert(node_id).second && nodes.size() == 2) ++duplicated_addresses_;
    } else if (auto it = claimants_.find(info.address()); it != claimants_.end()) {
      if (it->second.erase(node_id) > 0 && it->second.size() == 1) --duplicated_addresses_;
      if (it->second.empty()) claimants_.erase(it);
    }
  }
}

absl::Status FleetState::ApplyReport(uint64_t stream_id, const std::string& node_id, const v1::Report& report,
                                     absl::Time now) {
  bool changed = false;
  absl::Status status;
  {
    MutexLock lock(&mu_);
    status = ApplyReportLocked(stream_id, node_id, report, now, &changed);
  }
  // A report that repeats every endpoint's last values (only its sequence, time or GPU
  // readings moved) changes no decision: no pass for it. Its freshness still counts (the
  // periodic pass sees the report age).
  if (changed) NotifyChange(/*all_pools=*/false);
  return status;
}

std::optional<absl::Status> FleetState::TryApplyReport(uint64_t stream_id, const std::string& node_id,
                                                       const v1::Report& report, absl::Time now, bool* changed) {
  *changed = false;
  if (!mu_.TryLock()) return std::nullopt;
  // A change already waiting for a pass has woken the reconciler (or will): no need to
  // again until a pass takes the changed pools.
  const bool waiting = !changed_pools_.empty() || all_pools_changed_;
  absl::Status status = ApplyReportLocked(stream_id, node_id, report, now, changed);
  if (waiting) *changed = false;
  mu_.Unlock();
  return status;
}

absl::Status FleetState::ApplyReportLocked(uint64_t stream_id, const std::string& node_id, const v1::Report& report,
                                           absl::Time now, bool* changed) {
  auto it = nodes_.find(node_id);
  if (it == nodes_.end()) return absl::FailedPreconditionError("Report before Hello");
  Node& node = it->second;
  if (node.stream_id != stream_id) {
    return absl::FailedPreconditionError(absl::StrCat("node ", node_id, " is bound to another stream"));
  }
  RETURN_IF_ERROR(ValidateReport(report, node.hello, node.last_sequence, limits_));
  // A report may name other models than the Hello (an engine swapped its model): only
  // then are the pools counted again, so that reports cannot pass --max-pools either.
  bool models_change = false;
  std::vector<const Models*> proposed;
  for (const v1::EndpointInfo& info : node.hello.endpoints()) {
    const Models* models = &CurrentModels(node, info);
    for (const v1::EndpointReport& ep : report.endpoints()) {
      if (ep.address() != info.address()) continue;
      // A report without models puts the endpoint back in its Hello's pools: counted too.
      const Models* after = ep.models_size() > 0 ? &ep.models() : &info.models();
      if (!SameModels(*after, *models)) models_change = true;
      models = after;
    }
    proposed.push_back(models);
  }
  if (models_change) RETURN_IF_ERROR(CheckPoolsLocked(node_id, proposed));
  const bool moves = models_change;  // The node's endpoints move between pools.
  if (moves) IndexNodeLocked(node_id, node, /*add=*/false);
  node.last_sequence = report.sequence();
  node.last_seen = now;
  *changed = !node.reported;
  node.reported = true;
  for (const v1::GpuSample& gpu : report.gpus()) node.gpus[gpu.uuid()] = gpu;
  bool first_of_some = false;  // The first report of one of the node's endpoints.
  for (const v1::EndpointReport& ep : report.endpoints()) {
    auto [slot, fresh] = node.latest.try_emplace(ep.address());
    LatestReport& latest = slot->second;
    first_of_some = first_of_some || fresh;
    const bool differs = fresh || !latest.Matches(ep);
    // The endpoint's pools before and after (a report's models, else its Hello's).
    auto note_pools = [&](const Models& models) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (!models.empty()) {
        changed_pools_.insert(models.begin(), models.end());
        return;
      }
      for (const v1::EndpointInfo& info : node.hello.endpoints()) {
        if (info.address() == ep.address()) changed_pools_.insert(info.models().begin(), info.models().end());
      }
    };
    if (differs) {
      *changed = true;
      note_pools(latest.models);
    }
    latest.Update(ep);
    if (differs) note_pools(latest.models);
  }
  if (moves) {
    IndexNodeLocked(node_id, node, /*add=*/true);
  } else if (first_of_some) {  // The index points at the new latest reports.
    IndexNodeLocked(node_id, node, /*add=*/false);
    IndexNodeLocked(node_id, node, /*add=*/true);
  }
  return absl::OkStatus();
}

void FleetState::Disconnect(uint64_t stream_id, const std::string& node_id, absl::Time now) {
  {
    MutexLock lock(&mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end() || it->second.stream_id != stream_id) return;
    IndexNodeLocked(node_id, it->second, /*add=*/false);
    it->second.connected = false;
    IndexNodeLocked(node_id, it->second, /*add=*/true);
    (void)now;  // last_seen keeps the last report time: staleness counts from there.
  }
  NotifyChange();
}

absl::Status FleetState::Leave(uint64_t stream_id, const std::string& node_id, const std::string& reason) {
  {
    MutexLock lock(&mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end() || it->second.stream_id != stream_id) {
      return absl::FailedPreconditionError(absl::StrCat("node ", node_id, " is not bound to this stream"));
    }
    Departure d{node_id, {}, reason.substr(0, 256)};
    for (const v1::EndpointInfo& ep : it->second.hello.endpoints()) d.addresses.push_back(ep.address());
    departures_.push_back(std::move(d));
    IndexNodeLocked(node_id, it->second, /*add=*/false);
    nodes_.erase(it);
  }
  NotifyChange();
  return absl::OkStatus();
}

std::vector<Departure> FleetState::TakeDepartures() {
  MutexLock lock(&mu_);
  std::vector<Departure> out;
  out.swap(departures_);
  return out;
}

std::map<std::string, std::vector<std::string>> DuplicateAddresses(const std::vector<EndpointView>& endpoints) {
  std::map<std::string, std::set<std::string>> claimants;
  for (const EndpointView& ep : endpoints) {
    if (ep.connected) claimants[ep.address].insert(ep.node_id);
  }
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [address, nodes] : claimants) {
    if (nodes.size() > 1) out[address].assign(nodes.begin(), nodes.end());
  }
  return out;
}

absl::StatusOr<size_t> FleetState::AddGatewayOutcomes(
    const google::protobuf::RepeatedPtrField<v1::EndpointOutcome>& outcomes) {
  RETURN_IF_ERROR(ValidateOutcomes(outcomes, limits_));
  size_t added = 0;
  MutexLock lock(&mu_);
  for (const v1::EndpointOutcome& o : outcomes) {
    auto node = nodes_.find(o.node_id());
    if (node == nodes_.end() || !Declares(node->second.hello, o.address())) continue;
    // Validation bounds each delta far below the counters' range: no overflow in any
    // realistic lifetime, and a restart of the control plane starts them over.
    Node::GatewayCounts& c = node->second.gateway[o.address()];
    c.requests += o.requests();
    c.errors += o.errors();
    ++added;
  }
  return added;
}

std::vector<std::string> FleetState::ForgetSilentNodes(absl::Duration retention, absl::Time now) {
  std::vector<std::string> removed;
  {
    MutexLock lock(&mu_);
    for (auto it = nodes_.begin(); it != nodes_.end();) {
      if (!it->second.connected && now - it->second.last_seen > retention) {
        removed.push_back(it->first);
        IndexNodeLocked(it->first, it->second, /*add=*/false);
        it = nodes_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (!removed.empty()) NotifyChange();
  return removed;
}

std::vector<EndpointView> FleetState::Endpoints(absl::Time now) const { return Endpoints(now, nullptr); }

std::optional<std::set<std::string>> FleetState::TakeChangedPools() {
  MutexLock lock(&mu_);
  std::set<std::string> pools;
  pools.swap(changed_pools_);
  const bool all = all_pools_changed_;
  all_pools_changed_ = false;
  if (all) return std::nullopt;
  return pools;
}

void FleetState::LatestReport::Update(const v1::EndpointReport& report) {
  state = report.state();
  engine = report.engine();
  slots_total = report.slots_total();
  slots_busy = report.slots_busy();
  queue_depth = report.queue_depth();
  errors_counted = report.errors_counted();
  kv_cache_usage = report.kv_cache_usage();
  tokens_per_second = report.tokens_per_second();
  ttft_p95_seconds = report.ttft_p95_seconds();
  if (report.slot_tokens_per_second() > 0) slot_tps = report.slot_tokens_per_second();
  if (report.prefill_tokens_per_second() > 0) prefill_tps = report.prefill_tokens_per_second();
  if (report.e2e_p50_seconds() > 0) e2e_p50 = report.e2e_p50_seconds();
  requests_total = report.requests_total();
  errors_total = report.errors_total();
  checks_total = report.checks_total();
  check_failures_total = report.check_failures_total();
  if (!SameModels(models, report.models())) models = report.models();
  probe_error = report.probe_error();
  check_error = report.check_error();
}

bool FleetState::LatestReport::Matches(const v1::EndpointReport& r) const {
  // A speed reported as 0 keeps the last measurement: no change.
  auto same_speed = [](double reported, double kept) { return !(reported > 0) || reported == kept; };
  return state == r.state() && engine == r.engine() && slots_total == r.slots_total() && slots_busy == r.slots_busy() &&
         queue_depth == r.queue_depth() && errors_counted == r.errors_counted() &&
         kv_cache_usage == r.kv_cache_usage() && tokens_per_second == r.tokens_per_second() &&
         ttft_p95_seconds == r.ttft_p95_seconds() && same_speed(r.slot_tokens_per_second(), slot_tps) &&
         same_speed(r.prefill_tokens_per_second(), prefill_tps) && same_speed(r.e2e_p50_seconds(), e2e_p50) &&
         requests_total == r.requests_total() && errors_total == r.errors_total() && checks_total == r.checks_total() &&
         check_failures_total == r.check_failures_total() && SameModels(models, r.models()) &&
         probe_error == r.probe_error() && check_error == r.check_error();
}

namespace {

// `to` = `from`, reusing `to`'s nodes when they already hold the same labels (always,
// when a view of the same node is refilled).
void AssignLabels(const google::protobuf::Map<std::string, std::string>& from, std::map<std::string, std::string>* to) {
  bool same = from.size() == to->size();
  for (auto it = from.begin(); same && it != from.end(); ++it) {
    auto found = to->find(it->first);
    same = found != to->end() && found->second == it->second;
  }
  if (same) return;
  to->clear();
  to->insert(from.begin(), from.end());
}

}  // namespace

EndpointView FleetState::ViewLocked(const std::string& node_id, const Node& node, const v1::EndpointInfo& info,
                                    absl::Time now) const {
  auto latest = node.latest.find(info.address());
  EndpointView v;
  FillViewLocked(node_id, node, info, latest == node.latest.end() ? nullptr : &latest->second, now, &v);
  return v;
}

void FleetState::FillViewLocked(const std::string& node_id, const Node& node, const v1::EndpointInfo& info,
                                const LatestReport* latest, absl::Time now, EndpointView* v) const {
  static const LatestReport kNotReported;
  const bool reported = latest != nullptr;
  const LatestReport& r = reported ? *latest : kNotReported;
  v->node_id = node_id;
  v->address = info.address();
  AssignLabels(node.hello.labels(), &v->labels);
  v->engine = r.engine != v1::ENGINE_UNSPECIFIED ? r.engine : info.engine();
  const Models& models = r.models.empty() ? info.models() : r.models;
  v->models.assign(models.begin(), models.end());
  v->state = r.state;
  v->slots_total = reported ? r.slots_total : info.slots_total();
  v->slots_busy = r.slots_busy;
  v->queue_depth = r.queue_depth;
  v->kv_cache_usage = r.kv_cache_usage;
  v->tokens_per_second = r.tokens_per_second;
  v->slot_tokens_per_second = r.slot_tps;
  v->prefill_tokens_per_second = r.prefill_tps;
  v->e2e_p50_seconds = r.e2e_p50;
  v->capacity_hint = info.capacity_hint();
  v->ttft_p95_seconds = r.ttft_p95_seconds;
  v->requests_total = r.requests_total;
  v->errors_total = r.errors_total;
  v->errors_counted = r.errors_counted;
  v->checks_total = r.checks_total;
  v->check_failures_total = r.check_failures_total;
  v->check_error = r.check_error;
  v->probe_error = r.probe_error;
  v->reported = reported;
  v->connected = node.connected;
  v->report_age = now - node.last_seen;
  v->duplicate_of.clear();
  if (!drained_.empty() && v->state != v1::ENDPOINT_STATE_UNHEALTHY && drained_.count(node_id) > 0) {
    v->state = v1::ENDPOINT_STATE_DRAINING;
  }
  v->gateway_requests_total = 0;
  v->gateway_errors_total = 0;
  if (!node.gateway.empty()) {
    if (auto g = node.gateway.find(info.address()); g != node.gateway.end()) {
      v->gateway_requests_total = g->second.requests;
      v->gateway_errors_total = g->second.errors;
    }
  }
}

std::vector<EndpointView> FleetState::Endpoints(absl::Time now, const std::set<std::string>* pools) const {
  std::vector<EndpointView> out;
  MutexLock lock(&mu_);
  if (pools == nullptr) {
    size_t count = 0;  // Reserved up front: a growing vector would hold up to twice the views.
    for (const auto& entry : nodes_) count += static_cast<size_t>(entry.second.hello.endpoints_size());
    out.reserve(count);
    for (const auto& [node_id, node] : nodes_) {
      for (const v1::EndpointInfo& info : node.hello.endpoints()) {
        out.push_back(ViewLocked(node_id, node, info, now));
        AddDuplicatesLocked(&out.back());  // Only connected claimants count: DuplicateAddresses.
      }
    }
    return out;
  }
  // The endpoints of the wanted pools, each once (an endpoint may serve several), sorted
  // by node id and address.
  Members wanted;
  for (const std::string& pool : *pools) {
    if (auto members = pool_members_.find(pool); members != pool_members_.end()) {
      wanted.insert(members->second.begin(), members->second.end());
    }
  }
  out.reserve(wanted.size());
  for (const auto& [key, member] : wanted) {
    out.push_back(ViewLocked(key.first, *member.node, member.node->hello.endpoints(member.endpoint), now));
    // Claimants in other pools count too: every connected node's declared addresses.
    AddDuplicatesLocked(&out.back());
  }
  return out;
}

void FleetState::AddDuplicatesLocked(EndpointView* view) const {
  if (duplicated_addresses_ == 0 || !view->connected) return;
  auto dup = claimants_.find(view->address);
  if (dup == claimants_.end() || dup->second.size() < 2) return;
  for (const std::string& other : dup->second) {
    if (other != view->node_id) view->duplicate_of.push_back(other);
  }
}

std::map<std::string, std::vector<EndpointView>> FleetState::EndpointsByPool(absl::Time now,
                                                                             const std::set<std::string>* pools) const {
  std::map<std::string, std::vector<EndpointView>> out;
  RefreshEndpointsByPool(now, pools, &out);
  return out;
}

void FleetState::RefreshEndpointsByPool(absl::Time now, const std::set<std::string>* pools,
                                        std::map<std::string, std::vector<EndpointView>>* views) const {
  MutexLock lock(&mu_);
  // Pools gone from the index (of those asked for) leave `views`.
  for (auto it = views->begin(); it != views->end();) {
    const bool asked = pools == nullptr || pools->count(it->first) > 0;
    it = asked && pool_members_.count(it->first) == 0 ? views->erase(it) : std::next(it);
  }
  for (const auto& [pool, members] : pool_members_) {
    if (pools != nullptr && pools->count(pool) == 0) continue;
    std::vector<EndpointView>& out = (*views)[pool];
    // The index is sorted by (node id, address): the order GroupByPool sorts into.
    size_t n = 0;
    out.resize(members.size());
    for (const auto& [key, member] : members) {
      FillViewLocked(key.first, *member.node, member.node->hello.endpoints(member.endpoint), member.latest, now,
                     &out[n]);
      AddDuplicatesLocked(&out[n]);
      ++n;
    }
  }
}

std::vector<NodeView> FleetState::Nodes(absl::Time now) const {
  std::map<std::string, std::vector<v1::NodeEndpoint>> endpoints;  // By node.
  for (const EndpointView& ep : Endpoints(now)) {
    v1::NodeEndpoint e;
    e.set_address(ep.address);
    e.set_engine(ep.engine);
    e.set_state(ep.state);
    for (const std::string& m : ep.models) e.add_models(m);
    e.set_probe_error(ep.probe_error);
    e.set_reported(ep.reported);
    for (const std::string& d : ep.duplicate_of) e.add_duplicate_of(d);
    endpoints[ep.node_id].push_back(std::move(e));
  }
  std::vector<NodeView> out;
  MutexLock lock(&mu_);
  for (const auto& [node_id, node] : nodes_) {
    NodeView v;
    v.node_id = node_id;
    v.labels.insert(node.hello.labels().begin(), node.hello.labels().end());
    v.agent_version = node.hello.agent_version();
    v.connected = node.connected;
    v.last_report_age = now - node.last_seen;
    v.endpoint_count = static_cast<uint32_t>(node.hello.endpoints_size());
    v.last_sequence = node.last_sequence;
    v.drain_requested = drained_.count(node_id) > 0;
    if (auto eps = endpoints.find(node_id); eps != endpoints.end()) v.endpoints = std::move(eps->second);
    for (const v1::GpuInfo& info : node.hello.gpus()) {
      v1::GpuStatus g;
      g.set_uuid(info.uuid());
      g.set_name(info.name());
      g.set_vram_total_bytes(info.vram_total_bytes());
      auto sample = node.gpus.find(info.uuid());
      if (sample != node.gpus.end()) {
        g.set_vram_used_bytes(sample->second.vram_used_bytes());
        g.set_has_utilization(sample->second.has_utilization());
        g.set_utilization(sample->second.utilization());
        g.set_temperature_celsius(sample->second.temperature_celsius());
      }
      v.gpus.push_back(std::move(g));
    }
    out.push_back(std::move(v));
  }
  return out;
}

absl::StatusOr<bool> FleetState::SetDrainRequested(const std::string& node_id, bool drain) {
  bool connected;
  {
    MutexLock lock(&mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end() && (drain || drained_.count(node_id) == 0)) {
      return absl::NotFoundError(absl::StrCat("no node named '", node_id.substr(0, 256), "'"));
    }
    if (drain) {
      drained_.insert(node_id);
    } else {
      drained_.erase(node_id);
    }
    connected = it != nodes_.end() && it->second.connected;
  }
  NotifyChange();
  return connected;
}

bool FleetState::DrainRequested(const std::string& node_id) const {
  MutexLock lock(&mu_);
  return drained_.count(node_id) > 0;
}

void FleetState::RestoreDrains(const std::vector<std::string>& node_ids) {
  {
    MutexLock lock(&mu_);
    drained_.insert(node_ids.begin(), node_ids.end());
  }
  NotifyChange();
}

void FleetState::NotifyChange(bool all_pools) {
  if (all_pools) {
    MutexLock lock(&mu_);
    all_pools_changed_ = true;
  }
  if (on_change_) on_change_();
}

}  // namespace switchboard::controlplane
