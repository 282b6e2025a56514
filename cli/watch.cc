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
namespace {

void Print(const WatchOptions& options, const v1::Assignment& a, std::ostream& out) {
  if (options.json) {
    google::protobuf::util::JsonPrintOptions jo;
    jo.preserve_proto_field_names = true;
    jo.always_print_primitive_fields = true;
    std::string line;
    (void)google::protobuf::util::MessageToJsonString(a, &line, jo);
    out << line << "\n" << std::flush;
    return;
  }
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

// Errors a new stream would only repeat.
bool Permanent(const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return true;
    default:
      return false;
  }
}

}  // namespace

// Watches until interrupted (or --count): the first connection fails fast (a wrong
// address is an error), and a stream that ends later (the control plane restarted) is
// opened again, waiting for the control plane to return. After a restart the control
// plane serves the last versions again, marked stale, so a pool's line may repeat.
int RunWatch(const GlobalOptions& global, const WatchOptions& options, std::ostream& out, std::ostream& err) {
  int received = 0;
  bool connected_before = false;
  while (true) {
    // A new channel per stream: an old one's failed connection would keep failing for
    // seconds after the control plane is back (common/net.h).
    auto stub = v1::DiscoveryService::NewStub(MakeDedicatedChannel(global.controlplane));
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(connected_before);
    auto stream = stub->Subscribe(&ctx);
    v1::SubscribeRequest req;
    req.set_subscriber_id(absl::StrCat("sbctl-watch-", getpid()));
    if (!options.pool.empty()) req.add_pools(options.pool);
    bool ok = stream->Write(req);
    if (ok && !connected_before && !options.json) {
      out << "watching " << (options.pool.empty() ? "every pool" : "pool " + options.pool)
          << " (a line per new version; a pool that does not exist yet appears when it does)\n"
          << std::flush;
    }
    v1::Assignment a;
    while (ok && stream->Read(&a)) {
      connected_before = true;
      Print(options, a, out);
      v1::SubscribeRequest ack;
      ack.set_version_info(a.version());
      ack.set_response_nonce(a.nonce());
      if (!options.pool.empty()) ack.add_pools(options.pool);
      stream->Write(ack);
      if (options.count > 0 && ++received >= options.count) {
        ctx.TryCancel();
        stream->Finish();
        return 0;
      }
    }
    grpc::Status status = stream->Finish();
    if (!connected_before || Permanent(status)) {
      err << "sbctl: " << (connected_before ? "watch ended: " : global.controlplane + ": ")
          << (status.ok() ? "the control plane closed the stream" : status.error_message()) << "\n";
      return 1;
    }
    err << "sbctl: watch interrupted ("
        << (status.ok() ? "the control plane closed the stream" : status.error_message()) << "); reconnecting\n"
        << std::flush;
  }
}

}  // namespace switchboard::cli
