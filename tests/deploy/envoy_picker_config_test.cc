// deploy/envoy/picker-*.yaml: Envoy bootstraps that put switchboard-picker in front of
// the servers. Each parses, every cluster a filter, route or ADS source names exists,
// the ext_proc filter comes before the router with the endpoint-picker protocol's modes,
// and the destination is the header the picker sets: to the first address through an
// ORIGINAL_DST cluster (fails closed), or through the control plane's override_host
// clusters over ADS (fails open to the pool's weights).
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "controlplane/xds/resources.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace switchboard {
namespace {

const std::string kDir = std::string(SWITCHBOARD_DEPLOY_DIR) + "/envoy";

std::vector<std::string> PickerConfigs() {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(kDir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("picker-", 0) == 0 && entry.path().extension() == ".yaml") out.push_back(entry.path().string());
  }
  return out;
}

std::set<std::string> StaticClusters(const YAML::Node& root) {
  std::set<std::string> names;
  for (const YAML::Node& c : root["static_resources"]["clusters"]) names.insert(c["name"].as<std::string>());
  return names;
}

// The HTTP connection manager of the first listener.
YAML::Node Hcm(const YAML::Node& root) {
  return root["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
}

YAML::Node Filter(const YAML::Node& hcm, const std::string& name) {
  for (const YAML::Node& f : hcm["http_filters"]) {
    if (f["name"].as<std::string>() == name) return f;
  }
  return YAML::Node();
}

TEST(EnvoyPickerConfigTest, BothVariantsExist) {
  std::set<std::string> names;
  for (const std::string& path : PickerConfigs()) names.insert(std::filesystem::path(path).filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"picker-envoy.yaml", "picker-envoy-failopen.yaml"}));
}

TEST(EnvoyPickerConfigTest, ReferencesResolveAndTheFilterSpeaksThePickerProtocol) {
  for (const std::string& path : PickerConfigs()) {
    SCOPED_TRACE(path);
    const YAML::Node root = YAML::LoadFile(path);
    const std::set<std::string> clusters = StaticClusters(root);
    ASSERT_EQ(root["static_resources"]["listeners"].size(), 1u);
    const YAML::Node hcm = Hcm(root);
    EXPECT_EQ(root["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["name"].as<std::string>(),
              "envoy.filters.network.http_connection_manager");

    // ext_proc, then the router last.
    const YAML::Node filters = hcm["http_filters"];
    ASSERT_GE(filters.size(), 2u);
    EXPECT_EQ(filters[filters.size() - 1]["name"].as<std::string>(), "envoy.filters.http.router");
    EXPECT_EQ(filters[filters.size() - 2]["name"].as<std::string>(), "envoy.filters.http.ext_proc");
    const YAML::Node ext_proc = Filter(hcm, "envoy.filters.http.ext_proc")["typed_config"];
    EXPECT_EQ(ext_proc["@type"].as<std::string>(),
              "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor");
    const std::string picker = ext_proc["grpc_service"]["envoy_grpc"]["cluster_name"].as<std::string>();
    ASSERT_EQ(clusters.count(picker), 1u) << picker;
    const YAML::Node mode = ext_proc["processing_mode"];
    EXPECT_EQ(mode["request_header_mode"].as<std::string>(), "SEND");
    EXPECT_EQ(mode["response_header_mode"].as<std::string>(), "SEND");  // The status it counts.
    EXPECT_EQ(mode["request_body_mode"].as<std::string>(), "FULL_DUPLEX_STREAMED");
    EXPECT_EQ(mode["request_trailer_mode"].as<std::string>(), "SEND");
    EXPECT_EQ(mode["response_body_mode"].as<std::string>(), "NONE");

    // The picker's cluster: HTTP/2 (gRPC) to its default --listen port, its load
    // assignment named as the cluster.
    for (const YAML::Node& c : root["static_resources"]["clusters"]) {
      const std::string name = c["name"].as<std::string>();
      if (c["load_assignment"]) {
        EXPECT_EQ(c["load_assignment"]["cluster_name"].as<std::string>(), name);
      }
      if (name != picker) continue;
      EXPECT_TRUE(c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
                   ["explicit_http_config"]["http2_protocol_options"]);
      EXPECT_EQ(
          c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]["port_value"]
              .as<int>(),
          9002);
    }
    // Whatever comes over ADS comes through a cluster that exists.
    if (root["dynamic_resources"]) {
      for (const YAML::Node& s : root["dynamic_resources"]["ads_config"]["grpc_services"]) {
        EXPECT_EQ(clusters.count(s["envoy_grpc"]["cluster_name"].as<std::string>()), 1u);
      }
    }
    // Routes: static ones name clusters that exist; dynamic ones are the control plane's table.
    if (hcm["route_config"]) {
      for (const YAML::Node& vh : hcm["route_config"]["virtual_hosts"]) {
        for (const YAML::Node& r : vh["routes"]) {
          EXPECT_EQ(clusters.count(r["route"]["cluster"].as<std::string>()), 1u) << r["route"]["cluster"];
        }
      }
    } else {
      EXPECT_EQ(hcm["rds"]["route_config_name"].as<std::string>(), controlplane::xds::kEnvoyRouteName);
      EXPECT_TRUE(hcm["rds"]["config_source"]["ads"]);
    }
  }
}

// Fails closed: the static ORIGINAL_DST cluster connects to the first address of the
// picker's header, and without the picker there is nowhere to go.
TEST(EnvoyPickerConfigTest, OriginalDstFollowsThePickersHeader) {
  const YAML::Node root = YAML::LoadFile(kDir + "/picker-envoy.yaml");
  const std::string routed =
      Hcm(root)["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["cluster"].as<std::string>();
  bool found = false;
  for (const YAML::Node& c : root["static_resources"]["clusters"]) {
    if (c["name"].as<std::string>() != routed) continue;
    found = true;
    EXPECT_EQ(c["type"].as<std::string>(), "ORIGINAL_DST");
    EXPECT_EQ(c["lb_policy"].as<std::string>(), "CLUSTER_PROVIDED");
    EXPECT_TRUE(c["original_dst_lb_config"]["use_http_header"].as<bool>());
    EXPECT_EQ(c["original_dst_lb_config"]["http_header_name"].as<std::string>(),
              controlplane::xds::kDestinationEndpointHeader);
  }
  EXPECT_TRUE(found) << routed;
  EXPECT_FALSE(Filter(Hcm(root), "envoy.filters.http.ext_proc")["typed_config"]["failure_mode_allow"].as<bool>());
}

// Fails open: clusters come from the control plane (override_host clusters fall back to
// the pool's weights) and the filter lets a request through when the picker does not answer.
TEST(EnvoyPickerConfigTest, FailOpenTakesClustersFromTheControlPlane) {
  const YAML::Node root = YAML::LoadFile(kDir + "/picker-envoy-failopen.yaml");
  EXPECT_TRUE(root["dynamic_resources"]["cds_config"]["ads"]);
  EXPECT_TRUE(Filter(Hcm(root), "envoy.filters.http.ext_proc")["typed_config"]["failure_mode_allow"].as<bool>());
}

}  // namespace
}  // namespace switchboard
