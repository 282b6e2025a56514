#include <csignal>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "cli/names.h"
#include "common/clock.h"
#include "common/net.h"
#include "google/protobuf/util/json_util.h"
#include "switchboard/v1/discovery.grpc.pb.h"

namespace switchboard::cli {

int RunWatch(const GlobalOptions& global, const WatchOptions& options, std::ostream& out, std::ostream& err) {
  auto stub = v1::DiscoveryService::NewStub(MakeChannel(global.controlplane));
  grpc::ClientContext ctx;
  auto stream = stub->Subscribe(&ctx);
  v1::SubscribeRequest req;
  req.set_subscriber_id(absl::StrCat("sbctl-watch-", getpid()));
  if (!options.pool.empty()) req.add_pools(options.pool);
  if (!stream->Write(req)) {
    grpc::Status status = stream->Finish();
    err << "sbctl: " << global.controlplane << ": " << status.error_message() << "\n";
    return 1;
  }
  if (!options.json) {
    out << "watching " << (options.pool.empty() ? "every pool" : "pool " + options.pool)
        << " (a line per new version; a pool that does not exist yet appears when it does)\n"
        << std::flush;
  }
  int received = 0;
  v1::Assignment a;
  while (stream->Read(&a)) {
    if (options.json) {
      google::protobuf::util::JsonPrintOptions jo;
      jo.preserve_proto_field_names = true;
      jo.always_print_primitive_fields = true;
      std::string line;
      (void)google::protobuf::util::MessageToJsonString(a, &line, jo);
      out << line << "\n" << std::flush;
    } else {
      std::vector<std::string> eps;
      for (const v1::AssignedEndpoint& ep : a.endpoints()) {
        eps.push_back(
            absl::StrCat(ep.address(), "=", ep.weight(), ep.weight() == 0 ? "(" + ShortName(ep.circuit()) + ")" : ""));
      }
      out << absl::FormatTime("%H:%M:%E3S", SystemClock::Get()->Now(), absl::LocalTimeZone()) << " " << a.pool()
          << " version " << a.version() << (a.stale() ? " (stale)" : "") << "  "
          << (eps.empty() ? "(no endpoints)" : absl::StrJoin(eps, " ")) << "\n"
          << std::flush;
    }
    v1::SubscribeRequest ack;
    ack.set_version_info(a.version());
    ack.set_response_nonce(a.nonce());
    ack.add_pools(options.pool);
    if (options.pool.empty()) ack.clear_pools();
    stream->Write(ack);
    if (options.count > 0 && ++received >= options.count) {
      ctx.TryCancel();
      break;
    }
  }
  grpc::Status status = stream->Finish();
  if (options.count > 0 && received >= options.count) return 0;
  err << "sbctl: watch ended: " << (status.ok() ? "the control plane closed the stream" : status.error_message())
      << "\n";
  return 1;
}

}  // namespace switchboard::cli
