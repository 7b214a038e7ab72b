#!/usr/bin/env bash
# The Prometheus files' checks (CI: scripts/test.sh and ctest's ops_promtool): both scrape configs
# and the rules pass promtool, the rules' unit tests pass, and every alert has a unit test.
# promtool comes with Debian's `prometheus` package (scripts/deps.sh); without it this fails.
set -euo pipefail
cd "$(dirname "$0")"
command -v promtool >/dev/null || { echo "check.sh: promtool not found (apt-get install prometheus)" >&2; exit 1; }
promtool check config prometheus.yml
promtool check config prometheus-cluster.yml
promtool check rules alerts.yml
promtool test rules alerts_test.yml
untested=$(comm -23 <(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\).*/\1/p' alerts.yml | sort -u) \
                    <(sed -n 's/^ *alertname: *\([A-Za-z0-9_]*\).*/\1/p' alerts_test.yml | sort -u))
if [ -n "$untested" ]; then
  echo "check.sh: alerts without a unit test in alerts_test.yml: $untested" >&2
  exit 1
fi
echo "check.sh: configs, rules and $(grep -c '^ *- alert:' alerts.yml) alerts' tests pass"
