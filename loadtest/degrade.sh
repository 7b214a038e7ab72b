#!/usr/bin/env bash
# Graceful degradation past capacity (issue 13): the same locust load (loadtest/locustfile.py) on a
# fresh sg-edge with SG_LATENCY_BUDGET_MS on and off, side by side - p50/p95, failures and the share
# of turns that stepped down (metadata.degraded) - into <out>/summary.csv, the chart
# docs/loadtest-degrade.png and a table on stdout (docs/PERFORMANCE.md records it).
#
# Runs: BASE users with degradation off (the load that keeps p95 within the budget), then 2 x BASE
# users with it off and on. Loopback only; three runs of SG_DEGRADE_SECONDS (45) each.
#
# The models: the tiny test fixtures (clip_tiny, snn_tiny) with SG_DEBUG_MODEL_DELAY_MS standing in
# for real-size model cost (default vision=300,llm=600: the LLM's per 64 tokens), because real-size
# weights need python3-torch to generate (py/gen_*.py). The delay sits in the stage, so the ladder's
# steps save it as they would a real model's time (fewer tokens: half; the remembered scene and the
# rule-based responder: all). SG_CACHE_ENTRIES=0: locust's few fixed questions would otherwise be
# answered from the response cache without touching the model.
#
#   loadtest/degrade.sh
#   SG_DEGRADE_SERVER_ARGS="--vision-model DIR --llm-model DIR" SG_DEGRADE_MODEL_DELAY= loadtest/degrade.sh
#
# Environment: SG_DEGRADE_BASE_USERS (5), SG_DEGRADE_SECONDS (45), SG_DEGRADE_BUDGET_MS (2000),
# SG_DEGRADE_WORKERS (2), SG_DEGRADE_MODEL_DELAY ("vision=300,llm=600"; empty = real model cost),
# SG_DEGRADE_SERVER_ARGS (the models; default the tiny fixtures), SG_LOAD_WAIT_MIN/MAX (think time,
# default 1..3 s), SG_EDGE_BIN (default build/sg-edge), SG_DEGRADE_OUT (docs/loadtest/degrade).
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/common.sh

base=${SG_DEGRADE_BASE_USERS:-5}
secs=${SG_DEGRADE_SECONDS:-45}
budget=${SG_DEGRADE_BUDGET_MS:-2000}
workers=${SG_DEGRADE_WORKERS:-2}
delay=${SG_DEGRADE_MODEL_DELAY-vision=300,llm=600}
out=${SG_DEGRADE_OUT:-docs/loadtest/degrade}
chart=docs/loadtest-degrade.png
export SG_LOAD_WAIT_MIN=${SG_LOAD_WAIT_MIN:-1} SG_LOAD_WAIT_MAX=${SG_LOAD_WAIT_MAX:-3}
SG_EDGE=${SG_EDGE_BIN:-build/sg-edge}
if [ ! -x "$SG_EDGE" ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSG_WERROR=ON >/dev/null
  cmake --build build -j2 --target sg-edge
fi
read -r -a server_args <<<"${SG_DEGRADE_SERVER_ARGS:---vision-model tests/fixtures/clip_tiny --llm-model tests/fixtures/snn_tiny --threads 1}"
"$PY" -c 'import locust, matplotlib, PIL' 2>/dev/null ||
  { echo "degrade.sh: needs Debian python3-locust python3-matplotlib python3-pil (scripts/deps.sh)" >&2; exit 1; }

mkdir -p "$out"
work=$(mktemp -d)
trap 'sg_stop; rm -rf "$work"' EXIT
{
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "seconds=$secs"
  echo "wait=${SG_LOAD_WAIT_MIN}-${SG_LOAD_WAIT_MAX}"
  echo "budget_ms=$budget"
  echo "workers=$workers"
  echo "model_delay=$delay"
  echo "server_args=${server_args[*]}"
  echo "cpu=$(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/run.txt"

# run NAME USERS BUDGET_MS
run() {
  local name=$1 users=$2 b=$3
  SG_WORKERS=$workers SG_LATENCY_BUDGET_MS=$b SG_CACHE_ENTRIES=0 SG_DEBUG_MODEL_DELAY_MS=$delay \
    sg_start "$work/$name.server.log" "${server_args[@]}"
  echo "== $name: $users users, ${secs}s, SG_LATENCY_BUDGET_MS=$b (port $SG_PORT_USED)" >&2
  # locust exits 1 when any request failed; the failures are in the CSVs and the summary.
  SG_LOAD_DEGRADED_FILE="$out/$name.degraded.json" \
    "$PY" -m locust -f loadtest/locustfile.py --headless -u "$users" -r "$users" -t "${secs}s" \
    --host "http://127.0.0.1:$SG_PORT_USED" --csv "$work/$name" --only-summary --stop-timeout 30 \
    >"$work/$name.locust.log" 2>&1 || true
  cp "$work/${name}_stats.csv" "$out/$name.stats.csv"
  curl -fsS "http://127.0.0.1:$SG_PORT_USED/metrics/prometheus" |
    grep -E '^smartglass_(degraded_|queries_total|rejected_total)' >"$out/$name.prom" || true
  if ! kill -0 "$SG_PID" 2>/dev/null; then
    echo "degrade.sh: sg-edge died during $name; its log:" >&2; cat "$work/$name.server.log" >&2; exit 1
  fi
  sg_stop
}

run "base_off" "$base" 0
run "double_off" "$((2 * base))" 0
run "double_on" "$((2 * base))" "$budget"
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/run.txt"
"$PY" loadtest/degrade_report.py "$out" "$chart" "$budget" "base_off:$base" "double_off:$((2 * base))" \
  "double_on:$((2 * base))"
