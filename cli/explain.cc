#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "cli/names.h"
#include "common/net.h"
#include "common/table.h"
#include "google/protobuf/util/time_util.h"
#include "switchboard/v1/admin.grpc.pb.h"

namespace switchboard::cli {

namespace {

// One pick: its verdict and reason, then a table of its candidates (an endpoint argument
// keeps only that one's row).
void PrintPick(const v1::PickExplanation& p, const std::string& endpoint, std::ostream& out) {
  out << "\n"
      << google::protobuf::util::TimeUtil::ToString(p.decided_at()) << " by " << p.picker() << ": " << p.verdict()
      << ", " << absl::StrFormat("%.0f", p.prompt_tokens()) << " prompt tokens\n  " << p.reason() << "\n";
  Table table({"ENDPOINT", "WEIGHT", "EXPECTED TTFT", "IN FLIGHT", "FREE SLOTS", "WHY"});
  for (const v1::CandidateScore& c : p.candidates()) {
    if (!endpoint.empty() && c.address() != endpoint) continue;
    const double free = std::max(0.0, c.slots_total() - c.in_flight());
    table.AddRow({c.address(), absl::StrCat(c.weight()),
                  c.weight() == 0 ? "-" : absl::StrFormat("%.3fs", c.expected_ttft_seconds()),
                  absl::StrFormat("%.1f", c.in_flight()), absl::StrFormat("%.1f of %d", free, c.slots_total()),
                  c.why()});
  }
  table.Print(out);
}

}  // namespace

int RunExplain(const GlobalOptions& global, const std::string& pool, const std::string& endpoint, std::ostream& out,
               std::ostream& err, int picks) {
  auto stub = v1::AdminService::NewStub(MakeChannel(global.controlplane));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(global.timeout));
  v1::ExplainRequest req;
  req.set_pool(pool);
  if (picks == 0) req.set_endpoint(endpoint);  // With picks, it filters the candidates shown.
  req.set_picks(static_cast<uint32_t>(std::max(0, picks)));
  v1::ExplainResponse resp;
  grpc::Status status = stub->Explain(&ctx, req, &resp);
  if (!status.ok()) {
    err << "sbctl explain: " << status.error_message() << "\n";
    return 1;
  }
  out << "pool " << resp.pool() << " (version " << resp.version() << ", policy " << ShortName(resp.lb_policy())
      << ")\n";
  if (picks > 0) {
    if (resp.picks().empty()) {
      out << "no picks reported: no switchboard-picker shares with this control plane (--share-interval), or "
             "none has had a request for this pool\n";
    }
    for (const v1::PickExplanation& p : resp.picks()) PrintPick(p, endpoint, out);
    return 0;
  }
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
