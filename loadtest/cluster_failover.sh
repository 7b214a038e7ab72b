#!/usr/bin/env bash
# CI: an instance dies under load; then every instance is restarted, one at a time, under a
# wearer. scripts/cluster.sh starts redis-server, 3 sg-edge instances and nginx (TLS, HTTP/2) on
# free loopback ports.
# 1. locust runs 100 users without think time through nginx for 30 s; 10 s in, instance 2 is killed
#    with SIGKILL, and 5 s later started again on its port. Passes when
#    - the only failed requests are requests that instance had in flight when it died (POSTs:
#      nginx retries GETs and every request whose connection was refused) - from nginx's log;
#    - the restarted instance serves requests again;
#    - every session created before the kill is still listed by GET /sessions and answers a query
#      (sessions live in Redis, not in the instance).
# 2. sg stream (libsgclient over HTTP/2) runs for 20 s while scripts/cluster.sh restart takes each
#    instance out of nginx, drains and stops it (SIGTERM), starts it and puts it back. Passes when
#    every frame, audio chunk and question of the stream was answered (libsgclient retries what a
#    reload of nginx cuts: an old worker closes its idle connections) in its one session.
# Everything it started is stopped on exit.
#
#   loadtest/cluster_failover.sh [SG_EDGE_BIN]     # default build/sg-edge
# Environment: SG_FAILOVER_USERS (100), SG_FAILOVER_SECONDS (30), SG_FAILOVER_KILL_AT (10),
# SG_FAILOVER_DOWN_FOR (5), SG_ROLLING_STREAM_SECONDS (20).
set -euo pipefail
cd "$(dirname "$0")/.."
SG_EDGE=${1:-${SG_EDGE_BIN:-build/sg-edge}}
SG_EDGE=$(cd "$(dirname "$SG_EDGE")" && pwd)/$(basename "$SG_EDGE")
. loadtest/cluster_common.sh
users=${SG_FAILOVER_USERS:-100}
secs=${SG_FAILOVER_SECONDS:-30}
kill_at=${SG_FAILOVER_KILL_AT:-10}
down_for=${SG_FAILOVER_DOWN_FOR:-5}
stream_secs=${SG_ROLLING_STREAM_SECONDS:-20}
SG_CLI=$(dirname "$SG_EDGE")/sg
[ -x "$SG_EDGE" ] && [ -x "$SG_CLI" ] || { echo "cluster_failover.sh: no sg-edge / sg at $SG_EDGE" >&2; exit 1; }
"$PY" -c 'import locust, PIL' 2>/dev/null ||
  { echo "cluster_failover.sh: needs Debian python3-locust and python3-pil (scripts/deps.sh)" >&2; exit 1; }

# A session whose work lock the killed instance held is blocked until the lock expires; its next
# request waits up to SG_SESSION_LOCK_WAIT_MS (10 s) and would be a 503 past it. The turns here
# take milliseconds, so a 3 s lock TTL keeps such a session's next request waiting, not failing
# (the default 30 s is for model turns of seconds).
export SG_SESSION_LOCK_TTL_MS=${SG_SESSION_LOCK_TTL_MS:-3000}
cl_up 3
read -r -a edge_ports <<<"$SG_CLUSTER_EDGE_PORTS"
killed=127.0.0.1:${edge_ports[1]}
echo "cluster failover: 3 instances behind $SG_CLUSTER_URL; $users users for ${secs}s; instance 2" \
  "($killed) killed at ${kill_at}s, started again ${down_for}s later"
export SG_LOAD_SESSIONS_FILE=$CL_TMP/sessions.tsv
: >"$SG_LOAD_SESSIONS_FILE"
cl_locust "$users" "$secs" "$CL_TMP/failover" &
locust_pid=$!
sleep "$kill_at"
killed_msg=$(scripts/cluster.sh kill 2)
echo "$killed_msg"
read -r k0 k1 <<<"$(echo "$killed_msg" | sed -n 's/.* between \([0-9.]*\) and \([0-9.]*\)$/\1 \2/p')"
sleep "$down_for"
scripts/cluster.sh start 2
restarted=$(date +%s.%N)
wait "$locust_pid" || true
rc=0
"$PY" loadtest/cluster_check.py failover "$CL_TMP/failover" "$SG_CLUSTER_ACCESS_LOG" "$killed" \
  "$k0,$k1" "$restarted" "$SG_LOAD_SESSIONS_FILE" "$SG_CLUSTER_URL" "$SG_CLUSTER_CA" || rc=1

echo "-- rolling restart of every instance under sg stream (${stream_secs}s, HTTP/2)"
"$SG_CLI" stream --server "$SG_CLUSTER_URL" --cacert "$SG_CLUSTER_CA" \
  --frames ../shared/data/images --audio ../shared/data/audio/jfk.wav --duration "$stream_secs" \
  --question-every 2 --json >"$CL_TMP/rolling.json" 2>"$CL_TMP/rolling.err" &
stream_pid=$!
sleep 2
for i in 1 2 3; do scripts/cluster.sh restart "$i"; done
wait "$stream_pid" || true
"$PY" loadtest/cluster_check.py stream "$CL_TMP/rolling.json" || { cat "$CL_TMP/rolling.err"; rc=1; }
scripts/cluster.sh status >/dev/null || { echo "  a cluster process is not running"; scripts/cluster.sh status; rc=1; }
[ "$rc" -eq 0 ] || cl_dump_logs
echo "cluster failover:" "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)"
exit "$rc"
