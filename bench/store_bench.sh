#!/usr/bin/env bash
# The session store's cost, side by side in one run: text-turn (POST /query {"text":"help"}) and
# frame-ingest (POST /frame, a 600x400 JPEG; after the first keyframe: decode + keyframe gate)
# latency percentiles and throughput with the in-process store and with Redis, on one keep-alive
# connection and on 8 (over 8 sessions), then Redis memory per session (MEMORY USAGE of every key
# of a session after 3 frames and 3 turns, without and with raw-frame storage).
#   bench/store_bench.sh [SECONDS]        (needs a Release build in build/, wrk, redis-server)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
build=${SG_BUILD_DIR:-build}
[ -x "$build/sg-edge" ] || { echo "build first: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build" >&2; exit 1; }
for t in wrk redis-server redis-cli curl; do
  command -v $t >/dev/null || { echo "needs $t (scripts/deps.sh installs it)" >&2; exit 1; }
done
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
img=../shared/data/images/coffee.jpg

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$tmp" --save '' --appendonly no \
  --logfile "$tmp/redis.log" --daemonize no &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done

# start NAME [ENV=VALUE...]: an sg-edge on a free port; sets $port
start() {
  local name=$1; shift
  port=$(free_port)
  env SG_LOG_LEVEL=warn "$@" "$build/sg-edge" --host 127.0.0.1 --port "$port" > "$tmp/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && return 0; sleep 0.05; done
  echo "$name did not start" >&2; cat "$tmp/$name.log" >&2; exit 1
}
new_session() { curl -sf -X POST "$@" | sed 's/.*"session_id":"\([^"]*\)".*/\1/'; }

# wrk_run LABEL PORT CONNS KIND(query|frame): prints "label | p50 | p90 | p99 | req/s"
wrk_run() {
  local label=$1 p=$2 conns=$3 kind=$4 ids=() threads=1
  [ "$conns" -gt 1 ] && threads=2
  for _ in $(seq "$conns"); do ids+=("\"$(new_session "http://127.0.0.1:$p/sessions")\""); done
  local list; list=$(IFS=,; echo "${ids[*]}")
  if [ "$kind" = query ]; then
    cat > "$tmp/run.lua" <<LUA
local ids = {$list}
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"text":"help"}'
request = function() n = n + 1; return wrk.format(nil, "/sessions/" .. ids[n % #ids + 1] .. "/query") end
LUA
  else
    cat > "$tmp/run.lua" <<LUA
local ids = {$list}
local n = 0
local f = io.open("$img", "rb")
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/jpeg"
wrk.body = f:read("*all")
f:close()
request = function() n = n + 1; return wrk.format(nil, "/sessions/" .. ids[n % #ids + 1] .. "/frame") end
LUA
  fi
  wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$tmp/run.lua" "http://127.0.0.1:$p" > "$tmp/wrk.txt"
  local p50 p90 p99 rps non2xx
  p50=$(awk '$1=="50%"{print $2}' "$tmp/wrk.txt")
  p90=$(awk '$1=="90%"{print $2}' "$tmp/wrk.txt")
  p99=$(awk '$1=="99%"{print $2}' "$tmp/wrk.txt")
  rps=$(awk '/Requests\/sec/{print $2}' "$tmp/wrk.txt")
  non2xx=$(awk '/Non-2xx/{print $5}' "$tmp/wrk.txt")
  printf "| %-22s | %2d | %9s | %9s | %9s | %9s |%s\n" "$label" "$conns" "$p50" "$p90" "$p99" "$rps" \
    "${non2xx:+ $non2xx non-2xx!}"
}

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)  wrk ${secs}s per row; $(redis-server --version | cut -d' ' -f1-3)"
start memory
mem_port=$port
start redis SG_SESSION_STORE="redis://127.0.0.1:$rport"
red_port=$port
echo
echo "| run                    |  c |       p50 |       p90 |       p99 |     req/s |"
echo "|---|---|---|---|---|---|"
for kind in query frame; do
  for conns in 1 8; do
    wrk_run "$kind, in-process" "$mem_port" "$conns" "$kind"
    wrk_run "$kind, Redis" "$red_port" "$conns" "$kind"
  done
done

# memory per session: every key of one session after 3 frames and 3 turns
session_bytes() { # PORT [curl args for the session]
  local p=$1; shift
  local id; id=$(new_session "$@" "http://127.0.0.1:$p/sessions")
  for i in 1 2 3; do
    curl -sf -X POST -H 'Content-Type: image/jpeg' --data-binary @"$img" "http://127.0.0.1:$p/sessions/$id/frame" >/dev/null
    curl -sf -X POST -H 'Content-Type: application/json' -d "{\"text\":\"what do I see $i\"}" \
      "http://127.0.0.1:$p/sessions/$id/query" >/dev/null
  done
  local total=0 line
  for k in $(redis-cli -p "$rport" --scan --pattern "sg:v1:{$id}:*"); do
    line=$(redis-cli -p "$rport" memory usage "$k")
    total=$((total + line))
    printf "  %-52s %8s bytes\n" "$k" "$line" >&2
  done
  echo "$total"
}
start redis_raw SG_SESSION_STORE="redis://127.0.0.1:$rport" STORE_RAW_FRAMES=true STORE_TRANSCRIPTS=true
raw_port=$port
echo
echo "Redis memory per session (MEMORY USAGE, 3 frames + 3 turns):"
plain=$(session_bytes "$red_port")
echo "  default privacy (derived scene only): $plain bytes"
raw=$(session_bytes "$raw_port" -H 'X-Privacy-Store-Raw-Frames: true' -H 'X-Privacy-Store-Transcripts: true')
echo "  raw frames + transcripts kept ($(stat -c %s "$img")-byte JPEG): $raw bytes"
echo "  index entry (sg:v1:sessions, per session): ~$(( $(redis-cli -p "$rport" memory usage sg:v1:sessions) / $(redis-cli -p "$rport" zcard sg:v1:sessions) )) bytes"
