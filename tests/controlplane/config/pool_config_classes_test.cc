// The pool YAML's `classes:` block (priority classes).
#include <fstream>
#include <sstream>

#include "controlplane/config/pool_config.h"
#include "controlplane/policy/admission_proto.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane {
namespace {

using ::testing::HasSubstr;

TEST(PoolConfigClassesTest, NoClassesByDefault) {
  auto c = ParseFleetConfig("", "empty.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->For("any").policy.admission.enabled());
}

TEST(PoolConfigClassesTest, ClassesTenantsQueuesAndDefaults) {
  auto c = ParseFleetConfig(R"(
defaults:
  classes:
    - {name: interactive, share: 1.0, tenants: [acme, globex]}
    - {name: standard, share: 0.8, default: true}
    - name: batch
      share: 0.5
      tenants: [free-tier]
pools:
  llama-3-8b:
    lb_policy: least_request
  qwen:
    classes:
      - {name: paid, share: 1}
      - {name: free, share: 0.6, rank: 5}
  plain:
    classes: []
)",
                            "pools.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const policy::AdmissionConfig& a = c->For("llama-3-8b").policy.admission;  // From the defaults.
  ASSERT_EQ(a.classes.size(), 3u);
  EXPECT_EQ(a.classes[0].name, "interactive");
  EXPECT_EQ(a.classes[0].rank, 0);
  EXPECT_DOUBLE_EQ(a.classes[0].max_share, 1.0);
  EXPECT_EQ(a.classes[1].rank, 1);
  EXPECT_DOUBLE_EQ(a.classes[1].max_share, 0.8);
  EXPECT_EQ(a.classes[2].name, "batch");
  EXPECT_EQ(a.default_class, "standard");
  EXPECT_EQ(a.tenant_classes.at("acme"), "interactive");
  EXPECT_EQ(a.tenant_classes.at("globex"), "interactive");
  EXPECT_EQ(a.tenant_classes.at("free-tier"), "batch");

  const policy::AdmissionConfig& q = c->For("qwen").policy.admission;
  ASSERT_EQ(q.classes.size(), 2u);
  EXPECT_EQ(q.classes[1].rank, 5);
  EXPECT_EQ(q.default_class, "free") << "without default: true, the least important class";
  EXPECT_TRUE(q.tenant_classes.empty());

  EXPECT_FALSE(c->For("plain").policy.admission.enabled()) << "classes: [] turns them off";
}

TEST(PoolConfigClassesTest, QueuesPerClassAndPublished) {
  auto c = ParseFleetConfig(R"(
pools:
  p:
    classes:
      - {name: interactive, share: 1}
      - {name: standard, share: 0.8, queue: {max: 50, deadline: 2s}}
      - name: batch
        share: 0.5
        queue:
          max: 1000
          deadline: 1m
)",
                            "pools.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const policy::QueueConfig& q = c->For("p").policy.queues;
  ASSERT_EQ(q.size(), 2u) << "interactive has no queue: refused at once";
  EXPECT_EQ(q.at("standard").max, 50u);
  EXPECT_EQ(q.at("standard").deadline, absl::Seconds(2));
  EXPECT_EQ(q.at("batch").max, 1000u);
  EXPECT_EQ(q.at("batch").deadline, absl::Minutes(1));
  EXPECT_TRUE(c->For("other").policy.queues.empty());

  // What the assignment carries to the pickers, and what they read back.
  const policy::AdmissionConfig& a = c->For("p").policy.admission;
  const v1::PriorityClasses published = policy::PriorityToProto(a, policy::ClassHeadrooms(a, 0, 10), q);
  EXPECT_EQ(published.classes(0).queue_max(), 0u);
  EXPECT_EQ(published.classes(1).queue_max(), 50u);
  EXPECT_DOUBLE_EQ(published.classes(1).queue_deadline_seconds(), 2.0);
  const policy::QueueConfig read = policy::QueueFromProto(published);
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read.at("standard").max, 50u);
  EXPECT_EQ(read.at("batch").deadline, absl::Minutes(1));
}

TEST(PoolConfigClassesTest, ErrorsNameTheLineFieldAndClass) {
  struct Row {
    const char* yaml;
    const char* message;
  };
  const Row rows[] = {
      {"pools:\n  p:\n    classes: {interactive: 1}\n", "pools.yaml:3: pools.p.classes: must be a list of classes"},
      {"pools:\n  p:\n    classes:\n      - {share: 1}\n", "pools.yaml:4: pools.p.classes[0]: needs a name"},
      {"pools:\n  p:\n    classes:\n      - {name: a}\n", "pools.p.classes[0]: needs a share"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 0}\n", "pools.p.classes[0].share: must be in"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1.2}\n", "pools.p.classes[0].share: must be in"},
      {"pools:\n  p:\n    classes:\n      - {name: A, share: 1}\n", "pools.p.classes[0].name: must be lowercase"},
      {"pools:\n  p:\n    classes:\n      - {name: a~b, share: 1}\n", "without '~'"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, weight: 3}\n",
       "pools.p.classes[0].weight: unknown field"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 0.5}\n      - {name: b, share: 0.8}\n",
       "pools.yaml:4: pools.p.classes: class b: share 0.8 exceeds the share 0.5 of the more important class a"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1}\n      - {name: a, share: 0.5}\n",
       "pools.p.classes: class a twice"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, rank: 3}\n      - {name: b, share: 0.5, rank: 2}\n",
       "class b: rank 2 must be above class a's 3"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, default: true}\n"
       "      - {name: b, share: 0.5, default: true}\n",
       "pools.yaml:5: pools.p.classes[1].default: class a is already the default"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, default: yes please}\n", "must be true or false"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, tenants: [x]}\n"
       "      - {name: b, share: 0.5, tenants: [y, x]}\n",
       "pools.yaml:5: pools.p.classes[1].tenants[1]: tenant x is already in class a"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, tenants: x}\n", "must be a list of tenant names"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, queue: {limit: 5}}\n",
       "pools.p.classes[0].queue.limit: unknown field"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, queue: 5}\n",
       "pools.p.classes[0].queue: must be a map with max and deadline"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, queue: {max: 5}}\n",
       "pools.p.classes[0].queue: needs max (requests held) and deadline"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, queue: {max: 0, deadline: 1s}}\n",
       "pools.p.classes[0].queue.max: must be in [1, 100000]"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, queue: {max: lots, deadline: 1s}}\n",
       "pools.p.classes[0].queue.max: must be a number"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, queue: {max: 200000, deadline: 1s}}\n",
       "pools.p.classes[0].queue.max: must be in [1, 100000]"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, queue: {max: 5, deadline: 0s}}\n",
       "pools.p.classes[0].queue.deadline: must be longer than 0s"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, queue: {max: 5, deadline: soon}}\n",
       "pools.p.classes[0].queue.deadline"},
      {"pools:\n  p:\n    classes:\n      - {name: a, share: 1, queue: {max: 5, deadline: 11m}}\n",
       "pools.p.classes: queue of class 'a': deadline 11m is not in (0, 10m]"},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.yaml);
    auto c = ParseFleetConfig(r.yaml, "pools.yaml");
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(r.message));
  }
}

TEST(PoolConfigClassesTest, TheDocumentedExampleParses) {
  std::ifstream in(std::string(SWITCHBOARD_DOCS_DIR) + "/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string md = ss.str();
  const size_t section = md.find("## Priority classes");
  ASSERT_NE(section, std::string::npos);
  const size_t begin = md.find("```yaml\n", section);
  ASSERT_NE(begin, std::string::npos);
  const size_t end = md.find("```", begin + 8);
  ASSERT_NE(end, std::string::npos);
  auto c = ParseFleetConfig(md.substr(begin + 8, end - begin - 8), "configuration.md");
  ASSERT_TRUE(c.ok()) << c.status();
  const policy::AdmissionConfig& a = c->For("llama-3-8b").policy.admission;
  ASSERT_EQ(a.classes.size(), 3u);
  EXPECT_EQ(a.default_class, "standard");
  EXPECT_EQ(a.tenant_classes.at("free-tier"), "batch");
  // The worked example under it: 10 slots.
  const std::vector<policy::ClassHeadroom> at4 = policy::ClassHeadrooms(a, 4, 10);
  EXPECT_TRUE(policy::DecideAdmission(a, "batch", at4[2].headroom_slots).admit);
  const std::vector<policy::ClassHeadroom> at5 = policy::ClassHeadrooms(a, 5, 10);
  EXPECT_FALSE(policy::DecideAdmission(a, "batch", at5[2].headroom_slots).admit);
  EXPECT_TRUE(policy::DecideAdmission(a, "standard", at5[1].headroom_slots).admit);
  const std::vector<policy::ClassHeadroom> at8 = policy::ClassHeadrooms(a, 8, 10);
  EXPECT_FALSE(policy::DecideAdmission(a, "standard", at8[1].headroom_slots).admit);
  EXPECT_TRUE(policy::DecideAdmission(a, "interactive", at8[0].headroom_slots).admit);
}

}  // namespace
}  // namespace switchboard::controlplane
