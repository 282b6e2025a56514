#include "controlplane/xds/delta_stream.h"

#include "absl/strings/str_cat.h"

namespace switchboard::controlplane::xds {

RequestKind DeltaStream::OnRequest(const envoy::service::discovery::v3::DeltaDiscoveryRequest& request) {
  const std::string& type_url = request.type_url();
  if (!IsServedType(type_url)) return RequestKind::kUnknownType;
  TypeState& state = types_[type_url];
  const bool first = !state.subscribed;
  state.subscribed = true;

  // The subscription changes whatever the nonce says.
  if (first) {
    for (const auto& [name, version] : request.initial_resource_versions()) state.client_has[name] = version;
    if (request.resource_names_subscribe().empty() && IsCompleteStateType(type_url)) state.wildcard = true;
  }
  for (const std::string& name : request.resource_names_subscribe()) {
    if (name == "*") {
      state.wildcard = true;
    } else {
      state.names.insert(name);
    }
  }
  for (const std::string& name : request.resource_names_unsubscribe()) {
    if (name == "*") {
      state.wildcard = false;
    } else {
      state.names.erase(name);
    }
    // Unsubscribed: the client drops it and needs no removal notice.
    if (!state.wildcard) state.client_has.erase(name);
  }
  if (!state.wildcard) {
    for (auto it = state.client_has.begin(); it != state.client_has.end();) {
      it = state.names.count(it->first) != 0 ? std::next(it) : state.client_has.erase(it);
    }
  }

  if (request.has_error_detail() && request.error_detail().code() != 0) {
    if (request.response_nonce() != state.last_nonce) return RequestKind::kStale;
    state.last_nack = request.error_detail().message();
    state.awaiting_answer = false;
    if (type_url == kClusterLoadAssignmentType) endpoint_wait_.EndpointsAnswered(state.client_has);
    return RequestKind::kNack;
  }
  if (request.response_nonce().empty()) return RequestKind::kFirst;
  if (request.response_nonce() != state.last_nonce) return RequestKind::kStale;
  state.acked_version = state.last_version;
  state.awaiting_answer = false;
  if (type_url == kClusterLoadAssignmentType) endpoint_wait_.EndpointsAnswered(state.client_has);
  return RequestKind::kAck;
}

std::optional<DeltaOutgoing> DeltaStream::ResponseFor(const std::string& type_url, TypeState& state,
                                                      const Catalog& catalog, bool removals) {
  if (!state.subscribed) return std::nullopt;
  const auto& available = catalog.Of(type_url);
  DeltaOutgoing out;
  envoy::service::discovery::v3::DeltaDiscoveryResponse& response = out.header;
  std::map<std::string, std::string> now_has = state.client_has;

  // Catalog keys are the resources' names.
  auto consider = [&](const std::shared_ptr<const Resource>& resource) {
    auto has = state.client_has.find(resource->name);
    if (has != state.client_has.end() && has->second == resource->version) return;
    out.resources.push_back(resource);
    now_has[resource->name] = resource->version;
  };
  if (state.wildcard) {
    for (const auto& [name, resource] : available) consider(resource);
  } else {
    for (const std::string& name : state.names) {
      auto it = available.find(name);
      if (it != available.end()) consider(it->second);
    }
  }
  for (const auto& [name, version] : state.client_has) {
    if (removals && available.count(name) == 0) {
      response.add_removed_resources(name);
      now_has.erase(name);
    }
  }
  if (out.resources.empty() && response.removed_resources().empty()) return std::nullopt;

  if (type_url == kClusterType) {
    // A cluster the client did not have waits for its endpoints; a removed one for nothing.
    for (const auto& [name, version] : now_has) {
      if (state.client_has.count(name) != 0) continue;
      auto it = available.find(name);
      const std::string service = it != available.end() ? EndpointWait::ServiceOf(*it->second) : name;
      endpoint_wait_.ClusterAdded(name, service, HasEndpoints(service));
    }
    for (const std::string& name : response.removed_resources()) endpoint_wait_.ClusterRemoved(name);
  }
  response.set_type_url(type_url);
  response.set_system_version_info(SotwStream::VersionOf(now_has));
  response.set_nonce(absl::StrCat(++nonce_counter_));
  state.client_has = std::move(now_has);
  state.last_nonce = response.nonce();
  state.last_version = response.system_version_info();
  state.awaiting_answer = true;
  return out;
}

bool DeltaStream::AwaitingAnswer(const std::string& type_url) const {
  auto it = types_.find(type_url);
  return it != types_.end() && it->second.awaiting_answer;
}

bool DeltaStream::HasEndpoints(const std::string& service) const {
  auto eds = types_.find(kClusterLoadAssignmentType);
  return eds != types_.end() && !eds->second.awaiting_answer && eds->second.client_has.count(service) != 0;
}

bool DeltaStream::AwaitingEndpoints(const Catalog& catalog) const {
  auto eds = types_.find(kClusterLoadAssignmentType);
  if (eds == types_.end() || !eds->second.subscribed) return false;  // Endpoints come another way.
  return endpoint_wait_.Awaiting(catalog.Of(kClusterLoadAssignmentType));
}

std::optional<envoy::service::discovery::v3::DeltaDiscoveryResponse> DeltaStream::NextResponse(const Catalog& catalog) {
  std::optional<DeltaOutgoing> next = Next(catalog);
  if (!next) return std::nullopt;
  return ToMessage(*next);
}

std::optional<DeltaOutgoing> DeltaStream::Next(const Catalog& catalog) {
  for (const char* type_url : kServedTypesInOrder) {
    auto it = types_.find(type_url);
    if (it == types_.end()) continue;
    const std::string type = type_url;
    if ((type == kListenerType || type == kRouteConfigurationType) &&
        (AwaitingAnswer(kClusterType) || AwaitingEndpoints(catalog))) {
      continue;
    }
    auto response = ResponseFor(type, it->second, catalog, /*removals=*/type != kClusterType);
    if (response) return response;
  }
  const bool clusters_unanswered = AwaitingAnswer(kClusterType);
  if (clusters_unanswered || AwaitingAnswer(kListenerType) || AwaitingAnswer(kRouteConfigurationType)) {
    return std::nullopt;
  }
  auto it = types_.find(kClusterType);
  if (it == types_.end()) return std::nullopt;
  return ResponseFor(kClusterType, it->second, catalog, /*removals=*/true);
}

std::string DeltaStream::AckedVersion(const std::string& type_url) const {
  auto it = types_.find(type_url);
  return it == types_.end() ? "" : it->second.acked_version;
}

std::string DeltaStream::LastNack(const std::string& type_url) const {
  auto it = types_.find(type_url);
  return it == types_.end() ? "" : it->second.last_nack;
}

}  // namespace switchboard::controlplane::xds
