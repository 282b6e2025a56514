// What switchboard-picker adds to each request. Run: build/bench/picker_benchmark.
//  - BM_DecidePick: the decision alone, over a pool of N endpoints, every endpoint's
//    explanation formatted; BM_DecidePickFacts: the same decision, explanations left to
//    ExplainPick (as the picker decides, formatting only the picks it keeps).
//  - BM_Exchange: one request's whole ext_proc exchange as the picker handles it, without
//    gRPC: request headers, a 2 KB JSON body (full duplex, in two chunks), the pick, the
//    body handed back, the response headers and the outcome.
//  - BM_GrpcExchange: the same over gRPC on loopback, to an in-process picker service,
//    from T client threads each running one stream at a time (T streams open at once);
//    the time per iteration is one request's added latency, p50/p99 in the counters.
#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/picker_workload.h"
#include "benchmark/benchmark.h"
#include "client/pick_decision.h"
#include "grpcpp/grpcpp.h"
#include "picker/exchange.h"
#include "picker/ext_proc_service.h"

namespace switchboard::picker {
namespace {

// The pool of the figures in docs/performance.md: 16 slots, load varying by endpoint.
v1::Assignment Pool(int n) { return bench::PickerBenchPool(n, /*slots_total=*/16, /*varied_load=*/true); }

void DecidePickOver(benchmark::State& state, client::PickDetail detail) {
  std::vector<client::CandidateEndpoint> eps;
  const v1::Assignment pool = Pool(static_cast<int>(state.range(0)));
  for (const auto& e : pool.endpoints()) {
    client::CandidateEndpoint c;
    c.address = e.address();
    c.load.weight = e.weight();
    c.load.slots_total = e.slots_total();
    c.load.slots_free = e.slots_free();
    c.load.prefill_tokens_per_second = e.prefill_tokens_per_second();
    c.load.decode_tokens_per_second = e.decode_tokens_per_second();
    eps.push_back(c);
  }
  std::mt19937_64 rng(1);
  client::PickRequest r;
  r.prompt_tokens = 500;
  const client::PickPolicy policy;
  for (auto _ : state) benchmark::DoNotOptimize(client::DecidePick(eps, r, policy, rng, detail));
  state.SetItemsProcessed(state.iterations());
}
void BM_DecidePick(benchmark::State& state) { DecidePickOver(state, client::PickDetail::kExplained); }
void BM_DecidePickFacts(benchmark::State& state) { DecidePickOver(state, client::PickDetail::kFacts); }
BENCHMARK(BM_DecidePick)->Arg(8)->Arg(64);
BENCHMARK(BM_DecidePickFacts)->Arg(8)->Arg(64);

void BM_Exchange(benchmark::State& state) {
  PoolTable table({}, client::PickPolicy(), 1);
  (void)table.Apply(Pool(8));
  ExchangeOptions options;
  auto metrics = MakePickerMetrics();
  const std::vector<ext_proc::ProcessingRequest> messages = bench::PickerRequestMessages();
  for (auto _ : state) {
    Exchange x(&table, &options, metrics.get());
    for (const auto& m : messages) benchmark::DoNotOptimize(x.Handle(m));
  }
  (void)table.TakeOutcomes();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Exchange);

struct InProcessPicker {
  InProcessPicker()
      : table({}, client::PickPolicy(), 1), metrics(MakePickerMetrics()), service(&table, &options, metrics.get()) {
    (void)table.Apply(Pool(8));
    grpc::ServerBuilder builder;
    builder.RegisterService(&service);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    server = builder.BuildAndStart();
    channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  }
  PoolTable table;
  ExchangeOptions options;
  std::unique_ptr<PickerMetrics> metrics;
  ExtProcService service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
  std::shared_ptr<grpc::Channel> channel;
};

InProcessPicker& Picker() {
  static InProcessPicker* picker = new InProcessPicker();
  return *picker;
}

void BM_GrpcExchange(benchmark::State& state) {
  auto stub = ext_proc::ExternalProcessor::NewStub(Picker().channel);
  const std::vector<ext_proc::ProcessingRequest> messages = bench::PickerRequestMessages();
  std::vector<double> latencies_us;
  for (auto _ : state) {
    const auto started = std::chrono::steady_clock::now();
    grpc::ClientContext ctx;
    auto stream = stub->Process(&ctx);
    ext_proc::ProcessingResponse r;
    // Envoy's order: headers and body go out at once; the pick and the body come back;
    // the response headers go out after the upstream answered.
    for (int i = 0; i < 3; ++i) stream->Write(messages[i]);
    for (int i = 0; i < 2; ++i) stream->Read(&r);  // The pick; the body handed back.
    latencies_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count());
    stream->Write(messages[3]);
    stream->Read(&r);
    stream->WritesDone();
    (void)stream->Finish();
  }
  std::sort(latencies_us.begin(), latencies_us.end());
  auto q = [&](double p) {
    return latencies_us.empty() ? 0 : latencies_us[static_cast<size_t>(p * (latencies_us.size() - 1))];
  };
  state.counters["pick_p50_us"] = benchmark::Counter(q(0.5), benchmark::Counter::kAvgThreads);
  state.counters["pick_p99_us"] = benchmark::Counter(q(0.99), benchmark::Counter::kAvgThreads);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GrpcExchange)->Threads(1)->Threads(16)->Threads(64)->UseRealTime();

}  // namespace
}  // namespace switchboard::picker
