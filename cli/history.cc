#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "common/cli_parse.h"
#include "common/table.h"
#include "google/protobuf/util/time_util.h"

namespace switchboard::cli {
namespace {

using google::protobuf::util::TimeUtil;

std::string Label(const v1::HistorySeries& s) {
  return s.address().empty() ? s.pool() : absl::StrCat(s.node_id(), "/", s.address());
}

std::string Value(double v) { return absl::StrFormat("%.4g", v); }

std::string TimeText(absl::Time t) { return absl::FormatTime("%Y-%m-%d %H:%M:%S", t, absl::LocalTimeZone()); }

}  // namespace

int RunHistory(const GlobalOptions& global, const HistoryOptions& options, std::ostream& out, std::ostream& err) {
  v1::HistoryRequest req;
  const size_t slash = options.target.find('/');
  if (slash == std::string::npos) {
    req.set_pool(options.target);
  } else {
    req.set_node_id(options.target.substr(0, slash));
    req.set_address(options.target.substr(slash + 1));
    if (req.node_id().empty() || req.address().empty()) {
      err << "sbctl history: '" << options.target << "': name an endpoint as NODE/ADDRESS (see sbctl nodes)\n";
      return kUsageExitCode;
    }
  }
  req.set_metric(options.metric);
  const absl::Time now = absl::Now();
  absl::StatusOr<absl::Time> since = ParseSince(options.since, now);
  if (!since.ok()) {
    err << "sbctl history: --since: " << since.status().message() << "\n";
    return kUsageExitCode;
  }
  absl::Time until = now;
  if (!options.until.empty()) {
    absl::StatusOr<absl::Time> u = ParseSince(options.until, now);
    if (!u.ok()) {
      err << "sbctl history: --until: " << u.status().message() << "\n";
      return kUsageExitCode;
    }
    until = *u;
  }
  absl::StatusOr<absl::Duration> step = ParseAge(options.step);
  if (!step.ok()) {
    err << "sbctl history: --step: " << step.status().message() << "\n";
    return kUsageExitCode;
  }
  *req.mutable_since() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(*since));
  *req.mutable_until() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(until));
  *req.mutable_step() = TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(*step));

  auto stub = AdminStub(global);
  grpc::ClientContext ctx;
  SetDeadline(&ctx, global);
  v1::HistoryResponse resp;
  grpc::Status status = stub->History(&ctx, req, &resp);
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      err << "sbctl history: " << status.error_message() << "\n";
      return kUsageExitCode;
    }
    return Fail("history", global, status, err);
  }

  if (global.json) {
    out << ToJson(resp) << "\n";
    return 0;
  }
  if (options.csv) {
    out << "time,pool,node_id,address,metric,value\n";
    for (const v1::HistorySeries& s : resp.series()) {
      for (const v1::HistoryPoint& p : s.points()) {
        out << absl::FormatTime(absl::RFC3339_sec, FromProto(p.time()), absl::UTCTimeZone()) << "," << s.pool() << ","
            << s.node_id() << "," << s.address() << "," << resp.metric() << "," << Value(p.value()) << "\n";
      }
    }
    return 0;
  }
  if (resp.series().empty() || std::all_of(resp.series().begin(), resp.series().end(),
                                           [](const v1::HistorySeries& s) { return s.points().empty(); })) {
    out << "no " << options.metric << " samples for " << options.target << " in that range";
    if (resp.series().empty() && slash == std::string::npos)
      out << " (is '" << options.target << "' a pool? sbctl status)";
    out << "\n";
    return 0;
  }
  // One row per bucket, one column per series.
  std::map<absl::Time, std::vector<std::string>> rows;
  std::vector<std::string> header = {"TIME"};
  for (int i = 0; i < resp.series_size(); ++i) {
    header.push_back(Label(resp.series(i)));
    for (const v1::HistoryPoint& p : resp.series(i).points()) {
      auto& row = rows[FromProto(p.time())];
      row.resize(resp.series_size(), "-");
      row[i] = Value(p.value());
    }
  }
  Table t(header);
  for (auto& [time, cells] : rows) {
    cells.resize(resp.series_size(), "-");
    std::vector<std::string> row = {TimeText(time)};
    row.insert(row.end(), cells.begin(), cells.end());
    t.AddRow(std::move(row));
  }
  out << resp.metric() << " from " << TimeText(*since) << " to " << TimeText(until) << ", every "
      << absl::FormatDuration(*step) << "\n";
  t.Print(out);
  out << "\n";
  Table sparks({"SERIES", "MIN", "MAX", "LAST", "TREND"});
  for (const v1::HistorySeries& s : resp.series()) {
    if (s.points().empty()) continue;
    std::vector<double> values;
    for (const v1::HistoryPoint& p : s.points()) values.push_back(p.value());
    sparks.AddRow({Label(s), Value(*std::min_element(values.begin(), values.end())),
                   Value(*std::max_element(values.begin(), values.end())), Value(values.back()), Sparkline(values)});
  }
  sparks.Print(out);
  return 0;
}

}  // namespace switchboard::cli
