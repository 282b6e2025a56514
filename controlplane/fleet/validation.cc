#include "controlplane/fleet/validation.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/host_port.h"
#include "common/node_id.h"
#include "common/status_macros.h"

namespace switchboard::controlplane {
namespace {

absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(what); }

// Shortens untrusted text before it goes into an error message.
std::string Clip(absl::string_view s) {
  if (s.size() <= 64) return std::string(s);
  return absl::StrCat(s.substr(0, 64), "...(", s.size(), " bytes)");
}

bool IsPrintable(absl::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// `where` (may be empty) and `field` name the value; joined only for an error message,
// since every report checks several values of each endpoint.
std::string Name(absl::string_view where, absl::string_view field) {
  return where.empty() ? std::string(field) : absl::StrCat(where, ": ", field);
}

absl::Status CheckRatio(double v, absl::string_view where, absl::string_view field) {
  if (!std::isfinite(v) || v < 0 || v > 1) {
    return Invalid(absl::StrCat(Name(where, field), " must be a finite number in [0, 1], got ", v));
  }
  return absl::OkStatus();
}

absl::Status CheckNonNegative(double v, double max, absl::string_view where, absl::string_view field) {
  if (!std::isfinite(v) || v < 0 || v > max) {
    return Invalid(absl::StrCat(Name(where, field), " must be a finite number in [0, ", max, "], got ", v));
  }
  return absl::OkStatus();
}

absl::Status ValidateAddress(absl::string_view address) {
  absl::StatusOr<HostPort> hp = ParseHostPort(address);
  if (!hp.ok() || hp->port == 0 || address.size() > 300) {
    return Invalid(absl::StrCat("endpoint address '", Clip(address), "' is not host:port"));
  }
  return absl::OkStatus();
}

absl::Status ValidateModels(const google::protobuf::RepeatedPtrField<std::string>& models,
                            const ValidationLimits& limits, absl::string_view where) {
  if (static_cast<size_t>(models.size()) > limits.max_models) {
    return Invalid(absl::StrCat(where, ": too many models (", models.size(), ")"));
  }
  for (const std::string& m : models) {
    absl::Status s = ValidateModelId(m, limits);
    if (!s.ok()) return Invalid(absl::StrCat(where, ": ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateModelId(absl::string_view model, const ValidationLimits& limits) {
  if (model.empty()) return Invalid("model id is empty");
  if (model.size() > limits.max_model_length) {
    return Invalid(absl::StrCat("model id is ", model.size(), " bytes; the limit is ", limits.max_model_length));
  }
  if (!IsPrintable(model)) return Invalid(absl::StrCat("model id '", Clip(model), "' has control characters"));
  // Envoy names a priority class's cluster POOL~CLASS: pool a~b would be class b of pool a.
  if (absl::StrContains(model, '~')) {
    return Invalid(absl::StrCat("model id '", Clip(model),
                                "' contains '~', which separates a pool from its priority class in xDS cluster names"));
  }
  return absl::OkStatus();
}

absl::Status ValidateHello(const v1::Hello& hello, const ValidationLimits& limits) {
  RETURN_IF_ERROR(ValidateNodeId(hello.node_id(), limits.max_id_length));
  if (static_cast<size_t>(hello.labels_size()) > limits.max_labels) {
    return Invalid(absl::StrCat("too many labels (", hello.labels_size(), ")"));
  }
  for (const auto& [k, v] : hello.labels()) {
    if (k.empty() || k.size() > limits.max_label_length || v.size() > limits.max_label_length || !IsPrintable(k) ||
        !IsPrintable(v)) {
      return Invalid(absl::StrCat("bad label '", Clip(k), "'"));
    }
  }
  // Text that operators see (sbctl nodes, the dashboard) must not carry terminal escapes.
  if (hello.agent_version().size() > limits.max_label_length) return Invalid("agent_version too long");
  if (!IsPrintable(hello.agent_version())) return Invalid("agent_version has control characters");
  if (static_cast<size_t>(hello.gpus_size()) > limits.max_gpus) return Invalid("too many GPUs");
  for (const v1::GpuInfo& gpu : hello.gpus()) {
    if (gpu.uuid().empty() || gpu.uuid().size() > limits.max_label_length) {
      return Invalid("every GPU needs a uuid of at most 256 bytes");
    }
    if (!IsPrintable(gpu.uuid()))
      return Invalid(absl::StrCat("GPU uuid '", Clip(gpu.uuid()), "' has control characters"));
    if (gpu.name().size() > limits.max_label_length) return Invalid("GPU name too long");
    if (!IsPrintable(gpu.name()))
      return Invalid(absl::StrCat("GPU ", Clip(gpu.uuid()), ": name has control characters"));
  }
  if (static_cast<size_t>(hello.endpoints_size()) > limits.max_endpoints) {
    return absl::ResourceExhaustedError(absl::StrCat("too many endpoints (", hello.endpoints_size(),
                                                     "): a node may declare at most ", limits.max_endpoints,
                                                     " (--max-endpoints-per-node)"));
  }
  std::set<std::string> seen;
  for (const v1::EndpointInfo& ep : hello.endpoints()) {
    RETURN_IF_ERROR(ValidateAddress(ep.address()));
    if (!seen.insert(ep.address()).second) {
      return Invalid(absl::StrCat("endpoint ", ep.address(), " is declared twice"));
    }
    RETURN_IF_ERROR(ValidateModels(ep.models(), limits, ep.address()));
    if (ep.slots_total() > limits.max_slots) {
      return Invalid(absl::StrCat(ep.address(), ": slots_total ", ep.slots_total(), " is absurd"));
    }
    RETURN_IF_ERROR(CheckNonNegative(ep.capacity_hint(), 1e6, "", "capacity_hint"));
  }
  if (hello.has_report_interval() && (hello.report_interval().seconds() < 0 || hello.report_interval().nanos() < 0)) {
    return Invalid("report_interval is negative");
  }
  return absl::OkStatus();
}

absl::Status ValidateReport(const v1::Report& report, const v1::Hello& hello, uint64_t last_sequence,
                            const ValidationLimits& limits) {
  if (report.sequence() <= last_sequence) {
    return Invalid(
        absl::StrCat("report sequence ", report.sequence(), " does not follow the previous ", last_sequence));
  }
  // Linear scans, not sets built per report: a node declares a few endpoints and GPUs
  // (at most max_endpoints and max_gpus).
  for (const v1::GpuSample& gpu : report.gpus()) {
    auto declared_gpu = std::find_if(hello.gpus().begin(), hello.gpus().end(),
                                     [&](const v1::GpuInfo& g) { return g.uuid() == gpu.uuid(); });
    if (declared_gpu == hello.gpus().end()) {
      return Invalid(absl::StrCat("GPU '", Clip(gpu.uuid()), "' was not declared in Hello"));
    }
    if (gpu.vram_used_bytes() > declared_gpu->vram_total_bytes()) {
      return Invalid(absl::StrCat("GPU ", Clip(gpu.uuid()), ": vram_used_bytes ", gpu.vram_used_bytes(),
                                  " exceeds its total ", declared_gpu->vram_total_bytes()));
    }
    RETURN_IF_ERROR(CheckRatio(gpu.utilization(), "", "gpu utilization"));
    RETURN_IF_ERROR(CheckNonNegative(gpu.temperature_celsius(), 200, "", "gpu temperature_celsius"));
  }
  for (int i = 0; i < report.endpoints_size(); ++i) {
    const v1::EndpointReport& ep = report.endpoints(i);
    if (std::none_of(hello.endpoints().begin(), hello.endpoints().end(),
                     [&](const v1::EndpointInfo& d) { return d.address() == ep.address(); })) {
      return Invalid(absl::StrCat("endpoint '", Clip(ep.address()), "' was not declared in Hello"));
    }
    if (std::any_of(report.endpoints().begin(), report.endpoints().begin() + i,
                    [&](const v1::EndpointReport& before) { return before.address() == ep.address(); })) {
      return Invalid(absl::StrCat("endpoint ", ep.address(), " is reported twice"));
    }
    const std::string& where = ep.address();
    if (ep.state() == v1::ENDPOINT_STATE_UNSPECIFIED || !v1::EndpointState_IsValid(ep.state())) {
      return Invalid(absl::StrCat(where, ": state is missing or unknown"));
    }
    if (!v1::Engine_IsValid(ep.engine())) return Invalid(absl::StrCat(where, ": unknown engine"));
    RETURN_IF_ERROR(ValidateModels(ep.models(), limits, where));
    if (ep.slots_total() > limits.max_slots) {
      return Invalid(absl::StrCat(where, ": slots_total ", ep.slots_total(), " is absurd"));
    }
    if (ep.slots_busy() > ep.slots_total()) {
      return Invalid(absl::StrCat(where, ": slots_busy ", ep.slots_busy(), " exceeds slots_total ", ep.slots_total()));
    }
    if (ep.queue_depth() > limits.max_queue) {
      return Invalid(absl::StrCat(where, ": queue_depth ", ep.queue_depth(), " is absurd"));
    }
    RETURN_IF_ERROR(CheckRatio(ep.kv_cache_usage(), where, "kv_cache_usage"));
    const double latencies[] = {ep.ttft_p50_seconds(), ep.ttft_p95_seconds(), ep.e2e_p50_seconds(),
                                ep.e2e_p95_seconds()};
    for (double v : latencies) {
      RETURN_IF_ERROR(CheckNonNegative(v, limits.max_latency_seconds, where, "latency"));
    }
    RETURN_IF_ERROR(CheckNonNegative(ep.tokens_per_second(), limits.max_tokens_per_second, where, "tokens_per_second"));
    RETURN_IF_ERROR(
        CheckNonNegative(ep.slot_tokens_per_second(), limits.max_tokens_per_second, where, "slot_tokens_per_second"));
    RETURN_IF_ERROR(CheckNonNegative(ep.prefill_tokens_per_second(), limits.max_tokens_per_second, where,
                                     "prefill_tokens_per_second"));
    if (ep.errors_total() > ep.requests_total() && ep.requests_total() != 0) {
      return Invalid(absl::StrCat(where, ": errors_total exceeds requests_total"));
    }
    if (ep.check_failures_total() > ep.checks_total()) {
      return Invalid(absl::StrCat(where, ": check_failures_total exceeds checks_total"));
    }
    if (ep.probe_error().size() > 4096) return Invalid(absl::StrCat(where, ": probe_error too long"));
    if (ep.check_error().size() > 4096) return Invalid(absl::StrCat(where, ": check_error too long"));
    if (ep.probe_latency().seconds() < 0 || ep.probe_latency().nanos() < 0) {
      return Invalid(absl::StrCat(where, ": probe_latency is negative"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateOutcomes(const google::protobuf::RepeatedPtrField<v1::EndpointOutcome>& outcomes,
                              const ValidationLimits& limits) {
  if (static_cast<size_t>(outcomes.size()) > limits.max_outcomes) {
    return Invalid(absl::StrCat("too many outcomes (", outcomes.size(), "; at most ", limits.max_outcomes, ")"));
  }
  for (const v1::EndpointOutcome& o : outcomes) {
    RETURN_IF_ERROR(ValidateNodeId(o.node_id(), limits.max_id_length));
    RETURN_IF_ERROR(ValidateAddress(o.address()));
    const std::string where = absl::StrCat("outcome for ", o.node_id(), "/", o.address());
    if (o.requests() > limits.max_outcome_requests) {
      return Invalid(absl::StrCat(where, ": requests ", o.requests(), " is absurd"));
    }
    if (o.errors() > o.requests()) return Invalid(absl::StrCat(where, ": errors exceed requests"));
  }
  return absl::OkStatus();
}

}  // namespace switchboard::controlplane
