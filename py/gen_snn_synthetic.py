#!/usr/bin/env python3
"""Writes a random SNN student of the reference's full size (MODELS.md section 3: vocab 50257,
dim 128, 2 blocks, 4 heads: 13.2 M parameters) as OUT/model.safetensors + metadata.json, with
the GPT-2 tokenizer copied beside it, for memory and file-size measurements of the on-device
model (scripts/measure-local-llm.sh). Standard library only; the weights are noise."""
import array, json, os, random, shutil, struct, sys

out = sys.argv[1]
tok = sys.argv[2] if len(sys.argv) > 2 else "../shared/tokenizers/gpt2.tiktoken"
V, D, DEPTH, H = 50257, 128, 2, 4
rng = random.Random(16)
shapes = [("embed.weight", [V, D])]
for i in range(DEPTH):
    p = f"blocks.{i}."
    shapes += [(p + "attn.attn.in_proj_weight", [3 * D, D]), (p + "attn.attn.in_proj_bias", [3 * D]),
               (p + "attn.attn.out_proj.weight", [D, D]), (p + "attn.attn.out_proj.bias", [D]),
               (p + "attn.norm.weight", [D]), (p + "attn.norm.bias", [D]),
               (p + "ff.0.weight", [2 * D, D]), (p + "ff.0.bias", [2 * D]),
               (p + "ff.3.weight", [D, 2 * D]), (p + "ff.3.bias", [D]),
               (p + "norm.weight", [D]), (p + "norm.bias", [D])]
shapes += [("head.weight", [V, D]), ("head.bias", [V])]
header, blobs, off, params = {"__metadata__": {"format": "pt"}}, [], 0, 0
for name, shape in shapes:
    n = 1
    for s in shape:
        n *= s
    params += n
    if name.endswith("norm.weight"):
        a = array.array("f", [1.0]) * n
    else:
        a = array.array("f", (rng.uniform(-0.2, 0.2) for _ in range(n)))
    b = a.tobytes()
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
    off += len(b)
    blobs.append(b)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for b in blobs:
        f.write(b)
meta = {"model_type": "SpikingStudentLM", "vocab_size": V, "student_params": params,
        "architecture": {"dim": D, "depth": DEPTH, "num_heads": H},
        "snn_config": {"num_timesteps": 4, "surrogate_type": "sigmoid", "spike_threshold": 1.0}}
with open(os.path.join(out, "metadata.json"), "w") as f:
    json.dump(meta, f)
shutil.copy(tok, os.path.join(out, "gpt2.tiktoken"))
print(f"{out}: {params} parameters")
