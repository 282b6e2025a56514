#include "picker/request.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace switchboard::picker {
namespace {

constexpr double kBytesPerToken = 4;
constexpr double kTokensPerMessage = 4;

// Bytes of text in a message's content: a string, or a list of parts of which the
// {"type": "text", "text": ...} ones count (images and audio are not estimated).
double ContentBytes(const nlohmann::json& content) {
  if (content.is_string()) return content.get_ref<const std::string&>().size();
  double bytes = 0;
  if (content.is_array()) {
    for (const nlohmann::json& part : content) {
      if (part.is_string()) {
        bytes += part.get_ref<const std::string&>().size();
      } else if (part.is_object()) {
        auto text = part.find("text");
        if (text != part.end() && text->is_string()) bytes += text->get_ref<const std::string&>().size();
      }
    }
  }
  return bytes;
}

}  // namespace

double EstimateTokens(absl::string_view text) { return std::ceil(text.size() / kBytesPerToken); }

absl::StatusOr<InferenceRequest> ParseInferenceRequest(absl::string_view path, absl::string_view body) {
  const nlohmann::json doc = nlohmann::json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("request body to ", path, " is not a JSON object"));
  }
  InferenceRequest out;
  auto model = doc.find("model");
  if (model == doc.end() || !model->is_string() || model->get_ref<const std::string&>().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("request body to ", path, " names no \"model\""));
  }
  out.model = model->get<std::string>();
  double bytes = 0, messages = 0;
  if (auto m = doc.find("messages"); m != doc.end() && m->is_array()) {
    for (const nlohmann::json& message : *m) {
      if (!message.is_object()) continue;
      ++messages;
      if (auto content = message.find("content"); content != message.end()) bytes += ContentBytes(*content);
    }
  }
  if (auto p = doc.find("prompt"); p != doc.end()) bytes += ContentBytes(*p);
  out.prompt_tokens = std::ceil(bytes / kBytesPerToken) + messages * kTokensPerMessage;
  return out;
}

}  // namespace switchboard::picker
