// libFuzzer target: the picker's reading of OpenAI-style request bodies. The input is the
// request path, a NUL byte, then the body. Nothing may crash; an accepted request names
// a model and a finite, non-negative token estimate.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "picker/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string path = nul == std::string::npos ? "/v1/chat/completions" : input.substr(0, nul);
  const std::string body = nul == std::string::npos ? input : input.substr(nul + 1);
  absl::StatusOr<switchboard::picker::InferenceRequest> r = switchboard::picker::ParseInferenceRequest(path, body);
  if (r.ok() && (r->model.empty() || !std::isfinite(r->prompt_tokens) || r->prompt_tokens < 0)) std::abort();
  return 0;
}
