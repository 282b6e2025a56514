#include <algorithm>
#include <cmath>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "sim/simulator/fleet_sim.h"

namespace switchboard::sim {
namespace {

// Lengths: geometric-like spread around the mean (exponential, at least 1 token).
int Tokens(std::mt19937_64& rng, double mean) {
  std::exponential_distribution<double> d(1.0 / mean);
  return std::max(1, static_cast<int>(std::lround(d(rng))));
}

absl::StatusOr<std::vector<SimRequest>> ReadTrace(const Scenario& s) {
  std::ifstream in(s.trace_file);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read trace ", s.trace_file));
  std::vector<SimRequest> out;
  std::string line;
  std::getline(in, line);  // Header.
  double first = -1;
  int line_number = 1;
  while (std::getline(in, line)) {
    ++line_number;
    std::vector<std::string> f = absl::StrSplit(line, ',');
    absl::Time t;
    std::string err;
    int prompt, output;
    if (f.size() != 3 || !absl::ParseTime("%Y-%m-%d %H:%M:%E*S", f[0], &t, &err) || !absl::SimpleAtoi(f[1], &prompt) ||
        !absl::SimpleAtoi(f[2], &output) || prompt < 0 || output < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(s.trace_file, ":", line_number, ": want TIMESTAMP,ContextTokens,GeneratedTokens"));
    }
    const double at = absl::ToDoubleSeconds(t - absl::UnixEpoch());
    if (first < 0) first = at;
    out.push_back({at - first, std::max(1, prompt), std::max(1, output)});
  }
  std::sort(out.begin(), out.end(), [](const SimRequest& a, const SimRequest& b) { return a.arrival_s < b.arrival_s; });
  return out;
}

// Whether `t` falls in the burst, or in one of its recurrences.
bool InBurst(const Scenario& s, double t) {
  if (t < s.burst_start_s) return false;
  const double since = s.burst_period_s > 0 ? std::fmod(t - s.burst_start_s, s.burst_period_s) : t - s.burst_start_s;
  return since < s.burst_duration_s;
}

}  // namespace

namespace {

absl::StatusOr<std::vector<SimRequest>> GenerateArrivals(const Scenario& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const double mean_rate = s.rate_rps > 0 ? s.rate_rps : s.load * FleetCapacityRps(s);
  if (s.generator == "trace") {
    absl::StatusOr<std::vector<SimRequest>> trace = ReadTrace(s);
    if (!trace.ok() || trace->empty()) return trace;
    // Scale arrival times so the trace's mean rate becomes the scenario's.
    const double trace_rate = trace->size() / std::max(1.0, trace->back().arrival_s);
    const double scale = mean_rate > 0 ? trace_rate / mean_rate : 1.0;
    std::vector<SimRequest> out;
    for (SimRequest r : *trace) {
      r.arrival_s *= scale;
      if (r.arrival_s > s.duration_s) break;
      out.push_back(r);
    }
    return out;
  }
  // Non-homogeneous Poisson by thinning against the peak rate.
  auto rate_at = [&](double t) {
    double r = mean_rate;
    if (s.generator == "diurnal" || (s.generator == "burst" && s.diurnal_peak_factor > 1 && s.diurnal_period_s > 0)) {
      // Between trough and peak with the given ratio; the mean over a period is mean_rate.
      const double k = s.diurnal_peak_factor;
      const double shape = (1 - std::cos(2 * M_PI * t / s.diurnal_period_s)) / 2;  // 0 at t = 0, 1 mid-period
      r = mean_rate * 2 / (1 + k) * (1 + (k - 1) * shape);
    }
    if (s.generator == "burst" && InBurst(s, t)) r *= s.burst_factor;
    return r;
  };
  double peak = mean_rate * std::max(1.0, 2 * s.diurnal_peak_factor / (1 + s.diurnal_peak_factor)) *
                std::max(1.0, s.burst_factor);
  std::vector<SimRequest> out;
  if (peak <= 0) return out;
  std::exponential_distribution<double> gap(peak);
  std::uniform_real_distribution<double> u(0, 1);
  double t = 0;
  while ((t += gap(rng)) < s.duration_s) {
    if (u(rng) * peak > rate_at(t)) continue;  // Thinning: keep with probability rate(t) / peak.
    out.push_back({t, Tokens(rng, s.prompt_tokens_mean), Tokens(rng, s.output_tokens_mean)});
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<SimRequest>> GenerateWorkload(const Scenario& s, uint64_t seed) {
  absl::StatusOr<std::vector<SimRequest>> out = GenerateArrivals(s, seed);
  if (!out.ok() || s.classes.empty()) return out;
  // Classes from their own stream, so that the arrivals stay those of the same scenario
  // without classes.
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  std::vector<double> traffic;
  for (const SimClass& c : s.classes) traffic.push_back(c.traffic);
  std::discrete_distribution<int> pick(traffic.begin(), traffic.end());
  for (SimRequest& r : *out) r.priority_class = pick(rng);
  return out;
}

}  // namespace switchboard::sim
