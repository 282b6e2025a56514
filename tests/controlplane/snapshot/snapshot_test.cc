#include "controlplane/snapshot/snapshot.h"

#include <cmath>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane {
namespace {

EndpointView Ep(const std::string& node, const std::string& addr, uint32_t total, uint32_t busy) {
  EndpointView v;
  v.node_id = node;
  v.address = addr;
  v.models = {"m"};
  v.state = v1::ENDPOINT_STATE_READY;
  v.reported = true;
  v.connected = true;
  v.slots_total = total;
  v.slots_busy = busy;
  v.report_age = absl::Milliseconds(100);
  return v;
}

const absl::Time kNow = absl::FromUnixSeconds(2000);

TEST(SnapshotTest, SameContentSameVersionWhateverTheTime) {
  auto a = BuildSnapshot("m", {Ep("n1", "a:1", 4, 0), Ep("n2", "b:1", 4, 1)}, nullptr, {}, kNow);
  auto b = BuildSnapshot("m", {Ep("n1", "a:1", 4, 0), Ep("n2", "b:1", 4, 1)}, nullptr, {}, kNow + absl::Hours(3));
  EXPECT_EQ(a->version, b->version);
  EXPECT_EQ(a->version.size(), 16u);
  EXPECT_EQ(a->assignment.version(), a->version);
  EXPECT_NE(a->assignment.generated_at().seconds(), b->assignment.generated_at().seconds());
}

TEST(SnapshotTest, VersionIsStableAcrossProcesses) {
  // A golden value: if this changes, every replica and restarted control plane would
  // announce a new version for unchanged content. Update only with a schema change.
  auto a = BuildSnapshot("m", {Ep("n1", "a:1", 4, 0)}, nullptr, {}, kNow);
  EXPECT_EQ(a->version, "2624427599b5034d");
  EXPECT_EQ(ComputeVersion(a->assignment), a->version) << "version fields are excluded from the hash";
}

TEST(SnapshotTest, MaterialChangesMakeANewVersion) {
  auto base = BuildSnapshot("m", {Ep("n1", "a:1", 4, 0), Ep("n2", "b:1", 4, 0)}, nullptr, {}, kNow);
  std::vector<std::vector<EndpointView>> variants;
  variants.push_back({Ep("n1", "a:1", 4, 0)});                         // endpoint left
  variants.push_back({Ep("n1", "a:1", 4, 3), Ep("n2", "b:1", 4, 0)});  // slots/weight moved
  auto unhealthy = Ep("n2", "b:1", 4, 0);
  unhealthy.state = v1::ENDPOINT_STATE_UNHEALTHY;
  unhealthy.probe_error = "connection refused";
  variants.push_back({Ep("n1", "a:1", 4, 0), unhealthy});  // circuit opened
  auto labelled = Ep("n2", "b:1", 4, 0);
  labelled.labels["gpu"] = "a100";
  variants.push_back({Ep("n1", "a:1", 4, 0), labelled});  // label
  for (const auto& v : variants) {
    EXPECT_NE(BuildSnapshot("m", v, nullptr, {}, kNow)->version, base->version);
  }
  EXPECT_NE(BuildSnapshot("other", {Ep("n1", "a:1", 4, 0), Ep("n2", "b:1", 4, 0)}, nullptr, {}, kNow)->version,
            base->version);
}

TEST(SnapshotTest, StaleEndpointIsExcludedWithReason) {
  auto stale = Ep("n2", "b:1", 4, 0);
  stale.report_age = absl::Seconds(30);
  auto snap = BuildSnapshot("m", {Ep("n1", "a:1", 4, 0), stale}, nullptr, {}, kNow);
  EXPECT_GT(snap->assignment.endpoints(0).weight(), 0u);
  EXPECT_EQ(snap->assignment.endpoints(1).weight(), 0u);
  EXPECT_EQ(snap->assignment.endpoints(1).circuit(), v1::CIRCUIT_STATE_OPEN);
  EXPECT_NE(snap->Detail(1).reason().find("stale"), std::string::npos);
  EXPECT_EQ(snap->assignment.desired_replicas(), 1u);
}

TEST(SnapshotTest, DuplicateAddressIsExcludedOnEveryNodeWithReason) {
  auto first = Ep("n1", "127.0.0.1:8080", 4, 0);
  first.duplicate_of = {"n2"};
  auto second = Ep("n2", "127.0.0.1:8080", 4, 0);
  second.duplicate_of = {"n1"};
  auto snap = BuildSnapshot("m", {first, second, Ep("n3", "c:1", 4, 0)}, nullptr, {}, kNow);
  for (int i : {0, 1}) {
    EXPECT_EQ(snap->assignment.endpoints(i).weight(), 0u) << i;
    EXPECT_EQ(snap->assignment.endpoints(i).circuit(), v1::CIRCUIT_STATE_OPEN) << i;
    EXPECT_THAT(snap->Detail(i).reason(), ::testing::HasSubstr("duplicate address"));
  }
  EXPECT_THAT(snap->Detail(0).reason(), ::testing::HasSubstr("node n2"));
  EXPECT_THAT(snap->Detail(1).reason(), ::testing::HasSubstr("node n1"));
  const v1::EndpointStatus detail = snap->Detail(0);
  EXPECT_EQ(std::vector<std::string>(detail.duplicate_of().begin(), detail.duplicate_of().end()),
            std::vector<std::string>{"n2"});
  EXPECT_GT(snap->assignment.endpoints(2).weight(), 0u) << "other endpoints are routed as before";
  EXPECT_EQ(snap->assignment.desired_replicas(), 1u);
}

TEST(SnapshotTest, HysteresisUsesPreviousSnapshot) {
  auto first = BuildSnapshot("m", {Ep("n1", "a:1", 10, 0), Ep("n2", "b:1", 10, 1)}, nullptr, {}, kNow);
  // One more busy slot on b: 115 -> 102 is outside the 10% band, a new weight.
  auto second = BuildSnapshot("m", {Ep("n1", "a:1", 10, 0), Ep("n2", "b:1", 10, 2)}, first.get(), {}, kNow);
  EXPECT_NE(second->assignment.endpoints(1).weight(), first->assignment.endpoints(1).weight());
  // Nothing changed at all: identical version.
  auto third = BuildSnapshot("m", {Ep("n1", "a:1", 10, 0), Ep("n2", "b:1", 10, 2)}, second.get(), {}, kNow);
  EXPECT_EQ(third->version, second->version);
}

// What explain prints for each endpoint is the pool's own LB rule, not the weighted
// formula whatever the rule.
TEST(SnapshotTest, WeightExplanationsFollowThePoolsRule) {
  const std::vector<EndpointView> eps = {Ep("n1", "a:1", 4, 0), Ep("n2", "b:1", 4, 3)};
  const std::pair<policy::WeightRule, const char*> rules[] = {
      {policy::WeightRule::kWeighted, "weighted: capacity"},
      {policy::WeightRule::kRoundRobin, "round robin"},
      {policy::WeightRule::kLeastRequest, "least request"},
      {policy::WeightRule::kSlotBased, "slot based"},
  };
  for (const auto& [rule, text] : rules) {
    policy::PolicyConfig config;
    config.weights.rule = rule;
    auto snap = BuildSnapshot("m", eps, nullptr, config, kNow);
    const std::vector<std::string> explanations = snap->WeightExplanations();
    ASSERT_EQ(explanations.size(), 2u);
    for (const std::string& e : explanations) EXPECT_THAT(e, ::testing::HasSubstr(text)) << text;
  }
}

TEST(SnapshotTest, DetailsAreBuiltFromTheKeptFactsWithEveryField) {
  EndpointView ep = Ep("n1", "a:1", 8, 3);
  ep.engine = v1::ENGINE_VLLM;
  ep.state = v1::ENDPOINT_STATE_UNHEALTHY;
  ep.queue_depth = 2;
  ep.kv_cache_usage = 0.25;
  ep.tokens_per_second = 321.5;
  ep.slot_tokens_per_second = 40.25;
  ep.ttft_p95_seconds = 0.75;
  ep.report_age = absl::Milliseconds(1500);
  ep.probe_error = "connection refused";
  ep.check_error = "HTTP 503";
  ep.checks_total = 7;
  ep.check_failures_total = 2;
  ep.gateway_requests_total = 11;
  ep.gateway_errors_total = 1;
  ep.requests_total = 100;
  ep.errors_total = 4;
  ep.errors_counted = true;
  ep.duplicate_of = {"n9"};
  auto snap = BuildSnapshot("m", {ep, Ep("n2", "b:1", 4, 1)}, nullptr, {}, kNow);
  ASSERT_EQ(snap->size(), 2u);
  const v1::EndpointStatus d = snap->Detail(0);
  EXPECT_EQ(d.address(), "a:1");
  EXPECT_EQ(d.node_id(), "n1");
  EXPECT_EQ(d.engine(), v1::ENGINE_VLLM);
  EXPECT_EQ(d.state(), v1::ENDPOINT_STATE_UNHEALTHY);
  EXPECT_EQ(d.circuit(), v1::CIRCUIT_STATE_OPEN);
  EXPECT_EQ(d.weight(), 0u);
  EXPECT_EQ(d.slots_total(), 8u);
  EXPECT_EQ(d.slots_busy(), 3u);
  EXPECT_EQ(d.queue_depth(), 2u);
  EXPECT_EQ(d.kv_cache_usage(), 0.25);
  EXPECT_EQ(d.tokens_per_second(), 321.5);
  EXPECT_EQ(d.slot_tokens_per_second(), 40.25) << "exact, not rounded as in the assignment";
  EXPECT_EQ(d.ttft_p95_seconds(), 0.75);
  EXPECT_EQ(d.report_age().seconds(), 1);
  EXPECT_EQ(d.report_age().nanos(), 500'000'000);
  EXPECT_EQ(d.probe_error(), "connection refused");
  EXPECT_EQ(d.check_error(), "HTTP 503");
  EXPECT_EQ(d.checks_total(), 7u);
  EXPECT_EQ(d.check_failures_total(), 2u);
  EXPECT_EQ(d.gateway_requests_total(), 11u);
  EXPECT_EQ(d.gateway_errors_total(), 1u);
  EXPECT_EQ(d.requests_total(), 100u);
  EXPECT_EQ(d.errors_total(), 4u);
  EXPECT_TRUE(d.errors_counted());
  ASSERT_EQ(d.duplicate_of_size(), 1);
  EXPECT_EQ(d.duplicate_of(0), "n9");
  EXPECT_THAT(d.reason(), ::testing::HasSubstr("duplicate address"));

  const v1::EndpointStatus healthy = snap->Detail(1);
  EXPECT_EQ(healthy.reason(), "ready");
  EXPECT_EQ(healthy.weight(), snap->assignment.endpoints(1).weight());
  EXPECT_GT(healthy.weight(), 0u);
  EXPECT_TRUE(healthy.probe_error().empty());
  EXPECT_EQ(healthy.duplicate_of_size(), 0);
}

TEST(SnapshotTest, WeightExplanationsOnRequestAreWhatThePolicySaidDuringThePass) {
  // Hysteresis (the previous snapshot's weight) and a half-open cap are inputs of the
  // explanation too: recomputed on request, it must still tell them.
  auto first = BuildSnapshot("m", {Ep("n1", "a:1", 16, 0), Ep("n2", "b:1", 16, 1)}, nullptr, {}, kNow);
  auto second = BuildSnapshot("m", {Ep("n1", "a:1", 16, 0), Ep("n2", "b:1", 16, 0)}, first.get(), {}, kNow);
  std::vector<policy::WeightInput> inputs;
  for (const EndpointFacts& f : second->facts) inputs.push_back(f.weight_input);
  EXPECT_EQ(inputs[1].previous_weight, first->assignment.endpoints(1).weight());
  const policy::PoolWeights direct = policy::ComputeWeights(inputs, policy::PolicyConfig().weights);
  const std::vector<std::string> explained = second->WeightExplanations();
  ASSERT_EQ(explained.size(), 2u);
  for (size_t i = 0; i < explained.size(); ++i) {
    EXPECT_EQ(explained[i], direct.endpoints[i].reason);
    EXPECT_EQ(direct.endpoints[i].weight, second->assignment.endpoints(static_cast<int>(i)).weight());
  }
  EXPECT_THAT(explained[1], ::testing::HasSubstr("kept at the previous"));
}

TEST(SnapshotTest, AnEndpointsKeptFactsStayCompact) {
  // The contract behind "under 4 KiB of live state per endpoint" (docs/performance.md): a
  // snapshot keeps a fixed-size record per endpoint besides its assignment entry, with no
  // heap allocation for a healthy endpoint.
  static_assert(sizeof(EndpointFacts) <= 192, "EndpointFacts grew: the per-endpoint memory budget counts on it");
  auto snap = BuildSnapshot("m", {Ep("n1", "a:1", 8, 0)}, nullptr, {}, kNow);
  const EndpointFacts& f = snap->facts[0];
  EXPECT_EQ(f.rare, nullptr) << "no error strings, no duplicates: nothing allocated for them";
  EXPECT_EQ(f.circuit_reason, "ready");
  EXPECT_LE(f.circuit_reason.capacity(), 15u) << "the common reason fits the string's inline buffer";
}

TEST(SnapshotTest, RestoredSnapshotExplainsItselfFromTheAssignment) {
  auto live = BuildSnapshot("m", {Ep("n1", "a:1", 8, 3)}, nullptr, {}, kNow);
  v1::Assignment stored = live->assignment;
  auto restored = RestoredSnapshot(stored);
  EXPECT_TRUE(restored->assignment.stale());
  ASSERT_EQ(restored->size(), 1u);
  const v1::EndpointStatus d = restored->Detail(0);
  EXPECT_EQ(d.address(), "a:1");
  EXPECT_EQ(d.slots_busy(), 3u);
  EXPECT_EQ(d.weight(), live->assignment.endpoints(0).weight());
  EXPECT_THAT(d.reason(), ::testing::HasSubstr("restored from history"));
  EXPECT_THAT(restored->WeightExplanations(), ::testing::ElementsAre("restored from history after a restart"));
}

TEST(SnapshotTest, AssignmentBytesAreSerializedOnceAndCopiesStartAfresh) {
  std::shared_ptr<const Snapshot> snap = BuildSnapshot("m", {Ep("n1", "a:1", 4, 1)}, nullptr, {}, kNow);
  const std::string& bytes = snap->assignment_bytes.Get(snap->assignment);
  v1::Assignment parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(parsed.version(), snap->version);
  EXPECT_EQ(parsed.endpoints_size(), 1);
  EXPECT_EQ(&snap->assignment_bytes.Get(snap->assignment), &bytes) << "the same bytes, not a second serialization";
  // The bytes are those hashed for the version plus the version fields: the assignment.
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(parsed, snap->assignment));

  Snapshot copy = *snap;  // A copy may change its assignment before it is sent.
  copy.assignment.set_stale(true);
  v1::Assignment copied;
  ASSERT_TRUE(copied.ParseFromString(copy.assignment_bytes.Get(copy.assignment)));
  EXPECT_TRUE(copied.stale());
  ASSERT_TRUE(parsed.ParseFromString(snap->assignment_bytes.Get(snap->assignment)));
  EXPECT_FALSE(parsed.stale());
}

// Speeds are published with two significant digits (noise makes no new version); the
// rounding, from a lookup of the scale, matches the log10 formula over the whole range.
TEST(SnapshotTest, SpeedsAreRoundedToTwoSignificantDigits) {
  auto expected = [](double v) {
    if (!(v > 0) || !std::isfinite(v)) return 0.0;
    const double scale = std::pow(10.0, std::floor(std::log10(v)) - 1);
    return std::round(v / scale) * scale;
  };
  std::vector<double> values = {0,  -5,   std::nan(""), 1e-12, 3.3e-9, 0.0123, 0.95,    1,         9.96,
                                10, 61.7, 99.5,         99.4,  100,    1234.5, 1e6 + 1, 987654321, 3e12};
  for (double v = 1e-10; v < 1e13; v *= 1.37) values.push_back(v);
  for (double v : values) {
    EndpointView ep = Ep("n1", "a:1", 4, 0);
    ep.slot_tokens_per_second = v;
    ep.prefill_tokens_per_second = v * 3;
    auto snap = BuildSnapshot("m", {ep}, nullptr, {}, kNow);
    EXPECT_EQ(snap->assignment.endpoints(0).decode_tokens_per_second(), expected(v)) << v;
    EXPECT_EQ(snap->assignment.endpoints(0).prefill_tokens_per_second(), expected(v * 3)) << v * 3;
  }
  EndpointView ep = Ep("n1", "a:1", 4, 0);
  ep.slot_tokens_per_second = 1234.5;
  EXPECT_EQ(BuildSnapshot("m", {ep}, nullptr, {}, kNow)->assignment.endpoints(0).decode_tokens_per_second(), 1200);
}

}  // namespace
TEST(SnapshotTest, BreakerMemoriesFollowTheirEndpointsAndForgetTheOnesThatLeft) {
  policy::PolicyConfig config;
  config.circuit.staleness_bound = absl::Seconds(5);
  CircuitMemories memories;
  const absl::Time t0 = absl::FromUnixSeconds(5000);
  EndpointView down = Ep("n2", "b:1", 4, 0);
  down.state = v1::ENDPOINT_STATE_UNHEALTHY;
  BuildSnapshot("m", {Ep("n1", "a:1", 4, 0), down}, nullptr, config, kNow, &memories, t0);
  ASSERT_THAT(memories.keys, ::testing::ElementsAre("n1/a:1", "n2/b:1"));
  ASSERT_EQ(memories.memories.size(), 2u);
  EXPECT_EQ(memories.memories[1].state, v1::CIRCUIT_STATE_OPEN);
  EXPECT_EQ(memories.memories[1].times_ejected, 1);

  // A new endpoint sorts before the ejected one: each memory moves with its endpoint.
  auto snap = BuildSnapshot("m", {Ep("n1", "a:1", 4, 0), Ep("n1", "a:2", 4, 0), down}, nullptr, config, kNow, &memories,
                            t0 + absl::Seconds(1));
  ASSERT_THAT(memories.keys, ::testing::ElementsAre("n1/a:1", "n1/a:2", "n2/b:1"));
  ASSERT_EQ(memories.memories.size(), 3u);
  EXPECT_EQ(memories.memories[1].times_ejected, 0);
  EXPECT_EQ(memories.memories[2].state, v1::CIRCUIT_STATE_OPEN);
  EXPECT_EQ(memories.memories[2].times_ejected, 1);
  EXPECT_EQ(snap->assignment.endpoints(2).circuit(), v1::CIRCUIT_STATE_OPEN);

  // The endpoints that left are forgotten: the memory is bounded by the pool's size.
  BuildSnapshot("m", {down}, nullptr, config, kNow, &memories, t0 + absl::Seconds(2));
  ASSERT_THAT(memories.keys, ::testing::ElementsAre("n2/b:1"));
  ASSERT_EQ(memories.memories.size(), 1u);
  EXPECT_EQ(memories.memories[0].times_ejected, 1) << "still the same ejection";
}

}  // namespace switchboard::controlplane
