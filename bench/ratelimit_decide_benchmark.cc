// The limiter's own cost per call (DecideRateLimit, no gRPC): one descriptor of 1,000
// tenants, limits per second, minute and hour, time advancing 50 us a call (20,000
// calls/s), so that the windows hold what they would at that rate.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "controlplane/ratelimit/sliding_window.h"

namespace {

using namespace switchboard::controlplane::ratelimit;  // NOLINT

void BM_DecideRateLimit(benchmark::State& state) {
  RateLimitConfig config;
  config.rules.push_back({"per-tenant",
                          {{"tenant", "*"}, {"model", "*"}},
                          {{Unit::kRequests, 1, 15}, {Unit::kRequests, 60, 900}, {Unit::kTokens, 3600, 1000000}}});
  const int tenants = static_cast<int>(state.range(0));
  std::vector<std::vector<Descriptor>> calls;
  for (int t = 0; t < tenants; ++t) calls.push_back({Descriptor{{{"tenant", absl::StrCat("t", t)}, {"model", "m"}}}});
  RateLimitCounters counters;
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  size_t i = 0;
  int64_t over = 0;
  for (auto _ : state) {
    auto d = DecideRateLimit(calls[i++ % calls.size()], 1, &counters, config, now);
    over += d->overall == Code::kOverLimit;
    now += absl::Microseconds(50);
  }
  state.counters["over_limit_share"] = static_cast<double>(over) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_DecideRateLimit)->Arg(1000)->Arg(10000);

}  // namespace
