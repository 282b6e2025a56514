// A short `switchboard-loadgen bench` run against the real control plane and the bare
// server: it runs, every client connects, markers reach every subscriber, the bare server
// sends as many messages as the control plane, and --json is well-formed with the
// figures docs/performance.md quotes. No timing is asserted: the
// figures themselves come from longer runs on a quiet machine.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace {

std::string RunCommand(const std::string& command, int* status) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

// Runs `switchboard-loadgen bench <args> --json`: a failed run or output that is not
// JSON is a test failure and gives a discarded value.
nlohmann::json RunBench(const std::string& args) {
  int status = -1;
  const std::string out = RunCommand(std::string(SWITCHBOARD_LOADGEN) + " bench " + args + " --json", &status);
  if (status != 0) {
    ADD_FAILURE() << "exit status " << status << ": " << out;
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
  nlohmann::json j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) ADD_FAILURE() << "not JSON: " << out;
  return j;
}

TEST(LoadgenBenchTest, ShortRunPrintsBothTargetsAsJson) {
  const nlohmann::json j = RunBench(
      "--agents 20 --endpoints-per-agent 2 --pools 2 --subscribers 5 --duration 2s --warmup 500ms"
      " --marker-interval 200ms");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["config"]["agents"], 20);
  for (const char* side : {"switchboard", "bare"}) {
    SCOPED_TRACE(side);
    const nlohmann::json& r = j[side];
    EXPECT_EQ(r["agents_connected"], 20);
    EXPECT_EQ(r["subscribers_connected"], 5);
    EXPECT_GT(r["reports_per_s"].get<double>(), 0);
    EXPECT_GT(r["cpu_us_per_report"].get<double>(), 0);
    EXPECT_GT(r["rss_mib"].get<double>(), 0);
    EXPECT_GT(r["markers_complete"].get<int>(), 0);
    EXPECT_GE(r["push_to_last_p99_ms"].get<double>(), r["push_to_last_p50_ms"].get<double>());
    EXPECT_GT(r["pushes_per_s"].get<double>(), 0);
    EXPECT_EQ(r["rejects"], 0);
    EXPECT_EQ(r["errors"], 0);
  }
  EXPECT_TRUE(j["ratio"].contains("reports_per_s"));
  EXPECT_TRUE(j["ratio"].contains("push_to_last_p99_ms"));
  // The history database served the run and is gone; the server's log stays.
  ASSERT_TRUE(j["switchboard"]["history_db"].is_string());
  EXPECT_FALSE(std::filesystem::exists(j["switchboard"]["history_db"].get<std::string>()));
  EXPECT_TRUE(std::filesystem::exists(j["switchboard"]["log"].get<std::string>()));
}

// --subscriber-acks: every subscriber ACKs what it reads (at most one ACK per assignment:
// while a write is in flight only the newest waits), and the pushes still arrive.
TEST(LoadgenBenchTest, SubscribersThatAckStillGetMarkers) {
  const nlohmann::json j = RunBench(
      "--agents 20 --endpoints-per-agent 2 --pools 2 --subscribers 5 --subscriber-acks --no-baseline"
      " --duration 2s --warmup 500ms --marker-interval 200ms");
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["config"]["subscriber_acks"], true);
  const nlohmann::json& r = j["switchboard"];
  EXPECT_EQ(r["subscribers_connected"], 5);
  EXPECT_GT(r["acks_per_s"].get<double>(), 0);
  // At most one ACK per assignment read; the window may cut between a read and its ACK
  // once per subscriber.
  const double seconds = r["seconds"].get<double>();
  EXPECT_LE(r["acks_per_s"].get<double>() * seconds, r["pushes_per_s"].get<double>() * seconds + 5);
  EXPECT_GT(r["markers_complete"].get<int>(), 0);
  EXPECT_EQ(r["errors"], 0);
}

// The bare broadcaster sends each subscriber as many messages a second as the control
// plane did (the same bytes), not only the markers; --bare-markers-only keeps the old
// baseline. Every endpoint's load changes in every report, so the control plane pushes
// far more often than the one marker a second.
TEST(LoadgenBenchTest, BareBroadcasterSendsAsManyMessagesAsTheControlPlane) {
  const std::string run =
      "--agents 40 --endpoints-per-agent 2 --pools 2 --subscribers 5 --change-probability 1 --duration 2s"
      " --warmup 500ms --marker-interval 1s";
  for (const bool markers_only : {false, true}) {
    SCOPED_TRACE(markers_only ? "--bare-markers-only" : "default");
    const nlohmann::json j = RunBench(run + (markers_only ? " --bare-markers-only" : ""));
    ASSERT_FALSE(j.is_discarded());
    const std::string out = j.dump();
    const double switchboard = j["switchboard"]["pushes_per_s"].get<double>();
    const double bare = j["bare"]["pushes_per_s"].get<double>();
    const double per_subscriber = switchboard / 5;
    ASSERT_GT(per_subscriber, 4) << "the control plane should push several versions a second here: " << out;
    if (markers_only) {
      EXPECT_EQ(j["config"]["bare_broadcasts_per_s"].get<double>(), 0);
      EXPECT_LE(bare / 5, 2) << out;  // One marker a second (a window may hold two).
    } else {
      EXPECT_NEAR(j["config"]["bare_broadcasts_per_s"].get<double>(), per_subscriber, 1e-6);
      EXPECT_GT(bare, 0.7 * switchboard) << out;
      EXPECT_LT(bare, 1.3 * switchboard) << out;
    }
  }
}

// Agents the control plane refuses (--max-nodes 5 of 20) end their streams at once. The
// run's pacer keeps asking every agent to report; a refused one sends nothing more (a
// write on its ended call was a use after free, which ASan/UBSan builds catch), its end
// counts as a reject, and the run finishes without waiting for it to connect.
TEST(LoadgenBenchTest, RefusedAgentsAreCountedAndTheRunFinishes) {
  const nlohmann::json j = RunBench(
      "--agents 20 --endpoints-per-agent 2 --pools 2 --subscribers 2 --no-baseline --duration 2s --warmup 500ms"
      " --controlplane-arg=--max-nodes=5");
  ASSERT_FALSE(j.is_discarded());
  const nlohmann::json& r = j["switchboard"];
  EXPECT_EQ(r["agents_connected"], 5);
  EXPECT_EQ(r["rejects"], 15) << r.dump();
  EXPECT_GT(r["reports_per_s"].get<double>(), 0);
}

TEST(LoadgenBenchTest, BadFlagsAreRefused) {
  int status = -1;
  RunCommand(std::string(SWITCHBOARD_LOADGEN) + " bench --agents 0 2>&1", &status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  RunCommand(std::string(SWITCHBOARD_LOADGEN) + " bench --duration soon 2>&1", &status);
  EXPECT_EQ(WEXITSTATUS(status), 2);
}

}  // namespace
