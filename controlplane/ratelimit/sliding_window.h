// Global rate limits: sliding windows exact to the second, in requests and in tokens, per
// descriptor (a set of key/value entries such as tenant, class, model). Pure: explicit
// inputs, the counters (RateLimitCounters) passed in and out, the time injected. The
// control plane's Rate Limit Service (Envoy's RLS v3) and `sbctl limits` call it.
//
// Windows. A limit of N per W seconds admits a hit at second s while the hits counted in
// seconds s-W+1 .. s (whole seconds of the wall clock, Unix time) stay within N: a hit
// counted at 10.9 s leaves a per-second window at 11.0 s, a per-minute one at 70.0 s.
// There is no fixed window to reset at once; quota comes back second by second as old
// hits leave the window.
//
// Units. A descriptor whose entries include `unit: tokens` reports tokens already spent
// (Envoy's `apply_on_stream_done` with `hits_addend` = the response's token count): they
// are always counted, against the token limits only, and the answer is informational
// (OVER_LIMIT once the window holds more than the limit). Any other descriptor is a
// request asking to be admitted: its hits count against the request limits, and it is
// refused while a token limit of the same descriptor is already used up. The `unit`
// entry is not part of the descriptor's identity: (tenant=a, unit=tokens) counts the
// tokens of (tenant=a).
//
// All or nothing. A call is admitted when every descriptor is; a refused call counts no
// request hits anywhere (its token reports are still counted: the tokens were spent).
//
// Memory. One counter per distinct descriptor that some rule matches, holding one
// (second, hits) pair per second with hits within the longest window configured for its
// unit: at most 3600 pairs (16 bytes each) for a descriptor busy every second of an hour.
// At most `max_descriptors` counters exist; a call that needs a new one past the cap,
// after idle counters are dropped, fails with RESOURCE_EXHAUSTED and changes nothing.
#ifndef SWITCHBOARD_CONTROLPLANE_RATELIMIT_SLIDING_WINDOW_H_
#define SWITCHBOARD_CONTROLPLANE_RATELIMIT_SLIDING_WINDOW_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace switchboard::controlplane::ratelimit {

enum class Unit { kRequests, kTokens };
enum class Code { kOk, kOverLimit };

// "requests" / "tokens"; "OK" / "OVER_LIMIT".
const char* UnitName(Unit unit);
const char* CodeName(Code code);

// The descriptor entry that marks a token report, and its values.
inline constexpr char kUnitKey[] = "unit";
inline constexpr char kUnitTokens[] = "tokens";
inline constexpr char kUnitRequests[] = "requests";
// A rule's value that matches any value, each value counted on its own.
inline constexpr char kAnyValue[] = "*";

struct Entry {
  std::string key;
  std::string value;
  bool operator==(const Entry& o) const { return key == o.key && value == o.value; }
};

// At most `limit` units within any `window_seconds` whole seconds (1, 60 or 3600).
struct Limit {
  Unit unit = Unit::kRequests;
  int64_t window_seconds = 1;
  uint64_t limit = 0;
};

// The limits of every descriptor with exactly the keys of `match` (in any order) and, for
// each key, the value given or any value where the rule says "*".
struct Rule {
  std::string name;
  std::vector<Entry> match;
  std::vector<Limit> limits;
};

struct RateLimitConfig {
  // Envoy's rate limit domain this configuration answers (the filter's `domain`).
  std::string domain = "switchboard";
  std::vector<Rule> rules;
  // Distinct descriptors counted at once (the memory bound).
  size_t max_descriptors = 10000;
  // Divided mode: the number of control-plane replicas that the callers spread their calls
  // over (round robin). Each replica enforces its share of every limit, ceil(limit /
  // replicas), so that a limit is never 0 (ReplicaShare). 1: one replica counts it all.
  uint32_t replicas = 1;
};

// One replica's share of a configuration in divided mode: every limit becomes
// ceil(limit / config.replicas) (at least 1), and `replicas` becomes 1, so the result is
// the one-replica configuration that the replica enforces. With replicas = 1 a copy.
// The replicas together admit at most replicas * ceil(limit / replicas) per window, that
// is up to replicas - 1 more than the limit when it does not divide evenly.
RateLimitConfig ReplicaShare(const RateLimitConfig& config);

// Checks a configuration: a domain, rule names unique and non-empty, match keys non-empty,
// unique and not `unit`, values non-empty, at least one limit per rule, windows of 1, 60
// or 3600 s, limits > 0, max_descriptors > 0, replicas from 1 to 1000. The error names the rule and the field.
absl::Status ValidateRateLimitConfig(const RateLimitConfig& config);

// One descriptor of a call, as Envoy sends it (entries in Envoy's order).
struct Descriptor {
  std::vector<Entry> entries;
};

// Where one limit of a descriptor stands after the call.
struct LimitStatus {
  std::string rule;
  Limit limit;
  uint64_t used = 0;       // Within the window, including this call's hits if counted.
  uint64_t remaining = 0;  // limit - used, at least 0.
  // OK: until the oldest counted hit leaves the window (0 when nothing is counted).
  // OVER_LIMIT: until enough hits have left for this call to fit (the whole window when
  // the call's hits alone exceed the limit).
  absl::Duration reset = absl::ZeroDuration();
  Code code = Code::kOk;
};

struct DescriptorDecision {
  Code code = Code::kOk;
  bool tokens = false;  // A token report (`unit: tokens`).
  // Every limit that applies; the most constraining first: a refusing limit with the
  // longest reset, else the one with the least remaining.
  std::vector<LimitStatus> limits;
  std::string reason;  // One line for people, with the numbers.
};

struct RateLimitDecision {
  Code overall = Code::kOk;
  std::vector<DescriptorDecision> descriptors;  // Same order as the call's.
  std::string reason;
};

// What the limiter remembers between calls: the hits of every counted descriptor.
// Not thread-safe: the caller serializes calls on one instance.
class RateLimitCounters {
 public:
  size_t size() const { return counters_.size(); }
  void Clear() { counters_.clear(); }

  // The usage of every counted descriptor under `config`'s limits at `now`, sorted by
  // descriptor (entries sorted by key) then rule.
  struct Usage {
    std::vector<Entry> descriptor;
    LimitStatus status;
  };
  std::vector<Usage> Snapshot(const RateLimitConfig& config, absl::Time now) const;

 private:
  struct History {
    std::deque<std::pair<int64_t, uint64_t>> seconds;  // (Unix second, hits), ascending.
    uint64_t total = 0;                                // Sum over `seconds`.
  };
  struct Counter {
    std::vector<Entry> descriptor;  // Sorted by key, without the unit entry.
    History requests, tokens;
  };
  friend absl::StatusOr<RateLimitDecision> DecideRateLimit(const std::vector<Descriptor>&, uint64_t, RateLimitCounters*,
                                                           const RateLimitConfig&, absl::Time);
  absl::flat_hash_map<std::string, Counter> counters_;
};

// Decides one call: `hits` request hits (or tokens, for a token report) on every
// descriptor. hits = 0 only checks. Errors, which change nothing: INVALID_ARGUMENT for a
// descriptor without entries, with an empty key or value, a key twice or an unknown unit;
// RESOURCE_EXHAUSTED when a new descriptor would pass max_descriptors.
absl::StatusOr<RateLimitDecision> DecideRateLimit(const std::vector<Descriptor>& descriptors, uint64_t hits,
                                                  RateLimitCounters* counters, const RateLimitConfig& config,
                                                  absl::Time now);

// The limit that tells the most about a call (for x-ratelimit-* headers): of the
// descriptors with the call's overall code, the most constraining limit (a refusing limit
// with the longest reset, else the least remaining). Null when no limit applied.
const LimitStatus* MostConstraining(const RateLimitDecision& decision);

}  // namespace switchboard::controlplane::ratelimit

#endif  // SWITCHBOARD_CONTROLPLANE_RATELIMIT_SLIDING_WINDOW_H_
