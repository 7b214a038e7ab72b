#!/usr/bin/env bash
# Streamed, spoken answers (issue 14): the server-side time to the first token and to the first
# audio (metadata.latency_ms.first_token / first_audio of the `done` event) over N questions,
# median and p95, for the rule-based responder and for the tiny SNN student (tests/fixtures), and
# the client's view through `sg stream --answer-audio` in the same run.
#   bench/answer_bench.sh [N] [THREADS]     (needs a Release build in build/)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
threads=${2:-2}
build=${SG_BUILD_DIR:-build}
[ -x "$build/sg-edge" ] || { echo "build first: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build" >&2; exit 1; }
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)  $n questions per row, --threads $threads, Ogg Opus speech (flite slt)"

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

row() { # name, extra server args...
  local name=$1; shift
  local p; p=$(port)
  SG_LOG_LEVEL=warn SG_LATENCY_BUDGET_MS=0 "$build/sg-edge" --host 127.0.0.1 --port "$p" --threads "$threads" "$@" &
  pid=$!
  for _ in $(seq 100); do curl -sf "127.0.0.1:$p/ready" >/dev/null && break; sleep 0.1; done
  local sid
  sid=$(curl -s -X POST "127.0.0.1:$p/sessions" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')
  local questions=("what time is it?" "what can you do?" "read the sign for me" "where am I?" "help me navigate home")
  : > "$tmp/lat"
  for i in $(seq "$n"); do
    q=${questions[$(( (i - 1) % ${#questions[@]} ))]}
    curl -sN -X POST "127.0.0.1:$p/sessions/$sid/query" -H 'Content-Type: application/json' \
      -H 'Accept: text/event-stream' -d "{\"text_query\":\"$q (question $i)\",\"speak\":true}" |
      /usr/bin/python3 -c '
import json, sys
lines = sys.stdin.read().split("\n")
for k, l in enumerate(lines):
    if l == "event: done":
        lat = json.loads(lines[k + 1][6:])["metadata"]["latency_ms"]
        print(lat["first_token"], lat["first_audio"], lat["total"])' >> "$tmp/lat"
  done
  /usr/bin/python3 - "$name" "$tmp/lat" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[2]) if l.strip()]
def pct(v, p):
    v = sorted(v); k = (len(v) - 1) * p / 100; f = int(k)
    return v[f] + (v[min(f + 1, len(v) - 1)] - v[f]) * (k - f)
for i, what in enumerate(["first token", "first audio", "whole turn"]):
    v = [r[i] for r in rows]
    print(f"{sys.argv[1]:<22} {what:<12} median {statistics.median(v):8.2f} ms   p95 {pct(v, 95):8.2f} ms   (n={len(v)})")
PY
  if [ "$name" = "rule-based" ]; then
    echo "## the client's view (sg stream, 60 simulated s, a question every 5 s)"
    "$build/sg" stream --server "http://127.0.0.1:$p" --frames ../shared/data/images --duration 60 \
      --speed 4 --question-every 5 --question "what can you do?" --answer-audio "$tmp" | grep '^answers'
  fi
  kill $pid; wait $pid 2>/dev/null || true; pid=
}

row rule-based
row "snn_tiny (f32)" --llm-model tests/fixtures/snn_tiny
