#include "common/net.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace switchboard {

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text) {
  HostPort hp;
  absl::string_view port_part;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == absl::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrCat("bad address '", text, "': want [host]:port"));
    }
    hp.host = std::string(text.substr(1, close - 1));
    port_part = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("bad address '", text, "': want host:port"));
    }
    hp.host = std::string(text.substr(0, colon));
    port_part = text.substr(colon + 1);
  }
  if (hp.host.empty()) hp.host = "0.0.0.0";
  if (!absl::SimpleAtoi(port_part, &hp.port) || hp.port < 0 || hp.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in '", text, "'"));
  }
  return hp;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Rejoin a control plane within about a second of its return (gRPC's default backoff
  // grows to two minutes). Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC also uses it as the
  // time one connection attempt may take (default 20 s); at 100 ms, a handshake slower
  // than that (a distant control plane, a loaded one) never completed and sbctl failed
  // with "connection attempt timed out before receiving SETTINGS frame".
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

void WarnIfPlaintextImplicit(bool insecure_flag) {
  if (!insecure_flag) {
    SB_LOG(WARNING) << "using plaintext gRPC; pass --insecure to say so explicitly "
                       "(it will be required once TLS is supported)";
  }
}

}  // namespace switchboard
