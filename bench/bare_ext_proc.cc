#include "bench/bare_ext_proc.h"

#include <deque>
#include <mutex>

namespace switchboard::bench {
namespace {

using ::envoy::config::core::v3::HeaderValueOption;
using ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;

class BareReactor final : public grpc::ServerBidiReactor<ext_proc::ProcessingRequest, ext_proc::ProcessingResponse> {
 public:
  BareReactor(const ext_proc::ProcessingResponse* headers_answer,
              const ext_proc::ProcessingResponse* response_headers_answer,
              const ext_proc::ProcessingResponse* continue_body)
      : headers_answer_(headers_answer),
        response_headers_answer_(response_headers_answer),
        continue_body_(continue_body) {
    StartRead(&request_);
  }

  // Reads are one at a time: request_, full_duplex_ and body_ belong to this callback.
  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        reads_done_ = true;
      }
      Pump();
      return;
    }
    if (first_) {
      first_ = false;
      full_duplex_ = !request_.has_protocol_config() ||
                     request_.protocol_config().request_body_mode() == ProcessingMode::FULL_DUPLEX_STREAMED;
    }
    switch (request_.request_case()) {
      case ext_proc::ProcessingRequest::kRequestHeaders:
        if (request_.request_headers().end_of_stream() || !full_duplex_) Queue(headers_answer_);
        break;
      case ext_proc::ProcessingRequest::kRequestBody:
        if (!full_duplex_) {
          Queue(continue_body_);
          break;
        }
        body_.append(request_.request_body().body());
        if (request_.request_body().end_of_stream()) {
          auto* s =
              echo_.mutable_request_body()->mutable_response()->mutable_body_mutation()->mutable_streamed_response();
          s->set_body(std::move(body_));
          s->set_end_of_stream(true);
          Queue(headers_answer_);
          Queue(&echo_);
        }
        break;
      case ext_proc::ProcessingRequest::kResponseHeaders:
        Queue(response_headers_answer_);
        break;
      default:
        break;  // The load generator sends nothing else.
    }
    Pump();
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      queue_.pop_front();
      if (!ok) queue_.clear();
    }
    Pump();
  }

  void OnDone() override { delete this; }

 private:
  void Queue(const ext_proc::ProcessingResponse* answer) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(answer);
  }

  // As the picker's reactor: one write at a time, Finish once reads are over and every
  // answer is out; gRPC is called outside the mutex.
  void Pump() {
    const ext_proc::ProcessingResponse* next = nullptr;
    bool finish = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (writing_ || finished_) return;
      if (!queue_.empty()) {
        writing_ = true;
        next = queue_.front();
      } else if (reads_done_) {
        finished_ = finish = true;
      }
    }
    if (next != nullptr) StartWrite(next);
    if (finish) Finish(grpc::Status::OK);
  }

  const ext_proc::ProcessingResponse* const headers_answer_;
  const ext_proc::ProcessingResponse* const response_headers_answer_;
  const ext_proc::ProcessingResponse* const continue_body_;
  ext_proc::ProcessingRequest request_;
  bool first_ = true, full_duplex_ = true;
  std::string body_;
  ext_proc::ProcessingResponse echo_;  // The body handed back (once per stream).
  std::mutex mu_;
  std::deque<const ext_proc::ProcessingResponse*> queue_;  // Guarded by mu_, as the flags below.
  bool writing_ = false, reads_done_ = false, finished_ = false;
};

}  // namespace

BareExtProcService::BareExtProcService(const std::string& destination) {
  ext_proc::CommonResponse* common = headers_answer_.mutable_request_headers()->mutable_response();
  HeaderValueOption* o = common->mutable_header_mutation()->add_set_headers();
  o->mutable_header()->set_key("x-gateway-destination-endpoint");
  o->mutable_header()->set_raw_value(destination);
  o->set_append_action(HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
  common->set_clear_route_cache(true);
  (*(*headers_answer_.mutable_dynamic_metadata()->mutable_fields())["envoy.lb"]
        .mutable_struct_value()
        ->mutable_fields())["x-gateway-destination-endpoint"]
      .set_string_value(destination);
  response_headers_answer_.mutable_response_headers();
  continue_body_.mutable_request_body();
}

grpc::ServerBidiReactor<ext_proc::ProcessingRequest, ext_proc::ProcessingResponse>* BareExtProcService::Process(
    grpc::CallbackServerContext* /*context*/) {
  return new BareReactor(&headers_answer_, &response_headers_answer_, &continue_body_);
}

}  // namespace switchboard::bench
