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
  Table t({"ENDPOINT", "NODE", "STATE", "CIRCUIT", "SLOTS", "QUEUE", "WEIGHT", "TOK/S", "AGE", "REASON"});
  for (const v1::EndpointStatus& ep : pool.endpoints()) {
    t.AddRow({ep.address(), ep.node_id(), ShortName(ep.state()), ShortName(ep.circuit()),
              absl::StrCat(ep.slots_busy(), "/", ep.slots_total()), absl::StrCat(ep.queue_depth()),
              absl::StrCat(ep.weight()), absl::StrFormat("%.0f", ep.tokens_per_second()), Age(ep.report_age()),
              ep.reason()});
  }
  t.Print(out, "  ");
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

  if (pools.pools().empty()) out << "no pools yet: no agent has reported an endpoint with a model\n";
  for (const v1::Pool& pool : pools.pools()) {
    PrintPool(pool, out);
    out << "\n";
  }
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
