// The baseline for picker_load: an ext_proc server on the same protocol and with the same
// message pattern as switchboard-picker, that does nothing but answer. Full duplex: once
// the request body's last chunk arrives it answers the request headers with a fixed
// x-gateway-destination-endpoint (header and envoy.lb metadata, as the picker's pick),
// then hands the body back in one streamed body response; the response headers are
// answered at once. No JSON parse, no pool table, no metrics: what a request costs over
// gRPC on this machine when picking costs nothing. Other body modes: each message is
// answered at once (the headers with the destination).
#ifndef SWITCHBOARD_BENCH_BARE_EXT_PROC_H_
#define SWITCHBOARD_BENCH_BARE_EXT_PROC_H_

#include <string>

#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"

namespace switchboard::bench {

namespace ext_proc = ::envoy::service::ext_proc::v3;

class BareExtProcService final : public ext_proc::ExternalProcessor::CallbackService {
 public:
  explicit BareExtProcService(const std::string& destination);

  grpc::ServerBidiReactor<ext_proc::ProcessingRequest, ext_proc::ProcessingResponse>* Process(
      grpc::CallbackServerContext* context) override;

 private:
  // Built once and written by reference on every stream.
  ext_proc::ProcessingResponse headers_answer_;
  ext_proc::ProcessingResponse response_headers_answer_;
  ext_proc::ProcessingResponse continue_body_;
};

}  // namespace switchboard::bench

#endif  // SWITCHBOARD_BENCH_BARE_EXT_PROC_H_
