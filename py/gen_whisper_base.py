#!/usr/bin/python3
"""Writes a real-size random Whisper base.en in the Hugging Face layout into OUT_DIR (for
bench/whisper_bench.sh; made in /tmp at bench time, never committed): config.json as the real
openai/whisper-base.en has it (d_model 512, 6 + 6 layers, 8 heads, ffn 2048, 80 mels, vocab 51864,
<|startoftranscript|> 50257, <|endoftext|> 50256, suppress_tokens and begin_suppress_tokens),
no_timestamps_token_id 50362 (in config.json too, where our reference reads it),
generation_config.json and model.safetensors with transformers'
tensor names, every tensor F16 as in the real checkpoint (145 MB).

suppress_tokens is computed here the way openai/whisper's tokenizer.non_speech_tokens computes it
(from ../shared/tokenizers/gpt2.tiktoken with our reference BPE, py/gpt2_tokenizer_reference.py)
plus the special ids transformers adds (<|startoftranscript|>, <|translate|> .. <|nospeech|>); it
is checked against the list in the real config.json.

Weights: random as py/gen_whisper_fixture.py draws them (sinusoidal encoder positions), with
the decoder's learned positions x8 and token embedding x0.4 (see main), rounded to F16. A random
model on jfk.wav does not say when to stop, so the <|endoftext|> embedding row is built (stop_at)
to win at the step after 27 text tokens, the length of base.en's real transcript of jfk.wav ("And
so my fellow Americans, ..."): greedy decoding then ends at <|endoftext|> after that many tokens,
and the end-to-end benchmark decodes a realistic number of tokens. The reference's tokens are
stored in OUT_DIR/bench_info.json.

Usage: /usr/bin/python3 py/gen_whisper_base.py OUT_DIR [SEED]"""
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import whisper_reference as ref  # noqa: E402
import gen_mel_fixture as melref  # noqa: E402
from gen_whisper_fixture import init  # noqa: E402
from safetensors_io import save_safetensors  # noqa: E402
import gpt2_tokenizer_reference as bpe  # noqa: E402

# openai/whisper-base.en config.json's suppress_tokens (for the check below)
REAL_SUPPRESS = [
    1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93, 357, 366,
    438, 532, 685, 705, 796, 930, 1058, 1220, 1267, 1279, 1303, 1343, 1377, 1391, 1635, 1782, 1875,
    2162, 2361, 2488, 3467, 4008, 4211, 4600, 4808, 5299, 5855, 6329, 7203, 9609, 9959, 10563, 10786,
    11420, 11709, 11907, 13163, 13697, 13700, 14808, 15306, 16410, 16791, 17992, 19203, 19510, 20724,
    22305, 22935, 27007, 30109, 30420, 33409, 34949, 40283, 40493, 40549, 47282, 49146, 50257, 50357,
    50358, 50359, 50360, 50361]
TARGET_TOKENS = 27


def non_speech_tokens(enc):
    """openai/whisper tokenizer.py Tokenizer.non_speech_tokens, step for step."""
    symbols = list("\"#()*+/:;<=>@[\\]^_`{|}~「」『』")
    symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
    misc = set("♩♪♫♬♭♮♯")
    result = {enc.encode_ordinary(" -")[0], enc.encode_ordinary(" '")[0]}
    for symbol in symbols + sorted(misc):
        for tokens in (enc.encode_ordinary(symbol), enc.encode_ordinary(" " + symbol)):
            if len(tokens) == 1 or symbol in misc:
                result.add(tokens[0])
    return sorted(result)


def config(shared):
    enc = bpe.Encoding(bpe.load_ranks(os.path.join(shared, "tokenizers", "gpt2.tiktoken")))
    sot, translate = 50257, 50357
    suppress = non_speech_tokens(enc) + [sot] + list(range(translate, translate + 5))
    assert suppress == REAL_SUPPRESS, "suppress_tokens differ from openai/whisper-base.en's"
    return {
        "_name_or_path": "openai/whisper-base.en (random weights, py/gen_whisper_base.py)",
        "architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper",
        "activation_dropout": 0.0, "activation_function": "gelu", "attention_dropout": 0.0,
        "begin_suppress_tokens": [220, 50256], "bos_token_id": 50257, "d_model": 512,
        "decoder_attention_heads": 8, "decoder_ffn_dim": 2048, "decoder_layers": 6,
        "decoder_start_token_id": 50257, "dropout": 0.0, "encoder_attention_heads": 8,
        "encoder_ffn_dim": 2048, "encoder_layers": 6, "eos_token_id": 50256,
        "init_std": 0.02, "is_encoder_decoder": True, "max_length": 448,
        "max_source_positions": 1500, "max_target_positions": 448, "num_hidden_layers": 6,
        "no_timestamps_token_id": 50362, "num_mel_bins": 80, "pad_token_id": 50256, "scale_embedding": False,
        "suppress_tokens": suppress, "torch_dtype": "float16", "use_cache": True,
        "vocab_size": 51864,
    }


@torch.no_grad()
def final_hidden(model, tokens, xa):
    """The decoder's final LayerNorm output for every position (what the tied logits read)."""
    dec = model.model.decoder
    t = torch.tensor(tokens)
    x = dec.embed_tokens(t) + dec.embed_positions.weight[: t.shape[0]]
    for b in dec.layers:
        x = b(x, xa, causal=True)
    return dec.layer_norm(x)


@torch.no_grad()
def stop_at(model, mel, eot, n):
    """Sets the <|endoftext|> embedding row so that greedy decoding ends after n text tokens: the
    row is the part of the hidden state h_n (at the step that samples token n + 1) orthogonal to the
    earlier steps' hidden states, scaled so that its logit there beats the best one by 1.0 while its
    logit at every earlier step is ~0 (below the best logit, which is positive). Eot is never fed
    back, so no hidden state changes. Returns (n, tokens) as the reference then decodes them."""
    emb = model.model.decoder.embed_tokens.weight
    c = model.config
    xa = model.model.encoder(torch.as_tensor(mel))
    first = ref.greedy(model, mel, sample_len=n + 1)["tokens"]
    prompt = [c["decoder_start_token_id"], c["no_timestamps_token_id"]]
    h = final_hidden(model, prompt + first[:n], xa)[1:].double()  # rows: sampling steps 0..n
    basis, _ = torch.linalg.qr(h[:n].T)  # orthonormal basis of steps 0..n-1
    u = h[n] - basis @ (basis.T @ h[n])
    best = float((h[n].float() @ emb.T).max())
    emb[eot] = (u / float(u @ u) * (best + 1.0)).float().half().float()
    r = ref.greedy(model, mel, sample_len=n + 8)
    return n, r["tokens"]


def main():
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1234
    shared = os.path.join(HERE, "..", "..", "shared")
    t0 = time.time()
    cfg = config(shared)
    torch.manual_seed(0)
    model = ref.Whisper(cfg)
    init(model, seed)
    with torch.no_grad():
        # a random decoder with the fixture's scales repeats one token forever; stronger learned
        # positions and a smaller (tied) token embedding make it sample varied tokens, like a
        # trained model, so that int8/f32 agreement means something
        model.model.decoder.embed_positions.weight.mul_(8.0)
        model.model.decoder.embed_tokens.weight.mul_(0.4)
        # the checkpoint is F16: run the reference on exactly those values
        for p in model.parameters():
            p.copy_(p.half().float())
    model.eval()
    audio = melref.load_jfk()
    with np.load(os.path.join(shared, "tokenizers", "whisper_mel_filters.npz")) as f:
        filters = f["mel_80"]
    mel = melref.log_mel_spectrogram(melref.pad_or_trim(audio, 3000 * 160), filters)
    eot = cfg["eos_token_id"]
    chosen, tokens = stop_at(model, mel, eot, TARGET_TOKENS)
    os.makedirs(out, exist_ok=True)
    save_safetensors(os.path.join(out, "model.safetensors"),
                     {k: t.half() for k, t in model.state_dict().items()})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"decoder_start_token_id": 50257, "eos_token_id": 50256, "pad_token_id": 50256,
                   "bos_token_id": 50257, "max_length": 448, "no_timestamps_token_id": 50362,
                   "begin_suppress_tokens": [220, 50256], "suppress_tokens": cfg["suppress_tokens"],
                   "is_multilingual": False}, f, indent=2)
    with open(os.path.join(out, "bench_info.json"), "w") as f:
        json.dump({"seed": seed, "eot_after_tokens": chosen, "reference_tokens_f32": tokens,
                   "input": "jfk.wav padded to 3000 frames"}, f)
    print("make_whisper_base: %s (seed %d): reference greedy gives %d tokens (%d distinct), stop "
          "planned after %d; %.1f s" % (out, seed, len(tokens), len(set(tokens)), chosen,
                                        time.time() - t0), file=sys.stderr)


if __name__ == "__main__":
    main()
