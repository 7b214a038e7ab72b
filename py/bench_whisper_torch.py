#!/usr/bin/python3
"""PyTorch side of bench/whisper_bench.sh: our PyTorch Whisper (py/whisper_reference.py) on the
same weights, fp32 eager and torch.quantization.quantize_dynamic int8 (nn.Linear; the tied logits
product stays fp32, as in openai/whisper), at the given thread count. Decoding uses a key/value
cache as openai/whisper's does (self-attention keys/values appended per token, cross-attention
keys/values computed once per window), with openai's greedy rules (SuppressBlanks, suppress_tokens
and the special tokens, no timestamps). Timed, medians of RUNS after one warm-up:
  encode_30s_ms      the encoder on jfk.wav's log-mel padded to 3000 frames
  encode_3s_ms       the encoder on 300 frames (3 s, reduced context)
  decode_ms_per_token greedy decoding on the 30 s window, capped at MAX_TOKENS, per step
  end_to_end_ms      log-mel (torch.stft, whisper's code) + encoder + decoding of the clip
  utterance_3s_vad_ms Silero VAD (our PyTorch graph, py/silero_reference.py) on the first 3 s,
                     then log-mel, encoder (reduced context) and decoding (UTT_TOKENS) of the speech
and, when THREADS > 1, decode_ms_per_token_1thread: on this 2-vCPU machine PyTorch's OpenMP hand-off
costs more than the work of a one-token step's small ops (GELU on 2048 values measured 7.7 ms with
2 threads), so one thread decodes faster; both are reported.
Prints one JSON line per precision (with the end-to-end tokens); OUT.json gets them all.
Usage: bench_whisper_torch.py MODEL_DIR THREADS RUNS [MAX_TOKENS] [UTT_TOKENS] [OUT.json]"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_mel_fixture as melref  # noqa: E402
import silero_reference as silero  # noqa: E402
import whisper_reference as ref  # noqa: E402
from safetensors_io import load_safetensors  # noqa: E402

SHARED = os.path.join(HERE, "..", "..", "shared")


class CachedDecoder:
    """One decoder step at a time over cached keys/values (openai/whisper's kv_cache hooks)."""

    def __init__(self, model):
        self.dec = model.model.decoder
        self.cfg = model.config

    def start(self, xa):
        # cross-attention keys/values of every layer, once per window
        self.cross = [(b.encoder_attn.k_proj(xa), b.encoder_attn.v_proj(xa)) for b in self.dec.layers]
        self.keys = [None] * len(self.dec.layers)
        self.values = [None] * len(self.dec.layers)
        self.offset = 0

    @staticmethod
    def attend(a, q, k, v, causal_from):
        n, d = q.shape
        m = k.shape[0]
        hd = d // a.heads
        q = q.view(n, a.heads, hd).transpose(0, 1)
        k = k.view(m, a.heads, hd).transpose(0, 1)
        v = v.view(m, a.heads, hd).transpose(0, 1)
        s = (q @ k.transpose(1, 2)) * hd ** -0.5
        if causal_from is not None and n > 1:
            s = s + torch.full((n, m), float("-inf")).triu(1 + causal_from)
        return a.out_proj((torch.softmax(s, -1) @ v).transpose(0, 1).reshape(n, d))

    def step(self, tokens):
        """Logits [n, vocab] of the new tokens."""
        t = torch.tensor(tokens)
        x = self.dec.embed_tokens(t) + self.dec.embed_positions.weight[self.offset:self.offset + len(tokens)]
        for i, b in enumerate(self.dec.layers):
            h = b.self_attn_layer_norm(x)
            a = b.self_attn
            k, v = a.k_proj(h), a.v_proj(h)
            self.keys[i] = k if self.keys[i] is None else torch.cat([self.keys[i], k])
            self.values[i] = v if self.values[i] is None else torch.cat([self.values[i], v])
            x = x + self.attend(a, a.q_proj(h), self.keys[i], self.values[i], self.offset)
            h = b.encoder_attn_layer_norm(x)
            xk, xv = self.cross[i]
            x = x + self.attend(b.encoder_attn, b.encoder_attn.q_proj(h), xk, xv, None)
            x = x + b.fc2(F.gelu(b.fc1(b.final_layer_norm(x))))
        self.offset += len(tokens)
        return self.dec.layer_norm(x) @ self.dec.embed_tokens.weight.T


@torch.no_grad()
def greedy(model, dec, xa, sample_len):
    """openai/whisper greedy decoding (.en prompt, no timestamps) with the cached decoder."""
    c = model.config
    sp = ref.special_ids(c)
    suppress = sorted(set(c["suppress_tokens"]) | {sp["transcribe"], sp["translate"], sp["sot"],
                                                    sp["sot_prev"], sp["sot_lm"], sp["no_speech"]})
    dec.start(xa)
    tokens = [sp["sot"], sp["no_timestamps"]]
    logits = dec.step(tokens)
    no_speech = float(torch.softmax(logits[0], -1)[sp["no_speech"]])
    sample_begin, out, steps = len(tokens), [], 0
    while steps < sample_len:
        lg = logits[-1].clone()
        if len(tokens) == sample_begin:
            lg[c["begin_suppress_tokens"]] = float("-inf")
        lg[suppress] = float("-inf")
        nxt = int(lg.argmax())
        steps += 1
        tokens.append(nxt)
        if nxt == sp["eot"]:
            break
        out.append(nxt)
        logits = dec.step([nxt])
    return out, steps, no_speech


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])


def timed(fn, runs):
    fn()
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t.append((time.perf_counter() - t0) * 1000)
    return median(t)


def main():
    d, threads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    max_tokens = int(sys.argv[4]) if len(sys.argv) > 4 else 28
    utt_tokens = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    out_path = sys.argv[6] if len(sys.argv) > 6 else None
    torch.set_num_threads(threads)
    cfg = json.load(open(os.path.join(d, "config.json")))
    t0 = time.perf_counter()
    model = ref.Whisper(cfg)
    sd = {k: torch.from_numpy(v.astype(np.float32)) for k, v in
          load_safetensors(os.path.join(d, "model.safetensors")).items()}
    model.load_state_dict(sd)
    model.eval()
    load_ms = (time.perf_counter() - t0) * 1000
    q8 = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    audio = melref.load_jfk()
    with np.load(os.path.join(SHARED, "tokenizers", "whisper_mel_filters.npz")) as f:
        filters = f["mel_80"]
    vad = silero.SileroVAD(os.path.join(SHARED, "models", "silero-vad-v6.2.0-ggml.bin"))
    n3 = 3 * 16000
    results = {}
    for name, m in (("torch_f32", model), ("torch_int8_dynamic", q8)):
        enc = m.model.encoder
        dec = CachedDecoder(m)
        with torch.no_grad():
            mel30 = torch.as_tensor(melref.log_mel_spectrogram(melref.pad_or_trim(audio, 3000 * 160), filters))
            mel3 = torch.as_tensor(melref.log_mel_spectrogram(melref.pad_or_trim(audio[:n3], 300 * 160), filters))
            enc30 = timed(lambda: enc(mel30), runs)
            enc3 = timed(lambda: enc(mel3), runs)
            xa = enc(mel30)
            res = {}

            def dec_run():
                res["r"] = greedy(m, dec, xa, max_tokens)
            dec_ms = timed(dec_run, runs)
            tokens, steps, no_speech = res["r"]

            def e2e():
                mel = torch.as_tensor(melref.log_mel_spectrogram(melref.pad_or_trim(audio, 3000 * 160), filters))
                greedy(m, dec, enc(mel), max_tokens)
            e2e_ms = timed(e2e, runs)

            seg = {}

            def utterance():
                probs = vad.probs(audio[:n3])
                s = silero.speech_timestamps(probs, n3)
                a, b = s[0]["start"], s[-1]["end"]
                frames = max(2, ((b - a) // 160 + 1) // 2 * 2)
                mel = torch.as_tensor(melref.log_mel_spectrogram(melref.pad_or_trim(audio[a:b], frames * 160), filters))
                seg["r"] = (a / 16000, b / 16000, frames, greedy(m, dec, enc(mel), utt_tokens)[1])
            utt_ms = timed(utterance, runs)
        one = None
        if threads > 1:
            torch.set_num_threads(1)
            with torch.no_grad():
                one = timed(dec_run, runs) / steps
            torch.set_num_threads(threads)
        r = {"impl": name, "threads": threads, "runs": runs, "torch": torch.__version__, "load_ms": round(load_ms, 1),
             "encode_30s_ms": round(enc30, 2), "encode_3s_ms": round(enc3, 2),
             "decode_ms_per_token": round(dec_ms / steps, 3), "decode_steps": steps,
             "decode_ms_per_token_1thread": round(one, 3) if one is not None else None,
             "end_to_end_ms": round(e2e_ms, 2), "utterance_3s_vad_ms": round(utt_ms, 2),
             "utterance": {"start_s": seg["r"][0], "end_s": seg["r"][1], "frames": seg["r"][2], "steps": seg["r"][3]},
             "tokens": tokens, "no_speech_prob": no_speech}
        print(json.dumps(r), flush=True)
        results[name] = r
    if out_path:
        json.dump(results, open(out_path, "w"))


if __name__ == "__main__":
    main()
