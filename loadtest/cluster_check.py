"""The checks of loadtest/cluster_smoke.sh and loadtest/cluster_failover.sh, on what a run left:
locust's CSVs, nginx's access log (log_format sg_edge of deploy/nginx/sg-edge.conf), the sessions
file the locustfile writes (SG_LOAD_SESSIONS_FILE) and sg stream's JSON report. Each command prints
what it saw and exits 1 when a check fails.

  cluster_check.py locust CSV_PREFIX                   # the table; 0 failures, every route reached
  cluster_check.py spread ACCESS_LOG N                 # every one of the N instances got requests
  cluster_check.py failover CSV_PREFIX ACCESS_LOG KILLED_ADDR KILL_T0,KILL_T1 RESTART_TIME \
                   SESSIONS_FILE URL CAFILE
      failures only among the requests in flight on the killed instance when SIGKILL was sent
      (between KILL_T0 and KILL_T1, plus GRACE_S for nginx to see the instance's connections
      close: a request it sent in that moment on a pooled connection fails like one in flight),
      GETs never failed, the restarted instance served again, every session created before the
      kill is listed and answers a query
  cluster_check.py stream REPORT.json                  # sg stream through nginx: HTTP/2, all answered
"""

import csv
import json
import ssl
import sys
import urllib.request

# nginx learns that a pooled keep-alive connection to an instance is dead when its event loop
# reads the close; a POST it writes on such a connection in that moment fails as one in flight
# did (it cannot be retried: it may have been received). Those count as in flight at the kill.
GRACE_S = 0.1

ROUTES = ("/sessions", "/sessions/[id]/query", "/sessions/[id]/multimodal")


def locust_rows(prefix):
    with open(prefix + "_stats.csv", newline="") as f:
        return {r["Name"]: r for r in csv.DictReader(f)}


def locust_failures(prefix):
    with open(prefix + "_failures.csv", newline="") as f:
        return list(csv.DictReader(f))


def print_table(rows):
    for name, r in rows.items():
        print(f"  {name:28} {r['Request Count']:>7} requests {r['Failure Count']:>5} failed"
              f"  p50 {r['50%']:>4} ms  p95 {r['95%']:>4} ms  {float(r['Requests/s']):8.1f}/s")


def routes_reached(rows):
    ok = True
    for route in ROUTES:
        if int(rows.get(route, {}).get("Request Count", 0)) == 0:
            print(f"  no request reached {route}")
            ok = False
    return ok


def cmd_locust(prefix):
    rows = locust_rows(prefix)
    print_table(rows)
    ok = routes_reached(rows)
    agg = rows.get("Aggregated")
    if agg is None or int(agg["Failure Count"]) != 0:
        ok = False
        for f in locust_failures(prefix):
            print(f"  FAILED {f['Occurrences']}x {f['Method']} {f['Name']}: {f['Error']}")
    return ok


def log_lines(path):
    """The access log as dicts (fields of log_format sg_edge)."""
    names = ("msec", "request_time", "connection", "protocol", "request", "status",
             "upstream_addr", "upstream_status", "upstream_time", "request_id", "remote_addr")
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(names):
                continue
            d = dict(zip(names, parts))
            d["end"] = float(d["msec"])
            d["start"] = d["end"] - float(d["request_time"])
            d["status"] = int(d["status"])
            d["method"], _, rest = d["request"].partition(" ")
            d["uri"] = rest.rsplit(" ", 1)[0]
            out.append(d)
    return out


def cmd_spread(path, n):
    per = {}
    for d in log_lines(path):
        for addr in d["upstream_addr"].split(", "):
            if addr and addr != "-":
                per[addr] = per.get(addr, 0) + 1
    print("  requests per instance (attempts, from nginx's log):",
          ", ".join(f"{a} {c}" for a, c in sorted(per.items())))
    if len(per) < n:
        print(f"  only {len(per)} of {n} instances got requests")
        return False
    return True


def https_json(url, ca, method="GET", body=None):
    ctx = ssl.create_default_context(cafile=ca)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def cmd_failover(prefix, access_log, killed, kill_window, restart_time, sessions_file, url, ca):
    k0, k1 = (float(t) for t in kill_window.split(","))
    kill_time = k0
    restart_time = float(restart_time)
    rows = locust_rows(prefix)
    print_table(rows)
    ok = routes_reached(rows)
    failures = int(rows["Aggregated"]["Failure Count"])
    for f in locust_failures(prefix):
        print(f"  failed {f['Occurrences']}x {f['Method']} {f['Name']}: {f['Error'][:160]}")

    # nginx's view: the requests it had sent to the killed instance when it died
    lines = log_lines(access_log)
    in_flight = [d for d in lines if d["start"] <= k1 + GRACE_S and d["end"] >= k0
                 and killed in d["upstream_addr"].split(", ")]
    errors = [d for d in lines if d["status"] >= 500]
    retried = [d for d in lines if killed in d["upstream_addr"].split(", ")[:-1]]
    print(f"  kill at {kill_time:.3f}: {len(in_flight)} requests in flight on {killed} "
          f"(or sent there within {GRACE_S:.1f} s) "
          f"({sum(d['method'] == 'POST' for d in in_flight)} POST); nginx answered "
          f"{len(errors)} with 5xx; {len(retried)} went on to another instance")
    for d in errors:
        mine = d["start"] <= k1 + GRACE_S and d["end"] >= k0 and killed in d["upstream_addr"]
        print(f"    {d['status']} {d['method']} {d['uri'][:60]} via {d['upstream_addr']}"
              f" ({d['start'] - kill_time:+.3f} s .. {d['end'] - kill_time:+.3f} s from the kill)"
              + ("" if mine else "  <- NOT in flight at the kill"))
        ok = ok and mine
    if failures > len(in_flight):
        print(f"  {failures} failures > {len(in_flight)} requests in flight at the kill")
        ok = False
    if any(d["method"] != "POST" for d in errors):
        print("  a GET/DELETE failed: nginx should have retried it on another instance")
        ok = False
    back = [d for d in lines if d["start"] > restart_time and d["status"] < 500
            and d["upstream_addr"].split(", ")[-1] == killed]
    print(f"  after the restart ({restart_time - kill_time:.1f} s after the kill) {killed} "
          f"answered {len(back)} requests")
    ok = ok and len(back) > 0

    # every session created before the kill is still there and still answers
    created = []
    with open(sessions_file, encoding="ascii") as f:
        for line in f:
            sid, t = line.split("\t")
            created.append((sid, float(t)))
    before = [sid for sid, t in created if t < kill_time]
    status, listing = https_json(url + "/sessions", ca)
    listed = {s["session_id"] for s in (listing or {}).get("sessions", [])} if status == 200 else set()
    missing = [sid for sid in before if sid not in listed]
    answered = 0
    for sid in before:
        st, body = https_json(f"{url}/sessions/{sid}/query", ca, "POST", {"text_query": "still there?"})
        answered += st == 200 and isinstance(body, dict) and body.get("session_id") == sid
    print(f"  sessions: {len(created)} created, {len(before)} before the kill; GET /sessions lists "
          f"{len(listed)}; {len(missing)} of those missing; {answered}/{len(before)} answered a query")
    if status != 200 or missing or answered != len(before) or not before:
        ok = False
    return ok


def cmd_stream(report):
    with open(report, encoding="utf-8") as f:
        r = json.load(f)
    audio, q, fr, http = r["audio"], r["queries"], r["frames"], r["http"]
    print(f"  sg stream: HTTP/{r.get('http_version')} over {r.get('connections')} connection(s);"
          f" {http['requests']} requests, {http['retries']} retries; audio {audio}; queries {q};"
          f" frames sent {fr.get('sent')}, failed {fr.get('failed')}")
    ok = r.get("http_version") == "2"
    chunks = audio.get("chunks", 0)
    answered = audio.get("transcribed", 0) + audio.get("not_transcribed", 0)
    ok = ok and chunks > 0 and audio.get("failed", 1) == 0 and answered == chunks
    ok = ok and q.get("asked", 0) > 0 and q.get("answered") == q.get("asked")
    ok = ok and fr.get("failed", 1) == 0 and fr.get("sent", 0) > 0
    return ok


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "locust" and len(argv) == 3:
        ok = cmd_locust(argv[2])
    elif cmd == "spread" and len(argv) == 4:
        ok = cmd_spread(argv[2], int(argv[3]))
    elif cmd == "failover" and len(argv) == 10:
        ok = cmd_failover(*argv[2:])
    elif cmd == "stream" and len(argv) == 3:
        ok = cmd_stream(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(f"  {cmd}:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
