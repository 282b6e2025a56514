#include "sync/plan.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace switchboard::sync {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::AssignedEndpoint Ep(const std::string& address, uint32_t weight, v1::EndpointState state = v1::ENDPOINT_STATE_READY,
                        v1::CircuitState circuit = v1::CIRCUIT_STATE_CLOSED) {
  v1::AssignedEndpoint ep;
  ep.set_address(address);
  ep.set_weight(weight);
  ep.set_state(state);
  ep.set_circuit(circuit);
  return ep;
}

v1::Assignment Pool(const std::string& name, std::vector<v1::AssignedEndpoint> eps,
                    v1::LbPolicy policy = v1::LB_POLICY_WEIGHTED) {
  v1::Assignment a;
  a.set_pool(name);
  a.set_version("v1");
  a.set_lb_policy(policy);
  for (auto& ep : eps) *a.add_endpoints() = ep;
  return a;
}

ProxyServer Server(const std::string& name, const std::string& host, int port, int weight, AdminState state) {
  ProxyServer s;
  s.name = name;
  s.host = host;
  s.port = port;
  s.weight = weight;
  s.state = state;
  return s;
}

TEST(CarryOverTest, KeepsMissingEndpointsAsTheyWere) {
  const v1::Assignment before =
      Pool("p", {Ep("10.0.0.1:80", 10), Ep("10.0.0.2:80", 20), Ep("10.0.0.3:80", 5, v1::ENDPOINT_STATE_DRAINING)});
  const v1::Assignment now = Pool("p", {Ep("10.0.0.2:80", 30), Ep("10.0.0.4:80", 1)});
  const v1::Assignment got = CarryOver(now, before);
  ASSERT_EQ(got.endpoints_size(), 4);
  EXPECT_EQ(got.endpoints(0).weight(), 30u);  // Present now: as it is now.
  EXPECT_EQ(got.endpoints(1).address(), "10.0.0.4:80");
  EXPECT_EQ(got.endpoints(2).address(), "10.0.0.1:80");
  EXPECT_EQ(got.endpoints(2).weight(), 10u);
  EXPECT_EQ(got.endpoints(3).state(), v1::ENDPOINT_STATE_DRAINING);
  EXPECT_EQ(CarryOver(now, v1::Assignment()).endpoints_size(), 2);
}

TEST(HaproxyWeightTest, DoublesAndCapsKeepingRatios) {
  struct Case {
    uint32_t in;
    int want;
  };
  for (const Case& c : std::vector<Case>{{0, 0}, {1, 2}, {3, 6}, {64, 128}, {128, 256}, {500, 256}}) {
    EXPECT_EQ(HaproxyWeight(c.in), c.want) << c.in;
  }
}

TEST(DesiredServersTest, MapsStatesCircuitsAndWeights) {
  struct Case {
    const char* name;
    v1::AssignedEndpoint ep;
    AdminState state;
    int weight;
  };
  const std::vector<Case> cases = {
      {"ready", Ep("10.0.0.1:8000", 40), AdminState::kReady, 80},
      {"draining", Ep("10.0.0.1:8000", 40, v1::ENDPOINT_STATE_DRAINING), AdminState::kDrain, -1},
      {"draining beats open", Ep("10.0.0.1:8000", 0, v1::ENDPOINT_STATE_DRAINING, v1::CIRCUIT_STATE_OPEN),
       AdminState::kDrain, -1},
      {"open", Ep("10.0.0.1:8000", 0, v1::ENDPOINT_STATE_READY, v1::CIRCUIT_STATE_OPEN), AdminState::kMaint, -1},
      {"excluded", Ep("10.0.0.1:8000", 0, v1::ENDPOINT_STATE_STARTING), AdminState::kMaint, -1},
      {"half open", Ep("10.0.0.1:8000", 40, v1::ENDPOINT_STATE_READY, v1::CIRCUIT_STATE_HALF_OPEN), AdminState::kReady,
       1},
  };
  HaproxyOptions o;
  o.backend = "llm";
  for (const Case& c : cases) {
    auto got = DesiredServers(Pool("p", {c.ep}), o);
    ASSERT_TRUE(got.ok()) << c.name << ": " << got.status();
    ASSERT_EQ(got->size(), 1u) << c.name;
    EXPECT_EQ((*got)[0].state, c.state) << c.name;
    EXPECT_EQ((*got)[0].weight, c.weight) << c.name;
    EXPECT_EQ((*got)[0].name, "sb-10.0.0.1_8000") << c.name;
    EXPECT_EQ((*got)[0].host, "10.0.0.1") << c.name;
    EXPECT_EQ((*got)[0].port, 8000) << c.name;
  }
}

TEST(DesiredServersTest, RefusesAddressesThatAreNotIpPort) {
  HaproxyOptions o;
  for (const char* bad : {"gpu-host-1:8000", "10.0.0.1", "10.0.0.300:80", "10.0.0.1:0"}) {
    auto got = DesiredServers(Pool("p", {Ep("10.0.0.2:1", 1), Ep(bad, 1)}), o);
    ASSERT_FALSE(got.ok()) << bad;
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(bad));
  }
  auto v6 = DesiredServers(Pool("p", {Ep("[fd00::1]:8000", 1)}), o);
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ((*v6)[0].host, "fd00::1");
  EXPECT_EQ((*v6)[0].name, "sb-fd00__1_8000");
}

// Captured from HAProxy 2.6: a dynamic server added and set to drain, a template slot
// declared `disabled` then set ready (CMAINT stays set), one still in maintenance.
constexpr char kState[] =
    "1\n"
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
    "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
    "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port "
    "srv_check_addr srv_agent_addr srv_agent_port\n"
    "3 llm 1 sb-a 127.0.0.1 2 8 20 20 0 1 0 2 6 0 0 0 - 9001 - 0 0 - - 0\n"
    "4 tpl 1 slot1 127.0.0.1 2 4 5 1 0 1 0 0 8 0 0 0 - 9002 - 0 0 - - 0\n"
    "4 tpl 2 slot2 127.0.0.1 0 5 1 1 4 1 0 0 8 0 0 0 - 1 - 0 0 - - 0\n\n";

TEST(ParseServersStateTest, ReadsAddressWeightAndAdminState) {
  auto llm = ParseServersState(kState, "llm");
  ASSERT_TRUE(llm.ok()) << llm.status();
  ASSERT_EQ(llm->size(), 1u);
  EXPECT_EQ((*llm)[0].name, "sb-a");
  EXPECT_EQ((*llm)[0].port, 9001);
  EXPECT_EQ((*llm)[0].weight, 20);
  EXPECT_EQ((*llm)[0].state, AdminState::kDrain);
  auto tpl = ParseServersState(kState, "tpl");
  ASSERT_TRUE(tpl.ok()) << tpl.status();
  ASSERT_EQ(tpl->size(), 2u);
  EXPECT_EQ((*tpl)[0].state, AdminState::kReady);  // Configured `disabled`, then set ready.
  EXPECT_EQ((*tpl)[1].state, AdminState::kMaint);
  auto none = ParseServersState("1\n# be_id be_name srv_name srv_addr srv_admin_state srv_uweight srv_port\n", "x");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

// Found by fuzz_haproxy_state: a line cut short before its name came back as a server
// without a name.
TEST(ParseServersStateTest, RefusesALineCutShort) {
  auto got = ParseServersState(
      "1\n# be_name srv_admin_state srv_uweight srv_port srv_addr srv_name\nllm 0 1 9001 127.0.0.1\n", "llm");
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("unreadable 'show servers state' line"));
}

TEST(ParseServersStateTest, RefusesOtherAnswers) {
  for (const char* bad : {"Can't find backend.\n", "", "2\n# be_name\n"}) {
    EXPECT_FALSE(ParseServersState(bad, "llm").ok()) << bad;
  }
}

TEST(PlanHaproxyTest, DynamicMode) {
  HaproxyOptions o;
  o.backend = "llm";
  struct Case {
    const char* name;
    std::vector<ProxyServer> current, desired;
    std::vector<std::string> commands;
  };
  const std::vector<Case> cases = {
      {"in sync: nothing",
       {Server("sb-a", "10.0.0.1", 80, 20, AdminState::kReady)},
       {Server("sb-a", "10.0.0.1", 80, 20, AdminState::kReady)},
       {}},
      {"new server: added, weighted, made ready",
       {},
       {Server("sb-a", "10.0.0.1", 80, 20, AdminState::kReady)},
       {"add server llm/sb-a 10.0.0.1:80 weight 20", "set server llm/sb-a state ready"}},
      {"new server in maintenance stays there",
       {},
       {Server("sb-a", "10.0.0.1", 80, -1, AdminState::kMaint)},
       {"add server llm/sb-a 10.0.0.1:80 weight 1"}},
      {"weight and state changes",
       {Server("sb-a", "10.0.0.1", 80, 20, AdminState::kReady), Server("sb-b", "10.0.0.2", 80, 2, AdminState::kReady)},
       {Server("sb-a", "10.0.0.1", 80, 40, AdminState::kReady), Server("sb-b", "10.0.0.2", 80, -1, AdminState::kDrain)},
       {"set server llm/sb-a weight 40", "set server llm/sb-b state drain"}},
      {"gone: maintenance then delete; foreign servers untouched",
       {Server("sb-a", "10.0.0.1", 80, 20, AdminState::kReady),
        Server("static1", "10.0.0.9", 80, 1, AdminState::kReady),
        Server("sb-old", "10.0.0.3", 80, 1, AdminState::kMaint)},
       {},
       {"set server llm/sb-a state maint", "del server llm/sb-a", "del server llm/sb-old"}},
  };
  for (const Case& c : cases) {
    HaproxyPlan plan = PlanHaproxy(c.current, c.desired, o);
    EXPECT_EQ(plan.commands, c.commands) << c.name;
  }
}

TEST(PlanHaproxyTest, DynamicModeWithHealthChecksAndOptions) {
  HaproxyOptions o;
  o.backend = "llm";
  o.check = true;
  o.server_options = "inter 1s";
  HaproxyPlan plan = PlanHaproxy({}, {Server("sb-a", "fd00::1", 80, 4, AdminState::kReady)}, o);
  EXPECT_THAT(plan.commands, ElementsAre("add server llm/sb-a [fd00::1]:80 weight 4 check inter 1s",
                                         "enable health llm/sb-a", "set server llm/sb-a state ready"));
  EXPECT_EQ(plan.added, 1);
}

TEST(PlanHaproxyTest, TemplateModeKeepsSlotsFillsFreeOnesAndParksTheRest) {
  HaproxyOptions o;
  o.backend = "tpl";
  o.mode = HaproxyMode::kTemplate;
  const std::vector<ProxyServer> current = {
      Server("slot1", "127.0.0.1", 1, 1, AdminState::kMaint),   // Free.
      Server("slot2", "10.0.0.2", 80, 10, AdminState::kReady),  // Holds b.
      Server("slot3", "10.0.0.9", 80, 10, AdminState::kReady),  // Holds an endpoint gone since.
  };
  const std::vector<ProxyServer> desired = {
      Server("sb-a", "10.0.0.1", 80, 6, AdminState::kReady),
      Server("sb-b", "10.0.0.2", 80, 12, AdminState::kReady),
  };
  HaproxyPlan plan = PlanHaproxy(current, desired, o);
  EXPECT_THAT(plan.commands, ElementsAre("set server tpl/slot1 addr 10.0.0.1 port 80", "set server tpl/slot1 weight 6",
                                         "set server tpl/slot1 state ready", "set server tpl/slot2 weight 12",
                                         "set server tpl/slot3 state maint"));
  EXPECT_TRUE(plan.unplaced.empty());

  // More endpoints than slots: the rest are reported, a busy slot is parked before it moves.
  const std::vector<ProxyServer> two = {Server("slot1", "10.0.0.7", 80, 3, AdminState::kReady)};
  plan = PlanHaproxy(two, desired, o);
  EXPECT_THAT(plan.commands,
              ElementsAre("set server tpl/slot1 state maint", "set server tpl/slot1 addr 10.0.0.1 port 80",
                          "set server tpl/slot1 weight 6", "set server tpl/slot1 state ready"));
  EXPECT_THAT(plan.unplaced, ElementsAre("10.0.0.2:80"));
}

TEST(HaproxyCommandSucceededTest, KnowsHaproxysAnswers) {
  for (const char* ok : {"", "\n", "New server registered.\n", "Server deleted.\n",
                         "no need to change the addr, port changed from '1' to '9002' by 'stats socket command'\n",
                         "IP changed from '127.0.0.1' to '10.0.0.1' by 'stats socket command'\n"}) {
    EXPECT_TRUE(HaproxyCommandSucceeded(ok)) << ok;
  }
  for (const char* bad : {"No such server.\n", "Absolute weight can only be between 0 and 256 inclusive.\n",
                          "Only servers in maintenance mode can be deleted.\n", "Unknown command.\n"}) {
    EXPECT_FALSE(HaproxyCommandSucceeded(bad)) << bad;
  }
}

TEST(NginxTest, UpstreamNamesAndBalancing) {
  EXPECT_EQ(NginxUpstreamName("llama-3-8b"), "switchboard_llama-3-8b");
  EXPECT_EQ(NginxUpstreamName("a b/c"), "switchboard_a_b_c");
  EXPECT_EQ(NginxBalancing(v1::LB_POLICY_WEIGHTED), "");
  EXPECT_EQ(NginxBalancing(v1::LB_POLICY_ROUND_ROBIN), "");
  EXPECT_EQ(NginxBalancing(v1::LB_POLICY_LEAST_REQUEST), "least_conn");
  EXPECT_EQ(NginxBalancing(v1::LB_POLICY_SLOT_BASED), "least_conn");
}

TEST(NginxTest, RendersEveryEndpointState) {
  NginxPool p;
  p.assignment =
      Pool("llama",
           {Ep("10.0.0.1:8000", 96), Ep("10.0.0.2:8000", 0, v1::ENDPOINT_STATE_READY, v1::CIRCUIT_STATE_OPEN),
            Ep("10.0.0.3:8000", 12, v1::ENDPOINT_STATE_DRAINING),
            Ep("10.0.0.4:8000", 30, v1::ENDPOINT_STATE_READY, v1::CIRCUIT_STATE_HALF_OPEN),
            Ep("10.0.0.5:8000", 0, v1::ENDPOINT_STATE_STARTING)},
           v1::LB_POLICY_LEAST_REQUEST);
  p.upstream = "switchboard_llama";
  NginxOptions o;
  o.keepalive = 16;
  EXPECT_EQ(RenderNginx({p}, o),
            "# Written by switchboard-sync: do not edit, the next assignment overwrites this file.\n"
            "\n# Pool llama\n"
            "upstream switchboard_llama {\n"
            "    least_conn;\n"
            "    server 10.0.0.1:8000 weight=96;\n"
            "    server 10.0.0.2:8000 down;  # circuit open\n"
            "    server 10.0.0.3:8000 down;  # draining\n"
            "    server 10.0.0.4:8000 weight=1;  # circuit half-open\n"
            "    server 10.0.0.5:8000 down;  # excluded\n"
            "    keepalive 16;\n"
            "}\n");
  o.draining = DrainingAs::kOmit;
  o.keepalive = 0;
  EXPECT_THAT(RenderNginx({p}, o), HasSubstr("    # 10.0.0.3:8000: draining, left out\n"));
}

TEST(NginxTest, OnlyWhatNginxUsesChangesTheFile) {
  NginxPool p;
  p.upstream = "u";
  p.assignment = Pool("llama", {Ep("10.0.0.1:8000", 96)});
  const std::string before = RenderNginx({p}, {});
  p.assignment.set_version("v2");
  p.assignment.mutable_endpoints(0)->set_slots_free(3);
  p.assignment.mutable_endpoints(0)->set_queue_depth(7);
  EXPECT_EQ(RenderNginx({p}, {}), before);
  p.assignment.mutable_endpoints(0)->set_weight(95);
  EXPECT_NE(RenderNginx({p}, {}), before);
}

TEST(NginxTest, EmptyPoolBackupPoolAndSeveralPools) {
  NginxPool empty;
  empty.upstream = "switchboard_empty";
  empty.assignment = Pool("empty", {});
  NginxPool main;
  main.upstream = "switchboard_main";
  main.assignment = Pool("main", {Ep("10.0.0.1:80", 5)});
  main.backup =
      Pool("spare", {Ep("10.0.1.1:80", 7), Ep("10.0.1.2:80", 0, v1::ENDPOINT_STATE_READY, v1::CIRCUIT_STATE_OPEN)});
  const std::string out = RenderNginx({empty, main}, {});
  EXPECT_THAT(out, HasSubstr("upstream switchboard_empty {\n    server 127.0.0.1:9 down;"));
  EXPECT_THAT(out, HasSubstr("upstream switchboard_main {\n    server 10.0.0.1:80 weight=5;\n"
                             "    server 10.0.1.1:80 weight=7 backup;\n"
                             "    # 10.0.1.2:80: backup, circuit open, left out\n}"));
}

}  // namespace
}  // namespace switchboard::sync
