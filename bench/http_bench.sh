#!/usr/bin/env bash
# HTTP benchmark of sg-edge with wrk: requests/s and latency percentiles for /health, a text turn
# and a 640x480 q85 frame upload (the same frame every time, so after the first keyframe this is
# base64 + decode + keyframe gate, i.e. frame ingest), plus the frame pipeline alone (bench_frame)
# beside the Python reference pipeline (PIL + numpy) in the same run, and idle RSS.
#   bench/http_bench.sh [SECONDS] [CONNECTIONS]     (needs a Release build in build/)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
build=${SG_BUILD_DIR:-build}
[ -x "$build/sg-edge" ] || { echo "build first: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build" >&2; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)  wrk: ${secs}s, ${conns} connections, 2 threads"

echo "## frame pipeline alone"
"$build/bench/bench_frame" --runs 100 --write "$tmp"
if /usr/bin/python3 -c 'import PIL, numpy' 2>/dev/null; then
  /usr/bin/python3 py/frame_reference.py "$tmp" 50
else
  echo "(python3-pil / python3-numpy not installed: no Python reference)"
fi

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SG_LOG_LEVEL=warn "$build/sg-edge" --host 127.0.0.1 --port "$port" &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
sleep 1
echo "## idle RSS: $(grep VmRSS /proc/$pid/status | awk '{print $2/1024 " MB"}')"
sid=$(curl -sf -X POST "http://127.0.0.1:$port/sessions" | sed 's/.*"session_id":"\([^"]*\)".*/\1/')

cat > "$tmp/text.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"text_query":"what time is it"}'
wrk.headers["Content-Type"] = "application/json"
LUA
cat > "$tmp/frame.lua" <<LUA
wrk.method = "POST"
local f = io.open("$tmp/coffee_frame.json", "rb")
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

run() { # name url [script]
  local name=$1 url=$2 script=${3:-}
  local out
  if [ -n "$script" ]; then out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$script" "$url")
  else out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$url"); fi
  local rps p50 p99 non2xx
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  printf '  %-28s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}"
}
echo "## HTTP (wrk)"
run "GET /health" "http://127.0.0.1:$port/health"
run "POST query (text turn)" "http://127.0.0.1:$port/sessions/$sid/query" "$tmp/text.lua"
sid2=$(curl -sf -X POST "http://127.0.0.1:$port/sessions" | sed 's/.*"session_id":"\([^"]*\)".*/\1/')
run "POST frame 640x480 q85" "http://127.0.0.1:$port/sessions/$sid2/frame" "$tmp/frame.lua"
echo "## server-side stage latencies after the run (ms)"
curl -sf "http://127.0.0.1:$port/metrics" | /usr/bin/python3 -c '
import json, sys
m = json.load(sys.stdin)["latencies"]
for k in ("e2e", "ingest_frame", "vision", "llm"):
    s = m[k]
    print("  %-13s count %7d  p50 %7.3f  p95 %7.3f  p99 %7.3f" % (k, s["count"], s["p50"], s["p95"], s["p99"]))'
echo "## RSS after load: $(grep VmRSS /proc/$pid/status | awk '{print $2/1024 " MB"}')"
