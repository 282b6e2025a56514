// Builders for agent messages used across control-plane tests.
#ifndef SWITCHBOARD_TESTS_CONTROLPLANE_TEST_UTIL_H_
#define SWITCHBOARD_TESTS_CONTROLPLANE_TEST_UTIL_H_

#include <string>
#include <vector>

#include "switchboard/v1/agent.pb.h"

namespace switchboard::testing {

inline v1::Hello MakeHello(const std::string& node, const std::vector<std::string>& addresses, uint32_t slots = 4,
                           double capacity_hint = 0) {
  v1::Hello hello;
  hello.set_node_id(node);
  hello.set_agent_version("test");
  for (const std::string& a : addresses) {
    v1::EndpointInfo* ep = hello.add_endpoints();
    ep->set_address(a);
    ep->set_engine(v1::ENGINE_LLAMACPP);
    ep->set_slots_total(slots);
    ep->set_capacity_hint(capacity_hint);
  }
  return hello;
}

inline v1::EndpointReport MakeEndpointReport(const std::string& address, const std::string& model, uint32_t slots_total,
                                             uint32_t slots_busy, uint32_t queue = 0) {
  v1::EndpointReport ep;
  ep.set_address(address);
  ep.set_state(v1::ENDPOINT_STATE_READY);
  ep.add_models(model);
  ep.set_engine(v1::ENGINE_LLAMACPP);
  ep.set_slots_total(slots_total);
  ep.set_slots_busy(slots_busy);
  ep.set_queue_depth(queue);
  return ep;
}

inline v1::Report MakeReport(uint64_t sequence, const std::vector<v1::EndpointReport>& endpoints) {
  v1::Report report;
  report.set_sequence(sequence);
  for (const auto& ep : endpoints) *report.add_endpoints() = ep;
  return report;
}

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_TESTS_CONTROLPLANE_TEST_UTIL_H_
