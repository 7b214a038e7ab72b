#!/usr/bin/python3
"""Writes a real-size SNN student with random weights for benchmarks (never committed): the
default SpikingStudentLM (GPT-2 vocabulary 50257, dim 128, depth 2, 4 heads, 13.2 M parameters)
saved exactly as the training script saves it, OUT/student.pt (torch.save of the state dict, ~53 MB)
+ OUT/metadata.json. Weights come from snn_reference.init_random, scaled for
the wider model, so that spikes fire in a healthy fraction. No tokenizer files: pass
--tokenizer ../shared/tokenizers/gpt2.tiktoken.  Usage: gen_snn_real.py OUT_DIR [SEED]"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import snn_reference as ref  # noqa: E402


def main():
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    model = ref.SpikingStudentLM(50257, 128, 2, 4)
    ref.init_random(model, seed, width_scale=0.5)  # width 128
    torch.save(model.state_dict(), os.path.join(out, "student.pt"))
    with open(os.path.join(out, "metadata.json"), "w") as f:
        json.dump(ref.metadata_for(model), f, indent=2)
    print("wrote", out, "(%d parameters)" % sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
