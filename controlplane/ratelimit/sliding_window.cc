#include "controlplane/ratelimit/sliding_window.h"

#include <algorithm>
#include <tuple>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace switchboard::controlplane::ratelimit {
namespace {

constexpr uint32_t kMaxReplicas = 1000;

// A descriptor of a call, checked and in canonical form.
struct Parsed {
  std::vector<Entry> sorted;  // By key, without the unit entry.
  bool tokens = false;
  std::string key;  // Identity of the counter.
};

std::string DescriptorText(const std::vector<Entry>& entries) {
  std::string out;
  for (const Entry& e : entries) absl::StrAppend(&out, out.empty() ? "" : ",", e.key, "=", e.value);
  return out;
}

absl::StatusOr<Parsed> Parse(const Descriptor& d) {
  if (d.entries.empty()) return absl::InvalidArgumentError("rate limit descriptor without entries");
  Parsed p;
  for (const Entry& e : d.entries) {
    if (e.key.empty() || e.value.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("rate limit descriptor entry with an empty key or value: ", e.key, "=", e.value));
    }
    if (e.key == kUnitKey) {
      if (e.value == kUnitTokens) {
        p.tokens = true;
      } else if (e.value != kUnitRequests) {
        return absl::InvalidArgumentError(absl::StrCat("rate limit descriptor entry ", kUnitKey, "=", e.value,
                                                       ": the unit is ", kUnitRequests, " or ", kUnitTokens));
      }
      continue;
    }
    p.sorted.push_back(e);
  }
  std::sort(p.sorted.begin(), p.sorted.end(), [](const Entry& a, const Entry& b) { return a.key < b.key; });
  for (size_t i = 0; i < p.sorted.size(); ++i) {
    if (i > 0 && p.sorted[i].key == p.sorted[i - 1].key) {
      return absl::InvalidArgumentError(absl::StrCat("rate limit descriptor has key ", p.sorted[i].key, " twice"));
    }
    // Separators that cannot be confused with text: \x1f between key and value, \x1e after.
    absl::StrAppend(&p.key, p.sorted[i].key, "\x1f", p.sorted[i].value, "\x1e");
  }
  return p;
}

bool Matches(const Rule& rule, const std::vector<Entry>& sorted) {
  if (rule.match.size() != sorted.size() || sorted.empty()) return false;
  for (const Entry& m : rule.match) {
    auto it = std::lower_bound(sorted.begin(), sorted.end(), m.key,
                               [](const Entry& e, const std::string& k) { return e.key < k; });
    if (it == sorted.end() || it->key != m.key) return false;
    if (m.value != kAnyValue && m.value != it->value) return false;
  }
  return true;
}

struct Applied {
  const Rule* rule;
  const Limit* limit;
};

std::vector<Applied> LimitsOf(const RateLimitConfig& config, const std::vector<Entry>& sorted) {
  std::vector<Applied> out;
  for (const Rule& r : config.rules) {
    if (!Matches(r, sorted)) continue;
    for (const Limit& l : r.limits) out.push_back({&r, &l});
  }
  return out;
}

const char* WindowName(int64_t seconds) {
  switch (seconds) {
    case 1:
      return "second";
    case 60:
      return "minute";
    case 3600:
      return "hour";
    default:
      return "window";
  }
}

}  // namespace

const char* UnitName(Unit unit) { return unit == Unit::kTokens ? "tokens" : "requests"; }
const char* CodeName(Code code) { return code == Code::kOverLimit ? "OVER_LIMIT" : "OK"; }

RateLimitConfig ReplicaShare(const RateLimitConfig& config) {
  RateLimitConfig share = config;
  const uint64_t n = std::max<uint32_t>(config.replicas, 1);
  for (Rule& r : share.rules) {
    for (Limit& l : r.limits) l.limit = std::max<uint64_t>(1, (l.limit + n - 1) / n);
  }
  share.replicas = 1;
  return share;
}

absl::Status ValidateRateLimitConfig(const RateLimitConfig& config) {
  if (config.domain.empty()) return absl::InvalidArgumentError("rate_limits.domain is empty");
  if (config.max_descriptors == 0) return absl::InvalidArgumentError("rate_limits.max_descriptors must be > 0");
  if (config.replicas == 0 || config.replicas > kMaxReplicas) {
    return absl::InvalidArgumentError(absl::StrCat("rate_limits.replicas must be from 1 to ", kMaxReplicas));
  }
  absl::flat_hash_set<std::string> names;
  for (const Rule& r : config.rules) {
    if (r.name.empty()) return absl::InvalidArgumentError("rate_limits: a rule without a name");
    if (!names.insert(r.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("rate_limits: rule ", r.name, " is defined twice"));
    }
    if (r.match.empty()) return absl::InvalidArgumentError(absl::StrCat("rate_limits.", r.name, ": match is empty"));
    absl::flat_hash_set<std::string> keys;
    for (const Entry& e : r.match) {
      if (e.key.empty() || e.value.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("rate_limits.", r.name, ": match has an empty key or value (", e.key, "=", e.value, ")"));
      }
      if (e.key == kUnitKey) {
        return absl::InvalidArgumentError(absl::StrCat("rate_limits.", r.name, ": match may not use the key ", kUnitKey,
                                                       " (it marks token reports)"));
      }
      if (!keys.insert(e.key).second) {
        return absl::InvalidArgumentError(absl::StrCat("rate_limits.", r.name, ": match has key ", e.key, " twice"));
      }
    }
    if (r.limits.empty()) return absl::InvalidArgumentError(absl::StrCat("rate_limits.", r.name, ": no limits"));
    for (const Limit& l : r.limits) {
      if (l.window_seconds != 1 && l.window_seconds != 60 && l.window_seconds != 3600) {
        return absl::InvalidArgumentError(
            absl::StrCat("rate_limits.", r.name, ": window of ", l.window_seconds, " s (1, 60 or 3600)"));
      }
      if (l.limit == 0) {
        return absl::InvalidArgumentError(absl::StrCat("rate_limits.", r.name, ": ", UnitName(l.unit), " per ",
                                                       WindowName(l.window_seconds), " must be > 0"));
      }
    }
  }
  return absl::OkStatus();
}

namespace {

// (Unix second, hits) pairs, ascending: one unit of one counter.
using Seconds = std::deque<std::pair<int64_t, uint64_t>>;

// Hits of the seconds now_s-w+1 .. now_s.
uint64_t WindowSum(const Seconds& h, uint64_t total, int64_t now_s, int64_t w) {
  if (h.empty() || h.front().first > now_s - w) return total;
  uint64_t sum = 0;
  for (auto it = h.rbegin(); it != h.rend() && it->first > now_s - w; ++it) sum += it->second;
  return sum;
}

// How long until the hits in the window have dropped by `need` (> 0): the second whose hits
// complete `need` leaves the window at (second + w). The whole window when the hits counted
// are fewer than `need` (what is asked exceeds the limit by itself).
absl::Duration ResetAfter(const Seconds& h, int64_t now_s, int64_t w, uint64_t need, absl::Time now) {
  uint64_t freed = 0;
  for (const auto& [second, hits] : h) {
    if (second <= now_s - w) continue;
    freed += hits;
    if (freed >= need) return std::max(absl::ZeroDuration(), absl::FromUnixSeconds(second + w) - now);
  }
  return absl::Seconds(w);
}

LimitStatus StatusOf(const Rule& rule, const Limit& limit, const Seconds& h, uint64_t total, int64_t now_s,
                     absl::Time now) {
  LimitStatus s;
  s.rule = rule.name;
  s.limit = limit;
  s.used = WindowSum(h, total, now_s, limit.window_seconds);
  s.remaining = s.used >= limit.limit ? 0 : limit.limit - s.used;
  s.reset = s.used == 0 ? absl::ZeroDuration() : ResetAfter(h, now_s, limit.window_seconds, 1, now);
  return s;
}

bool MoreConstraining(const LimitStatus& a, const LimitStatus& b) {
  if (a.code != b.code) return a.code == Code::kOverLimit;
  if (a.code == Code::kOverLimit) return a.reset > b.reset;
  if (a.remaining != b.remaining) return a.remaining < b.remaining;
  return a.reset > b.reset;
}

std::string LimitText(const LimitStatus& s) {
  return absl::StrFormat("rule %s: %d of %d %s per %s", s.rule, s.used, s.limit.limit, UnitName(s.limit.unit),
                         WindowName(s.limit.window_seconds));
}

void Trim(Seconds* h, uint64_t* total, int64_t now_s, int64_t max_window) {
  while (!h->empty() && h->front().first <= now_s - max_window) {
    *total -= h->front().second;
    h->pop_front();
  }
}

void Add(Seconds* h, uint64_t* total, int64_t now_s, uint64_t hits) {
  if (hits == 0) return;
  // A wall clock that stepped back counts into the newest second rather than out of order.
  if (!h->empty() && h->back().first >= now_s) {
    h->back().second += hits;
  } else {
    h->emplace_back(now_s, hits);
  }
  *total += hits;
}

int64_t MaxWindow(const std::vector<Applied>& limits, Unit unit) {
  int64_t w = 0;
  for (const Applied& a : limits) {
    if (a.limit->unit == unit) w = std::max(w, a.limit->window_seconds);
  }
  return w;
}

}  // namespace

std::vector<RateLimitCounters::Usage> RateLimitCounters::Snapshot(const RateLimitConfig& config, absl::Time now) const {
  const int64_t now_s = absl::ToUnixSeconds(now);
  std::vector<Usage> out;
  for (const auto& [key, c] : counters_) {
    for (const Applied& a : LimitsOf(config, c.descriptor)) {
      const Seconds& h = a.limit->unit == Unit::kTokens ? c.tokens.seconds : c.requests.seconds;
      const uint64_t total = a.limit->unit == Unit::kTokens ? c.tokens.total : c.requests.total;
      LimitStatus s = StatusOf(*a.rule, *a.limit, h, total, now_s, now);
      if (s.remaining == 0) s.code = Code::kOverLimit;
      out.push_back({c.descriptor, std::move(s)});
    }
  }
  std::sort(out.begin(), out.end(), [](const Usage& a, const Usage& b) {
    const std::string da = DescriptorText(a.descriptor), db = DescriptorText(b.descriptor);
    return std::tie(da, a.status.rule, a.status.limit.unit, a.status.limit.window_seconds) <
           std::tie(db, b.status.rule, b.status.limit.unit, b.status.limit.window_seconds);
  });
  return out;
}

absl::StatusOr<RateLimitDecision> DecideRateLimit(const std::vector<Descriptor>& descriptors, uint64_t hits,
                                                  RateLimitCounters* counters, const RateLimitConfig& config,
                                                  absl::Time now) {
  const int64_t now_s = absl::ToUnixSeconds(now);
  std::vector<Parsed> parsed;
  std::vector<std::vector<Applied>> applied;
  parsed.reserve(descriptors.size());
  for (const Descriptor& d : descriptors) {
    absl::StatusOr<Parsed> p = Parse(d);
    if (!p.ok()) return p.status();
    applied.push_back(LimitsOf(config, p->sorted));
    parsed.push_back(*std::move(p));
  }
  // A token report counts only against token limits: one whose rules limit requests alone is
  // answered OK and creates no counter.
  std::vector<bool> no_token_limit(parsed.size(), false);
  for (size_t i = 0; i < parsed.size(); ++i) {
    if (!parsed[i].tokens || applied[i].empty()) continue;
    if (std::none_of(applied[i].begin(), applied[i].end(),
                     [](const Applied& a) { return a.limit->unit == Unit::kTokens; })) {
      no_token_limit[i] = true;
      applied[i].clear();
    }
  }

  // Room for the new descriptors first, so that a refusal changes nothing.
  auto& table = counters->counters_;
  absl::flat_hash_set<std::string> fresh;
  for (size_t i = 0; i < parsed.size(); ++i) {
    if (!applied[i].empty() && !table.contains(parsed[i].key)) fresh.insert(parsed[i].key);
  }
  if (table.size() + fresh.size() > config.max_descriptors) {
    // Drop the counters with nothing left in any window of the configuration.
    int64_t longest = 1;
    for (const Rule& r : config.rules) {
      for (const Limit& l : r.limits) longest = std::max(longest, l.window_seconds);
    }
    absl::erase_if(table, [&](const auto& kv) {
      const auto& c = kv.second;
      const int64_t newest = std::max(c.requests.seconds.empty() ? INT64_MIN : c.requests.seconds.back().first,
                                      c.tokens.seconds.empty() ? INT64_MIN : c.tokens.seconds.back().first);
      return newest <= now_s - longest;
    });
    if (table.size() + fresh.size() > config.max_descriptors) {
      std::string which;
      for (size_t i = 0; i < parsed.size(); ++i) {
        if (fresh.contains(parsed[i].key)) which = DescriptorText(parsed[i].sorted);
      }
      return absl::ResourceExhaustedError(absl::StrCat("rate limits: ", table.size(),
                                                       " descriptors counted, the cap (max_descriptors) is ",
                                                       config.max_descriptors, "; not counting ", which));
    }
  }

  // Every counter this call touches exists before any pointer to one is taken: inserting
  // into the flat map may move the counters already in it.
  for (size_t i = 0; i < parsed.size(); ++i) {
    if (applied[i].empty()) continue;
    auto [it, inserted] = table.try_emplace(parsed[i].key);
    if (inserted) it->second.descriptor = parsed[i].sorted;
  }
  std::vector<RateLimitCounters::Counter*> counter_of(parsed.size(), nullptr);
  for (size_t i = 0; i < parsed.size(); ++i) {
    if (!applied[i].empty()) counter_of[i] = &table.find(parsed[i].key)->second;
  }

  RateLimitDecision decision;
  decision.descriptors.resize(parsed.size());
  bool admit = true;
  // Before counting: which limits refuse, and how much must leave the window for this call.
  std::vector<std::vector<uint64_t>> need(parsed.size());
  for (size_t i = 0; i < parsed.size(); ++i) {
    DescriptorDecision& dd = decision.descriptors[i];
    dd.tokens = parsed[i].tokens;
    if (applied[i].empty()) continue;
    RateLimitCounters::Counter& c = *counter_of[i];
    Trim(&c.requests.seconds, &c.requests.total, now_s, MaxWindow(applied[i], Unit::kRequests));
    Trim(&c.tokens.seconds, &c.tokens.total, now_s, MaxWindow(applied[i], Unit::kTokens));
    need[i].assign(applied[i].size(), 0);
    for (size_t j = 0; j < applied[i].size(); ++j) {
      const Limit& l = *applied[i][j].limit;
      if (parsed[i].tokens && l.unit != Unit::kTokens) continue;
      const auto& hist = l.unit == Unit::kTokens ? c.tokens : c.requests;
      const uint64_t used = WindowSum(hist.seconds, hist.total, now_s, l.window_seconds);
      // A request counts its hits against request limits and needs token quota left; a
      // token report counts its tokens.
      const uint64_t after = (l.unit == Unit::kTokens && !parsed[i].tokens) ? used + 1 : used + hits;
      if (after > l.limit) {
        need[i][j] = after - l.limit;
        dd.code = Code::kOverLimit;
        if (!parsed[i].tokens) admit = false;
      }
    }
  }

  for (size_t i = 0; i < parsed.size(); ++i) {
    RateLimitCounters::Counter* c = counter_of[i];
    if (c == nullptr) continue;
    if (parsed[i].tokens) {
      Add(&c->tokens.seconds, &c->tokens.total, now_s, hits);
    } else if (admit) {
      Add(&c->requests.seconds, &c->requests.total, now_s, hits);
    }
  }

  for (size_t i = 0; i < parsed.size(); ++i) {
    DescriptorDecision& dd = decision.descriptors[i];
    const std::string text = DescriptorText(parsed[i].sorted);
    RateLimitCounters::Counter* c = counter_of[i];
    if (c == nullptr) {
      dd.reason =
          absl::StrCat(text, no_token_limit[i] ? " (tokens spent): no token limit applies" : ": no rate limit matches");
      continue;
    }
    for (size_t j = 0; j < applied[i].size(); ++j) {
      const Limit& l = *applied[i][j].limit;
      if (parsed[i].tokens && l.unit != Unit::kTokens) continue;
      const auto& hist = l.unit == Unit::kTokens ? c->tokens : c->requests;
      LimitStatus s = StatusOf(*applied[i][j].rule, l, hist.seconds, hist.total, now_s, now);
      if (need[i][j] > 0) {
        s.code = Code::kOverLimit;
        // A token report is already counted: what must leave is the excess.
        const uint64_t must_leave = parsed[i].tokens ? s.used - std::min(s.used, l.limit) : need[i][j];
        s.reset =
            must_leave == 0 ? absl::ZeroDuration() : ResetAfter(hist.seconds, now_s, l.window_seconds, must_leave, now);
      }
      dd.limits.push_back(std::move(s));
    }
    if (dd.limits.empty()) {  // A token report whose rules limit only requests.
      dd.reason = absl::StrCat(text, " (tokens spent): no token limit applies");
      continue;
    }
    std::stable_sort(dd.limits.begin(), dd.limits.end(), MoreConstraining);
    const LimitStatus& top = dd.limits.front();
    if (dd.code == Code::kOverLimit) {
      dd.reason = absl::StrCat(
          text, parsed[i].tokens ? " (tokens spent)" : "", ": OVER_LIMIT, ", LimitText(top),
          parsed[i].tokens || top.limit.unit == Unit::kTokens ? "" : absl::StrCat(", ", hits, " more asked"),
          "; fits again in ", absl::FormatDuration(top.reset));
    } else {
      dd.reason = absl::StrCat(text, parsed[i].tokens ? " (tokens spent)" : "", ": OK, ", LimitText(top), ", ",
                               top.remaining, " left");
    }
  }

  decision.overall = Code::kOk;
  for (const DescriptorDecision& dd : decision.descriptors) {
    if (dd.code == Code::kOverLimit) decision.overall = Code::kOverLimit;
  }
  for (const DescriptorDecision& dd : decision.descriptors) {
    if (dd.code == decision.overall) {
      decision.reason = dd.reason;
      break;
    }
  }
  if (decision.reason.empty() && !decision.descriptors.empty()) decision.reason = decision.descriptors[0].reason;
  return decision;
}

const LimitStatus* MostConstraining(const RateLimitDecision& decision) {
  const LimitStatus* best = nullptr;
  for (const DescriptorDecision& dd : decision.descriptors) {
    if (dd.code != decision.overall || dd.limits.empty()) continue;
    if (best == nullptr || MoreConstraining(dd.limits.front(), *best)) best = &dd.limits.front();
  }
  return best;
}

}  // namespace switchboard::controlplane::ratelimit
