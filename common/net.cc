#include "common/net.h"

#include "common/log.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace switchboard {

namespace {

grpc::ChannelArguments StreamArguments() {
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
  return args;
}

}  // namespace

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), StreamArguments());
}

std::shared_ptr<grpc::Channel> MakeDedicatedChannel(const std::string& target) {
  grpc::ChannelArguments args = StreamArguments();
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

void WarnIfPlaintextImplicit(bool insecure_flag) {
  if (!insecure_flag) {
    SB_LOG(WARNING) << "using plaintext gRPC; pass --insecure to say so explicitly "
                       "(it will be required once TLS is supported)";
  }
}

}  // namespace switchboard
