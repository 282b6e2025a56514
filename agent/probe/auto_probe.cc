#include "agent/probe/auto_probe.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace switchboard::agent {

absl::StatusOr<std::string> AutoProbe::Detect(const ProbeOptions& options, HttpClient* http) {
  using json = nlohmann::json;
  HttpResponse props = http->Get(options.base_url + "/props", options.timeout);
  if (!props.error.empty()) return absl::UnavailableError(absl::StrCat("/props: ", props.error));
  if (props.status == 200) {
    json j = json::parse(props.body, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("total_slots")) return std::string("llamacpp");
  }
  if (props.status == 503 && absl::StrContains(props.body, "Loading model")) return std::string("llamacpp");
  HttpResponse info = http->Get(options.base_url + "/info", options.timeout);
  if (info.status == 200) {
    json j = json::parse(info.body, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("model_id")) return std::string("tgi");
  }
  HttpResponse metrics = http->Get(options.base_url + "/metrics", options.timeout);
  if (metrics.status == 200) {
    if (absl::StrContains(metrics.body, "\nvllm:") || absl::StartsWith(metrics.body, "vllm:"))
      return std::string("vllm");
    if (absl::StrContains(metrics.body, "sglang:")) return std::string("sglang");
    if (absl::StrContains(metrics.body, "llamacpp:")) return std::string("llamacpp");
    if (absl::StrContains(metrics.body, "tgi_")) return std::string("tgi");
  }
  return absl::NotFoundError(absl::StrCat("cannot tell which engine serves ", options.base_url,
                                          " (no llama.cpp /props, no TGI /info, no known /metrics prefix)"));
}

v1::EndpointReport AutoProbe::Poll(absl::Time now) {
  if (!delegate_) {
    absl::StatusOr<std::string> engine = Detect(options_, http_);
    if (engine.ok()) {
      BackendSpec spec;
      spec.engine = *engine;
      spec.options = options_;
      absl::StatusOr<std::unique_ptr<Probe>> probe = MakeProbe(spec, http_);
      if (probe.ok()) delegate_ = std::move(*probe);
    }
    if (!delegate_) {
      v1::EndpointReport out;
      out.set_address(options_.address);
      out.set_state(v1::ENDPOINT_STATE_STARTING);
      out.set_probe_error(engine.ok() ? "detected engine has no adapter" : std::string(engine.status().message()));
      return out;
    }
  }
  return delegate_->Poll(now);
}

}  // namespace switchboard::agent
