// switchboard-sim: runs the control plane's policy code against a simulated fleet and
// compares routing policies (and, for scenarios with autoscaling, scaling policies) on
// the same traffic. Deterministic for a given seed.
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "common/table.h"
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

// The autoscaling policies minute by minute, as plain SVG: replicas (with the arrival
// rate behind them) above, p95 TTFT against the SLO below.
void WriteTimeline(const std::string& path, const std::string& title, double slo_s,
                   const std::vector<switchboard::sim::PolicyResult>& results) {
  const char* colors[] = {"#9aa5b1", "#d08c2b", "#7fb3d5", "#1f5f99", "#6a3d9a", "#2ca02c"};
  const int width = 900, left = 60, right = 20, panel_h = 220, gap = 50, top = 60;
  int first = 1 << 30, last = 0, max_replicas = 1, max_requests = 1;
  for (const auto& r : results) {
    for (const auto& m : r.minutes) {
      first = std::min(first, m.minute);
      last = std::max(last, m.minute);
      max_replicas = std::max(max_replicas, m.replicas);
      max_requests = std::max(max_requests, m.requests);
    }
  }
  if (last <= first) return;
  const double ttft_cap = 4 * slo_s;  // Overloaded minutes are drawn at the top edge.
  auto x = [&](int minute) { return left + (width - left - right) * double(minute - first) / (last - first); };
  auto y_rep = [&](double v) { return top + panel_h * (1 - v / (max_replicas * 1.1)); };
  const int top2 = top + panel_h + gap;
  auto y_ttft = [&](double v) { return top2 + panel_h * (1 - std::min(v, ttft_cap) / ttft_cap); };

  std::ofstream out(path);
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << top2 + panel_h + 40
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<text x=\"10\" y=\"20\" font-size=\"15\">" << title
      << "</text>\n";
  // Legend.
  for (size_t i = 0; i < results.size(); ++i) {
    const double lx = left + 170.0 * i;
    out << absl::StrFormat("<rect x=\"%.0f\" y=\"32\" width=\"14\" height=\"4\" fill=\"%s\"/>", lx, colors[i % 6])
        << absl::StrFormat("<text x=\"%.0f\" y=\"38\">%s</text>\n", lx + 18, results[i].policy);
  }
  // Arrivals per minute (the same for every policy), shaded behind the replica lines.
  std::string area = absl::StrFormat("M%.1f,%.1f", x(first), double(top + panel_h));
  for (const auto& m : results.front().minutes) {
    area +=
        absl::StrFormat(" L%.1f,%.1f", x(m.minute), top + panel_h * (1 - double(m.requests) / (max_requests * 1.1)));
  }
  area += absl::StrFormat(" L%.1f,%.1f Z", x(last), double(top + panel_h));
  out << "<path d=\"" << area << "\" fill=\"#eef1f4\"/>\n";
  out << absl::StrFormat("<text x=\"%d\" y=\"%d\">replicas (lines); requests per minute (shaded, peak %d)</text>\n",
                         left, top - 6 + 0, max_requests);
  out << absl::StrFormat(
      "<text x=\"%d\" y=\"%d\">p95 TTFT per minute (drawn up to %.0f s); dashed: the %.0f s SLO</text>\n", left,
      top2 - 6, ttft_cap, slo_s);
  for (int panel = 0; panel < 2; ++panel) {
    const int y0 = panel == 0 ? top : top2;
    out << absl::StrFormat("<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#555\"/>\n", left,
                           y0, width - left - right, panel_h);
  }
  for (int v = 0; v <= max_replicas; v += std::max(1, max_replicas / 5)) {
    out << absl::StrFormat("<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n", left - 6, y_rep(v) + 4, v);
  }
  for (int k = 0; k <= 4; ++k) {  // 0, SLO, ... 4 x SLO (the cap).
    const double v = k * slo_s;
    out << absl::StrFormat("<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.0fs</text>\n", left - 6, y_ttft(v) + 4, v);
  }
  out << absl::StrFormat(
      "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#c0392b\" stroke-dasharray=\"6,4\"/>\n", left,
      width - right, y_ttft(slo_s), y_ttft(slo_s));
  const int step = std::max(1, (last - first) / 8 / 10 * 10);
  for (int m = first; m <= last; m += step) {
    out << absl::StrFormat("<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d min</text>\n", x(m),
                           top2 + panel_h + 16, m);
  }
  for (size_t i = 0; i < results.size(); ++i) {
    std::string rep, ttft;
    for (const auto& m : results[i].minutes) {
      rep += absl::StrFormat("%s%.1f,%.1f", rep.empty() ? "M" : " L", x(m.minute), y_rep(m.replicas));
      ttft += absl::StrFormat("%s%.1f,%.1f", ttft.empty() ? "M" : " L", x(m.minute), y_ttft(m.ttft_p95_s));
    }
    // Baselines thin and dashed, Switchboard's policies solid on top.
    const bool ours = results[i].policy.rfind("switchboard", 0) == 0;
    for (const std::string& d : {rep, ttft}) {
      out << "<path d=\"" << d << "\" fill=\"none\" stroke=\"" << colors[i % 6] << "\" stroke-width=\""
          << (ours ? "1.6" : "1.1\" stroke-dasharray=\"5,3") << "\"/>\n";
    }
  }
  out << "</svg>\n";
}

// One row per policy and minute: what the timeline chart draws, for other tools.
bool WriteTimelineCsv(const std::string& path, const std::vector<switchboard::sim::PolicyResult>& routing,
                      const std::vector<switchboard::sim::PolicyResult>& scaling) {
  std::ofstream out(path);
  if (!out) return false;
  out << "kind,policy,minute,requests,ttft_p95_s,replicas,ready_replicas\n";
  for (const auto* list : {&routing, &scaling}) {
    for (const auto& r : *list) {
      for (const auto& m : r.minutes) {
        out << (list == &routing ? "routing" : "autoscaling") << "," << r.policy << "," << m.minute << "," << m.requests
            << "," << absl::StrFormat("%.3f", m.ttft_p95_s) << "," << m.replicas << "," << m.ready_replicas << "\n";
      }
    }
  }
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace switchboard::sim;
  std::string scenario_path;
  uint64_t seed = 0;
  bool json = false;
  std::string svg, timeline;
  CLI::App app{"switchboard-sim: compare routing and autoscaling policies on a simulated LLM fleet."};
  app.add_option("--scenario", scenario_path, "scenario YAML (see sim/scenarios/README.md)")->required();
  app.add_option("--seed", seed, "random seed (default: the scenario's)");
  double view_age_s = -1;
  app.add_option("--view-age", view_age_s,
                 "seconds: the weights' view age (0 counts reports in full), instead of the scenario's pool.view_age "
                 "or the control plane's default (2 s)");
  std::string server_model;
  app.add_option("--server-model", server_model,
                 "ideal or batched: override the scenario's server_model (see sim/scenarios/README.md)");
  int proxies = 0;
  app.add_option("--proxies", proxies, "override the scenario's number of proxies (gateways, picker replicas)")
      ->check(CLI::Range(1, 10000));
  app.add_flag("--json", json, "print {\"routing\": [...], \"autoscaling\": [...]} instead of tables");
  app.add_option("--svg", svg,
                 "also write charts: PREFIX-routing.svg (p99 TTFT), and for autoscaling scenarios "
                 "PREFIX-autoscaling.svg (SLO-violation minutes) and PREFIX-timeline.svg (replicas and p95 TTFT "
                 "minute by minute)");
  app.add_option("--timeline", timeline,
                 "also write every policy's minutes as CSV (kind,policy,minute,requests,ttft_p95_s,replicas,"
                 "ready_replicas) to this file");
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<Scenario> scenario = LoadScenario(scenario_path);
  if (!scenario.ok()) {
    std::cerr << "switchboard-sim: " << scenario.status().message() << "\n";
    return 2;
  }
  if (!server_model.empty() && !ParseServerModel(server_model, &scenario->server_model)) {
    std::cerr << "switchboard-sim: --server-model must be ideal or batched\n";
    return 2;
  }
  if (app.count("--seed") == 0) seed = scenario->seed;
  if (app.count("--view-age") > 0) scenario->weights.view_age = absl::Seconds(std::max(0.0, view_age_s));
  if (proxies > 0) scenario->proxies = proxies;
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<SimRequest>> workload = GenerateWorkload(*scenario, seed);
  if (!workload.ok()) {
    std::cerr << "switchboard-sim: " << workload.status().message() << "\n";
    return 2;
  }
  std::vector<PolicyResult> routing, scaling;
  for (Routing r :
       {Routing::kRoundRobin, Routing::kLeastConnections, Routing::kStaticWeights, Routing::kSlotPolling,
        Routing::kSwitchboard, Routing::kSwitchboardSizeAware, Routing::kSwitchboardPicker,
        Routing::kSwitchboardPickerShared, Routing::kOracleJsq, Routing::kOracleSizeBlind, Routing::kOracle}) {
    routing.push_back(Simulate(*scenario, *workload, r, Scaling::kNone, seed));
  }
  if (scenario->autoscaling) {
    for (Scaling s : {Scaling::kHpaUtilization, Scaling::kHpaQueue, Scaling::kSwitchboardReactive,
                      Scaling::kSwitchboardPredictive, Scaling::kOracle}) {
      scaling.push_back(Simulate(*scenario, *workload, Routing::kSwitchboard, s, seed));
    }
  }
  std::vector<ClassModeResult> priority;  // The mixed-priority comparison, when the scenario has classes.
  if (!scenario->classes.empty()) {
    for (ClassMode m : {ClassMode::kNone, ClassMode::kClasses, ClassMode::kStrictPriority}) {
      priority.push_back(SimulateClasses(*scenario, *workload, m, seed));
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
      WriteTimeline(svg + "-timeline.svg", scenario->name + ": autoscaling minute by minute", scenario->slo_ttft_s,
                    scaling);
    }
  }
  if (!timeline.empty() && !WriteTimelineCsv(timeline, routing, scaling)) {
    std::cerr << "switchboard-sim: cannot write " << timeline << "\n";
    return 2;
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
                      {"scaling_reversals", r.scaling_reversals},
                      {"quick_reversals", r.quick_reversals},
                      {"completed", r.completed}});
    }
    return list;
  };
  if (json) {
    nlohmann::json out = {{"scenario", scenario->name},
                          {"seed", seed},
                          {"server_model", ServerModelName(scenario->server_model)},
                          {"requests", workload->size()},
                          {"simulated_seconds", scenario->duration_s},
                          {"wall_seconds", elapsed},
                          {"routing", to_json(routing)},
                          {"autoscaling", to_json(scaling)}};
    if (!priority.empty()) {
      nlohmann::json list = nlohmann::json::array();
      for (const ClassModeResult& m : priority) {
        for (const ClassResult& c : m.classes) {
          list.push_back({{"mode", m.mode},
                          {"class", c.name},
                          {"offered", c.offered},
                          {"refused", c.refused},
                          {"ttft_p50_s", c.ttft_p50_s},
                          {"ttft_p99_s", c.ttft_p99_s}});
        }
      }
      out["priority"] = list;
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("%s: %d requests over %.0f s simulated (seed %d, %s servers), %.2f s wall\n\n",
                               scenario->name, workload->size(), scenario->duration_s, seed,
                               ServerModelName(scenario->server_model), elapsed);
  auto table = [](const std::vector<PolicyResult>& rs) {
    switchboard::Table t({"POLICY", "TTFT P50", "P95", "P99", "E2E P99", "REQ/S", "SLO-VIOL MIN", "GPU-H", "SCALINGS",
                          "REVERSALS", "QUICK"});
    for (const PolicyResult& r : rs) {
      t.AddRow({r.policy, absl::StrFormat("%.2fs", r.ttft_p50_s), absl::StrFormat("%.2fs", r.ttft_p95_s),
                absl::StrFormat("%.2fs", r.ttft_p99_s), absl::StrFormat("%.1fs", r.e2e_p99_s),
                absl::StrFormat("%.2f", r.throughput_rps), absl::StrFormat("%.0f", r.slo_violation_minutes),
                absl::StrFormat("%.2f", r.gpu_hours), absl::StrFormat("%d", r.scaling_changes),
                absl::StrFormat("%d", r.scaling_reversals), absl::StrFormat("%d", r.quick_reversals)});
    }
    t.Print(std::cout, "  ");
  };
  std::cout << "routing (fixed fleet):\n";
  table(routing);
  if (!scaling.empty()) {
    std::cout << "\nautoscaling (switchboard routing):\n";
    table(scaling);
  }
  if (!priority.empty()) {
    std::cout << absl::StrFormat("\npriority classes (switchboard_picker routing, pool bound %.2f, SLO %.1fs):\n",
                                 scenario->shed_occupancy, scenario->slo_ttft_s);
    switchboard::Table t({"MODE", "CLASS", "OFFERED", "REFUSED", "LOST %", "TTFT P50", "P99"});
    for (const ClassModeResult& m : priority) {
      for (const ClassResult& c : m.classes) {
        t.AddRow({m.mode, c.name, absl::StrFormat("%d", c.offered), absl::StrFormat("%d", c.refused),
                  absl::StrFormat("%.1f", c.offered > 0 ? 100.0 * c.refused / c.offered : 0.0),
                  absl::StrFormat("%.2fs", c.ttft_p50_s), absl::StrFormat("%.2fs", c.ttft_p99_s)});
      }
    }
    t.Print(std::cout, "  ");
  }
  return 0;
}
