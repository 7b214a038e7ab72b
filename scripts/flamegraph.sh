#!/usr/bin/env bash
# A flame graph of a running sg-edge (or any process): samples its call stacks with perf for a
# while, then folds and draws them (py/flamegraph.py) into an SVG. The C counterpart of the
# guide's py-spy flame graphs; docs/OPERATIONS.md ("Profiling in production") explains the choices.
#   scripts/flamegraph.sh PID [SECONDS] [OUT.svg]        (default 30 s, sg-edge-PID.svg)
# Environment: SG_PERF_FREQ (99 Hz), SG_PERF_CALLGRAPH (dwarf; fp only for a build with
# CMAKE_C_FLAGS=-fno-omit-frame-pointer), SG_PERF_EVENT (cpu-clock: a software clock that works
# in VMs and containers without hardware counters), SG_PERF_KEEP=1 keeps perf.data and the
# folded stacks beside the SVG. Needs Debian's linux-perf and /usr/bin/python3; run as root or
# with kernel.perf_event_paranoid <= 1 for another user's process.
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 3 ] || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
pid=$1
secs=${2:-30}
out=${3:-sg-edge-$pid.svg}
freq=${SG_PERF_FREQ:-99}
callgraph=${SG_PERF_CALLGRAPH:-dwarf}
event=${SG_PERF_EVENT:-cpu-clock}
root=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "flamegraph.sh: $*" >&2; exit 1; }
[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || die "no process $pid"
[[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -ge 1 ] || die "SECONDS must be a whole number >= 1"
command -v perf >/dev/null || die "perf not found: apt-get install linux-perf (scripts/deps.sh)"
if [ "$(id -u)" -ne 0 ] && [ "$(cat /proc/sys/kernel/perf_event_paranoid)" -gt 1 ]; then
  die "kernel.perf_event_paranoid is $(cat /proc/sys/kernel/perf_event_paranoid): run as root or sysctl kernel.perf_event_paranoid=1"
fi
case $callgraph in
  dwarf) cg=(--call-graph dwarf,16384) ;; # 16 KB of stack per sample: deep enough for a turn
  fp) cg=(--call-graph fp) ;;
  *) die "SG_PERF_CALLGRAPH must be dwarf or fp" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/sg-flame.XXXXXX")
trap 'rm -rf "$work"' EXIT
comm=$(cat "/proc/$pid/comm")
echo "flamegraph.sh: sampling $comm ($pid) at $freq Hz ($event, $callgraph stacks) for ${secs} s" >&2
# -p follows every thread of the process; the sleep bounds the recording.
perf record -q -e "$event" -F "$freq" "${cg[@]}" -p "$pid" -o "$work/perf.data" -- sleep "$secs" \
  2> >(grep -v "^\[ perf record" >&2) || die "perf record failed"
perf script -i "$work/perf.data" -F comm,tid,time,event,ip,sym,dso 2>/dev/null >"$work/perf.txt" \
  || die "perf script failed"
/usr/bin/python3 "$root/py/flamegraph.py" --title "$comm ($pid): CPU flame graph" \
  --subtitle "perf $event at $freq Hz, $callgraph stacks, ${secs} s, $(date -u +%Y-%m-%dT%H:%MZ)" \
  --folded-out "$work/folded.txt" "$work/perf.txt" >"$out"
if [ "${SG_PERF_KEEP:-0}" = 1 ]; then
  cp "$work/perf.data" "${out%.svg}.perf.data"
  cp "$work/folded.txt" "${out%.svg}.folded"
fi
echo "flamegraph.sh: wrote $out ($(wc -c <"$out") bytes, $(awk '{n += $NF} END {print n}' "$work/folded.txt") samples)" >&2
