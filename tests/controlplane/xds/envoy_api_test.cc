// Checks the project's own subset of Envoy's API (proto/envoy) against upstream's
// definitions: every message, field (number, name, type, label, oneof), enum value and
// service method the project compiled must be upstream's, and every type URL the control
// plane uses must name an upstream message. Upstream is the copy shipped in
// @grpc/grpc-js-xds 1.14.1, compiled by scripts/xds-upstream-descriptors.sh into the
// descriptor set named by SWITCHBOARD_XDS_UPSTREAM_DESCRIPTORS (a CTest fixture).
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "controlplane/xds/type_urls.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/load_balancing_policies/least_request/v3/least_request.pb.h"
#include "envoy/extensions/load_balancing_policies/override_host/v3/override_host.pb.h"
#include "envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.pb.h"
#include "envoy/service/discovery/v3/ads.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"

namespace switchboard::controlplane::xds {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::FileDescriptorSet;
using google::protobuf::ServiceDescriptor;

// The files of our subset, as compiled into this binary.
const std::vector<std::string>& OurFiles() {
  static const std::vector<std::string> files = {
      "envoy/config/core/v3/address.proto",
      "envoy/config/core/v3/base.proto",
      "envoy/config/core/v3/config_source.proto",
      "envoy/config/core/v3/health_check.proto",
      "envoy/config/core/v3/extension.proto",
      "envoy/config/endpoint/v3/endpoint_components.proto",
      "envoy/config/endpoint/v3/endpoint.proto",
      "envoy/config/cluster/v3/circuit_breaker.proto",
      "envoy/config/cluster/v3/outlier_detection.proto",
      "envoy/config/cluster/v3/cluster.proto",
      "envoy/type/metadata/v3/metadata.proto",
      "envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto",
      "envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto",
      "envoy/config/listener/v3/api_listener.proto",
      "envoy/config/listener/v3/listener.proto",
      "envoy/type/matcher/v3/string.proto",
      "envoy/config/route/v3/route_components.proto",
      "envoy/config/route/v3/route.proto",
      "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
      "envoy/extensions/filters/http/router/v3/router.proto",
      "envoy/service/discovery/v3/discovery.proto",
      "envoy/service/discovery/v3/ads.proto",
      "google/rpc/status.proto",
  };
  return files;
}

// ads.proto declares only a service, so nothing else references its generated file and
// the static library would leave it out of the generated pool.
void LinkAdsDescriptor() {
  const void* volatile table = &descriptor_table_envoy_2fservice_2fdiscovery_2fv3_2fads_2eproto;
  ASSERT_NE(table, nullptr);
  // The same for messages only the resource builder (not linked here) packs.
  ASSERT_NE(envoy::extensions::load_balancing_policies::least_request::v3::LeastRequest::descriptor(), nullptr);
  ASSERT_NE(envoy::extensions::load_balancing_policies::round_robin::v3::RoundRobin::descriptor(), nullptr);
}

class UpstreamPool {
 public:
  UpstreamPool() {
    const char* path = std::getenv("SWITCHBOARD_XDS_UPSTREAM_DESCRIPTORS");
    if (path == nullptr) {
      error_ = "SWITCHBOARD_XDS_UPSTREAM_DESCRIPTORS is not set";
      return;
    }
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    FileDescriptorSet set;
    if (!in || !set.ParseFromString(bytes.str())) {
      error_ = std::string("cannot read the descriptor set ") + path;
      return;
    }
    // --include_imports lists dependencies first, so files build in order.
    for (const auto& file : set.file()) {
      if (pool_.BuildFile(file) == nullptr) {
        error_ = "cannot build " + file.name();
        return;
      }
    }
  }
  const DescriptorPool* pool() const { return &pool_; }
  const std::string& error() const { return error_; }

 private:
  DescriptorPool pool_;
  std::string error_;
};

const UpstreamPool& Upstream() {
  static const UpstreamPool* upstream = new UpstreamPool();
  return *upstream;
}

std::string TypeName(const FieldDescriptor* field) {
  if (field->message_type() != nullptr) return field->message_type()->full_name();
  if (field->enum_type() != nullptr) return field->enum_type()->full_name();
  return field->type_name();
}

void CompareEnum(const EnumDescriptor* ours, const DescriptorPool& upstream, int* checked) {
  SCOPED_TRACE(ours->full_name());
  const EnumDescriptor* theirs = upstream.FindEnumTypeByName(ours->full_name());
  ASSERT_NE(theirs, nullptr) << "no such enum upstream";
  for (int i = 0; i < ours->value_count(); ++i) {
    const auto* value = ours->value(i);
    const auto* match = theirs->FindValueByName(value->name());
    ASSERT_NE(match, nullptr) << value->name() << " is not upstream";
    EXPECT_EQ(match->number(), value->number()) << value->name();
    ++*checked;
  }
}

void CompareMessage(const Descriptor* ours, const DescriptorPool& upstream, int* checked) {
  SCOPED_TRACE(ours->full_name());
  const Descriptor* theirs = upstream.FindMessageTypeByName(ours->full_name());
  ASSERT_NE(theirs, nullptr) << "no such message upstream";
  for (int i = 0; i < ours->field_count(); ++i) {
    const FieldDescriptor* field = ours->field(i);
    SCOPED_TRACE(field->name());
    const FieldDescriptor* match = theirs->FindFieldByNumber(field->number());
    ASSERT_NE(match, nullptr) << "number " << field->number() << " is not upstream";
    EXPECT_EQ(match->name(), field->name());
    EXPECT_EQ(match->type(), field->type());
    EXPECT_EQ(match->label(), field->label());
    EXPECT_EQ(match->is_map(), field->is_map());
    EXPECT_EQ(TypeName(match), TypeName(field));
    const auto* our_oneof = field->real_containing_oneof();
    const auto* their_oneof = match->real_containing_oneof();
    ASSERT_EQ(our_oneof == nullptr, their_oneof == nullptr) << "oneof membership differs";
    if (our_oneof != nullptr) {
      EXPECT_EQ(our_oneof->name(), their_oneof->name());
    }
    ++*checked;
  }
  for (int i = 0; i < ours->nested_type_count(); ++i) {
    if (ours->nested_type(i)->options().map_entry()) continue;  // Checked through the map field.
    CompareMessage(ours->nested_type(i), upstream, checked);
  }
  for (int i = 0; i < ours->enum_type_count(); ++i) CompareEnum(ours->enum_type(i), upstream, checked);
}

void CompareService(const ServiceDescriptor* ours, const DescriptorPool& upstream, int* checked) {
  SCOPED_TRACE(ours->full_name());
  const ServiceDescriptor* theirs = upstream.FindServiceByName(ours->full_name());
  ASSERT_NE(theirs, nullptr) << "no such service upstream";
  for (int i = 0; i < ours->method_count(); ++i) {
    const auto* method = ours->method(i);
    const auto* match = theirs->FindMethodByName(method->name());
    ASSERT_NE(match, nullptr) << method->name();
    EXPECT_EQ(match->input_type()->full_name(), method->input_type()->full_name());
    EXPECT_EQ(match->output_type()->full_name(), method->output_type()->full_name());
    EXPECT_EQ(match->client_streaming(), method->client_streaming());
    EXPECT_EQ(match->server_streaming(), method->server_streaming());
    ++*checked;
  }
}

TEST(EnvoyApiTest, EveryFieldEnumValueAndMethodMatchesUpstream) {
  ASSERT_EQ(Upstream().error(), "");
  LinkAdsDescriptor();
  int checked = 0;
  for (const std::string& name : OurFiles()) {
    SCOPED_TRACE(name);
    const FileDescriptor* file = DescriptorPool::generated_pool()->FindFileByName(name);
    ASSERT_NE(file, nullptr) << "not compiled into the project";
    const FileDescriptor* upstream_file = Upstream().pool()->FindFileByName(name);
    ASSERT_NE(upstream_file, nullptr) << "no such file upstream";
    EXPECT_EQ(file->package(), upstream_file->package());
    for (int i = 0; i < file->message_type_count(); ++i) {
      CompareMessage(file->message_type(i), *Upstream().pool(), &checked);
    }
    for (int i = 0; i < file->enum_type_count(); ++i) CompareEnum(file->enum_type(i), *Upstream().pool(), &checked);
    for (int i = 0; i < file->service_count(); ++i) {
      CompareService(file->service(i), *Upstream().pool(), &checked);
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(EnvoyApiTest, TypeUrlsNameUpstreamMessagesAndOurs) {
  ASSERT_EQ(Upstream().error(), "");
  LinkAdsDescriptor();
  const std::string prefix = "type.googleapis.com/";
  for (const char* url : kAllTypeUrls) {
    SCOPED_TRACE(url);
    const std::string type_url = url;
    ASSERT_EQ(type_url.rfind(prefix, 0), 0u);
    const std::string name = type_url.substr(prefix.size());
    EXPECT_NE(Upstream().pool()->FindMessageTypeByName(name), nullptr);
    EXPECT_NE(DescriptorPool::generated_pool()->FindMessageTypeByName(name), nullptr);
  }
  // The ones the code builds from message types agree with the constants.
  EXPECT_EQ(prefix + envoy::config::listener::v3::Listener::descriptor()->full_name(), kListenerType);
  EXPECT_EQ(prefix + envoy::config::route::v3::RouteConfiguration::descriptor()->full_name(), kRouteConfigurationType);
  EXPECT_EQ(prefix + envoy::config::cluster::v3::Cluster::descriptor()->full_name(), kClusterType);
  EXPECT_EQ(prefix + envoy::config::endpoint::v3::ClusterLoadAssignment::descriptor()->full_name(),
            kClusterLoadAssignmentType);
  EXPECT_EQ(
      prefix + envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager::descriptor()
                   ->full_name(),
      kHttpConnectionManagerType);
  EXPECT_EQ(prefix + envoy::extensions::filters::http::router::v3::Router::descriptor()->full_name(), kRouterType);
  EXPECT_EQ(
      prefix + envoy::extensions::load_balancing_policies::override_host::v3::OverrideHost::descriptor()->full_name(),
      kOverrideHostType);
}

// Messages newer than the npm copy, as upstream defines them: envoyproxy/envoy api/ at
// commit 0bd17f59d089bdc5e7ca47e87f631cfb1bc7e7b1 (read 2026-12-01).
constexpr char kUpstreamCommit[] = "0bd17f59d089bdc5e7ca47e87f631cfb1bc7e7b1";
struct UpstreamField {
  const char* message;
  const char* field;
  int number;
  FieldDescriptor::Type type;
  FieldDescriptor::Label label;
  const char* type_name;  // Message type's full name; "" for scalars.
};
constexpr const char kOverrideHost[] = "envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost";
const UpstreamField kNewerThanNpm[] = {
    {kOverrideHost, "override_host_sources", 1, FieldDescriptor::TYPE_MESSAGE, FieldDescriptor::LABEL_REPEATED,
     "envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost.OverrideHostSource"},
    {kOverrideHost, "selected_host_key", 2, FieldDescriptor::TYPE_MESSAGE, FieldDescriptor::LABEL_OPTIONAL,
     "envoy.type.metadata.v3.MetadataKey"},
    {kOverrideHost, "fallback_policy", 3, FieldDescriptor::TYPE_MESSAGE, FieldDescriptor::LABEL_OPTIONAL,
     "envoy.config.cluster.v3.LoadBalancingPolicy"},
    {"envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost.OverrideHostSource", "header", 1,
     FieldDescriptor::TYPE_STRING, FieldDescriptor::LABEL_OPTIONAL, ""},
    {"envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost.OverrideHostSource", "metadata", 2,
     FieldDescriptor::TYPE_MESSAGE, FieldDescriptor::LABEL_OPTIONAL, "envoy.type.metadata.v3.MetadataKey"},
};

TEST(EnvoyApiTest, NewerMessagesMatchRecordedUpstreamNumbers) {
  SCOPED_TRACE(kUpstreamCommit);
  const DescriptorPool* ours = DescriptorPool::generated_pool();
  ASSERT_NE(envoy::extensions::load_balancing_policies::override_host::v3::OverrideHost::descriptor(), nullptr);
  std::set<std::string> recorded;
  for (const UpstreamField& want : kNewerThanNpm) {
    SCOPED_TRACE(std::string(want.message) + "." + want.field);
    const Descriptor* message = ours->FindMessageTypeByName(want.message);
    ASSERT_NE(message, nullptr);
    const FieldDescriptor* field = message->FindFieldByNumber(want.number);
    ASSERT_NE(field, nullptr);
    EXPECT_EQ(field->name(), want.field);
    EXPECT_EQ(field->type(), want.type);
    EXPECT_EQ(field->label(), want.label);
    EXPECT_EQ(field->real_containing_oneof(), nullptr);
    if (field->message_type() != nullptr) {
      EXPECT_EQ(field->message_type()->full_name(), want.type_name);
    }
    recorded.insert(field->full_name());
  }
  // Every field of those messages is recorded: nothing newer goes unchecked.
  for (const char* name : {kOverrideHost,
                           "envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost."
                           "OverrideHostSource"}) {
    const Descriptor* message = ours->FindMessageTypeByName(name);
    ASSERT_NE(message, nullptr);
    for (int i = 0; i < message->field_count(); ++i) {
      EXPECT_EQ(recorded.count(message->field(i)->full_name()), 1u) << message->field(i)->full_name();
    }
  }
  // The npm copy has no such message, which is why it is recorded here.
  if (Upstream().error().empty()) {
    EXPECT_EQ(Upstream().pool()->FindMessageTypeByName(kOverrideHost), nullptr);
  }
}

TEST(EnvoyApiTest, AdsMethodPathIsUpstreams) {
  LinkAdsDescriptor();
  const ServiceDescriptor* ads =
      DescriptorPool::generated_pool()->FindServiceByName("envoy.service.discovery.v3.AggregatedDiscoveryService");
  ASSERT_NE(ads, nullptr);
  EXPECT_NE(ads->FindMethodByName("StreamAggregatedResources"), nullptr);
  EXPECT_NE(ads->FindMethodByName("DeltaAggregatedResources"), nullptr);
}

}  // namespace
}  // namespace switchboard::controlplane::xds
