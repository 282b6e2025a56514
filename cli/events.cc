#include <thread>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "common/cli_parse.h"
#include "google/protobuf/util/time_util.h"

namespace switchboard::cli {
namespace {

void PrintEvent(const v1::Event& e, bool json, std::ostream& out) {
  if (json) {
    out << ToJson(e, /*compact=*/true) << "\n";
    return;
  }
  out << absl::FormatTime("%Y-%m-%d %H:%M:%S", FromProto(e.time()), absl::LocalTimeZone()) << "  " << e.kind();
  if (!e.pool().empty()) out << " pool=" << e.pool();
  if (!e.node_id().empty()) out << " node=" << e.node_id();
  if (!e.address().empty()) out << " endpoint=" << e.address();
  out << "  " << e.detail() << "\n";
}

}  // namespace

int RunEvents(const GlobalOptions& global, const EventsOptions& options, std::ostream& out, std::ostream& err) {
  auto stub = AdminStub(global);
  v1::EventsRequest req;
  req.set_pool(options.pool);
  req.set_limit(static_cast<uint32_t>(options.limit));
  if (!options.since.empty()) {
    absl::StatusOr<absl::Time> since = ParseSince(options.since, absl::Now());
    if (!since.ok()) {
      err << "sbctl events: --since: " << since.status().message() << "\n";
      return kUsageExitCode;
    }
    *req.mutable_since() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(*since));
  }
  v1::EventsResponse resp;
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, global);
    grpc::Status status = stub->Events(&ctx, req, &resp);
    if (!status.ok()) return Fail("events", global, status, err);
  }
  if (!options.follow) {
    if (global.json) {
      // Oldest first, as in the table.
      v1::EventsResponse ordered;
      for (int i = resp.events_size() - 1; i >= 0; --i) *ordered.add_events() = resp.events(i);
      out << ToJson(ordered) << "\n";
      return 0;
    }
    if (resp.events().empty()) out << "no events\n";
  }
  // Oldest first, like a log; following, JSON is one event per line.
  int printed = 0;
  int64_t newest_id = 0;
  for (int i = resp.events_size() - 1; i >= 0; --i) {
    if (options.follow && options.count > 0 && printed >= options.count) return 0;
    PrintEvent(resp.events(i), global.json && options.follow, out);
    newest_id = std::max(newest_id, resp.events(i).id());
    ++printed;
  }
  if (!options.follow) return 0;
  out.flush();
  req.set_limit(1000);
  while (options.count == 0 || printed < options.count) {
    // A CLI polling loop (not logic under test): once a second is what an operator sees.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    req.set_after_id(newest_id);
    v1::EventsResponse more;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, global);
    grpc::Status status = stub->Events(&ctx, req, &more);
    if (!status.ok()) return Fail("events --follow", global, status, err);
    for (int i = more.events_size() - 1; i >= 0 && (options.count == 0 || printed < options.count); --i) {
      PrintEvent(more.events(i), global.json, out);
      newest_id = std::max(newest_id, more.events(i).id());
      ++printed;
    }
    out.flush();
  }
  return 0;
}

}  // namespace switchboard::cli
