#include <algorithm>
#include <chrono>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "common/net.h"
#include "common/table.h"
#include "switchboard/v1/admin.grpc.pb.h"

namespace switchboard::cli {

namespace {

// "type.googleapis.com/envoy.config.cluster.v3.Cluster" -> "Cluster"; a pool stays as is.
std::string ShortResource(const std::string& resource) {
  const size_t dot = resource.rfind('.');
  return resource.rfind("type.googleapis.com/", 0) == 0 && dot != std::string::npos ? resource.substr(dot + 1)
                                                                                    : resource;
}

std::string Age(absl::Duration d) {
  d = absl::Trunc(d, absl::Seconds(1));
  return d <= absl::ZeroDuration() ? "now" : absl::StrCat(absl::FormatDuration(d), " ago");
}

std::string Clip(const std::string& s, size_t n) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

}  // namespace

int RunClients(const GlobalOptions& global, bool json, std::ostream& out, std::ostream& err) {
  auto stub = v1::AdminService::NewStub(MakeChannel(global.controlplane));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(global.timeout));
  v1::ListClientsResponse resp;
  grpc::Status status = stub->ListClients(&ctx, v1::ListClientsRequest(), &resp);
  if (!status.ok()) {
    err << "sbctl clients: " << global.controlplane << ": " << status.error_message() << "\n";
    return 1;
  }
  if (json) {
    out << ToJson(resp, /*compact=*/true) << "\n";
    return 0;
  }
  if (resp.clients().empty()) {
    out << "no discovery clients connected\n";
    return 0;
  }
  const absl::Time now = absl::Now();
  Table t({"CLIENT", "PROTOCOL", "USER AGENT", "PEER", "CONNECTED", "ACKED (resource=version)", "LAST NACK"});
  for (const v1::ConnectedClient& c : resp.clients()) {
    // Every resource asked for, with its last ACKed version ("-": none yet), and the pools
    // a native "*" subscriber ACKed.
    std::vector<std::string> acked;
    for (const std::string& r : c.resources()) {
      if (r == "*" && !c.acked_versions().empty()) continue;
      auto it = c.acked_versions().find(r);
      acked.push_back(absl::StrCat(ShortResource(r), "=", it == c.acked_versions().end() ? "-" : Clip(it->second, 12)));
    }
    std::map<std::string, std::string> others;  // Sorted, unlike the proto map.
    for (const auto& [r, version] : c.acked_versions()) {
      if (std::find(c.resources().begin(), c.resources().end(), r) == c.resources().end()) others[r] = version;
    }
    for (const auto& [r, version] : others) acked.push_back(absl::StrCat(ShortResource(r), "=", Clip(version, 12)));
    const absl::Time since =
        absl::FromUnixSeconds(c.connected_since().seconds()) + absl::Nanoseconds(c.connected_since().nanos());
    const std::string nack = c.last_nack().empty() && c.last_nack_resource().empty()
                                 ? "-"
                                 : absl::StrCat(ShortResource(c.last_nack_resource()), ": ", Clip(c.last_nack(), 60));
    t.AddRow({c.client_id().empty() ? "-" : c.client_id(), c.protocol(), c.user_agent().empty() ? "-" : c.user_agent(),
              c.peer(), Age(now - since), acked.empty() ? "-" : absl::StrJoin(acked, " "), nack});
  }
  t.Print(out);
  return 0;
}

}  // namespace switchboard::cli
