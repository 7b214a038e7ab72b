# shellcheck shell=bash
# Shared by loadtest/cluster_smoke.sh and loadtest/cluster_failover.sh (sourced): a cluster of
# their own (scripts/cluster.sh: redis-server, SG_CLUSTER_INSTANCES sg-edge, nginx with TLS and
# HTTP/2) on free loopback ports in a temporary folder, stopped and removed on exit; and locust
# against it through nginx. Expects $SG_EDGE; sets SG_CLUSTER_URL, SG_CLUSTER_CA,
# SG_CLUSTER_ACCESS_LOG, SG_CLUSTER_EDGE_PORTS (from `cluster.sh env`) and $CL_TMP.
. loadtest/common.sh

cl_up() { # cl_up INSTANCES
  CL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sg-cluster-test.XXXXXX")
  local ports=() i
  for ((i = 0; i < $1; i++)); do ports+=("$(sg_free_port)"); done
  export SG_CLUSTER_INSTANCES=$1 SG_CLUSTER_PORT
  SG_CLUSTER_PORT=$(sg_free_port)
  export SG_CLUSTER_EDGE_PORTS="${ports[*]}" SG_CLUSTER_REDIS_PORT
  SG_CLUSTER_REDIS_PORT=$(sg_free_port)
  export SG_CLUSTER_DIR=$CL_TMP/cluster SG_EDGE_BIN=$SG_EDGE
  # Redis answers in well under a millisecond, but on a 2-core machine shared by locust, nginx, three
  # instances (and, on a developer's machine, other jobs) the scheduler can hold redis-server or an
  # instance for more than the default 500 ms now and then; that would be a 503 STORE_UNAVAILABLE,
  # correct but not what these tests are about (the store's outages have tests of their own).
  export SG_SESSION_STORE_TIMEOUT_MS=${SG_SESSION_STORE_TIMEOUT_MS:-2000}
  trap cl_down EXIT
  scripts/cluster.sh up >"$CL_TMP/up.log" 2>&1 || { cat "$CL_TMP/up.log"; cat "$CL_TMP"/cluster/logs/*.log 2>/dev/null | tail -n 40; return 1; }
  eval "$(scripts/cluster.sh env)"
}

cl_down() {
  if [ -n "${CL_TMP:-}" ]; then
    scripts/cluster.sh down >/dev/null 2>&1 || true
    rm -rf "$CL_TMP"
    CL_TMP=
  fi
}

# cl_locust USERS SECONDS CSV_PREFIX: locust through nginx, all users at once, no think time,
# verifying nginx's certificate with the cluster's CA. Its exit status is locust's (1 when a
# request failed): the callers judge the CSVs.
cl_locust() {
  SG_LOAD_WAIT_MIN=0 SG_LOAD_WAIT_MAX=0 SG_LOAD_CA=$SG_CLUSTER_CA "$PY" -m locust \
    -f loadtest/locustfile.py --headless -u "$1" -r "$1" -t "${2}s" --host "$SG_CLUSTER_URL" \
    --csv "$3" --only-summary --stop-timeout 5 >"$3.log" 2>&1
}

cl_dump_logs() {
  tail -n 20 "$CL_TMP"/*.log 2>/dev/null || true
  tail -n 20 "$SG_CLUSTER_DIR"/logs/*.log "$SG_CLUSTER_DIR"/nginx/logs/error.log 2>/dev/null || true
}
