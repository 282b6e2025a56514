// Drives one ext_proc exchange with the messages Envoy sends, in Envoy's order, for each
// body mode, and checks the answers against the endpoint-picker protocol.
#include "picker/exchange.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace switchboard::picker {
namespace {

using ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;

v1::Assignment Pool(const std::string& name, int endpoints) {
  v1::Assignment a;
  a.set_pool(name);
  a.set_version("v1");
  for (int i = 0; i < endpoints; ++i) {
    v1::AssignedEndpoint* e = a.add_endpoints();
    e->set_address("10.0.0." + std::to_string(i + 1) + ":8000");
    e->set_node_id("node-" + std::to_string(i));
    e->set_weight(10);
    e->set_state(v1::ENDPOINT_STATE_READY);
    e->set_circuit(v1::CIRCUIT_STATE_CLOSED);
    e->set_slots_total(4);
    e->set_slots_free(4);
  }
  return a;
}

ext_proc::ProcessingRequest Headers(bool end_of_stream, BodySendMode mode = ProcessingMode::NONE) {
  ext_proc::ProcessingRequest r;
  auto* h = r.mutable_request_headers();
  h->set_end_of_stream(end_of_stream);
  for (auto [k, v] : {std::pair<const char*, const char*>{":path", "/v1/chat/completions"},
                      {":method", "POST"},
                      {"content-type", "application/json"}}) {
    auto* hv = h->mutable_headers()->add_headers();
    hv->set_key(k);
    hv->set_raw_value(v);
  }
  if (mode != ProcessingMode::NONE) r.mutable_protocol_config()->set_request_body_mode(mode);
  return r;
}

ext_proc::ProcessingRequest Body(const std::string& bytes, bool end_of_stream) {
  ext_proc::ProcessingRequest r;
  r.mutable_request_body()->set_body(bytes);
  r.mutable_request_body()->set_end_of_stream(end_of_stream);
  return r;
}

ext_proc::ProcessingRequest ResponseHeaders(int status, const std::string& served) {
  ext_proc::ProcessingRequest r;
  auto* hv = r.mutable_response_headers()->mutable_headers()->add_headers();
  hv->set_key(":status");
  hv->set_raw_value(std::to_string(status));
  if (!served.empty()) {
    (*(*r.mutable_metadata_context()->mutable_filter_metadata())[kLbNamespace].mutable_fields())[kServedKey]
        .set_string_value(served);
  }
  return r;
}

std::string HeaderSet(const ext_proc::CommonResponse& c, const std::string& key) {
  for (const auto& o : c.header_mutation().set_headers()) {
    if (o.header().key() == key) return o.header().raw_value();
  }
  return "";
}

std::string MetadataValue(const ext_proc::ProcessingResponse& r) {
  auto ns = r.dynamic_metadata().fields().find(kLbNamespace);
  if (ns == r.dynamic_metadata().fields().end()) return "";
  auto v = ns->second.struct_value().fields().find(kDestinationHeader);
  return v == ns->second.struct_value().fields().end() ? "" : v->second.string_value();
}

const std::string kBody = R"({"model":"llama","messages":[{"role":"user","content":"hello there"}]})";

class ExchangeTest : public ::testing::Test {
 protected:
  ExchangeTest() : table_({}, Policy(), 1), metrics_(MakePickerMetrics()) {
    EXPECT_TRUE(table_.Apply(Pool("llama", 3)).ok());
  }
  static client::PickPolicy Policy() {
    client::PickPolicy p;
    p.shed_occupancy = 2;
    return p;
  }
  PoolTable table_;
  ExchangeOptions options_;
  std::unique_ptr<PickerMetrics> metrics_;
};

TEST_F(ExchangeTest, FullDuplexAnswersHeadersThenHandsTheBodyBack) {
  Exchange x(&table_, &options_, metrics_.get());
  EXPECT_TRUE(x.Handle(Headers(false, ProcessingMode::FULL_DUPLEX_STREAMED)).empty());
  EXPECT_TRUE(x.Handle(Body(kBody.substr(0, 10), false)).empty());
  auto out = x.Handle(Body(kBody.substr(10), true));
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(out[0].has_request_headers());
  const ext_proc::CommonResponse& c = out[0].request_headers().response();
  const std::string value = HeaderSet(c, kDestinationHeader);
  EXPECT_EQ(value.rfind(x.picked(), 0), 0u) << value;  // The pick first, then 2 fallbacks.
  EXPECT_EQ(std::count(value.begin(), value.end(), ','), 2) << value;
  EXPECT_EQ(MetadataValue(out[0]), value);
  EXPECT_TRUE(c.clear_route_cache());
  ASSERT_TRUE(out[1].has_request_body());
  const auto& streamed = out[1].request_body().response().body_mutation().streamed_response();
  EXPECT_EQ(streamed.body(), kBody);
  EXPECT_TRUE(streamed.end_of_stream());
  EXPECT_EQ(x.pool(), "llama");
}

TEST_F(ExchangeTest, FullDuplexWithTrailersAndSmallChunks) {
  options_.body_chunk_bytes = 16;
  Exchange x(&table_, &options_, metrics_.get());
  EXPECT_TRUE(x.Handle(Headers(false, ProcessingMode::FULL_DUPLEX_STREAMED)).empty());
  EXPECT_TRUE(x.Handle(Body(kBody, false)).empty());
  ext_proc::ProcessingRequest trailers;
  trailers.mutable_request_trailers();
  auto out = x.Handle(trailers);
  ASSERT_GE(out.size(), 3u);
  EXPECT_TRUE(out.front().has_request_headers());
  EXPECT_TRUE(out.back().has_request_trailers());
  std::string echoed;
  for (size_t i = 1; i + 1 < out.size(); ++i) {
    const auto& s = out[i].request_body().response().body_mutation().streamed_response();
    EXPECT_LE(s.body().size(), 16u);
    EXPECT_FALSE(s.end_of_stream());
    echoed += s.body();
  }
  EXPECT_EQ(echoed, kBody);
}

TEST_F(ExchangeTest, BufferedAnswersHeadersAtOnceAndPicksOnTheBody) {
  Exchange x(&table_, &options_, metrics_.get());
  auto out = x.Handle(Headers(false, ProcessingMode::BUFFERED));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].has_request_headers());
  EXPECT_FALSE(out[0].request_headers().response().has_header_mutation());
  out = x.Handle(Body(kBody, true));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_request_body());
  const std::string value = HeaderSet(out[0].request_body().response(), kDestinationHeader);
  EXPECT_FALSE(value.empty());
  EXPECT_EQ(MetadataValue(out[0]), value);
}

TEST_F(ExchangeTest, SubsetHintIsHonored) {
  Exchange x(&table_, &options_, metrics_.get());
  ext_proc::ProcessingRequest h = Headers(false, ProcessingMode::FULL_DUPLEX_STREAMED);
  auto* list =
      (*(*h.mutable_metadata_context()->mutable_filter_metadata())[kSubsetNamespace].mutable_fields())[kSubsetKey]
          .mutable_list_value();
  list->add_values()->set_string_value("10.0.0.2:8000");
  x.Handle(h);
  auto out = x.Handle(Body(kBody, true));
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(HeaderSet(out[0].request_headers().response(), kDestinationHeader), "10.0.0.2:8000");
}

TEST_F(ExchangeTest, NoEligibleEndpointIs503) {
  v1::Assignment a = Pool("llama", 2);
  a.mutable_endpoints(0)->set_circuit(v1::CIRCUIT_STATE_OPEN);
  a.mutable_endpoints(1)->set_state(v1::ENDPOINT_STATE_DRAINING);
  ASSERT_TRUE(table_.Apply(a).ok());
  Exchange x(&table_, &options_, metrics_.get());
  x.Handle(Headers(false, ProcessingMode::FULL_DUPLEX_STREAMED));
  auto out = x.Handle(Body(kBody, true));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_immediate_response());
  EXPECT_EQ(out[0].immediate_response().status().code(), 503);
  // An unknown model too.
  Exchange y(&table_, &options_, metrics_.get());
  y.Handle(Headers(false, ProcessingMode::FULL_DUPLEX_STREAMED));
  out = y.Handle(Body(R"({"model":"other","prompt":"x"})", true));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].immediate_response().status().code(), 503);
  EXPECT_TRUE(y.Handle(Body("late", true)).empty());  // Nothing after an immediate response.
}

TEST_F(ExchangeTest, SaturatedPoolIs429WithRetryAfter) {
  v1::Assignment a = Pool("llama", 1);
  a.mutable_endpoints(0)->set_slots_free(0);
  a.mutable_endpoints(0)->set_queue_depth(9);  // (4 + 9) / 4 > 2.
  ASSERT_TRUE(table_.Apply(a).ok());
  Exchange x(&table_, &options_, metrics_.get());
  x.Handle(Headers(false, ProcessingMode::FULL_DUPLEX_STREAMED));
  auto out = x.Handle(Body(kBody, true));
  ASSERT_EQ(out.size(), 1u);
  const auto& i = out[0].immediate_response();
  EXPECT_EQ(i.status().code(), 429);
  ASSERT_EQ(i.headers().set_headers_size(), 1);
  EXPECT_EQ(i.headers().set_headers(0).header().key(), "retry-after");
  EXPECT_EQ(i.headers().set_headers(0).header().raw_value(), "1");
}

TEST_F(ExchangeTest, BadBodyIs400) {
  Exchange x(&table_, &options_, metrics_.get());
  x.Handle(Headers(false, ProcessingMode::BUFFERED));
  auto out = x.Handle(Body("not json", true));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].immediate_response().status().code(), 400);
}

TEST_F(ExchangeTest, ResponsePathCountsServedErrors) {
  {
    Exchange x(&table_, &options_, metrics_.get());
    x.Handle(Headers(false, ProcessingMode::FULL_DUPLEX_STREAMED));
    x.Handle(Body(kBody, true));
    auto out = x.Handle(ResponseHeaders(503, "10.0.0.3:8000"));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].has_response_headers());
  }
  {
    Exchange x(&table_, &options_, metrics_.get());
    x.Handle(Headers(false, ProcessingMode::FULL_DUPLEX_STREAMED));
    x.Handle(Body(kBody, true));
    x.Handle(ResponseHeaders(200, "10.0.0.3:8000"));
  }
  {
    Exchange x(&table_, &options_, metrics_.get());
    x.Handle(Headers(false, ProcessingMode::FULL_DUPLEX_STREAMED));
    x.Handle(Body(kBody, true));
    x.Handle(ResponseHeaders(404, "10.0.0.3:8000"));  // A 4xx is the client's: no error.
  }
  auto outcomes = table_.TakeOutcomes();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].node_id(), "node-2");
  EXPECT_EQ(outcomes[0].address(), "10.0.0.3:8000");
  EXPECT_EQ(outcomes[0].requests(), 3u);
  EXPECT_EQ(outcomes[0].errors(), 1u);
  EXPECT_TRUE(table_.TakeOutcomes().empty());
}

TEST_F(ExchangeTest, InFlightCountsUntilTheResponseEnds) {
  v1::Assignment a = Pool("llama", 1);
  ASSERT_TRUE(table_.Apply(a).ok());
  client::PickRequest r;
  {
    Exchange x(&table_, &options_, metrics_.get());
    x.Handle(Headers(false, ProcessingMode::FULL_DUPLEX_STREAMED));
    x.Handle(Body(kBody, true));
    x.Handle(ResponseHeaders(200, ""));
    const client::PickResult p = table_.Pick("llama", r);
    EXPECT_EQ(p.verdict, client::PickVerdict::kRoute);
    table_.Done("llama", p.endpoints.front());
  }
  // Both are over (the stream ended): the pool is empty again, and admits 8 in flight
  // (occupancy 8 / 4 slots = the bound 2) before it sheds the next.
  for (int i = 0; i < 9; ++i) EXPECT_EQ(table_.Pick("llama", r).verdict, client::PickVerdict::kRoute) << i;
  EXPECT_EQ(table_.Pick("llama", r).verdict, client::PickVerdict::kShed);
}

TEST_F(ExchangeTest, ObservabilityModeGetsNoAnswers) {
  Exchange x(&table_, &options_, metrics_.get());
  ext_proc::ProcessingRequest h = Headers(true);
  h.set_observability_mode(true);
  EXPECT_TRUE(x.Handle(h).empty());
}

// With rate limits on, the exchange stops before the pick and asks them; nothing is
// answered until Resume, which then answers exactly what the pick would have (the pick,
// the body handed back, the trailers' answer), or a 429 with the limit's headers.
class RateLimitedExchangeTest : public ExchangeTest {
 protected:
  RateLimitedExchangeTest()
      // Never called: the exchange only names the check; the service sends it.
      : client_(grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials()), "llm", absl::Seconds(1), true) {
    options_.rate_limits = &client_;
  }
  static ext_proc::ProcessingRequest Trailers() {
    ext_proc::ProcessingRequest t;
    t.mutable_request_trailers();
    return t;
  }
  RateLimitClient client_;
};

TEST_F(RateLimitedExchangeTest, AwaitsTheVerdictThenPicksAndHandsTheBodyBack) {
  options_.body_chunk_bytes = 16;
  Exchange x(&table_, &options_, metrics_.get());
  ext_proc::ProcessingRequest h = Headers(false, ProcessingMode::FULL_DUPLEX_STREAMED);
  auto* tenant = h.mutable_request_headers()->mutable_headers()->add_headers();
  tenant->set_key("x-tenant");
  tenant->set_raw_value("acme");
  EXPECT_TRUE(x.Handle(h).empty());
  EXPECT_FALSE(x.awaiting_rate_limit());
  EXPECT_TRUE(x.Handle(Body(kBody, false)).empty());
  EXPECT_TRUE(x.Handle(Trailers()).empty());
  ASSERT_TRUE(x.awaiting_rate_limit());
  EXPECT_EQ(x.rate_limit_keys().tenant, "acme");
  EXPECT_EQ(x.rate_limit_keys().model, "llama");
  EXPECT_EQ(x.picked(), "");  // Nothing picked (nothing counted in flight) before the verdict.

  auto out = x.Resume(RateLimitVerdict{});
  EXPECT_FALSE(x.awaiting_rate_limit());
  ASSERT_GE(out.size(), 3u);
  EXPECT_NE(HeaderSet(out.front().request_headers().response(), kDestinationHeader), "");
  EXPECT_TRUE(out.back().has_request_trailers());
  std::string echoed;
  for (size_t i = 1; i + 1 < out.size(); ++i) {
    echoed += out[i].request_body().response().body_mutation().streamed_response().body();
  }
  EXPECT_EQ(echoed, kBody);
  EXPECT_EQ(x.pool(), "llama");
  EXPECT_NE(x.picked(), "");
  EXPECT_TRUE(x.Resume(RateLimitVerdict{}).empty());  // Once only.
}

TEST_F(RateLimitedExchangeTest, RefusedVerdictAnswers429AndPicksNothing) {
  struct Case {
    BodySendMode mode;
    bool trailers;
  };
  for (const Case& c : {Case{ProcessingMode::FULL_DUPLEX_STREAMED, false}, Case{ProcessingMode::BUFFERED, false},
                        Case{ProcessingMode::BUFFERED, true}}) {
    SCOPED_TRACE(static_cast<int>(c.mode) * 10 + c.trailers);
    Exchange x(&table_, &options_, metrics_.get());
    (void)x.Handle(Headers(false, c.mode));
    auto out = x.Handle(Body(kBody, !c.trailers));
    if (c.trailers) out = x.Handle(Trailers());
    EXPECT_TRUE(out.empty() || (out.size() == 1 && out[0].has_request_body())) << out.size();
    ASSERT_TRUE(x.awaiting_rate_limit());
    RateLimitVerdict refused;
    refused.admit = false;
    refused.reason = "over the rate limit per-tenant:requests";
    refused.retry_after = absl::Milliseconds(2500);
    refused.headers = {{"x-ratelimit-limit", "3, 3;w=60"}};
    out = x.Resume(refused);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_TRUE(out[0].has_immediate_response());
    const auto& i = out[0].immediate_response();
    EXPECT_EQ(i.status().code(), 429);
    std::map<std::string, std::string> headers;
    for (const auto& o : i.headers().set_headers()) headers[o.header().key()] = o.header().raw_value();
    EXPECT_EQ(headers["retry-after"], "3");
    EXPECT_EQ(headers["x-ratelimit-limit"], "3, 3;w=60");
    EXPECT_EQ(x.picked(), "");
    EXPECT_TRUE(x.Handle(Trailers()).empty());  // Nothing after an immediate response.
  }
  EXPECT_EQ(metrics_->rate_limited->Value(), 3);
  EXPECT_EQ(metrics_->routed->Value(), 0);
}

// The buffered mode: the headers are answered at once, the pick rides on the body's answer
// once the verdict is in.
TEST_F(RateLimitedExchangeTest, BufferedPickRidesOnTheBodysAnswer) {
  Exchange x(&table_, &options_, metrics_.get());
  auto out = x.Handle(Headers(false, ProcessingMode::BUFFERED));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].has_request_headers());
  EXPECT_TRUE(x.Handle(Body(kBody, true)).empty());
  ASSERT_TRUE(x.awaiting_rate_limit());
  RateLimitVerdict failed_open;  // The service failed; the failure mode allowed it.
  failed_open.error = true;
  out = x.Resume(failed_open);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_request_body());
  EXPECT_NE(HeaderSet(out[0].request_body().response(), kDestinationHeader), "");
  EXPECT_EQ(metrics_->rate_limit_errors->Value(), 1);
}

}  // namespace
}  // namespace switchboard::picker
