// deploy/envoy/envoy.yaml must be a valid Envoy bootstrap: it is parsed as Envoy's own
// Bootstrap message, with upstream's definitions (not the project's subset), every typed
// config resolved and unknown fields rejected, as Envoy does at start. The definitions
// come from the descriptor set of scripts/xds-upstream-descriptors.sh (a CTest fixture).
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "controlplane/xds/resources.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace switchboard {
namespace {

using google::protobuf::DescriptorPool;

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
      if (node.Tag() != "!") {  // Not quoted.
        if (text == "true" || text == "false") return text == "true";
        if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) return std::stoll(text);
      }
      return text;
    }
    default:
      return nullptr;
  }
}

class EnvoyBootstrapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* path = std::getenv("SWITCHBOARD_XDS_UPSTREAM_DESCRIPTORS");
    ASSERT_NE(path, nullptr) << "SWITCHBOARD_XDS_UPSTREAM_DESCRIPTORS is not set";
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    google::protobuf::FileDescriptorSet set;
    ASSERT_TRUE(set.ParseFromString(bytes.str())) << path;
    for (const auto& file : set.file()) ASSERT_NE(pool_.BuildFile(file), nullptr) << file.name();
    bootstrap_type_ = pool_.FindMessageTypeByName("envoy.config.bootstrap.v3.Bootstrap");
    ASSERT_NE(bootstrap_type_, nullptr);
    json_ = ToJson(YAML::LoadFile(std::string(SWITCHBOARD_DEPLOY_DIR) + "/envoy/envoy.yaml"));
  }

  // Parses `json` as a Bootstrap; the error, or "" when it parsed.
  std::string Parse(const nlohmann::json& json) {
    std::unique_ptr<google::protobuf::Message> message(factory_.GetPrototype(bootstrap_type_)->New());
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = false;
    auto status = google::protobuf::util::JsonStringToMessage(json.dump(), message.get(), options);
    return status.ok() ? "" : std::string(status.message());
  }

  DescriptorPool pool_;
  google::protobuf::DynamicMessageFactory factory_{&pool_};
  const google::protobuf::Descriptor* bootstrap_type_ = nullptr;
  nlohmann::json json_;
};

TEST_F(EnvoyBootstrapTest, ParsesAsEnvoysBootstrap) { EXPECT_EQ(Parse(json_), ""); }

TEST_F(EnvoyBootstrapTest, UnknownFieldsAndTypesWouldBeRejected) {
  // The check has teeth: what Envoy would refuse, the parse refuses too.
  nlohmann::json misspelled = json_;
  misspelled["static_resources"]["listeners"][0]["adress"] = misspelled["static_resources"]["listeners"][0]["address"];
  EXPECT_NE(Parse(misspelled), "");
  nlohmann::json unknown_type = json_;
  unknown_type["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["@type"] =
      "type.googleapis.com/envoy.extensions.filters.network.no_such_filter.v3.Config";
  EXPECT_NE(Parse(unknown_type), "");
  nlohmann::json wrong_field = json_;
  wrong_field["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["stat_prefx"] = "x";
  EXPECT_NE(Parse(wrong_field), "");
}

TEST_F(EnvoyBootstrapTest, ListensWithTheRoutesTheControlPlaneServes) {
  const auto& hcm = json_["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
  EXPECT_EQ(hcm["rds"]["route_config_name"], controlplane::xds::kEnvoyRouteName);
  EXPECT_TRUE(hcm["rds"]["config_source"].contains("ads"));
  EXPECT_EQ(hcm["http_filters"].back()["name"], "envoy.filters.http.router");
  EXPECT_TRUE(json_["dynamic_resources"]["cds_config"].contains("ads"));
}

}  // namespace
}  // namespace switchboard
