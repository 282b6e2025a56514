#include "controlplane/policy/admission.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane::policy {
namespace {

using ::testing::HasSubstr;

AdmissionConfig ThreeClasses() {
  AdmissionConfig c;
  c.classes = {{"interactive", 0, 1.0}, {"standard", 1, 0.8}, {"batch", 2, 0.5}};
  c.default_class = "standard";
  c.tenant_classes = {{"acme", "interactive"}, {"free", "batch"}};
  return c;
}

TEST(AdmissionTest, ValidConfigAndNoClasses) {
  EXPECT_TRUE(ValidateAdmissionConfig(ThreeClasses()).ok());
  EXPECT_TRUE(ValidateAdmissionConfig(AdmissionConfig{}).ok());
}

TEST(AdmissionTest, InvalidConfigsNameTheProblem) {
  struct Row {
    const char* what;
    void (*mutate)(AdmissionConfig*);
    const char* message;
  };
  const Row rows[] = {
      {"duplicate", [](AdmissionConfig* c) { c->classes[2].name = "standard"; }, "class standard twice"},
      {"no name", [](AdmissionConfig* c) { c->classes[1].name = ""; }, "without a name"},
      {"share 0", [](AdmissionConfig* c) { c->classes[2].max_share = 0; }, "batch: share must be in (0, 1]"},
      {"share > 1", [](AdmissionConfig* c) { c->classes[0].max_share = 1.5; }, "interactive: share must be in"},
      {"lower uses more", [](AdmissionConfig* c) { c->classes[2].max_share = 0.9; },
       "batch: share 0.9 exceeds the share 0.8 of the more important class standard"},
      {"rank order", [](AdmissionConfig* c) { c->classes[1].rank = 0; }, "standard: rank 0 must be above"},
      {"negative rank", [](AdmissionConfig* c) { c->classes[0].rank = -1; }, "rank must be 0 or more"},
      {"no default", [](AdmissionConfig* c) { c->default_class = ""; }, "no default class"},
      {"unknown default", [](AdmissionConfig* c) { c->default_class = "gold"; }, "default class gold is not defined"},
      {"tenant class", [](AdmissionConfig* c) { c->tenant_classes["x"] = "gold"; }, "tenant x: class gold"},
      {"tenants, no classes", [](AdmissionConfig* c) { c->classes.clear(); }, "without any class"},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.what);
    AdmissionConfig c = ThreeClasses();
    r.mutate(&c);
    absl::Status s = ValidateAdmissionConfig(c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr(r.message));
  }
}

TEST(AdmissionTest, Classify) {
  struct Row {
    const char* header;
    const char* tenant;
    const char* cls;
    const char* reason;
  };
  const Row rows[] = {
      {"", "", "standard", "default class"},
      {"batch", "", "batch", "x-priority: batch"},
      {" Interactive ", "", "interactive", "x-priority: interactive"},  // Trimmed, any case.
      {"gold", "", "standard", "default class (x-priority: unknown class 'gold')"},
      {"", "acme", "interactive", "tenant acme's class"},
      {"", "free", "batch", "tenant free's class"},
      {"", "stranger", "standard", "default class"},
      {"batch", "acme", "batch", "x-priority: batch"},  // A tenant may mark its traffic lower.
      {"interactive", "free", "batch", "x-priority: interactive capped at tenant free's class batch"},
      {"standard", "free", "batch", "capped"},
      {"gold", "free", "batch", "tenant free's class (x-priority: unknown class 'gold')"},
  };
  const AdmissionConfig config = ThreeClasses();
  for (const Row& r : rows) {
    SCOPED_TRACE(::testing::Message() << "header '" << r.header << "' tenant '" << r.tenant << "'");
    ClassChoice c = ClassifyRequest(config, r.header, r.tenant);
    EXPECT_EQ(c.name, r.cls);
    EXPECT_THAT(c.reason, HasSubstr(r.reason));
  }
  EXPECT_EQ(ClassifyRequest(AdmissionConfig{}, "batch", "acme").name, "");
}

TEST(AdmissionTest, HeadroomsFollowShares) {
  // 10 slots, 6 busy or queued: interactive has 4 left, standard 2, batch none (-1).
  std::vector<ClassHeadroom> h = ClassHeadrooms(ThreeClasses(), 6, 10);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].name, "interactive");
  EXPECT_DOUBLE_EQ(h[0].limit_slots, 10);
  EXPECT_DOUBLE_EQ(h[0].headroom_slots, 4);
  EXPECT_EQ(h[1].name, "standard");
  EXPECT_DOUBLE_EQ(h[1].limit_slots, 8);
  EXPECT_DOUBLE_EQ(h[1].headroom_slots, 2);
  EXPECT_EQ(h[2].rank, 2);
  EXPECT_DOUBLE_EQ(h[2].limit_slots, 5);
  EXPECT_DOUBLE_EQ(h[2].headroom_slots, -1);
  EXPECT_TRUE(ClassHeadrooms(AdmissionConfig{}, 6, 10).empty());
}

// Walks a 10-slot pool from idle to past full: each class is admitted exactly while the
// busy share leaves the more important classes' reserve free.
TEST(AdmissionTest, AdmitWhileReserveOfHigherClassesIsFree) {
  const AdmissionConfig config = ThreeClasses();
  struct Row {
    double occupancy;
    bool interactive, standard, batch;
  };
  const Row rows[] = {
      {0, true, true, true},   {4, true, true, true},    {4.5, true, true, true},
      {5, true, true, false},  {7, true, true, false},   {7.9, true, true, false},
      {8, true, false, false}, {10, true, false, false}, {14, true, false, false},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(::testing::Message() << "occupancy " << r.occupancy);
    const std::vector<ClassHeadroom> h = ClassHeadrooms(config, r.occupancy, 10);
    EXPECT_EQ(DecideAdmission(config, "interactive", h[0].headroom_slots).admit, r.interactive);
    EXPECT_EQ(DecideAdmission(config, "standard", h[1].headroom_slots).admit, r.standard);
    EXPECT_EQ(DecideAdmission(config, "batch", h[2].headroom_slots).admit, r.batch);
  }
}

// The occupancy behind the headroom: routable endpoints only, busy capped at the slots,
// queued requests added, each endpoint with at least one slot.
TEST(AdmissionTest, RoutableOccupancyCountsRoutableEndpoints) {
  struct Endpoint {
    bool routable;
    double slots_total, slots_busy, queue_depth;
  };
  struct Row {
    const char* name;
    std::vector<Endpoint> endpoints;
    double occupancy_slots, slots;
  };
  const Row rows[] = {
      {"none", {}, 0, 0},
      {"idle", {{true, 4, 0, 0}}, 0, 4},
      {"busy and queued", {{true, 4, 3, 2}}, 5, 4},
      {"busy past the slots is capped", {{true, 4, 6, 1}}, 5, 4},
      {"no slots counts as one", {{true, 0, 0, 2}}, 2, 1},
      {"not routable adds nothing", {{false, 8, 8, 9}, {true, 2, 1, 0}}, 1, 2},
      {"sums", {{true, 4, 4, 1}, {true, 8, 2, 0}, {false, 4, 4, 4}}, 7, 12},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.name);
    RoutableOccupancy o;
    for (const Endpoint& e : r.endpoints) o.Add(e.routable, e.slots_total, e.slots_busy, e.queue_depth);
    EXPECT_DOUBLE_EQ(o.occupancy_slots, r.occupancy_slots);
    EXPECT_DOUBLE_EQ(o.slots, r.slots);
  }
}

// A picker's headroom: the published one less its change since the assignment on the
// routable endpoints, scaled by the replicas it stands for (at least one).
TEST(AdmissionTest, HeadroomSinceAssignmentSubtractsTheScaledChange) {
  struct Endpoint {
    bool routable;
    double sent, done, peers_change;
  };
  struct Row {
    const char* name;
    double published;
    std::vector<Endpoint> endpoints;
    double gateways, headroom;
  };
  const Row rows[] = {
      {"no change", 3, {{true, 0, 0, 0}}, 1, 3},
      {"own requests", 3, {{true, 2, 0, 0}}, 1, 1},
      {"finished ones give back", 3, {{true, 2, 2, 0}}, 1, 3},
      {"peers' change", 3, {{true, 1, 0, 1.5}}, 1, 0.5},
      {"scaled by the replicas", 3, {{true, 1, 0, 0}}, 4, -1},
      {"fewer than one replica counts as one", 3, {{true, 1, 0, 0}}, 0, 2},
      {"not routable ignored", 3, {{false, 5, 0, 5}, {true, 1, 0, 0}}, 2, 1},
      {"negative published stays negative", -2, {{true, 0, 1, 0}}, 1, -1},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.name);
    OccupancyChange change;
    for (const Endpoint& e : r.endpoints) change.Add(e.routable, e.sent, e.done, e.peers_change);
    EXPECT_DOUBLE_EQ(HeadroomSinceAssignment(r.published, change, r.gateways), r.headroom);
  }
}

TEST(AdmissionTest, DecisionCarriesReasonRetryAfterAndQueue) {
  const AdmissionConfig config = ThreeClasses();
  AdmissionDecision d = DecideAdmission(config, "standard", -1.5);
  EXPECT_FALSE(d.admit);
  EXPECT_THAT(d.reason, HasSubstr("class standard refused: headroom -1.5 slots under its share 0.80"));

  d = DecideAdmission(config, "batch", 0);
  EXPECT_FALSE(d.admit);
  EXPECT_THAT(d.reason, HasSubstr("more important classes"));

  d = DecideAdmission(config, "batch", 0.5);
  EXPECT_TRUE(d.admit);
  EXPECT_THAT(d.reason, HasSubstr("class batch admitted: headroom 0.5 slots"));

  d = DecideAdmission(config, "interactive", -20);
  EXPECT_TRUE(d.admit);
  EXPECT_THAT(d.reason, HasSubstr("every slot"));

  d = DecideAdmission(config, "gold", 5);
  EXPECT_FALSE(d.admit);
  EXPECT_THAT(d.reason, HasSubstr("unknown class 'gold'"));

  d = DecideAdmission(AdmissionConfig{}, "", -5);
  EXPECT_TRUE(d.admit);
  EXPECT_EQ(d.reason, "no priority classes");
}

}  // namespace
}  // namespace switchboard::controlplane::policy
