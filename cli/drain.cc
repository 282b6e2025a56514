#include <chrono>

#include "cli/commands.h"
#include "common/net.h"
#include "switchboard/v1/admin.grpc.pb.h"

namespace switchboard::cli {

int RunDrain(const GlobalOptions& global, const std::string& node_id, bool drain, std::ostream& out,
             std::ostream& err) {
  auto stub = v1::AdminService::NewStub(MakeChannel(global.controlplane));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(global.timeout));
  v1::DrainRequest req;
  req.set_node_id(node_id);
  v1::DrainResponse resp;
  grpc::Status status = drain ? stub->Drain(&ctx, req, &resp) : stub->Undrain(&ctx, req, &resp);
  if (!status.ok()) {
    err << "sbctl: " << (drain ? "drain" : "undrain") << " " << node_id << ": " << status.error_message() << "\n";
    return 1;
  }
  out << "node " << node_id << ": " << (drain ? "draining (no new requests are routed to it)" : "undrained")
      << (resp.agent_notified() ? "; agent notified" : "; agent not connected, it is told when it reconnects") << "\n";
  return 0;
}

}  // namespace switchboard::cli
