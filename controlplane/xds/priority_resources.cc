#include "controlplane/xds/priority_resources.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "controlplane/policy/admission.h"

namespace switchboard::controlplane::xds {
namespace {

namespace policy = ::switchboard::controlplane::policy;

using envoy::config::route::v3::Route;

Route* AddRoute(envoy::config::route::v3::VirtualHost* host, const std::string& name, const std::string& model_header,
                const std::string& pool, const std::vector<std::pair<std::string, std::string>>& headers,
                const std::string& cluster) {
  Route* route = host->add_routes();
  route->set_name(name);
  route->mutable_match()->set_prefix("/");
  auto* model = route->mutable_match()->add_headers();
  model->set_name(model_header);
  model->mutable_string_match()->set_exact(pool);
  for (const auto& [key, value] : headers) {
    auto* h = route->mutable_match()->add_headers();
    h->set_name(key);
    h->mutable_string_match()->set_exact(value);
  }
  route->mutable_route()->set_cluster(cluster);
  return route;
}

}  // namespace

std::string ClassClusterName(const std::string& pool, const std::string& class_name) {
  return absl::StrCat(pool, std::string(1, kClassSeparator), class_name);
}

std::vector<envoy::config::cluster::v3::Cluster> BuildClassClusters(
    const v1::Assignment& assignment, const envoy::config::cluster::v3::Cluster& pool_cluster) {
  std::vector<envoy::config::cluster::v3::Cluster> out;
  for (const v1::PriorityClass& c : assignment.priority().classes()) {
    envoy::config::cluster::v3::Cluster cluster = pool_cluster;
    cluster.set_name(ClassClusterName(assignment.pool(), c.name()));
    cluster.mutable_eds_cluster_config()->set_service_name(assignment.pool());
    const uint32_t limit = static_cast<uint32_t>(std::max(1.0, std::floor(c.limit_slots() + 1e-9)));
    auto* thresholds = cluster.mutable_circuit_breakers()->mutable_thresholds();
    if (thresholds->empty()) thresholds->Add();
    for (auto& t : *thresholds) {
      if (!t.has_max_requests() || t.max_requests().value() > limit) t.mutable_max_requests()->set_value(limit);
    }
    out.push_back(std::move(cluster));
  }
  return out;
}

void AppendClassRoutes(const v1::Assignment& assignment, const std::string& model_header,
                       envoy::config::route::v3::VirtualHost* host) {
  const v1::PriorityClasses& p = assignment.priority();
  if (p.classes().empty()) return;
  const std::string& pool = assignment.pool();
  std::map<std::string, int> position;  // Class -> index in rank order.
  for (int i = 0; i < p.classes_size(); ++i) position[p.classes(i).name()] = i;
  // Tenants in name order (a proto map has none): the same routes on every replica.
  const std::map<std::string, std::string> tenants(p.tenant_classes().begin(), p.tenant_classes().end());
  for (const auto& [tenant, cls] : tenants) {
    auto it = position.find(cls);
    if (it == position.end()) continue;
    for (int i = it->second + 1; i < p.classes_size(); ++i) {  // The tenant marks its traffic lower.
      const std::string& lower = p.classes(i).name();
      AddRoute(host, absl::StrCat(pool, "/tenant/", tenant, "/", lower), model_header, pool,
               {{policy::kTenantHeader, tenant}, {policy::kPriorityHeader, lower}}, ClassClusterName(pool, lower));
    }
    AddRoute(host, absl::StrCat(pool, "/tenant/", tenant), model_header, pool, {{policy::kTenantHeader, tenant}},
             ClassClusterName(pool, cls));
  }
  for (const v1::PriorityClass& c : p.classes()) {
    AddRoute(host, absl::StrCat(pool, "/class/", c.name()), model_header, pool, {{policy::kPriorityHeader, c.name()}},
             ClassClusterName(pool, c.name()));
  }
  AddRoute(host, pool, model_header, pool, {}, ClassClusterName(pool, p.default_class()));
}

void ApplyClassRoutes(const std::vector<const v1::Assignment*>& assignments, const std::string& model_header,
                      envoy::config::route::v3::RouteConfiguration* config) {
  std::map<std::string, const v1::Assignment*> with_classes;
  for (const v1::Assignment* a : assignments) {
    if (a->priority().classes_size() > 0) with_classes[a->pool()] = a;
  }
  if (with_classes.empty()) return;
  for (auto& host : *config->mutable_virtual_hosts()) {
    auto routes = std::move(*host.mutable_routes());
    host.clear_routes();
    for (auto& route : routes) {
      auto it = with_classes.find(route.name());
      if (it == with_classes.end()) {
        *host.add_routes() = std::move(route);
      } else {
        AppendClassRoutes(*it->second, model_header, &host);
      }
    }
  }
}

}  // namespace switchboard::controlplane::xds
