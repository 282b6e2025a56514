#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "cli/names.h"
#include "common/net.h"
#include "common/table.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "switchboard/v1/admin.grpc.pb.h"

namespace switchboard::cli {
namespace {

void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
}

std::string Age(const google::protobuf::Duration& d) {
  const double s = d.seconds() + d.nanos() / 1e9;
  return absl::StrFormat("%.1fs", s);
}

void PrintPool(const v1::Pool& pool, std::ostream& out) {
  out << "POOL " << pool.name() << "  version " << pool.version() << "  policy " << ShortName(pool.lb_policy())
      << "  desired replicas " << pool.desired_replicas() << "\n";
  if (pool.endpoints().empty()) {
    out << "  (no endpoints)\n";
    return;
  }
  Table t({"ENDPOINT", "NODE", "STATE", "CIRCUIT", "SLOTS BUSY/TOTAL", "QUEUE", "WEIGHT", "TOK/S", "AGE", "REASON"});
  for (const v1::EndpointStatus& ep : pool.endpoints()) {
    t.AddRow({ep.address(), ep.node_id(), ShortName(ep.state()), ShortName(ep.circuit()),
              absl::StrCat(ep.slots_busy(), "/", ep.slots_total()), absl::StrCat(ep.queue_depth()),
              absl::StrCat(ep.weight()), absl::StrFormat("%.0f", ep.tokens_per_second()), Age(ep.report_age()),
              ep.reason()});
  }
  t.Print(out, "  ");
}

// What is wrong with an endpoint as its node reports it, or empty: its probe error, an
// address another node reports too, no model (so no pool), no report yet.
std::string EndpointProblem(const v1::Node& node, const v1::NodeEndpoint& ep) {
  if (ep.duplicate_of_size() > 0) {
    std::string others;
    for (const std::string& o : ep.duplicate_of()) absl::StrAppend(&others, others.empty() ? "" : ", ", o);
    return absl::StrCat("duplicate address: also reported by node ", others, " (excluded on every node)");
  }
  if (!ep.probe_error().empty()) return ep.probe_error();
  if (!node.connected()) return "";  // The node table says so.
  if (!ep.reported()) return "no report yet";
  if (ep.models().empty()) return "no model reported: in no pool";
  return "";
}

// Endpoints with a problem, whether or not they belong to a pool (one that reports no
// model belongs to none and would not show in any pool table).
// With `pool` given, only that pool's endpoints.
void PrintProblems(const v1::ListNodesResponse& nodes, const std::string& pool, std::ostream& out) {
  Table t({"ENDPOINT", "NODE", "STATE", "ENGINE", "POOL", "PROBLEM"});
  int rows = 0;
  for (const v1::Node& n : nodes.nodes()) {
    for (const v1::NodeEndpoint& ep : n.endpoints()) {
      const std::string problem = EndpointProblem(n, ep);
      if (problem.empty()) continue;
      if (!pool.empty() && std::find(ep.models().begin(), ep.models().end(), pool) == ep.models().end()) continue;
      std::string pools;
      for (const std::string& m : ep.models()) absl::StrAppend(&pools, pools.empty() ? "" : ",", m);
      t.AddRow({ep.address(), n.node_id(), ShortName(ep.state()), ShortName(ep.engine()), pools.empty() ? "-" : pools,
                problem});
      ++rows;
    }
  }
  if (rows == 0) return;
  out << "ENDPOINTS WITH PROBLEMS\n";
  t.Print(out, "  ");
  out << "\n";
}

}  // namespace

int RunStatus(const GlobalOptions& global, const StatusOptions& options, std::ostream& out, std::ostream& err) {
  auto stub = v1::AdminService::NewStub(MakeChannel(global.controlplane));
  v1::ListPoolsResponse pools;
  grpc::Status status;
  if (options.pool.empty()) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, global.timeout);
    status = stub->ListPools(&ctx, v1::ListPoolsRequest(), &pools);
  } else {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, global.timeout);
    v1::GetPoolRequest req;
    req.set_pool(options.pool);
    status = stub->GetPool(&ctx, req, pools.add_pools());
  }
  v1::ListNodesResponse nodes;
  if (status.ok()) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, global.timeout);
    status = stub->ListNodes(&ctx, v1::ListNodesRequest(), &nodes);
  }
  if (!status.ok()) {
    err << "sbctl: " << global.controlplane << ": " << status.error_message() << "\n";
    return 1;
  }

  if (options.json) {
    google::protobuf::util::JsonPrintOptions jo;
    jo.always_print_primitive_fields = true;
    jo.preserve_proto_field_names = true;
    std::string pools_json, nodes_json;
    (void)google::protobuf::util::MessageToJsonString(pools, &pools_json, jo);
    (void)google::protobuf::util::MessageToJsonString(nodes, &nodes_json, jo);
    nlohmann::json combined = {{"pools", nlohmann::json::parse(pools_json)["pools"]},
                               {"nodes", nlohmann::json::parse(nodes_json)["nodes"]}};
    out << combined.dump(2) << "\n";
    return 0;
  }

  if (pools.pools().empty()) out << "no pools yet: no agent has reported an endpoint with a model\n\n";
  for (const v1::Pool& pool : pools.pools()) {
    PrintPool(pool, out);
    out << "\n";
  }
  PrintProblems(nodes, options.pool, out);
  Table t({"NODE", "CONNECTED", "ENDPOINTS", "LAST REPORT", "GPUS", "AGENT"});
  for (const v1::Node& n : nodes.nodes()) {
    std::string gpus = n.gpus().empty() ? "-" : "";
    for (const v1::GpuStatus& g : n.gpus()) {
      absl::StrAppend(
          &gpus, gpus.empty() ? "" : "; ", g.name(),
          absl::StrFormat(" %.1f/%.1f GiB", g.vram_used_bytes() / 1073741824.0, g.vram_total_bytes() / 1073741824.0),
          g.has_utilization() ? absl::StrFormat(" %.0f%%", 100 * g.utilization()) : "");
    }
    t.AddRow({n.node_id() + (n.drain_requested() ? " (drained)" : ""), n.connected() ? "yes" : "no",
              absl::StrCat(n.endpoint_count()), absl::StrCat(Age(n.last_report_age()), " ago"), gpus,
              n.agent_version()});
  }
  if (!nodes.nodes().empty()) t.Print(out);
  return 0;
}

}  // namespace switchboard::cli
