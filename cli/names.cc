#include "cli/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace switchboard::cli {
namespace {

std::string Strip(const std::string& full, const std::string& prefix) {
  return absl::StartsWith(full, prefix) ? full.substr(prefix.size()) : full;
}

}  // namespace

std::string ShortName(v1::EndpointState s) { return Strip(v1::EndpointState_Name(s), "ENDPOINT_STATE_"); }
std::string ShortName(v1::CircuitState s) { return Strip(v1::CircuitState_Name(s), "CIRCUIT_STATE_"); }
std::string ShortName(v1::LbPolicy p) { return absl::AsciiStrToLower(Strip(v1::LbPolicy_Name(p), "LB_POLICY_")); }
std::string ShortName(v1::Engine e) { return absl::AsciiStrToLower(Strip(v1::Engine_Name(e), "ENGINE_")); }

}  // namespace switchboard::cli
