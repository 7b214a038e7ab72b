#!/usr/bin/env bash
# Phone-side figures (issue 6), in one run on this machine:
#  1. the guide's JPEG table re-measured: the shared photos fitted to 640x480 and encoded by
#     libsgclient at q40/60/75/85/95 (KB, encode ms, PSNR) and what the server's vision makes of
#     them compared with q95: the pixel describer always; CLIP embedding cosine with the tiny test
#     CLIP (random weights) and, if present, a real-size random-weight B/32 ($SG_B32_DIR, made by
#     py/gen_clip_b32.py; random weights, so this measures how much the tower's input
#     changes, not accuracy);
#  2. upload KB/min at default settings per battery band: `sg stream` (glasses simulator) against
#     sg-edge on loopback, 10x real time, for a slowly panning wearer (--pan 10, the default) and a
#     still one (--pan 0) — defaults: Ogg Opus audio at 24 kbit/s, the upload budget of the battery
#     band, the pre-filter with the client-keyframe hint — and, for comparison, the drifting wearer
#     without them (WAV audio, no budget: `--audio-codec pcm --upload-budget 0`).
#   bench/client_bench.sh [RUNS] [SIM_SECONDS] [all|jpeg|upload]
#                                                   (Release build in build/ with `sg stream`)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
secs=${2:-120}
what=${3:-all}
build=${SG_BUILD_DIR:-build}
b32=${SG_B32_DIR:-/tmp/sg-clip-b32-random}
PY=/usr/bin/python3
[ -x "$build/bench/bench_client" ] && [ -x "$build/sg-edge" ] ||
  { echo "build first: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build" >&2; exit 1; }
"$build/sg" stream --help >/dev/null 2>&1 || { echo "$build/sg has no 'stream' command" >&2; exit 1; }
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$what" != upload ]; then
echo "## 1. JPEG quality at 640x480 (libsgclient, TurboJPEG 4:2:0), $runs encodes per photo and quality"
"$build/bench/bench_client" --runs "$runs" ../shared/data/images/*.jpg | sed -n '/^$/,$p'
echo "### CLIP cosine vs q95, tests/fixtures/clip_tiny (tiny, RANDOM weights)"
"$build/bench/bench_client" --runs 1 --clip tests/fixtures/clip_tiny ../shared/data/images/*.jpg | sed -n '/^$/,$p' | cut -d"|" -f1,2,11,12
if [ -f "$b32/model.safetensors" ]; then
  echo "### CLIP cosine vs q95, real-size B/32 with RANDOM weights ($b32), f32, 2 threads"
  "$build/bench/bench_client" --runs 1 --clip "$b32" --precision f32 --threads 2 ../shared/data/images/*.jpg |
    sed -n '/^$/,$p' | cut -d"|" -f1,2,11,12
else
  echo "(no real-size B/32 at $b32: make one with $PY py/gen_clip_b32.py $b32)"
fi

fi
[ "$what" = jpeg ] && exit 0

echo "## 2. upload per battery band: sg stream, $secs simulated s at 10x, photos held 4 s, jfk.wav as the microphone, a question every 15 s"
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SG_LOG_LEVEL=warn "$build/sg-edge" --host 127.0.0.1 --port "$port" &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
# view: drifting (defaults), still (defaults), raw (drifting, WAV audio, no budget: the baseline)
for view in drift still raw; do
  case $view in
    drift) extra=(--pan 10) ;;
    still) extra=(--pan 0) ;;
    raw) extra=(--pan 10 --audio-codec pcm --upload-budget 0) ;;
  esac
  for b in 100 55 25 10; do
    "$build/sg" stream --server "http://127.0.0.1:$port" --frames ../shared/data/images \
      --audio ../shared/data/audio/jfk.wav --battery "$b" --duration "$secs" --speed 10 "${extra[@]}" \
      --json > "$tmp/$view-b$b.json"
  done
done
$PY - "$tmp" <<'PY'
import json, sys, glob, os
d = sys.argv[1]
print("| view | battery | budget KB/min | mode (s) | effective fps | frames due/min | sent/min (server analysed) | budget-skipped frames/min | JPEG q | KB/frame | audio KB/chunk | frames KB/min | audio KB/min | total KB/min | worst minute KB | turn p50 / p95 ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
names = {"drift": "drifting 10 px/s", "still": "still (--pan 0)", "raw": "drifting, WAV, no budget"}
for view in ("drift", "still", "raw"):
    for b in (100, 55, 25, 10):
        j = json.load(open(os.path.join(d, "%s-b%d.json" % (view, b))))
        f, u, c, t, a = j["frames"], j["upload"], j["controller"], j["turn_latency_ms"], j["audio"]
        mins = j["duration_s"] / 60.0
        modes = ", ".join("%s %g" % (k, v) for k, v in c["mode_seconds"].items() if v)
        budget = j["budget"]["kb_per_min"]
        full = [m["kb"] * 60.0 / m["seconds"] for m in u["per_minute"] if m["seconds"] >= 59.9]
        print("| %s | %d %% | %s | %s | %.2f | %.1f | %.1f (%.1f) | %.1f | %g | %.1f | %.2f | %.0f | %.0f | **%.0f** | %s | %.1f / %.1f |" % (
            names[view], b, "%g" % budget if budget else "none", modes, c["effective_fps"],
            (f["captured"] - f["prefilter_skipped"]) / mins, f["sent"] / mins, f["server_keyframes"] / mins,
            f["budget_skipped"] / mins, f["jpeg_quality_avg"], f["jpeg_kb_avg"], a["kb_per_chunk"],
            u["frames_kb_per_min"], u["audio_kb_per_min"], u["kb_per_min"],
            "%.0f" % max(full) if full else "-", t["p50"] or 0, t["p95"] or 0))
PY
