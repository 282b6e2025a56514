#include "controlplane/fleet/client_registry.h"

#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane {
namespace {

TEST(ClientRegistryTest, TracksIdentityResourcesAcksAndNacks) {
  FakeClock clock;
  ClientRegistry registry(&clock);
  const absl::Time start = clock.Now();
  const uint64_t ads = registry.Add("ads-sotw", "ipv4:127.0.0.1:1000");
  clock.Advance(absl::Seconds(5));
  const uint64_t native = registry.Add("native", "ipv4:127.0.0.1:2000");
  registry.Identify(ads, "envoy-1", "envoy/1.30");
  registry.AddResource(ads, "type/Cluster");
  registry.AddResource(ads, "type/Cluster");
  registry.Ack(ads, "type/Cluster", "v1");
  registry.Ack(ads, "type/Cluster", "v2");
  registry.Nack(ads, "type/Listener", "bad listener");
  registry.Identify(native, "gw", "native");
  registry.AddResource(native, "*");
  registry.Ack(native, "pool-a", "p1");

  std::vector<ConnectedClient> clients = registry.List();
  ASSERT_EQ(clients.size(), 2u);
  const ConnectedClient& a = clients[0];
  EXPECT_EQ(a.protocol, "ads-sotw");
  EXPECT_EQ(a.client_id, "envoy-1");
  EXPECT_EQ(a.user_agent, "envoy/1.30");
  EXPECT_EQ(a.peer, "ipv4:127.0.0.1:1000");
  EXPECT_EQ(a.connected_since, start);
  EXPECT_EQ(a.resources, (std::set<std::string>{"type/Cluster"}));
  EXPECT_EQ(a.acked, (std::map<std::string, std::string>{{"type/Cluster", "v2"}}));
  EXPECT_EQ(a.last_nack_resource, "type/Listener");
  EXPECT_EQ(a.last_nack, "bad listener");
  EXPECT_EQ(a.last_nack_time, start + absl::Seconds(5));
  const ConnectedClient& n = clients[1];
  EXPECT_EQ(n.client_id, "gw");
  EXPECT_EQ(n.acked.at("pool-a"), "p1");
  EXPECT_EQ(n.last_nack_time, absl::InfinitePast());
  EXPECT_TRUE(n.last_nack.empty());

  registry.Remove(ads);
  clients = registry.List();
  ASSERT_EQ(clients.size(), 1u);
  EXPECT_EQ(clients[0].client_id, "gw");
  // Calls for a removed stream are ignored.
  registry.Ack(ads, "type/Cluster", "v3");
  registry.Nack(ads, "type/Cluster", "late");
  EXPECT_EQ(registry.List().size(), 1u);
}

TEST(ClientRegistryTest, ClipsWhatClientsSend) {
  FakeClock clock;
  ClientRegistry registry(&clock);
  const uint64_t id = registry.Add("ads-delta", "peer");
  registry.Identify(id, std::string(10000, 'x'), std::string(10000, 'u'));
  registry.Nack(id, "t", std::string(10000, 'm'));
  for (size_t i = 0; i < ClientRegistry::kMaxResources + 10; ++i) {
    registry.AddResource(id, std::to_string(i));
    registry.Ack(id, std::to_string(i), "v");
  }
  const ConnectedClient c = registry.List().at(0);
  EXPECT_LE(c.client_id.size(), ClientRegistry::kMaxField + 3);
  EXPECT_LE(c.user_agent.size(), ClientRegistry::kMaxField + 3);
  EXPECT_LE(c.last_nack.size(), ClientRegistry::kMaxNackMessage + 3);
  EXPECT_EQ(c.resources.size(), ClientRegistry::kMaxResources);
  EXPECT_EQ(c.acked.size(), ClientRegistry::kMaxResources);
}

TEST(ClientRegistryTest, ConcurrentStreams) {
  FakeClock clock;
  ClientRegistry registry(&clock);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&registry, t] {
      for (int i = 0; i < 200; ++i) {
        const uint64_t id = registry.Add("native", "p");
        registry.Identify(id, std::to_string(t), "native");
        registry.Ack(id, "pool", std::to_string(i));
        (void)registry.List();
        registry.Remove(id);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(registry.List().empty());
}

}  // namespace
}  // namespace switchboard::controlplane
