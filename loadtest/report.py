"""Summary table, summary.csv and chart of a loadtest/stress.sh run.

    /usr/bin/python3 loadtest/report.py OUT_DIR CHART.png STEP...

Reads locust's OUT_DIR/users_<N>_stats.csv (the "Aggregated" row and the per-route rows) and the
server's OUT_DIR/users_<N>_metrics.json; writes OUT_DIR/summary.csv and the PNG chart (p50/p95
round-trip latency and failure rate against users, matplotlib's Agg backend), prints the table.
"""

import csv
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return float("nan")


def read_step(out, n):
    path = os.path.join(out, f"users_{n}_stats.csv")
    with open(path, newline="") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    agg = rows.get("Aggregated")
    if agg is None:
        sys.exit(f"report.py: no Aggregated row in {path}")
    reqs, fails = int(agg["Request Count"]), int(agg["Failure Count"])
    step = {
        "users": n, "requests": reqs, "failures": fails,
        "failure_pct": 100.0 * fails / reqs if reqs else float("nan"),
        "p50_ms": num(agg["50%"]), "p95_ms": num(agg["95%"]), "p99_ms": num(agg["99%"]),
        "rps": num(agg["Requests/s"]),
    }
    for route in ("query", "multimodal"):
        r = rows.get(f"/sessions/[id]/{route}")
        step[f"{route}_p95_ms"] = num(r["95%"]) if r else float("nan")
    step["server_e2e_p95_ms"] = float("nan")
    try:
        with open(os.path.join(out, f"users_{n}_metrics.json")) as f:
            e2e = json.load(f).get("latencies", {}).get("e2e", {})
        step["server_e2e_p95_ms"] = num(e2e.get("p95"))
    except (OSError, ValueError, AttributeError):
        pass
    return step


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: report.py OUT_DIR CHART.png STEP...")
    out, chart, steps = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3:]]
    data = [read_step(out, n) for n in steps]

    cols = ["users", "requests", "failures", "failure_pct", "p50_ms", "p95_ms", "p99_ms", "rps",
            "query_p95_ms", "multimodal_p95_ms", "server_e2e_p95_ms"]
    with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for d in data:
            w.writerow({k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.items()})

    print(f"{'users':>6} {'requests':>9} {'failures':>9} {'p50 ms':>7} {'p95 ms':>7} {'req/s':>8}"
          f" {'mm p95':>7} {'srv e2e p95':>11}")
    for d in data:
        print(f"{d['users']:>6} {d['requests']:>9} {d['failures']:>9} {d['p50_ms']:>7.0f}"
              f" {d['p95_ms']:>7.0f} {d['rps']:>8.1f} {d['multimodal_p95_ms']:>7.0f}"
              f" {d['server_e2e_p95_ms']:>11.2f}")
    held = [d["users"] for d in data if d["failures"] == 0 and d["requests"] > 0]
    print(f"most users held with 0 failures: {max(held) if held else 'none'}")

    with open(os.path.join(out, "run.txt")) as f:
        info = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    x = list(range(len(data)))
    ax.plot(x, [d["p50_ms"] for d in data], "o-", label="p50 round trip")
    ax.plot(x, [d["p95_ms"] for d in data], "s-", label="p95 round trip")
    ax.plot(x, [d["multimodal_p95_ms"] for d in data], "^--", label="p95 multimodal")
    ax.plot(x, [d["server_e2e_p95_ms"] for d in data], "d:", label="p95 server-side turn")
    ax.set_xticks(x, [str(d["users"]) for d in data])
    ax.set_xlabel("concurrent users")
    ax.set_ylabel("latency (ms)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.bar(x, [d["failure_pct"] for d in data], width=0.35, alpha=0.3, color="red",
            label="failed requests (%)")
    ax2.set_ylabel("failed requests (%)")
    top = max([d["failure_pct"] for d in data if d["failure_pct"] == d["failure_pct"]] + [0])
    ax2.set_ylim(0, max(5.0, top * 1.2))
    for i, d in enumerate(data):
        ax.annotate(f"{d['rps']:.0f}/s", (i, d["p95_ms"]), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=7)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    models = "models loaded" if info.get("server_args") else "no models"
    ax.set_title(f"sg-edge ({models}) load steps, {info.get('seconds', '?')} s each, think time "
                 f"{info.get('wait', '?')} s ({info.get('date', '')})", fontsize=9)
    fig.tight_layout()
    fig.savefig(chart)
    print(f"wrote {os.path.join(out, 'summary.csv')} and {chart}")


if __name__ == "__main__":
    main()
