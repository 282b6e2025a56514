// deploy/kubernetes (base and overlays/example): every manifest parses; kinds and
// required fields are right; every name, port, label selector and ConfigMap key a
// manifest refers to exists; the ScaledObject follows a pool of the ConfigMap with the
// pool's bounds; and the containers' flags, images and ports agree with the binaries;
// every container is secure (no --insecure, its certificate and token files mounted from
// the Secrets the overlay makes, names in the control plane's certificate for every name
// clients dial).
// (deploy/kubernetes/gateway belongs to the endpoint picker and has its own test.)
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "controlplane/config/pool_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/harness.h"
#include "yaml-cpp/yaml.h"

namespace switchboard::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kRoot = fs::path(SWITCHBOARD_DEPLOY_DIR) / "kubernetes";

struct Object {
  YAML::Node node;
  std::string file;
  std::string kind;
  std::string name;
};

// The objects a kustomization builds (its resources, recursively), and its namespace.
struct Build {
  std::vector<Object> objects;
  std::string ns;
  std::map<std::string, std::string> images;  // name -> newName:newTag.
  std::vector<std::string> listed;            // Files listed as resources.
};

void Load(const fs::path& dir, Build* out) {
  const YAML::Node k = YAML::LoadFile((dir / "kustomization.yaml").string());
  if (k["namespace"]) out->ns = k["namespace"].as<std::string>();
  for (const auto& img : k["images"]) {
    out->images[img["name"].as<std::string>()] =
        absl::StrCat(img["newName"].as<std::string>(), ":", img["newTag"].as<std::string>());
  }
  for (const auto& r : k["resources"]) {
    const fs::path p = fs::weakly_canonical(dir / r.as<std::string>());
    if (fs::is_directory(p)) {
      Load(p, out);
      continue;
    }
    out->listed.push_back(p.string());
    for (const YAML::Node& doc : YAML::LoadAllFromFile(p.string())) {
      if (!doc || doc.IsNull()) continue;
      out->objects.push_back({doc, p.filename().string(), doc["kind"] ? doc["kind"].as<std::string>() : "",
                              doc["metadata"]["name"] ? doc["metadata"]["name"].as<std::string>() : ""});
    }
  }
}

Build LoadOverlay() {
  Build b;
  Load(kRoot / "overlays" / "example", &b);
  return b;
}

std::vector<const Object*> OfKind(const Build& b, const std::string& kind) {
  std::vector<const Object*> out;
  for (const Object& o : b.objects) {
    if (o.kind == kind) out.push_back(&o);
  }
  return out;
}

const Object* Find(const Build& b, const std::string& kind, const std::string& name) {
  for (const Object& o : b.objects) {
    if (o.kind == kind && o.name == name) return &o;
  }
  return nullptr;
}

bool IsWorkload(const Object& o) { return o.kind == "Deployment" || o.kind == "StatefulSet" || o.kind == "DaemonSet"; }

std::map<std::string, std::string> Labels(const YAML::Node& n) {
  std::map<std::string, std::string> out;
  for (const auto& kv : n) out[kv.first.as<std::string>()] = kv.second.as<std::string>();
  return out;
}

// Whether `selector` (matchLabels / matchExpressions with In, or a plain map) selects `labels`.
bool Selects(const YAML::Node& selector, const std::map<std::string, std::string>& labels) {
  if (!selector || selector.IsNull()) return false;
  YAML::Node match = selector["matchLabels"] || selector["matchExpressions"] ? selector["matchLabels"] : selector;
  for (const auto& kv : match) {
    auto it = labels.find(kv.first.as<std::string>());
    if (it == labels.end() || it->second != kv.second.as<std::string>()) return false;
  }
  for (const auto& e : selector["matchExpressions"]) {
    EXPECT_EQ(e["operator"].as<std::string>(), "In");
    auto it = labels.find(e["key"].as<std::string>());
    if (it == labels.end()) return false;
    bool any = false;
    for (const auto& v : e["values"]) any |= v.as<std::string>() == it->second;
    if (!any) return false;
  }
  return true;
}

std::vector<const Object*> WorkloadsSelectedBy(const Build& b, const YAML::Node& selector) {
  std::vector<const Object*> out;
  for (const Object& o : b.objects) {
    if (IsWorkload(o) && Selects(selector, Labels(o.node["spec"]["template"]["metadata"]["labels"]))) {
      out.push_back(&o);
    }
  }
  return out;
}

// The keys of Secret `name` as the build makes it: a Secret's data and stringData, or
// what cert-manager writes for a Certificate with that secretName. Empty: not made here.
std::set<std::string> SecretKeys(const Build& b, const std::string& name) {
  std::set<std::string> keys;
  if (const Object* secret = Find(b, "Secret", name)) {
    for (const char* field : {"data", "stringData"}) {
      for (const auto& kv : secret->node[field]) keys.insert(kv.first.as<std::string>());
    }
  }
  for (const Object* cert : OfKind(b, "Certificate")) {
    if (cert->node["spec"]["secretName"].as<std::string>() == name) keys.insert({"tls.crt", "tls.key", "ca.crt"});
  }
  return keys;
}

// Whether certificate name `pattern` (possibly "*.rest", one label) matches `host`.
bool NameMatches(const std::string& pattern, const std::string& host) {
  if (!absl::StartsWith(pattern, "*.")) return pattern == host;
  const size_t dot = host.find('.');
  return dot != std::string::npos && dot > 0 && host.substr(dot + 1) == pattern.substr(2);
}

// The container port named `name` (or numbered) in the workload's containers; 0 if none.
int ContainerPort(const Object& w, const std::string& name_or_number) {
  for (const auto& c : w.node["spec"]["template"]["spec"]["containers"]) {
    for (const auto& p : c["ports"]) {
      if ((p["name"] && p["name"].as<std::string>() == name_or_number) ||
          p["containerPort"].as<std::string>() == name_or_number) {
        return p["containerPort"].as<int>();
      }
    }
  }
  return 0;
}

TEST(KubernetesManifestsTest, EveryFileIsAResourceAndParses) {
  const Build b = LoadOverlay();
  std::set<std::string> listed(b.listed.begin(), b.listed.end());
  for (const fs::path& dir : {kRoot / "base", kRoot / "overlays" / "example"}) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() != ".yaml" || e.path().filename() == "kustomization.yaml") continue;
      EXPECT_EQ(listed.count(fs::weakly_canonical(e.path()).string()), 1u) << e.path() << " is not in a kustomization";
    }
  }
  EXPECT_EQ(b.ns, "llm");
  EXPECT_GE(b.objects.size(), 15u);
}

TEST(KubernetesManifestsTest, KindsAndRequiredFields) {
  const std::map<std::string, std::string> api = {
      {"Namespace", "v1"},
      {"ServiceAccount", "v1"},
      {"ConfigMap", "v1"},
      {"Service", "v1"},
      {"Role", "rbac.authorization.k8s.io/v1"},
      {"RoleBinding", "rbac.authorization.k8s.io/v1"},
      {"StatefulSet", "apps/v1"},
      {"Deployment", "apps/v1"},
      {"DaemonSet", "apps/v1"},
      {"PodDisruptionBudget", "policy/v1"},
      {"ScaledObject", "keda.sh/v1alpha1"},
      {"ServiceMonitor", "monitoring.coreos.com/v1"},
      {"Secret", "v1"},
      {"Issuer", "cert-manager.io/v1"},
      {"Certificate", "cert-manager.io/v1"},
      {"TriggerAuthentication", "keda.sh/v1alpha1"},
  };
  const Build b = LoadOverlay();
  std::set<std::string> kinds;
  for (const Object& o : b.objects) {
    SCOPED_TRACE(absl::StrCat(o.file, ": ", o.kind, " ", o.name));
    kinds.insert(o.kind);
    ASSERT_EQ(api.count(o.kind), 1u) << "unexpected kind";
    EXPECT_EQ(o.node["apiVersion"].as<std::string>(), api.at(o.kind));
    EXPECT_FALSE(o.name.empty());
    EXPECT_FALSE(o.node["metadata"]["namespace"]) << "the overlay sets the namespace";
    if (IsWorkload(o)) {
      const YAML::Node spec = o.node["spec"];
      ASSERT_TRUE(spec["selector"]["matchLabels"]);
      EXPECT_TRUE(Selects(spec["selector"], Labels(spec["template"]["metadata"]["labels"])))
          << "the selector does not select its own pods";
      ASSERT_GT(spec["template"]["spec"]["containers"].size(), 0u);
      for (const auto& c : spec["template"]["spec"]["containers"]) {
        EXPECT_TRUE(c["name"] && c["image"]);
        for (const auto& p : c["ports"]) EXPECT_TRUE(p["name"] && p["containerPort"]);
      }
    }
  }
  for (const char* k : {"StatefulSet", "Service", "DaemonSet", "Role", "RoleBinding", "PodDisruptionBudget",
                        "ConfigMap", "ScaledObject", "ServiceMonitor", "ServiceAccount"}) {
    EXPECT_EQ(kinds.count(k), 1u) << k;
  }
  const Object* cp = Find(b, "StatefulSet", "switchboard-controlplane");
  ASSERT_NE(cp, nullptr);
  EXPECT_EQ(cp->node["spec"]["replicas"].as<int>(), 2);
  ASSERT_TRUE(cp->node["spec"]["volumeClaimTemplates"]);
  const Object* agent = Find(b, "DaemonSet", "switchboard-agent");
  ASSERT_NE(agent, nullptr);
  const YAML::Node pod = agent->node["spec"]["template"]["spec"];
  EXPECT_EQ(pod["nodeSelector"]["nvidia.com/gpu.present"].as<std::string>(), "true");
  bool tolerates_gpu = false;
  for (const auto& t : pod["tolerations"]) tolerates_gpu |= t["key"].as<std::string>() == "nvidia.com/gpu";
  EXPECT_TRUE(tolerates_gpu);
}

TEST(KubernetesManifestsTest, EveryReferenceResolves) {
  const Build b = LoadOverlay();
  for (const Object* svc : OfKind(b, "Service")) {
    SCOPED_TRACE(absl::StrCat("Service ", svc->name));
    auto workloads = WorkloadsSelectedBy(b, svc->node["spec"]["selector"]);
    ASSERT_FALSE(workloads.empty()) << "selects no workload";
    for (const auto& p : svc->node["spec"]["ports"]) {
      for (const Object* w : workloads) {
        EXPECT_NE(ContainerPort(*w, p["targetPort"].as<std::string>()), 0)
            << "targetPort " << p["targetPort"] << " not in " << w->name;
      }
    }
  }
  for (const Object* sm : OfKind(b, "ServiceMonitor")) {
    int matched = 0;
    for (const Object* svc : OfKind(b, "Service")) {
      if (!Selects(sm->node["spec"]["selector"], Labels(svc->node["metadata"]["labels"]))) continue;
      ++matched;
      for (const auto& ep : sm->node["spec"]["endpoints"]) {
        bool has = false;
        for (const auto& p : svc->node["spec"]["ports"])
          has |= p["name"].as<std::string>() == ep["port"].as<std::string>();
        EXPECT_TRUE(has) << "Service " << svc->name << " has no port " << ep["port"];
      }
    }
    EXPECT_EQ(matched, 2) << "the control plane's and the agents' Services";
  }
  for (const Object* pdb : OfKind(b, "PodDisruptionBudget")) {
    EXPECT_FALSE(WorkloadsSelectedBy(b, pdb->node["spec"]["selector"]).empty()) << pdb->name;
  }
  for (const Object* rb : OfKind(b, "RoleBinding")) {
    EXPECT_NE(Find(b, rb->node["roleRef"]["kind"].as<std::string>(), rb->node["roleRef"]["name"].as<std::string>()),
              nullptr);
    for (const auto& s : rb->node["subjects"])
      EXPECT_NE(Find(b, "ServiceAccount", s["name"].as<std::string>()), nullptr);
  }
  for (const Object& w : b.objects) {
    if (!IsWorkload(w)) continue;
    SCOPED_TRACE(w.name);
    const YAML::Node pod = w.node["spec"]["template"]["spec"];
    if (pod["serviceAccountName"]) {
      EXPECT_NE(Find(b, "ServiceAccount", pod["serviceAccountName"].as<std::string>()), nullptr);
    }
    if (w.kind == "StatefulSet") {
      const Object* headless = Find(b, "Service", w.node["spec"]["serviceName"].as<std::string>());
      ASSERT_NE(headless, nullptr);
      EXPECT_EQ(headless->node["spec"]["clusterIP"].as<std::string>(), "None");
    }
    std::set<std::string> volumes;
    for (const auto& v : pod["volumes"]) {
      volumes.insert(v["name"].as<std::string>());
      if (v["secret"]) {
        const std::string secret = v["secret"]["secretName"].as<std::string>();
        SCOPED_TRACE(absl::StrCat("Secret ", secret));
        const std::set<std::string> keys = SecretKeys(b, secret);
        EXPECT_FALSE(keys.empty()) << "neither a Secret nor a Certificate of the build makes it";
        for (const auto& item : v["secret"]["items"]) EXPECT_EQ(keys.count(item["key"].as<std::string>()), 1u);
      }
      if (!v["configMap"]) continue;
      const Object* cm = Find(b, "ConfigMap", v["configMap"]["name"].as<std::string>());
      ASSERT_NE(cm, nullptr) << v["configMap"]["name"];
      for (const auto& item : v["configMap"]["items"]) {
        EXPECT_TRUE(cm->node["data"][item["key"].as<std::string>()]) << "no key " << item["key"];
      }
    }
    for (const auto& t : w.node["spec"]["volumeClaimTemplates"])
      volumes.insert(t["metadata"]["name"].as<std::string>());
    for (const auto& c : pod["containers"]) {
      for (const auto& m : c["volumeMounts"]) EXPECT_EQ(volumes.count(m["name"].as<std::string>()), 1u) << m["name"];
    }
  }
}

// The pool configuration in the ConfigMap parses, and the ScaledObject follows one of its
// pools through the control plane's Service, with the pool's bounds.
TEST(KubernetesManifestsTest, ScaledObjectFollowsAConfiguredPool) {
  const Build b = LoadOverlay();
  const Object* cm = Find(b, "ConfigMap", "switchboard-pools");
  ASSERT_NE(cm, nullptr);
  auto config = controlplane::ParseFleetConfig(cm->node["data"]["pools.yaml"].as<std::string>(), "pools.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  auto scaled = OfKind(b, "ScaledObject");
  ASSERT_EQ(scaled.size(), 1u);
  const YAML::Node spec = scaled[0]->node["spec"];
  EXPECT_NE(Find(b, spec["scaleTargetRef"]["kind"].as<std::string>(), spec["scaleTargetRef"]["name"].as<std::string>()),
            nullptr);
  ASSERT_EQ(spec["triggers"].size(), 1u);
  const YAML::Node trigger = spec["triggers"][0];
  EXPECT_THAT(trigger["type"].as<std::string>(), ::testing::AnyOf("external", "external-push"));
  const std::string pool = trigger["metadata"]["pool"].as<std::string>();
  ASSERT_EQ(config->pools.count(pool), 1u) << pool << " is not in the ConfigMap";
  const auto& autoscale = config->pools.at(pool).autoscale;
  ASSERT_TRUE(autoscale.has_value());
  EXPECT_EQ(spec["minReplicaCount"].as<int>(), autoscale->min_replicas);
  EXPECT_EQ(spec["maxReplicaCount"].as<int>(), autoscale->max_replicas);
  // scalerAddress: SERVICE.NAMESPACE.svc:PORT (KEDA runs in its own namespace).
  const std::vector<std::string> hostport = absl::StrSplit(trigger["metadata"]["scalerAddress"].as<std::string>(), ':');
  ASSERT_EQ(hostport.size(), 2u);
  const std::vector<std::string> host = absl::StrSplit(hostport[0], '.');
  ASSERT_EQ(host.size(), 3u);
  EXPECT_EQ(host[1], b.ns);
  EXPECT_EQ(host[2], "svc");
  const Object* svc = Find(b, "Service", host[0]);
  ASSERT_NE(svc, nullptr);
  bool port_found = false;
  for (const auto& p : svc->node["spec"]["ports"]) port_found |= p["port"].as<std::string>() == hostport[1];
  EXPECT_TRUE(port_found);

  // KEDA presents a client certificate (its only credential) and checks the control
  // plane's against the same CA, by the scalerAddress host.
  ASSERT_TRUE(trigger["authenticationRef"]);
  const Object* auth = Find(b, "TriggerAuthentication", trigger["authenticationRef"]["name"].as<std::string>());
  ASSERT_NE(auth, nullptr);
  std::set<std::string> parameters;
  for (const auto& ref : auth->node["spec"]["secretTargetRef"]) {
    parameters.insert(ref["parameter"].as<std::string>());
    EXPECT_EQ(SecretKeys(b, ref["name"].as<std::string>()).count(ref["key"].as<std::string>()), 1u)
        << ref["name"] << "/" << ref["key"];
  }
  EXPECT_EQ(parameters, (std::set<std::string>{"caCert", "tlsClientCert", "tlsClientKey"}));
  const Object* cert = Find(b, "Certificate", "switchboard-controlplane");
  ASSERT_NE(cert, nullptr);
  bool named = false;
  for (const auto& n : cert->node["spec"]["dnsNames"]) named |= NameMatches(n.as<std::string>(), hostport[0]);
  EXPECT_TRUE(named) << hostport[0] << " is not in the control plane's certificate";
}

// Port of a HOST:PORT flag value; 0 when malformed.
int PortOf(const std::string& hostport) {
  int port = 0;
  const size_t colon = hostport.rfind(':');
  return colon != std::string::npos && absl::SimpleAtoi(hostport.substr(colon + 1), &port) ? port : 0;
}

TEST(KubernetesManifestsTest, FlagsImagesAndPortsAgreeWithTheBinaries) {
  const Build b = LoadOverlay();
  std::map<std::string, std::string> help;  // Binary -> its --help.
  int switchboard_containers = 0;
  for (const Object& w : b.objects) {
    if (!IsWorkload(w)) continue;
    const YAML::Node pod = w.node["spec"]["template"]["spec"];
    for (const auto& c : pod["containers"]) {
      if (c["image"].as<std::string>() != "switchboard") continue;
      SCOPED_TRACE(absl::StrCat(w.name, "/", c["name"].as<std::string>()));
      ++switchboard_containers;
      ASSERT_EQ(b.images.count("switchboard"), 1u) << "the kustomization does not set the image";
      const std::string binary = c["command"][0].as<std::string>();
      if (help.count(binary) == 0) {
        auto [rc, out] = RunToExit(binary, {"--help"}, Scaled(absl::Seconds(20)));
        ASSERT_EQ(rc, 0) << out;
        help[binary] = out;
      }
      std::map<std::string, std::vector<std::string>> flags;
      for (const auto& a : c["args"]) {
        const std::string arg = a.as<std::string>();
        ASSERT_TRUE(absl::StartsWith(arg, "--")) << arg;
        const size_t eq = arg.find('=');
        const std::string flag = arg.substr(0, eq);
        EXPECT_THAT(help[binary], HasSubstr(flag)) << binary << " has no " << flag;
        flags[flag].push_back(eq == std::string::npos ? "" : arg.substr(eq + 1));
      }
      for (const auto& [flag, port_name] : std::map<std::string, std::string>{
               {"--listen", "grpc"}, {"--metrics-listen", "metrics"}, {"--health-listen", "health"}}) {
        if (flags.count(flag) == 0) continue;
        EXPECT_EQ(PortOf(flags[flag][0]), ContainerPort(w, port_name)) << flag << " vs containerPort " << port_name;
      }
      if (flags.count("--drain-timeout")) {
        absl::Duration drain;
        ASSERT_TRUE(absl::ParseDuration(flags["--drain-timeout"][0], &drain));
        EXPECT_GT(absl::Seconds(pod["terminationGracePeriodSeconds"].as<int>()), drain)
            << "the kubelet would SIGKILL the agent mid-drain";
      }
      EXPECT_EQ(flags.count("--insecure"), 0u) << "plaintext";
      for (const char* file_flag :
           {"--config", "--tls-cert", "--tls-key", "--client-ca", "--admin-tokens", "--ca", "--cert", "--key"}) {
        if (flags.count(file_flag) == 0) continue;
        bool mounted = false;
        for (const auto& m : c["volumeMounts"]) {
          mounted |= absl::StartsWith(flags[file_flag][0], m["mountPath"].as<std::string>() + "/");
        }
        EXPECT_TRUE(mounted) << file_flag << " is not on a mounted volume";
      }
      if (binary == "switchboard-controlplane") {
        for (const char* needed : {"--tls-cert", "--tls-key", "--client-ca", "--admin-tokens"}) {
          EXPECT_EQ(flags.count(needed), 1u) << needed;
        }
      }
      if (binary == "switchboard-agent") {
        for (const char* needed : {"--ca", "--cert", "--key"}) EXPECT_EQ(flags.count(needed), 1u) << needed;
      }
      if (flags.count("--controlplane")) {
        // Every control-plane replica, by its stable name, on its gRPC port.
        const Object* cp = Find(b, "StatefulSet", "switchboard-controlplane");
        ASSERT_NE(cp, nullptr);
        const int replicas = cp->node["spec"]["replicas"].as<int>();
        std::vector<std::string> want;
        for (int i = 0; i < replicas; ++i) {
          want.push_back(absl::StrCat(cp->name, "-", i, ".", cp->node["spec"]["serviceName"].as<std::string>(), ":",
                                      ContainerPort(*cp, "grpc")));
        }
        EXPECT_EQ(flags["--controlplane"], want);
        // The agent checks the control plane's certificate against each name it dials.
        const Object* cert = Find(b, "Certificate", "switchboard-controlplane");
        ASSERT_NE(cert, nullptr);
        for (const std::string& target : flags["--controlplane"]) {
          const std::string host = target.substr(0, target.rfind(':'));
          bool named = false;
          for (const auto& n : cert->node["spec"]["dnsNames"]) named |= NameMatches(n.as<std::string>(), host);
          EXPECT_TRUE(named) << host << " is not in the control plane's certificate";
        }
      }
    }
  }
  EXPECT_EQ(switchboard_containers, 2);
}

}  // namespace
}  // namespace switchboard::testing
