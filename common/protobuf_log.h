// Protobuf's own log lines through the project's log, rate limited.
//
// Protobuf logs an ERROR of its own for every message it parses with a string field that
// is not UTF-8; a peer sending a flood of such messages would otherwise make a flood of
// log lines. This sends protobuf's lines through SB_LOG, at most one per protobuf source
// line per interval, with the count of those held back (common/log_limiter.h).
#ifndef SWITCHBOARD_COMMON_PROTOBUF_LOG_H_
#define SWITCHBOARD_COMMON_PROTOBUF_LOG_H_

#include "absl/time/time.h"

namespace switchboard {

// Installs the handler for the whole process (protobuf has one). Call once from main
// before serving; later calls change nothing.
void RouteProtobufLogs(absl::Duration interval);

}  // namespace switchboard

#endif  // SWITCHBOARD_COMMON_PROTOBUF_LOG_H_
