// libFuzzer target: every engine adapter fed arbitrary HTTP bodies. The input is split on
// NUL bytes into the answers for /health, /props, /v1/models, /metrics, /slots and /info;
// each adapter polls twice (so rate and histogram-delta code runs). Nothing may crash,
// and a report must never claim more busy slots than it has.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "agent/probe/llamacpp_probe.h"
#include "agent/probe/metrics_engine_probe.h"
#include "tests/agent/probe/fake_http_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace switchboard::agent;
  std::vector<std::string> parts(6);
  size_t part = 0;
  for (size_t i = 0; i < size && part < parts.size(); ++i) {
    if (data[i] == 0) {
      ++part;
    } else {
      parts[part].push_back(static_cast<char>(data[i]));
    }
  }
  FakeHttpClient http;
  const char* paths[] = {"/health", "/props", "/v1/models", "/metrics", "/slots", "/info"};
  for (size_t i = 0; i < parts.size(); ++i) http.Set(paths[i], 200, parts[i]);
  ProbeOptions options;
  options.base_url = "http://h:1";
  options.address = "h:1";
  std::vector<std::unique_ptr<Probe>> probes;
  probes.push_back(std::make_unique<LlamaCppProbe>(options, &http));
  probes.push_back(std::make_unique<MetricsEngineProbe>(VllmSpec(), options, &http));
  probes.push_back(std::make_unique<MetricsEngineProbe>(SglangSpec(), options, &http));
  probes.push_back(std::make_unique<MetricsEngineProbe>(TgiSpec(), options, &http));
  absl::Time now = absl::FromUnixSeconds(1000);
  for (auto& probe : probes) {
    for (int round = 0; round < 2; ++round) {
      now += absl::Seconds(1);
      switchboard::v1::EndpointReport r = probe->Poll(now);
      if (r.slots_busy() > r.slots_total() && r.state() == switchboard::v1::ENDPOINT_STATE_READY) std::abort();
    }
  }
  return 0;
}
