#!/usr/bin/python3
"""PyTorch side of bench/clip_bench.sh: CLIP image embedding (PIL decode + CLIPImageProcessor-style
preprocessing + image tower) with our reference model (py/clip_reference.py) on the same
weights, fp32 eager and torch.quantization.quantize_dynamic int8, at the given thread count.
Prints one JSON line per precision, and the embeddings' cosine to compare with ours.
Usage: bench_clip_torch.py MODEL_DIR IMAGE THREADS RUNS [OUT_EMB.json]"""
import json
import os
import sys
import time

import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_reference as ref  # noqa: E402


def main():
    d, image, threads, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    cfg = json.load(open(d + "/config.json"))
    model = ref.CLIP(cfg)
    model.load_hf_state(ref.load_safetensors(d + "/model.safetensors"))
    model.eval()
    q8 = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    out = {}
    for name, m in (("torch_f32", model), ("torch_int8_dynamic", q8)):
        times = []
        with torch.no_grad():
            for r in range(runs + 2):
                t0 = time.perf_counter()
                emb = m.image_features(ref.preprocess(Image.open(image)))
                if r >= 2:
                    times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        out[name] = emb.tolist()
        print(json.dumps({"impl": name, "threads": threads, "median_ms": round(times[len(times) // 2], 2),
                          "p90_ms": round(times[min(len(times) - 1, int(len(times) * 0.9))], 2), "runs": runs,
                          "torch": torch.__version__}))
    if len(sys.argv) > 5:
        json.dump(out, open(sys.argv[5], "w"))


if __name__ == "__main__":
    main()
