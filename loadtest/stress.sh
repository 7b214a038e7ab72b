#!/usr/bin/env bash
# Load steps against a fresh Release sg-edge: for each step of users (default 5 10 20 50 100) a new
# server on a free loopback port, then a headless locust run of loadtest/locustfile.py with all users
# spawned at once for SG_STRESS_SECONDS (default 60). Writes locust's CSVs per step
# (<out>/users_<N>_stats.csv, …_failures.csv, …_stats_history.csv), the server's GET /metrics after
# each step (<out>/users_<N>_metrics.json), a summary (<out>/summary.csv) and the chart (p50/p95
# latency and failure rate per step), and prints the summary table.
#
#   loadtest/stress.sh                       # no think time: every user asks again at once (stress)
#   SG_LOAD_WAIT_MIN=30 SG_LOAD_WAIT_MAX=60 SG_STRESS_SECONDS=300 SG_STRESS_TAG=paced loadtest/stress.sh
#
# Environment: SG_STRESS_STEPS ("5 10 20 50 100"), SG_STRESS_SECONDS (60), SG_STRESS_TAG (output
# name: docs/loadtest/<tag>/ and docs/loadtest-<tag>.png; default none: docs/loadtest/ and
# docs/loadtest.png), SG_LOAD_WAIT_MIN/MAX (think time, default 0 here), SG_EDGE_BIN (default
# build/sg-edge, built as Release if missing), SG_STRESS_SERVER_ARGS (extra sg-edge flags, e.g.
# "--vision-model DIR --threads 2").
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/common.sh

steps=${SG_STRESS_STEPS:-5 10 20 50 100}
secs=${SG_STRESS_SECONDS:-60}
tag=${SG_STRESS_TAG:-}
export SG_LOAD_WAIT_MIN=${SG_LOAD_WAIT_MIN:-0} SG_LOAD_WAIT_MAX=${SG_LOAD_WAIT_MAX:-0}
if [ -n "$tag" ]; then out=docs/loadtest/$tag; chart=docs/loadtest-$tag.png
else out=docs/loadtest; chart=docs/loadtest.png; fi
SG_EDGE=${SG_EDGE_BIN:-build/sg-edge}
if [ ! -x "$SG_EDGE" ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSG_WERROR=ON >/dev/null
  cmake --build build -j"$(nproc)" --target sg-edge
fi
read -r -a server_args <<<"${SG_STRESS_SERVER_ARGS:-}"
"$PY" -c 'import locust, matplotlib, PIL' 2>/dev/null ||
  { echo "stress.sh: needs Debian python3-locust python3-matplotlib python3-pil (scripts/deps.sh)" >&2; exit 1; }

mkdir -p "$out"
trap sg_stop EXIT
log=$(mktemp)
{
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "steps=$steps"
  echo "seconds=$secs"
  echo "wait=${SG_LOAD_WAIT_MIN}-${SG_LOAD_WAIT_MAX}"
  echo "server_args=${SG_STRESS_SERVER_ARGS:-}"
  echo "cpu=$(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/run.txt"

for n in $steps; do
  sg_start "$log" ${server_args[@]+"${server_args[@]}"}
  echo "== $n users, ${secs}s (server on port $SG_PORT_USED)" >&2
  # locust exits 1 when any request failed; the failures are in the CSVs and the summary.
  "$PY" -m locust -f loadtest/locustfile.py --headless -u "$n" -r "$n" -t "${secs}s" \
    --host "http://127.0.0.1:$SG_PORT_USED" --csv "$out/users_$n" \
    --only-summary --stop-timeout 5 >"$out/users_$n.log" 2>&1 || true
  curl -fsS "http://127.0.0.1:$SG_PORT_USED/metrics" >"$out/users_$n""_metrics.json" || true
  # locust writes an exceptions file even when there were none
  [ "$(wc -l <"$out/users_${n}_exceptions.csv")" -gt 1 ] || rm -f "$out/users_${n}_exceptions.csv"
  if ! kill -0 "$SG_PID" 2>/dev/null; then
    echo "stress.sh: sg-edge died during the $n-user step; its log:" >&2; cat "$log" >&2; exit 1
  fi
  sg_stop
done
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/run.txt"
rm -f "$log"
# shellcheck disable=SC2086 # one argument per step
"$PY" loadtest/report.py "$out" "$chart" $steps
