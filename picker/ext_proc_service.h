// envoy.service.ext_proc.v3.ExternalProcessor on gRPC's callback API: a thin adapter
// that feeds each stream's messages to an Exchange (picker/exchange.h) and writes its
// answers in order. Reactors never block: a pick takes the pool table's mutex briefly, and
// the rate limit check before it is an asynchronous call that resumes the stream.
#ifndef SWITCHBOARD_PICKER_EXT_PROC_SERVICE_H_
#define SWITCHBOARD_PICKER_EXT_PROC_SERVICE_H_

#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
#include "grpcpp/server_builder.h"
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

// The server settings the picker's ext_proc port runs with (switchboard-picker and the
// benchmarks): an Envoy opens a stream per HTTP request and exchanges a few small messages
// on each, so HTTP/2 BDP probing, which pings after data frames to size the window,
// would add a ping round trip to many of them and buys nothing.
void ConfigureExtProcServer(grpc::ServerBuilder* builder);

// Keeps freed heap memory in the process instead of handing it back to the kernel at once
// (process-wide: call once at start-up). Every ext_proc stream allocates and frees gRPC
// call arenas and messages; glibc trims its heaps whenever 128 KiB at their top are free,
// so a few thousand streams a second grow and shrink them without end, and each growth
// page-faults its memory in again (a fifth of the picker's CPU under load, by perf). With
// this, up to 64 MiB of free memory per heap stays mapped for the next streams.
void KeepFreedMemoryForStreams();

}  // namespace switchboard::picker

#endif  // SWITCHBOARD_PICKER_EXT_PROC_SERVICE_H_
