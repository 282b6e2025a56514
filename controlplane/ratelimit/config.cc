#include "controlplane/ratelimit/config.h"

#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/yaml_error.h"
#include "yaml-cpp/yaml.h"

namespace switchboard::controlplane::ratelimit {
namespace {

struct LimitKey {
  const char* name;
  Unit unit;
  int64_t window_seconds;
};
constexpr LimitKey kLimitKeys[] = {
    {"requests_per_second", Unit::kRequests, 1},  {"requests_per_minute", Unit::kRequests, 60},
    {"requests_per_hour", Unit::kRequests, 3600}, {"tokens_per_second", Unit::kTokens, 1},
    {"tokens_per_minute", Unit::kTokens, 60},     {"tokens_per_hour", Unit::kTokens, 3600},
};

class Parser {
 public:
  explicit Parser(std::string name) : name_(std::move(name)) {}

  absl::Status Error(const YAML::Node& node, const std::string& field, const std::string& message) const {
    return YamlError(name_, node, field, message);
  }

  absl::Status Positive(const YAML::Node& node, const std::string& field, uint64_t* out) const {
    if (!node.IsScalar()) return Error(node, field, "must be a whole number > 0");
    try {
      const int64_t v = node.as<int64_t>();
      if (v <= 0 || v > std::numeric_limits<uint32_t>::max()) {
        return Error(node, field, "must be a whole number from 1 to 4294967295");
      }
      *out = static_cast<uint64_t>(v);
    } catch (const YAML::Exception&) {
      return Error(node, field, "must be a whole number > 0");
    }
    return absl::OkStatus();
  }

  absl::Status Rule(const YAML::Node& node, const std::string& field, ratelimit::Rule* rule) const {
    if (!node.IsMap()) return Error(node, field, "must be a mapping (name, match, limits)");
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const std::string f = absl::StrCat(field, ".", key);
      if (key == "name") {
        if (!kv.second.IsScalar()) return Error(kv.second, f, "must be a string");
        rule->name = kv.second.as<std::string>();
        continue;
      }
      if (key == "match") {
        if (!kv.second.IsMap()) return Error(kv.second, f, "must be a mapping of descriptor key to value or \"*\"");
        for (const auto& m : kv.second) {
          if (!m.second.IsScalar()) return Error(m.second, f, "values must be strings");
          rule->match.push_back({m.first.as<std::string>(), m.second.as<std::string>()});
        }
        continue;
      }
      bool known = false;
      for (const LimitKey& lk : kLimitKeys) {
        if (key != lk.name) continue;
        known = true;
        Limit limit{lk.unit, lk.window_seconds, 0};
        if (absl::Status s = Positive(kv.second, f, &limit.limit); !s.ok()) return s;
        rule->limits.push_back(limit);
      }
      if (!known) {
        return Error(kv.first, f,
                     "unknown field (known: name, match, requests_per_second, requests_per_minute, "
                     "requests_per_hour, tokens_per_second, tokens_per_minute, tokens_per_hour)");
      }
    }
    return absl::OkStatus();
  }

  absl::Status RateLimits(const YAML::Node& node, RateLimitConfig* config) const {
    if (!node.IsMap())
      return Error(node, "rate_limits", "must be a mapping (domain, max_descriptors, replicas, rules)");
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      const std::string f = absl::StrCat("rate_limits.", key);
      if (key == "domain") {
        if (!kv.second.IsScalar()) return Error(kv.second, f, "must be a string");
        config->domain = kv.second.as<std::string>();
      } else if (key == "max_descriptors") {
        uint64_t v = 0;
        if (absl::Status s = Positive(kv.second, f, &v); !s.ok()) return s;
        config->max_descriptors = v;
      } else if (key == "replicas") {
        uint64_t v = 0;
        if (absl::Status s = Positive(kv.second, f, &v); !s.ok()) return s;
        if (v > 1000) return Error(kv.second, f, "must be a whole number from 1 to 1000");
        config->replicas = static_cast<uint32_t>(v);
      } else if (key == "rules") {
        if (!kv.second.IsSequence()) return Error(kv.second, f, "must be a list of rules");
        for (size_t i = 0; i < kv.second.size(); ++i) {
          ratelimit::Rule rule;
          const YAML::Node& r = kv.second[i];
          if (absl::Status s = Rule(r, absl::StrCat(f, "[", i, "]"), &rule); !s.ok()) return s;
          // The semantic checks name the rule; give them its line too.
          RateLimitConfig one;
          one.rules.push_back(rule);
          if (absl::Status s = ValidateRateLimitConfig(one); !s.ok()) {
            return Error(r, absl::StrCat(f, "[", i, "]"), std::string(s.message()));
          }
          config->rules.push_back(std::move(rule));
        }
      } else {
        return Error(kv.first, f, "unknown field (known: domain, max_descriptors, replicas, rules)");
      }
    }
    if (absl::Status s = ValidateRateLimitConfig(*config); !s.ok()) {
      return Error(node, "rate_limits", std::string(s.message()));
    }
    return absl::OkStatus();
  }

 private:
  const std::string name_;
};

}  // namespace

absl::StatusOr<RateLimitConfig> ParseRateLimitConfig(const std::string& yaml, const std::string& name) {
  RateLimitConfig config;
  Parser parser(name);
  try {
    YAML::Node root = YAML::Load(yaml);
    if (root.IsNull() || !root.IsMap() || !root["rate_limits"]) return config;
    if (absl::Status s = parser.RateLimits(root["rate_limits"], &config); !s.ok()) return s;
  } catch (const YAML::Exception& e) {
    return YamlExceptionError(name, e);
  }
  return config;
}

absl::StatusOr<RateLimitConfig> LoadRateLimitConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseRateLimitConfig(ss.str(), path);
}

}  // namespace switchboard::controlplane::ratelimit
