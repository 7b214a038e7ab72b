#!/usr/bin/python3
"""Writes tests/fixtures/clip_tiny: a tiny random CLIP in the exact Hugging Face layout
(config.json, model.safetensors with the real tensor names, vocab.json, merges.txt,
preprocessor_config.json) plus expected.json with reference outputs of our PyTorch CLIP
(py/clip_reference.py). Run from the project root with Debian's python3-torch and
python3-pil:  /usr/bin/python3 py/gen_clip_fixture.py
The token embedding is stored as F16 (as many real checkpoints are) to keep the file small; the
reference runs on the same F16-rounded values.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import clip_reference as ref  # noqa: E402
from clip_tokenizer_reference import Tokenizer  # noqa: E402  (py/clip_tokenizer_reference.py)

OUT = "tests/fixtures/clip_tiny"
TOK = "tests/fixtures/clip_tokenizer"
PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "motorcycle_left", "motorcycle_right", "rocket", "text"]
SCENES = ["indoor environment", "outdoor environment", "street scene", "nature scene", "office space",
          "home interior", "restaurant or cafe", "store or shopping area", "transportation (car, bus, train)",
          "people gathering"]
TEXTS = ["a photo of a cat", "a photo of a person", "", "What am I looking at?", "don't touch the 3.14 café!!",
         "a photo of a traffic light", "street scene", "日本語のテキスト", "x" * 300]

CONFIG = {
    "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 32,
    "logit_scale_init_value": 2.6592, "initializer_factor": 1.0, "torch_dtype": "float32",
    "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4,
                    "num_hidden_layers": 2, "max_position_embeddings": 77, "vocab_size": 49408,
                    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "bos_token_id": 49406,
                    "eos_token_id": 49407, "pad_token_id": 1, "projection_dim": 32, "model_type": "clip_text_model"},
    "vision_config": {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
                      "num_hidden_layers": 2, "image_size": 224, "patch_size": 32, "num_channels": 3,
                      "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "projection_dim": 32,
                      "model_type": "clip_vision_model"},
}
PREPROCESSOR = {"crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
                "do_normalize": True, "do_rescale": True, "do_resize": True,
                "image_mean": list(ref.MEAN), "image_std": list(ref.STD),
                "image_processor_type": "CLIPImageProcessor", "resample": 3, "rescale_factor": 1 / 255,
                "size": {"shortest_edge": 224}}


def init(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                continue
            if p.dim() == 1 and ("norm" in name or "_pre" in name or "_post" in name or "_final" in name) and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.08 * torch.randn(p.shape, generator=g))
        model.t_tok.weight.copy_(model.t_tok.weight.half().float())  # stored as F16


def synthetic(i):
    y, x = np.mgrid[0:224, 0:224].astype(np.float32)
    rng = np.random.default_rng(i)
    r = 127 + 100 * np.sin(x / (9 + 5 * i)) * np.cos(y / 13)
    gch = 255 * (x + y) / 446
    b = 60 + 40 * rng.random((224, 224))
    return Image.fromarray(np.clip(np.stack([r, gch, b], -1), 0, 255).astype(np.uint8))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    model = ref.CLIP(CONFIG)
    init(model, 1234)
    model.eval()
    sd = model.hf_state()
    tensors = {}
    for k, v in sd.items():
        tensors[k] = v.half() if k == "text_model.embeddings.token_embedding.weight" else v.float()
    npos = (224 // 32) ** 2 + 1
    tensors["vision_model.embeddings.position_ids"] = torch.arange(npos, dtype=torch.int64)[None]
    tensors["text_model.embeddings.position_ids"] = torch.arange(77, dtype=torch.int64)[None]
    ref.save_safetensors(OUT + "/model.safetensors", tensors, {"format": "pt"})
    with open(OUT + "/config.json", "w") as f:
        json.dump(CONFIG, f, indent=2)
    with open(OUT + "/preprocessor_config.json", "w") as f:
        json.dump(PREPROCESSOR, f, indent=2)
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(TOK, name), os.path.join(OUT, name))

    # round trip through the file: the reference runs on exactly what the C code loads
    model2 = ref.CLIP(CONFIG)
    model2.load_hf_state(ref.load_safetensors(OUT + "/model.safetensors"))
    model2.eval()
    tok = Tokenizer(TOK)
    exp = {"config": "config.json", "images": [], "texts": [], "classify": []}
    with torch.no_grad():
        for i in range(2):
            img = synthetic(i)
            path = "synthetic_%d.png" % i
            img.save(os.path.join(OUT, path))
            emb = model2.image_features(ref.preprocess(img))
            exp["images"].append({"image": OUT + "/" + path, "exact": True, "embedding": emb.tolist()})
        for p in PHOTOS:
            path = "../shared/data/images/%s.jpg" % p
            emb = model2.image_features(ref.preprocess(Image.open(path)))
            exp["images"].append({"image": path, "exact": False, "embedding": emb.tolist()})
        for t in TEXTS:
            ids = tok.tokenize(t)
            emb = model2.text_features(ids)
            exp["texts"].append({"text": t, "ids": ids, "embedding": emb.tolist()})
        scale = float(model2.logit_scale.exp())
        for p in ("chelsea", "rocket"):
            path = "../shared/data/images/%s.jpg" % p
            im = model2.image_features(ref.preprocess(Image.open(path)))
            im = im / im.norm()
            te = torch.stack([model2.text_features(tok.tokenize(s)) for s in SCENES])
            te = te / te.norm(dim=-1, keepdim=True)
            probs = torch.softmax(scale * (te @ im), dim=0)
            exp["classify"].append({"image": path, "labels": SCENES, "probs": probs.tolist()})
    with open(OUT + "/expected.json", "w") as f:
        json.dump(exp, f)
    print("wrote", OUT, "files:", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
