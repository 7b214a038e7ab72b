#!/usr/bin/python3
"""Teacher-forced simulation of smartglass-edge's int8 Whisper in PyTorch, on the model
bench/whisper_bench.sh uses (py/gen_whisper_base.py): the decoder runs once over the f32
reference's tokens and the logits of every step are compared with f32's, for int8 linear layers
(per output row weights, per row activations, round half to even, as nn/linear.h) combined with
each way of holding the cross-attention keys/values:
  f32     as f32
  f16     rounded to f16
  w8      int8 per key and per value channel, queries and softmax weights f32 (what nn/kv.h does)
  q8      the same int8 keys/values, but queries and softmax weights also quantised per row
The tied logits product stays f32 here (ours is int8 too). Prints the logits' RMS error relative
to their standard deviation, top-1 agreement and the mean |log-prob change| of the reference token.
Usage: bench_whisper_int8_sim.py [MODEL_DIR]"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_mel_fixture as melref  # noqa: E402
import whisper_reference as ref  # noqa: E402
from safetensors_io import load_safetensors  # noqa: E402

MODE = {"lin": False, "kv": "f32"}


def q8rows(x):
    """symmetric per row of the last dimension, ties to even: (integers, scales)"""
    mx = x.abs().amax(-1, keepdim=True)
    inv = torch.where(mx > 0, 127 / mx, torch.zeros_like(mx))
    return torch.round((x * inv).clamp(-127, 127)), mx / 127


def lin(layer, x):
    if not MODE["lin"]:
        return layer(x)
    wq, ws = q8rows(layer.weight)
    xq, xs = q8rows(x)
    y = (xq @ wq.T) * xs * ws.T
    return y + layer.bias if layer.bias is not None else y


def attention(a, x, kv, causal, cross):
    n, d = x.shape
    m, hd = kv.shape[0], d // a.heads
    q = lin(a.q_proj, x).view(n, a.heads, hd).transpose(0, 1)
    k = lin(a.k_proj, kv).view(m, a.heads, hd).transpose(0, 1)
    v = lin(a.v_proj, kv).view(m, a.heads, hd).transpose(0, 1)
    mode = MODE["kv"] if cross else "f32"
    if mode == "f16":
        k, v = k.half().float(), v.half().float()
    if mode in ("w8", "q8"):
        kq, ks = q8rows(k)
        vq, vs = q8rows(v.transpose(1, 2))  # per value channel over the positions
        k, v = kq * ks, (vq * vs).transpose(1, 2)
    if mode == "q8":
        qq, qs = q8rows(q)
        q = qq * qs
    s = (q @ k.transpose(1, 2)) * hd ** -0.5
    if causal:
        s = s + torch.full((n, m), float("-inf")).triu(1 + m - n)
    w = torch.softmax(s, -1)
    if mode == "q8":
        wq, wsc = q8rows(w)
        w = wq * wsc
    return lin(a.out_proj, (w @ v).transpose(0, 1).reshape(n, d))


def block(self, x, xa=None, causal=False):
    h = self.self_attn_layer_norm(x)
    x = x + attention(self.self_attn, h, h, causal, False)
    if xa is not None:
        x = x + attention(self.encoder_attn, self.encoder_attn_layer_norm(x), xa, False, True)
    return x + lin(self.fc2, F.gelu(lin(self.fc1, self.final_layer_norm(x))))


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/sg-whisper-base-random"
    torch.set_num_threads(2)
    ref.Block.forward = block
    cfg = json.load(open(os.path.join(d, "config.json")))
    model = ref.Whisper(cfg)
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32))
                           for k, v in load_safetensors(os.path.join(d, "model.safetensors")).items()})
    model.eval()
    with np.load(os.path.join(HERE, "..", "..", "shared", "tokenizers", "whisper_mel_filters.npz")) as f:
        filters = f["mel_80"]
    mel = torch.as_tensor(melref.log_mel_spectrogram(melref.pad_or_trim(melref.load_jfk(), 480000), filters))
    tokens = json.load(open(os.path.join(d, "bench_info.json")))["reference_tokens_f32"]
    seq = torch.tensor([cfg["decoder_start_token_id"], cfg["no_timestamps_token_id"]] + tokens)
    sp = ref.special_ids(cfg)
    suppress = sorted(set(cfg["suppress_tokens"]) | {sp[k] for k in ("transcribe", "translate", "sot",
                                                                     "sot_prev", "sot_lm", "no_speech")})

    def logits():
        with torch.no_grad():
            lg = model.model.decoder(seq, model.model.encoder(mel))[1:].clone()
        lg[:, suppress] = float("-inf")
        lg[0, cfg["begin_suppress_tokens"]] = float("-inf")
        return lg

    base = logits()
    fin = torch.isfinite(base)
    top2 = torch.topk(base, 2, -1).values
    print("f32 logits: std %.2f; top-2 margin per step: min %.3f, median %.3f" % (
        float(base[fin].std()), float((top2[:, 0] - top2[:, 1]).min()), float((top2[:, 0] - top2[:, 1]).median())))
    idx = torch.arange(len(tokens))
    ref_lp = torch.log_softmax(base, -1)[idx, torch.tensor(tokens)]
    for kv in ("f32", "f16", "w8", "q8"):
        MODE.update(lin=True, kv=kv)
        lg = logits()
        err = float((lg - base)[fin].pow(2).mean().sqrt() / base[fin].std())
        agree = int((lg.argmax(-1) == base.argmax(-1)).sum())
        dlp = float((torch.log_softmax(lg, -1)[idx, torch.tensor(tokens)] - ref_lp).abs().mean())
        print("int8 linears, cross keys/values %-3s: logits RMS error %.4f of their std, top-1 %d/%d, "
              "mean |dlogprob| %.4f" % (kv, err, agree, base.shape[0], dlp))


if __name__ == "__main__":
    main()
