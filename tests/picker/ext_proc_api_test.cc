// Checks the project's own copy of Envoy's ext_proc messages (proto/envoy: ext_proc,
// processing mode, HTTP status, header and metadata messages) against upstream's field
// numbers and types. The npm copy the xDS test uses predates FULL_DUPLEX_STREAMED and
// StreamedBodyResponse, so the reference here is a table read from upstream:
//   envoyproxy/envoy api/envoy/service/ext_proc/v3/external_processor.proto
//     at 0015fbd525e874e8afcb9193c6fca2e06f0038e3
//   api/envoy/extensions/filters/http/ext_proc/v3/processing_mode.proto
//     at 0628e04994ad44a84eed54fe7e06a1a904c3e0ae
//   api/envoy/config/core/v3/base.proto (Metadata, HeaderValue, HeaderValueOption,
//     HeaderMap) and api/envoy/type/v3/http_status.proto, same repository.
#include <string>
#include <vector>

#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
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

const std::vector<Field>& Upstream() {
  static const std::vector<Field> fields = {
      {"envoy.service.ext_proc.v3.ProtocolConfiguration", "request_body_mode", 1,
       "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode"},
      {"envoy.service.ext_proc.v3.ProtocolConfiguration", "response_body_mode", 2,
       "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode"},
      {"envoy.service.ext_proc.v3.ProtocolConfiguration", "send_body_without_waiting_for_header_response", 3, "bool"},
      {"envoy.service.ext_proc.v3.ProcessingRequest", "request_headers", 2, "envoy.service.ext_proc.v3.HttpHeaders"},
      {"envoy.service.ext_proc.v3.ProcessingRequest", "response_headers", 3, "envoy.service.ext_proc.v3.HttpHeaders"},
      {"envoy.service.ext_proc.v3.ProcessingRequest", "request_body", 4, "envoy.service.ext_proc.v3.HttpBody"},
      {"envoy.service.ext_proc.v3.ProcessingRequest", "response_body", 5, "envoy.service.ext_proc.v3.HttpBody"},
      {"envoy.service.ext_proc.v3.ProcessingRequest", "request_trailers", 6, "envoy.service.ext_proc.v3.HttpTrailers"},
      {"envoy.service.ext_proc.v3.ProcessingRequest", "response_trailers", 7, "envoy.service.ext_proc.v3.HttpTrailers"},
      {"envoy.service.ext_proc.v3.ProcessingRequest", "metadata_context", 8, "envoy.config.core.v3.Metadata"},
      {"envoy.service.ext_proc.v3.ProcessingRequest", "observability_mode", 10, "bool"},
      {"envoy.service.ext_proc.v3.ProcessingRequest", "protocol_config", 11,
       "envoy.service.ext_proc.v3.ProtocolConfiguration"},
      {"envoy.service.ext_proc.v3.ProcessingResponse", "request_headers", 1,
       "envoy.service.ext_proc.v3.HeadersResponse"},
      {"envoy.service.ext_proc.v3.ProcessingResponse", "response_headers", 2,
       "envoy.service.ext_proc.v3.HeadersResponse"},
      {"envoy.service.ext_proc.v3.ProcessingResponse", "request_body", 3, "envoy.service.ext_proc.v3.BodyResponse"},
      {"envoy.service.ext_proc.v3.ProcessingResponse", "response_body", 4, "envoy.service.ext_proc.v3.BodyResponse"},
      {"envoy.service.ext_proc.v3.ProcessingResponse", "request_trailers", 5,
       "envoy.service.ext_proc.v3.TrailersResponse"},
      {"envoy.service.ext_proc.v3.ProcessingResponse", "response_trailers", 6,
       "envoy.service.ext_proc.v3.TrailersResponse"},
      {"envoy.service.ext_proc.v3.ProcessingResponse", "immediate_response", 7,
       "envoy.service.ext_proc.v3.ImmediateResponse"},
      {"envoy.service.ext_proc.v3.ProcessingResponse", "dynamic_metadata", 8, "google.protobuf.Struct"},
      {"envoy.service.ext_proc.v3.ProcessingResponse", "mode_override", 9,
       "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode"},
      {"envoy.service.ext_proc.v3.ProcessingResponse", "override_message_timeout", 10, "google.protobuf.Duration"},
      {"envoy.service.ext_proc.v3.HttpHeaders", "headers", 1, "envoy.config.core.v3.HeaderMap"},
      {"envoy.service.ext_proc.v3.HttpHeaders", "end_of_stream", 3, "bool"},
      {"envoy.service.ext_proc.v3.HttpBody", "body", 1, "bytes"},
      {"envoy.service.ext_proc.v3.HttpBody", "end_of_stream", 2, "bool"},
      {"envoy.service.ext_proc.v3.HttpTrailers", "trailers", 1, "envoy.config.core.v3.HeaderMap"},
      {"envoy.service.ext_proc.v3.HeadersResponse", "response", 1, "envoy.service.ext_proc.v3.CommonResponse"},
      {"envoy.service.ext_proc.v3.BodyResponse", "response", 1, "envoy.service.ext_proc.v3.CommonResponse"},
      {"envoy.service.ext_proc.v3.TrailersResponse", "header_mutation", 1, "envoy.service.ext_proc.v3.HeaderMutation"},
      {"envoy.service.ext_proc.v3.CommonResponse", "status", 1,
       "envoy.service.ext_proc.v3.CommonResponse.ResponseStatus"},
      {"envoy.service.ext_proc.v3.CommonResponse", "header_mutation", 2, "envoy.service.ext_proc.v3.HeaderMutation"},
      {"envoy.service.ext_proc.v3.CommonResponse", "body_mutation", 3, "envoy.service.ext_proc.v3.BodyMutation"},
      {"envoy.service.ext_proc.v3.CommonResponse", "trailers", 4, "envoy.config.core.v3.HeaderMap"},
      {"envoy.service.ext_proc.v3.CommonResponse", "clear_route_cache", 5, "bool"},
      {"envoy.service.ext_proc.v3.ImmediateResponse", "status", 1, "envoy.type.v3.HttpStatus"},
      {"envoy.service.ext_proc.v3.ImmediateResponse", "headers", 2, "envoy.service.ext_proc.v3.HeaderMutation"},
      {"envoy.service.ext_proc.v3.ImmediateResponse", "body", 3, "bytes"},
      {"envoy.service.ext_proc.v3.ImmediateResponse", "grpc_status", 4, "envoy.service.ext_proc.v3.GrpcStatus"},
      {"envoy.service.ext_proc.v3.ImmediateResponse", "details", 5, "string"},
      {"envoy.service.ext_proc.v3.GrpcStatus", "status", 1, "uint32"},
      {"envoy.service.ext_proc.v3.HeaderMutation", "set_headers", 1, "envoy.config.core.v3.HeaderValueOption", true},
      {"envoy.service.ext_proc.v3.HeaderMutation", "remove_headers", 2, "string", true},
      {"envoy.service.ext_proc.v3.StreamedBodyResponse", "body", 1, "bytes"},
      {"envoy.service.ext_proc.v3.StreamedBodyResponse", "end_of_stream", 2, "bool"},
      {"envoy.service.ext_proc.v3.BodyMutation", "body", 1, "bytes"},
      {"envoy.service.ext_proc.v3.BodyMutation", "clear_body", 2, "bool"},
      {"envoy.service.ext_proc.v3.BodyMutation", "streamed_response", 3,
       "envoy.service.ext_proc.v3.StreamedBodyResponse"},
      {"envoy.extensions.filters.http.ext_proc.v3.ProcessingMode", "request_header_mode", 1,
       "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode"},
      {"envoy.extensions.filters.http.ext_proc.v3.ProcessingMode", "response_header_mode", 2,
       "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode"},
      {"envoy.extensions.filters.http.ext_proc.v3.ProcessingMode", "request_body_mode", 3,
       "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode"},
      {"envoy.extensions.filters.http.ext_proc.v3.ProcessingMode", "response_body_mode", 4,
       "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode"},
      {"envoy.extensions.filters.http.ext_proc.v3.ProcessingMode", "request_trailer_mode", 5,
       "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode"},
      {"envoy.extensions.filters.http.ext_proc.v3.ProcessingMode", "response_trailer_mode", 6,
       "envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode"},
      {"envoy.config.core.v3.HeaderValue", "key", 1, "string"},
      {"envoy.config.core.v3.HeaderValue", "value", 2, "string"},
      {"envoy.config.core.v3.HeaderValue", "raw_value", 3, "bytes"},
      {"envoy.config.core.v3.HeaderValueOption", "header", 1, "envoy.config.core.v3.HeaderValue"},
      {"envoy.config.core.v3.HeaderValueOption", "append", 2, "google.protobuf.BoolValue"},
      {"envoy.config.core.v3.HeaderValueOption", "append_action", 3,
       "envoy.config.core.v3.HeaderValueOption.HeaderAppendAction"},
      {"envoy.config.core.v3.HeaderValueOption", "keep_empty_value", 4, "bool"},
      {"envoy.config.core.v3.HeaderMap", "headers", 1, "envoy.config.core.v3.HeaderValue", true},
      {"envoy.type.v3.HttpStatus", "code", 1, "envoy.type.v3.StatusCode"},
  };
  return fields;
}

std::string TypeOf(const FieldDescriptor* f) {
  if (f->message_type() != nullptr) return f->message_type()->full_name();
  if (f->enum_type() != nullptr) return f->enum_type()->full_name();
  return f->type_name();
}

TEST(ExtProcApiTest, FieldsMatchUpstream) {
  // Touching a generated message registers its file (and its imports) in the pool.
  ASSERT_NE(envoy::service::ext_proc::v3::ProcessingRequest::descriptor(), nullptr);
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
  // Metadata.filter_metadata is map<string, Struct> = 1.
  const auto* md = pool->FindMessageTypeByName("envoy.config.core.v3.Metadata");
  ASSERT_NE(md, nullptr);
  const FieldDescriptor* fm = md->FindFieldByName("filter_metadata");
  ASSERT_NE(fm, nullptr);
  EXPECT_EQ(fm->number(), 1);
  EXPECT_TRUE(fm->is_map());
}

TEST(ExtProcApiTest, EnumValuesMatchUpstream) {
  using Mode = envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;
  EXPECT_EQ(Mode::NONE, 0);
  EXPECT_EQ(Mode::STREAMED, 1);
  EXPECT_EQ(Mode::BUFFERED, 2);
  EXPECT_EQ(Mode::BUFFERED_PARTIAL, 3);
  EXPECT_EQ(Mode::FULL_DUPLEX_STREAMED, 4);
  EXPECT_EQ(Mode::DEFAULT, 0);
  EXPECT_EQ(Mode::SEND, 1);
  EXPECT_EQ(Mode::SKIP, 2);
  EXPECT_EQ(envoy::service::ext_proc::v3::CommonResponse::CONTINUE_AND_REPLACE, 1);
  EXPECT_EQ(envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD, 2);
  EXPECT_EQ(envoy::type::v3::TooManyRequests, 429);
  EXPECT_EQ(envoy::type::v3::ServiceUnavailable, 503);
}

TEST(ExtProcApiTest, ServiceIsUpstreams) {
  ASSERT_NE(envoy::service::ext_proc::v3::ProcessingRequest::descriptor(), nullptr);
  EXPECT_STREQ(envoy::service::ext_proc::v3::ExternalProcessor::service_full_name(),
               "envoy.service.ext_proc.v3.ExternalProcessor");
  const auto* s = DescriptorPool::generated_pool()->FindServiceByName("envoy.service.ext_proc.v3.ExternalProcessor");
  ASSERT_NE(s, nullptr);
  const auto* process = s->FindMethodByName("Process");
  ASSERT_NE(process, nullptr);
  EXPECT_TRUE(process->client_streaming());
  EXPECT_TRUE(process->server_streaming());
}

}  // namespace
