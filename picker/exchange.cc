#include "picker/exchange.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "picker/request.h"

namespace switchboard::picker {
namespace {

using ::envoy::config::core::v3::HeaderMap;
using ::envoy::config::core::v3::HeaderValueOption;
using ::envoy::config::core::v3::Metadata;
using ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;

std::string HeaderValue(const HeaderMap& headers, const std::string& key) {
  for (const auto& h : headers.headers()) {
    if (absl::EqualsIgnoreCase(h.key(), key)) return h.raw_value().empty() ? h.value() : h.raw_value();
  }
  return "";
}

// filter_metadata[ns][key] as a list of strings (a list value, or one comma-separated string).
std::vector<std::string> MetadataStrings(const Metadata& metadata, const std::string& ns, const std::string& key) {
  std::vector<std::string> out;
  auto it = metadata.filter_metadata().find(ns);
  if (it == metadata.filter_metadata().end()) return out;
  auto field = it->second.fields().find(key);
  if (field == it->second.fields().end()) return out;
  auto add = [&out](absl::string_view text) {
    for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
      out.emplace_back(absl::StripAsciiWhitespace(part));
    }
  };
  if (field->second.has_list_value()) {
    for (const auto& v : field->second.list_value().values()) {
      if (v.kind_case() == google::protobuf::Value::kStringValue) add(v.string_value());
    }
  } else if (field->second.kind_case() == google::protobuf::Value::kStringValue) {
    add(field->second.string_value());
  }
  return out;
}

void SetHeader(ext_proc::HeaderMutation* mutation, const std::string& key, const std::string& value) {
  HeaderValueOption* o = mutation->add_set_headers();
  o->mutable_header()->set_key(key);
  o->mutable_header()->set_raw_value(value);
  o->set_append_action(HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
}

bool FullDuplex(BodySendMode mode) { return mode == ProcessingMode::FULL_DUPLEX_STREAMED; }

}  // namespace

std::vector<ext_proc::ProcessingResponse> Exchange::Handle(const ext_proc::ProcessingRequest& request) {
  std::vector<ext_proc::ProcessingResponse> out;
  if (first_) {
    first_ = false;
    request_body_mode_ = options_->default_body_mode;
    response_body_mode_ = ProcessingMode::NONE;
    if (request.has_protocol_config()) {
      request_body_mode_ = request.protocol_config().request_body_mode();
      response_body_mode_ = request.protocol_config().response_body_mode();
    }
  }
  if (immediate_) return out;  // Envoy stops after an ImmediateResponse.
  observability_ = request.observability_mode();
  switch (request.request_case()) {
    case ext_proc::ProcessingRequest::kRequestHeaders: {
      const HeaderMap& headers = request.request_headers().headers();
      path_ = HeaderValue(headers, ":path");
      model_header_ = HeaderValue(headers, kModelHeader);
      priority_ = HeaderValue(headers, controlplane::policy::kPriorityHeader);
      tenant_ = HeaderValue(headers, controlplane::policy::kTenantHeader);
      if (!options_->session_header.empty()) session_ = HeaderValue(headers, options_->session_header);
      subset_ = MetadataStrings(request.metadata_context(), kSubsetNamespace, kSubsetKey);
      if (request.request_headers().end_of_stream()) {
        Decide(ext_proc::ProcessingRequest::kRequestHeaders, {}, &out);
      } else if (!FullDuplex(request_body_mode_)) {
        out.emplace_back().mutable_request_headers();  // CONTINUE; the pick comes with the body.
        stage_ = Stage::kBody;
      } else {
        stage_ = Stage::kBody;
      }
      break;
    }
    case ext_proc::ProcessingRequest::kRequestBody: {
      const ext_proc::HttpBody& chunk = request.request_body();
      if (stage_ != Stage::kBody) {  // A body after the pick: pass it on unchanged.
        if (FullDuplex(request_body_mode_)) {
          auto* s = out.emplace_back()
                        .mutable_request_body()
                        ->mutable_response()
                        ->mutable_body_mutation()
                        ->mutable_streamed_response();
          s->set_body(chunk.body());
          s->set_end_of_stream(chunk.end_of_stream());
        } else {
          out.emplace_back().mutable_request_body();
        }
        break;
      }
      if (body_.size() + chunk.body().size() > options_->max_body_bytes) {
        metrics_->too_large->Increment();
        Immediate(413, absl::StrCat("request body over ", options_->max_body_bytes, " bytes\n"), absl::ZeroDuration(),
                  &out);
        break;
      }
      body_.append(chunk.body());
      if (FullDuplex(request_body_mode_)) {
        if (chunk.end_of_stream()) {
          Decide(ext_proc::ProcessingRequest::kRequestHeaders, AfterPick{true, true, false}, &out);
        }
      } else if (chunk.end_of_stream()) {
        Decide(ext_proc::ProcessingRequest::kRequestBody, {}, &out);
      } else {
        out.emplace_back().mutable_request_body();  // STREAMED: each chunk gets its answer.
      }
      break;
    }
    case ext_proc::ProcessingRequest::kRequestTrailers:
      if (stage_ == Stage::kBody && FullDuplex(request_body_mode_)) {
        // The trailers end a full-duplex body: pick, then the headers, body and trailers.
        Decide(ext_proc::ProcessingRequest::kRequestHeaders, AfterPick{true, false, true}, &out);
      } else if (stage_ == Stage::kBody) {
        Decide(ext_proc::ProcessingRequest::kRequestBody, AfterPick{false, false, true}, &out);
      } else {
        out.emplace_back().mutable_request_trailers();
      }
      break;
    case ext_proc::ProcessingRequest::kResponseHeaders: {
      const HeaderMap& headers = request.response_headers().headers();
      int status = 0;
      (void)absl::SimpleAtoi(HeaderValue(headers, ":status"), &status);
      std::vector<std::string> served = MetadataStrings(request.metadata_context(), kLbNamespace, kServedKey);
      if (served.empty()) served = absl::StrSplit(HeaderValue(headers, kServedKey), ',', absl::SkipWhitespace());
      if (!pool_.empty() && status > 0) {
        (void)table_->Outcome(pool_, served.empty() ? picked_ : served.front(), status);
        (status >= 500   ? metrics_->responses_server_error
         : status >= 400 ? metrics_->responses_client_error
                         : metrics_->responses_ok)
            ->Increment();
      }
      stage_ = Stage::kResponse;
      if (request.response_headers().end_of_stream()) FinishRequest();
      out.emplace_back().mutable_response_headers();
      break;
    }
    case ext_proc::ProcessingRequest::kResponseBody: {
      const ext_proc::HttpBody& chunk = request.response_body();
      if (count_tokens_) {
        if (response_body_.size() + chunk.body().size() <= options_->max_body_bytes) {
          response_body_.append(chunk.body());
        } else {
          count_tokens_ = false;  // Too large to keep: its tokens are not counted.
        }
        if (chunk.end_of_stream()) ReportTokens();
      }
      if (FullDuplex(response_body_mode_)) {
        auto* s = out.emplace_back()
                      .mutable_response_body()
                      ->mutable_response()
                      ->mutable_body_mutation()
                      ->mutable_streamed_response();
        s->set_body(chunk.body());
        s->set_end_of_stream(chunk.end_of_stream());
      } else {
        out.emplace_back().mutable_response_body();
      }
      if (chunk.end_of_stream()) FinishRequest();
      break;
    }
    case ext_proc::ProcessingRequest::kResponseTrailers:
      ReportTokens();
      FinishRequest();
      out.emplace_back().mutable_response_trailers();
      break;
    case ext_proc::ProcessingRequest::REQUEST_NOT_SET:
      break;
  }
  if (request.observability_mode()) out.clear();
  return out;
}

void Exchange::Decide(ext_proc::ProcessingRequest::RequestCase kind, AfterPick after,
                      std::vector<ext_proc::ProcessingResponse>* out) {
  decide_started_ = std::chrono::steady_clock::now();
  stage_ = Stage::kDecided;
  std::string model = model_header_;
  double prompt_tokens = 0;
  if (!body_.empty()) {
    absl::StatusOr<InferenceRequest> parsed = ParseInferenceRequest(path_, body_);
    if (!parsed.ok()) {
      metrics_->bad_request->Increment();
      Immediate(400, absl::StrCat(parsed.status().message(), "\n"), absl::ZeroDuration(), out);
      return;
    }
    model = parsed->model;
    prompt_tokens = parsed->prompt_tokens;
  }
  if (model.empty()) {
    metrics_->bad_request->Increment();
    Immediate(400, "the request names no model (a JSON body with \"model\", or the header x-gateway-model-name)\n",
              absl::ZeroDuration(), out);
    return;
  }
  model_ = model;
  prompt_tokens_ = prompt_tokens;
  if (options_->rate_limits != nullptr) {
    rate_limit_keys_ = RateLimitKeys{tenant_, priority_, model};
    awaiting_rate_limit_ = true;
    pending_kind_ = kind;
    pending_after_ = after;
    return;
  }
  Pick(kind, after, out);
}

std::vector<ext_proc::ProcessingResponse> Exchange::Resume(const RateLimitVerdict& v) {
  std::vector<ext_proc::ProcessingResponse> out;
  if (!awaiting_rate_limit_) return out;
  awaiting_rate_limit_ = false;
  if (v.error) metrics_->rate_limit_errors->Increment();
  if (!v.admit) {
    metrics_->rate_limited->Increment();
    Immediate(429, absl::StrCat(v.reason, "; retry later\n"), v.error ? absl::Seconds(1) : v.retry_after, &out,
              v.headers);
  } else {
    count_tokens_ = !v.error;
    Pick(pending_kind_, pending_after_, &out);
  }
  if (observability_) out.clear();
  return out;
}

void Exchange::Pick(ext_proc::ProcessingRequest::RequestCase kind, AfterPick after,
                    std::vector<ext_proc::ProcessingResponse>* out) {
  const std::string& model = model_;
  client::PickRequest request;
  request.prompt_tokens = prompt_tokens_;
  request.session_id = session_;
  request.subset = subset_;
  bool class_refused = false;
  uint64_t held = 0;
  client::PickResult result =
      table_->Pick(model, request, priority_, tenant_, &class_refused, on_release_, on_release_ ? &held : nullptr);
  if (held != 0) {  // In its class's queue: ResumeHeld answers.
    held_ = held;
    pending_kind_ = kind;
    pending_after_ = after;
    return;
  }
  Answer(kind, after, std::move(result), class_refused, out);
}

std::vector<ext_proc::ProcessingResponse> Exchange::ResumeHeld(const client::PickResult& result) {
  std::vector<ext_proc::ProcessingResponse> out;
  if (held_ == 0) return out;
  held_ = 0;
  Answer(pending_kind_, pending_after_, result, result.verdict == client::PickVerdict::kShed, &out);
  if (observability_) out.clear();
  return out;
}

void Exchange::Answer(ext_proc::ProcessingRequest::RequestCase kind, AfterPick after, client::PickResult result,
                      bool class_refused, std::vector<ext_proc::ProcessingResponse>* out) {
  const std::string& model = model_;
  metrics_->decide_seconds->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - decide_started_).count());
  switch (result.verdict) {
    case client::PickVerdict::kUnavailable:
      metrics_->unavailable->Increment();
      Immediate(503, absl::StrCat("no endpoint available: ", result.reason, "\n"), absl::ZeroDuration(), out);
      return;
    case client::PickVerdict::kShed:
      if (class_refused) {
        metrics_->class_refused->Increment();
        Immediate(429, absl::StrCat("pool ", model, " is too busy for this request's priority class; retry later\n"),
                  result.retry_after, out);
        return;
      }
      metrics_->shed->Increment();
      Immediate(429, absl::StrCat("pool ", model, " is saturated; retry later\n"), result.retry_after, out);
      return;
    case client::PickVerdict::kRoute:
      break;
  }
  metrics_->routed->Increment();
  pool_ = model;
  picked_ = result.endpoints.front();
  in_flight_ = true;
  const std::string value = absl::StrJoin(result.endpoints, ",");
  ext_proc::ProcessingResponse& r = out->emplace_back();
  ext_proc::CommonResponse* common = kind == ext_proc::ProcessingRequest::kRequestBody
                                         ? r.mutable_request_body()->mutable_response()
                                         : r.mutable_request_headers()->mutable_response();
  SetHeader(common->mutable_header_mutation(), kDestinationHeader, value);
  if (options_->debug_header) {
    client::ExplainPick(&result);  // The table decides without formatting the reason.
    SetHeader(common->mutable_header_mutation(), kDebugHeader, result.reason);
  }
  common->set_clear_route_cache(true);
  google::protobuf::Struct lb;
  (*lb.mutable_fields())[kDestinationHeader].set_string_value(value);
  *(*r.mutable_dynamic_metadata()->mutable_fields())[kLbNamespace].mutable_struct_value() = std::move(lb);
  if (after.flush_body) FlushBody(after.end_of_stream, out);
  if (after.trailers) out->emplace_back().mutable_request_trailers();
}

void Exchange::FlushBody(bool end_of_stream, std::vector<ext_proc::ProcessingResponse>* out) {
  const size_t chunk = std::max<size_t>(1, options_->body_chunk_bytes);
  size_t offset = 0;
  do {
    const size_t n = std::min(chunk, body_.size() - offset);
    auto* s = out->emplace_back()
                  .mutable_request_body()
                  ->mutable_response()
                  ->mutable_body_mutation()
                  ->mutable_streamed_response();
    s->set_body(body_.substr(offset, n));
    offset += n;
    s->set_end_of_stream(end_of_stream && offset == body_.size());
  } while (offset < body_.size());
  body_.clear();
  body_.shrink_to_fit();
}

void Exchange::Immediate(int code, const std::string& body, absl::Duration retry_after,
                         std::vector<ext_proc::ProcessingResponse>* out,
                         const std::vector<std::pair<std::string, std::string>>& headers) {
  immediate_ = true;
  ext_proc::ImmediateResponse* i = out->emplace_back().mutable_immediate_response();
  for (const auto& [key, value] : headers) SetHeader(i->mutable_headers(), key, value);
  i->mutable_status()->set_code(static_cast<::envoy::type::v3::StatusCode>(code));
  i->set_body(body);
  i->set_details(absl::StrCat("switchboard_picker_", code));
  if (retry_after > absl::ZeroDuration()) {
    SetHeader(i->mutable_headers(), "retry-after",
              absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(retry_after, absl::Seconds(1))))));
  }
}

void Exchange::FinishRequest() {
  if (!in_flight_) return;
  in_flight_ = false;
  table_->Done(pool_, picked_);
}

void Exchange::ReportTokens() {
  if (!count_tokens_) return;
  count_tokens_ = false;
  if (std::optional<uint64_t> tokens = ResponseTokens(response_body_); tokens.has_value()) {
    options_->rate_limits->ReportTokens(rate_limit_keys_, *tokens);
  }
  response_body_.clear();
}

void Exchange::End() {
  if (held_ != 0) {
    table_->Unhold(held_);
    held_ = 0;
  }
  FinishRequest();
}

}  // namespace switchboard::picker
