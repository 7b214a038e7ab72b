#!/usr/bin/env bash
# OCR benchmark on the generated sign frames (py/gen_signs.py), in one run on this machine:
#  1. bench_ocr: our region pipeline (agent/ocr.c + Tesseract) against Tesseract's defaults on the
#     whole frame through the same library (CER and median ms per frame), the "is there text?"
#     check on the shared photos without text, and THREADS threads reading at once;
#  2. the tesseract command itself on each whole frame (`tesseract FRAME -`, page segmentation
#     auto): its CER, and its median wall time per frame (a process each: start-up and model
#     load included, which is what a script calling it pays);
#  3. `sg ocr` on the same frames, as a user calls it (one process for all frames).
# Needs a Release build in build/ and Debian's tesseract-ocr (the CLI; libtesseract-dev and
# tesseract-ocr-eng for the library).   bench/ocr_bench.sh [RUNS] [THREADS] [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
threads=${2:-2}
dir=${3:-tests/fixtures/signs}
build=${SG_BUILD_DIR:-build}
export OMP_THREAD_LIMIT=1
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $dir, tesseract $(tesseract --version 2>&1 | head -1 | awk '{print $2}')"
"$build/bench/bench_ocr" --dir "$dir" --runs "$runs" --threads "$threads"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in "$dir"/*.jpg; do
  b=$(basename "$f" .jpg)
  t0=$(date +%s%N)
  tesseract "$f" - 2>/dev/null > "$tmp/$b.txt" || true
  t1=$(date +%s%N)
  echo "$b $(( (t1 - t0) / 1000 ))" >> "$tmp/times"
done
t0=$(date +%s%N)
"$build/sg" ocr "$dir"/*.jpg > "$tmp/sg.jsonl"
t1=$(date +%s%N)
/usr/bin/python3 - "$dir" "$tmp" "$(( (t1 - t0) / 1000 ))" <<'PY'
import json, statistics, sys
d, tmp, sg_us = sys.argv[1], sys.argv[2], int(sys.argv[3])
truth = json.load(open(f"{d}/truth.json"))["signs"]
def norm(s):  # as sg_ocr_cer: ASCII case folded, whitespace runs one space, trimmed
    return " ".join(s.split()).lower()
def cer(ref, hyp):
    a, b = norm(ref), norm(hyp)
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, row[0] = row[0], i
        for j in range(1, len(b) + 1):
            cur = row[j]
            row[j] = min(prev + (a[i - 1] != b[j - 1]), cur + 1, row[j - 1] + 1)
            prev = cur
    return min(1.0, row[len(b)] / len(a)) if a else float(bool(b))
times = dict(l.split() for l in open(f"{tmp}/times"))
cli = [cer(s["text"], open(f"{tmp}/{s['file'][:-4]}.txt").read()) for s in truth]
ms = [int(times[s["file"][:-4]]) / 1000 for s in truth]
ours = {json.loads(l)["image"].split("/")[-1]: json.loads(l) for l in open(f"{tmp}/sg.jsonl")}
sg = [cer(s["text"], ours[s["file"]].get("text", "")) for s in truth]
print(f"tesseract CLI, whole frame: mean CER {statistics.mean(cli):.3f}, median {statistics.median(ms):.1f} ms/frame (a process each)")
print(f"sg ocr, {len(truth)} frames in one process: mean CER {statistics.mean(sg):.3f}, {sg_us / 1000 / len(truth):.1f} ms/frame wall (start-up and engine load included)")
PY
