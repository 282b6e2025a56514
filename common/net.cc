#include "common/net.h"

#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/log.h"
#include "common/mutex.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/client_interceptor.h"

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

// Adds `authorization: Bearer TOKEN` to every call's initial metadata. An interceptor
// rather than call credentials, which gRPC refuses to send over a plaintext channel
// (tests and the demo run plaintext with tokens).
class BearerTokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BearerTokenInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", *header_});
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;  // Owned by the factory, which the channel keeps.
};

class BearerTokenInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerTokenInterceptorFactory(const std::string& token) : header_("Bearer " + token) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo* /*info*/) override {
    return new BearerTokenInterceptor(&header_);
  }

 private:
  const std::string header_;
};

struct ClientDefaults {
  Mutex mu;
  std::shared_ptr<grpc::ChannelCredentials> credentials ABSL_GUARDED_BY(mu);
  std::string server_name ABSL_GUARDED_BY(mu);
  std::string bearer_token ABSL_GUARDED_BY(mu);
};

ClientDefaults& Defaults() {
  static ClientDefaults* defaults = new ClientDefaults();  // Never destroyed: used until exit.
  return *defaults;
}

std::shared_ptr<grpc::Channel> Make(const std::string& target, grpc::ChannelArguments args) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  std::string token;
  {
    ClientDefaults& d = Defaults();
    MutexLock lock(&d.mu);
    credentials = d.credentials;
    token = d.bearer_token;
    if (!d.server_name.empty()) args.SetSslTargetNameOverride(d.server_name);
  }
  if (credentials == nullptr) credentials = grpc::InsecureChannelCredentials();
  if (token.empty()) return grpc::CreateCustomChannel(target, credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<BearerTokenInterceptorFactory>(token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(target, credentials, args, std::move(interceptors));
}

}  // namespace

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) { return Make(target, StreamArguments()); }

std::shared_ptr<grpc::Channel> MakeDedicatedChannel(const std::string& target) {
  grpc::ChannelArguments args = StreamArguments();
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return Make(target, std::move(args));
}

void SetClientChannelDefaults(std::shared_ptr<grpc::ChannelCredentials> credentials, const std::string& server_name,
                              const std::string& bearer_token) {
  ClientDefaults& d = Defaults();
  MutexLock lock(&d.mu);
  d.credentials = std::move(credentials);
  d.server_name = server_name;
  d.bearer_token = bearer_token;
}

void WarnIfPlaintextImplicit(bool insecure_flag) {
  if (!insecure_flag) {
    SB_LOG(WARNING) << "using plaintext gRPC; pass --insecure to say so explicitly (see docs/security.md)";
  }
}

}  // namespace switchboard
