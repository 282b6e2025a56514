#!/usr/bin/env bash
# Sums a scenario's figures over several seeds, so that a comparison does not rest on one
# random draw:
#   scripts/sim-seeds.sh sim/scenarios/diurnal-burst.yaml [SEEDS...]   (default seeds 1-5)
# SIM_ARGS adds switchboard-sim options to every run, e.g. SIM_ARGS="--server-model batched" or
# SIM_ARGS="--proxies 1".
# Routing: per policy, the mean p99 TTFT over the seeds and the mean of its ratio to the
# oracle's p99 in the same seed. Autoscaling: per policy, SLO-violation minutes, GPU-hours,
# scaling changes, reversals and quick reversals summed over the seeds, and the ratios to hpa_utilization.
set -euo pipefail
SCENARIO=${1:?usage: scripts/sim-seeds.sh SCENARIO [SEEDS...]}
shift
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(1 2 3 4 5)
SIM=${BUILD_DIR:-build}/bin/switchboard-sim
for seed in "${SEEDS[@]}"; do
  echo "seed $seed"
  # shellcheck disable=SC2086  # SIM_ARGS is split into options on purpose.
  "$SIM" --scenario "$SCENARIO" --seed "$seed" ${SIM_ARGS:-}
done | awk -v seeds="${SEEDS[*]}" '
  /^seed / { delete p99; section = ""; next }
  /^routing/ { section = "r"; next }
  /^autoscaling/ { section = "a"; next }
  /^ *POLICY/ || NF < 9 { next }
  section == "r" {
    p99[$1] = $4 + 0
    sum99[$1] += $4 + 0
    if (!($1 in rseen)) { rseen[$1] = 1; rorder[rn++] = $1 }
    if ($1 == "oracle") for (p in p99) ratio[p] += p99[p] / p99["oracle"]
    next
  }
  section == "a" {
    slo[$1] += $(NF-4); gpuh[$1] += $(NF-3); ch[$1] += $(NF-2); rev[$1] += $(NF-1); quick[$1] += $NF
    if (!($1 in aseen)) { aseen[$1] = 1; aorder[an++] = $1 }
  }
  END {
    k = split(seeds, unused, " ")
    printf "seeds %s\n", seeds
    if (rn > 0) {
      printf "%-24s %12s %16s\n", "ROUTING POLICY", "MEAN P99 S", "MEAN P99/ORACLE"
      for (i = 0; i < rn; i++) { p = rorder[i]; printf "%-24s %12.2f %16.2f\n", p, sum99[p] / k, ratio[p] / k }
    }
    if (an > 0) {
      printf "%-24s %9s %9s %9s %9s %9s %12s %12s\n", "SCALING POLICY", "SLO-MIN", "GPU-H", "CHANGES", "REVERSALS", "QUICK", "SLO/HPA-UTIL", "GPUH/HPA-UTIL"
      b = "hpa_utilization"
      for (i = 0; i < an; i++) {
        p = aorder[i]
        printf "%-24s %9d %9.2f %9d %9d %9d %12s %12.3f\n", p, slo[p], gpuh[p], ch[p], rev[p], quick[p],
               (slo[b] > 0 ? sprintf("%.2f", slo[p] / slo[b]) : "-"), gpuh[p] / gpuh[b]
      }
    }
  }'
