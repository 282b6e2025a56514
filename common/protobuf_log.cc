#include "common/protobuf_log.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/log_limiter.h"
#include "google/protobuf/stubs/logging.h"

namespace switchboard {
namespace {

LogRateLimiter* g_limiter = nullptr;  // Set once by RouteProtobufLogs; never destroyed.

void Handler(google::protobuf::LogLevel level, const char* filename, int line, const std::string& message) {
  const LogRateLimiter::Verdict verdict =
      g_limiter->Admit(absl::StrCat(filename, ":", line), SystemClock::Get()->MonotonicNow());
  if (!verdict.log) return;
  const std::string text =
      absl::StrCat("protobuf ", filename, ":", line, ": ", message, LogRateLimiter::Suffix(verdict));
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO:
      SB_LOG(INFO) << text;
      break;
    case google::protobuf::LOGLEVEL_WARNING:
      SB_LOG(WARNING) << text;
      break;
    default:  // ERROR and FATAL (protobuf aborts after a FATAL by itself).
      SB_LOG(ERROR) << text;
      break;
  }
}

}  // namespace

void RouteProtobufLogs(absl::Duration interval) {
  if (g_limiter != nullptr) return;
  g_limiter = new LogRateLimiter(interval);
  google::protobuf::SetLogHandler(&Handler);
}

}  // namespace switchboard
