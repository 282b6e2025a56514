// libFuzzer target: the admin token file (--admin-tokens YAML) and --subscriber-auth.
// Nothing may crash, and a refusal never echoes a hash (it names the entry instead).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/auth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace switchboard;
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<TokenTable> table = TokenTable::Parse(text, "tokens.yaml");
  if (table.ok()) {
    table->Find(text);
  } else if (table.status().message().empty()) {
    std::abort();
  }
  (void)ParseSubscriberAuth(text);
  return 0;
}
