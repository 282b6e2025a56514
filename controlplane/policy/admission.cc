#include "controlplane/policy/admission.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace switchboard::controlplane::policy {

const PriorityClass* AdmissionConfig::Find(absl::string_view name) const {
  for (const PriorityClass& c : classes) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

absl::Status ValidateAdmissionConfig(const AdmissionConfig& config) {
  if (config.classes.empty()) {
    if (!config.default_class.empty() || !config.tenant_classes.empty()) {
      return absl::InvalidArgumentError("a default class or tenants without any class defined");
    }
    return absl::OkStatus();
  }
  std::set<std::string> names;
  const PriorityClass* previous = nullptr;
  for (const PriorityClass& c : config.classes) {
    if (c.name.empty()) return absl::InvalidArgumentError("a class without a name");
    if (!names.insert(c.name).second) return absl::InvalidArgumentError(absl::StrCat("class ", c.name, " twice"));
    if (c.rank < 0) return absl::InvalidArgumentError(absl::StrCat("class ", c.name, ": rank must be 0 or more"));
    if (!(c.max_share > 0 && c.max_share <= 1)) {
      return absl::InvalidArgumentError(absl::StrCat("class ", c.name, ": share must be in (0, 1]"));
    }
    if (previous != nullptr) {
      if (c.rank <= previous->rank) {
        return absl::InvalidArgumentError(absl::StrCat("class ", c.name, ": rank ", c.rank, " must be above class ",
                                                       previous->name, "'s ", previous->rank,
                                                       " (classes are listed most important first)"));
      }
      if (c.max_share > previous->max_share) {
        return absl::InvalidArgumentError(
            absl::StrFormat("class %s: share %g exceeds the share %g of the more important class %s", c.name,
                            c.max_share, previous->max_share, previous->name));
      }
    }
    previous = &c;
  }
  if (config.default_class.empty()) return absl::InvalidArgumentError("no default class");
  if (config.Find(config.default_class) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("default class ", config.default_class, " is not defined"));
  }
  for (const auto& [tenant, cls] : config.tenant_classes) {
    if (tenant.empty()) return absl::InvalidArgumentError("a tenant without a name");
    if (config.Find(cls) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("tenant ", tenant, ": class ", cls, " is not defined"));
    }
  }
  return absl::OkStatus();
}

ClassChoice ClassifyRequest(const AdmissionConfig& config, absl::string_view header_value, absl::string_view tenant) {
  ClassChoice choice;
  if (!config.enabled()) return choice;
  const PriorityClass* ceiling = nullptr;
  if (!tenant.empty()) {
    auto it = config.tenant_classes.find(std::string(tenant));
    if (it != config.tenant_classes.end()) ceiling = config.Find(it->second);
  }
  const std::string asked = absl::AsciiStrToLower(absl::StripAsciiWhitespace(header_value));
  const PriorityClass* named = asked.empty() ? nullptr : config.Find(asked);
  std::string note;
  if (!asked.empty() && named == nullptr) note = absl::StrCat(" (", kPriorityHeader, ": unknown class '", asked, "')");
  if (named != nullptr && ceiling != nullptr && named->rank < ceiling->rank) {
    choice.name = ceiling->name;
    choice.reason =
        absl::StrCat(kPriorityHeader, ": ", named->name, " capped at tenant ", tenant, "'s class ", ceiling->name);
  } else if (named != nullptr) {
    choice.name = named->name;
    choice.reason = absl::StrCat(kPriorityHeader, ": ", named->name);
  } else if (ceiling != nullptr) {
    choice.name = ceiling->name;
    choice.reason = absl::StrCat("tenant ", tenant, "'s class", note);
  } else {
    choice.name = config.default_class;
    choice.reason = absl::StrCat("default class", note);
  }
  return choice;
}

std::vector<ClassHeadroom> ClassHeadrooms(const AdmissionConfig& config, double occupancy, double slots) {
  std::vector<ClassHeadroom> out;
  out.reserve(config.classes.size());
  for (const PriorityClass& c : config.classes) {
    ClassHeadroom h;
    h.name = c.name;
    h.rank = c.rank;
    h.max_share = c.max_share;
    h.limit_slots = c.max_share * std::max(0.0, slots);
    h.headroom_slots = h.limit_slots - std::max(0.0, occupancy);
    out.push_back(std::move(h));
  }
  return out;
}

void RoutableOccupancy::Add(bool routable, double slots_total, double slots_busy, double queue_depth) {
  if (!routable) return;
  occupancy_slots += std::min(slots_busy, slots_total) + queue_depth;
  slots += std::max(1.0, slots_total);
}

void OccupancyChange::Add(bool routable, double sent, double done, double peers_change) {
  if (routable) slots += sent - done + peers_change;
}

double HeadroomSinceAssignment(double published_headroom_slots, const OccupancyChange& change, double gateways) {
  return published_headroom_slots - change.slots * std::max(1.0, gateways);
}

AdmissionDecision DecideAdmission(const AdmissionConfig& config, const std::string& class_name, double headroom_slots) {
  AdmissionDecision d;
  d.headroom_slots = headroom_slots;
  if (!config.enabled()) {
    d.reason = "no priority classes";
    return d;
  }
  const PriorityClass* c = config.Find(class_name);
  if (c == nullptr) {
    d.admit = false;
    d.reason = absl::StrCat("refused: unknown class '", class_name, "'");
    return d;
  }
  if (c->max_share >= 1) {
    d.reason = absl::StrCat("class ", c->name, " may use every slot");
    return d;
  }
  if (headroom_slots > 0) {
    d.reason = absl::StrFormat("class %s admitted: headroom %.1f slots under its share %.2f", c->name, headroom_slots,
                               c->max_share);
    return d;
  }
  d.admit = false;
  d.reason = absl::StrFormat(
      "class %s refused: headroom %.1f slots under its share %.2f (the rest is kept for more important classes)",
      c->name, headroom_slots, c->max_share);
  return d;
}

}  // namespace switchboard::controlplane::policy
