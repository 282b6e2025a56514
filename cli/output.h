// What every sbctl command shares: the admin stub with the global deadline, JSON output
// (protobuf's JSON mapping with the proto field names and every field present: the
// stable shapes docs/api.md documents), error messages that say what to do, and the
// duration and time arguments (--since 1h, --since 2026-12-01T03:00:00Z).
#ifndef SWITCHBOARD_CLI_OUTPUT_H_
#define SWITCHBOARD_CLI_OUTPUT_H_

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "google/protobuf/message.h"
#include "grpcpp/client_context.h"
#include "switchboard/v1/admin.grpc.pb.h"

namespace switchboard::cli {

std::unique_ptr<v1::AdminService::Stub> AdminStub(const GlobalOptions& global);
void SetDeadline(grpc::ClientContext* ctx, const GlobalOptions& global);

// The message as JSON (one line when `compact`, else indented).
std::string ToJson(const google::protobuf::Message& message, bool compact = false);

// Prints "sbctl COMMAND: MESSAGE" plus a hint for the usual causes (unreachable control
// plane, no history, unknown pool) and returns 1.
int Fail(const std::string& command, const GlobalOptions& global, const grpc::Status& status, std::ostream& err);

// "90s", "15m", "1h30m", "7d" (days allowed, unlike absl::ParseDuration). Positive only.
absl::StatusOr<absl::Duration> ParseAge(const std::string& text);
// An RFC 3339 time, or an age before `now` ("1h" = an hour ago).
absl::StatusOr<absl::Time> ParseSince(const std::string& text, absl::Time now);

// One character per value, ▁ (the series' minimum) to █ (its maximum).
std::string Sparkline(const std::vector<double>& values);

absl::Time FromProto(const google::protobuf::Timestamp& t);

}  // namespace switchboard::cli

#endif  // SWITCHBOARD_CLI_OUTPUT_H_
