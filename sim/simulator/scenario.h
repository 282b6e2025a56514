// A simulated fleet and its traffic, read from a YAML scenario file (sim/scenarios/,
// documented field by field in sim/scenarios/README.md).
#ifndef SWITCHBOARD_SIM_SIMULATOR_SCENARIO_H_
#define SWITCHBOARD_SIM_SIMULATOR_SCENARIO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controlplane/policy/weights.h"

namespace switchboard::sim {

// How a server shares its GPU among the sequences it runs.
enum class ServerModel {
  // Every slot decodes at decode_tps and prefills at prefill_tps whatever the others do.
  kIdeal,
  // Continuous batching as vLLM and llama.cpp's server do it: every step decodes one token
  // of each running sequence and spends the rest of a token budget on prompt chunks (first
  // come, first served). A step of B decoding sequences takes (1 + decode_slowdown x (B -
  // 1)) / decode_tps, plus its prompt tokens / prefill_tps; the first token comes with the
  // step that ends the prompt. Defaults per engine: sim/scenarios/README.md, with sources.
  kBatched,
};

// The batched model's parameters for an engine ("vllm" or "llama.cpp"); false if unknown.
bool BatchedDefaults(const std::string& engine, double* decode_slowdown, int* step_token_budget);

struct ServerType {
  std::string name;
  int count = 1;  // Replicas at the start.
  int slots = 4;
  double decode_tps = 30;     // Tokens/s of one sequence (batched: of one sequence alone).
  double prefill_tps = 3000;  // Prompt tokens/s (ideal: of each slot; batched: of the server).
  double cold_start_s = 120;  // A new replica's load time (autoscaling).
  // Batched model only (ignored by the ideal one); defaults from `engine`.
  std::string engine = "vllm";
  double decode_slowdown = 0.03;  // Share of a one-sequence decode step each further sequence adds.
  int step_token_budget = 2048;   // Tokens per step, decode and prompt chunks together.
};

// A priority class in the mixed-priority comparison (switchboard-sim runs it when a
// scenario has `priority`): its share of the pool's slots (as in the pool YAML's
// `classes:`) and its share of the traffic.
struct SimClass {
  std::string name;
  double share = 1;    // (0, 1], not increasing down the list.
  double traffic = 0;  // Of the requests; the classes' traffic sums to 1.
};

struct Scenario {
  std::string name;
  ServerModel server_model = ServerModel::kIdeal;
  std::vector<ServerType> servers;
  int proxies = 4;
  double report_interval_s = 1;
  double push_delay_s = 0.1;
  // Picker replicas sharing their requests in flight (switchboard_picker_shared): each
  // writes its counts this often (switchboard-picker --share-interval) and the answer
  // comes back after twice the one-way delay.
  double share_interval_s = 0.05;
  double share_delay_s = 0.001;
  double duration_s = 600;
  double warmup_s = 30;  // Requests arriving before this are not measured.
  uint64_t seed = 1;
  // Traffic.
  std::string generator = "poisson";  // poisson | diurnal | burst | trace
  double load = 0.85;                 // Share of the initial fleet's capacity (when rate_rps is 0).
  double rate_rps = 0;                // Explicit mean rate, overrides load.
  double prompt_tokens_mean = 1000;
  double output_tokens_mean = 130;
  double diurnal_period_s = 3600;  // diurnal: one "day" in simulated seconds.
  double diurnal_peak_factor = 1;  // peak rate / trough rate (diurnal and burst; 1 = flat).
  double burst_start_s = 0, burst_duration_s = 0, burst_factor = 1;
  double burst_period_s = 0;  // burst: it recurs every period from burst_start_s; 0 = once.
  std::string trace_file;     // trace: CSV TIMESTAMP,ContextTokens,GeneratedTokens.
  // Goals and autoscaling.
  double slo_ttft_s = 2;
  // The weights' settings, as the control plane holds them for a pool: its defaults, with
  // what the scenario's `pool` block sets (view_age), read by the control plane's own
  // parser (ParseWeightKeys). switchboard-sim --view-age overrides view_age, to compare.
  controlplane::policy::WeightConfig weights;
  bool autoscaling = false;
  std::string scale_server_type;  // Type added by scale-ups (default: the first).
  int min_replicas = 1, max_replicas = 32;
  double autoscale_interval_s = 15;
  // Priority classes, most important first (empty: none), and the picker's pool bound
  // (--shed-occupancy) in their comparison; 0: no bound.
  std::vector<SimClass> classes;
  double shed_occupancy = 0;
};

absl::StatusOr<Scenario> LoadScenario(const std::string& path);
absl::StatusOr<Scenario> ParseScenario(const std::string& yaml, const std::string& name);

// Mean requests/s the scenario's initial fleet can serve with every slot busy, under its
// server model (ideal: slots over the mean request's time in a slot; batched: one request
// costs its prompt's prefill plus its share of full-batch decode steps).
double FleetCapacityRps(const Scenario& s);

// Mean requests/s one server of type `t` serves with every slot busy, under `model`.
double ServerCapacityRps(const ServerType& t, ServerModel model, double prompt_tokens, double output_tokens);

const char* ServerModelName(ServerModel m);
// "ideal" or "batched"; false if neither.
bool ParseServerModel(const std::string& name, ServerModel* out);

}  // namespace switchboard::sim

#endif  // SWITCHBOARD_SIM_SIMULATOR_SCENARIO_H_
