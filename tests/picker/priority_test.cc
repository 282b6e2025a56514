// The picker's admission by priority class: the assignment's classes and headroom as the
// control plane publishes them (PriorityToProto over ClassHeadrooms), requests with the
// x-priority and x-tenant headers driven through an Exchange as Envoy sends them.
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "controlplane/policy/admission_proto.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "picker/exchange.h"

namespace switchboard::picker {
namespace {

using ::testing::HasSubstr;
namespace policy = ::switchboard::controlplane::policy;

policy::AdmissionConfig Classes() {
  policy::AdmissionConfig c;
  c.classes = {{"interactive", 0, 1.0}, {"standard", 1, 0.8}, {"batch", 2, 0.5}};
  c.default_class = "standard";
  c.tenant_classes = {{"acme", "interactive"}, {"free", "batch"}};
  return c;
}

// Two endpoints of 5 slots, `busy` of the 10 slots busy (as the agents reported).
v1::Assignment PoolWithClasses(int busy) {
  v1::Assignment a;
  a.set_pool("llama");
  a.set_version("v1");
  for (int i = 0; i < 2; ++i) {
    v1::AssignedEndpoint* e = a.add_endpoints();
    e->set_address("10.0.0." + std::to_string(i + 1) + ":8000");
    e->set_node_id("node-" + std::to_string(i));
    e->set_weight(10);
    e->set_state(v1::ENDPOINT_STATE_READY);
    e->set_circuit(v1::CIRCUIT_STATE_CLOSED);
    e->set_slots_total(5);
    const int here = std::min(5, busy - i * 5 > 0 ? busy - i * 5 : 0);
    e->set_slots_free(5 - here);
  }
  const policy::AdmissionConfig c = Classes();
  *a.mutable_priority() = policy::PriorityToProto(c, policy::ClassHeadrooms(c, busy, 10));
  return a;
}

ext_proc::ProcessingRequest Headers(const std::string& priority, const std::string& tenant) {
  ext_proc::ProcessingRequest r;
  auto* h = r.mutable_request_headers();
  h->set_end_of_stream(true);
  std::vector<std::pair<std::string, std::string>> headers = {
      {":path", "/v1/chat/completions"}, {":method", "POST"}, {"x-gateway-model-name", "llama"}};
  if (!priority.empty()) headers.emplace_back("x-priority", priority);
  if (!tenant.empty()) headers.emplace_back("X-Tenant", tenant);  // Header names in any case.
  for (const auto& [k, v] : headers) {
    auto* hv = h->mutable_headers()->add_headers();
    hv->set_key(k);
    hv->set_raw_value(v);
  }
  return r;
}

class PriorityTest : public ::testing::Test {
 protected:
  PriorityTest() : table_({}, Policy(), 1), metrics_(MakePickerMetrics()) { options_.debug_header = true; }
  static client::PickPolicy Policy() {
    client::PickPolicy p;
    p.shed_occupancy = 3;  // The pool's own bound, far away.
    p.retry_after = absl::Seconds(2);
    return p;
  }
  // What one request got: 0 = routed, else the immediate status; `detail` the 429's
  // Retry-After or the pick's reason.
  int Send(Exchange* x, const std::string& priority, const std::string& tenant, std::string* detail = nullptr) {
    std::vector<ext_proc::ProcessingResponse> out = x->Handle(Headers(priority, tenant));
    EXPECT_EQ(out.size(), 1u);
    if (out.empty()) return -1;
    if (out[0].has_immediate_response()) {
      const auto& i = out[0].immediate_response();
      for (const auto& o : i.headers().set_headers()) {
        if (o.header().key() == "retry-after" && detail != nullptr) *detail = o.header().raw_value();
      }
      return i.status().code();
    }
    if (detail != nullptr) {
      for (const auto& o : out[0].request_headers().response().header_mutation().set_headers()) {
        if (o.header().key() == kDebugHeader) *detail = o.header().raw_value();
      }
    }
    return 0;
  }
  PoolTable table_;
  ExchangeOptions options_;
  std::unique_ptr<PickerMetrics> metrics_;
};

TEST_F(PriorityTest, EachClassAdmittedWhileTheHigherClassesReserveIsFree) {
  struct Row {
    int busy;
    int interactive, standard, batch;  // 0 = routed, else the status.
  };
  const Row rows[] = {{0, 0, 0, 0}, {4, 0, 0, 0}, {5, 0, 0, 429}, {7, 0, 0, 429}, {8, 0, 429, 429}, {10, 0, 429, 429}};
  for (const Row& r : rows) {
    SCOPED_TRACE(::testing::Message() << r.busy << " of 10 slots busy");
    ASSERT_TRUE(table_.Apply(PoolWithClasses(r.busy)).ok());
    for (const auto& [cls, want] :
         {std::pair<const char*, int>{"interactive", r.interactive}, {"standard", r.standard}, {"batch", r.batch}}) {
      Exchange x(&table_, &options_, metrics_.get());
      std::string detail;
      EXPECT_EQ(Send(&x, cls, "", &detail), want) << cls;
      if (want == 429) {
        EXPECT_EQ(detail, "2") << "Retry-After";
      } else {
        EXPECT_THAT(detail, HasSubstr(absl::StrCat("class ", cls, " (x-priority: ", cls, ")")));
      }
    }
  }
}

TEST_F(PriorityTest, TenantAndDefaultClasses) {
  ASSERT_TRUE(table_.Apply(PoolWithClasses(6)).ok());  // Batch refused, standard and above admitted.
  const double before = metrics_->class_refused->Value();
  struct Row {
    const char* priority;
    const char* tenant;
    int want;
  };
  const Row rows[] = {
      {"", "", 0},                   // Default: standard.
      {"", "free", 429},             // Tenant free: batch.
      {"interactive", "free", 429},  // Capped at the tenant's class.
      {"batch", "acme", 429},        // A tenant may mark its own traffic lower.
      {"", "acme", 0},
      {"gold", "", 0},  // Unknown class: the default.
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(::testing::Message() << "priority '" << r.priority << "' tenant '" << r.tenant << "'");
    Exchange x(&table_, &options_, metrics_.get());
    EXPECT_EQ(Send(&x, r.priority, r.tenant), r.want);
  }
  EXPECT_EQ(metrics_->class_refused->Value() - before, 3);
  EXPECT_EQ(metrics_->shed->Value(), 0) << "a class refusal is not the pool's own shedding";
}

// The picker's own sends since the assignment use up the headroom: standard has 2 slots
// left of its 8 with 6 busy; two standard requests go, the third is refused, and a
// finished one frees its slot again.
TEST_F(PriorityTest, OwnSendsSinceTheAssignmentUseTheHeadroom) {
  ASSERT_TRUE(table_.Apply(PoolWithClasses(6)).ok());
  auto first = std::make_unique<Exchange>(&table_, &options_, metrics_.get());
  Exchange second(&table_, &options_, metrics_.get());
  EXPECT_EQ(Send(first.get(), "standard", ""), 0);
  EXPECT_EQ(Send(&second, "standard", ""), 0);
  {
    Exchange third(&table_, &options_, metrics_.get());
    std::string detail;
    EXPECT_EQ(Send(&third, "standard", "", &detail), 429);
  }
  {
    Exchange top(&table_, &options_, metrics_.get());
    EXPECT_EQ(Send(&top, "interactive", ""), 0) << "the reserve is there for the top class";
  }
  first.reset();  // Its stream ends: finished.
  Exchange again(&table_, &options_, metrics_.get());
  EXPECT_EQ(Send(&again, "standard", ""), 0);
}

TEST_F(PriorityTest, NoRoutableEndpointIs503WhateverTheClass) {
  v1::Assignment a = PoolWithClasses(0);
  for (auto& ep : *a.mutable_endpoints()) ep.set_weight(0);
  ASSERT_TRUE(table_.Apply(a).ok());
  Exchange x(&table_, &options_, metrics_.get());
  EXPECT_EQ(Send(&x, "batch", ""), 503);
}

TEST_F(PriorityTest, NoClassesInTheAssignmentAdmitsEveryClassName) {
  v1::Assignment a = PoolWithClasses(9);
  a.clear_priority();
  ASSERT_TRUE(table_.Apply(a).ok());
  Exchange x(&table_, &options_, metrics_.get());
  EXPECT_EQ(Send(&x, "batch", "free"), 0);
}

// Standard may queue one request for 2s (the pool YAML's queue: {max: 1, deadline: 2s}).
v1::Assignment PoolWithQueue(int busy) {
  v1::Assignment a = PoolWithClasses(busy);
  const policy::AdmissionConfig c = Classes();
  *a.mutable_priority() = policy::PriorityToProto(c, policy::ClassHeadrooms(c, busy, 10),
                                                  policy::QueueConfig{{"standard", {1, absl::Seconds(2)}}});
  return a;
}

class PriorityQueueTest : public ::testing::Test {
 protected:
  PriorityQueueTest() : table_({}, PriorityTest_Policy(), 1, &clock_), metrics_(MakePickerMetrics()) {}
  static client::PickPolicy PriorityTest_Policy() {
    client::PickPolicy p;
    p.shed_occupancy = 3;
    p.retry_after = absl::Seconds(2);
    return p;
  }
  // An exchange whose held request's release is kept in `*released`.
  std::unique_ptr<Exchange> Held(std::optional<client::PickResult>* released) {
    auto x = std::make_unique<Exchange>(&table_, &options_, metrics_.get());
    x->set_on_release([released](client::PickResult r) { *released = std::move(r); });
    return x;
  }
  // The immediate status of `out` (0: routed to an endpoint).
  static int Status(const std::vector<ext_proc::ProcessingResponse>& out, std::string* retry_after = nullptr) {
    EXPECT_EQ(out.size(), 1u);
    if (out.empty()) return -1;
    if (!out[0].has_immediate_response()) {
      EXPECT_FALSE(out[0].request_headers().response().header_mutation().set_headers().empty());
      return 0;
    }
    for (const auto& o : out[0].immediate_response().headers().set_headers()) {
      if (o.header().key() == "retry-after" && retry_after != nullptr) *retry_after = o.header().raw_value();
    }
    return out[0].immediate_response().status().code();
  }
  FakeClock clock_;
  PoolTable table_;
  ExchangeOptions options_;
  std::unique_ptr<PickerMetrics> metrics_;
};

// Standard has 2 slots of headroom with 6 of 10 busy: two go, the third is held (not
// answered), a fourth finds the queue full (429 at once). The first one finishing frees a
// slot: the held one is routed. The next one held expires at its deadline: 429.
TEST_F(PriorityQueueTest, HeldUntilASlotFreesOrItsDeadline) {
  ASSERT_TRUE(table_.Apply(PoolWithQueue(6)).ok());
  std::optional<client::PickResult> r1, r2, r3, r4, r5;
  auto first = Held(&r1);
  auto second = Held(&r2);
  EXPECT_EQ(Status(first->Handle(Headers("standard", ""))), 0);
  EXPECT_EQ(Status(second->Handle(Headers("standard", ""))), 0);

  auto third = Held(&r3);
  EXPECT_TRUE(third->Handle(Headers("standard", "")).empty()) << "held: no answer yet";
  EXPECT_TRUE(third->awaiting_release());
  EXPECT_EQ(table_.Held(), 1u);

  auto fourth = Held(&r4);
  std::string retry_after;
  EXPECT_EQ(Status(fourth->Handle(Headers("standard", "")), &retry_after), 429) << "the queue holds one";
  EXPECT_EQ(retry_after, "2");
  EXPECT_FALSE(r4.has_value());

  EXPECT_EQ(table_.ReleaseQueued(), 0u) << "no slot free, deadline not reached";
  EXPECT_FALSE(r3.has_value());

  first.reset();  // Its stream ends: the request is finished, a slot is free.
  ASSERT_TRUE(r3.has_value()) << "released by the finished request";
  EXPECT_EQ(r3->verdict, client::PickVerdict::kRoute);
  client::PickResult explained = *r3;  // The table decides with facts; the reason on demand.
  client::ExplainPick(&explained);
  EXPECT_THAT(explained.reason, HasSubstr("released from the queue"));
  EXPECT_EQ(Status(third->ResumeHeld(*r3)), 0);
  EXPECT_FALSE(third->awaiting_release());
  EXPECT_EQ(table_.Held(), 0u);

  auto fifth = Held(&r5);
  EXPECT_TRUE(fifth->Handle(Headers("", "")).empty()) << "the default class, standard: held";
  clock_.Advance(absl::Milliseconds(1999));
  EXPECT_EQ(table_.ReleaseQueued(), 0u);
  EXPECT_FALSE(r5.has_value());
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(table_.ReleaseQueued(), 1u);
  ASSERT_TRUE(r5.has_value());
  EXPECT_EQ(r5->verdict, client::PickVerdict::kShed);
  EXPECT_THAT(r5->reason, HasSubstr("held past its deadline"));
  retry_after.clear();
  EXPECT_EQ(Status(fifth->ResumeHeld(*r5), &retry_after), 429);
  EXPECT_EQ(retry_after, "2");

  // Interactive has no queue and is never refused; batch has none: 429 at once.
  auto batch = Held(&r4);
  EXPECT_EQ(Status(batch->Handle(Headers("batch", ""))), 429);
}

TEST_F(PriorityQueueTest, ANewAssignmentWithHeadroomReleases) {
  ASSERT_TRUE(table_.Apply(PoolWithQueue(8)).ok());  // Standard: no headroom.
  std::optional<client::PickResult> r;
  auto x = Held(&r);
  EXPECT_TRUE(x->Handle(Headers("standard", "")).empty());
  ASSERT_TRUE(table_.Apply(PoolWithQueue(5)).ok());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(Status(x->ResumeHeld(*r)), 0);
}

TEST_F(PriorityQueueTest, WithoutAQueueOrACallbackRefusedAtOnce) {
  ASSERT_TRUE(table_.Apply(PoolWithClasses(8)).ok());  // No queue: today's behaviour.
  std::optional<client::PickResult> r;
  auto x = Held(&r);
  EXPECT_EQ(Status(x->Handle(Headers("standard", ""))), 429);
  ASSERT_TRUE(table_.Apply(PoolWithQueue(8)).ok());
  Exchange plain(&table_, &options_, metrics_.get());  // No callback: cannot wait.
  EXPECT_EQ(Status(plain.Handle(Headers("standard", ""))), 429);
  EXPECT_EQ(table_.Held(), 0u);
}

TEST_F(PriorityQueueTest, AStreamEndingLeavesTheQueue) {
  ASSERT_TRUE(table_.Apply(PoolWithQueue(8)).ok());
  std::optional<client::PickResult> r;
  auto x = Held(&r);
  EXPECT_TRUE(x->Handle(Headers("standard", "")).empty());
  x.reset();
  EXPECT_EQ(table_.Held(), 0u);
  ASSERT_TRUE(table_.Apply(PoolWithQueue(0)).ok());
  EXPECT_FALSE(r.has_value()) << "not called once taken back";
}

// The timer thread expires a held request at its deadline on the table's clock, and
// closing the queues answers the rest 503 and ends the timer.
TEST_F(PriorityQueueTest, TimerExpiresAndCloseAnswers503) {
  ASSERT_TRUE(table_.Apply(PoolWithQueue(8)).ok());
  std::thread timer([this] { table_.RunReleaseTimer(); });
  std::optional<client::PickResult> r1, r2;
  auto x = Held(&r1);
  EXPECT_TRUE(x->Handle(Headers("standard", "")).empty());
  const absl::Time deadline = clock_.MonotonicNow() + absl::Seconds(2);
  ASSERT_TRUE(clock_.AwaitDeadlines(
      [deadline](const std::vector<absl::Time>& d) { return d.size() == 1 && d[0] == deadline; }, absl::Seconds(10)));
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(clock_.AwaitDeadlines(
      [](const std::vector<absl::Time>& d) { return d.size() == 1 && d[0] == absl::InfiniteFuture(); },
      absl::Seconds(10)))
      << "the timer waits again, for nothing held";
  ASSERT_TRUE(r1.has_value());
  EXPECT_EQ(Status(x->ResumeHeld(*r1)), 429);

  auto y = Held(&r2);
  EXPECT_TRUE(y->Handle(Headers("standard", "")).empty());
  table_.CloseQueues();
  timer.join();
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(Status(y->ResumeHeld(*r2)), 503);
  std::optional<client::PickResult> r3;
  auto z = Held(&r3);
  EXPECT_EQ(Status(z->Handle(Headers("standard", ""))), 429) << "closed: nothing more is held";
}

}  // namespace
}  // namespace switchboard::picker
