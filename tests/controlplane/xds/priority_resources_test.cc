// Priority classes for Envoy: a Cluster per class (POOL~CLASS) and routes on x-priority
// and x-tenant that choose the class exactly as the picker's ClassifyRequest does.
#include "controlplane/xds/priority_resources.h"

#include <map>
#include <string>
#include <vector>

#include "controlplane/policy/admission_proto.h"
#include "controlplane/xds/resources.h"
#include "controlplane/xds/type_urls.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace switchboard::controlplane::xds {
namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::config::route::v3::RouteConfiguration;

policy::AdmissionConfig Classes() {
  policy::AdmissionConfig c;
  c.classes = {{"interactive", 0, 1.0}, {"standard", 1, 0.8}, {"batch", 2, 0.5}};
  c.default_class = "standard";
  c.tenant_classes = {{"acme", "interactive"}, {"free", "batch"}, {"mid", "standard"}};
  return c;
}

// A pool of 3 endpoints with 4 slots each (12 slots), with or without the classes.
v1::Assignment Pool(const std::string& name, bool classes) {
  v1::Assignment a;
  a.set_pool(name);
  a.set_lb_policy(v1::LB_POLICY_WEIGHTED);
  for (int i = 0; i < 3; ++i) {
    v1::AssignedEndpoint* ep = a.add_endpoints();
    ep->set_address("10.0.0." + std::to_string(i + 1) + ":8000");
    ep->set_node_id("node-" + std::to_string(i));
    ep->set_weight(64);
    ep->set_state(v1::ENDPOINT_STATE_READY);
    ep->set_slots_total(4);
    ep->set_slots_free(4);
  }
  if (classes) *a.mutable_priority() = policy::PriorityToProto(Classes(), policy::ClassHeadrooms(Classes(), 2, 12));
  return a;
}

std::shared_ptr<const Snapshot> Snap(const v1::Assignment& a) {
  auto snap = std::make_shared<Snapshot>();
  snap->pool = a.pool();
  snap->version = "v";
  snap->assignment = a;
  return snap;
}

// Envoy's route matching as far as these routes use it: the first route whose header
// matchers (exact) all match the request's headers.
std::string RoutedCluster(const RouteConfiguration& config, const std::map<std::string, std::string>& headers) {
  for (const auto& route : config.virtual_hosts(0).routes()) {
    bool all = true;
    for (const auto& m : route.match().headers()) {
      auto it = headers.find(m.name());
      all = all && it != headers.end() && it->second == m.string_match().exact();
    }
    if (all) return route.route().cluster();
  }
  return "(404)";
}

TEST(PriorityResourcesTest, OneClusterPerClassSharingThePoolsEndpoints) {
  policy::PoolPolicy pool_policy;
  pool_policy.envoy.max_requests = 7;
  const v1::Assignment a = Pool("llama", true);
  const Cluster pool_cluster = BuildCluster(a, ClientKind::kEnvoy, &pool_policy);
  const std::vector<Cluster> clusters = BuildClassClusters(a, pool_cluster);
  ASSERT_EQ(clusters.size(), 3u);
  const struct {
    const char* name;
    uint32_t max_requests;
  } want[] = {{"llama~interactive", 7}, {"llama~standard", 7}, {"llama~batch", 6}};  // min(pool's 7, share x 12).
  for (size_t i = 0; i < clusters.size(); ++i) {
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(clusters[i].name(), want[i].name);
    EXPECT_EQ(clusters[i].eds_cluster_config().service_name(), "llama") << "the pool's ClusterLoadAssignment";
    EXPECT_TRUE(clusters[i].eds_cluster_config().eds_config().has_ads());
    ASSERT_EQ(clusters[i].circuit_breakers().thresholds_size(), 1);
    EXPECT_EQ(clusters[i].circuit_breakers().thresholds(0).max_requests().value(), want[i].max_requests);
    EXPECT_EQ(clusters[i].outlier_detection().SerializeAsString(),
              pool_cluster.outlier_detection().SerializeAsString());
  }
  // With Envoy's default thresholds (1024) the share decides: 12, 9 (floor of 9.6), 6.
  policy::PoolPolicy defaults;
  const std::vector<Cluster> wide = BuildClassClusters(a, BuildCluster(a, ClientKind::kEnvoy, &defaults));
  EXPECT_EQ(wide[0].circuit_breakers().thresholds(0).max_requests().value(), 12u);
  EXPECT_EQ(wide[1].circuit_breakers().thresholds(0).max_requests().value(), 9u);
  EXPECT_EQ(wide[2].circuit_breakers().thresholds(0).max_requests().value(), 6u);
  // Without classes: none.
  EXPECT_TRUE(BuildClassClusters(Pool("llama", false), pool_cluster).empty());
}

// Every combination of headers lands on the cluster of the class the picker would give
// the request (ClassifyRequest), for the values Envoy sees as sent.
TEST(PriorityResourcesTest, RoutesChooseTheClassAsThePickerDoes) {
  const v1::Assignment a = Pool("llama", true);
  const v1::Assignment other = Pool("qwen", false);
  const std::vector<std::shared_ptr<const Snapshot>> snaps = {Snap(a), Snap(other)};
  std::shared_ptr<const Catalog> catalog = BuildCatalog(snaps, ClientKind::kEnvoy);
  RouteConfiguration config;
  ASSERT_TRUE(catalog->Of(kRouteConfigurationType).at(kEnvoyRouteName)->any.UnpackTo(&config));

  const policy::AdmissionConfig classes = Classes();
  for (const char* priority : {"", "interactive", "standard", "batch"}) {
    for (const char* tenant : {"", "acme", "mid", "free", "stranger"}) {
      SCOPED_TRACE(::testing::Message() << "x-priority '" << priority << "' x-tenant '" << tenant << "'");
      std::map<std::string, std::string> headers = {{kModelHeader, "llama"}};
      if (*priority != '\0') headers["x-priority"] = priority;
      if (*tenant != '\0') headers["x-tenant"] = tenant;
      EXPECT_EQ(RoutedCluster(config, headers),
                ClassClusterName("llama", policy::ClassifyRequest(classes, priority, tenant).name));
    }
  }
  // A pool without classes keeps its one route; an unknown pool matches nothing.
  EXPECT_EQ(RoutedCluster(config, {{kModelHeader, "qwen"}, {"x-priority", "batch"}}), "qwen");
  EXPECT_EQ(RoutedCluster(config, {{kModelHeader, "other"}}), "(404)");

  // The class clusters are in the Envoy catalog, not in gRPC's.
  const auto& clusters = catalog->Of(kClusterType);
  for (const char* name : {"llama", "llama~interactive", "llama~standard", "llama~batch", "qwen"}) {
    EXPECT_EQ(clusters.count(name), 1u) << name;
  }
  EXPECT_EQ(clusters.size(), 5u);
  std::shared_ptr<const Catalog> grpc = BuildCatalog(snaps, ClientKind::kGrpc);
  EXPECT_EQ(grpc->Of(kClusterType).size(), 2u);
  EXPECT_EQ(catalog->Of(kClusterLoadAssignmentType).size(), 2u) << "one per pool, shared by its classes";
}

// YAML as JSON, as Envoy reads it: unquoted integers and booleans become numbers and
// booleans, everything else a string.
nlohmann::json ToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = ToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(ToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.Scalar();
      if (node.Tag() != "!") {
        if (text == "true" || text == "false") return text == "true";
        if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) return std::stoll(text);
      }
      return text;
    }
    default:
      return nullptr;
  }
}

// deploy/envoy/priority-classes.yaml is exactly the route table the control plane sends
// for the classes it documents.
TEST(PriorityResourcesTest, TheDeploySnippetIsWhatTheControlPlaneSends) {
  RouteConfiguration snippet;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const std::string json =
      ToJson(YAML::LoadFile(std::string(SWITCHBOARD_DEPLOY_DIR) + "/envoy/priority-classes.yaml")).dump();
  auto status = google::protobuf::util::JsonStringToMessage(json, &snippet, options);
  ASSERT_TRUE(status.ok()) << status.message();

  policy::AdmissionConfig c;
  c.classes = {{"interactive", 0, 1.0}, {"standard", 1, 0.8}, {"batch", 2, 0.5}};
  c.default_class = "standard";
  c.tenant_classes = {{"acme", "interactive"}, {"free-tier", "batch"}};
  v1::Assignment a = Pool("llama-3-8b", false);
  *a.mutable_priority() = policy::PriorityToProto(c, policy::ClassHeadrooms(c, 0, 12));
  std::shared_ptr<const Catalog> catalog = BuildCatalog({Snap(a)}, ClientKind::kEnvoy);
  RouteConfiguration sent;
  ASSERT_TRUE(catalog->Of(kRouteConfigurationType).at(kEnvoyRouteName)->any.UnpackTo(&sent));
  std::string diff;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differencer.Compare(snippet, sent)) << diff;
}

}  // namespace
}  // namespace switchboard::controlplane::xds
