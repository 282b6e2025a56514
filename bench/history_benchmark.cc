// History write and query speed (docs/performance.md, "History").
//
//   history_benchmark [ENDPOINTS_WRITE [SECONDS [WEEK_ENDPOINTS]]]
//
// 1. Writes: ENDPOINTS_WRITE endpoints (default 10,000, pools of 50) report once a
//    second for SECONDS seconds of sample time (default 60), recorded as the reconciler
//    does (one queue item per pool pass), as fast as the writer takes them. Prints the
//    writer's CPU per second of sample time: under 0.5 means it keeps up at half a core.
// 2. Queries: WEEK_ENDPOINTS endpoints (default 200) with a week of samples, one a
//    minute (so the per-minute and hourly tiers are full), then a 24 h query of one pool
//    at 1-minute steps, timed; and the database size per endpoint-week.
#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "controlplane/history/history_store.h"

namespace {

using switchboard::controlplane::EndpointSample;
using switchboard::controlplane::HistoryOptions;
using switchboard::controlplane::HistoryQuery;
using switchboard::controlplane::HistoryStore;

double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

std::vector<EndpointSample> Pool(int pool, int size, absl::Time t) {
  std::vector<EndpointSample> out;
  for (int i = 0; i < size; ++i) {
    EndpointSample s;
    s.time = t;
    s.pool = absl::StrCat("pool-", pool);
    s.node_id = absl::StrCat("node-", pool * size + i);
    s.address = absl::StrCat("10.", pool / 250, ".", pool % 250, ".", i, ":8000");
    s.slots_total = 8;
    s.slots_busy = (i + absl::ToUnixSeconds(t)) % 9;
    s.queue_depth = i % 3;
    s.kv_cache_usage = 0.4;
    s.ttft_p95_seconds = 0.2;
    s.tokens_per_second = 400 + i;
    s.weight = 64 + i % 64;
    s.circuit = 1;
    s.errors_total = 7;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const int endpoints = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 60;
  const int week_endpoints = argc > 3 ? std::atoi(argv[3]) : 200;
  constexpr int kPoolSize = 50;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "switchboard_history_benchmark";
  std::filesystem::remove_all(dir);
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000 / 3600 * 3600);

  {  // 1. Writes.
    HistoryOptions options;
    options.queue_limit = 1'000'000;  // Measure the writer, not drops.
    auto store = HistoryStore::Open((dir / "write.db").string(), options);
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
      return 1;
    }
    const double cpu0 = ProcessCpuSeconds(), producer0 = ThreadCpuSeconds();
    const auto wall0 = std::chrono::steady_clock::now();
    double producer = 0;
    for (int s = 0; s < seconds; ++s) {
      const absl::Time t = t0 + absl::Seconds(s);
      for (int p = 0; p * kPoolSize < endpoints; ++p) (*store)->RecordEndpointSamples(Pool(p, kPoolSize, t));
      producer = ThreadCpuSeconds() - producer0;
      (*store)->Flush();  // One second's reports at a time, as they would arrive.
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const double writer_cpu = ProcessCpuSeconds() - cpu0 - producer;
    std::printf(
        "writes: %d endpoints x %d s of reports = %.0f samples in %.2f s wall; writer CPU %.2f s = %.3f cores "
        "at one report per endpoint per second (dropped %llu, write errors %llu)\n",
        endpoints, seconds, 1.0 * endpoints * seconds, wall, writer_cpu, writer_cpu / seconds,
        static_cast<unsigned long long>((*store)->dropped_endpoint_samples()),
        static_cast<unsigned long long>((*store)->write_errors()));
  }

  {  // 2. A week of data, then a 24 h query.
    HistoryOptions options;
    options.queue_limit = 1'000'000;
    const std::string path = (dir / "week.db").string();
    auto store = HistoryStore::Open(path, options);
    if (!store.ok()) return 1;
    const int minutes = 7 * 24 * 60;
    const auto fill0 = std::chrono::steady_clock::now();
    for (int m = 0; m < minutes; ++m) {
      const absl::Time t = t0 + absl::Minutes(m);
      for (int p = 0; p * kPoolSize < week_endpoints; ++p) (*store)->RecordEndpointSamples(Pool(p, kPoolSize, t));
      if (m % 60 == 59) (*store)->Flush();
    }
    (*store)->Flush();
    const double fill = std::chrono::duration<double>(std::chrono::steady_clock::now() - fill0).count();
    HistoryQuery q;
    q.pool = "pool-0";
    q.metric = "weight";
    q.until = t0 + absl::Minutes(minutes);
    q.since = q.until - absl::Hours(24);
    q.step = absl::Minutes(1);
    double best = 1e9, worst = 0;
    size_t points = 0;
    for (int i = 0; i < 20; ++i) {
      const auto a = std::chrono::steady_clock::now();
      auto series = (*store)->Query(q);
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
      if (!series.ok()) return 1;
      points = 0;
      for (const auto& s : *series) points += s.points.size();
      best = std::min(best, ms);
      worst = std::max(worst, ms);
    }
    store->reset();
    std::error_code ec;
    const double bytes = std::filesystem::file_size(path, ec) + std::filesystem::file_size(path + "-wal", ec);
    std::printf(
        "query: 24 h of pool-0 (%d endpoints) at 1-minute steps, %zu points, with a week of %d endpoints "
        "(filled in %.1f s): best %.1f ms, worst %.1f ms over 20 runs\n",
        kPoolSize, points, week_endpoints, fill, best, worst);
    std::printf(
        "size: %.1f MiB for %d endpoint-weeks = %.0f KiB per endpoint-week (one sample a minute; the "
        "raw hour at one a second adds about 3600 rows per endpoint)\n",
        bytes / 1048576, week_endpoints, bytes / 1024 / week_endpoints);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
