#!/usr/bin/env bash
# GPU check of the agent's readings, for a host with an NVIDIA GPU and driver (not part of
# `make test`: CI machines have no GPU; tests/agent/gpu_source_test.cc covers the code paths
# with a fake NVML library).
#
# It starts a control plane, a fake llama.cpp server and two agents on loopback, one reading
# the GPU through NVML (--gpu nvml) and one through nvidia-smi (--gpu nvidia-smi), and checks
# against nvidia-smi itself:
#   1. both agents report every GPU with nvidia-smi's UUID, name and total memory;
#   2. used memory agrees with nvidia-smi's within 256 MiB while the GPU is idle;
#   3. after a PyTorch process takes ALLOC_GIB of GPU memory and keeps the GPU busy, both
#      agents' used memory grows by at least 90% of it and NVML reports utilization > 0;
#   4. the agent's peak RSS with the real NVML library loaded (printed, not asserted).
#
# Usage: tests/gpu/nvml_check.sh [BIN_DIR] (default build/bin). Needs python3 with torch for
# step 3 (skipped with a message when missing). Writes logs to $OUT (default /tmp/nvml-check).
set -uo pipefail
BIN=${1:-build/bin}
OUT=${OUT:-/tmp/nvml-check}
ALLOC_GIB=${ALLOC_GIB:-16}
CP_PORT=${CP_PORT:-50151}
LLM_PORT=${LLM_PORT:-18080}
NVML_LIBRARY=${NVML_LIBRARY:-libnvidia-ml.so.1}
mkdir -p "$OUT"
# Python runs without LD_LIBRARY_PATH: a caller may point it at the libraries the Switchboard
# binaries were built against (a copy of Debian 12's), which need not suit PyTorch.
PY="env -u LD_LIBRARY_PATH python3"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok:   $*"; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

nvidia-smi --query-gpu=uuid,name,memory.total,memory.used --format=csv,noheader,nounits | tee "$OUT/nvidia-smi-idle.csv"
nvidia-smi -q | head -12 > "$OUT/nvidia-smi-q.txt"

"$BIN/switchboard-controlplane" --listen 127.0.0.1:$CP_PORT --metrics-listen "" --db "" --insecure \
  >"$OUT/controlplane.log" 2>&1 &
pids+=($!)
"$BIN/switchboard-fakellm" --listen 127.0.0.1:$LLM_PORT --slots 4 >"$OUT/fakellm.log" 2>&1 &
pids+=($!)
"$BIN/switchboard-fakellm" --listen 127.0.0.1:$((LLM_PORT + 1)) --slots 4 >"$OUT/fakellm2.log" 2>&1 &
pids+=($!)
"$BIN/switchboard-agent" --controlplane 127.0.0.1:$CP_PORT --insecure --node-id gpu-nvml --gpu nvml --nvml-library "$NVML_LIBRARY" \
  --backend llamacpp=http://127.0.0.1:$LLM_PORT --metrics-listen 127.0.0.1:19465 >"$OUT/agent-nvml.log" 2>&1 &
nvml_agent=$!
pids+=($nvml_agent)
"$BIN/switchboard-agent" --controlplane 127.0.0.1:$CP_PORT --insecure --node-id gpu-smi --gpu nvidia-smi \
  --backend llamacpp=http://127.0.0.1:$((LLM_PORT + 1)) >"$OUT/agent-smi.log" 2>&1 &
smi_agent=$!
pids+=($smi_agent)

# Poll the control plane until both nodes have reported GPUs (at most 20 s).
status_json() { "$BIN/sbctl" --controlplane 127.0.0.1:$CP_PORT --insecure status --json; }
for _ in $(seq 1 80); do
  status_json >"$OUT/status-idle.json" 2>/dev/null &&
    $PY -c 'import json,sys; s=json.load(open(sys.argv[1])); n=s["nodes"]; sys.exit(0 if len(n)==2 and all(x.get("gpus") for x in n) and sum(len(p["assignment"]["endpoints"]) for p in s.get("pools", []))==2 else 1)' "$OUT/status-idle.json" &&
    break
  sleep 0.25
done
"$BIN/sbctl" --controlplane 127.0.0.1:$CP_PORT --insecure status | tee "$OUT/status-idle.txt"

# compare SMI_CSV STATUS_JSON MODE: MODE=idle checks used memory against nvidia-smi; MODE=BASE_JSON
# checks growth against a baseline status.
compare() {
  $PY - "$@" <<'EOF'
import csv, json, sys
smi_csv, status_path, mode, alloc_gib = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
smi = {r[0].strip(): [c.strip() for c in r] for r in csv.reader(open(smi_csv)) if r}
nodes = {n["node_id"]: n for n in json.load(open(status_path))["nodes"]}
base = {n["node_id"]: n for n in json.load(open(mode))["nodes"]} if mode != "idle" else None
bad = 0
for node_id in ("gpu-nvml", "gpu-smi"):
    gpus = nodes.get(node_id, {}).get("gpus", [])
    if len(gpus) != len(smi):
        print(f"FAIL: {node_id} reports {len(gpus)} GPUs, nvidia-smi {len(smi)}"); bad += 1; continue
    for g in gpus:
        row = smi.get(g["uuid"])
        if row is None:
            print(f"FAIL: {node_id} GPU uuid {g['uuid']} unknown to nvidia-smi"); bad += 1; continue
        total_mib = int(g["vram_total_bytes"]) / 2**20
        used_mib = int(g.get("vram_used_bytes", 0)) / 2**20
        util = g.get("utilization", 0.0) if g.get("has_utilization") else None
        print(f"{node_id}: {g['name']} total {total_mib:.0f} MiB used {used_mib:.0f} MiB util {util} "
              f"temp {g.get('temperature_celsius')} | nvidia-smi total {row[2]} used {row[3]}")
        if g["name"] != row[1]:
            print(f"FAIL: name {g['name']!r} != {row[1]!r}"); bad += 1
        if abs(total_mib - float(row[2])) > 1:
            print(f"FAIL: total {total_mib} MiB != {row[2]} MiB"); bad += 1
        if mode == "idle":
            if abs(used_mib - float(row[3])) > 256:
                print(f"FAIL: used {used_mib:.0f} MiB vs nvidia-smi {row[3]} MiB"); bad += 1
        else:
            before = [b for b in base[node_id]["gpus"] if b["uuid"] == g["uuid"]][0]
            grew = (int(g.get("vram_used_bytes", 0)) - int(before.get("vram_used_bytes", 0))) / 2**30
            print(f"{node_id}: used memory grew {grew:.2f} GiB (allocated {alloc_gib} GiB)")
            if grew < 0.9 * alloc_gib:
                print("FAIL: growth below 90% of the allocation"); bad += 1
            if node_id == "gpu-nvml" and not (util and util > 0):
                print("FAIL: NVML utilization not above 0 under load"); bad += 1
sys.exit(1 if bad else 0)
EOF
}
if compare "$OUT/nvidia-smi-idle.csv" "$OUT/status-idle.json" idle 0; then pass "idle readings match nvidia-smi"; else fail "idle readings"; fi

if $PY -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  $PY - "$ALLOC_GIB" "$OUT/loaded" >"$OUT/torch.log" 2>&1 <<'EOF' &
import sys, time, torch
gib, marker = float(sys.argv[1]), sys.argv[2]
hold = torch.empty(int(gib * 2**30), dtype=torch.uint8, device="cuda")
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
torch.cuda.synchronize()
open(marker, "w").close()
end = time.time() + 20
while time.time() < end:
    for _ in range(20):
        a @ a
    torch.cuda.synchronize()
EOF
  load_pid=$!
  pids+=($load_pid)
  for _ in $(seq 1 120); do [ -e "$OUT/loaded" ] && break; sleep 0.25; done
  sleep 3  # let both agents take at least two readings (1 s report interval) under load
  nvidia-smi --query-gpu=uuid,name,memory.total,memory.used --format=csv,noheader,nounits | tee "$OUT/nvidia-smi-loaded.csv"
  status_json >"$OUT/status-loaded.json"
  "$BIN/sbctl" --controlplane 127.0.0.1:$CP_PORT --insecure status | tee "$OUT/status-loaded.txt"
  if compare "$OUT/nvidia-smi-loaded.csv" "$OUT/status-loaded.json" "$OUT/status-idle.json" "$ALLOC_GIB"; then
    pass "readings follow a ${ALLOC_GIB} GiB allocation under load"
  else
    fail "readings under load"
  fi
  kill $load_pid 2>/dev/null
else
  echo "skip: python3 with CUDA torch not found; no load step"
fi

curl -s http://127.0.0.1:19465/metrics 2>/dev/null | grep -i gpu >"$OUT/agent-metrics.txt"
memory() {  # PID: peak and current resident set, split into anonymous and file-backed, and PSS
  local pid=$1
  echo "$(grep -E '^(VmHWM|VmRSS|RssAnon|RssFile)' /proc/$pid/status | tr -s ' \t' ' ' | tr '\n' ' ')$(grep -E '^Pss:' /proc/$pid/smaps_rollup | tr -s ' \t' ' ')"
}
echo "agent --gpu nvml:       $(memory $nvml_agent)" | tee "$OUT/agent-rss.txt"
echo "agent --gpu nvidia-smi: $(memory $smi_agent)" | tee -a "$OUT/agent-rss.txt"
grep -h -i "gpu\|nvml" "$OUT"/agent-*.log | head -5
if [ $failures -eq 0 ]; then echo "nvml_check: PASS"; else echo "nvml_check: $failures FAILED"; exit 1; fi
