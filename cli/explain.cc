#include <chrono>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/names.h"
#include "common/net.h"
#include "google/protobuf/util/time_util.h"
#include "switchboard/v1/admin.grpc.pb.h"

namespace switchboard::cli {

int RunExplain(const GlobalOptions& global, const std::string& pool, const std::string& endpoint, std::ostream& out,
               std::ostream& err) {
  auto stub = v1::AdminService::NewStub(MakeChannel(global.controlplane));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(global.timeout));
  v1::ExplainRequest req;
  req.set_pool(pool);
  req.set_endpoint(endpoint);
  v1::ExplainResponse resp;
  grpc::Status status = stub->Explain(&ctx, req, &resp);
  if (!status.ok()) {
    err << "sbctl explain: " << status.error_message() << "\n";
    return 1;
  }
  out << "pool " << resp.pool() << " (version " << resp.version() << ", policy " << ShortName(resp.lb_policy())
      << ")\n";
  out << "replicas: " << resp.replicas_arithmetic() << "\n";
  for (const v1::EndpointExplanation& e : resp.endpoints()) {
    out << "\n" << e.address() << " on " << e.node_id() << "\n";
    out << "  circuit " << ShortName(e.circuit()) << ": " << e.circuit_reason() << "\n";
    out << "  " << e.weight_arithmetic() << "\n";
  }
  return 0;
}

int RunScale(const GlobalOptions& global, const std::string& pool, int replicas, absl::Duration ttl,
             const std::string& reason, bool force, std::ostream& out, std::ostream& err) {
  auto stub = v1::AdminService::NewStub(MakeChannel(global.controlplane));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(global.timeout));
  v1::SetReplicasRequest req;
  req.set_pool(pool);
  req.set_replicas(replicas);
  *req.mutable_ttl() = google::protobuf::util::TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(ttl));
  req.set_reason(reason);
  req.set_force(force);
  v1::SetReplicasResponse resp;
  grpc::Status status = stub->SetReplicas(&ctx, req, &resp);
  if (!status.ok()) {
    err << "sbctl scale: " << status.error_message() << "\n";
    return status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ? kExitRefused : 1;
  }
  if (replicas < 0) {
    out << "pool " << pool << ": manual override cleared; the autoscaler decides again\n";
  } else {
    out << "pool " << pool << ": " << replicas << " replicas for " << absl::FormatDuration(ttl)
        << " (then the autoscaler decides again)\n";
  }
  return 0;
}

}  // namespace switchboard::cli
