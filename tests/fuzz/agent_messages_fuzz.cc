// libFuzzer target: the control plane's ingest (validation and FleetState) fed arbitrary
// agent and gateway messages. The input is a list of records, each one byte of kind, one
// byte of stream (1..3) and a 2-byte little-endian length, then that many bytes of a
// serialized protobuf message (Hello, Report, EndpointOutcome list) or nothing (kinds
// Disconnect, Leave). Nothing may crash, and after every step:
//   - a rejected message changed nothing (the fleet's endpoints are as before);
//   - the fleet stays within its limits (nodes, endpoints per node, pools);
//   - every endpoint view holds finite, non-negative numbers and busy <= total slots.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "controlplane/fleet/fleet_state.h"
#include "controlplane/fleet/pools.h"
#include "controlplane/fleet/validation.h"
#include "switchboard/v1/agent.pb.h"
#include "switchboard/v1/discovery.pb.h"

namespace {

using switchboard::controlplane::EndpointView;
using switchboard::controlplane::FleetState;
using switchboard::controlplane::ValidationLimits;

// Everything an endpoint view says, as text: equal before and after a rejected message.
std::string Fingerprint(const std::vector<EndpointView>& endpoints) {
  std::string out;
  for (const EndpointView& e : endpoints) {
    absl::StrAppend(&out, e.node_id, "/", e.address, " ", e.state, " ", e.slots_total, " ", e.slots_busy, " ",
                    e.queue_depth, " ", e.kv_cache_usage, " ", e.tokens_per_second, " ", e.connected, " ", e.reported,
                    " ", e.requests_total, " ", e.errors_total, " ", e.gateway_requests_total, " ",
                    e.probe_error.size(), " ", e.models.size(), "\n");
  }
  return out;
}

void Check(bool condition) {
  if (!condition) std::abort();
}

void CheckInvariants(const std::vector<EndpointView>& endpoints, const ValidationLimits& limits) {
  Check(endpoints.size() <= limits.max_nodes * limits.max_endpoints);
  for (const EndpointView& e : endpoints) {
    Check(e.slots_busy <= e.slots_total || e.slots_total == 0);
    Check(e.slots_total <= limits.max_slots);
    const double numbers[] = {
        e.kv_cache_usage,  e.tokens_per_second, e.slot_tokens_per_second, e.prefill_tokens_per_second,
        e.e2e_p50_seconds, e.capacity_hint,     e.ttft_p95_seconds};
    for (double v : numbers) Check(std::isfinite(v) && v >= 0);
    Check(e.models.size() <= limits.max_models);
  }
  Check(switchboard::controlplane::GroupByPool(endpoints).size() <= limits.max_pools);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace switchboard;
  ValidationLimits limits;
  limits.max_nodes = 3;
  limits.max_endpoints = 4;
  limits.max_pools = 4;
  limits.max_models = 4;
  FleetState fleet(limits);
  absl::Time now = absl::FromUnixSeconds(1000);
  std::string node_of[4];  // Stream -> the node its Hello bound.
  size_t i = 0;
  while (i + 4 <= size) {
    const uint8_t kind = data[i] % 5;
    const uint64_t stream = 1 + data[i + 1] % 3;
    const size_t length = std::min<size_t>(data[i + 2] | (data[i + 3] << 8), size - i - 4);
    const std::string bytes(reinterpret_cast<const char*>(data + i + 4), length);
    i += 4 + length;
    now += absl::Milliseconds(100);
    const std::string before = Fingerprint(fleet.Endpoints(now));
    absl::Status status;
    switch (kind) {
      case 0: {
        v1::Hello hello;
        if (!hello.ParseFromString(bytes)) continue;
        status = fleet.Connect(stream, hello, now);
        if (status.ok()) node_of[stream] = hello.node_id();
        break;
      }
      case 1: {
        v1::Report report;
        if (!report.ParseFromString(bytes)) continue;
        status = fleet.ApplyReport(stream, node_of[stream], report, now);
        break;
      }
      case 2:
        fleet.Disconnect(stream, node_of[stream], now);
        break;
      case 3:
        status = fleet.Leave(stream, node_of[stream], bytes);
        break;
      case 4: {
        v1::SubscribeRequest request;
        if (!request.ParseFromString(bytes)) continue;
        status = fleet.AddGatewayOutcomes(request.outcomes()).status();
        break;
      }
    }
    const std::vector<EndpointView> after = fleet.Endpoints(now);
    if (!status.ok()) {
      Check(!status.message().empty());
      Check(Fingerprint(after) == before);
    }
    CheckInvariants(after, limits);
    fleet.Nodes(now);
  }
  return 0;
}
