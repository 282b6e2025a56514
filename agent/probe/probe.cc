#include "agent/probe/probe.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/probe/llamacpp_probe.h"
#include "common/net.h"

namespace switchboard::agent {

absl::StatusOr<BackendSpec> ParseBackendSpec(const std::string& spec) {
  std::vector<std::string> parts = absl::StrSplit(spec, ',');
  size_t eq = parts[0].find('=');
  if (eq == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--backend '", spec, "': want ENGINE=URL, e.g. llamacpp=http://127.0.0.1:8080"));
  }
  BackendSpec out;
  out.engine = parts[0].substr(0, eq);
  std::string url = parts[0].substr(eq + 1);
  if (out.engine != "llamacpp") {
    return absl::InvalidArgumentError(
        absl::StrCat("--backend '", spec, "': unknown engine '", out.engine, "' (this release supports: llamacpp)"));
  }
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat("--backend '", spec, "': the URL must start with http://"));
  }
  rest = absl::StripSuffix(rest, "/");
  if (rest.find('/') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--backend '", spec, "': give the server's base URL, no path"));
  }
  absl::StatusOr<HostPort> hp = ParseHostPort(rest);
  if (!hp.ok() || hp->port == 0) {
    return absl::InvalidArgumentError(absl::StrCat("--backend '", spec, "': the URL needs host:port"));
  }
  out.options.base_url = absl::StrCat("http://", rest);
  out.options.address = hp->ToString();
  for (size_t i = 1; i < parts.size(); ++i) {
    absl::string_view opt = parts[i];
    if (absl::ConsumePrefix(&opt, "capacity=")) {
      if (!absl::SimpleAtod(opt, &out.options.capacity_hint) || !(out.options.capacity_hint > 0) ||
          out.options.capacity_hint > 1e6) {
        return absl::InvalidArgumentError(absl::StrCat("--backend '", spec, "': capacity must be a positive number"));
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--backend '", spec, "': unknown option '", parts[i], "' (known: capacity=X)"));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Probe>> MakeProbe(const BackendSpec& spec, HttpClient* http) {
  if (spec.engine == "llamacpp") return std::unique_ptr<Probe>(new LlamaCppProbe(spec.options, http));
  return absl::InvalidArgumentError(absl::StrCat("unknown engine '", spec.engine, "'"));
}

}  // namespace switchboard::agent
