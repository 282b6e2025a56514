// What the picker reads from an OpenAI-style request: the model (which names the pool)
// and an estimate of the prompt's tokens.
//
// Token estimate (no tokenizer is downloaded): one token per 4 bytes of prompt text,
// rounded up, plus 4 tokens per chat message for the chat template's role markers.
// English text runs about 4 characters per token on the Llama, Qwen and GPT tokenizers;
// code and non-Latin scripts run denser, so the estimate errs low for them. The picker
// needs the size only to tell a long prompt from a short one.
#ifndef SWITCHBOARD_PICKER_REQUEST_H_
#define SWITCHBOARD_PICKER_REQUEST_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace switchboard::picker {

struct InferenceRequest {
  std::string model;
  double prompt_tokens = 0;
};

// Tokens in `text` by the estimate above (without the per-message overhead).
double EstimateTokens(absl::string_view text);

// Parses the JSON body of /v1/chat/completions ("messages": strings or lists of text
// parts) or /v1/completions ("prompt": a string or a list of strings). Any other path
// with a JSON object body is read the same way (a "model" and whichever of the two it
// has). InvalidArgument for a body that is not a JSON object or has no "model" string.
absl::StatusOr<InferenceRequest> ParseInferenceRequest(absl::string_view path, absl::string_view body);

}  // namespace switchboard::picker

#endif  // SWITCHBOARD_PICKER_REQUEST_H_
