#include "controlplane/metrics.h"

#include <sqlite3.h>

#include <filesystem>

#include "gtest/gtest.h"
#include "prometheus/metric_family.h"

namespace switchboard::controlplane {
namespace {

// The value of the one-sample family `name` in `families`, or -1 when it is absent.
double CounterValue(const std::vector<prometheus::MetricFamily>& families, const std::string& name) {
  for (const prometheus::MetricFamily& f : families) {
    if (f.name == name && f.metric.size() == 1) return f.metric[0].counter.value;
  }
  return -1;
}

TEST(HistoryMetricsTest, ShowTheStoresOwnCounts) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "metrics_history";
  std::filesystem::remove_all(dir);
  const std::string path = (dir / "history.db").string();
  auto store = HistoryStore::Open(path, /*queue_limit=*/1);
  ASSERT_TRUE(store.ok()) << store.status();
  std::shared_ptr<prometheus::Collectable> metrics = MakeHistoryMetrics(store->get());
  EXPECT_EQ(CounterValue(metrics->Collect(), "switchboard_history_write_errors_total"), 0);

  // A write error, injected by dropping a table from another connection.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE events", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  (*store)->RecordEvent({absl::FromUnixMillis(1), "endpoint_joined", "m", "n", "a:1", ""});
  (*store)->Flush();
  ASSERT_EQ((*store)->write_errors(), 1u);
  EXPECT_EQ(CounterValue(metrics->Collect(), "switchboard_history_write_errors_total"), 1);

  // Drops, with the writer held and a queue of 1: the second sample pushes out the first.
  (*store)->PauseWriter();
  (*store)->RecordSample({absl::FromUnixSeconds(1'800'000'000), "m", 1, 1, 1});
  (*store)->RecordSample({absl::FromUnixSeconds(1'800'000'015), "m", 1, 1, 1});
  (*store)->ResumeWriter();
  (*store)->Flush();
  bool found = false;
  for (const prometheus::MetricFamily& f : metrics->Collect()) {
    if (f.name != "switchboard_history_dropped_total") continue;
    found = true;
    ASSERT_EQ(f.metric.size(), 4u);  // sample, snapshot, scaling_state, endpoint_sample.
    for (const prometheus::ClientMetric& m : f.metric) {
      ASSERT_EQ(m.label.size(), 1u);
      EXPECT_EQ(m.counter.value, m.label[0].value == "sample" ? 1 : 0) << m.label[0].value;
    }
  }
  EXPECT_TRUE(found);
  store->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace switchboard::controlplane
