// Priority classes: which requests a shared pool admits when it is busy, so that paying
// (interactive) traffic keeps its capacity while lower classes absorb an overload.
//
// Every class has a rank (0 = the most important) and a share of the pool's slots that its
// admissions may fill: with interactive 1.0, standard 0.8 and batch 0.5, a standard request
// is admitted only while the pool's busy share (slots busy + queued, over the slots of its
// routable endpoints) is under 80%, so the last 20% stay free for interactive traffic; a
// batch request only while it is under 50%. A class whose share is 1 is refused by nothing
// here (only by the pool's own shed bound, client/pick_decision.h).
//
//   limit    = max_share x slots
//   headroom = limit - occupancy        (slots; negative when the pool is past the limit)
//   admit    <=> max_share >= 1 or headroom > 0
//
// The control plane computes the headroom of every class at each reconcile and publishes
// it in the assignment; a picker replica subtracts what it sent since (scaled by the
// number of pickers) and calls DecideAdmission with the same numbers, so every replica and
// every subscriber decides alike.
//
// Classification (ClassifyRequest): the class named by the request's header (x-priority),
// capped at the class of the request's tenant when the tenant is mapped (a tenant may mark
// its own traffic lower, never higher); else the tenant's class; else the default class.
//
// Pure: no I/O, no clock.
#ifndef SWITCHBOARD_CONTROLPLANE_POLICY_ADMISSION_H_
#define SWITCHBOARD_CONTROLPLANE_POLICY_ADMISSION_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace switchboard::controlplane::policy {

// The request header that names a class.
inline constexpr char kPriorityHeader[] = "x-priority";
// The request header that names the tenant, set by the gateway from the API key it
// authenticated (Envoy's ext_authz or JWT filter, an API gateway); the gateway must
// overwrite whatever value the client sent.
inline constexpr char kTenantHeader[] = "x-tenant";

struct PriorityClass {
  std::string name;
  int32_t rank = 0;        // 0 = the most important; unique within a pool.
  double max_share = 1.0;  // (0, 1]: of the pool's slots; 1 = all of them.
};

struct AdmissionConfig {
  // Ordered by rank (ValidateAdmissionConfig checks). Empty: no classes, every request is
  // admitted by the pool's own bound alone.
  std::vector<PriorityClass> classes;
  std::string default_class;                          // For requests that name none and whose tenant is not mapped.
  std::map<std::string, std::string> tenant_classes;  // Tenant -> class.

  bool enabled() const { return !classes.empty(); }
  // The class named `name`, or null.
  const PriorityClass* Find(absl::string_view name) const;
};

// Names unique and non-empty, ranks strictly increasing in list order, shares in (0, 1]
// and not increasing with rank (a lower class may never use more than a higher one), the
// default and every tenant's class defined. InvalidArgument names
// the offending class or tenant.
absl::Status ValidateAdmissionConfig(const AdmissionConfig& config);

struct ClassChoice {
  std::string name;    // Empty only when classes are off.
  std::string reason;  // Which rule chose it.
};

// The class of a request with `header_value` in the priority header and `tenant` in the
// tenant header (either may be empty). An unknown class name in the header is ignored
// (the reason says so): the tenant's or the default class applies.
ClassChoice ClassifyRequest(const AdmissionConfig& config, absl::string_view header_value, absl::string_view tenant);

struct ClassHeadroom {
  std::string name;
  int32_t rank = 0;
  double max_share = 1;
  double limit_slots = 0;     // max_share x slots.
  double headroom_slots = 0;  // limit - occupancy; may be negative.
};

// The headroom of every class of a pool whose routable endpoints have `slots` slots and
// `occupancy` of them busy or queued. In rank order; empty when classes are off.
std::vector<ClassHeadroom> ClassHeadrooms(const AdmissionConfig& config, double occupancy, double slots);

// The occupancy the headroom is computed from: over the routable endpoints (weight > 0),
// busy slots (at most the endpoint's slots) plus queued requests, and their slots, each
// endpoint counted with at least one slot (as gateways estimate it:
// client::EstimatedOccupancy). The control plane fills it at each reconcile and passes
// it to ClassHeadrooms; the simulator does the same.
struct RoutableOccupancy {
  double occupancy_slots = 0;
  double slots = 0;
  // Adds one endpoint; one that is not routable adds nothing.
  void Add(bool routable, double slots_total, double slots_busy, double queue_depth);
};

// The change in a pool's occupancy since its assignment, as a picker replica counts it on
// the routable endpoints: its own requests sent less those it saw finish, plus the other
// pickers' shared change (zero when not shared).
struct OccupancyChange {
  double slots = 0;
  // Adds one endpoint; one that is not routable adds nothing.
  void Add(bool routable, double sent, double done, double peers_change);
};

// A class's headroom now: `published_headroom_slots` (ClassHeadrooms at the reconcile, as
// the assignment carries it) less `change`, scaled by `gateways`, the number of picker
// replicas this one's count stands for (below 1 counts as 1).
double HeadroomSinceAssignment(double published_headroom_slots, const OccupancyChange& change, double gateways);

struct AdmissionDecision {
  bool admit = true;
  double headroom_slots = 0;
  std::string reason;  // One line, with the numbers.
};

// Whether a request of class `class_name` may enter when the class's headroom is
// `headroom_slots` (as published, less what this picker sent since). Classes off, or a
// share of 1: admitted. An unknown class: refused, as the lowest (never happens for a name
// ClassifyRequest returned).
AdmissionDecision DecideAdmission(const AdmissionConfig& config, const std::string& class_name, double headroom_slots);

}  // namespace switchboard::controlplane::policy

#endif  // SWITCHBOARD_CONTROLPLANE_POLICY_ADMISSION_H_
