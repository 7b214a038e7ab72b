#!/usr/bin/python3
"""Writes tests/fixtures/whisper_tiny: a tiny random Whisper in the Hugging Face layout
(config.json, model.safetensors with transformers' tensor names) plus expected.json with the
outputs of our PyTorch reference (tools/py/whisper_reference.py) on the log-mel of
../shared/data/audio/jfk.wav padded to 30 s (3000 frames, as whisper.pad_or_trim then
log_mel_spectrogram; computed by tools/py/make_mel_fixture.py's functions).

Reduced vocabulary (a real 51864 x 64 embedding would be 6.6 MB as F16): ids 0..999 are the first
1000 GPT-2 ranks, then the Whisper .en special tokens in their real order, then 16 timestamps:
  1000 <|endoftext|>  1001 <|startoftranscript|>  1002 <|translate|>  1003 <|transcribe|>
  1004 <|startoflm|>  1005 <|startofprev|>  1006 <|nospeech|>  1007 <|notimestamps|>
  1008..1023 <|0.00|>..<|0.30|>
config.json names them as transformers does (decoder_start_token_id, eos_token_id,
no_timestamps_token_id, suppress_tokens = the real .en list's ids below 1000,
begin_suppress_tokens = [220 " ", eot]).
The weights are random except the <|endoftext|> embedding row, set to 1.05 x the row of token 377
(which this random model falls into repeating on jfk.wav) so that greedy decoding ends at
<|endoftext|> after a few tokens; the max-length stop is checked with a short sample_len.
Run from the project root:  /usr/bin/python3 tools/py/gen_whisper_fixture.py
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import whisper_reference as ref  # noqa: E402
from safetensors_io import save_safetensors  # noqa: E402
import make_mel_fixture as melref  # noqa: E402

OUT = "tests/fixtures/whisper_tiny"
SHORT_LEN = 8  # sample_len of the run that stops at the length limit
SUPPRESS = [1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93,
            357, 366, 438, 532, 685, 705, 796, 930]
CONFIG = {
    "architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper",
    "d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2,
    "decoder_attention_heads": 2, "encoder_ffn_dim": 256, "decoder_ffn_dim": 256,
    "num_mel_bins": 80, "max_source_positions": 1500, "max_target_positions": 448,
    "vocab_size": 1024, "activation_function": "gelu", "scale_embedding": False,
    "decoder_start_token_id": 1001, "bos_token_id": 1000, "eos_token_id": 1000, "pad_token_id": 1000,
    "no_timestamps_token_id": 1007, "suppress_tokens": SUPPRESS, "begin_suppress_tokens": [220, 1000],
    "torch_dtype": "float32",
}


def init(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("encoder.embed_positions.weight"):
                continue  # sinusoids, as the real checkpoints hold
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif "embed" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)


def write_safetensors(path, tensors):
    save_safetensors(path, {k: t.float() for k, t in tensors.items()})


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    model = ref.Whisper(CONFIG)
    init(model, 4321)
    with torch.no_grad():
        emb = model.model.decoder.embed_tokens.weight
        emb[CONFIG["eos_token_id"]] = 1.05 * emb[377]
    model.eval()
    sd = model.state_dict()
    write_safetensors(os.path.join(OUT, "model.safetensors"), sd)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=1)

    audio = melref.load_jfk()
    with np.load(os.path.join(melref.SHARED, "tokenizers", "whisper_mel_filters.npz")) as f:
        filters = f["mel_80"]
    mel = melref.log_mel_spectrogram(melref.pad_or_trim(audio, 3000 * 160), filters)
    r = ref.greedy(model, mel)
    short = ref.greedy(model, mel, sample_len=SHORT_LEN)
    assert r["tokens"] and len(r["logprobs"]) == len(r["tokens"]) + 1, "fixture should end at eot"
    assert len(short["tokens"]) == SHORT_LEN
    enc = r["encoder"]
    rng = np.random.RandomState(7)
    samples = [[int(t), int(c), float(enc[t, c])] for t, c in
               zip(rng.randint(0, enc.shape[0], 300), rng.randint(0, enc.shape[1], 300))]
    exp = {
        "input": "../shared/data/audio/jfk.wav, sg_log_mel(pad_to_frames=3000), 80 mels",
        "encoder_shape": list(enc.shape),
        "encoder_row_mean": [float(v) for v in enc.astype(np.float64).mean(1)[::50]],
        "encoder_row_mean_stride": 50,
        "encoder_samples": samples,
        "tokens": r["tokens"], "logprobs": r["logprobs"], "avg_logprob": r["avg_logprob"],
        "no_speech_prob": r["no_speech_prob"], "min_top2_margin": r["min_margin"],
        "short": {"max_tokens": SHORT_LEN, "tokens": short["tokens"], "logprobs": short["logprobs"],
                  "avg_logprob": short["avg_logprob"]},
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)
    print("tokens (%d): %s\navg_logprob %.6f no_speech %.6f min margin %.4g enc |max| %.3f" %
          (len(r["tokens"]), r["tokens"], r["avg_logprob"], r["no_speech_prob"], r["min_margin"],
           np.abs(enc).max()), file=sys.stderr)


if __name__ == "__main__":
    main()
