"""Our own PyTorch reference of CLIP (ViT image tower + causal text tower), written from the public
definitions (transformers' modeling_clip.py, openai/CLIP model.py) for tests and benchmarks. It
loads and saves the exact Hugging Face layout: config.json + model.safetensors with the real tensor
names. Used at development time only (Debian python3-torch); CI runs against committed outputs.
"""
import json
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import safetensors_io as st_io

TEXT_DEFAULTS = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                     num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu",
                     layer_norm_eps=1e-5, eos_token_id=49407)
VISION_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                       num_attention_heads=12, image_size=224, patch_size=32, num_channels=3,
                       hidden_act="quick_gelu", layer_norm_eps=1e-5)


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


def act_fn(name):
    if name == "quick_gelu":
        return quick_gelu
    if name in ("gelu", "gelu_python"):
        return lambda x: F.gelu(x)
    raise ValueError("unsupported activation " + name)


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, causal):
        s, d = x.shape
        q = self.q_proj(x) * self.hd ** -0.5
        k, v = self.k_proj(x), self.v_proj(x)
        q, k, v = (t.view(s, self.heads, self.hd).transpose(0, 1) for t in (q, k, v))
        w = q @ k.transpose(1, 2)
        if causal:
            w = w + torch.full((s, s), float("-inf")).triu(1)
        a = torch.softmax(w, dim=-1) @ v
        return self.out_proj(a.transpose(0, 1).reshape(s, d))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.self_attn = Attention(d, c["num_attention_heads"])
        self.layer_norm1 = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.layer_norm2 = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(d, c["intermediate_size"])
        self.mlp.fc2 = nn.Linear(c["intermediate_size"], d)
        self.act = act_fn(c["hidden_act"])

    def forward(self, x, causal):
        x = x + self.self_attn(self.layer_norm1(x), causal)
        return x + self.mlp.fc2(self.act(self.mlp.fc1(self.layer_norm2(x))))


class CLIP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        tc = dict(TEXT_DEFAULTS, **{k: v for k, v in config.get("text_config", {}).items() if v is not None})
        vc = dict(VISION_DEFAULTS, **{k: v for k, v in config.get("vision_config", {}).items() if v is not None})
        self.tc, self.vc = tc, vc
        proj = config.get("projection_dim", 512)
        dv, dt = vc["hidden_size"], tc["hidden_size"]
        p = vc["patch_size"]
        npos = (vc["image_size"] // p) ** 2 + 1
        self.v_class = nn.Parameter(torch.zeros(dv))
        self.v_patch = nn.Conv2d(vc["num_channels"], dv, p, p, bias=False)
        self.v_pos = nn.Embedding(npos, dv)
        self.v_pre = nn.LayerNorm(dv, eps=vc["layer_norm_eps"])
        self.v_layers = nn.ModuleList(Layer(vc) for _ in range(vc["num_hidden_layers"]))
        self.v_post = nn.LayerNorm(dv, eps=vc["layer_norm_eps"])
        self.visual_projection = nn.Linear(dv, proj, bias=False)
        self.t_tok = nn.Embedding(tc["vocab_size"], dt)
        self.t_pos = nn.Embedding(tc["max_position_embeddings"], dt)
        self.t_layers = nn.ModuleList(Layer(tc) for _ in range(tc["num_hidden_layers"]))
        self.t_final = nn.LayerNorm(dt, eps=tc["layer_norm_eps"])
        self.text_projection = nn.Linear(dt, proj, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(config.get("logit_scale_init_value", 2.6592)))

    def image_features(self, pixels):  # pixels [3, S, S] normalised
        x = self.v_patch(pixels.unsqueeze(0)).flatten(2)[0].T  # [np, d]
        x = torch.cat([self.v_class[None], x]) + self.v_pos.weight
        x = self.v_pre(x)
        for layer in self.v_layers:
            x = layer(x, False)
        return self.visual_projection(self.v_post(x[:1]))[0]

    def text_features(self, ids):  # list of ids incl. start and end tokens
        t = torch.tensor(ids)
        x = self.t_tok(t) + self.t_pos.weight[: len(ids)]
        for layer in self.t_layers:
            x = layer(x, True)
        x = self.t_final(x)
        e = int(torch.argmax(t))
        return self.text_projection(x[e:e + 1])[0]

    # ---- Hugging Face names ----
    def hf_state(self):
        sd = {
            "vision_model.embeddings.class_embedding": self.v_class,
            "vision_model.embeddings.patch_embedding.weight": self.v_patch.weight,
            "vision_model.embeddings.position_embedding.weight": self.v_pos.weight,
            "vision_model.pre_layrnorm.weight": self.v_pre.weight,
            "vision_model.pre_layrnorm.bias": self.v_pre.bias,
            "vision_model.post_layernorm.weight": self.v_post.weight,
            "vision_model.post_layernorm.bias": self.v_post.bias,
            "visual_projection.weight": self.visual_projection.weight,
            "text_model.embeddings.token_embedding.weight": self.t_tok.weight,
            "text_model.embeddings.position_embedding.weight": self.t_pos.weight,
            "text_model.final_layer_norm.weight": self.t_final.weight,
            "text_model.final_layer_norm.bias": self.t_final.bias,
            "text_projection.weight": self.text_projection.weight,
            "logit_scale": self.logit_scale,
        }
        for tower, layers in (("vision_model", self.v_layers), ("text_model", self.t_layers)):
            for i, l in enumerate(layers):
                pre = "%s.encoder.layers.%d." % (tower, i)
                for name, p in l.named_parameters():
                    sd[pre + name] = p
        return {k: v.detach() for k, v in sd.items()}

    def load_hf_state(self, sd):
        own = self.hf_state()
        with torch.no_grad():
            for k, v in own.items():
                v.copy_(torch.as_tensor(sd[k]).to(torch.float32).reshape(v.shape))


# ---- safetensors (py/safetensors_io.py) ----
save_safetensors = st_io.save_safetensors


def load_safetensors(path):
    """The file's tensors as torch tensors (floats as float32)."""
    return {k: torch.from_numpy(v.astype(np.float32) if v.dtype != np.int64 else v.copy())
            for k, v in st_io.load_safetensors(path).items()}


# ---- preprocessing as CLIPImageProcessor does it, with PIL ----
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def preprocess(img, size=224, crop=224):
    from PIL import Image
    img = img.convert("RGB")
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    img = img.resize((nw, nh), Image.BICUBIC)
    a = np.asarray(img)
    top, left = (nh - crop) // 2, (nw - crop) // 2
    a = a[top:top + crop, left:left + crop]
    x = (a * (1 / 255)).astype(np.float32)  # numpy promotes to float64, HF casts back
    x = (x - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
