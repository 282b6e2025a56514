#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "cli/names.h"
#include "cli/output.h"
#include "common/table.h"

namespace switchboard::cli {
namespace {

std::string Seconds(const google::protobuf::Duration& d) {
  return absl::StrFormat("%.1fs", d.seconds() + d.nanos() / 1e9);
}

}  // namespace

int RunNodes(const GlobalOptions& global, std::ostream& out, std::ostream& err) {
  auto stub = AdminStub(global);
  grpc::ClientContext ctx;
  SetDeadline(&ctx, global);
  v1::ListNodesResponse resp;
  grpc::Status status = stub->ListNodes(&ctx, v1::ListNodesRequest(), &resp);
  if (!status.ok()) return Fail("nodes", global, status, err);
  if (global.json) {
    out << ToJson(resp) << "\n";
    return 0;
  }
  if (resp.nodes().empty()) {
    out << "no nodes: no agent has connected (start switchboard-agent with --controlplane " << global.controlplane
        << ")\n";
    return 0;
  }
  Table t({"NODE", "CONNECTED", "DRAINED", "ENDPOINTS", "LAST REPORT", "GPUS", "AGENT"});
  for (const v1::Node& n : resp.nodes()) {
    std::vector<std::string> eps;
    for (const v1::NodeEndpoint& ep : n.endpoints()) {
      eps.push_back(absl::StrCat(ep.address(), " ", ShortName(ep.engine()), " ", ShortName(ep.state())));
    }
    std::vector<std::string> gpus;
    for (const v1::GpuStatus& g : n.gpus()) {
      gpus.push_back(absl::StrFormat("%s %.1f/%.1f GiB", g.name(), g.vram_used_bytes() / 1073741824.0,
                                     g.vram_total_bytes() / 1073741824.0));
    }
    t.AddRow({n.node_id(), n.connected() ? "yes" : "no", n.drain_requested() ? "yes" : "no",
              eps.empty() ? "-" : absl::StrJoin(eps, "; "), absl::StrCat(Seconds(n.last_report_age()), " ago"),
              gpus.empty() ? "-" : absl::StrJoin(gpus, "; "), n.agent_version()});
  }
  t.Print(out);
  return 0;
}

int RunPool(const GlobalOptions& global, const std::string& pool, std::ostream& out, std::ostream& err) {
  auto stub = AdminStub(global);
  grpc::ClientContext ctx;
  SetDeadline(&ctx, global);
  v1::GetPoolRequest req;
  req.set_pool(pool);
  v1::Pool resp;
  grpc::Status status = stub->GetPool(&ctx, req, &resp);
  if (!status.ok()) return Fail("pool", global, status, err);
  if (global.json) {
    out << ToJson(resp) << "\n";
    return 0;
  }
  out << "POOL " << resp.name() << "  version " << resp.version() << "  policy " << ShortName(resp.lb_policy())
      << "  desired replicas " << resp.desired_replicas() << (resp.assignment().stale() ? "  (stale: restored)" : "")
      << "\n";
  if (resp.endpoints().empty()) {
    out << "  (no endpoints)\n";
    return 0;
  }
  Table t({"ENDPOINT", "NODE", "ENGINE", "STATE", "CIRCUIT", "WEIGHT", "SLOTS", "QUEUE", "KV", "TTFT P95", "TOK/S",
           "ERRORS", "AGE", "REASON"});
  for (const v1::EndpointStatus& ep : resp.endpoints()) {
    t.AddRow({ep.address(), ep.node_id(), ShortName(ep.engine()), ShortName(ep.state()), ShortName(ep.circuit()),
              absl::StrCat(ep.weight()), absl::StrCat(ep.slots_busy(), "/", ep.slots_total()),
              absl::StrCat(ep.queue_depth()), absl::StrFormat("%.0f%%", 100 * ep.kv_cache_usage()),
              absl::StrFormat("%.0fms", 1000 * ep.ttft_p95_seconds()), absl::StrFormat("%.0f", ep.tokens_per_second()),
              absl::StrCat(ep.errors_total()), Seconds(ep.report_age()), ep.reason()});
  }
  t.Print(out, "  ");
  return 0;
}

}  // namespace switchboard::cli
