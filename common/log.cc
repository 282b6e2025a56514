#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/time/time.h"
#include "common/clock.h"

namespace switchboard {
namespace {

LogSeverity SeverityFromEnv() {
  const char* env = std::getenv("SWITCHBOARD_LOG_LEVEL");
  if (env == nullptr) return LogSeverity::kInfo;
  if (std::strcmp(env, "debug") == 0) return LogSeverity::kDebug;
  if (std::strcmp(env, "warning") == 0) return LogSeverity::kWarning;
  if (std::strcmp(env, "error") == 0) return LogSeverity::kError;
  return LogSeverity::kInfo;
}

std::atomic<int> g_min_severity{static_cast<int>(SeverityFromEnv())};
std::atomic<const char*> g_program{"switchboard"};

const char* SeverityLetter(LogSeverity s) {
  switch (s) {
    case LogSeverity::kDebug:
      return "D";
    case LogSeverity::kInfo:
      return "I";
    case LogSeverity::kWarning:
      return "W";
    case LogSeverity::kError:
      return "E";
  }
  return "?";
}

}  // namespace

LogSeverity MinLogSeverity() { return static_cast<LogSeverity>(g_min_severity.load()); }
void SetMinLogSeverity(LogSeverity severity) { g_min_severity = static_cast<int>(severity); }
void SetLogProgramName(const char* name) { g_program = name; }

LogMessage::LogMessage(LogSeverity severity, const char* file, int line) : severity_(severity) {
  const char* base = std::strrchr(file, '/');
  stream_ << SeverityLetter(severity_)
          << absl::FormatTime(" %H:%M:%E3S ", SystemClock::Get()->Now(), absl::LocalTimeZone()) << g_program.load()
          << " " << (base ? base + 1 : file) << ":" << line << "] ";
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  const std::string text = stream_.str();
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace switchboard
