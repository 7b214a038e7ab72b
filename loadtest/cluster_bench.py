"""Throughput of the cluster (nginx + N sg-edge + Redis, scripts/cluster.sh) with 1 and with 3
instances on this machine, and the CPU each part spends per request, to project a bigger machine.
Not run by CI (figures: docs/PERFORMANCE.md, "Cluster").

For each N: a fresh cluster on free loopback ports, 64 sessions, then wrk (2 threads, 64
connections, HTTPS through nginx, no think time) for SECONDS on text turns (POST /query) and on
frame uploads (POST /frame, a 640x480 q85 photo as JSON, the same frame every time: after the first
keyframe that is the ingest path), each request on the next session round-robin. CPU seconds of
nginx (master and workers), of the sg-edge instances, of redis-server and of wrk itself are read
from /proc before and after each run.

    /usr/bin/python3 loadtest/cluster_bench.py [SECONDS] [INSTANCES ...]   # default 15, 1 3
Needs a Release build (build/sg-edge, build/bench/bench_frame), wrk, nginx, redis-server.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
SESSIONS = 64

WRK_LUA = r"""
-- each request on the next session, round-robin (per thread, from a different start)
local ids, body, route, n = {}, nil, nil, 0
function init(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  route = args[2]
  local f = io.open(args[3], "rb"); body = f:read("*a"); f:close()
  n = math.random(#ids)
end
function request()
  n = n % #ids + 1
  return wrk.format("POST", "/sessions/" .. ids[n] .. "/" .. route,
                    {["Content-Type"] = "application/json"}, body)
end
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_s(pid):
    """utime + stime of a process, seconds (0 when gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except OSError:
        return 0.0


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except OSError:
                pass
    return out


class Cluster:
    def __init__(self, n, tmp):
        self.n = n
        self.env = dict(os.environ, SG_CLUSTER_INSTANCES=str(n), SG_CLUSTER_PORT=str(free_port()),
                        SG_CLUSTER_EDGE_PORTS=" ".join(str(free_port()) for _ in range(n)),
                        SG_CLUSTER_REDIS_PORT=str(free_port()), SG_CLUSTER_DIR=f"{tmp}/cluster{n}",
                        SG_EDGE_BIN=f"{ROOT}/build/sg-edge", SG_LOG_LEVEL="warn")

    def run(self, *verb):
        return subprocess.run([f"{ROOT}/scripts/cluster.sh", *verb], env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def __enter__(self):
        self.run("up")
        info = dict(line.split("=", 1) for line in self.run("env").splitlines())
        self.url, self.ca = info["SG_CLUSTER_URL"], info["SG_CLUSTER_CA"]
        self.pids = {}
        state = open(f"{tempfile.gettempdir()}/sg-cluster-{os.getuid()}-{self.env['SG_CLUSTER_PORT']}.state").read()
        for line in state.splitlines():
            parts = line.split()
            if parts[0] == "proc":
                self.pids[parts[1]] = int(parts[2])
        return self

    def __exit__(self, *exc):
        self.run("down")

    def cpu(self):
        """CPU seconds so far: nginx (master + workers), sg-edge (all), redis."""
        ngx = self.pids["nginx"]
        return {"nginx": cpu_s(ngx) + sum(cpu_s(c) for c in children(ngx)),
                "sg-edge": sum(cpu_s(p) for k, p in self.pids.items() if k.startswith("edge")),
                "redis": cpu_s(self.pids["redis"])}

    def post(self, path, body):
        ctx = ssl.create_default_context(cafile=self.ca)
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return json.loads(r.read())


def wrk(url, lua, ids, route, body, secs):
    """Runs wrk in a shell that reports its own children's CPU; returns (rps, p50, p99, errors, cpu)."""
    cmd = (f"wrk -t2 -c64 -d{secs}s --latency -s {lua} {url} -- {ids} {route} {body} >{ids}.out; "
           "read -r s < /proc/$$/stat; echo \"$s\"")
    stat = subprocess.run(["bash", "-c", cmd], check=True, capture_output=True, text=True).stdout
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[13]) + int(fields[14])) / TICK  # cutime + cstime: wrk
    out = open(f"{ids}.out").read()
    rps = float(next(l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec")))
    lat = {l.split()[0]: l.split()[1] for l in out.splitlines() if l.strip().startswith(("50%", "99%"))}
    errors = sum(int(l.split()[-1]) for l in out.splitlines() if "Non-2xx" in l)
    errors += sum(int(x.split()[-1]) for l in out.splitlines() if "Socket errors" in l
                  for x in l.split(":", 1)[1].split(","))
    return rps, lat.get("50%"), lat.get("99%"), errors, cpu


def main():
    secs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    counts = [int(a) for a in sys.argv[2:]] or [1, 3]
    if not shutil.which("wrk"):
        sys.exit("cluster_bench: needs wrk (scripts/deps.sh)")
    tmp = tempfile.mkdtemp(prefix="sg-cluster-bench.")
    try:
        subprocess.run([f"{ROOT}/build/bench/bench_frame", "--runs", "1", "--write", tmp], check=True,
                       capture_output=True)
        frame = f"{tmp}/coffee_frame.json"
        text = f"{tmp}/text.json"
        with open(text, "w") as f:
            f.write('{"text_query":"what time is it"}')
        lua = f"{tmp}/round_robin.lua"
        with open(lua, "w") as f:
            f.write(WRK_LUA)
        print(f"# {os.cpu_count()} cores; {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())};"
              f" wrk -t2 -c64 -d{secs}s over HTTPS (HTTP/1.1) through nginx; {SESSIONS} sessions;"
              f" load average {os.getloadavg()[0]:.2f}")
        print("| instances | route | req/s | p50 | p99 | errors | CPU ms/request: nginx | sg-edge |"
              " redis | wrk (client) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for n in counts:
            with Cluster(n, tmp) as cl:
                ids = f"{tmp}/ids{n}"
                with open(ids, "w") as f:
                    for _ in range(SESSIONS):
                        f.write(cl.post("/sessions", {})["session_id"] + "\n")
                for route, body in (("query", text), ("frame", frame)):
                    before = cl.cpu()
                    rps, p50, p99, errors, wrk_cpu = wrk(cl.url, lua, ids, route, body, secs)
                    after = cl.cpu()
                    reqs = rps * secs
                    per = {k: (after[k] - before[k]) * 1000 / reqs for k in after}
                    print(f"| {n} | {route} | {rps:,.0f} | {p50} | {p99} | {errors} |"
                          f" {per['nginx']:.3f} | {per['sg-edge']:.3f} | {per['redis']:.3f} |"
                          f" {wrk_cpu * 1000 / reqs:.3f} |", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
