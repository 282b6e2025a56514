#!/usr/bin/env bash
# Agent overhead: CPU and memory of one switchboard-agent probing 8 llama.cpp-style
# endpoints (fakellm, under light load) every second and reporting to a control plane.
# Goal (issue "agent"): under 0.5% of one core and under 20 MiB RSS.
#
#   bench/agent_overhead.sh [SECONDS]      (default 120; BUILD_DIR=build; GPU=none)
#
# GPU=nvml or GPU=nvidia-smi (on a GPU host) includes the agent's GPU readings; the default
# leaves them out so that machines without a GPU measure the same thing. GPU_INTERVAL
# (default 0s: every report) is passed as --gpu-interval.
#
# Prints one line per figure and a JSON summary on the last line. CPU is the agent's
# utime+stime from /proc over the measured window (after a 5 s warm-up), so the load of
# the other processes on the machine does not count against it.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-120}
GPU=${GPU:-none}
GPU_INTERVAL=${GPU_INTERVAL:-0s}
BIN=${BUILD_DIR:-build}/bin
RUN=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$RUN"; }
trap cleanup EXIT

wait_port() {  # FILE PREFIX
  for _ in $(seq 200); do
    if l=$(grep -m1 "^$2" "$1" 2>/dev/null); then echo "${l##* }"; return 0; fi
    sleep 0.1
  done
  echo "bench: no '$2' in $1" >&2; exit 1
}

"$BIN/switchboard-controlplane" --insecure --listen 127.0.0.1:0 --metrics-listen "" --db "" >"$RUN/cp.out" 2>/dev/null &
PIDS+=($!)
CP=127.0.0.1:$(wait_port "$RUN/cp.out" "grpc listening on port")

BACKENDS=()
for i in $(seq 8); do
  "$BIN/switchboard-fakellm" --listen 127.0.0.1:0 --slots 4 --tokens-per-second 50 >"$RUN/f$i.out" 2>/dev/null &
  PIDS+=($!)
  BACKENDS+=(--backend "llamacpp=http://127.0.0.1:$(wait_port "$RUN/f$i.out" "http listening on port")")
done

"$BIN/switchboard-agent" --insecure --controlplane "$CP" "${BACKENDS[@]}" --node-id bench --gpu "$GPU" \
  --gpu-interval "$GPU_INTERVAL" --report-interval 1s 2>"$RUN/agent.log" &
AGENT=$!
PIDS+=($AGENT)

"$BIN/switchboard-loadgen" --insecure --controlplane "$CP" --pool llama-3-8b --rps 4 --max-tokens 50 \
  --report-every 1000s >/dev/null 2>&1 &
PIDS+=($!)

sleep 5  # warm-up: connections, first reports
# utime + stime, plus the waited-for children's (cutime + cstime): with --gpu nvidia-smi the
# agent runs nvidia-smi every interval, and that CPU is the agent's cost too.
ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$AGENT/stat"; }
HZ=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s.%N)
sleep "$DURATION"
t1=$(ticks); s1=$(date +%s.%N)
rss_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$AGENT/status")
hwm_kib=$(awk '/^VmHWM/ {print $2}' "/proc/$AGENT/status")
# RSS counts the pages of shared libraries (gRPC, OpenSSL, protobuf) that every process
# using them shares; PSS divides those among the sharers; Anonymous is the agent's own heap.
pss_kib=$(awk '/^Pss:/ {print $2}' "/proc/$AGENT/smaps_rollup")
anon_kib=$(awk '/^Anonymous:/ {print $2}' "/proc/$AGENT/smaps_rollup")
cpu_pct=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" -v s="$s0" -v e="$s1" 'BEGIN {printf "%.3f", 100 * (b - a) / hz / (e - s)}')
echo "agent CPU: ${cpu_pct}% of one core over ${DURATION}s (8 endpoints, 1 s interval, --gpu $GPU, --gpu-interval $GPU_INTERVAL)"
echo "agent RSS: $((rss_kib / 1024)) MiB now, $((hwm_kib / 1024)) MiB peak; PSS $((pss_kib / 1024)) MiB; anonymous (own heap and stacks) $((anon_kib / 1024)) MiB"
echo "{\"bench\":\"agent_overhead\",\"gpu\":\"$GPU\",\"gpu_interval\":\"$GPU_INTERVAL\",\"seconds\":$DURATION,\"endpoints\":8,\"cpu_percent_of_one_core\":$cpu_pct,\"rss_kib\":$rss_kib,\"rss_peak_kib\":$hwm_kib,\"pss_kib\":$pss_kib,\"anonymous_kib\":$anon_kib}"
