#include "controlplane/dashboard/dashboard.h"

#include <civetweb.h>

#include <cstring>
#include <map>
#include <mutex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "controlplane/service/admin_service.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace switchboard::controlplane {
namespace {

using google::protobuf::util::TimeUtil;

std::mutex& RegistryMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}

std::map<int, const Dashboard*>& Registry() {
  static auto* registry = new std::map<int, const Dashboard*>;
  return *registry;
}

std::string Json(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions jo;
  jo.always_print_primitive_fields = true;
  jo.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, jo);
  return out;
}

std::string ErrorJson(const std::string& message) {
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) escaped += c;
  }
  return absl::StrCat("{\"error\": \"", escaped, "\"}");
}

std::string Var(const std::string& query, const char* name) {
  char buf[512];
  const int n = mg_get_var(query.c_str(), query.size(), name, buf, sizeof(buf));
  return n > 0 ? std::string(buf, n) : "";
}

void Send(mg_connection* conn, int code, const char* content_type, const std::string& body) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n",
            code,
            code == 200   ? "OK"
            : code == 400 ? "Bad Request"
                          : "Error",
            content_type, body.size());
  mg_write(conn, body.data(), body.size());
}

}  // namespace

void Dashboard::Register(int port, const Dashboard* dashboard) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Registry()[port] = dashboard;
}

void Dashboard::Unregister(int port) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Registry().erase(port);
}

int Dashboard::BeginRequest(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  if (info == nullptr || info->local_uri == nullptr) return 0;
  const std::string path = info->local_uri;
  if (path != "/" && path != "/ui" && path != "/api/fleet" && path != "/api/history") return 0;
  // Held for the whole request: Unregister (at shutdown) waits for answers in flight.
  std::lock_guard<std::mutex> lock(RegistryMutex());
  auto it = Registry().find(info->server_port);
  if (it == Registry().end()) return 0;
  const Dashboard* d = it->second;
  if (std::strcmp(info->request_method, "GET") != 0) {
    Send(conn, 405, "text/plain", "read-only: GET only\n");
    return 1;
  }
  if (path == "/" || path == "/ui") {
    Send(conn, 200, "text/html; charset=utf-8", kDashboardPage);
  } else if (path == "/api/fleet") {
    auto [code, body] = d->FleetJson();
    Send(conn, code, "application/json", body);
  } else {
    auto [code, body] = d->HistoryJson(info->query_string ? info->query_string : "");
    Send(conn, code, "application/json", body);
  }
  return 1;
}

std::pair<int, std::string> Dashboard::FleetJson() const {
  v1::ListPoolsResponse pools;
  for (const auto& snap : store_->All()) FillPool(*snap, pools.add_pools());
  for (v1::Pool& p : *pools.mutable_pools()) p.clear_assignment();  // The endpoints say it all.
  return {200, Json(pools)};
}

std::pair<int, std::string> Dashboard::HistoryJson(const std::string& query_string) const {
  HistoryQuery q;
  q.pool = Var(query_string, "pool");
  q.metric = Var(query_string, "metric");
  int64_t since_s = 3 * 3600, step_s = 60;
  const std::string since_text = Var(query_string, "since_s"), step_text = Var(query_string, "step_s");
  if ((!since_text.empty() && !absl::SimpleAtoi(since_text, &since_s)) ||
      (!step_text.empty() && !absl::SimpleAtoi(step_text, &step_s)) || since_s <= 0 || step_s <= 0) {
    return {400, ErrorJson("since_s and step_s are positive seconds")};
  }
  q.until = clock_->Now();
  q.since = q.until - absl::Seconds(since_s);
  q.step = absl::Seconds(step_s);
  absl::StatusOr<std::vector<HistorySeries>> series = ops_->History(q);
  if (!series.ok()) {
    return {series.status().code() == absl::StatusCode::kInvalidArgument ? 400 : 503,
            ErrorJson(std::string(series.status().message()))};
  }
  v1::HistoryResponse resp;
  resp.set_metric(q.metric);
  for (const HistorySeries& s : *series) {
    v1::HistorySeries* out = resp.add_series();
    out->set_pool(s.pool);
    out->set_node_id(s.node_id);
    out->set_address(s.address);
    for (const HistoryPoint& p : s.points) {
      v1::HistoryPoint* point = out->add_points();
      *point->mutable_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(p.time));
      point->set_value(p.value);
    }
  }
  return {200, Json(resp)};
}

}  // namespace switchboard::controlplane
