// sbctl: query and steer a Switchboard control plane.
#include <cstdlib>
#include <iostream>

#include "CLI/CLI.hpp"
#include "cli/commands.h"
#include "cli/completion.h"
#include "common/cli_parse.h"
#include "common/net.h"
#include "common/tls.h"

int main(int argc, char** argv) {
  switchboard::cli::GlobalOptions global;
  const char* env = std::getenv("SWITCHBOARD_ADDR");
  global.controlplane = env != nullptr && *env != '\0' ? env : "127.0.0.1:50051";
  std::string timeout = "5s";
  switchboard::TlsFlags tls;
  std::string token_file;

  CLI::App app{"sbctl: query and steer a Switchboard control plane."};
  app.require_subcommand(1);
  // Global flags may come before or after the subcommand: a subcommand passes the flags it
  // does not know up to here.
  app.fallthrough();
  app.add_flag("--json", global.json, "print JSON (shapes in docs/api.md) instead of tables");
  app.footer(
      "Global flags (--controlplane, --timeout, --json, --insecure) go before or after the command.\n"
      "Exit codes: 0 ok, 1 error (the control plane refused or could not be reached), 2 usage.\n\n"
      "Examples:\n"
      "  sbctl status                                   pools, endpoints and problems\n"
      "  sbctl nodes --json                             every node as JSON\n"
      "  sbctl pool llama-3-8b                          one pool in detail\n"
      "  sbctl history llama-3-8b --metric weight --since 1h --step 1m\n"
      "  sbctl history node-1/10.0.0.5:8080 --metric ttft_p95_seconds --since 2026-12-01T03:00:00Z --until 30m\n"
      "  sbctl events --pool llama-3-8b --since 1h --follow\n"
      "  source <(sbctl completion bash)                tab completion\n");
  app.add_option("--controlplane", global.controlplane,
                 "control plane HOST:PORT (default: $SWITCHBOARD_ADDR, else 127.0.0.1:50051)")
      ->capture_default_str();
  app.add_option("--timeout", timeout, "deadline for each call")->capture_default_str();
  switchboard::AddClientTlsFlags(app, &tls);
  app.add_option("--token-file", token_file,
                 "file holding the admin API bearer token (default: $SWITCHBOARD_TOKEN); see docs/security.md");

  switchboard::cli::StatusOptions status;
  CLI::App* status_cmd =
      app.add_subcommand("status", "pools and their endpoints: state, slots, queue, weight, circuit");
  status_cmd->add_option("pool", status.pool, "only this pool");

  switchboard::cli::WatchOptions watch;
  CLI::App* watch_cmd = app.add_subcommand("watch", "stream assignment versions of a pool as they are pushed");
  watch_cmd->add_option("pool", watch.pool, "pool to watch (default: every pool)");
  watch_cmd->add_option("--count", watch.count, "exit after this many assignments")->check(CLI::NonNegativeNumber);

  std::string drain_node, undrain_node;
  CLI::App* drain_cmd = app.add_subcommand("drain", "stop routing to a node's endpoints and tell its agent to drain");
  drain_cmd->add_option("node", drain_node, "node id")->required();
  CLI::App* undrain_cmd = app.add_subcommand("undrain", "route to a drained node again");
  undrain_cmd->add_option("node", undrain_node, "node id")->required();

  std::string explain_pool, explain_endpoint;
  CLI::App* explain_cmd = app.add_subcommand(
      "explain", "why each endpoint has its weight and circuit state, and the pool its replica count");
  explain_cmd->add_option("pool", explain_pool, "pool")->required();
  explain_cmd->add_option("endpoint", explain_endpoint, "only this endpoint (host:port)");
  bool explain_request = false;
  int explain_picks = 5;
  explain_cmd->add_flag("--request", explain_request,
                        "how the pool's last requests were picked: per candidate endpoint the expected time to "
                        "first token, requests in flight, free slots and why it was chosen or passed over (from "
                        "switchboard-picker replicas, through the control plane)");
  explain_cmd->add_option("--picks", explain_picks, "with --request: how many picks, newest first")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();

  std::string scale_pool, scale_for = "1h", scale_reason;
  int scale_replicas = 0;
  bool scale_clear = false, scale_force = false;
  CLI::App* scale_cmd =
      app.add_subcommand("scale", "set a pool's replica count by hand for a while (wins over autoscaling)");
  scale_cmd->add_option("pool", scale_pool, "pool")->required();
  scale_cmd->add_option("replicas", scale_replicas, "replica count")->check(CLI::Range(0, 100000));
  scale_cmd->add_option("--for", scale_for, "how long the override lasts")->capture_default_str();
  scale_cmd->add_option("--reason", scale_reason, "recorded in the history");
  scale_cmd->add_flag("--clear", scale_clear, "remove the override now");
  scale_cmd->add_flag("--force", scale_force,
                      "allow a count below the pool's autoscaling.min_replicas (0 included); "
                      "without it such a count is refused (exit 3)");

  switchboard::cli::EventsOptions events;
  CLI::App* events_cmd = app.add_subcommand(
      "events", "history: endpoints joining and leaving, circuit changes, scaling decisions, drains, reloads");
  events_cmd->add_option("pool", events.pool, "only this pool's events");
  events_cmd->add_option("--pool", events.pool, "only this pool's events");
  events_cmd->add_option("--limit", events.limit, "most events shown")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  events_cmd->add_option("--since", events.since, "only events since an age (1h, 7d) or an RFC 3339 time");
  events_cmd->add_flag("--follow,-f", events.follow, "keep printing new events as they are recorded");
  events_cmd->add_option("--count", events.count, "with --follow: exit after this many events")
      ->check(CLI::NonNegativeNumber);
  events_cmd->footer("Examples:\n  sbctl events --pool llama --since 1h\n  sbctl events --follow --json\n");

  switchboard::cli::HistoryOptions history;
  CLI::App* history_cmd =
      app.add_subcommand("history", "a metric over time for a pool's endpoints, one endpoint (NODE/ADDRESS) or a pool");
  history_cmd->add_option("target", history.target, "POOL, or NODE/ADDRESS for one endpoint")->required();
  history_cmd
      ->add_option("--metric", history.metric,
                   std::string("what to show: ") + switchboard::cli::kHistoryMetrics +
                       " (demand, replicas and desired are per pool)")
      ->capture_default_str();
  history_cmd->add_option("--since", history.since, "start: an age (1h, 7d) or an RFC 3339 time")
      ->capture_default_str();
  history_cmd->add_option("--until", history.until, "end: an age or an RFC 3339 time (default: now)");
  history_cmd->add_option("--step", history.step, "bucket width (points are averages)")->capture_default_str();
  history_cmd->add_flag("--csv", history.csv, "CSV rows: time,pool,node_id,address,metric,value");
  history_cmd->footer(
      "Examples:\n"
      "  sbctl history llama --metric weight --since 1h --step 1m\n"
      "  sbctl history node-1/10.0.0.5:8080 --metric slots_busy --since 2026-12-01T03:00:00Z --until "
      "2026-12-01T03:30:00Z --step 10s\n"
      "  sbctl history llama --metric replicas --since 7d --step 1h --csv\n");

  CLI::App* nodes_cmd = app.add_subcommand("nodes", "every node: agent, connection, drain, endpoints, GPUs");
  std::string pool_name;
  CLI::App* pool_cmd = app.add_subcommand("pool", "one pool in detail: weights, circuits, slots, queue, latency");
  pool_cmd->add_option("pool", pool_name, "pool")->required();
  std::string completion_shell;
  CLI::App* completion_cmd = app.add_subcommand("completion", "print a shell completion script");
  completion_cmd->add_option("shell", completion_shell, "bash")->required();
  completion_cmd->footer("Example:\n  source <(sbctl completion bash)\n");

  CLI::App* clients_cmd = app.add_subcommand(
      "clients", "connected discovery clients (xDS and native): versions ACKed per resource, last NACK");
  CLI::App* limits_cmd =
      app.add_subcommand("limits", "global rate limits: usage, remaining quota and reset per descriptor and limit");

  switchboard::cli::PlanOptions plan;
  double overhead_gib = 0.5;
  CLI::App* plan_cmd =
      app.add_subcommand("plan", "capacity planner: memory for weights + KV cache + overhead, and the GPUs that fit");
  plan_cmd->add_option("--model", plan.model, "catalog model (e.g. llama-3-8b, mistral-7b, llama-3-70b)");
  plan_cmd
      ->add_option("--quant", plan.request.quant,
                   "weight format: Q4_K_M, Q5_K_M, Q6_K, Q8_0, f16, bf16, fp8, int4, ...")
      ->capture_default_str();
  plan_cmd->add_option("--kv-type", plan.request.kv_type, "KV-cache type: f16, bf16, f32, q8_0, q4_0, fp8")
      ->capture_default_str();
  plan_cmd->add_option("--ctx", plan.request.ctx_per_slot, "context per slot, tokens")->capture_default_str();
  plan_cmd->add_option("--slots", plan.request.slots, "parallel slots (llama-server -np, vLLM max-num-seqs)")
      ->capture_default_str();
  plan_cmd->add_option("--params", plan.parameters, "custom model: parameter count (e.g. 8.03e9)");
  plan_cmd->add_option("--layers", plan.layers, "custom model: transformer layers");
  plan_cmd->add_option("--kv-heads", plan.kv_heads, "custom model: key/value heads (GQA)");
  plan_cmd->add_option("--head-dim", plan.head_dim, "custom model: dimension per head");
  plan_cmd->add_option("--overhead-gib", overhead_gib, "runtime overhead per GPU (CUDA context, buffers)")
      ->capture_default_str();
  plan_cmd->add_option("--usable", plan.request.usable_fraction, "share of a GPU's memory that may be used")
      ->capture_default_str();

  SB_CLI_PARSE(app, argc, argv);
  status.json = watch.json = plan.json = global.json;
  if (*completion_cmd) return switchboard::cli::RunCompletion(&app, completion_shell, std::cout, std::cerr);
  plan.request.runtime_overhead_bytes = overhead_gib * 1024.0 * 1024 * 1024;
  if (*plan_cmd) {
    if (plan.model.empty() && (plan.parameters <= 0 || plan.layers <= 0 || plan.kv_heads <= 0 || plan.head_dim <= 0)) {
      std::cerr << "sbctl plan: give --model NAME, or --params, --layers, --kv-heads and --head-dim\n";
      return 2;
    }
    return switchboard::cli::RunPlan(plan, std::cout, std::cerr);
  }
  if (!absl::ParseDuration(timeout, &global.timeout) || global.timeout <= absl::ZeroDuration()) {
    std::cerr << "sbctl: --timeout: '" << timeout << "' is not a positive duration\n";
    return 2;
  }
  if (auto hp = switchboard::ParseHostPort(global.controlplane); !hp.ok() || hp->port == 0) {
    std::cerr << "sbctl: --controlplane '" << global.controlplane << "': want HOST:PORT\n";
    return 2;
  }
  {
    absl::StatusOr<std::string> token = switchboard::ReadBearerToken(token_file);
    absl::Status s =
        token.ok() ? switchboard::ConfigureClientChannels(tls, *token, /*warn_if_insecure=*/false) : token.status();
    if (!s.ok()) {
      std::cerr << "sbctl: " << s.message() << "\n";
      return 2;
    }
  }
  if (*status_cmd) return switchboard::cli::RunStatus(global, status, std::cout, std::cerr);
  if (*watch_cmd) return switchboard::cli::RunWatch(global, watch, std::cout, std::cerr);
  if (*clients_cmd) return switchboard::cli::RunClients(global, global.json, std::cout, std::cerr);
  if (*limits_cmd) return switchboard::cli::RunLimits(global, global.json, std::cout, std::cerr);
  if (*events_cmd) return switchboard::cli::RunEvents(global, events, std::cout, std::cerr);
  if (*history_cmd) return switchboard::cli::RunHistory(global, history, std::cout, std::cerr);
  if (*nodes_cmd) return switchboard::cli::RunNodes(global, std::cout, std::cerr);
  if (*pool_cmd) return switchboard::cli::RunPool(global, pool_name, std::cout, std::cerr);
  if (*explain_cmd) {
    return switchboard::cli::RunExplain(global, explain_pool, explain_endpoint, std::cout, std::cerr,
                                        explain_request ? explain_picks : 0);
  }
  if (*scale_cmd) {
    absl::Duration ttl;
    if (!absl::ParseDuration(scale_for, &ttl) || ttl <= absl::ZeroDuration()) {
      std::cerr << "sbctl scale: --for: '" << scale_for << "' is not a positive duration\n";
      return 2;
    }
    if (!scale_clear && scale_cmd->count("replicas") == 0) {
      std::cerr << "sbctl scale: give a replica count, or --clear\n";
      return 2;
    }
    return switchboard::cli::RunScale(global, scale_pool, scale_clear ? -1 : scale_replicas, ttl, scale_reason,
                                      scale_force, std::cout, std::cerr);
  }
  if (*drain_cmd) return switchboard::cli::RunDrain(global, drain_node, true, std::cout, std::cerr);
  if (*undrain_cmd) return switchboard::cli::RunDrain(global, undrain_node, false, std::cout, std::cerr);
  return 2;
}
