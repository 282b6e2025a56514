// Minimal leveled logging to stderr (Debian's Abseil predates absl/log).
// Usage: SB_LOG(INFO) << "connected to " << addr;   Thread-safe: one write per line.
#ifndef SWITCHBOARD_COMMON_LOG_H_
#define SWITCHBOARD_COMMON_LOG_H_

#include <sstream>

namespace switchboard {

enum class LogSeverity { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below this level are dropped. Default kInfo; SWITCHBOARD_LOG_LEVEL=debug|info|warning|error.
LogSeverity MinLogSeverity();
void SetMinLogSeverity(LogSeverity severity);
// Program name shown in every line (default "switchboard").
void SetLogProgramName(const char* name);

class LogMessage {
 public:
  LogMessage(LogSeverity severity, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogSeverity severity_;
  std::ostringstream stream_;
};

// Turns a stream expression into void for SB_LOG's conditional.
struct LogVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace switchboard

#define SB_LOG_SEVERITY_DEBUG ::switchboard::LogSeverity::kDebug
#define SB_LOG_SEVERITY_INFO ::switchboard::LogSeverity::kInfo
#define SB_LOG_SEVERITY_WARNING ::switchboard::LogSeverity::kWarning
#define SB_LOG_SEVERITY_ERROR ::switchboard::LogSeverity::kError

// An expression (glog's "voidify" idiom), so it is safe under an unbraced if/else:
// `<<` binds tighter than `&`, which binds tighter than `?:`.
#define SB_LOG(level)                                         \
  (SB_LOG_SEVERITY_##level < ::switchboard::MinLogSeverity()) \
      ? (void)0                                               \
      : ::switchboard::LogVoidify() & ::switchboard::LogMessage(SB_LOG_SEVERITY_##level, __FILE__, __LINE__).stream()

#endif  // SWITCHBOARD_COMMON_LOG_H_
