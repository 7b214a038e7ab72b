#!/usr/bin/python3
"""Writes the tiny random Whisper fixtures and the outputs of our PyTorch reference
(py/whisper_reference.py) on them, fed the log-mel of ../shared/data/audio/jfk.wav padded to
30 s (3000 frames, as whisper.pad_or_trim then log_mel_spectrogram; computed by
py/gen_mel_fixture.py's functions):

1. tests/fixtures/whisper_tiny: Hugging Face layout (config.json, model.safetensors with
   transformers' tensor names, vocab.json + merges.txt), d_model 64, reduced vocabulary (a real
   51864 x 64 embedding would be 6.6 MB as F16): ids 0..999 are the first 1000 GPT-2 ranks, then
   the Whisper .en special tokens in their real order, then 16 timestamps:
     1000 <|endoftext|>  1001 <|startoftranscript|>  1002 <|translate|>  1003 <|transcribe|>
     1004 <|startoflm|>  1005 <|startofprev|>  1006 <|nospeech|>  1007 <|notimestamps|>
     1008..1023 <|0.00|>..<|0.30|>
   config.json names them as transformers does (decoder_start_token_id, eos_token_id,
   no_timestamps_token_id, suppress_tokens = the real .en list's ids below 1000,
   begin_suppress_tokens = [220 " ", eot]). vocab.json / merges.txt spell those 1000 ranks with
   GPT-2's byte characters; the merges are recovered from the ranks (the pair BPE makes of each
   token from the lower ranks). The weights are random except the <|endoftext|> embedding row,
   set to 1.05 x the row of token 377 (which this random model falls into repeating on jfk.wav)
   so that greedy decoding ends at <|endoftext|> after a few tokens; the max-length stop is
   checked with a short sample_len.

2. tests/fixtures/whisper_en and tests/fixtures/whisper_ml: the real vocabularies (51864 .en,
   51865 multilingual: whisper.cpp files imply the special ids from n_vocab), so a very small
   width (d_model 16, 2 + 2 layers, 2 heads), each twice with the same weights: a Hugging Face
   directory (config.json with the real special ids and suppress lists, model.safetensors, token
   embedding F16) and ggml-model.bin, a whisper.cpp file as its convert-pt-to-ggml.py writes it
   (ftype 1: 2-D/3-D weights F16 except the positional embeddings; biases, norms and positions
   F32; conv biases [d, 1]; openai's tensor names), whose header mel filters and vocabulary are
   copied from ../shared/models/for-tests-ggml-tiny(.en).bin. Every weight the ggml file stores as
   F16 is rounded to F16 first, so both files hold the same numbers. Rows are biased so that the
   reference run is a useful test: the decoder's position embeddings are 4x larger (so the
   tokens vary from step to step), the multilingual model detects German (the <|de|> embedding
   row gets a multiple of the decoder's output at <|startoftranscript|>), and both end at
   <|endoftext|> after some tokens (its row is made to win at one step and no earlier).
   expected.json: language detection, the default decode, for the multilingual model also
   <|en|> + <|translate|>, a max-length run, the texts decoded with the ggml file's vocabulary
   and openai's non-speech token list computed by BPE from ../shared/tokenizers/*.tiktoken.

Run from the project root:  /usr/bin/python3 py/gen_whisper_fixture.py
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
import gen_mel_fixture as melref  # noqa: E402

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
TOKENIZERS = os.path.join(melref.SHARED, "tokenizers")
MODELS = os.path.join(melref.SHARED, "models")


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


def jfk_mel():
    audio = melref.load_jfk()
    with np.load(os.path.join(TOKENIZERS, "whisper_mel_filters.npz")) as f:
        filters = f["mel_80"]
    return melref.log_mel_spectrogram(melref.pad_or_trim(audio, 3000 * 160), filters)


def run_json(r, text=None):
    out = {"tokens": r["tokens"], "logprobs": r["logprobs"], "avg_logprob": r["avg_logprob"],
           "no_speech_prob": r["no_speech_prob"], "min_top2_margin": r["min_margin"]}
    if r["language"] is not None:
        out["language"] = r["language"]
    if text is not None:
        out["text"] = text
    return out


# ---- 1. the reduced-vocabulary Hugging Face model ---------------------------------------------

def byte_chars():
    """GPT-2's bytes_to_unicode()."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def write_hf_tokenizer(out, ranks, eot):
    """vocab.json + merges.txt for ranks (token bytes by id) and <|endoftext|> = eot."""
    bc = byte_chars()
    spell = lambda t: "".join(bc[b] for b in t)  # noqa: E731
    vocab = {spell(t): i for i, t in enumerate(ranks)}
    vocab["<|endoftext|>"] = eot
    merges = []
    for r in range(256, len(ranks)):
        lower = {t: i for i, t in enumerate(ranks[:r])}
        parts = ref.bpe(lower, ranks[r])
        assert len(parts) == 2, (r, parts)
        merges.append(spell(ranks[parts[0]]) + " " + spell(ranks[parts[1]]))
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")


def gen_reduced(mel):
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
    ranks = ref.load_ranks(os.path.join(TOKENIZERS, "gpt2.tiktoken"))[:1000]
    write_hf_tokenizer(OUT, ranks, 1000)

    r = ref.greedy(model, mel)
    short = ref.greedy(model, mel, sample_len=SHORT_LEN)
    assert r["tokens"] and len(r["logprobs"]) == len(r["tokens"]) + 1, "fixture should end at eot"
    assert len(short["tokens"]) == SHORT_LEN
    enc = r["encoder"]
    rng = np.random.RandomState(7)
    samples = [[int(t), int(c), float(enc[t, c])] for t, c in
               zip(rng.randint(0, enc.shape[0], 300), rng.randint(0, enc.shape[1], 300))]
    # detokenization: the decoded tokens, and byte sequences Python's errors="replace" handles
    byte_id = {t[0]: i for i, t in enumerate(ranks) if len(t) == 1}
    cases = [r["tokens"], [byte_id[0xE2], byte_id[0x82], byte_id[ord("A")]],
             [byte_id[0xED], byte_id[0xA0], byte_id[0x80]], [byte_id[0xF0], byte_id[0x80]],
             [byte_id[0xC3], byte_id[0xA9], 1001, 1000, 1007, byte_id[0xC3]],
             [byte_id[0xF4], byte_id[0x90], byte_id[0xE0], byte_id[0xA0]], []]
    detok = [{"tokens": c, "text": ref.decode_text(c, ranks, 1000)} for c in cases]
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
        "text": detok[0]["text"],
        "detokenize": detok,
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)
    print("%s: tokens (%d): %s\navg_logprob %.6f no_speech %.6f min margin %.4g enc |max| %.3f "
          "text %r" % (OUT, len(r["tokens"]), r["tokens"], r["avg_logprob"], r["no_speech_prob"],
                       r["min_margin"], np.abs(enc).max(), detok[0]["text"]), file=sys.stderr)


# ---- 2. real-vocabulary models in both formats ------------------------------------------------

REAL = {  # kind: (directory, vocab size, tiktoken file, whisper.cpp file for header + vocab, seed)
    "en": ("tests/fixtures/whisper_en", 51864, "gpt2.tiktoken", "for-tests-ggml-tiny.en.bin", 11),
    "ml": ("tests/fixtures/whisper_ml", 51865, "multilingual.tiktoken", "for-tests-ggml-tiny.bin", 11),
}
DETECT = "de"  # the language the multilingual model is made to detect


def real_config(n_vocab, non_speech):
    ml = n_vocab >= 51865
    eot = 50257 if ml else 50256
    sot = eot + 1
    translate = sot + 1 + (n_vocab - 51765 - 1 if ml else 99)
    specials = [sot] + list(range(translate, translate + 5))  # as the real configs list them
    return {
        "architectures": ["WhisperForConditionalGeneration"], "model_type": "whisper",
        "d_model": 16, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2,
        "decoder_attention_heads": 2, "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
        "num_mel_bins": 80, "max_source_positions": 1500, "max_target_positions": 448,
        "vocab_size": n_vocab, "activation_function": "gelu", "scale_embedding": False,
        "decoder_start_token_id": sot, "bos_token_id": eot, "eos_token_id": eot,
        "pad_token_id": eot, "no_timestamps_token_id": translate + 5,
        "suppress_tokens": non_speech + specials, "begin_suppress_tokens": [220, eot],
        "torch_dtype": "float32",
    }


def openai_name(hf):
    """transformers' tensor name -> openai/whisper's (whisper.cpp's)."""
    n = hf.replace("model.encoder.", "encoder.").replace("model.decoder.", "decoder.")
    n = n.replace(".layers.", ".blocks.")
    for a, b in [("self_attn_layer_norm", "attn_ln"), ("encoder_attn_layer_norm", "cross_attn_ln"),
                 ("final_layer_norm", "mlp_ln"), ("self_attn.", "attn."),
                 ("encoder_attn.", "cross_attn."), (".q_proj.", ".query."), (".k_proj.", ".key."),
                 (".v_proj.", ".value."), (".out_proj.", ".out."), (".fc1.", ".mlp.0."),
                 (".fc2.", ".mlp.2."), ("embed_positions.weight", "positional_embedding"),
                 ("embed_tokens", "token_embedding")]:
        n = n.replace(a, b)
    if n in ("encoder.layer_norm.weight", "encoder.layer_norm.bias"):
        n = n.replace("layer_norm", "ln_post")
    if n in ("decoder.layer_norm.weight", "decoder.layer_norm.bias"):
        n = n.replace("layer_norm", "ln")
    return n


def ggml_f16(openai):
    """whisper.cpp's convert-pt-to-ggml.py with use_f16: what it stores as F16."""
    return openai not in ("encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
                          "decoder.positional_embedding")


def ggml_header_tail(path):
    """The mel filter table and the vocabulary section of a whisper.cpp file, as bytes, and the
    vocabulary as a list of token bytes."""
    b = open(path, "rb").read()
    o = 4 + 11 * 4
    nm, nf = struct.unpack_from("<ii", b, o)
    start = o
    o += 8 + 4 * nm * nf
    nv = struct.unpack_from("<i", b, o)[0]
    o += 4
    vocab = []
    for _ in range(nv):
        n = struct.unpack_from("<I", b, o)[0]
        vocab.append(b[o + 4:o + 4 + n])
        o += 4 + n
    return b[start:o], vocab


def write_ggml(path, c, sd, header_tail):
    with open(path, "wb") as f:
        f.write(struct.pack("<I", 0x67676D6C))
        d = c["d_model"]
        f.write(struct.pack("<11i", c["vocab_size"], c["max_source_positions"], d,
                            c["encoder_attention_heads"], c["encoder_layers"],
                            c["max_target_positions"], d, c["decoder_attention_heads"],
                            c["decoder_layers"], c["num_mel_bins"], 1))
        f.write(header_tail)
        for hf, t in sd.items():
            name = openai_name(hf)
            data = t.detach().numpy().astype(np.float32)
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                data = data.reshape(data.shape[0], 1)
            f16 = data.ndim >= 2 and ggml_f16(name)
            if f16:
                data = data.astype(np.float16)
            nb = name.encode()
            f.write(struct.pack("<iii", data.ndim, len(nb), 1 if f16 else 0))
            f.write(struct.pack("<%di" % data.ndim, *reversed(data.shape)))
            f.write(nb)
            f.write(data.tobytes())


def round_f16(model):
    """Rounds every weight whisper.cpp stores as F16 to F16."""
    with torch.no_grad():
        for hf, p in model.state_dict().items():
            name = openai_name(hf)
            if p.dim() >= 2 and ggml_f16(name):
                p.copy_(p.half().float())


def stop_at(model, mel, xa, sp, first=8):
    """Sets the <|endoftext|> row so that greedy decoding samples it at step k >= first (and not
    before): a multiple of the decoder's output at step k, whose logit there is 1 above the best
    token's, when every earlier step keeps it 1 below its best. Returns k."""
    probe = ref.greedy(model, mel, sample_len=40, xa=xa)
    prompt = [sp["sot"]] + ([probe["language"], sp["transcribe"]] if sp["multilingual"] else [])
    prompt.append(sp["no_timestamps"])
    seq = prompt + probe["tokens"]
    emb = model.model.decoder.embed_tokens.weight
    with torch.no_grad():
        h = model.model.decoder.hidden(torch.tensor(seq), xa)[len(prompt) - 1:]
        top = (h @ emb.T).max(-1).values  # the suppressed tokens never win in this model
        for k in range(first, len(probe["tokens"])):
            u = h[k] / h[k].norm()
            beta = (float(top[k]) + 1.0) / float(h[k].norm())
            e = (beta * u).half().float()
            if all(float(h[j] @ e) < float(top[j]) - 1.0 for j in range(1, k)) and \
                    float(h[k] @ e) > float(top[k]) + 0.5:
                emb[sp["eot"]] = e
                return k
    raise AssertionError("no step to stop at")


def gen_real(kind, mel):
    out, n_vocab, tiktoken, ggml_src, seed = REAL[kind]
    os.makedirs(out, exist_ok=True)
    ranks = ref.load_ranks(os.path.join(TOKENIZERS, tiktoken))
    non_speech = ref.non_speech_tokens(ranks)
    c = real_config(n_vocab, non_speech)
    sp = ref.special_ids(c)
    torch.manual_seed(0)
    model = ref.Whisper(c)
    init(model, seed)
    with torch.no_grad():  # larger positions: the tiny decoder's tokens vary from step to step
        model.model.decoder.embed_positions.weight.mul_(4.0)
    round_f16(model)
    model.eval()
    emb = model.model.decoder.embed_tokens.weight
    xa = model.model.encoder(torch.as_tensor(mel)).detach()
    lang = None
    with torch.no_grad():
        if sp["multilingual"]:
            # <|de|>'s row gains a multiple of the output at <|startoftranscript|>: its logit
            # there rises 3 above the best language's
            lang = ref.language_token(c, DETECT)
            h = model.model.decoder.hidden(torch.tensor([sp["sot"]]), xa)[0]
            logits = emb[sp["languages"]] @ h
            alpha = (float(logits.max()) + 3.0 - float(emb[lang] @ h)) / float(h @ h)
            emb[lang] = (emb[lang] + alpha * h).half().float()
            assert ref.detect_language(model, xa)[0] == lang
    k = stop_at(model, mel, xa, sp)
    r = ref.greedy(model, mel, xa=xa)
    assert len(r["logprobs"]) == len(r["tokens"]) + 1 and len(r["tokens"]) == k, \
        "%s: should end at eot after %d tokens: %s" % (kind, k, r["tokens"])
    assert r["min_margin"] > 1e-3, "%s: top-2 margin %g too small" % (kind, r["min_margin"])
    sd = model.state_dict()
    hf = {k: (v.half() if k == "model.decoder.embed_tokens.weight" else v.float())
          for k, v in sd.items()}
    save_safetensors(os.path.join(out, "model.safetensors"), hf)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    tail, file_vocab = ggml_header_tail(os.path.join(MODELS, ggml_src))
    write_ggml(os.path.join(out, "ggml-model.bin"), c, sd, tail)

    # the ggml file's token texts are whisper.cpp's (not valid UTF-8 -> U+FFFD), except the
    # single bytes, whose ranks are fixed
    vocab = [ranks[i] if i < 256 else t for i, t in enumerate(file_vocab)]
    text = lambda toks: ref.decode_text(toks, vocab, sp["eot"])  # noqa: E731
    exp = {"input": "../shared/data/audio/jfk.wav, sg_log_mel(pad_to_frames=3000), 80 mels",
           "non_speech_tokens": non_speech,
           "default": run_json(r, text(r["tokens"])),
           "text_tiktoken": ref.decode_text(r["tokens"], ranks, sp["eot"])}
    short = ref.greedy(model, mel, sample_len=3, xa=xa)
    exp["short"] = dict(run_json(short, text(short["tokens"])), max_tokens=3)
    if sp["multilingual"]:
        tok, prob = ref.detect_language(model, xa)
        exp["detect"] = {"token": tok, "code": ref.LANGUAGES[sp["languages"].index(tok)],
                         "prob": prob}
        en = ref.language_token(c, "en")
        tr = ref.greedy(model, mel, language=en, translate=True, xa=xa)
        exp["en_translate"] = dict(run_json(tr, text(tr["tokens"])), language=en)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)
    sizes = {n: os.path.getsize(os.path.join(out, n)) for n in os.listdir(out)}
    print("%s: tokens (%d): %s language %s\navg_logprob %.6f no_speech %.6g margin %.4g text %r "
          "sizes %s" % (out, len(r["tokens"]), r["tokens"], r["language"], r["avg_logprob"],
                        r["no_speech_prob"], r["min_margin"], exp["default"]["text"], sizes),
          file=sys.stderr)


def main():
    mel = jfk_mel()
    gen_reduced(mel)
    for kind in REAL:
        gen_real(kind, mel)


if __name__ == "__main__":
    main()
