#include "sim/simulator/scenario.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "controlplane/config/pool_config.h"
#include "yaml-cpp/yaml.h"

namespace switchboard::sim {
namespace {

absl::Status Bad(const YAML::Node& n, const std::string& name, const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(name, ":", n.Mark().line + 1, ": ", field, ": ", what));
}

template <typename T>
absl::Status Get(const YAML::Node& parent, const char* key, const std::string& name, T min, T max, T* out) {
  if (!parent[key]) return absl::OkStatus();
  try {
    *out = parent[key].as<T>();
  } catch (const YAML::Exception&) {
    return Bad(parent[key], name, key, "has the wrong type");
  }
  if (!(*out >= min && *out <= max))
    return Bad(parent[key], name, key, absl::StrCat("must be in [", min, ", ", max, "]"));
  return absl::OkStatus();
}

}  // namespace

bool BatchedDefaults(const std::string& engine, double* decode_slowdown, int* step_token_budget) {
  // Sources and the arithmetic: sim/scenarios/README.md ("The batched server model").
  if (engine == "vllm") {
    *decode_slowdown = 0.03;    // Llama-3.1-8B on an A100: 75 tok/s alone, 6.6x that with 8.
    *step_token_budget = 2048;  // max_num_batched_tokens of the OpenAI server below 70 GiB and on A100.
    return true;
  }
  if (engine == "llama.cpp") {
    *decode_slowdown = 0.116;   // batched-bench, LLaMA 7B F16: 41.6 tok/s alone, 15.1 each with 16.
    *step_token_budget = 2048;  // llama-server's logical batch (-b), shared by decode and prompt tokens.
    return true;
  }
  return false;
}

const char* ServerModelName(ServerModel m) { return m == ServerModel::kBatched ? "batched" : "ideal"; }

bool ParseServerModel(const std::string& name, ServerModel* out) {
  if (name == "ideal") {
    *out = ServerModel::kIdeal;
  } else if (name == "batched") {
    *out = ServerModel::kBatched;
  } else {
    return false;
  }
  return true;
}

double ServerCapacityRps(const ServerType& t, ServerModel model, double prompt_tokens, double output_tokens) {
  if (model == ServerModel::kIdeal) return t.slots / (prompt_tokens / t.prefill_tps + output_tokens / t.decode_tps);
  // Full batch: a decode step serves every slot at once, the prompt is the server's alone.
  const double step_s = (1 + t.decode_slowdown * (t.slots - 1)) / t.decode_tps;
  return 1 / (prompt_tokens / t.prefill_tps + output_tokens * step_s / t.slots);
}

double FleetCapacityRps(const Scenario& s) {
  double rps = 0;
  for (const ServerType& t : s.servers) {
    rps += t.count * ServerCapacityRps(t, s.server_model, s.prompt_tokens_mean, s.output_tokens_mean);
  }
  return rps;
}

absl::StatusOr<Scenario> ParseScenario(const std::string& yaml, const std::string& name) {
  Scenario s;
  s.name = name;
  try {
    YAML::Node root = YAML::Load(yaml);
    if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(name, ": a scenario is a mapping"));
    static const std::set<std::string> known = {"name",         "servers",    "proxies",          "report_interval_s",
                                                "push_delay_s", "duration_s", "warmup_s",         "seed",
                                                "traffic",      "slo_ttft_s", "autoscaling",      "server_model",
                                                "pool",         "priority",   "share_interval_s", "share_delay_s"};
    for (const auto& kv : root) {
      if (!known.count(kv.first.as<std::string>()))
        return Bad(kv.first, name, kv.first.as<std::string>(), "unknown field");
    }
    if (root["name"]) s.name = root["name"].as<std::string>();
    if (root["server_model"] && !ParseServerModel(root["server_model"].as<std::string>(), &s.server_model)) {
      return Bad(root["server_model"], name, "server_model", "must be ideal or batched");
    }
    if (!root["servers"] || !root["servers"].IsSequence() || root["servers"].size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": servers: a non-empty list is required"));
    }
    for (const YAML::Node& n : root["servers"]) {
      ServerType t;
      if (!n["name"]) return Bad(n, name, "servers[].name", "is required");
      t.name = n["name"].as<std::string>();
      if (n["engine"]) t.engine = n["engine"].as<std::string>();
      if (!BatchedDefaults(t.engine, &t.decode_slowdown, &t.step_token_budget)) {
        return Bad(n["engine"], name, "servers[].engine", "must be vllm or llama.cpp");
      }
      for (absl::Status st :
           {Get<int>(n, "count", name, 0, 10000, &t.count), Get<int>(n, "slots", name, 1, 4096, &t.slots),
            Get<double>(n, "decode_tps", name, 0.1, 1e6, &t.decode_tps),
            Get<double>(n, "prefill_tps", name, 1, 1e9, &t.prefill_tps),
            Get<double>(n, "cold_start_s", name, 0, 86400, &t.cold_start_s),
            Get<double>(n, "decode_slowdown", name, 0.0, 10.0, &t.decode_slowdown),
            Get<int>(n, "step_token_budget", name, 1, 1 << 20, &t.step_token_budget)}) {
        if (!st.ok()) return st;
      }
      if (t.step_token_budget <= t.slots) {
        // Every step decodes one token of each running sequence first: a budget no larger
        // than the slots would leave no room for any prompt.
        return Bad(n, name, "servers[].step_token_budget", "must exceed slots");
      }
      s.servers.push_back(t);
    }
    uint64_t seed = s.seed;
    for (absl::Status st : {Get<int>(root, "proxies", name, 1, 10000, &s.proxies),
                            Get<double>(root, "report_interval_s", name, 0.01, 3600, &s.report_interval_s),
                            Get<double>(root, "push_delay_s", name, 0, 3600, &s.push_delay_s),
                            Get<double>(root, "share_interval_s", name, 0.001, 3600, &s.share_interval_s),
                            Get<double>(root, "share_delay_s", name, 0, 3600, &s.share_delay_s),
                            Get<double>(root, "duration_s", name, 1, 30 * 86400, &s.duration_s),
                            Get<double>(root, "warmup_s", name, 0, 86400, &s.warmup_s),
                            Get<uint64_t>(root, "seed", name, 0, UINT64_MAX, &seed),
                            Get<double>(root, "slo_ttft_s", name, 0.001, 3600, &s.slo_ttft_s)}) {
      if (!st.ok()) return st;
    }
    s.seed = seed;
    if (const YAML::Node& t = root["traffic"]) {
      if (t["generator"]) s.generator = t["generator"].as<std::string>();
      if (s.generator != "poisson" && s.generator != "diurnal" && s.generator != "burst" && s.generator != "trace") {
        return Bad(t["generator"], name, "traffic.generator", "must be poisson, diurnal, burst or trace");
      }
      if (t["trace_file"]) s.trace_file = t["trace_file"].as<std::string>();
      for (absl::Status st :
           {Get<double>(t, "load", name, 0.0, 100.0, &s.load), Get<double>(t, "rate_rps", name, 0.0, 1e6, &s.rate_rps),
            Get<double>(t, "prompt_tokens_mean", name, 1.0, 1e6, &s.prompt_tokens_mean),
            Get<double>(t, "output_tokens_mean", name, 1.0, 1e6, &s.output_tokens_mean),
            Get<double>(t, "diurnal_period_s", name, 1.0, 1e8, &s.diurnal_period_s),
            Get<double>(t, "diurnal_peak_factor", name, 1.0, 1000.0, &s.diurnal_peak_factor),
            Get<double>(t, "burst_start_s", name, 0.0, 1e8, &s.burst_start_s),
            Get<double>(t, "burst_duration_s", name, 0.0, 1e8, &s.burst_duration_s),
            Get<double>(t, "burst_factor", name, 0.0, 1000.0, &s.burst_factor),
            Get<double>(t, "burst_period_s", name, 0.0, 1e8, &s.burst_period_s)}) {
        if (!st.ok()) return st;
      }
      if (s.burst_period_s > 0 && s.burst_duration_s > s.burst_period_s) {
        return Bad(t["burst_period_s"], name, "traffic.burst_period_s", "must be at least burst_duration_s");
      }
      if (s.generator == "trace" && s.trace_file.empty()) {
        return Bad(t, name, "traffic.trace_file", "is required with generator: trace");
      }
    }
    if (const YAML::Node& p = root["pool"]) {
      // The pool's weight settings, in the control plane's configuration syntax and read by
      // its parser; only those keys: the autoscaling policies compared are the simulator's.
      if (!p.IsMap()) return Bad(p, name, "pool", "must be a mapping");
      for (const auto& kv : p) {
        if (kv.first.as<std::string>() != "view_age") {
          return Bad(kv.first, name, "pool." + kv.first.as<std::string>(), "unknown field (known: view_age)");
        }
      }
      if (absl::Status st = controlplane::ParseWeightKeys(p, name, "pool", &s.weights); !st.ok()) return st;
    }
    if (const YAML::Node& a = root["autoscaling"]) {
      s.autoscaling = a["enabled"] ? a["enabled"].as<bool>() : true;
      if (a["server_type"]) s.scale_server_type = a["server_type"].as<std::string>();
      for (absl::Status st : {Get<int>(a, "min_replicas", name, 0, 10000, &s.min_replicas),
                              Get<int>(a, "max_replicas", name, 1, 10000, &s.max_replicas),
                              Get<double>(a, "interval_s", name, 1.0, 3600.0, &s.autoscale_interval_s)}) {
        if (!st.ok()) return st;
      }
    }
    if (const YAML::Node& p = root["priority"]) {
      if (absl::Status st = Get<double>(p, "shed_occupancy", name, 0.0, 100.0, &s.shed_occupancy); !st.ok()) return st;
      if (!p["classes"] || !p["classes"].IsSequence() || p["classes"].size() == 0) {
        return Bad(p, name, "priority.classes", "a non-empty list is required");
      }
      double traffic = 0;
      for (const YAML::Node& n : p["classes"]) {
        SimClass c;
        if (!n["name"]) return Bad(n, name, "priority.classes[].name", "is required");
        c.name = n["name"].as<std::string>();
        for (absl::Status st : {Get<double>(n, "share", name, 1e-9, 1.0, &c.share),
                                Get<double>(n, "traffic", name, 0.0, 1.0, &c.traffic)}) {
          if (!st.ok()) return st;
        }
        traffic += c.traffic;
        s.classes.push_back(c);
      }
      if (std::abs(traffic - 1) > 1e-6) return Bad(p, name, "priority.classes[].traffic", "must sum to 1");
      for (size_t i = 1; i < s.classes.size(); ++i) {
        if (s.classes[i].share > s.classes[i - 1].share) {
          return Bad(p, name, "priority.classes[].share", "must not grow down the list");
        }
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(name, ":", e.mark.line + 1, ": ", e.msg));
  }
  if (s.scale_server_type.empty()) s.scale_server_type = s.servers.front().name;
  return s;
}

absl::StatusOr<Scenario> LoadScenario(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read scenario ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<Scenario> s = ParseScenario(ss.str(), path);
  // A relative trace path is relative to the scenario file.
  if (s.ok() && !s->trace_file.empty() && s->trace_file.front() != '/') {
    s->trace_file = (std::filesystem::path(path).parent_path() / s->trace_file).string();
  }
  return s;
}

}  // namespace switchboard::sim
