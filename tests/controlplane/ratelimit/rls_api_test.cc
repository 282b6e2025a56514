// Checks the project's copy of Envoy's Rate Limit Service messages (proto/envoy: rls,
// the rate limit descriptor, the rate limit unit) against upstream's field numbers and
// types. The npm copy the xDS test uses has none of them, so the reference is a table read
// from upstream envoyproxy/envoy:
//   api/envoy/service/ratelimit/v3/rls.proto at 067eed6740968f3ff16e50b22ad772a1bc0695d8
//   api/envoy/extensions/common/ratelimit/v3/ratelimit.proto
//     at 0090d86cc8bb32f4afde7f97dc5688a7ab20e011
//   api/envoy/type/v3/ratelimit_unit.proto at 3afd2addc625cd29487190647751f9dc7ae3de92
// HeaderValue (envoy/config/core/v3) is checked by tests/picker/ext_proc_api_test.cc.
#include <string>
#include <vector>

#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"

namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;

struct Field {
  std::string message;  // Full name.
  std::string field;
  int number;
  std::string type;  // Full name of a message or enum type; else the scalar type's name.
  bool repeated = false;
};

constexpr char kRls[] = "envoy.service.ratelimit.v3.";
constexpr char kDesc[] = "envoy.extensions.common.ratelimit.v3.RateLimitDescriptor";

const std::vector<Field>& Upstream() {
  static const std::vector<Field> fields = {
      {std::string(kRls) + "RateLimitRequest", "domain", 1, "string"},
      {std::string(kRls) + "RateLimitRequest", "descriptors", 2, kDesc, true},
      {std::string(kRls) + "RateLimitRequest", "hits_addend", 3, "uint32"},
      {std::string(kRls) + "RateLimitResponse", "overall_code", 1, std::string(kRls) + "RateLimitResponse.Code"},
      {std::string(kRls) + "RateLimitResponse", "statuses", 2, std::string(kRls) + "RateLimitResponse.DescriptorStatus",
       true},
      {std::string(kRls) + "RateLimitResponse", "response_headers_to_add", 3, "envoy.config.core.v3.HeaderValue", true},
      {std::string(kRls) + "RateLimitResponse", "request_headers_to_add", 4, "envoy.config.core.v3.HeaderValue", true},
      {std::string(kRls) + "RateLimitResponse", "raw_body", 5, "bytes"},
      {std::string(kRls) + "RateLimitResponse", "dynamic_metadata", 6, "google.protobuf.Struct"},
      {std::string(kRls) + "RateLimitResponse.RateLimit", "name", 3, "string"},
      {std::string(kRls) + "RateLimitResponse.RateLimit", "requests_per_unit", 1, "uint32"},
      {std::string(kRls) + "RateLimitResponse.RateLimit", "unit", 2,
       std::string(kRls) + "RateLimitResponse.RateLimit.Unit"},
      {std::string(kRls) + "RateLimitResponse.DescriptorStatus", "code", 1,
       std::string(kRls) + "RateLimitResponse.Code"},
      {std::string(kRls) + "RateLimitResponse.DescriptorStatus", "current_limit", 2,
       std::string(kRls) + "RateLimitResponse.RateLimit"},
      {std::string(kRls) + "RateLimitResponse.DescriptorStatus", "limit_remaining", 3, "uint32"},
      {std::string(kRls) + "RateLimitResponse.DescriptorStatus", "duration_until_reset", 4, "google.protobuf.Duration"},
      {kDesc, "entries", 1, std::string(kDesc) + ".Entry", true},
      {kDesc, "limit", 2, std::string(kDesc) + ".RateLimitOverride"},
      {std::string(kDesc) + ".Entry", "key", 1, "string"},
      {std::string(kDesc) + ".Entry", "value", 2, "string"},
      {std::string(kDesc) + ".RateLimitOverride", "requests_per_unit", 1, "uint32"},
      {std::string(kDesc) + ".RateLimitOverride", "unit", 2, "envoy.type.v3.RateLimitUnit"},
  };
  return fields;
}

std::string TypeOf(const FieldDescriptor* f) {
  if (f->message_type() != nullptr) return f->message_type()->full_name();
  if (f->enum_type() != nullptr) return f->enum_type()->full_name();
  return f->type_name();
}

TEST(RlsApiTest, FieldsMatchUpstream) {
  ASSERT_NE(envoy::service::ratelimit::v3::RateLimitRequest::descriptor(), nullptr);
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  for (const Field& u : Upstream()) {
    const auto* m = pool->FindMessageTypeByName(u.message);
    ASSERT_NE(m, nullptr) << u.message;
    const FieldDescriptor* f = m->FindFieldByName(u.field);
    ASSERT_NE(f, nullptr) << u.message << "." << u.field;
    EXPECT_EQ(f->number(), u.number) << u.message << "." << u.field;
    EXPECT_EQ(TypeOf(f), u.type) << u.message << "." << u.field;
    EXPECT_EQ(f->is_repeated(), u.repeated) << u.message << "." << u.field;
  }
}

TEST(RlsApiTest, EnumValuesMatchUpstream) {
  using Response = envoy::service::ratelimit::v3::RateLimitResponse;
  EXPECT_EQ(Response::UNKNOWN, 0);
  EXPECT_EQ(Response::OK, 1);
  EXPECT_EQ(Response::OVER_LIMIT, 2);
  EXPECT_EQ(Response::RateLimit::UNKNOWN, 0);
  EXPECT_EQ(Response::RateLimit::SECOND, 1);
  EXPECT_EQ(Response::RateLimit::MINUTE, 2);
  EXPECT_EQ(Response::RateLimit::HOUR, 3);
  EXPECT_EQ(Response::RateLimit::DAY, 4);
  EXPECT_EQ(Response::RateLimit::MONTH, 5);
  EXPECT_EQ(Response::RateLimit::YEAR, 6);
  EXPECT_EQ(envoy::type::v3::RateLimitUnit::SECOND, 1);
  EXPECT_EQ(envoy::type::v3::RateLimitUnit::MINUTE, 2);
  EXPECT_EQ(envoy::type::v3::RateLimitUnit::HOUR, 3);
  EXPECT_EQ(envoy::type::v3::RateLimitUnit::DAY, 4);
}

TEST(RlsApiTest, ServiceIsUpstreams) {
  ASSERT_NE(envoy::service::ratelimit::v3::RateLimitRequest::descriptor(), nullptr);
  EXPECT_STREQ(envoy::service::ratelimit::v3::RateLimitService::service_full_name(),
               "envoy.service.ratelimit.v3.RateLimitService");
  const auto* s = DescriptorPool::generated_pool()->FindServiceByName("envoy.service.ratelimit.v3.RateLimitService");
  ASSERT_NE(s, nullptr);
  const auto* m = s->FindMethodByName("ShouldRateLimit");
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->client_streaming());
  EXPECT_FALSE(m->server_streaming());
  EXPECT_EQ(m->input_type()->full_name(), "envoy.service.ratelimit.v3.RateLimitRequest");
  EXPECT_EQ(m->output_type()->full_name(), "envoy.service.ratelimit.v3.RateLimitResponse");
}

}  // namespace
