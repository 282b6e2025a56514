#!/usr/bin/env bash
# The Switchboard demo: one control plane, three fake inference servers (one fast
# "A100-like" with 8 slots, two slow "T4-like" with 2 slots each), an agent for each,
# and a load generator that routes by the pushed weights. `sbctl status` refreshes every
# second so you can watch weights shift toward the server with free slots.
# Ctrl-C stops every process this script started.
#
# Environment:
#   DEMO_DURATION=30s      stop by itself after this long (default: run until Ctrl-C)
#   DEMO_LISTEN=ADDR       control plane gRPC address (default 127.0.0.1:50051, which is
#                          sbctl's default; 127.0.0.1:0 picks a free port)
#   DEMO_METRICS=ADDR      Prometheus address (default 127.0.0.1:0: a free port)
#   DEMO_RPS=3             load in requests per second
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/bin
RUN=var/demo
mkdir -p "$RUN"
rm -f "$RUN"/*.out "$RUN"/*.log

PIDS=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo
  echo "demo stopped; logs are in $RUN/"
}
trap cleanup INT TERM EXIT

# Starts a program with stdout to $RUN/NAME.out, stderr to $RUN/NAME.log.
start() {
  local name=$1; shift
  "$@" >"$RUN/$name.out" 2>"$RUN/$name.log" &
  PIDS+=($!)
}

# Waits (up to 20 s) for "PREFIX N" on a program's stdout and prints N.
port_of() {
  local name=$1 prefix=$2
  for _ in $(seq 200); do
    if line=$(grep -m1 "^$prefix" "$RUN/$name.out" 2>/dev/null); then
      echo "${line##* }"
      return 0
    fi
    if ! kill -0 "${PIDS[-1]}" 2>/dev/null && [ ! -s "$RUN/$name.out" ]; then break; fi
    sleep 0.1
  done
  echo "demo: $name did not start; its log:" >&2
  cat "$RUN/$name.log" >&2
  exit 1
}

start controlplane "$BIN/switchboard-controlplane" --insecure \
  --listen "${DEMO_LISTEN:-127.0.0.1:50051}" --metrics-listen "${DEMO_METRICS:-127.0.0.1:0}" \
  --db "$RUN/history.db" --staleness-bound 3s
CP_PORT=$(port_of controlplane "grpc listening on port")
METRICS_PORT=$(port_of controlplane "metrics listening on port")
export SWITCHBOARD_ADDR="127.0.0.1:$CP_PORT"

i=0
for spec in "a100:8:60:4" "t4:2:15:1" "t4:2:15:1"; do
  IFS=: read -r gpu slots tps capacity <<<"$spec"
  i=$((i + 1))
  start "fakellm-$i" "$BIN/switchboard-fakellm" --listen 127.0.0.1:0 --model llama-3-8b \
    --slots "$slots" --tokens-per-second "$tps" --prefill-tokens-per-second 4000
  port=$(port_of "fakellm-$i" "http listening on port")
  start "agent-$i" "$BIN/switchboard-agent" --insecure --controlplane "$SWITCHBOARD_ADDR" \
    --backend "llamacpp=http://127.0.0.1:$port,capacity=$capacity" \
    --node-id "gpu-node-$i-$gpu" --label "gpu=$gpu"
done

start loadgen "$BIN/switchboard-loadgen" --controlplane "$SWITCHBOARD_ADDR" --pool llama-3-8b \
  --rps "${DEMO_RPS:-3}" --max-tokens 100

echo "control plane on $SWITCHBOARD_ADDR, Prometheus metrics on http://127.0.0.1:$METRICS_PORT/metrics"
deadline=0
if [ -n "${DEMO_DURATION:-}" ]; then
  deadline=$(( $(date +%s) + ${DEMO_DURATION%s} ))
fi
while true; do
  out=$("$BIN/sbctl" --insecure status 2>&1 || true)
  load=$(tail -n 1 "$RUN/loadgen.out" 2>/dev/null || true)
  if [ -t 1 ]; then clear; fi
  echo "Switchboard demo ($(date +%T)): 1 A100-like server (8 slots, 60 tok/s), 2 T4-like (2 slots, 15 tok/s)"
  echo "Weights follow free slots x measured speed; Ctrl-C stops everything."
  echo
  echo "$out"
  echo
  echo "${load:-loadgen: starting}"
  if [ "$deadline" -gt 0 ] && [ "$(date +%s)" -ge "$deadline" ]; then break; fi
  sleep 1  # screen refresh rate
done
