// sbctl completion SHELL: a completion script generated from the command line itself, so
// that it always knows every subcommand and flag.
#ifndef SWITCHBOARD_CLI_COMPLETION_H_
#define SWITCHBOARD_CLI_COMPLETION_H_

#include <ostream>
#include <string>

#include "CLI/CLI.hpp"

namespace switchboard::cli {

// The metric names sbctl history --metric offers (the control plane is the authority).
inline constexpr const char* kHistoryMetrics =
    "weight slots_busy slots_total queue_depth kv_cache_usage ttft_p95_seconds tokens_per_second circuit "
    "errors_total demand replicas desired";

// Writes the script for `shell` ("bash" only); 2 for another shell.
int RunCompletion(CLI::App* app, const std::string& shell, std::ostream& out, std::ostream& err);

}  // namespace switchboard::cli

#endif  // SWITCHBOARD_CLI_COMPLETION_H_
