// sbctl limits: the global rate limits' usage per descriptor (AdminService.ListRateLimits).
#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "common/net.h"
#include "common/table.h"
#include "switchboard/v1/admin.grpc.pb.h"

namespace switchboard::cli {
namespace {

std::string Window(int64_t seconds) {
  switch (seconds) {
    case 1:
      return "second";
    case 60:
      return "minute";
    case 3600:
      return "hour";
    default:
      return absl::StrCat(seconds, "s");
  }
}

}  // namespace

int RunLimits(const GlobalOptions& global, bool json, std::ostream& out, std::ostream& err) {
  auto stub = v1::AdminService::NewStub(MakeChannel(global.controlplane));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(global.timeout));
  v1::ListRateLimitsResponse resp;
  grpc::Status status = stub->ListRateLimits(&ctx, v1::ListRateLimitsRequest(), &resp);
  if (!status.ok()) {
    err << "sbctl limits: " << global.controlplane << ": " << status.error_message() << "\n";
    return 1;
  }
  if (json) {
    out << ToJson(resp, /*compact=*/true) << "\n";
    return 0;
  }
  out << "domain " << resp.domain() << ": " << resp.descriptors() << " descriptors counted (at most "
      << resp.max_descriptors() << ")\n";
  if (resp.replicas() > 1) {
    out << "divided among " << resp.replicas() << " replicas: the limits below are this replica's share, "
        << "ceil(limit / " << resp.replicas() << ")\n";
  }
  if (resp.usages().empty()) return 0;
  Table t({"DESCRIPTOR", "RULE", "LIMIT", "USED", "REMAINING", "RESET"});
  for (const v1::RateLimitUsage& u : resp.usages()) {
    std::string descriptor;
    for (const v1::RateLimitEntry& e : u.entries()) {
      absl::StrAppend(&descriptor, descriptor.empty() ? "" : ",", e.key(), "=", e.value());
    }
    const absl::Duration reset = absl::Seconds(u.reset().seconds()) + absl::Nanoseconds(u.reset().nanos());
    t.AddRow({descriptor, u.rule(),
              absl::StrCat(u.limit(), " ", u.unit() == v1::RATE_LIMIT_UNIT_TOKENS ? "tokens" : "requests", "/",
                           Window(u.window().seconds())),
              absl::StrCat(u.used()), absl::StrCat(u.remaining()),
              reset == absl::ZeroDuration() ? "-" : absl::FormatDuration(absl::Ceil(reset, absl::Seconds(1)))});
  }
  t.Print(out);
  return 0;
}

}  // namespace switchboard::cli
