#!/usr/bin/python3
"""Writes a real-size CLIP ViT-B/32 with random weights (our PyTorch reference, the exact Hugging
Face layout and tensor names) for benchmarks: OUT/config.json, model.safetensors (F32, ~600 MB),
vocab.json, merges.txt. Nothing of it is committed.  Usage: gen_clip_b32.py OUT_DIR"""
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import clip_reference as ref  # noqa: E402

CONFIG = {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 512,
          "logit_scale_init_value": 2.6592, "text_config": {}, "vision_config": {}}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    m = ref.CLIP(CONFIG)
    with torch.no_grad():  # roughly CLIP-like scales so activations stay sane
        for name, p in m.named_parameters():
            if p.dim() > 1:
                p.normal_(0, 0.02)
    ref.save_safetensors(out + "/model.safetensors", {k: v.float() for k, v in m.hf_state().items()})
    import json
    with open(out + "/config.json", "w") as f:
        json.dump(CONFIG, f)
    for n in ("vocab.json", "merges.txt", "preprocessor_config.json"):
        shutil.copyfile("tests/fixtures/clip_tiny/" + n, out + "/" + n)
    print("wrote", out)


if __name__ == "__main__":
    main()
