// envoy.service.ext_proc.v3.ExternalProcessor on gRPC's callback API: a thin adapter
// that feeds each stream's messages to an Exchange (picker/exchange.h) and writes its
// answers in order. Reactors never block: a pick takes the pool table's mutex briefly, and
// the rate limit check before it is an asynchronous call that resumes the stream.
#ifndef SWITCHBOARD_PICKER_EXT_PROC_SERVICE_H_
#define SWITCHBOARD_PICKER_EXT_PROC_SERVICE_H_

#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
#include "picker/exchange.h"

namespace switchboard::picker {

class ExtProcService final : public ext_proc::ExternalProcessor::CallbackService {
 public:
  // Borrows all three; they outlive the server.
  ExtProcService(PoolTable* table, const ExchangeOptions* options, PickerMetrics* metrics)
      : table_(table), options_(options), metrics_(metrics) {}

  grpc::ServerBidiReactor<ext_proc::ProcessingRequest, ext_proc::ProcessingResponse>* Process(
      grpc::CallbackServerContext* context) override;

 private:
  PoolTable* const table_;
  const ExchangeOptions* const options_;
  PickerMetrics* const metrics_;
};

}  // namespace switchboard::picker

#endif  // SWITCHBOARD_PICKER_EXT_PROC_SERVICE_H_
