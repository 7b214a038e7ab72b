"""Our own PyTorch reference of the SNN student (SmartGlass-AI-Agent's SpikingStudentLM, as
../shared/MODELS.md section 3 states it), for fixtures and benchmarks; development time only
(Debian python3-torch), CI runs against committed outputs.

The module tree is the training script's (scripts/train_snn_student.py), so state_dict() has
exactly its keys: embed, blocks.N.attn.{attn (nn.MultiheadAttention), norm}, blocks.N.ff
(Sequential: 0 Linear, 1 GELU, 2 spike, 3 Linear), blocks.N.norm, head. A spike is the hard
threshold (x > threshold) as exact 0/1; upstream's straight-through form
out + g(x - thr) - g(x - thr).detach() has the same value up to one float rounding of the 1s,
which exact=False reproduces for comparison. Also: greedy generation exactly as upstream's
SNNLLMBackend.generate (re-run the whole sequence each step, argmax of the last position, exactly
max_tokens tokens), a small GPT-2 byte-level BPE (vocab.json + merges.txt or *.tiktoken), and
readers/writers of the model directory (student.pt or model.safetensors + metadata.json).
"""
import base64
import json
import math
import os
import struct

import numpy as np
import regex
import torch
import torch.nn as nn

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOT = "<|endoftext|>"


# ------------------------------------------------------------------------------------------------
# model

class SpikingActivation(nn.Module):
    def __init__(self, threshold=1.0, surrogate_type="sigmoid", exact=True):
        super().__init__()
        self.threshold = threshold
        self.surrogate_type = surrogate_type
        self.exact = exact
        self.record = None  # list to append (input) tensors to, for statistics

    def _surrogate(self, x):
        if self.surrogate_type == "fast_sigmoid":
            return 1 / (1 + torch.abs(x))
        if self.surrogate_type == "triangular":
            return torch.clamp(1 - torch.abs(x), min=0)
        if self.surrogate_type == "arctan":
            return 1 / (1 + (math.pi * x / 2) ** 2)
        return torch.sigmoid(x)

    def forward(self, x):
        if self.record is not None:
            self.record.append(x.detach().clone())
        out = (x > self.threshold).to(x.dtype)  # .float() upstream; the same in float32
        if self.exact:
            return out
        shifted = x - self.threshold
        return out + self._surrogate(shifted) - self._surrogate(shifted).detach()


class SpikingSelfAttention(nn.Module):
    def __init__(self, dim, num_heads, spike):
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dim=dim, num_heads=num_heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.spike = spike

    def forward(self, x):
        attn_out, _ = self.attn(x, x, x)  # no mask: bidirectional
        x = self.norm(x + attn_out)
        return self.spike(x)


class SpikingTransformerBlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, make_spike):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.attn = SpikingSelfAttention(dim, num_heads, make_spike())
        self.ff = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), make_spike(), nn.Linear(hidden, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.attn(x)
        return self.norm(x + self.ff(x))


class SpikingStudentLM(nn.Module):
    def __init__(self, vocab_size, dim=128, depth=2, num_heads=4, threshold=1.0,
                 surrogate_type="sigmoid", exact=True):
        super().__init__()

        def make_spike():
            return SpikingActivation(threshold, surrogate_type, exact)

        self.embed = nn.Embedding(vocab_size, dim)
        self.blocks = nn.ModuleList([SpikingTransformerBlock(dim, num_heads, 2.0, make_spike)
                                     for _ in range(depth)])
        self.head = nn.Linear(dim, vocab_size)
        self.dim, self.depth, self.num_heads, self.vocab_size = dim, depth, num_heads, vocab_size

    def forward(self, input_ids):
        x = self.embed(input_ids)
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def spikes(self):
        return [m for m in self.modules() if isinstance(m, SpikingActivation)]


@torch.no_grad()
def init_random(model, seed, width_scale=1.0):
    """Random weights scaled so that spikes fire in a healthy fraction: the scales suit width 32
    (the test fixtures, width_scale 1); a wider model passes sqrt(32 / width) (0.5 for 128) for
    the projections, which keeps their outputs at the same size. Shared by gen_snn_fixture.py and
    gen_snn_real.py (the draws are in the same order for any scale)."""
    g = torch.Generator().manual_seed(seed)
    w = width_scale

    def rn(shape, s):
        return s * torch.randn(shape, generator=g)

    with torch.no_grad():
        model.embed.weight.copy_(rn(model.embed.weight.shape, 1.0))
        for b in model.blocks:
            a = b.attn.attn
            a.in_proj_weight.copy_(rn(a.in_proj_weight.shape, 0.35 * w))
            a.in_proj_bias.copy_(rn(a.in_proj_bias.shape, 0.1))
            a.out_proj.weight.copy_(rn(a.out_proj.weight.shape, 0.25 * w))
            a.out_proj.bias.copy_(rn(a.out_proj.bias.shape, 0.1))
            for ln in (b.attn.norm, b.norm):
                ln.weight.copy_(1 + rn(ln.weight.shape, 0.25))
                ln.bias.copy_(rn(ln.bias.shape, 0.25))
            b.ff[0].weight.copy_(rn(b.ff[0].weight.shape, 0.45 * w))
            b.ff[0].bias.copy_(rn(b.ff[0].bias.shape, 0.3))
            b.ff[3].weight.copy_(rn(b.ff[3].weight.shape, 0.5 * w))
            b.ff[3].bias.copy_(rn(b.ff[3].bias.shape, 0.2))
        model.head.weight.copy_(rn(model.head.weight.shape, 0.3 * w))
        model.head.bias.copy_(rn(model.head.bias.shape, 0.1))


def greedy(model, prompt_ids, max_tokens, eos=None, logits_out=None):
    """Upstream's loop: the whole sequence re-run every step, argmax of the last position, exactly
    max_tokens tokens (or until eos when given, which is not emitted). logits_out collects the
    last position's logits of each step."""
    ids = list(prompt_ids)
    out = []
    if not ids:
        return out
    for _ in range(max_tokens):
        logits = model(torch.tensor([ids]))[:, -1, :]
        if logits_out is not None:
            logits_out.append(logits[0].clone())
        t = int(torch.argmax(logits, dim=-1)[0])
        if eos is not None and t == eos:
            break
        ids.append(t)
        out.append(t)
    return out


def metadata_for(model, threshold=1.0, surrogate="sigmoid", timesteps=4, extra=None):
    """metadata.json in the training script's format (its keys; values of a fixture run)."""
    params = sum(p.numel() for p in model.parameters())
    md = {
        "model_type": "SpikingStudentLM",
        "architecture_version": "v1.0",
        "vocab_size": model.vocab_size,
        "student_params": params,
        "architecture": {"dim": model.dim, "depth": model.depth, "num_heads": model.num_heads},
        "snn_config": {"num_timesteps": timesteps, "surrogate_type": surrogate, "spike_threshold": threshold},
        "training_config": {"num_steps": 0, "batch_size": 2, "grad_accum_steps": 4,
                            "teacher_model": "sshleifer/tiny-gpt2", "lr": 0.0001, "scheduler": "constant",
                            "warmup_steps": 0, "temperature": 1.0, "dataset": "synthetic", "max_length": 64},
        "training_results": {"steps": 0, "avg_loss": 0.0},
        "metadata": {"timestamp": "1970-01-01T00:00:00Z", "git_commit": None},
    }
    if extra:
        md.update(extra)
    return md


def load_model(d, exact=True):
    """A model directory: metadata.json + student.pt (preferred) or model.safetensors."""
    md = json.load(open(os.path.join(d, "metadata.json")))
    arch = md.get("architecture", {})
    snn = md.get("snn_config", {})
    if os.path.exists(os.path.join(d, "student.pt")):
        sd = torch.load(os.path.join(d, "student.pt"), map_location="cpu")
    else:
        sd = {k: torch.from_numpy(v.astype(np.float32)) for k, v in load_safetensors(os.path.join(d, "model.safetensors")).items()}
    vocab = md.get("vocab_size", sd["embed.weight"].shape[0])
    m = SpikingStudentLM(vocab, arch.get("dim", 128), arch.get("depth", 2), arch.get("num_heads", 4),
                         float(snn.get("spike_threshold", 1.0)), snn.get("surrogate_type", "sigmoid"), exact)
    m.load_state_dict({k: v.float() for k, v in sd.items()})
    m.eval()
    return m


# ------------------------------------------------------------------------------------------------
# safetensors

from safetensors_io import load_safetensors, save_safetensors  # noqa: E402,F401


# ------------------------------------------------------------------------------------------------
# GPT-2 byte-level BPE (openai/gpt-2 encoder.py's algorithm)

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def read_tiktoken(path):
    """[(token bytes, rank)] of a *.tiktoken file (base64 bytes, space, rank per line)."""
    out = []
    for line in open(path, "rb"):
        line = line.strip()
        if line:
            b64, rank = line.split()
            out.append((base64.b64decode(b64), int(rank)))
    return out


def merges_from_ranks(ranks):
    """Recovers the merge list of a ranks table: each token of rank r >= 256 is the merge of the two
    parts BPE with ranks < r leaves of its bytes (as tiktoken's data_gym conversion does)."""
    table = {b: r for b, r in ranks}
    merges = []
    for tok, r in sorted(ranks, key=lambda x: x[1]):
        if len(tok) < 2:
            continue
        parts = [bytes([c]) for c in tok]
        while len(parts) > 2:
            best, at = None, -1
            for i in range(len(parts) - 1):
                rr = table.get(parts[i] + parts[i + 1])
                if rr is not None and rr < r and (best is None or rr < best):
                    best, at = rr, i
            if at < 0:
                break
            parts[at:at + 2] = [parts[at] + parts[at + 1]]
        assert len(parts) == 2, tok
        merges.append((parts[0], parts[1], r))
    return merges


class GPT2Tokenizer:
    def __init__(self, vocab_json, merges_txt):
        self.encoder = json.load(open(vocab_json, encoding="utf-8"))
        lines = open(merges_txt, encoding="utf-8").read().split("\n")
        pairs = [tuple(l.split(" ")) for l in lines if l and not l.startswith("#version")]
        self._setup(pairs)

    @classmethod
    def from_tiktoken(cls, path):
        """GPT-2's files from a ranks file (merges recovered as write_reduced_gpt2 does)."""
        t = cls.__new__(cls)
        ranks = read_tiktoken(path)
        b2u = bytes_to_unicode()
        uni = lambda b: "".join(b2u[c] for c in b)  # noqa: E731
        t.encoder = {uni(b): r for b, r in ranks}
        t.encoder[EOT] = len(ranks)
        t._setup([(uni(a), uni(b)) for a, b, _ in merges_from_ranks(ranks)])
        return t

    def _setup(self, pairs):
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.ranks = {p: i for i, p in enumerate(pairs)}
        self.b2u = bytes_to_unicode()
        self.u2b = {v: k for k, v in self.b2u.items()}
        self.pat = regex.compile(GPT2_PATTERN)
        self.eot = self.encoder.get(EOT)

    def bpe(self, token):
        word = list(token)
        while len(word) > 1:
            best, at = None, -1
            for i in range(len(word) - 1):
                r = self.ranks.get((word[i], word[i + 1]))
                if r is not None and (best is None or r < best):
                    best, at = r, i
            if at < 0:
                break
            a, b = word[at], word[at + 1]
            new, i = [], 0
            while i < len(word):  # merge every occurrence of the pair, left to right
                if i < len(word) - 1 and word[i] == a and word[i + 1] == b:
                    new.append(a + b)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = new
        return word

    def encode(self, text):
        ids = []
        for piece in self.pat.findall(text):
            u = "".join(self.b2u[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(u))
        return ids

    def decode(self, ids):
        s = "".join(self.decoder[i] for i in ids)
        return bytes(self.u2b[c] for c in s).decode("utf-8", errors="replace")


def write_reduced_gpt2(tiktoken_path, n_ranks, out_dir):
    """vocab.json + merges.txt of the first n_ranks GPT-2 ranks plus <|endoftext|> as id n_ranks:
    a valid, smaller GPT-2 tokenizer (any text still encodes, into shorter pieces)."""
    ranks = [(b, r) for b, r in read_tiktoken(tiktoken_path) if r < n_ranks]
    b2u = bytes_to_unicode()
    uni = lambda b: "".join(b2u[c] for c in b)  # noqa: E731
    vocab = {uni(b): r for b, r in ranks}
    vocab[EOT] = n_ranks
    merges = merges_from_ranks(ranks)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b, _ in merges:
            f.write(uni(a) + " " + uni(b) + "\n")
