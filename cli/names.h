// Short display names for enums in sbctl output.
#ifndef SWITCHBOARD_CLI_NAMES_H_
#define SWITCHBOARD_CLI_NAMES_H_

#include <string>

#include "switchboard/v1/common.pb.h"

namespace switchboard::cli {

// "ENDPOINT_STATE_READY" -> "READY", "CIRCUIT_STATE_HALF_OPEN" -> "HALF_OPEN", ...
std::string ShortName(v1::EndpointState s);
std::string ShortName(v1::CircuitState s);
std::string ShortName(v1::LbPolicy p);
std::string ShortName(v1::Engine e);

}  // namespace switchboard::cli

#endif  // SWITCHBOARD_CLI_NAMES_H_
