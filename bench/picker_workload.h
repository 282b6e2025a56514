// The pool and the request that the picker's benchmarks (picker_benchmark, picker_load)
// both use, so that their figures describe the same work.
#ifndef SWITCHBOARD_BENCH_PICKER_WORKLOAD_H_
#define SWITCHBOARD_BENCH_PICKER_WORKLOAD_H_

#include <cstdint>
#include <vector>

#include "envoy/service/ext_proc/v3/external_processor.pb.h"
#include "switchboard/v1/discovery.pb.h"

namespace switchboard::bench {

// Pool "llama" of `endpoints` ready endpoints, one per node, with weights and measured
// speeds that vary from endpoint to endpoint. Each has `slots_total` slots; with
// `varied_load` the free slots and queue differ by endpoint, else half the slots are free
// and nothing is queued.
v1::Assignment PickerBenchPool(int endpoints, uint32_t slots_total, bool varied_load);

// One chat completion as Envoy's ext_proc filter sends it: the request headers, a 2 KB
// JSON body in two chunks (full duplex), then the response headers.
std::vector<envoy::service::ext_proc::v3::ProcessingRequest> PickerRequestMessages();

}  // namespace switchboard::bench

#endif  // SWITCHBOARD_BENCH_PICKER_WORKLOAD_H_
