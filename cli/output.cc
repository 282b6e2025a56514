#include "cli/output.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/net.h"
#include "google/protobuf/util/json_util.h"

namespace switchboard::cli {

std::unique_ptr<v1::AdminService::Stub> AdminStub(const GlobalOptions& global) {
  return v1::AdminService::NewStub(MakeChannel(global.controlplane));
}

void SetDeadline(grpc::ClientContext* ctx, const GlobalOptions& global) {
  ctx->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(global.timeout));
}

std::string ToJson(const google::protobuf::Message& message, bool compact) {
  google::protobuf::util::JsonPrintOptions jo;
  jo.always_print_primitive_fields = true;
  jo.preserve_proto_field_names = true;
  jo.add_whitespace = !compact;
  std::string text;
  (void)google::protobuf::util::MessageToJsonString(message, &text, jo);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

int Fail(const std::string& command, const GlobalOptions& global, const grpc::Status& status, std::ostream& err) {
  err << "sbctl " << command << ": " << status.error_message() << "\n";
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      err << "  is the control plane running at " << global.controlplane
          << "? Set --controlplane HOST:PORT (or $SWITCHBOARD_ADDR), or a longer --timeout\n";
      break;
    case grpc::StatusCode::FAILED_PRECONDITION:
      if (status.error_message().find("no history") != std::string::npos) {
        err << "  start the control plane with --db PATH to keep history\n";
      }
      break;
    default:
      break;
  }
  return 1;
}

absl::StatusOr<absl::Duration> ParseAge(const std::string& text) {
  absl::Duration d;
  if (!text.empty() && text.back() == 'd') {
    int64_t days = 0;
    if (absl::SimpleAtoi(text.substr(0, text.size() - 1), &days) && days > 0 && days <= 3650) {
      return absl::Hours(24 * days);
    }
  } else if (absl::ParseDuration(text, &d) && d > absl::ZeroDuration()) {
    return d;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not a positive duration (examples: 90s, 15m, 1h30m, 7d)"));
}

absl::StatusOr<absl::Time> ParseSince(const std::string& text, absl::Time now) {
  absl::Time t;
  std::string parse_error;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &parse_error)) return t;
  absl::StatusOr<absl::Duration> age = ParseAge(text);
  if (!age.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("'", text,
                                                   "' is neither an age (90s, 15m, 1h, 7d) nor an RFC 3339 time "
                                                   "(2026-12-01T03:00:00Z)"));
  }
  return now - *age;
}

std::string Sparkline(const std::vector<double>& values) {
  static const char* const kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  if (values.empty()) return "";
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  std::string out;
  for (double v : values) {
    const int level = *hi > *lo ? static_cast<int>((v - *lo) / (*hi - *lo) * 7 + 0.5) : 0;
    out += kBars[std::clamp(level, 0, 7)];
  }
  return out;
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

}  // namespace switchboard::cli
