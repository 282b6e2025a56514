#include "controlplane/service/admin_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "controlplane/service/grpc_status.h"
#include "google/protobuf/util/time_util.h"

namespace switchboard::controlplane {

using google::protobuf::util::TimeUtil;

void FillPool(const Snapshot& snapshot, v1::Pool* pool) {
  pool->set_name(snapshot.pool);
  pool->set_version(snapshot.version);
  pool->set_lb_policy(snapshot.assignment.lb_policy());
  pool->set_desired_replicas(snapshot.assignment.desired_replicas());
  for (size_t i = 0; i < snapshot.size(); ++i) *pool->add_endpoints() = snapshot.Detail(i);
  *pool->mutable_assignment() = snapshot.assignment;
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListNodes(grpc::CallbackServerContext* context,
                                                      const v1::ListNodesRequest* /*request*/,
                                                      v1::ListNodesResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!Allowed(context, Access::kRead, reactor)) return reactor;
  for (const NodeView& n : fleet_->Nodes(clock_->MonotonicNow())) {
    v1::Node* node = response->add_nodes();
    node->set_node_id(n.node_id);
    node->mutable_labels()->insert(n.labels.begin(), n.labels.end());
    node->set_agent_version(n.agent_version);
    node->set_connected(n.connected);
    *node->mutable_last_report_age() = TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(n.last_report_age));
    node->set_endpoint_count(n.endpoint_count);
    node->set_last_sequence(n.last_sequence);
    node->set_drain_requested(n.drain_requested);
    for (const v1::GpuStatus& g : n.gpus) *node->add_gpus() = g;
    for (const v1::NodeEndpoint& ep : n.endpoints) *node->add_endpoints() = ep;
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListPools(grpc::CallbackServerContext* context,
                                                      const v1::ListPoolsRequest* /*request*/,
                                                      v1::ListPoolsResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!Allowed(context, Access::kRead, reactor)) return reactor;
  for (const auto& snap : store_->All()) FillPool(*snap, response->add_pools());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::GetPool(grpc::CallbackServerContext* context,
                                                    const v1::GetPoolRequest* request, v1::Pool* response) {
  auto* reactor = context->DefaultReactor();
  if (!Allowed(context, Access::kRead, reactor)) return reactor;
  absl::StatusOr<std::shared_ptr<const Snapshot>> snap = ops_->Pool(request->pool());
  if (snap.ok()) FillPool(**snap, response);
  reactor->Finish(ToGrpcStatus(snap.status()));
  return reactor;
}

namespace {

// Who made a change, for its event: the token or certificate; "" when the caller has
// neither (an open admin API on a plaintext control plane has no one to name).
std::string NameForEvents(const Caller& caller) {
  return caller.has_valid_token() || caller.has_certificate() ? caller.Describe() : "";
}

}  // namespace

bool AdminServiceImpl::Allowed(grpc::CallbackServerContext* context, Access access, grpc::ServerUnaryReactor* reactor,
                               Caller* caller) const {
  grpc::Status status = auth_->Check(*context, access, caller);
  if (status.ok()) return true;
  reactor->Finish(status);
  return false;
}

grpc::Status AdminServiceImpl::SetDrain(const v1::DrainRequest& request, bool drain, const std::string& caller,
                                        v1::DrainResponse* response) {
  absl::StatusOr<bool> notified = ops_->SetDrain(request.node_id(), drain, caller);
  if (notified.ok()) response->set_agent_notified(*notified);
  return ToGrpcStatus(notified.status());
}

grpc::ServerUnaryReactor* AdminServiceImpl::Explain(grpc::CallbackServerContext* context,
                                                    const v1::ExplainRequest* request, v1::ExplainResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!Allowed(context, Access::kRead, reactor)) return reactor;
  absl::StatusOr<std::shared_ptr<const Snapshot>> found = ops_->Pool(request->pool());
  if (!found.ok()) {
    reactor->Finish(ToGrpcStatus(found.status()));
    return reactor;
  }
  const std::shared_ptr<const Snapshot>& snap = *found;
  response->set_pool(snap->pool);
  response->set_version(snap->version);
  response->set_lb_policy(snap->assignment.lb_policy());
  response->set_desired_replicas(snap->assignment.desired_replicas());
  response->set_replicas_arithmetic(snap->autoscale_explanation);
  std::vector<std::string> weight_arithmetic = snap->WeightExplanations();
  for (size_t i = 0; i < snap->size(); ++i) {
    const v1::AssignedEndpoint& ep = snap->assignment.endpoints(static_cast<int>(i));
    if (!request->endpoint().empty() && ep.address() != request->endpoint()) continue;
    v1::EndpointExplanation* e = response->add_endpoints();
    e->set_address(ep.address());
    e->set_node_id(ep.node_id());
    e->set_circuit(ep.circuit());
    e->set_circuit_reason(snap->facts[i].circuit_reason);
    e->set_weight(ep.weight());
    e->set_weight_arithmetic(std::move(weight_arithmetic[i]));
  }
  if (request->picks() > 0 && recent_picks_ != nullptr) {
    for (v1::PickExplanation& p : recent_picks_->Latest(snap->pool, std::min<uint32_t>(request->picks(), 64))) {
      *response->add_picks() = std::move(p);
    }
  }
  if (!request->endpoint().empty() && response->endpoints().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("pool ", snap->pool, " has no endpoint ",
                                                                           request->endpoint().substr(0, 256))));
    return reactor;
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::SetReplicas(grpc::CallbackServerContext* context,
                                                        const v1::SetReplicasRequest* request,
                                                        v1::SetReplicasResponse* /*response*/) {
  auto* reactor = context->DefaultReactor();
  Caller caller;
  if (!Allowed(context, Access::kWrite, reactor, &caller)) return reactor;
  const absl::Duration ttl = absl::Seconds(request->ttl().seconds()) + absl::Nanoseconds(request->ttl().nanos());
  absl::Status status = ops_->SetReplicas(request->pool(), request->replicas(), ttl, request->reason(),
                                          request->force(), NameForEvents(caller));
  if (!status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }
  FinishWhenDurable(reactor);
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::Events(grpc::CallbackServerContext* context,
                                                   const v1::EventsRequest* request, v1::EventsResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!Allowed(context, Access::kRead, reactor)) return reactor;
  FinishAfterRead(reactor, [this, request, response] {
    const absl::Time since = request->has_since()
                                 ? absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(request->since()))
                                 : absl::InfinitePast();
    absl::StatusOr<std::vector<HistoryEvent>> events =
        ops_->Events(request->pool(), request->limit(), since, request->after_id());
    if (!events.ok()) return ToGrpcStatus(events.status());
    for (const HistoryEvent& e : *events) {
      v1::Event* out = response->add_events();
      *out->mutable_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(e.time));
      out->set_kind(e.kind);
      out->set_pool(e.pool);
      out->set_node_id(e.node_id);
      out->set_address(e.address);
      out->set_detail(e.detail);
      out->set_id(e.id);
    }
    return grpc::Status::OK;
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::History(grpc::CallbackServerContext* context,
                                                    const v1::HistoryRequest* request, v1::HistoryResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!Allowed(context, Access::kRead, reactor)) return reactor;
  HistoryQuery query;
  query.pool = request->pool();
  query.node_id = request->node_id();
  query.address = request->address();
  query.metric = request->metric();
  if (!request->has_since()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "give 'since', the start of the range"));
    return reactor;
  }
  query.since = absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(request->since()));
  query.until =
      request->has_until() ? absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(request->until())) : clock_->Now();
  query.step = request->has_step()
                   ? absl::Seconds(request->step().seconds()) + absl::Nanoseconds(request->step().nanos())
                   : absl::Minutes(1);
  // Bad questions are answered here, without queueing behind reads.
  if (absl::Status valid = ValidateHistoryQuery(query); !valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  FinishAfterRead(reactor, [this, query, response] {
    absl::StatusOr<std::vector<HistorySeries>> series = ops_->History(query);
    if (!series.ok()) return ToGrpcStatus(series.status());
    response->set_metric(query.metric);
    for (const HistorySeries& s : *series) {
      v1::HistorySeries* out = response->add_series();
      out->set_pool(s.pool);
      out->set_node_id(s.node_id);
      out->set_address(s.address);
      for (const HistoryPoint& p : s.points) {
        v1::HistoryPoint* point = out->add_points();
        *point->mutable_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(p.time));
        point->set_value(p.value);
      }
    }
    return grpc::Status::OK;
  });
  return reactor;
}

void AdminServiceImpl::FinishAfterRead(grpc::ServerUnaryReactor* reactor, std::function<grpc::Status()> read) {
  if (reads_ == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "this server does not serve history reads"));
    return;
  }
  if (!reads_->Post([reactor, read = std::move(read)] { reactor->Finish(read()); })) {
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "too many history reads queued (the disk is slow): retry in a moment"));
  }
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListClients(grpc::CallbackServerContext* context,
                                                        const v1::ListClientsRequest* /*request*/,
                                                        v1::ListClientsResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!Allowed(context, Access::kRead, reactor)) return reactor;
  if (clients_ != nullptr) {
    for (const ConnectedClient& c : clients_->List()) {
      v1::ConnectedClient* out = response->add_clients();
      out->set_client_id(c.client_id);
      out->set_user_agent(c.user_agent);
      out->set_peer(c.peer);
      out->set_protocol(c.protocol);
      for (const std::string& r : c.resources) out->add_resources(r);
      for (const auto& [resource, version] : c.acked) (*out->mutable_acked_versions())[resource] = version;
      out->set_last_nack_resource(c.last_nack_resource);
      out->set_last_nack(c.last_nack);
      if (c.last_nack_time != absl::InfinitePast()) {
        *out->mutable_last_nack_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(c.last_nack_time));
      }
      *out->mutable_connected_since() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(c.connected_since));
    }
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

void AdminServiceImpl::FinishWhenDurable(grpc::ServerUnaryReactor* reactor) {
  // Answered once the change is on disk, without blocking this thread.
  ops_->WhenDurable([reactor](bool saved) {
    reactor->Finish(saved ? grpc::Status::OK
                          : grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                         "applied, but the history could not save it: it would not survive a "
                                         "restart (see switchboard_history_write_errors_total); retry"));
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::Drain(grpc::CallbackServerContext* context, const v1::DrainRequest* request,
                                                  v1::DrainResponse* response) {
  auto* reactor = context->DefaultReactor();
  Caller caller;
  if (!Allowed(context, Access::kWrite, reactor, &caller)) return reactor;
  grpc::Status status = SetDrain(*request, true, NameForEvents(caller), response);
  if (status.ok()) {
    FinishWhenDurable(reactor);
  } else {
    reactor->Finish(status);
  }
  return reactor;
}

grpc::ServerUnaryReactor* AdminServiceImpl::Undrain(grpc::CallbackServerContext* context,
                                                    const v1::DrainRequest* request, v1::DrainResponse* response) {
  auto* reactor = context->DefaultReactor();
  Caller caller;
  if (!Allowed(context, Access::kWrite, reactor, &caller)) return reactor;
  grpc::Status status = SetDrain(*request, false, NameForEvents(caller), response);
  if (status.ok()) {
    FinishWhenDurable(reactor);
  } else {
    reactor->Finish(status);
  }
  return reactor;
}

}  // namespace switchboard::controlplane
