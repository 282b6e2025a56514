#include "sync/plan.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/host_port.h"

namespace switchboard::sync {
namespace {

// `show servers state` srv_admin_state bits (HAProxy's enum srv_admin).
constexpr int kAdminMaintMask = 0x01 | 0x02 | 0x20;  // Forced, inherited, resolution failure.
constexpr int kAdminDrainMask = 0x08 | 0x10;         // Forced, inherited.

bool IsIpAddress(absl::string_view host) {
  if (host.empty()) return false;
  if (absl::StrContains(host, ':')) {  // IPv6.
    return std::all_of(host.begin(), host.end(),
                       [](char c) { return absl::ascii_isxdigit(c) || c == ':' || c == '.'; });
  }
  std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4) return false;
  for (absl::string_view p : parts) {
    int v;
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &v) || v < 0 || v > 255) return false;
  }
  return true;
}

std::string ServerRef(const HaproxyOptions& o, absl::string_view name) { return absl::StrCat(o.backend, "/", name); }

// Weight and state commands that bring `cur` to `want`.
void PlanAttributes(const ProxyServer& cur, const ProxyServer& want, const HaproxyOptions& o, HaproxyPlan* plan) {
  if (want.weight >= 0 && cur.weight != want.weight) {
    plan->commands.push_back(absl::StrCat("set server ", ServerRef(o, cur.name), " weight ", want.weight));
    ++plan->weight_changes;
  }
  if (cur.state != want.state) {
    plan->commands.push_back(
        absl::StrCat("set server ", ServerRef(o, cur.name), " state ", AdminStateName(want.state)));
    ++plan->state_changes;
  }
}

std::string AddressKey(absl::string_view host, int port) { return absl::StrCat(host, "|", port); }

}  // namespace

v1::Assignment CarryOver(const v1::Assignment& now, const v1::Assignment& before) {
  v1::Assignment out = now;
  std::set<std::string> present;
  for (const v1::AssignedEndpoint& ep : now.endpoints()) present.insert(ep.address());
  for (const v1::AssignedEndpoint& ep : before.endpoints()) {
    if (present.insert(ep.address()).second) *out.add_endpoints() = ep;
  }
  return out;
}

const char* AdminStateName(AdminState s) {
  switch (s) {
    case AdminState::kReady:
      return "ready";
    case AdminState::kDrain:
      return "drain";
    case AdminState::kMaint:
      return "maint";
  }
  return "maint";
}

int HaproxyWeight(uint32_t switchboard_weight) {
  return static_cast<int>(std::min<uint32_t>(switchboard_weight, 128)) * 2;
}

std::string HaproxyServerName(absl::string_view prefix, absl::string_view address) {
  std::string name(prefix);
  for (char c : address) {
    if (absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_') {
      name.push_back(c);
    } else if (c == ':') {
      name.push_back('_');
    }  // IPv6 brackets are dropped.
  }
  return name;
}

absl::StatusOr<std::vector<ProxyServer>> DesiredServers(const v1::Assignment& a, const HaproxyOptions& options) {
  std::vector<ProxyServer> out;
  std::set<std::string> seen;
  for (const v1::AssignedEndpoint& ep : a.endpoints()) {
    absl::StatusOr<HostPort> hp = ParseHostPort(ep.address());
    if (!hp.ok() || !IsIpAddress(hp->host) || hp->port <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("pool ", a.pool(), ": endpoint address '", ep.address(),
                                                     "' is not IP:PORT, which HAProxy's runtime API needs"));
    }
    if (!seen.insert(ep.address()).second) continue;
    ProxyServer s;
    s.name = HaproxyServerName(options.name_prefix, ep.address());
    s.host = hp->host;
    s.port = hp->port;
    if (ep.state() == v1::ENDPOINT_STATE_DRAINING) {
      s.state = AdminState::kDrain;
      s.weight = -1;
    } else if (ep.circuit() == v1::CIRCUIT_STATE_OPEN || ep.weight() == 0) {
      s.state = AdminState::kMaint;
      s.weight = -1;
    } else if (ep.circuit() == v1::CIRCUIT_STATE_HALF_OPEN) {
      s.state = AdminState::kReady;
      s.weight = std::min(options.half_open_weight, HaproxyWeight(ep.weight()));
    } else {
      s.state = AdminState::kReady;
      s.weight = HaproxyWeight(ep.weight());
    }
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<std::vector<ProxyServer>> ParseServersState(absl::string_view text, absl::string_view backend) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipWhitespace());
  if (lines.empty() || absl::StripAsciiWhitespace(lines[0]) != "1") {
    return absl::InvalidArgumentError(absl::StrCat("unexpected answer to 'show servers state' (want format 1): '",
                                                   lines.empty() ? "" : std::string(lines[0].substr(0, 80)), "'"));
  }
  std::map<std::string, size_t> column;
  std::vector<ProxyServer> out;
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view line = absl::StripAsciiWhitespace(lines[i]);
    if (absl::ConsumePrefix(&line, "#")) {
      std::vector<absl::string_view> names = absl::StrSplit(line, ' ', absl::SkipEmpty());
      for (size_t c = 0; c < names.size(); ++c) column[std::string(names[c])] = c;
      continue;
    }
    for (const char* need : {"be_name", "srv_name", "srv_addr", "srv_admin_state", "srv_uweight", "srv_port"}) {
      if (column.count(need) == 0)
        return absl::InvalidArgumentError(absl::StrCat("'show servers state' has no ", need));
    }
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    auto field = [&](const char* name) -> absl::string_view {
      size_t c = column[name];
      return c < f.size() ? f[c] : absl::string_view();
    };
    if (field("be_name") != backend) continue;
    if (field("srv_name").empty() || field("srv_addr").empty()) {  // A line cut short.
      return absl::InvalidArgumentError(absl::StrCat("unreadable 'show servers state' line: ", line));
    }
    ProxyServer s;
    s.name = std::string(field("srv_name"));
    s.host = std::string(field("srv_addr"));
    int admin = 0;
    if (!absl::SimpleAtoi(field("srv_admin_state"), &admin) || !absl::SimpleAtoi(field("srv_uweight"), &s.weight) ||
        !absl::SimpleAtoi(field("srv_port"), &s.port)) {
      return absl::InvalidArgumentError(absl::StrCat("unreadable 'show servers state' line: ", line));
    }
    s.state = (admin & kAdminMaintMask) != 0   ? AdminState::kMaint
              : (admin & kAdminDrainMask) != 0 ? AdminState::kDrain
                                               : AdminState::kReady;
    out.push_back(std::move(s));
  }
  return out;
}

HaproxyPlan PlanHaproxy(const std::vector<ProxyServer>& current, const std::vector<ProxyServer>& desired,
                        const HaproxyOptions& o) {
  HaproxyPlan plan;
  if (o.mode == HaproxyMode::kDynamic) {
    std::map<std::string, const ProxyServer*> by_name;
    for (const ProxyServer& c : current) {
      if (absl::StartsWith(c.name, o.name_prefix)) by_name[c.name] = &c;
    }
    std::set<std::string> wanted;
    for (const ProxyServer& d : desired) {
      wanted.insert(d.name);
      auto it = by_name.find(d.name);
      if (it == by_name.end()) {
        const bool v6 = absl::StrContains(d.host, ':');
        std::string add = absl::StrCat("add server ", ServerRef(o, d.name), " ", v6 ? "[" : "", d.host, v6 ? "]" : "",
                                       ":", d.port, " weight ", d.weight >= 0 ? d.weight : 1);
        if (o.check) absl::StrAppend(&add, " check");
        if (!o.server_options.empty()) absl::StrAppend(&add, " ", o.server_options);
        plan.commands.push_back(std::move(add));
        if (o.check) plan.commands.push_back(absl::StrCat("enable health ", ServerRef(o, d.name)));
        ++plan.added;
        // A new dynamic server starts in maintenance with the weight given above.
        ProxyServer fresh = d;
        fresh.weight = d.weight >= 0 ? d.weight : 1;
        fresh.state = AdminState::kMaint;
        HaproxyPlan attrs;
        PlanAttributes(fresh, d, o, &attrs);
        for (std::string& c : attrs.commands) plan.commands.push_back(std::move(c));
        continue;
      }
      PlanAttributes(*it->second, d, o, &plan);
    }
    for (const auto& [name, c] : by_name) {
      if (wanted.count(name) > 0) continue;
      if (c->state != AdminState::kMaint) {
        plan.commands.push_back(absl::StrCat("set server ", ServerRef(o, name), " state maint"));
      }
      plan.commands.push_back(absl::StrCat("del server ", ServerRef(o, name)));
      ++plan.removed;
    }
    return plan;
  }

  // Template mode: every server of the backend is a slot.
  std::vector<int> slot_of(desired.size(), -1);
  std::vector<bool> used(current.size(), false);
  std::map<std::string, size_t> slot_by_address;
  for (size_t i = 0; i < current.size(); ++i) slot_by_address.emplace(AddressKey(current[i].host, current[i].port), i);
  for (size_t d = 0; d < desired.size(); ++d) {
    auto it = slot_by_address.find(AddressKey(desired[d].host, desired[d].port));
    if (it != slot_by_address.end() && !used[it->second]) {
      slot_of[d] = static_cast<int>(it->second);
      used[it->second] = true;
    }
  }
  size_t next_free = 0;
  for (size_t d = 0; d < desired.size(); ++d) {
    const ProxyServer& want = desired[d];
    if (slot_of[d] < 0) {
      while (next_free < current.size() && used[next_free]) ++next_free;
      if (next_free == current.size()) {
        plan.unplaced.push_back(absl::StrCat(want.host, ":", want.port));
        continue;
      }
      used[next_free] = true;
      ProxyServer slot = current[next_free];
      if (slot.state != AdminState::kMaint) {
        // Out of rotation before its address changes under live traffic.
        plan.commands.push_back(absl::StrCat("set server ", ServerRef(o, slot.name), " state maint"));
        slot.state = AdminState::kMaint;
      }
      plan.commands.push_back(
          absl::StrCat("set server ", ServerRef(o, slot.name), " addr ", want.host, " port ", want.port));
      ++plan.address_changes;
      PlanAttributes(slot, want, o, &plan);
      continue;
    }
    PlanAttributes(current[static_cast<size_t>(slot_of[d])], want, o, &plan);
  }
  for (size_t i = 0; i < current.size(); ++i) {
    if (used[i] || current[i].state == AdminState::kMaint) continue;
    plan.commands.push_back(absl::StrCat("set server ", ServerRef(o, current[i].name), " state maint"));
    ++plan.state_changes;
  }
  return plan;
}

bool HaproxyCommandSucceeded(absl::string_view output) {
  output = absl::StripAsciiWhitespace(output);
  return output.empty() || absl::StartsWith(output, "New server registered") ||
         absl::StartsWith(output, "Server deleted") || absl::StrContains(output, "changed from") ||
         absl::StartsWith(output, "no need to change");
}

std::string NginxUpstreamName(absl::string_view pool) {
  std::string name = "switchboard_";
  for (char c : pool) name.push_back(absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' ? c : '_');
  return name;
}

std::string NginxBalancing(v1::LbPolicy policy) {
  switch (policy) {
    case v1::LB_POLICY_LEAST_REQUEST:
    case v1::LB_POLICY_SLOT_BASED:
      return "least_conn";
    default:
      return "";
  }
}

namespace {

// Server lines for `a`'s endpoints; `backup` marks them all as backup servers. Returns
// the number of server lines written.
int RenderServers(const v1::Assignment& a, bool backup, const NginxOptions& options, std::set<std::string>* seen,
                  std::string* out) {
  int servers = 0;
  for (const v1::AssignedEndpoint& ep : a.endpoints()) {
    if (!seen->insert(ep.address()).second) continue;
    std::string line = absl::StrCat("    server ", ep.address());
    std::string why;
    if (ep.state() == v1::ENDPOINT_STATE_DRAINING) {
      if (options.draining == DrainingAs::kOmit) {
        absl::StrAppend(out, "    # ", ep.address(), ": draining, left out\n");
        continue;
      }
      absl::StrAppend(&line, " down");
      why = "draining";
    } else if (ep.circuit() == v1::CIRCUIT_STATE_OPEN) {
      absl::StrAppend(&line, " down");
      why = "circuit open";
    } else if (ep.weight() == 0) {
      absl::StrAppend(&line, " down");
      why = "excluded";
    } else if (ep.circuit() == v1::CIRCUIT_STATE_HALF_OPEN) {
      absl::StrAppend(&line, " weight=1");
      why = "circuit half-open";
    } else {
      absl::StrAppend(&line, " weight=", std::min<uint32_t>(ep.weight(), 128));
    }
    // nginx refuses `down` together with `backup`; a backup server that is down is left out.
    if (backup) {
      if (absl::StrContains(line, " down")) {
        absl::StrAppend(out, "    # ", ep.address(), ": backup, ", why, ", left out\n");
        continue;
      }
      absl::StrAppend(&line, " backup");
    }
    absl::StrAppend(&line, ";");
    if (!why.empty()) absl::StrAppend(&line, "  # ", why);
    absl::StrAppend(out, line, "\n");
    ++servers;
  }
  return servers;
}

}  // namespace

std::string RenderNginx(const std::vector<NginxPool>& pools, const NginxOptions& options) {
  std::string out = "# Written by switchboard-sync: do not edit, the next assignment overwrites this file.\n";
  for (const NginxPool& p : pools) {
    absl::StrAppend(&out, "\n# Pool ", p.assignment.pool(),
                    p.backup ? absl::StrCat(", backup pool ", p.backup->pool()) : "", "\nupstream ", p.upstream,
                    " {\n");
    const std::string balancing = NginxBalancing(p.assignment.lb_policy());
    if (!balancing.empty()) absl::StrAppend(&out, "    ", balancing, ";\n");
    std::set<std::string> seen;
    int servers = RenderServers(p.assignment, false, options, &seen, &out);
    if (p.backup) servers += RenderServers(*p.backup, true, options, &seen, &out);
    if (servers == 0) absl::StrAppend(&out, "    server 127.0.0.1:9 down;  # no endpoint: nginx answers 502\n");
    if (options.keepalive > 0) absl::StrAppend(&out, "    keepalive ", options.keepalive, ";\n");
    absl::StrAppend(&out, "}\n");
  }
  return out;
}

}  // namespace switchboard::sync
