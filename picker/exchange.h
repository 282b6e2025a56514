// One ext_proc stream as the Gateway API Inference Extension's endpoint-picker protocol
// uses it: Envoy's messages for one HTTP request and its response in, the picker's
// answers out. Single-threaded (the service's reactor feeds it one message at a time);
// the gRPC plumbing is in ext_proc_service.h so that tests can drive this directly.
//
// Request path, by the request body mode (ProcessingRequest.protocol_config when Envoy
// sends it, otherwise ExchangeOptions::default_body_mode):
//  - FULL_DUPLEX_STREAMED: headers and body chunks arrive without waiting; once the body
//    is complete (end_of_stream, or the trailers) the picker answers the headers (the
//    pick), then hands the body back in StreamedBodyResponses, then answers the trailers.
//  - BUFFERED (and STREAMED, BUFFERED_PARTIAL): the headers are answered at once; the pick
//    rides on the answer to the last body chunk, whose header mutations Envoy applies.
//  - No body (end_of_stream on the headers): the pick rides on the headers' answer.
// The pick is the header x-gateway-destination-endpoint and the same value in dynamic
// metadata envoy.lb/x-gateway-destination-endpoint, with clear_route_cache; no eligible
// endpoint: ImmediateResponse 503; shed (the pool past its bound, or the request's
// priority class past its share: x-priority, x-tenant): 429 with Retry-After; no model: 400.
//
// Response path: the status (:status) and the endpoint that served the request (dynamic
// metadata envoy.lb/x-gateway-destination-endpoint-served, else the header of that
// name, else the pick) become an outcome for the control plane's circuit breakers.
#ifndef SWITCHBOARD_PICKER_EXCHANGE_H_
#define SWITCHBOARD_PICKER_EXCHANGE_H_

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "envoy/service/ext_proc/v3/external_processor.pb.h"
#include "picker/metrics.h"
#include "picker/pool_table.h"
#include "picker/rate_limit.h"

namespace switchboard::picker {

namespace ext_proc = ::envoy::service::ext_proc::v3;
using BodySendMode = ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode::BodySendMode;

inline constexpr char kDestinationHeader[] = "x-gateway-destination-endpoint";
inline constexpr char kServedKey[] = "x-gateway-destination-endpoint-served";
inline constexpr char kLbNamespace[] = "envoy.lb";
inline constexpr char kSubsetNamespace[] = "envoy.lb.subset_hint";
inline constexpr char kSubsetKey[] = "x-gateway-destination-endpoint-subset";
inline constexpr char kModelHeader[] = "x-gateway-model-name";
inline constexpr char kDebugHeader[] = "x-switchboard-pick";

struct ExchangeOptions {
  // When Envoy does not say (protocol_config is newer than some Envoys). The Gateway API
  // Inference Extension's reference configuration streams full duplex.
  BodySendMode default_body_mode =
      ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode::FULL_DUPLEX_STREAMED;
  size_t max_body_bytes = 8 << 20;     // Larger bodies: 413.
  std::string session_header;          // Session affinity by this request header; empty: off.
  bool debug_header = false;           // Add x-switchboard-pick (the pick's reason) to the request.
  size_t body_chunk_bytes = 64 << 10;  // StreamedBodyResponse size (Envoy's recommendation).
  // The global rate limits (picker/rate_limit.h); null: off. Asked after the model is
  // known and before the pick (over the limit: 429 with x-ratelimit-* and Retry-After);
  // the response body's usage.total_tokens is reported after the response.
  RateLimitClient* rate_limits = nullptr;
};

class Exchange {
 public:
  Exchange(PoolTable* table, const ExchangeOptions* options, PickerMetrics* metrics)
      : table_(table), options_(options), metrics_(metrics) {}
  ~Exchange() { End(); }
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // The answers to `request`, in order (none in observability mode, or while a full-duplex
  // body is still arriving). With rate limits on, Handle may stop before the pick to ask
  // them (awaiting_rate_limit()): the caller then sends the check (rate_limit_keys()),
  // feeds no further message, and calls Resume with the verdict.
  std::vector<ext_proc::ProcessingResponse> Handle(const ext_proc::ProcessingRequest& request);
  bool awaiting_rate_limit() const { return awaiting_rate_limit_; }
  const RateLimitKeys& rate_limit_keys() const { return rate_limit_keys_; }
  // The answers that the rate limit check held back: the pick (and the body and trailers
  // after it), or a 429 with the limit's x-ratelimit-* headers and Retry-After.
  std::vector<ext_proc::ProcessingResponse> Resume(const RateLimitVerdict& verdict);
  // Priority-class queues (PoolTable::Pick): with a callback set, a request its class
  // refuses may be held instead of answered 429. Handle (or Resume) then returns without
  // the pick and awaiting_release() is true; the table calls `on_release` once (from any
  // thread) with the pick, and the caller, feeding no message meanwhile, passes it to
  // ResumeHeld for the answers. Without a callback: 429 at once.
  void set_on_release(PoolTable::ReleaseCallback on_release) { on_release_ = std::move(on_release); }
  bool awaiting_release() const { return held_ != 0; }
  std::vector<ext_proc::ProcessingResponse> ResumeHeld(const client::PickResult& result);
  // The stream is over: a routed request not finished yet is counted as finished, a held
  // one leaves its queue.
  void End();

  // What the exchange decided (tests and the debug log).
  const std::string& picked() const { return picked_; }
  const std::string& pool() const { return pool_; }

 private:
  enum class Stage { kHeaders, kBody, kDecided, kResponse };

  // What follows a pick that routes the request: the body handed back (full duplex), and
  // the answer to the trailers.
  struct AfterPick {
    bool flush_body = false;
    bool end_of_stream = false;  // Of the flushed body.
    bool trailers = false;
  };
  // Parses the request, checks the rate limits (or stops to await them), picks, and appends
  // the answers (a header mutation in a message of `kind` then `after`, or an
  // ImmediateResponse) to `out`.
  void Decide(ext_proc::ProcessingRequest::RequestCase kind, AfterPick after,
              std::vector<ext_proc::ProcessingResponse>* out);
  // The pick itself, once the rate limits admitted the request.
  void Pick(ext_proc::ProcessingRequest::RequestCase kind, AfterPick after,
            std::vector<ext_proc::ProcessingResponse>* out);
  // The answers for the pick's `result` (`class_refused`: a kShed by the class).
  void Answer(ext_proc::ProcessingRequest::RequestCase kind, AfterPick after, client::PickResult result,
              bool class_refused, std::vector<ext_proc::ProcessingResponse>* out);
  void Immediate(int code, const std::string& body, absl::Duration retry_after,
                 std::vector<ext_proc::ProcessingResponse>* out,
                 const std::vector<std::pair<std::string, std::string>>& headers = {});
  void ReportTokens();
  void FlushBody(bool end_of_stream, std::vector<ext_proc::ProcessingResponse>* out);
  void FinishRequest();

  PoolTable* const table_;
  const ExchangeOptions* const options_;
  PickerMetrics* const metrics_;
  bool first_ = true;
  BodySendMode request_body_mode_ = {};
  BodySendMode response_body_mode_ = {};
  Stage stage_ = Stage::kHeaders;
  std::string path_, session_, model_header_;
  std::string priority_, tenant_;  // x-priority, x-tenant (priority classes).
  std::vector<std::string> subset_;
  std::string body_;
  bool immediate_ = false;      // An ImmediateResponse was sent: ignore the rest.
  bool observability_ = false;  // Envoy does not wait for answers: none are sent.
  // Decide stopped for the rate limits: what Resume continues with.
  bool awaiting_rate_limit_ = false;
  ext_proc::ProcessingRequest::RequestCase pending_kind_ = ext_proc::ProcessingRequest::REQUEST_NOT_SET;
  AfterPick pending_after_;
  std::chrono::steady_clock::time_point decide_started_;
  std::string model_;  // The request's model (its pool), once parsed.
  double prompt_tokens_ = 0;
  std::string pool_, picked_;
  bool in_flight_ = false;  // Counted as sent to picked_, not finished yet.
  // Admitted by the rate limits: the response body (up to max_body_bytes) is kept for its
  // token usage.
  bool count_tokens_ = false;
  RateLimitKeys rate_limit_keys_;
  PoolTable::ReleaseCallback on_release_;
  uint64_t held_ = 0;  // Held in its class's queue (PoolTable's id); 0: not.
  std::string response_body_;
};

}  // namespace switchboard::picker

#endif  // SWITCHBOARD_PICKER_EXCHANGE_H_
