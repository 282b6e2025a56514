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
  // body is still arriving).
  std::vector<ext_proc::ProcessingResponse> Handle(const ext_proc::ProcessingRequest& request);
  // The stream is over: a routed request not finished yet is counted as finished.
  void End();

  // What the exchange decided (tests and the debug log).
  const std::string& picked() const { return picked_; }
  const std::string& pool() const { return pool_; }

 private:
  enum class Stage { kHeaders, kBody, kDecided, kResponse };

  // Parses the request, picks, and appends the answer (a header mutation in a message
  // of `kind`, or an ImmediateResponse) to `out`; false when the answer was immediate.
  bool Decide(ext_proc::ProcessingRequest::RequestCase kind, std::vector<ext_proc::ProcessingResponse>* out);
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
  bool immediate_ = false;  // An ImmediateResponse was sent: ignore the rest.
  std::string pool_, picked_;
  bool in_flight_ = false;  // Counted as sent to picked_, not finished yet.
  // Admitted by the rate limits: the response body (up to max_body_bytes) is kept for its
  // token usage.
  bool count_tokens_ = false;
  RateLimitKeys rate_limit_keys_;
  std::string response_body_;
};

}  // namespace switchboard::picker

#endif  // SWITCHBOARD_PICKER_EXCHANGE_H_
