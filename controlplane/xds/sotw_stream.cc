#include "controlplane/xds/sotw_stream.h"

#include "absl/strings/str_cat.h"
#include "common/hash.h"
#include "controlplane/xds/type_urls.h"

namespace switchboard::controlplane::xds {
bool IsCompleteStateType(const std::string& type_url) { return type_url == kListenerType || type_url == kClusterType; }

bool IsServedType(const std::string& type_url) {
  for (const char* served : kServedTypesInOrder) {
    if (type_url == served) return true;
  }
  return false;
}

std::string SotwStream::VersionOf(const std::map<std::string, std::string>& resources) {
  std::string text;
  for (const auto& [name, version] : resources) absl::StrAppend(&text, name.size(), ":", name, "=", version, ";");
  return HashHex(text);
}

SotwStream::RequestKind SotwStream::OnRequest(const envoy::service::discovery::v3::DiscoveryRequest& request) {
  const std::string& type_url = request.type_url();
  if (!IsServedType(type_url)) return RequestKind::kUnknownType;
  TypeState& state = types_[type_url];

  if (request.has_error_detail() && request.error_detail().code() != 0) {
    // Only a NACK of the last response says anything about the current state.
    if (request.response_nonce() != state.last_nonce) return RequestKind::kStale;
    state.last_nack = request.error_detail().message();
    state.awaiting_answer = false;
    if (type_url == kClusterLoadAssignmentType) endpoint_wait_.EndpointsAnswered(state.sent);
    return RequestKind::kNack;
  }

  const bool first = request.response_nonce().empty();
  if (!first && request.response_nonce() != state.last_nonce) return RequestKind::kStale;

  const bool empty_names = request.resource_names().empty();
  if (first && !state.subscribed) {
    state.wildcard = empty_names && IsCompleteStateType(type_url);
  } else if (!empty_names) {
    state.wildcard = false;
  }
  state.subscribed = true;
  if (!state.wildcard) {
    state.names.clear();
    state.names.insert(request.resource_names().begin(), request.resource_names().end());
    // Forget what was sent of unsubscribed names: subscribing again sends them again.
    for (auto it = state.sent.begin(); it != state.sent.end();) {
      it = state.names.count(it->first) != 0 ? std::next(it) : state.sent.erase(it);
    }
  }

  if (first) {
    state.answer_pending = true;
    return RequestKind::kFirst;
  }
  state.acked_version = request.version_info();
  state.awaiting_answer = false;
  if (type_url == kClusterLoadAssignmentType) endpoint_wait_.EndpointsAnswered(state.sent);
  return RequestKind::kAck;
}

std::optional<SotwOutgoing> SotwStream::ResponseFor(const std::string& type_url, TypeState& state,
                                                    const Catalog& catalog, bool keep_removed) {
  if (!state.subscribed) return std::nullopt;
  const auto& available = catalog.Of(type_url);
  std::map<std::string, std::shared_ptr<const Resource>> wanted;
  if (state.wildcard) {
    for (const auto& [name, resource] : available) wanted[name] = resource;
  } else {
    for (const std::string& name : state.names) {
      auto it = available.find(name);
      if (it != available.end()) wanted[name] = it->second;
    }
  }
  if (keep_removed && type_url == kClusterType) {
    for (const auto& [name, resource] : state.sent_resources) {
      if (available.count(name) == 0 && (state.wildcard || state.names.count(name) != 0)) {
        wanted.emplace(name, resource);
      }
    }
  }

  std::map<std::string, std::string> versions;
  for (const auto& [name, resource] : wanted) versions[name] = resource->version;
  bool changed;
  if (IsCompleteStateType(type_url)) {
    changed = versions != state.sent;  // A removal is a change too.
  } else {
    changed = false;
    for (const auto& [name, version] : versions) {
      auto it = state.sent.find(name);
      if (it == state.sent.end() || it->second != version) changed = true;
    }
  }
  // Nothing to say about names that do not exist (yet): they are sent when they appear.
  // An empty Listener or Cluster answer would delete what a reconnecting client has,
  // for instance while a restarted control plane waits for its agents.
  if (state.answer_pending && versions.empty()) state.answer_pending = false;
  if (!changed && !state.answer_pending) return std::nullopt;

  SotwOutgoing out;
  envoy::service::discovery::v3::DiscoveryResponse& response = out.header;
  response.set_type_url(type_url);
  const bool complete = IsCompleteStateType(type_url);
  for (const auto& [name, resource] : wanted) {
    if (!complete && !state.answer_pending) {
      // EDS and RDS: what the client has already stays as it is.
      auto sent = state.sent.find(name);
      if (sent != state.sent.end() && sent->second == resource->version) continue;
    }
    out.resources.push_back(resource);
  }
  if (!complete) {
    // Names sent before and gone from the catalog stay as they were on the client.
    for (const auto& [name, version] : state.sent) versions.emplace(name, version);
  }
  response.set_version_info(VersionOf(versions));
  response.set_nonce(absl::StrCat(++nonce_counter_));
  if (type_url == kClusterType) {
    // A cluster the client had not been sent waits for its endpoints; one no longer sent
    // waits for nothing.
    for (const auto& [name, resource] : wanted) {
      if (state.sent.count(name) != 0) continue;
      const std::string service = EndpointWait::ServiceOf(*resource);
      endpoint_wait_.ClusterAdded(name, service, HasEndpoints(service));
    }
    endpoint_wait_.Retain(versions);
  }
  state.sent = std::move(versions);
  state.last_nonce = response.nonce();
  state.last_version = response.version_info();
  state.answer_pending = false;
  state.awaiting_answer = true;
  if (type_url == kClusterType) state.sent_resources = std::move(wanted);
  return out;
}

bool SotwStream::AwaitingAnswer(const std::string& type_url) const {
  auto it = types_.find(type_url);
  return it != types_.end() && it->second.awaiting_answer;
}

bool SotwStream::HasEndpoints(const std::string& service) const {
  auto eds = types_.find(kClusterLoadAssignmentType);
  return eds != types_.end() && !eds->second.awaiting_answer && eds->second.sent.count(service) != 0;
}

bool SotwStream::AwaitingEndpoints(const Catalog& catalog) const {
  auto eds = types_.find(kClusterLoadAssignmentType);
  if (eds == types_.end() || !eds->second.subscribed) return false;  // Endpoints come another way.
  return endpoint_wait_.Awaiting(catalog.Of(kClusterLoadAssignmentType));
}

std::optional<envoy::service::discovery::v3::DiscoveryResponse> SotwStream::NextResponse(const Catalog& catalog) {
  std::optional<SotwOutgoing> next = Next(catalog);
  if (!next) return std::nullopt;
  return ToMessage(*next);
}

std::optional<SotwOutgoing> SotwStream::Next(const Catalog& catalog) {
  // Make: new and changed resources, clusters first; listeners and routes only once the
  // client has answered the last Cluster response and the endpoints of every new cluster.
  for (const char* type_url : kServedTypesInOrder) {
    auto it = types_.find(type_url);
    if (it == types_.end()) continue;
    const std::string type = type_url;
    if ((type == kListenerType || type == kRouteConfigurationType) &&
        (AwaitingAnswer(kClusterType) || AwaitingEndpoints(catalog))) {
      continue;
    }
    auto response = ResponseFor(type, it->second, catalog, /*keep_removed=*/true);
    if (response) return response;
  }
  const bool clusters_unanswered = AwaitingAnswer(kClusterType);
  // Break: clusters that are gone, once nothing sent can still route to them.
  if (clusters_unanswered || AwaitingAnswer(kListenerType) || AwaitingAnswer(kRouteConfigurationType)) {
    return std::nullopt;
  }
  auto it = types_.find(kClusterType);
  if (it == types_.end()) return std::nullopt;
  return ResponseFor(kClusterType, it->second, catalog, /*keep_removed=*/false);
}

std::string SotwStream::AckedVersion(const std::string& type_url) const {
  auto it = types_.find(type_url);
  return it == types_.end() ? "" : it->second.acked_version;
}

std::string SotwStream::LastNack(const std::string& type_url) const {
  auto it = types_.find(type_url);
  return it == types_.end() ? "" : it->second.last_nack;
}

}  // namespace switchboard::controlplane::xds
