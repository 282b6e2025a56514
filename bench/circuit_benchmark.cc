// The circuit breakers' share of a reconcile pass: DecidePoolCircuits over one pool, with
// every evidence source moving at every pass (the worst case for the windows), at the
// reconciler's busiest rate (a pass every 50 ms). Run: build/bench/circuit_benchmark.
#include "benchmark/benchmark.h"
#include "controlplane/policy/circuit.h"

namespace switchboard::controlplane::policy {
namespace {

void BM_DecidePoolCircuits(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  std::vector<CircuitInput> inputs(n);
  for (CircuitInput& in : inputs) {
    in.state = v1::ENDPOINT_STATE_READY;
    in.reported = true;
    in.report_age = absl::Milliseconds(100);
    in.errors_counted = true;
  }
  std::vector<CircuitMemory> memories;
  const CircuitConfig config;
  absl::Time now = absl::FromUnixSeconds(1000);
  int64_t pass = 0;
  for (auto _ : state) {
    now += absl::Milliseconds(50);
    ++pass;
    for (int i = 0; i < n; ++i) {
      inputs[i].requests_total += 3;
      inputs[i].errors_total += i % 7 == 0;
      inputs[i].gateway_requests_total += 2;
      if (pass % 100 == 0) ++inputs[i].checks_total;  // One check per 5 s.
    }
    benchmark::DoNotOptimize(DecidePoolCircuits(inputs, &memories, config, now));
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_DecidePoolCircuits)->Arg(100)->Arg(1000)->Arg(10000);

}  // namespace
}  // namespace switchboard::controlplane::policy
