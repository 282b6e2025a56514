// deploy/kubernetes/gateway/: every manifest parses, has the fields its kind requires,
// and every name and port one resource refers to exists in another (the InferencePool's
// picker Service and model server Pods, the HTTPRoute's Gateway and pool, the picker
// Service's Deployment and container ports, the probes' ports and health services), and
// the TLS wiring: the picker's certificate files are mounted from the Secret of a
// cert-manager Certificate of the example overlay's Issuer, the control plane's address
// is a name on the control plane's certificate, and the gateway checks the picker's
// certificate with a CA it gets from a Secret.
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace {

const std::string kDir = std::string(SWITCHBOARD_DEPLOY_DIR) + "/kubernetes/gateway";
// The overlay the gateway manifests go with: its namespace, Issuer and control plane certificate.
const std::string kOverlayDir = std::string(SWITCHBOARD_DEPLOY_DIR) + "/kubernetes/overlays/example";

struct Manifests {
  std::vector<YAML::Node> docs;
  std::map<std::string, std::map<std::string, YAML::Node>> by_kind;  // kind -> name -> doc

  YAML::Node Get(const std::string& kind, const std::string& name) const {
    auto k = by_kind.find(kind);
    if (k == by_kind.end()) return YAML::Node();
    auto n = k->second.find(name);
    return n == k->second.end() ? YAML::Node() : n->second;
  }
};

Manifests Load(const std::string& dir = kDir) {
  Manifests m;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    for (const YAML::Node& doc : YAML::LoadAllFromFile(entry.path().string())) {
      if (!doc || doc.IsNull()) continue;
      m.docs.push_back(doc);
      if (doc["kind"] && doc["metadata"] && doc["metadata"]["name"]) {
        m.by_kind[doc["kind"].as<std::string>()][doc["metadata"]["name"].as<std::string>()] = doc;
      }
    }
  }
  return m;
}

// Every label of `selector` is on `labels`.
bool Selects(const YAML::Node& selector, const YAML::Node& labels) {
  if (!selector || !selector.IsMap() || selector.size() == 0 || !labels) return false;
  for (const auto& kv : selector) {
    const YAML::Node v = labels[kv.first.as<std::string>()];
    if (!v || v.as<std::string>() != kv.second.as<std::string>()) return false;
  }
  return true;
}

// The container port of `pod_spec` named or numbered `port`; 0 when none.
int ContainerPort(const YAML::Node& pod_spec, const YAML::Node& port) {
  for (const YAML::Node& c : pod_spec["containers"]) {
    for (const YAML::Node& p : c["ports"]) {
      const int number = p["containerPort"].as<int>();
      if (port.as<std::string>() == std::to_string(number)) return number;
      if (p["name"] && p["name"].as<std::string>() == port.as<std::string>()) return number;
    }
  }
  return 0;
}

// The Deployment whose Pods `selector` selects.
YAML::Node DeploymentSelectedBy(const Manifests& m, const YAML::Node& selector) {
  auto it = m.by_kind.find("Deployment");
  if (it == m.by_kind.end()) return YAML::Node();
  for (const auto& [name, d] : it->second) {
    if (Selects(selector, d["spec"]["template"]["metadata"]["labels"])) return d;
  }
  return YAML::Node();
}

TEST(GatewayManifestsTest, EveryDocumentHasKindNameAndApiVersion) {
  Manifests m = Load();
  ASSERT_FALSE(m.docs.empty()) << kDir;
  for (const YAML::Node& d : m.docs) {
    EXPECT_TRUE(d["apiVersion"] && d["kind"] && d["metadata"]["name"]) << YAML::Dump(d);
    EXPECT_TRUE(d["spec"]) << YAML::Dump(d);
  }
  const std::map<std::string, std::string> expected = {{"InferencePool", "inference.networking.k8s.io/v1"},
                                                       {"Deployment", "apps/v1"},
                                                       {"Service", "v1"},
                                                       {"HTTPRoute", "gateway.networking.k8s.io/v1"},
                                                       {"Gateway", "gateway.networking.k8s.io/v1"},
                                                       {"DestinationRule", "networking.istio.io/v1"},
                                                       {"Certificate", "cert-manager.io/v1"}};
  for (const auto& [kind, api] : expected) {
    ASSERT_TRUE(m.by_kind.count(kind)) << kind;
    for (const auto& [name, d] : m.by_kind[kind]) EXPECT_EQ(d["apiVersion"].as<std::string>(), api) << kind << name;
  }
}

TEST(GatewayManifestsTest, InferencePoolNamesThePickerServiceAndTheModelServers) {
  Manifests m = Load();
  for (const auto& [name, pool] : m.by_kind["InferencePool"]) {
    const YAML::Node spec = pool["spec"];
    ASSERT_TRUE(spec["selector"]["matchLabels"]) << name;
    ASSERT_TRUE(spec["targetPorts"] && spec["targetPorts"].size() > 0) << name;
    const YAML::Node ref = spec["endpointPickerRef"];
    ASSERT_TRUE(ref && ref["name"] && ref["port"]["number"]) << name;
    EXPECT_TRUE(!ref["kind"] || ref["kind"].as<std::string>() == "Service") << name;
    const std::string mode = ref["failureMode"] ? ref["failureMode"].as<std::string>() : "FailClose";
    EXPECT_TRUE(mode == "FailOpen" || mode == "FailClose") << mode;

    // The picker's Service exists and serves that port, backed by a container port.
    const YAML::Node service = m.Get("Service", ref["name"].as<std::string>());
    ASSERT_TRUE(service) << "no Service " << ref["name"];
    const YAML::Node picker = DeploymentSelectedBy(m, service["spec"]["selector"]);
    ASSERT_TRUE(picker) << "no Deployment behind Service " << ref["name"];
    bool found = false;
    for (const YAML::Node& p : service["spec"]["ports"]) {
      if (p["port"].as<int>() != ref["port"]["number"].as<int>()) continue;
      found = true;
      EXPECT_GT(ContainerPort(picker["spec"]["template"]["spec"], p["targetPort"] ? p["targetPort"] : p["port"]), 0);
    }
    EXPECT_TRUE(found) << "Service " << ref["name"] << " has no port " << ref["port"]["number"];

    // The model servers it selects exist and listen on its target ports.
    const YAML::Node servers = DeploymentSelectedBy(m, spec["selector"]["matchLabels"]);
    ASSERT_TRUE(servers) << "no Deployment selected by InferencePool " << name;
    for (const YAML::Node& p : spec["targetPorts"]) {
      EXPECT_GT(ContainerPort(servers["spec"]["template"]["spec"], p["number"]), 0) << p["number"];
    }
  }
}

TEST(GatewayManifestsTest, PickerDeploymentRunsTwoReplicasWithProbesOnItsPorts) {
  Manifests m = Load();
  const YAML::Node d = m.Get("Deployment", "switchboard-picker");
  ASSERT_TRUE(d);
  EXPECT_EQ(d["spec"]["replicas"].as<int>(), 2);
  EXPECT_TRUE(Selects(d["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"]));
  const YAML::Node pod = d["spec"]["template"]["spec"];
  const YAML::Node c = pod["containers"][0];
  std::vector<std::string> args;
  for (const YAML::Node& a : c["args"]) args.push_back(a.as<std::string>());
  auto has = [&](const std::string& prefix) {
    return std::any_of(args.begin(), args.end(), [&](const std::string& a) { return a.rfind(prefix, 0) == 0; });
  };
  EXPECT_FALSE(has("--insecure"));  // TLS to the gateway and to the control plane.
  EXPECT_FALSE(has("--reflection"));
  EXPECT_TRUE(has("--health-plaintext"));  // The kubelet's gRPC probe speaks plaintext only.
  EXPECT_TRUE(has("--controlplane="));
  EXPECT_TRUE(has("--pool="));
  EXPECT_TRUE(has("--replicas=2"));
  // --listen and --health-listen ports are container ports; the probes use the health one.
  for (const std::string flag : {"--listen=", "--health-listen=", "--metrics-listen="}) {
    auto it = std::find_if(args.begin(), args.end(), [&](const std::string& a) { return a.rfind(flag, 0) == 0; });
    ASSERT_NE(it, args.end()) << flag;
    const std::string port = it->substr(it->rfind(':') + 1);
    EXPECT_GT(ContainerPort(pod, YAML::Node(port)), 0) << flag;
  }
  const std::string health_arg =
      *std::find_if(args.begin(), args.end(), [](const std::string& a) { return a.rfind("--health-listen=", 0) == 0; });
  const int health_port = std::stoi(health_arg.substr(health_arg.rfind(':') + 1));
  EXPECT_EQ(c["livenessProbe"]["grpc"]["port"].as<int>(), health_port);
  EXPECT_EQ(c["livenessProbe"]["grpc"]["service"].as<std::string>(), "liveness");
  EXPECT_EQ(c["readinessProbe"]["grpc"]["port"].as<int>(), health_port);
  EXPECT_EQ(c["readinessProbe"]["grpc"]["service"].as<std::string>(), "readiness");
}

TEST(GatewayManifestsTest, RouteReachesThePoolThroughAGateway) {
  Manifests m = Load();
  ASSERT_FALSE(m.by_kind["HTTPRoute"].empty());
  for (const auto& [name, route] : m.by_kind["HTTPRoute"]) {
    for (const YAML::Node& parent : route["spec"]["parentRefs"]) {
      EXPECT_TRUE(m.Get("Gateway", parent["name"].as<std::string>())) << "no Gateway " << parent["name"];
    }
    int pools = 0;
    for (const YAML::Node& rule : route["spec"]["rules"]) {
      for (const YAML::Node& b : rule["backendRefs"]) {
        ASSERT_EQ(b["kind"].as<std::string>(), "InferencePool");
        EXPECT_EQ(b["group"].as<std::string>(), "inference.networking.k8s.io");
        EXPECT_TRUE(m.Get("InferencePool", b["name"].as<std::string>())) << "no InferencePool " << b["name"];
        ++pools;
      }
    }
    EXPECT_GT(pools, 0) << name;
  }
  for (const auto& [name, gw] : m.by_kind["Gateway"]) {
    EXPECT_TRUE(gw["spec"]["gatewayClassName"]) << name;
    EXPECT_GT(gw["spec"]["listeners"].size(), 0u) << name;
  }
}

TEST(GatewayManifestsTest, IstioDestinationRuleIsForThePickerService) {
  Manifests m = Load();
  for (const auto& [name, dr] : m.by_kind["DestinationRule"]) {
    const std::string host = dr["spec"]["host"].as<std::string>();
    const std::string service = host.substr(0, host.find('.'));
    EXPECT_TRUE(m.Get("Service", service)) << host;
    const YAML::Node tls = dr["spec"]["trafficPolicy"]["tls"];
    ASSERT_TRUE(tls) << name;
    EXPECT_EQ(tls["mode"].as<std::string>(), "SIMPLE") << name;  // The picker serves TLS.
    EXPECT_FALSE(tls["insecureSkipVerify"] && tls["insecureSkipVerify"].as<bool>()) << name;
  }
}

// The value of `--flag=VALUE` in `args`, or "" when absent.
std::string FlagValue(const YAML::Node& args, const std::string& flag) {
  for (const YAML::Node& a : args) {
    const std::string s = a.as<std::string>();
    if (s.rfind(flag + "=", 0) == 0) return s.substr(flag.size() + 1);
  }
  return "";
}

std::set<std::string> Strings(const YAML::Node& list) {
  std::set<std::string> out;
  for (const YAML::Node& n : list) out.insert(n.as<std::string>());
  return out;
}

// The Certificate (in `m`) whose Secret is `secret`.
YAML::Node CertificateFor(const Manifests& m, const std::string& secret) {
  auto it = m.by_kind.find("Certificate");
  if (it == m.by_kind.end()) return YAML::Node();
  for (const auto& [name, c] : it->second) {
    if (c["spec"]["secretName"] && c["spec"]["secretName"].as<std::string>() == secret) return c;
  }
  return YAML::Node();
}

TEST(GatewayManifestsTest, PickerSpeaksTlsWithMountedCertificates) {
  Manifests m = Load();
  Manifests overlay = Load(kOverlayDir);
  const YAML::Node d = m.Get("Deployment", "switchboard-picker");
  ASSERT_TRUE(d);
  const YAML::Node pod = d["spec"]["template"]["spec"];
  const YAML::Node c = pod["containers"][0];

  // Every certificate flag names a file (a key cert-manager writes) of a mounted Secret,
  // and that Secret is the one a Certificate of the overlay's Issuer fills.
  std::set<std::string> secrets;
  for (const auto& [flag, key] : std::vector<std::pair<std::string, std::string>>{{"--tls-cert", "tls.crt"},
                                                                                  {"--tls-key", "tls.key"},
                                                                                  {"--ca", "ca.crt"},
                                                                                  {"--cert", "tls.crt"},
                                                                                  {"--key", "tls.key"}}) {
    const std::string path = FlagValue(c["args"], flag);
    ASSERT_FALSE(path.empty()) << flag;
    const std::string dir = path.substr(0, path.rfind('/'));
    EXPECT_EQ(path.substr(path.rfind('/') + 1), key) << flag;
    std::string volume;
    for (const YAML::Node& vm : c["volumeMounts"]) {
      if (vm["mountPath"].as<std::string>() == dir) volume = vm["name"].as<std::string>();
    }
    ASSERT_FALSE(volume.empty()) << flag << ": nothing mounted at " << dir;
    std::string secret;
    for (const YAML::Node& v : pod["volumes"]) {
      if (v["name"].as<std::string>() == volume && v["secret"]) secret = v["secret"]["secretName"].as<std::string>();
    }
    ASSERT_FALSE(secret.empty()) << flag << ": volume " << volume << " is not a Secret";
    secrets.insert(secret);
  }
  ASSERT_EQ(secrets.size(), 1u);
  const YAML::Node cert = CertificateFor(m, *secrets.begin());
  ASSERT_TRUE(cert) << "no Certificate for Secret " << *secrets.begin();
  EXPECT_EQ(cert["apiVersion"].as<std::string>(), "cert-manager.io/v1");
  const YAML::Node issuer = cert["spec"]["issuerRef"];
  EXPECT_EQ(issuer["kind"].as<std::string>(), "Issuer");
  EXPECT_TRUE(overlay.Get("Issuer", issuer["name"].as<std::string>())) << "no Issuer " << issuer["name"];
  const std::set<std::string> usages = Strings(cert["spec"]["usages"]);
  EXPECT_TRUE(usages.count("server auth") && usages.count("client auth"));  // ext_proc server, control plane client.

  // The gateway dials the picker by a name on its certificate, and checks it with the CA
  // of a Secret that a Certificate of the same Issuer fills.
  const std::string ns = overlay.by_kind["Namespace"].begin()->first;
  const std::set<std::string> names = Strings(cert["spec"]["dnsNames"]);
  for (const auto& [name, dr] : m.by_kind["DestinationRule"]) {
    const std::string host = dr["spec"]["host"].as<std::string>();
    EXPECT_TRUE(names.count(host)) << host;
    EXPECT_EQ(host, "switchboard-picker." + ns + ".svc.cluster.local");
    const YAML::Node tls = dr["spec"]["trafficPolicy"]["tls"];
    EXPECT_TRUE(names.count(tls["sni"].as<std::string>())) << tls["sni"];
    for (const std::string& san : Strings(tls["subjectAltNames"])) EXPECT_TRUE(names.count(san)) << san;
    const YAML::Node trust = CertificateFor(m, tls["credentialName"].as<std::string>());
    ASSERT_TRUE(trust) << "no Certificate for Secret " << tls["credentialName"];
    EXPECT_EQ(trust["spec"]["issuerRef"]["name"].as<std::string>(), issuer["name"].as<std::string>());
  }

  // The control plane's address is a name on the control plane's certificate (the
  // picker checks it), in the overlay's namespace.
  const std::string controlplane = FlagValue(c["args"], "--controlplane");
  const std::string host = controlplane.substr(0, controlplane.rfind(':'));
  const YAML::Node cp_cert = overlay.Get("Certificate", "switchboard-controlplane");
  ASSERT_TRUE(cp_cert);
  EXPECT_TRUE(Strings(cp_cert["spec"]["dnsNames"]).count(host)) << host;
  EXPECT_EQ(host, "switchboard-controlplane." + ns + ".svc");
}

}  // namespace
