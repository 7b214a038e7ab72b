#!/usr/bin/env bash
# CI: an instance dies under load. scripts/cluster.sh starts redis-server, 3 sg-edge instances and
# nginx (TLS, HTTP/2) on free loopback ports; locust runs 100 users without think time through
# nginx for 30 s; 10 s in, instance 2 is killed with SIGKILL, and 5 s later started again on its
# port. Passes when
#   - the only failed requests are requests that instance had in flight when it died (POSTs: nginx
#     retries GETs and every request whose connection was refused) - counted from nginx's log;
#   - the restarted instance serves requests again;
#   - every session created before the kill is still listed by GET /sessions and answers a query
#     (sessions live in Redis, not in the instance).
# Everything it started is stopped on exit.
#
#   loadtest/cluster_failover.sh [SG_EDGE_BIN]     # default build/sg-edge
# Environment: SG_FAILOVER_USERS (100), SG_FAILOVER_SECONDS (30), SG_FAILOVER_KILL_AT (10),
# SG_FAILOVER_DOWN_FOR (5).
set -euo pipefail
cd "$(dirname "$0")/.."
SG_EDGE=${1:-${SG_EDGE_BIN:-build/sg-edge}}
SG_EDGE=$(cd "$(dirname "$SG_EDGE")" && pwd)/$(basename "$SG_EDGE")
. loadtest/cluster_common.sh
users=${SG_FAILOVER_USERS:-100}
secs=${SG_FAILOVER_SECONDS:-30}
kill_at=${SG_FAILOVER_KILL_AT:-10}
down_for=${SG_FAILOVER_DOWN_FOR:-5}
[ -x "$SG_EDGE" ] || { echo "cluster_failover.sh: no sg-edge at $SG_EDGE" >&2; exit 1; }
"$PY" -c 'import locust, PIL' 2>/dev/null ||
  { echo "cluster_failover.sh: needs Debian python3-locust and python3-pil (scripts/deps.sh)" >&2; exit 1; }

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
scripts/cluster.sh status >/dev/null || { echo "  a cluster process is not running"; scripts/cluster.sh status; rc=1; }
[ "$rc" -eq 0 ] || cl_dump_logs
echo "cluster failover:" "$([ "$rc" -eq 0 ] && echo ok || echo FAILED)"
exit "$rc"
