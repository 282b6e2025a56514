#!/usr/bin/env bash
# Sums the autoscaling figures of a scenario over several seeds, so that a comparison does
# not rest on one random draw:
#   scripts/sim-seeds.sh sim/scenarios/diurnal-burst.yaml [SEEDS...]   (default seeds 1-5)
# Prints, per autoscaling policy, SLO-violation minutes, GPU-hours and scaling changes
# summed over the seeds, and the ratios to hpa_utilization.
set -euo pipefail
SCENARIO=${1:?usage: scripts/sim-seeds.sh SCENARIO [SEEDS...]}
shift
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(1 2 3 4 5)
SIM=${BUILD_DIR:-build}/bin/switchboard-sim
for seed in "${SEEDS[@]}"; do
  "$SIM" --scenario "$SCENARIO" --seed "$seed" | sed -n '/^autoscaling/,$p' | tail -n +3
done | awk -v seeds="${SEEDS[*]}" '
  { slo[$1] += $(NF-2); gpuh[$1] += $(NF-1); ch[$1] += $NF; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
  END {
    printf "seeds %s\n%-24s %9s %9s %9s %12s %12s\n", seeds, "POLICY", "SLO-MIN", "GPU-H", "CHANGES", "SLO/HPA-UTIL", "GPUH/HPA-UTIL"
    b = "hpa_utilization"
    for (i = 0; i < n; i++) {
      p = order[i]
      printf "%-24s %9d %9.2f %9d %12s %12.3f\n", p, slo[p], gpuh[p], ch[p],
             (slo[b] > 0 ? sprintf("%.2f", slo[p] / slo[b]) : "-"), gpuh[p] / gpuh[b]
    }
  }'
