#!/usr/bin/env bash
# CI smoke load run: a fresh sg-edge (no models) on a free loopback port, then loadtest/locustfile.py
# with 20 users spawned at once, no think time, for 30 s. Fails (exit 1) on ANY failed request
# (non-200 or an answer that is not a turn result), when nothing was asked of /query or
# /multimodal, or when the server died during the run.
#
#   loadtest/smoke.sh [SG_EDGE_BIN]        # default build/sg-edge
# Environment: SG_SMOKE_USERS (20), SG_SMOKE_SECONDS (30).
set -euo pipefail
cd "$(dirname "$0")/.."
. loadtest/common.sh
SG_EDGE=${1:-${SG_EDGE_BIN:-build/sg-edge}}
users=${SG_SMOKE_USERS:-20}
secs=${SG_SMOKE_SECONDS:-30}
[ -x "$SG_EDGE" ] || { echo "smoke.sh: no sg-edge binary at $SG_EDGE" >&2; exit 1; }
"$PY" -c 'import locust, PIL' 2>/dev/null ||
  { echo "smoke.sh: needs Debian python3-locust and python3-pil (scripts/deps.sh)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'sg_stop; rm -rf "$tmp"' EXIT
sg_start "$tmp/server.log"
echo "load smoke: $users users, ${secs}s, no think time, sg-edge on port $SG_PORT_USED"
rc=0
SG_LOAD_WAIT_MIN=0 SG_LOAD_WAIT_MAX=0 "$PY" -m locust -f loadtest/locustfile.py --headless \
  -u "$users" -r "$users" -t "${secs}s" --host "http://127.0.0.1:$SG_PORT_USED" \
  --csv "$tmp/smoke" --only-summary --stop-timeout 5 >"$tmp/locust.log" 2>&1 || rc=$?
alive=1; kill -0 "$SG_PID" 2>/dev/null || alive=0

"$PY" - "$tmp/smoke_stats.csv" "$tmp/smoke_failures.csv" "$rc" "$alive" <<'PY' || { tail -n 30 "$tmp/locust.log"; cat "$tmp/server.log"; exit 1; }
import csv, sys
stats, failures, rc, alive = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
rows = {r["Name"]: r for r in csv.DictReader(open(stats, newline=""))}
ok = True
for name, r in rows.items():
    print(f"  {name:28} {r['Request Count']:>7} requests {r['Failure Count']:>5} failed"
          f"  p50 {r['50%']:>4} ms  p95 {r['95%']:>4} ms  {float(r['Requests/s']):8.1f}/s")
agg = rows.get("Aggregated")
if agg is None or int(agg["Failure Count"]) != 0:
    ok = False
    for f in csv.DictReader(open(failures, newline="")):
        print(f"  FAILED {f['Occurrences']}x {f['Method']} {f['Name']}: {f['Error']}")
for route in ("/sessions", "/sessions/[id]/query", "/sessions/[id]/multimodal"):
    if int(rows.get(route, {}).get("Request Count", 0)) == 0:
        print(f"  no request reached {route}"); ok = False
if rc != 0:
    print(f"  locust exited {rc}"); ok = False
if not alive:
    print("  sg-edge died during the run"); ok = False
print("load smoke:", "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
