// libFuzzer target: switchboard-sync's reading of HAProxy's `show servers state` output
// (text from a runtime API socket, not from us). Nothing may crash; every server read
// back has a name.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sync/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto servers = switchboard::sync::ParseServersState(text, "llama");
  if (servers.ok()) {
    for (const auto& s : *servers) {
      if (s.name.empty()) std::abort();
    }
  }
  return 0;
}
