#include "controlplane/config/pool_config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/yaml_error.h"
#include "yaml-cpp/yaml.h"

namespace switchboard::controlplane {
namespace {

using policy::AutoscaleConfig;
using policy::DefaultFleetConfig;
using policy::FleetConfig;
using policy::HpaBehavior;
using policy::HpaScalingPolicy;
using policy::HpaScalingRules;
using policy::PoolPolicy;
using policy::PredictiveConfig;

// A view older than this says nothing about any server's slots (the weights would be the
// pool's average everywhere): a value past it is a typo for milliseconds.
constexpr absl::Duration kMaxViewAge = absl::Minutes(1);

// Errors carry "file:line: field: message". yaml-cpp throws on type errors; this file
// is the one place that catches, turning them into absl::Status.
class Parser {
 public:
  explicit Parser(std::string name) : name_(std::move(name)) {}

  absl::Status Error(const YAML::Node& node, const std::string& field, const std::string& message) const {
    return YamlError(name_, node, field, message);
  }

  absl::Status OnlyKeys(const YAML::Node& node, const std::string& field, const std::set<std::string>& known) const {
    if (!node.IsMap()) return Error(node, field, "must be a mapping");
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      if (known.count(key) == 0) {
        return Error(kv.first, field.empty() ? key : absl::StrCat(field, ".", key),
                     absl::StrCat("unknown field (known: ", absl::StrJoin(known, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Duration(const YAML::Node& node, const std::string& field, absl::Duration* out) const {
    if (!node.IsScalar() || !absl::ParseDuration(node.as<std::string>(), out) || *out < absl::ZeroDuration()) {
      return Error(node, field, "must be a duration such as 500ms, 5s or 2m");
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Number(const YAML::Node& node, const std::string& field, T min, T max, T* out) const {
    try {
      *out = node.as<T>();
    } catch (const YAML::Exception&) {
      return Error(node, field, "must be a number");
    }
    if (!(*out >= min && *out <= max)) return Error(node, field, absl::StrCat("must be in [", min, ", ", max, "]"));
    return absl::OkStatus();
  }

  absl::Status Rules(const YAML::Node& node, const std::string& field, HpaScalingRules* rules) const {
    if (absl::Status s = OnlyKeys(node, field, {"stabilizationWindowSeconds", "selectPolicy", "policies", "tolerance"});
        !s.ok()) {
      return s;
    }
    if (node["tolerance"]) {  // Kubernetes 1.33+ (HPAConfigurableTolerance).
      // A resource.Quantity: 0.05, or "50m" as `kubectl get hpa -o yaml` writes it back.
      const YAML::Node& n = node["tolerance"];
      double t;
      const std::string text = n.IsScalar() ? n.Scalar() : "";
      if (absl::EndsWith(text, "m") && absl::SimpleAtod(text.substr(0, text.size() - 1), &t)) {
        t /= 1000;
        if (!(t >= 0 && t <= 10)) return Error(n, field + ".tolerance", "must be in [0, 10]");
      } else if (absl::Status s = Number<double>(n, field + ".tolerance", 0.0, 10.0, &t); !s.ok()) {
        return s;
      }
      rules->tolerance = t;
    }
    if (node["stabilizationWindowSeconds"]) {
      int64_t seconds;
      if (absl::Status s = Number<int64_t>(node["stabilizationWindowSeconds"], field + ".stabilizationWindowSeconds", 0,
                                           3600, &seconds);
          !s.ok()) {
        return s;
      }
      rules->stabilization_window = absl::Seconds(seconds);
    }
    if (node["selectPolicy"]) {
      const std::string v = node["selectPolicy"].as<std::string>();
      if (v == "Max") {
        rules->select = HpaScalingRules::Select::kMax;
      } else if (v == "Min") {
        rules->select = HpaScalingRules::Select::kMin;
      } else if (v == "Disabled") {
        rules->select = HpaScalingRules::Select::kDisabled;
      } else {
        return Error(node["selectPolicy"], field + ".selectPolicy", "must be Max, Min or Disabled");
      }
    }
    if (node["policies"]) {
      const YAML::Node& list = node["policies"];
      if (!list.IsSequence() || list.size() == 0) return Error(list, field + ".policies", "must be a non-empty list");
      rules->policies.clear();
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string f = absl::StrCat(field, ".policies[", i, "]");
        if (absl::Status s = OnlyKeys(list[i], f, {"type", "value", "periodSeconds"}); !s.ok()) return s;
        if (!list[i]["type"] || !list[i]["value"] || !list[i]["periodSeconds"]) {
          return Error(list[i], f, "needs type, value and periodSeconds");
        }
        HpaScalingPolicy p;
        const std::string type = list[i]["type"].as<std::string>();
        if (type == "Pods") {
          p.type = HpaScalingPolicy::Type::kPods;
        } else if (type == "Percent") {
          p.type = HpaScalingPolicy::Type::kPercent;
        } else {
          return Error(list[i]["type"], f + ".type", "must be Pods or Percent");
        }
        int64_t period;
        if (absl::Status s = Number<int32_t>(list[i]["value"], f + ".value", 1, 100000, &p.value); !s.ok()) return s;
        if (absl::Status s = Number<int64_t>(list[i]["periodSeconds"], f + ".periodSeconds", 1, 1800, &period);
            !s.ok()) {
          return s;
        }
        p.period = absl::Seconds(period);
        rules->policies.push_back(p);
      }
    }
    return absl::OkStatus();
  }

  absl::Status Autoscaling(const YAML::Node& node, const std::string& field,
                           std::optional<AutoscaleConfig>* out) const {
    if (node.IsScalar() && (node.as<std::string>() == "off" || node.as<std::string>() == "false")) {
      out->reset();
      return absl::OkStatus();
    }
    if (absl::Status s =
            OnlyKeys(node, field,
                     {"min_replicas", "max_replicas", "tolerance", "metrics", "behavior", "sync_period", "predictive"});
        !s.ok()) {
      return s;
    }
    AutoscaleConfig c = out->value_or(*DefaultFleetConfig().defaults.autoscale);
    if (node["min_replicas"]) {
      if (absl::Status s = Number<int32_t>(node["min_replicas"], field + ".min_replicas", 0, 100000, &c.min_replicas);
          !s.ok()) {
        return s;
      }
    }
    if (node["max_replicas"]) {
      if (absl::Status s = Number<int32_t>(node["max_replicas"], field + ".max_replicas", 1, 100000, &c.max_replicas);
          !s.ok()) {
        return s;
      }
    }
    if (c.min_replicas > c.max_replicas) return Error(node, field, "min_replicas exceeds max_replicas");
    if (node["tolerance"]) {
      if (absl::Status s = Number<double>(node["tolerance"], field + ".tolerance", 0.0, 1.0, &c.tolerance); !s.ok()) {
        return s;
      }
    }
    if (node["metrics"]) {
      const YAML::Node& list = node["metrics"];
      if (!list.IsSequence() || list.size() == 0) return Error(list, field + ".metrics", "must be a non-empty list");
      c.metrics.clear();
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string f = absl::StrCat(field, ".metrics[", i, "]");
        if (absl::Status s = OnlyKeys(list[i], f, {"type", "target", "scale_down_margin"}); !s.ok()) return s;
        if (!list[i]["type"] || !list[i]["target"]) return Error(list[i], f, "needs type and target");
        policy::MetricTarget t;
        const std::string type = list[i]["type"].as<std::string>();
        double max_target = 1e9;
        if (type == "queue_per_replica") {
          t.signal = policy::ScalingSignal::kQueuePerReplica;
        } else if (type == "slot_occupancy") {
          t.signal = policy::ScalingSignal::kSlotOccupancy;
          max_target = 1.0;
        } else if (type == "slot_demand") {
          t.signal = policy::ScalingSignal::kSlotDemand;
          max_target = 1.0;
          t.scale_down_margin = 1.0;  // Switchboard's own signal: with its hysteresis unless told.
        } else if (type == "requests_per_second") {
          t.signal = policy::ScalingSignal::kRequestsPerSecond;
        } else {
          return Error(list[i]["type"], f + ".type",
                       "must be queue_per_replica, slot_occupancy, slot_demand or requests_per_second");
        }
        if (absl::Status s = Number<double>(list[i]["target"], f + ".target", 1e-9, max_target, &t.target); !s.ok()) {
          return s;
        }
        if (list[i]["scale_down_margin"]) {
          if (t.signal == policy::ScalingSignal::kQueuePerReplica) {
            // A queue's length is not a count of independent events: no noise estimate.
            return Error(list[i]["scale_down_margin"], f + ".scale_down_margin",
                         "applies to slot_occupancy, slot_demand and requests_per_second, whose noise is known");
          }
          if (absl::Status s = Number<double>(list[i]["scale_down_margin"], f + ".scale_down_margin", 0.0, 10.0,
                                              &t.scale_down_margin);
              !s.ok()) {
            return s;
          }
        }
        c.metrics.push_back(t);
      }
    }
    if (node["behavior"]) {
      const YAML::Node& b = node["behavior"];
      if (absl::Status s = OnlyKeys(b, field + ".behavior", {"scaleUp", "scaleDown"}); !s.ok()) return s;
      HpaBehavior behavior;
      if (b["scaleUp"]) {
        if (absl::Status s = Rules(b["scaleUp"], field + ".behavior.scaleUp", &behavior.scale_up); !s.ok()) return s;
      }
      if (b["scaleDown"]) {
        if (absl::Status s = Rules(b["scaleDown"], field + ".behavior.scaleDown", &behavior.scale_down); !s.ok()) {
          return s;
        }
      }
      c.behavior = behavior;
    }
    *out = c;
    return absl::OkStatus();
  }

  // A duration that must be positive.
  absl::Status Positive(const YAML::Node& node, const std::string& field, absl::Duration* out) const {
    if (absl::Status s = Duration(node, field, out); !s.ok()) return s;
    if (*out <= absl::ZeroDuration()) return Error(node, field, "must be longer than 0s");
    return absl::OkStatus();
  }

  absl::Status Circuit(const YAML::Node& node, const std::string& field, policy::CircuitConfig* c) const {
    if (absl::Status s = OnlyKeys(node, field,
                                  {"error_window", "max_error_rate", "min_requests", "min_checks", "base_ejection",
                                   "max_ejection", "half_open_duration", "half_open_successes", "half_open_weight"});
        !s.ok()) {
      return s;
    }
    for (const auto& [key, out] : {std::pair<const char*, absl::Duration*>{"error_window", &c->error_window},
                                   {"base_ejection", &c->base_ejection},
                                   {"max_ejection", &c->max_ejection}}) {
      if (node[key]) {
        if (absl::Status s = Positive(node[key], absl::StrCat(field, ".", key), out); !s.ok()) return s;
      }
    }
    if (node["half_open_duration"]) {
      if (absl::Status s = Duration(node["half_open_duration"], field + ".half_open_duration", &c->half_open_duration);
          !s.ok()) {
        return s;
      }
    }
    if (c->max_ejection < c->base_ejection) return Error(node, field, "max_ejection is shorter than base_ejection");
    if (node["max_error_rate"]) {
      if (absl::Status s =
              Number<double>(node["max_error_rate"], field + ".max_error_rate", 0.0, 1.0, &c->max_error_rate);
          !s.ok()) {
        return s;
      }
    }
    for (const auto& [key, out] : {std::pair<const char*, int64_t*>{"min_requests", &c->min_requests},
                                   {"min_checks", &c->min_checks},
                                   {"half_open_successes", &c->half_open_successes}}) {
      if (node[key]) {
        if (absl::Status s = Number<int64_t>(node[key], absl::StrCat(field, ".", key), 1, 1'000'000, out); !s.ok()) {
          return s;
        }
      }
    }
    if (node["half_open_weight"]) {
      if (absl::Status s =
              Number<uint32_t>(node["half_open_weight"], field + ".half_open_weight", 1, 128, &c->half_open_weight);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  absl::Status Envoy(const YAML::Node& node, const std::string& field, policy::EnvoyClusterConfig* e) const {
    if (absl::Status s = OnlyKeys(node, field, {"circuit_breakers", "override_host"}); !s.ok()) return s;
    if (node["circuit_breakers"]) {
      const YAML::Node& cb = node["circuit_breakers"];
      const std::string f = field + ".circuit_breakers";
      if (absl::Status s = OnlyKeys(cb, f, {"max_connections", "max_pending_requests", "max_requests", "max_retries"});
          !s.ok()) {
        return s;
      }
      for (const auto& [key, out] : {std::pair<const char*, uint32_t*>{"max_connections", &e->max_connections},
                                     {"max_pending_requests", &e->max_pending_requests},
                                     {"max_requests", &e->max_requests},
                                     {"max_retries", &e->max_retries}}) {
        if (cb[key]) {
          if (absl::Status s = Number<uint32_t>(cb[key], absl::StrCat(f, ".", key), 0, 1'000'000'000, out); !s.ok()) {
            return s;
          }
        }
      }
    }
    if (node["override_host"]) {
      const YAML::Node& o = node["override_host"];
      if (!o.IsScalar() || (o.as<std::string>() != "true" && o.as<std::string>() != "false")) {
        return Error(o, field + ".override_host", "must be true or false");
      }
      e->override_host = o.as<std::string>() == "true";
    }
    return absl::OkStatus();
  }

  // The weights' keys of a pool mapping (others are left to the caller).
  absl::Status Weights(const YAML::Node& node, const std::string& field, policy::WeightConfig* w) const {
    if (!node.IsMap()) return Error(node, field, "must be a mapping");
    if (node["view_age"]) {
      const std::string f = field.empty() ? "view_age" : field + ".view_age";
      absl::Duration age;
      if (absl::Status s = Duration(node["view_age"], f, &age); !s.ok()) return s;
      if (age > kMaxViewAge) return Error(node["view_age"], f, "must be at most 1m");
      w->view_age = age;
    }
    return absl::OkStatus();
  }

  // Priority classes, most important first:
  //   classes:
  //     - {name: interactive, share: 1.0, tenants: [acme]}
  //     - {name: standard, share: 0.8, default: true}
  //     - {name: batch, share: 0.5, tenants: [free-tier]}
  // `rank` is the position unless given; without `default: true` the least important class
  // is the default. `classes: []` turns classes off (for a pool whose defaults have them).
  absl::Status Classes(const YAML::Node& node, const std::string& field, policy::AdmissionConfig* out,
                       policy::QueueConfig* queues_out) const {
    if (!node.IsSequence()) return Error(node, field, "must be a list of classes, most important first");
    policy::AdmissionConfig c;
    policy::QueueConfig queues;
    std::map<std::string, std::string> tenant_seen_in;
    for (size_t i = 0; i < node.size(); ++i) {
      const YAML::Node& n = node[i];
      const std::string f = absl::StrCat(field, "[", i, "]");
      if (absl::Status s = OnlyKeys(n, f, {"name", "rank", "share", "default", "tenants", "queue"}); !s.ok()) {
        return s;
      }
      policy::PriorityClass pc;
      if (!n["name"] || !n["name"].IsScalar() || n["name"].Scalar().empty()) return Error(n, f, "needs a name");
      pc.name = n["name"].Scalar();
      if (pc.name != absl::AsciiStrToLower(pc.name) || absl::StrContains(pc.name, "~") ||
          absl::StrContains(pc.name, ",")) {
        return Error(n["name"], f + ".name", "must be lowercase, without '~' or ','");
      }
      pc.rank = static_cast<int32_t>(i);
      if (n["rank"]) {
        if (absl::Status s = Number<int32_t>(n["rank"], f + ".rank", 0, 1000, &pc.rank); !s.ok()) return s;
      }
      if (!n["share"]) return Error(n, f, "needs a share (of the pool's slots, in (0, 1])");
      if (absl::Status s = Number<double>(n["share"], f + ".share", 1e-9, 1.0, &pc.max_share); !s.ok()) return s;
      if (n["default"]) {
        const std::string v = n["default"].IsScalar() ? n["default"].Scalar() : "";
        if (v != "true" && v != "false") return Error(n["default"], f + ".default", "must be true or false");
        if (v == "true") {
          if (!c.default_class.empty()) {
            return Error(n["default"], f + ".default",
                         absl::StrCat("class ", c.default_class, " is already the default"));
          }
          c.default_class = pc.name;
        }
      }
      if (n["tenants"]) {
        const YAML::Node& t = n["tenants"];
        if (!t.IsSequence()) return Error(t, f + ".tenants", "must be a list of tenant names");
        for (size_t j = 0; j < t.size(); ++j) {
          const std::string tenant = t[j].IsScalar() ? t[j].Scalar() : "";
          if (tenant.empty()) return Error(t[j], absl::StrCat(f, ".tenants[", j, "]"), "must be a tenant name");
          auto [it, inserted] = tenant_seen_in.emplace(tenant, pc.name);
          if (!inserted) {
            return Error(t[j], absl::StrCat(f, ".tenants[", j, "]"),
                         absl::StrCat("tenant ", tenant, " is already in class ", it->second));
          }
          c.tenant_classes[tenant] = pc.name;
        }
      }
      if (n["queue"]) {
        // queue: {max: 100, deadline: 2s}: hold up to `max` refused requests, each at most
        // `deadline`, instead of answering 429 at once.
        const YAML::Node& q = n["queue"];
        const std::string qf = f + ".queue";
        if (!q.IsMap()) return Error(q, qf, "must be a map with max and deadline");
        if (absl::Status s = OnlyKeys(q, qf, {"max", "deadline"}); !s.ok()) return s;
        if (!q["max"] || !q["deadline"]) return Error(q, qf, "needs max (requests held) and deadline (e.g. 2s)");
        policy::ClassQueueConfig qc;
        if (absl::Status s = Number<uint32_t>(q["max"], qf + ".max", 1, 100000, &qc.max); !s.ok()) return s;
        if (absl::Status s = Positive(q["deadline"], qf + ".deadline", &qc.deadline); !s.ok()) return s;
        queues[pc.name] = qc;
      }
      c.classes.push_back(std::move(pc));
    }
    if (c.default_class.empty() && !c.classes.empty()) c.default_class = c.classes.back().name;
    if (absl::Status s = policy::ValidateAdmissionConfig(c); !s.ok())
      return Error(node, field, std::string(s.message()));
    if (absl::Status s = policy::ValidateQueueConfig(c, queues); !s.ok())
      return Error(node, field, std::string(s.message()));
    *out = std::move(c);
    *queues_out = std::move(queues);
    return absl::OkStatus();
  }

  absl::Status Pool(const YAML::Node& node, const std::string& field, PoolPolicy* p) const {
    if (absl::Status s = OnlyKeys(node, field,
                                  {"lb_policy", "staleness_bound", "max_ejection_share", "circuit", "autoscaling",
                                   "envoy", "advisory", "view_age", "classes"});
        !s.ok()) {
      return s;
    }
    if (absl::Status s = Weights(node, field, &p->policy.weights); !s.ok()) return s;
    if (node["envoy"]) {
      if (absl::Status s = Envoy(node["envoy"], field + ".envoy", &p->envoy); !s.ok()) return s;
    }
    if (node["classes"]) {
      if (absl::Status s = Classes(node["classes"], field + ".classes", &p->policy.admission, &p->policy.queues);
          !s.ok())
        return s;
    }
    if (node["circuit"]) {
      if (absl::Status s = Circuit(node["circuit"], field + ".circuit", &p->policy.circuit); !s.ok()) return s;
    }
    if (node["lb_policy"]) {
      const std::string v = node["lb_policy"].as<std::string>();
      if (v == "weighted") {
        p->policy.lb_policy = v1::LB_POLICY_WEIGHTED;
        p->policy.weights.rule = policy::WeightRule::kWeighted;
      } else if (v == "round_robin") {
        p->policy.lb_policy = v1::LB_POLICY_ROUND_ROBIN;
        p->policy.weights.rule = policy::WeightRule::kRoundRobin;
      } else if (v == "least_request") {
        p->policy.lb_policy = v1::LB_POLICY_LEAST_REQUEST;
        p->policy.weights.rule = policy::WeightRule::kLeastRequest;
      } else if (v == "slot_based") {
        p->policy.lb_policy = v1::LB_POLICY_SLOT_BASED;
        p->policy.weights.rule = policy::WeightRule::kSlotBased;
      } else {
        return Error(node["lb_policy"], field + ".lb_policy",
                     "must be weighted, round_robin, least_request or slot_based");
      }
    }
    if (node["staleness_bound"]) {
      if (absl::Status s =
              Duration(node["staleness_bound"], field + ".staleness_bound", &p->policy.circuit.staleness_bound);
          !s.ok()) {
        return s;
      }
    }
    if (node["max_ejection_share"]) {
      if (absl::Status s = Number<double>(node["max_ejection_share"], field + ".max_ejection_share", 0.0, 1.0,
                                          &p->policy.circuit.max_ejection_share);
          !s.ok()) {
        return s;
      }
    }
    if (node["advisory"]) {
      const std::string v = node["advisory"].IsScalar() ? node["advisory"].Scalar() : "";
      if (v != "true" && v != "false") return Error(node["advisory"], field + ".advisory", "must be true or false");
      p->advisory = v == "true";
    }
    if (node["autoscaling"]) {
      if (node["autoscaling"].IsMap() && node["autoscaling"]["sync_period"]) {
        if (absl::Status s = Duration(node["autoscaling"]["sync_period"], field + ".autoscaling.sync_period",
                                      &p->autoscale_sync_period);
            !s.ok()) {
          return s;
        }
        if (p->autoscale_sync_period <= absl::ZeroDuration()) {
          return Error(node["autoscaling"]["sync_period"], field + ".autoscaling.sync_period",
                       "must be longer than zero, e.g. 15s");
        }
      }
      if (node["autoscaling"].IsMap() && node["autoscaling"]["predictive"]) {
        const YAML::Node& pr = node["autoscaling"]["predictive"];
        const std::string f = field + ".autoscaling.predictive";
        if (absl::Status s = OnlyKeys(pr, f, {"lead_time", "target_occupancy"}); !s.ok()) return s;
        PredictiveConfig pc;
        if (pr["lead_time"]) {
          if (absl::Status s = Duration(pr["lead_time"], f + ".lead_time", &pc.lead_time); !s.ok()) return s;
        }
        if (pr["target_occupancy"]) {
          if (absl::Status s =
                  Number<double>(pr["target_occupancy"], f + ".target_occupancy", 0.05, 1.0, &pc.target_occupancy);
              !s.ok()) {
            return s;
          }
        }
        p->predictive = pc;
      }
      if (absl::Status s = Autoscaling(node["autoscaling"], field + ".autoscaling", &p->autoscale); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  const std::string name_;
};

}  // namespace

absl::StatusOr<FleetConfig> ParseFleetConfig(const std::string& yaml, const std::string& name) {
  Parser parser(name);
  FleetConfig config = DefaultFleetConfig();
  config.source = name;
  try {
    YAML::Node root = YAML::Load(yaml);
    if (root.IsNull()) return config;  // An empty file: the defaults.
    // rate_limits: parsed on its own (controlplane/ratelimit/config.h).
    if (absl::Status s = parser.OnlyKeys(root, "", {"defaults", "pools", "rate_limits"}); !s.ok()) return s;
    if (root["defaults"]) {
      if (absl::Status s = parser.Pool(root["defaults"], "defaults", &config.defaults); !s.ok()) return s;
    }
    if (root["pools"]) {
      const YAML::Node& pools = root["pools"];
      if (!pools.IsMap()) return parser.Error(pools, "pools", "must be a mapping of pool name to settings");
      for (const auto& kv : pools) {
        const std::string pool = kv.first.as<std::string>();
        PoolPolicy p = config.defaults;  // A pool starts from the defaults.
        if (absl::Status s = parser.Pool(kv.second, "pools." + pool, &p); !s.ok()) return s;
        config.pools[pool] = p;
      }
    }
  } catch (const YAML::Exception& e) {
    return YamlExceptionError(name, e);
  }
  return config;
}

absl::Status ParseWeightKeys(const YAML::Node& pool, const std::string& file, const std::string& field,
                             policy::WeightConfig* out) {
  try {
    return Parser(file).Weights(pool, field, out);
  } catch (const YAML::Exception& e) {
    return YamlExceptionError(file, e);
  }
}

absl::StatusOr<FleetConfig> LoadFleetConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseFleetConfig(ss.str(), path);
}

}  // namespace switchboard::controlplane
