#!/usr/bin/env bash
# The Prometheus files' checks (CI: scripts/test.sh and ctest's ops_promtool): both scrape configs
# and the rules pass promtool, the rules' unit tests pass, every alert has a unit test and a
# runbook section in docs/OPERATIONS.md.
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
# every runbook_url points at a section of docs/OPERATIONS.md (GitHub's anchor of its heading)
anchors=$(sed -n 's/^#\{1,6\} \(.*\)/\1/p' ../../docs/OPERATIONS.md | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9 _\n-' | tr ' ' '-')
for a in $(sed -n 's/^ *runbook_url: *docs\/OPERATIONS.md#\(.*\)/\1/p' alerts.yml | sort -u); do
  grep -qx -- "$a" <<<"$anchors" || { echo "check.sh: runbook anchor #$a is not a heading of docs/OPERATIONS.md" >&2; exit 1; }
done
[ "$(grep -c 'runbook_url:' alerts.yml)" -eq "$(grep -c '^ *- alert:' alerts.yml)" ] \
  || { echo "check.sh: every alert needs a runbook_url" >&2; exit 1; }
echo "check.sh: configs, rules, $(grep -c '^ *- alert:' alerts.yml) alerts' tests and runbook links pass"
