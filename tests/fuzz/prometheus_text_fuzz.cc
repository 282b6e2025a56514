// libFuzzer target: the Prometheus text parser and histogram reader must never crash,
// hang or read out of bounds on any input (a backend may answer anything).
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/histogram.h"
#include "common/prometheus_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto scrape = switchboard::PromScrape::Parse(text);
  if (!scrape.ok()) return 0;
  for (const auto& sample : scrape->samples()) {
    std::string name = sample.name;
    if (name.size() > 7 && name.compare(name.size() - 7, 7, "_bucket") == 0) {
      auto h = switchboard::ReadHistogram(*scrape, name.substr(0, name.size() - 7));
      if (h) {
        (void)switchboard::HistogramQuantile(*h, 0.5);
        (void)switchboard::HistogramQuantile(*h, 0.95);
        (void)switchboard::HistogramDelta(*h, *h);
      }
    }
    (void)scrape->Sum(name);
  }
  return 0;
}
