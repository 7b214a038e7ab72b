#!/usr/bin/env bash
# SNN student benchmark: 64 greedy tokens after a 40-token prompt at THREADS threads, ours (f32 and
# int8, from student.pt and from the int8 file `sg quantize` writes) against upstream PyTorch
# (fp32 and quantize_dynamic int8, whole sequence re-run per token) in the same run, on the same
# real-size random student (py/gen_snn_real.py: vocabulary 50257, width 128, 2 blocks,
# written as the training script writes it; made in /tmp, never committed). Also: model load time,
# peak RSS of `sg generate`, token agreement (ours f32 vs PyTorch f32; int8 vs f32 free-running and
# teacher-forced) and the spike rate. Needs Debian python3-torch and a Release build in build/.
#   bench/snn_bench.sh [RUNS] [THREADS] [TORCH_RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
threads=${2:-2}
torch_runs=${3:-3}
build=${SG_BUILD_DIR:-build}
model=${SG_SNN_DIR:-/tmp/sg-snn-real}
q8=${model}-int8
tok=../shared/tokenizers/gpt2.tiktoken
prompt="The quick brown fox jumps over the lazy dog while the smart glasses describe the street scene ahead, including traffic lights, signs, a bus stop and people walking past the small corner cafe on a sunny morning"
out=${TMPDIR:-/tmp}/sg-snn-bench
mkdir -p "$out"
[ -f "$model/student.pt" ] || /usr/bin/python3 py/gen_snn_real.py "$model"
[ -f "$q8/model.safetensors" ] || "$build/sg" quantize --model "$model" --out "$q8" > "$out/quantize.json"
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# int8 file: $(stat -c %s "$q8/model.safetensors") bytes; student.pt: $(stat -c %s "$model/student.pt") bytes"

gen() { # name dir precision [extra args]: one cold run (load, cold generate, peak RSS), then RUNS warm
  local name=$1 dir=$2 prec=$3
  shift 3
  /usr/bin/time -f "%M" -o "$out/$name.rss" "$build/sg" generate --model "$dir" --tokenizer "$tok" \
    --prompt "$prompt" --max-tokens 64 --precision "$prec" --threads "$threads" "$@" > "$out/$name.json" 2>/dev/null
  "$build/sg" generate --model "$dir" --tokenizer "$tok" --prompt "$prompt" --max-tokens 64 \
    --precision "$prec" --threads "$threads" --runs "$runs" > "$out/$name.warm.json" 2>/dev/null
}
gen ours_f32 "$model" f32
f32_tokens=$(/usr/bin/python3 -c "import json,sys; print(','.join(map(str, json.load(open(sys.argv[1]))['tokens'])))" "$out/ours_f32.json")
gen ours_int8 "$model" int8 --teacher-force "$f32_tokens"
gen ours_int8_file "$q8" int8 --teacher-force "$f32_tokens"
/usr/bin/python3 py/bench_snn_torch.py "$model" "$threads" "$torch_runs" 64 "$prompt" "$out/torch.json" > "$out/torch.lines"

/usr/bin/python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
def load(name):
    cold = json.load(open(f"{out}/{name}.json"))
    warm = json.load(open(f"{out}/{name}.warm.json"))
    rss = int(open(f"{out}/{name}.rss").read().split()[-1]) / 1024
    return cold, warm, rss
torch = {}
for line in open(f"{out}/torch.lines"):
    j = json.loads(line)
    torch[j["impl"]] = j
tt = json.load(open(f"{out}/torch.json"))
f32 = load("ours_f32")[0]["tokens"]
def eq(a, b):
    return sum(x == y for x, y in zip(a, b))
print("| implementation | 64 tokens, warm (median) | first call (cold) | load | peak RSS | vs PyTorch fp32 | tokens equal to ours f32 |")
print("|---|---|---|---|---|---|---|")
t32 = torch["torch_f32"]["median_ms"]
for name, label in (("ours_f32", "smartglass-edge f32 (student.pt)"), ("ours_int8", "smartglass-edge int8 (student.pt, quantised at load)"),
                    ("ours_int8_file", "smartglass-edge int8 (`sg quantize` file)")):
    cold, warm, rss = load(name)
    g = warm["timings_ms"]["generate"]
    tf = cold.get("teacher_forced", {}).get("agreement")
    agree = "%d/64" % eq(cold["tokens"], f32) + (" (teacher-forced %.0f%%)" % (100 * tf) if tf is not None else "")
    print("| %s | %.1f ms | %.1f ms | %.0f ms | %.0f MB | %.0fx | %s |" % (label, g, cold["timings_ms"]["generate"],
          cold["timings_ms"]["load"], rss, t32 / g, agree))
for k, label in (("torch_f32", "PyTorch fp32 eager (upstream loop)"), ("torch_int8_dynamic", "PyTorch quantize_dynamic int8")):
    j = torch[k]
    print("| %s | %.0f ms | – | %.0f ms | – | %.1fx | %d/64 |" % (label, j["median_ms"], j["load_ms"], t32 / j["median_ms"], eq(tt[k], f32)))
print()
print("ours f32 tokens equal PyTorch fp32 (upstream straight-through spikes): %d/64, hard-threshold reference: %d/64; "
      "prompt ids equal: %s" % (eq(tt["torch_f32"], f32), eq(tt["torch_f32_hard_spikes"], f32),
                                tt["prompt_tokens"] == load("ours_f32")[0]["prompt_tokens"]))
print("spike rate (fraction of spike sites that fired, ours f32): %.3f" % load("ours_f32")[0]["spike_rate"])
PY
