"""Summary table, summary.csv and chart of a loadtest/degrade.sh run.

    /usr/bin/python3 loadtest/degrade_report.py OUT_DIR CHART.png BUDGET_MS NAME:USERS...

Reads locust's OUT_DIR/<NAME>.stats.csv (the "Aggregated" row), the locustfile's tally of degraded
turns OUT_DIR/<NAME>.degraded.json and the server's counters OUT_DIR/<NAME>.prom; writes
OUT_DIR/summary.csv and a small PNG (p50/p95 against the budget; failures and degraded turns in
per cent), prints the table as Markdown.
"""

import csv
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import num  # noqa: E402  (loadtest/report.py: a locust cell as a number)


def read_run(out, name, users):
    with open(os.path.join(out, f"{name}.stats.csv"), newline="") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    agg = rows["Aggregated"]
    reqs, fails = int(agg["Request Count"]), int(agg["Failure Count"])
    run = {"run": name, "users": users, "degradation": "on" if name.endswith("_on") else "off",
           "requests": reqs, "failures": fails, "p50_ms": num(agg["50%"]),
           "p95_ms": num(agg["95%"]), "p99_ms": num(agg["99%"]), "rps": num(agg["Requests/s"])}
    for route in ("query", "multimodal"):  # the turns alone (Aggregated has POST /sessions too)
        r = rows.get(f"/sessions/[id]/{route}")
        run[f"{route}_p95_ms"] = num(r["95%"]) if r else float("nan")
    try:
        with open(os.path.join(out, f"{name}.degraded.json")) as f:
            d = json.load(f)
        run["turns"] = d["turns"]
        run["degraded_turns"] = d["degraded"]
        run["degraded_pct"] = 100.0 * d["degraded"] / d["turns"] if d["turns"] else 0.0
        run["steps"] = " ".join(f"{k}={v}" for k, v in sorted(d["steps"].items()))
    except (OSError, ValueError, KeyError):
        run.update(turns=0, degraded_turns=0, degraded_pct=float("nan"), steps="")
    return run


def main():
    if len(sys.argv) < 5:
        sys.exit("usage: degrade_report.py OUT_DIR CHART.png BUDGET_MS NAME:USERS...")
    out, chart, budget = sys.argv[1], sys.argv[2], float(sys.argv[3])
    runs = []
    for spec in sys.argv[4:]:
        name, users = spec.split(":")
        runs.append(read_run(out, name, int(users)))
    keys = ["run", "users", "degradation", "requests", "failures", "p50_ms", "p95_ms", "p99_ms",
            "query_p95_ms", "multimodal_p95_ms", "rps", "turns", "degraded_turns", "degraded_pct", "steps"]
    with open(os.path.join(out, "summary.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(runs)
    print("| users | degradation | requests | failures | p50 ms | p95 ms | p99 ms | p95 query / multimodal ms | req/s | degraded turns | steps |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['users']} | {r['degradation']} | {r['requests']} | {r['failures']} | "
              f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} | "
              f"{r['query_p95_ms']:.0f} / {r['multimodal_p95_ms']:.0f} | {r['rps']:.2f} | "
              f"{r['degraded_pct']:.0f}% ({r['degraded_turns']}/{r['turns']}) | {r['steps']} |")

    labels = [f"{r['users']} users\ndegradation {r['degradation']}" for r in runs]
    x = list(range(len(runs)))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=90)
    a1.bar([i - 0.2 for i in x], [r["p50_ms"] / 1000 for r in runs], 0.4, label="p50")
    a1.bar([i + 0.2 for i in x], [r["p95_ms"] / 1000 for r in runs], 0.4, label="p95")
    a1.axhline(budget / 1000, color="red", linestyle="--", linewidth=1, label="budget")
    a1.set_ylabel("latency (s)")
    a1.set_xticks(x, labels, fontsize=7)
    a1.legend(fontsize=7)
    a2.bar([i - 0.2 for i in x], [100.0 * r["failures"] / r["requests"] if r["requests"] else 0
                                  for r in runs], 0.4, label="failures")
    a2.bar([i + 0.2 for i in x], [r["degraded_pct"] for r in runs], 0.4, label="degraded turns")
    a2.set_ylabel("% of requests / turns")
    a2.set_ylim(0, 100)
    a2.set_xticks(x, labels, fontsize=7)
    a2.legend(fontsize=7)
    fig.suptitle("sg-edge past capacity: SG_LATENCY_BUDGET_MS on and off", fontsize=9)
    fig.tight_layout()
    fig.savefig(chart)
    print(f"chart: {chart} ({os.path.getsize(chart)} bytes)")


if __name__ == "__main__":
    main()
