#!/usr/bin/env bash
# CI: the cluster under load. scripts/cluster.sh starts redis-server, 3 sg-edge instances and nginx
# (TLS, HTTP/2) on free loopback ports; then
#   1. malformed HTTP through nginx: JSON errors, never libmicrohttpd's HTML (cluster_hostile.py);
#   2. locust through nginx (HTTPS, the cluster's self-signed CA), 100 users, no think time, 30 s:
#      0 failures, every instance served requests;
#   3. sg stream through nginx over HTTP/2 for 20 s: every audio chunk and frame answered, every
#      question answered, the report says HTTP/2.
# Everything it started is stopped on exit. Fails (exit 1) when a check fails.
#
#   loadtest/cluster_smoke.sh [SG_EDGE_BIN]       # default build/sg-edge (and build/sg next to it)
# Environment: SG_CLUSTER_SMOKE_USERS (100), SG_CLUSTER_SMOKE_SECONDS (30), SG_CLUSTER_STREAM_SECONDS (20).
set -euo pipefail
cd "$(dirname "$0")/.."
SG_EDGE=${1:-${SG_EDGE_BIN:-build/sg-edge}}
SG_EDGE=$(cd "$(dirname "$SG_EDGE")" && pwd)/$(basename "$SG_EDGE")
SG_CLI=$(dirname "$SG_EDGE")/sg
. loadtest/cluster_common.sh
users=${SG_CLUSTER_SMOKE_USERS:-100}
secs=${SG_CLUSTER_SMOKE_SECONDS:-30}
stream_secs=${SG_CLUSTER_STREAM_SECONDS:-20}
[ -x "$SG_EDGE" ] && [ -x "$SG_CLI" ] || { echo "cluster_smoke.sh: no sg-edge / sg at $SG_EDGE" >&2; exit 1; }
"$PY" -c 'import locust, PIL' 2>/dev/null ||
  { echo "cluster_smoke.sh: needs Debian python3-locust and python3-pil (scripts/deps.sh)" >&2; exit 1; }

cl_up 3
echo "cluster smoke: 3 instances behind $SG_CLUSTER_URL"
rc=0
echo "-- malformed requests through nginx"
"$PY" loadtest/cluster_hostile.py 127.0.0.1 "${SG_CLUSTER_URL##*:}" "$SG_CLUSTER_CA" || rc=1

echo "-- locust: $users users, ${secs}s, no think time, HTTPS through nginx"
cl_locust "$users" "$secs" "$CL_TMP/smoke" || true
"$PY" loadtest/cluster_check.py locust "$CL_TMP/smoke" || rc=1
"$PY" loadtest/cluster_check.py spread "$SG_CLUSTER_ACCESS_LOG" 3 || rc=1

echo "-- sg stream: ${stream_secs}s through nginx"
"$SG_CLI" stream --server "$SG_CLUSTER_URL" --cacert "$SG_CLUSTER_CA" \
  --frames ../shared/data/images --audio ../shared/data/audio/jfk.wav --duration "$stream_secs" \
  --question-every 4 --json >"$CL_TMP/stream.json" 2>"$CL_TMP/stream.err" || true
"$PY" loadtest/cluster_check.py stream "$CL_TMP/stream.json" || { cat "$CL_TMP/stream.err"; rc=1; }

scripts/cluster.sh status >/dev/null || { echo "  a cluster process died during the run"; scripts/cluster.sh status; rc=1; }
[ "$rc" -eq 0 ] || cl_dump_logs
echo "cluster smoke:" "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)"
exit "$rc"
