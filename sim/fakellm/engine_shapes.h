// How each inference engine shows the same fake server: health answers, model lists and
// metric names, per shared/reference/inference-servers.md.
#ifndef SWITCHBOARD_SIM_FAKELLM_ENGINE_SHAPES_H_
#define SWITCHBOARD_SIM_FAKELLM_ENGINE_SHAPES_H_

#include <string>

#include "absl/status/statusor.h"
#include "sim/fakellm/fake_engine.h"

namespace switchboard::fakellm {

enum class Flavor {
  kLlamaCpp,      // Current llama-server.
  kLlamaCpp2024,  // Feb-Aug 2024: /health with slots_idle/slots_processing, /slots "state", kv gauges.
  kVllm,
  kSglang,
  kTgi,
};

absl::StatusOr<Flavor> ParseFlavor(const std::string& name);

struct HttpAnswer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json; charset=utf-8";
};

// GET /health once the model is loaded.
HttpAnswer HealthAnswer(Flavor flavor, FakeEngine& engine);
// Any request while the model loads. (vLLM and TGI refuse connections until loaded; a
// fake that must print its port first answers 503 instead, which adapters treat alike.)
HttpAnswer LoadingAnswer(Flavor flavor);
HttpAnswer MetricsAnswer(Flavor flavor, FakeEngine& engine);
HttpAnswer ModelsAnswer(Flavor flavor, const FakeEngine& engine);
HttpAnswer PropsAnswer(const FakeEngine& engine);  // llama.cpp only
HttpAnswer InfoAnswer(const FakeEngine& engine);   // TGI only
HttpAnswer LoadAnswer(FakeEngine& engine);         // SGLang /get_load

}  // namespace switchboard::fakellm

#endif  // SWITCHBOARD_SIM_FAKELLM_ENGINE_SHAPES_H_
