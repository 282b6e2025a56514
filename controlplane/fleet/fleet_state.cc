#include "controlplane/fleet/fleet_state.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "google/protobuf/util/message_differencer.h"

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
  }
  NotifyChange();
  return absl::OkStatus();
}

const google::protobuf::RepeatedPtrField<std::string>& FleetState::CurrentModels(const Node& node,
                                                                                 const v1::EndpointInfo& info) {
  auto latest = node.latest.find(info.address());
  if (latest != node.latest.end() && latest->second.models_size() > 0) return latest->second.models();
  return info.models();
}

absl::Status FleetState::CheckSizeLocked(const v1::Hello& hello) const {
  if (nodes_.count(hello.node_id()) == 0 && nodes_.size() >= limits_.max_nodes) {
    return absl::ResourceExhaustedError(absl::StrCat("this control plane already knows ", nodes_.size(),
                                                     " nodes, its most (--max-nodes ", limits_.max_nodes, ")"));
  }
  std::vector<const Models*> proposed;
  for (const v1::EndpointInfo& ep : hello.endpoints()) proposed.push_back(&ep.models());
  return CheckPoolsLocked(hello.node_id(), proposed);
}

absl::Status FleetState::CheckPoolsLocked(const std::string& node_id,
                                          const std::vector<const Models*>& proposed) const {
  std::set<std::string> others;  // Pools of every other node, as their endpoints stand.
  std::set<std::string> own;     // This node's pools as they stand.
  for (const auto& [id, node] : nodes_) {
    std::set<std::string>& into = id == node_id ? own : others;
    for (const v1::EndpointInfo& ep : node.hello.endpoints()) {
      const Models& models = CurrentModels(node, ep);
      into.insert(models.begin(), models.end());
    }
  }
  std::set<std::string> after = others;
  for (const Models* models : proposed) after.insert(models->begin(), models->end());
  others.insert(own.begin(), own.end());
  if (after.size() > others.size() && after.size() > limits_.max_pools) {
    return absl::ResourceExhaustedError(absl::StrCat("node ", node_id, " would make ", after.size(),
                                                     " pools, more than the most (--max-pools ", limits_.max_pools,
                                                     ")"));
  }
  return absl::OkStatus();
}

absl::Status FleetState::ApplyReport(uint64_t stream_id, const std::string& node_id, const v1::Report& report,
                                     absl::Time now) {
  bool changed = false;
  {
    MutexLock lock(&mu_);
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
        if (ep.address() != info.address() || ep.models_size() == 0) continue;
        if (!SameModels(ep.models(), *models)) models_change = true;
        models = &ep.models();
      }
      proposed.push_back(models);
    }
    if (models_change) RETURN_IF_ERROR(CheckPoolsLocked(node_id, proposed));
    node.last_sequence = report.sequence();
    node.last_seen = now;
    changed = !node.reported;
    node.reported = true;
    for (const v1::GpuSample& gpu : report.gpus()) node.gpus[gpu.uuid()] = gpu;
    for (const v1::EndpointReport& ep : report.endpoints()) {
      auto [slot, fresh] = node.latest.try_emplace(ep.address());
      v1::EndpointReport& latest = slot->second;
      if (fresh || !google::protobuf::util::MessageDifferencer::Equals(latest, ep)) {
        changed = true;
        // The endpoint's pools before and after (a report's models, else its Hello's).
        for (const v1::EndpointReport* r : {static_cast<const v1::EndpointReport*>(&latest), &ep}) {
          if (r->models_size() > 0) {
            changed_pools_.insert(r->models().begin(), r->models().end());
          } else {
            for (const v1::EndpointInfo& info : node.hello.endpoints()) {
              if (info.address() == ep.address()) changed_pools_.insert(info.models().begin(), info.models().end());
            }
          }
        }
      }
      latest = ep;
      if (ep.slot_tokens_per_second() > 0) node.slot_tps[ep.address()] = ep.slot_tokens_per_second();
      if (ep.prefill_tokens_per_second() > 0) node.prefill_tps[ep.address()] = ep.prefill_tokens_per_second();
      if (ep.e2e_p50_seconds() > 0) node.e2e_p50[ep.address()] = ep.e2e_p50_seconds();
    }
  }
  // A report that repeats every endpoint's last values (only its sequence, time or GPU
  // readings moved) changes no decision: no pass for it. Its freshness still counts (the
  // periodic pass sees the report age).
  if (changed) NotifyChange(/*all_pools=*/false);
  return absl::OkStatus();
}

void FleetState::Disconnect(uint64_t stream_id, const std::string& node_id, absl::Time now) {
  {
    MutexLock lock(&mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end() || it->second.stream_id != stream_id) return;
    it->second.connected = false;
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

std::vector<EndpointView> FleetState::Endpoints(absl::Time now, const std::set<std::string>* pools) const {
  std::vector<EndpointView> out;
  MutexLock lock(&mu_);
  // Whether an endpoint (its report's models, else its Hello's) is in one of `pools`.
  auto wanted = [pools](const google::protobuf::RepeatedPtrField<std::string>& models) {
    for (const std::string& m : models) {
      if (pools->count(m) > 0) return true;
    }
    return false;
  };
  for (const auto& [node_id, node] : nodes_) {
    for (const v1::EndpointInfo& info : node.hello.endpoints()) {
      if (pools != nullptr) {
        auto latest = node.latest.find(info.address());
        const bool by_report = latest != node.latest.end() && latest->second.models_size() > 0;
        if (!wanted(by_report ? latest->second.models() : info.models())) continue;
      }
      EndpointView v;
      v.node_id = node_id;
      v.address = info.address();
      v.labels.insert(node.hello.labels().begin(), node.hello.labels().end());
      v.engine = info.engine();
      v.models.assign(info.models().begin(), info.models().end());
      v.slots_total = info.slots_total();
      v.capacity_hint = info.capacity_hint();
      v.connected = node.connected;
      v.report_age = now - node.last_seen;
      auto latest = node.latest.find(info.address());
      if (latest != node.latest.end()) {
        const v1::EndpointReport& r = latest->second;
        v.reported = true;
        v.state = r.state();
        if (r.engine() != v1::ENGINE_UNSPECIFIED) v.engine = r.engine();
        if (r.models_size() > 0) v.models.assign(r.models().begin(), r.models().end());
        v.slots_total = r.slots_total();
        v.slots_busy = r.slots_busy();
        v.queue_depth = r.queue_depth();
        v.kv_cache_usage = r.kv_cache_usage();
        v.tokens_per_second = r.tokens_per_second();
        v.ttft_p95_seconds = r.ttft_p95_seconds();
        v.requests_total = r.requests_total();
        v.errors_total = r.errors_total();
        v.errors_counted = r.errors_counted();
        v.checks_total = r.checks_total();
        v.check_failures_total = r.check_failures_total();
        v.check_error = r.check_error();
        v.probe_error = r.probe_error();
      }
      if (drained_.count(node_id) > 0 && v.state != v1::ENDPOINT_STATE_UNHEALTHY) v.state = v1::ENDPOINT_STATE_DRAINING;
      if (auto g = node.gateway.find(info.address()); g != node.gateway.end()) {
        v.gateway_requests_total = g->second.requests;
        v.gateway_errors_total = g->second.errors;
      }
      auto tps = node.slot_tps.find(info.address());
      if (tps != node.slot_tps.end()) v.slot_tokens_per_second = tps->second;
      if (auto p = node.prefill_tps.find(info.address()); p != node.prefill_tps.end()) {
        v.prefill_tokens_per_second = p->second;
      }
      if (auto e = node.e2e_p50.find(info.address()); e != node.e2e_p50.end()) v.e2e_p50_seconds = e->second;
      out.push_back(std::move(v));
    }
  }
  std::map<std::string, std::vector<std::string>> duplicates;
  if (pools == nullptr) {
    duplicates = DuplicateAddresses(out);
  } else {  // Claimants in other pools count too: every connected node's declared addresses.
    std::map<std::string, std::set<std::string>> claimants;
    for (const auto& [node_id, node] : nodes_) {
      if (!node.connected) continue;
      for (const v1::EndpointInfo& info : node.hello.endpoints()) claimants[info.address()].insert(node_id);
    }
    for (const auto& [address, nodes] : claimants) {
      if (nodes.size() > 1) duplicates[address].assign(nodes.begin(), nodes.end());
    }
  }
  for (EndpointView& v : out) {
    auto dup = duplicates.find(v.address);
    if (dup == duplicates.end() || !v.connected) continue;
    for (const std::string& other : dup->second) {
      if (other != v.node_id) v.duplicate_of.push_back(other);
    }
  }
  return out;
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
