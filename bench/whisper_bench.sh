#!/usr/bin/env bash
# Whisper base.en benchmark, ours vs PyTorch on the same random real-size weights, in one run on this
# machine, at THREADS threads on ../shared/data/audio/jfk.wav (11 s):
#   - build/bench/bench_whisper (f32 and int8, one process each, so peak RSS is one model's):
#     encoder on a 30 s window and on a reduced 3 s window, greedy decoding per token, end to end
#     for the clip, a 3 s utterance with Silero VAD (the first 3 s of the clip);
#   - `sg bench whisper` (the product pipeline, int8: VAD, windows, decoding) on the clip in the
#     standard mode and on the 3 s utterance with --audio-ctx auto;
#   - py/bench_whisper_torch.py: our PyTorch Whisper, fp32 and quantize_dynamic int8, with a
#     key/value cache like openai/whisper's, the same timings;
# then a side-by-side table with the token agreement (int8 vs f32, ours vs PyTorch).
# Decoding is capped at MAX_TOKENS (default 28: the 27 text tokens of base.en's real transcript of
# jfk.wav + end-of-text) and at 8 steps for the 3 s utterance: a random model has no reason to
# stop, and these are the lengths a trained one decodes (py/gen_whisper_base.py builds the
# model so that its f32 greedy decoding ends after 27 tokens).
# Needs Debian python3-torch; builds build/ (Release) if the binaries are missing; makes the model
# in /tmp (145 MB, F16) if missing. Nothing is downloaded.
#   bench/whisper_bench.sh [RUNS] [THREADS] [TORCH_RUNS] [MAX_TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
threads=${2:-2}
torch_runs=${3:-3}
max_tokens=${4:-28}
build=${SG_BUILD_DIR:-build}
model=${SG_WHISPER_BASE_DIR:-/tmp/sg-whisper-base-random}
audio=../shared/data/audio/jfk.wav
vad=../shared/models/silero-vad-v6.2.0-ggml.bin
out=${TMPDIR:-/tmp}/sg-whisper-bench
mkdir -p "$out"
if [ ! -x "$build/bench/bench_whisper" ] || [ ! -x "$build/sg" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release > /dev/null
  cmake --build "$build" -j2 --target sg bench_whisper > /dev/null
fi
[ -f "$model/model.safetensors" ] || /usr/bin/python3 py/gen_whisper_base.py "$model"
# the first 3 s of the clip, for the utterance run of `sg bench whisper`
/usr/bin/python3 - "$audio" "$out/jfk-3s.wav" <<'PY'
import sys, wave
with wave.open(sys.argv[1], "rb") as r:
    p = r.getparams()
    frames = r.readframes(3 * p.framerate)
with wave.open(sys.argv[2], "wb") as w:
    w.setparams(p)
    w.writeframes(frames)
PY
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# model $model ($(stat -c %s "$model/model.safetensors") bytes), $runs runs (PyTorch $torch_runs), $threads threads, decoding capped at $max_tokens steps"

for p in int8 f32; do
  /usr/bin/time -f "%M" -o "$out/ours_$p.rss" "$build/bench/bench_whisper" --model "$model" \
    --precision $p --threads "$threads" --runs "$runs" --audio "$audio" --vad "$vad" \
    --max-tokens "$max_tokens" > "$out/ours_$p.txt"
  grep -v '^{' "$out/ours_$p.txt"
  grep '^{' "$out/ours_$p.txt" > "$out/ours_$p.json"
done
"$build/sg" bench whisper --model "$model" --precision int8 --threads "$threads" --vad "$vad" \
  --runs "$runs" --max-tokens "$max_tokens" "$audio" > "$out/sg_clip.json" 2> /dev/null
"$build/sg" bench whisper --model "$model" --precision int8 --threads "$threads" --vad "$vad" \
  --runs "$runs" --max-tokens 8 --audio-ctx auto "$out/jfk-3s.wav" > "$out/sg_utt.json" 2> /dev/null
/usr/bin/python3 py/bench_whisper_torch.py "$model" "$threads" "$torch_runs" "$max_tokens" 8 "$out/torch.json" > /dev/null

/usr/bin/python3 - "$out" "$model" <<'PY'
import json, sys
out, model = sys.argv[1], sys.argv[2]
ours = {p: json.load(open(f"{out}/ours_{p}.json")) for p in ("int8", "f32")}
rss = {p: int(open(f"{out}/ours_{p}.rss").read().split()[-1]) / 1024 for p in ("int8", "f32")}
torch = json.load(open(f"{out}/torch.json"))
ref = json.load(open(f"{model}/bench_info.json"))["reference_tokens_f32"]
f32 = ours["f32"]["tokens"]
def agree(t, base):
    n = max(len(t), len(base))
    return "%d/%d" % (sum(a == b for a, b in zip(t, base)), n)
rows = [("**smartglass-edge int8**", ours["int8"], "%.0f MB" % rss["int8"]),
        ("smartglass-edge f32", ours["f32"], "%.0f MB" % rss["f32"]),
        ("PyTorch fp32 eager, KV cache", torch["torch_f32"], "–"),
        ("PyTorch quantize_dynamic int8, KV cache", torch["torch_int8_dynamic"], "–")]
print()
print("| implementation | encoder 30 s | encoder 3 s (reduced ctx) | decode per token | end to end 11 s | 3 s utterance + VAD | peak RSS | tokens = ours f32 |")
print("|---|---|---|---|---|---|---|---|")
for name, r, m in rows:
    print("| %s | %.0f ms | %.1f ms | %.2f ms | %.0f ms | %.0f ms | %s | %s |" % (
        name, r["encode_30s_ms"], r["encode_3s_ms"], r["decode_ms_per_token"], r["end_to_end_ms"],
        r["utterance_3s_vad_ms"], m, agree(r["tokens"], f32)))
sg_clip = json.load(open(f"{out}/sg_clip.json"))
sg_utt = json.load(open(f"{out}/sg_utt.json"))
print()
for label, j in (("clip, standard 30 s window", sg_clip), ("3 s utterance, --audio-ctx auto", sg_utt)):
    md = j["median_ms"]
    print("sg bench whisper int8 (%s): total %.1f ms = mel %.1f + vad %.1f + encode %.1f + decode %.1f "
          "(%.2f ms/token, %d steps)" % (label, md["total"], md["mel"], md["vad"], md["encode"], md["decode"],
                                          md["decode_per_token"], j["decoder_steps"]))
print()
print("ours f32 tokens = PyTorch reference (gen_whisper_base.py, no cache): %s; = PyTorch fp32 with cache: %s"
      % (agree(f32, ref), agree(f32, torch["torch_f32"]["tokens"])))
print("int8 vs f32 (free-running greedy, random weights): ours %s, PyTorch %s"
      % (agree(ours["int8"]["tokens"], f32), agree(torch["torch_int8_dynamic"]["tokens"], torch["torch_f32"]["tokens"])))
r8 = ours["int8"]
print("targets (int8, %d threads): encoder 30 s %.0f ms (<= 600): %s; decode %.2f ms/token (<= 3): %s; "
      "end to end 11 s %.0f ms (<= 1000): %s; 3 s utterance + VAD %.0f ms (<= 400): %s; peak RSS %.0f MB (<= 150): %s"
      % (r8["threads"], r8["encode_30s_ms"], "met" if r8["encode_30s_ms"] <= 600 else "NOT met",
         r8["decode_ms_per_token"], "met" if r8["decode_ms_per_token"] <= 3 else "NOT met",
         r8["end_to_end_ms"], "met" if r8["end_to_end_ms"] <= 1000 else "NOT met",
         r8["utterance_3s_vad_ms"], "met" if r8["utterance_3s_vad_ms"] <= 400 else "NOT met",
         rss["int8"], "met" if rss["int8"] <= 150 else "NOT met"))
for k, label in (("torch_f32", "fp32"), ("torch_int8_dynamic", "int8")):
    if torch[k].get("decode_ms_per_token_1thread"):
        print("PyTorch %s decoding with 1 thread: %.2f ms/token (OpenMP hand-offs cost more than a token's small ops)"
              % (label, torch[k]["decode_ms_per_token_1thread"]))
print("whisper.cpp (not packaged in Debian 12, not measured here; the issue's figures for this machine): "
      "base.en encoder ~1700 ms on 30 s, ~5.5 ms/token")
PY
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
