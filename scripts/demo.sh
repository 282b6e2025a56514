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
# A shell started with SIGINT ignored (as a background job of another script is, e.g.
# `setsid scripts/demo.sh &`) cannot trap it, yet the programs below still stop on it:
# run once more with SIGINT at its default so that a Ctrl-C always ends the whole demo.
if [ -z "${SWITCHBOARD_DEMO_SIGNALS:-}" ]; then
  export SWITCHBOARD_DEMO_SIGNALS=default
  exec env --default-signal=INT "$0" "$@"
fi
cd "$(dirname "$0")/.."
BIN=build/bin
RUN=var/demo
mkdir -p "$RUN"
# A fresh start: no output, logs or history (events, demand samples) of an earlier run.
rm -f "$RUN"/*.out "$RUN"/*.log "$RUN"/history.db "$RUN"/history.db-wal "$RUN"/history.db-shm

PIDS=()   # the programs of the demo
CHILD=    # the short command the script is waiting for, if any
cleanup() {
  trap - INT TERM EXIT
  for pid in "${PIDS[@]}" $CHILD; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo
  echo "demo stopped; logs are in $RUN/"
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

# Runs a short command in the background and waits for it. Every external command the
# script waits on goes through here: bash holds a Ctrl-C back while a foreground command
# runs and drops it if that command then exits normally (as `$(sbctl ... || true)` does
# even when sbctl died of the Ctrl-C), which left the demo looping with every program
# gone; `wait` instead returns at once and the trap runs.
run() {
  "$@" &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=
  return "$rc"
}

# Starts a program with stdout to $RUN/NAME.out, stderr to $RUN/NAME.log.
start() {
  local name=$1; shift
  "$@" >"$RUN/$name.out" 2>"$RUN/$name.log" &
  PIDS+=($!)
}

# Waits (up to 20 s) for a whole line "PREFIX N" on a program's stdout; sets PORT to N.
port_of() {
  local name=$1 prefix=$2 line
  for _ in {1..200}; do
    if [ -f "$RUN/$name.out" ]; then
      while IFS= read -r line; do  # A line still being written has no newline yet: skipped.
        if [[ $line == "$prefix "* ]]; then
          PORT=${line##* }
          return 0
        fi
      done <"$RUN/$name.out"
    fi
    if ! kill -0 "${PIDS[-1]}" 2>/dev/null && [ ! -s "$RUN/$name.out" ]; then break; fi
    run sleep 0.1
  done
  echo "demo: $name did not start; its log:" >&2
  print_file "$RUN/$name.log" >&2
  exit 1
}

print_file() {
  local lines=()
  if [ -f "$1" ]; then mapfile -t lines <"$1"; fi
  if [ "${#lines[@]}" -gt 0 ]; then printf '%s\n' "${lines[@]}"; fi
}

start controlplane "$BIN/switchboard-controlplane" --insecure \
  --listen "${DEMO_LISTEN:-127.0.0.1:50051}" --metrics-listen "${DEMO_METRICS:-127.0.0.1:0}" \
  --db "$RUN/history.db" --staleness-bound 3s
port_of controlplane "grpc listening on port"
CP_PORT=$PORT
port_of controlplane "metrics listening on port"
METRICS_PORT=$PORT
export SWITCHBOARD_ADDR="127.0.0.1:$CP_PORT"

i=0
for spec in "a100:8:60:4" "t4:2:15:1" "t4:2:15:1"; do
  IFS=: read -r gpu slots tps capacity <<<"$spec"
  i=$((i + 1))
  start "fakellm-$i" "$BIN/switchboard-fakellm" --listen 127.0.0.1:0 --model llama-3-8b \
    --slots "$slots" --tokens-per-second "$tps" --prefill-tokens-per-second 4000
  port_of "fakellm-$i" "http listening on port"
  start "agent-$i" "$BIN/switchboard-agent" --insecure --controlplane "$SWITCHBOARD_ADDR" \
    --backend "llamacpp=http://127.0.0.1:$PORT,capacity=$capacity" \
    --node-id "gpu-node-$i-$gpu" --label "gpu=$gpu"
done

start loadgen "$BIN/switchboard-loadgen" --insecure --controlplane "$SWITCHBOARD_ADDR" --pool llama-3-8b \
  --rps "${DEMO_RPS:-3}" --max-tokens 100

ADDRESSES="control plane on $SWITCHBOARD_ADDR, Prometheus metrics on http://127.0.0.1:$METRICS_PORT/metrics"
echo "$ADDRESSES"
deadline=0
if [ -n "${DEMO_DURATION:-}" ]; then
  printf -v now '%(%s)T' -1
  deadline=$((now + ${DEMO_DURATION%s}))
fi
# The loop runs only builtins and, through `run`, background commands (see run()).
while true; do
  run "$BIN/sbctl" --insecure status >"$RUN/status.txt" 2>&1 || true
  run tail -n 1 "$RUN/loadgen.out" >"$RUN/loadgen.last" 2>/dev/null || true
  load=""
  if [ -s "$RUN/loadgen.last" ]; then IFS= read -r load <"$RUN/loadgen.last" || true; fi
  if [ -t 1 ]; then printf '\033[H\033[2J'; fi  # clear
  printf -v now '%(%s)T' -1
  printf 'Switchboard demo (%(%T)T): 1 A100-like server (8 slots, 60 tok/s), 2 T4-like (2 slots, 15 tok/s)\n' "$now"
  echo "Weights follow free slots x measured speed; Ctrl-C stops everything."
  echo "$ADDRESSES"
  echo
  print_file "$RUN/status.txt"
  echo
  echo "${load:-loadgen: starting}"
  if [ "$deadline" -gt 0 ] && [ "$now" -ge "$deadline" ]; then break; fi
  run sleep 1  # screen refresh rate
done
