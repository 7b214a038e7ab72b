#!/usr/bin/python3
"""Writes a real-size SNN student with random weights for benchmarks (never committed): the
default SpikingStudentLM (GPT-2 vocabulary 50257, dim 128, depth 2, 4 heads, 13.2 M parameters)
saved exactly as the training script saves it, OUT/student.pt (torch.save of the state dict, ~53 MB)
+ OUT/metadata.json. Weights are scaled like the test fixture's (tools/py/gen_snn_fixture.py), for
the wider model, so that spikes fire in a healthy fraction. No tokenizer files: pass
--tokenizer ../shared/tokenizers/gpt2.tiktoken.  Usage: make_snn_real.py OUT_DIR [SEED]"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import snn_reference as ref  # noqa: E402


def init(model, seed):
    g = torch.Generator().manual_seed(seed)

    def rn(shape, s):
        return s * torch.randn(shape, generator=g)

    with torch.no_grad():
        model.embed.weight.copy_(rn(model.embed.weight.shape, 1.0))
        for b in model.blocks:
            a = b.attn.attn
            a.in_proj_weight.copy_(rn(a.in_proj_weight.shape, 0.175))
            a.in_proj_bias.copy_(rn(a.in_proj_bias.shape, 0.1))
            a.out_proj.weight.copy_(rn(a.out_proj.weight.shape, 0.125))
            a.out_proj.bias.copy_(rn(a.out_proj.bias.shape, 0.1))
            for ln in (b.attn.norm, b.norm):
                ln.weight.copy_(1 + rn(ln.weight.shape, 0.25))
                ln.bias.copy_(rn(ln.bias.shape, 0.25))
            b.ff[0].weight.copy_(rn(b.ff[0].weight.shape, 0.225))
            b.ff[0].bias.copy_(rn(b.ff[0].bias.shape, 0.3))
            b.ff[3].weight.copy_(rn(b.ff[3].weight.shape, 0.25))
            b.ff[3].bias.copy_(rn(b.ff[3].bias.shape, 0.2))
        model.head.weight.copy_(rn(model.head.weight.shape, 0.15))
        model.head.bias.copy_(rn(model.head.bias.shape, 0.1))


def main():
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    model = ref.SpikingStudentLM(50257, 128, 2, 4)
    init(model, seed)
    torch.save(model.state_dict(), os.path.join(out, "student.pt"))
    with open(os.path.join(out, "metadata.json"), "w") as f:
        json.dump(ref.metadata_for(model), f, indent=2)
    print("wrote", out, "(%d parameters)" % sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
