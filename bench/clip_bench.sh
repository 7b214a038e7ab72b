#!/usr/bin/env bash
# CLIP ViT-B/32 image embedding benchmark, ours vs PyTorch on the same random real-size weights, in
# one run on this machine: decode + preprocess + forward of one photo, median of RUNS, at THREADS.
# Also prints the GEMM throughput (bench_nn), embedding agreement (int8 vs f32, ours vs PyTorch) and
# peak RSS with the int8 model loaded.  Needs Debian python3-torch and python3-pil, and a Release
# build in build/.   bench/clip_bench.sh [RUNS] [THREADS] [IMAGE]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
threads=${2:-2}
image=${3:-../shared/data/images/astronaut.jpg}
build=${SG_BUILD_DIR:-build}
model=${SG_B32_DIR:-/tmp/sg-clip-b32-random}
[ -f "$model/model.safetensors" ] || /usr/bin/python3 py/gen_clip_b32.py "$model"
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), image $image"
for p in int8 f32; do
  /usr/bin/time -f "peak_rss_mb %M" -o /tmp/sg-clip-rss.$p \
    "$build/sg" bench clip --model "$model" --precision $p --threads "$threads" --runs "$runs" "$image" \
    | sed "s/^{/{\"impl\":\"smartglass-edge $p\",/"
  awk '{printf "  peak RSS (sg bench clip, %s): %.0f MB\n", "'$p'", $2/1024}' /tmp/sg-clip-rss.$p
done
"$build/sg" clip embed --model "$model" --precision f32 --threads "$threads" "$image" > /tmp/sg-clip-f32.json
"$build/sg" clip embed --model "$model" --precision int8 --threads "$threads" "$image" > /tmp/sg-clip-int8.json
/usr/bin/python3 py/bench_clip_torch.py "$model" "$image" "$threads" "$runs" /tmp/sg-clip-torch.json
/usr/bin/python3 - <<'PY'
import json, math
def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
f32 = json.load(open("/tmp/sg-clip-f32.json"))["embedding"]
i8 = json.load(open("/tmp/sg-clip-int8.json"))["embedding"]
t = json.load(open("/tmp/sg-clip-torch.json"))
print("  cosine ours f32 vs torch f32: %.6f" % cos(f32, t["torch_f32"]))
print("  cosine ours int8 vs ours f32: %.6f" % cos(i8, f32))
print("  cosine torch int8 vs torch f32: %.6f" % cos(t["torch_int8_dynamic"], t["torch_f32"]))
PY
[ -x "$build/bench/bench_nn" ] && "$build/bench/bench_nn" 2>/dev/null | tail -n 30 || true
