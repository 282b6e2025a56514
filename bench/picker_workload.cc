#include "bench/picker_workload.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace switchboard::bench {

v1::Assignment PickerBenchPool(int endpoints, uint32_t slots_total, bool varied_load) {
  v1::Assignment a;
  a.set_pool("llama");
  for (int i = 0; i < endpoints; ++i) {
    v1::AssignedEndpoint* e = a.add_endpoints();
    e->set_address(absl::StrCat("10.0.", i / 250, ".", i % 250, ":8000"));
    e->set_node_id(absl::StrCat("node-", i));
    e->set_weight(10 + i % 50);
    e->set_state(v1::ENDPOINT_STATE_READY);
    e->set_circuit(v1::CIRCUIT_STATE_CLOSED);
    e->set_slots_total(slots_total);
    e->set_slots_free(varied_load ? static_cast<uint32_t>(i) % slots_total : slots_total / 2);
    e->set_queue_depth(varied_load ? static_cast<uint32_t>(i % 3) : 0);
    e->set_prefill_tokens_per_second(1500 + 500 * (i % 8));
    e->set_decode_tokens_per_second(15 + 5 * (i % 8));
  }
  return a;
}

std::vector<envoy::service::ext_proc::v3::ProcessingRequest> PickerRequestMessages() {
  using ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;
  std::vector<envoy::service::ext_proc::v3::ProcessingRequest> m(4);
  auto* h = m[0].mutable_request_headers();
  for (auto [k, v] : {std::pair<const char*, const char*>{":method", "POST"},
                      {":path", "/v1/chat/completions"},
                      {":authority", "gateway.example"},
                      {"content-type", "application/json"},
                      {"user-agent", "bench"}}) {
    auto* hv = h->mutable_headers()->add_headers();
    hv->set_key(k);
    hv->set_raw_value(v);
  }
  m[0].mutable_protocol_config()->set_request_body_mode(ProcessingMode::FULL_DUPLEX_STREAMED);
  const std::string body = absl::StrCat(R"({"model":"llama","messages":[{"role":"user","content":")",
                                        std::string(1950, 'x'), R"("}],"max_tokens":64})");
  m[1].mutable_request_body()->set_body(body.substr(0, 1024));
  m[2].mutable_request_body()->set_body(body.substr(1024));
  m[2].mutable_request_body()->set_end_of_stream(true);
  auto* st = m[3].mutable_response_headers()->mutable_headers()->add_headers();
  st->set_key(":status");
  st->set_raw_value("200");
  m[3].mutable_response_headers()->set_end_of_stream(true);
  return m;
}

}  // namespace switchboard::bench
