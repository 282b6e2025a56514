#!/usr/bin/env bash
# Runs `make demo`'s script for a few seconds on free ports and checks that the status
# screen showed all three endpoints READY with a weight, and that the load generator
# completed requests. Exercises the demo exactly as a newcomer starts it.
set -euo pipefail
cd "$(dirname "$0")/../.."
# A history left by an earlier run must not be reused: one that is not even a database
# would stop the control plane if the demo did not start afresh.
mkdir -p var/demo
echo "not a database: left by an earlier run" >var/demo/history.db
out=$(DEMO_DURATION=8 DEMO_LISTEN=127.0.0.1:0 DEMO_METRICS=127.0.0.1:0 ./scripts/demo.sh 2>&1)
last=$(printf '%s\n' "$out" | awk '/^Switchboard demo/{block=""} {block=block $0 "\n"} END{printf "%s", block}')
printf '%s\n' "$last"
ready=$(printf '%s\n' "$last" | grep -cE '^  127\.0\.0\.1:[0-9]+ +gpu-node-[0-9]-(a100|t4) +READY +CLOSED' || true)
if [ "$ready" -ne 3 ]; then
  echo "demo_smoke: expected 3 READY endpoints on the last screen, saw $ready" >&2
  exit 1
fi
if ! printf '%s\n' "$last" | grep -qE '^control plane on 127\.0\.0\.1:[0-9]+, Prometheus metrics on http://127\.0\.0\.1:[0-9]+/metrics$'; then
  echo "demo_smoke: the last screen does not show the metrics address" >&2
  exit 1
fi
if ! printf '%s\n' "$last" | grep -qE '^  ENDPOINT +NODE +STATE +CIRCUIT +SLOTS BUSY/TOTAL '; then
  echo "demo_smoke: the status table does not label its slots column busy/total" >&2
  exit 1
fi
if ! printf '%s\n' "$last" | grep -qE '^loadgen:( done)? sent [0-9]+ ok [1-9]'; then
  echo "demo_smoke: the load generator completed no request" >&2
  exit 1
fi
if pgrep -f "var/demo" >/dev/null; then
  echo "demo_smoke: processes survived the demo" >&2
  exit 1
fi
echo "demo_smoke: ok"
