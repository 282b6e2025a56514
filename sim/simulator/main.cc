// switchboard-sim: runs the control plane's policy code against a simulated fleet and
// compares routing policies (and, for scenarios with autoscaling, scaling policies) on
// the same traffic. Deterministic for a given seed.
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "cli/table.h"
#include "nlohmann/json.hpp"
#include "sim/simulator/fleet_sim.h"

namespace {

// A horizontal bar chart as plain SVG (no plotting library needed).
void WriteBarChart(const std::string& path, const std::string& title,
                   const std::vector<switchboard::sim::PolicyResult>& results,
                   double (*value)(const switchboard::sim::PolicyResult&), const std::string& unit, bool log_scale) {
  const int width = 760, bar_h = 28, left = 190, top = 40;
  double max_v = 0;
  for (const auto& r : results) max_v = std::max(max_v, value(r));
  auto scale = [&](double v) {
    if (max_v <= 0) return 0.0;
    if (log_scale) return std::log10(1 + 100 * v) / std::log10(1 + 100 * max_v);
    return v / max_v;
  };
  std::ofstream out(path);
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\""
      << top + bar_h * results.size() + 20 << "\" font-family=\"sans-serif\" font-size=\"13\">\n"
      << "<text x=\"10\" y=\"22\" font-size=\"15\">" << title << "</text>\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const double v = value(results[i]);
    const int y = top + static_cast<int>(i) * bar_h;
    const int w = static_cast<int>((width - left - 110) * scale(v));
    const bool ours = results[i].policy.rfind("switchboard", 0) == 0;
    out << "<text x=\"" << left - 8 << "\" y=\"" << y + 18 << "\" text-anchor=\"end\">" << results[i].policy
        << "</text>\n<rect x=\"" << left << "\" y=\"" << y + 4 << "\" width=\"" << std::max(w, 1) << "\" height=\""
        << bar_h - 8 << "\" fill=\"" << (ours ? "#2b7bb9" : "#9aa5b1") << "\"/>\n<text x=\""
        << left + std::max(w, 1) + 6 << "\" y=\"" << y + 18 << "\">" << absl::StrFormat("%.2f", v) << unit
        << "</text>\n";
  }
  out << "</svg>\n";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace switchboard::sim;
  std::string scenario_path;
  uint64_t seed = 0;
  bool json = false;
  std::string svg;
  CLI::App app{"switchboard-sim: compare routing and autoscaling policies on a simulated LLM fleet."};
  app.add_option("--scenario", scenario_path, "scenario YAML (see sim/scenarios/README.md)")->required();
  app.add_option("--seed", seed, "random seed (default: the scenario's)");
  app.add_flag("--json", json, "print {\"routing\": [...], \"autoscaling\": [...]} instead of tables");
  app.add_option("--svg", svg, "also write bar charts: PREFIX-routing.svg (p99 TTFT) and PREFIX-autoscaling.svg");
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<Scenario> scenario = LoadScenario(scenario_path);
  if (!scenario.ok()) {
    std::cerr << "switchboard-sim: " << scenario.status().message() << "\n";
    return 2;
  }
  if (app.count("--seed") == 0) seed = scenario->seed;
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<SimRequest>> workload = GenerateWorkload(*scenario, seed);
  if (!workload.ok()) {
    std::cerr << "switchboard-sim: " << workload.status().message() << "\n";
    return 2;
  }
  std::vector<PolicyResult> routing, scaling;
  for (Routing r : {Routing::kRoundRobin, Routing::kLeastConnections, Routing::kStaticWeights, Routing::kSlotPolling,
                    Routing::kSwitchboard, Routing::kSwitchboardSizeAware, Routing::kOracleJsq,
                    Routing::kOracleSizeBlind, Routing::kOracle}) {
    routing.push_back(Simulate(*scenario, *workload, r, Scaling::kNone, seed));
  }
  if (scenario->autoscaling) {
    for (Scaling s : {Scaling::kHpaUtilization, Scaling::kHpaQueue, Scaling::kSwitchboardReactive,
                      Scaling::kSwitchboardPredictive}) {
      scaling.push_back(Simulate(*scenario, *workload, Routing::kSwitchboard, s, seed));
    }
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  if (!svg.empty()) {
    WriteBarChart(
        svg + "-routing.svg", scenario->name + ": TTFT p99 by routing policy (log scale)", routing,
        [](const PolicyResult& r) { return r.ttft_p99_s; }, "s", true);
    if (!scaling.empty()) {
      WriteBarChart(
          svg + "-autoscaling.svg", scenario->name + ": SLO-violation minutes by autoscaling policy", scaling,
          [](const PolicyResult& r) { return r.slo_violation_minutes; }, " min", false);
    }
  }

  auto to_json = [](const std::vector<PolicyResult>& rs) {
    nlohmann::json list = nlohmann::json::array();
    for (const PolicyResult& r : rs) {
      list.push_back({{"policy", r.policy},
                      {"ttft_p50_s", r.ttft_p50_s},
                      {"ttft_p95_s", r.ttft_p95_s},
                      {"ttft_p99_s", r.ttft_p99_s},
                      {"e2e_p99_s", r.e2e_p99_s},
                      {"throughput_rps", r.throughput_rps},
                      {"slo_violation_minutes", r.slo_violation_minutes},
                      {"gpu_hours", r.gpu_hours},
                      {"scaling_changes", r.scaling_changes},
                      {"completed", r.completed}});
    }
    return list;
  };
  if (json) {
    nlohmann::json out = {{"scenario", scenario->name},     {"seed", seed},
                          {"requests", workload->size()},   {"simulated_seconds", scenario->duration_s},
                          {"wall_seconds", elapsed},        {"routing", to_json(routing)},
                          {"autoscaling", to_json(scaling)}};
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("%s: %d requests over %.0f s simulated (seed %d), %.2f s wall\n\n", scenario->name,
                               workload->size(), scenario->duration_s, seed, elapsed);
  auto table = [](const std::vector<PolicyResult>& rs) {
    switchboard::cli::Table t(
        {"POLICY", "TTFT P50", "P95", "P99", "E2E P99", "REQ/S", "SLO-VIOL MIN", "GPU-H", "SCALINGS"});
    for (const PolicyResult& r : rs) {
      t.AddRow({r.policy, absl::StrFormat("%.2fs", r.ttft_p50_s), absl::StrFormat("%.2fs", r.ttft_p95_s),
                absl::StrFormat("%.2fs", r.ttft_p99_s), absl::StrFormat("%.1fs", r.e2e_p99_s),
                absl::StrFormat("%.2f", r.throughput_rps), absl::StrFormat("%.0f", r.slo_violation_minutes),
                absl::StrFormat("%.2f", r.gpu_hours), absl::StrFormat("%d", r.scaling_changes)});
    }
    t.Print(std::cout, "  ");
  };
  std::cout << "routing (fixed fleet):\n";
  table(routing);
  if (!scaling.empty()) {
    std::cout << "\nautoscaling (switchboard routing):\n";
    table(scaling);
  }
  return 0;
}
