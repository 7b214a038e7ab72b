#!/usr/bin/python3
"""Our own PyTorch Whisper, written from openai/whisper's model.py, decoding.py (greedy, no
timestamps, detect_language) and tokenizer.py (special tokens, LANGUAGES, non_speech_tokens,
decode), with tensors named as Hugging Face's WhisperForConditionalGeneration names them, so a
state dict of this module is a valid model.safetensors. Used by gen_whisper_fixture.py to write
tests/fixtures/whisper_* and their expected outputs.

Maths: encoder conv1 (k3 p1) GELU, conv2 (k3 s2 p1) GELU, + sinusoidal positions, pre-LN blocks,
final LN; decoder token + learned positions, pre-LN blocks (causal self-attention, cross-attention,
MLP), final LN, logits = h . embed_tokens^T. q/v/out projections have biases, k does not.
"""
import base64
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def sinusoids(length, channels, max_timescale=10000):
    """openai/whisper's positional table for the encoder."""
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = torch.exp(-inc * torch.arange(channels // 2))
    t = torch.arange(length)[:, None] * inv[None, :]
    return torch.cat([torch.sin(t), torch.cos(t)], dim=1)


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)
        self.capture = False  # keep the scores of the last call (timing's find_alignment)
        self.qk = None

    def forward(self, x, kv, causal):
        n, d = x.shape
        m = kv.shape[0]
        hd = d // self.heads
        q = self.q_proj(x).view(n, self.heads, hd).transpose(0, 1)
        k = self.k_proj(kv).view(m, self.heads, hd).transpose(0, 1)
        v = self.v_proj(kv).view(m, self.heads, hd).transpose(0, 1)
        s = (q @ k.transpose(1, 2)) * hd ** -0.5
        if self.capture:  # openai's cross-attention hook: qk before the softmax, [heads, n, m]
            self.qk = s.float().detach()
        if causal:
            s = s + torch.full((n, m), float("-inf")).triu(1 + m - n)
        w = torch.softmax(s.float(), dim=-1)
        return self.out_proj((w @ v).transpose(0, 1).reshape(n, d))


class Block(nn.Module):
    def __init__(self, d, heads, cross):
        super().__init__()
        self.self_attn = Attention(d, heads)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        if cross:
            self.encoder_attn = Attention(d, heads)
            self.encoder_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        self.final_layer_norm = nn.LayerNorm(d)

    def forward(self, x, xa=None, causal=False):
        h = self.self_attn_layer_norm(x)
        x = x + self.self_attn(h, h, causal)
        if xa is not None:
            x = x + self.encoder_attn(self.encoder_attn_layer_norm(x), xa, False)
        h = self.final_layer_norm(x)
        return x + self.fc2(F.gelu(self.fc1(h)))


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["d_model"]
        self.conv1 = nn.Conv1d(c["num_mel_bins"], d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.embed_positions = nn.Embedding(c["max_source_positions"], d)
        with torch.no_grad():
            self.embed_positions.weight.copy_(sinusoids(c["max_source_positions"], d))
        self.layers = nn.ModuleList(Block(d, c["encoder_attention_heads"], False)
                                    for _ in range(c["encoder_layers"]))
        self.layer_norm = nn.LayerNorm(d)

    def forward(self, mel):  # mel [n_mels, frames] -> [frames / 2, d]
        x = F.gelu(self.conv1(mel[None]))
        x = F.gelu(self.conv2(x))[0].T
        x = x + self.embed_positions.weight[: x.shape[0]]
        for b in self.layers:
            x = b(x)
        return self.layer_norm(x)


class Decoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["d_model"]
        self.embed_tokens = nn.Embedding(c["vocab_size"], d)
        self.embed_positions = nn.Embedding(c["max_target_positions"], d)
        self.layers = nn.ModuleList(Block(d, c["decoder_attention_heads"], True)
                                    for _ in range(c["decoder_layers"]))
        self.layer_norm = nn.LayerNorm(d)

    def hidden(self, tokens, xa):  # tokens [n] -> final hidden states [n, d]
        x = self.embed_tokens(tokens) + self.embed_positions.weight[: tokens.shape[0]]
        for b in self.layers:
            x = b(x, xa, causal=True)
        return self.layer_norm(x)

    def forward(self, tokens, xa):  # tokens [n] (whole sequence, no cache) -> logits [n, V]
        return (self.hidden(tokens, xa) @ self.embed_tokens.weight.T).float()


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)


class Whisper(nn.Module):
    """state_dict() names: model.encoder.*, model.decoder.* as in transformers."""

    def __init__(self, c):
        super().__init__()
        self.config = c
        self.model = Model(c)


# openai/whisper tokenizer.LANGUAGES, in token order (large-v3 added "yue")
LANGUAGES = ("en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu "
             "ta no th ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn "
             "bs kk sq sw gl mr pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn "
             "mt sa lb my bo tl mg as tt haw ln ha ba jw su yue").split()
assert len(LANGUAGES) == 100


def special_ids(c):
    """openai/whisper's special tokens, from the ids transformers keeps in the config: the five
    tokens before <|notimestamps|> are translate, transcribe, startoflm, startofprev, nospeech.
    A vocabulary of 51865 or more is multilingual (openai's is_multilingual) with
    vocab - 51765 - 1 language tokens right after <|startoftranscript|>."""
    nt = c["no_timestamps_token_id"]
    sp = dict(sot=c["decoder_start_token_id"], eot=c["eos_token_id"], no_timestamps=nt,
              translate=nt - 5, transcribe=nt - 4, sot_lm=nt - 3, sot_prev=nt - 2, no_speech=nt - 1)
    multilingual = c["vocab_size"] >= 51865
    n_lang = c["vocab_size"] - 51765 - 1 if multilingual else 0
    sp["multilingual"] = multilingual
    sp["languages"] = list(range(sp["sot"] + 1, sp["sot"] + 1 + n_lang))
    if multilingual:
        assert sp["translate"] == sp["sot"] + 1 + n_lang
    return sp


def language_token(c, code):
    sp = special_ids(c)
    return sp["languages"][LANGUAGES.index(code)]


# ---- tokenizer: tiktoken ranks, BPE, non-speech tokens, decode ---------------------------------

def load_ranks(path):
    """A .tiktoken file as a list of token bytes by rank."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                tok, rank = line.split()
                out[int(rank)] = base64.b64decode(tok)
    return [out[i] for i in range(len(out))]


def bpe(rank_of, data):
    """tiktoken's byte_pair_merge on one piece: merge the adjacent pair of lowest rank until none
    is a token."""
    parts = [bytes([b]) for b in data]
    while True:
        best = None
        for i in range(len(parts) - 1):
            r = rank_of.get(parts[i] + parts[i + 1])
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return [rank_of[p] for p in parts]


def non_speech_tokens(ranks):
    """openai/whisper Tokenizer.non_speech_tokens. Every symbol (alone or after a space) is one
    piece of GPT-2's pre-tokenisation pattern (punctuation only), so encode() is bpe() on it."""
    rank_of = {}
    for i, t in enumerate(ranks):
        rank_of.setdefault(t, i)
    symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
    symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
    miscellaneous = set("♩♪♫♬♭♮♯")

    def enc(s):
        return bpe(rank_of, s.encode())
    result = {enc(" -")[0], enc(" '")[0]}
    for symbol in symbols + list(miscellaneous):
        for tokens in [enc(symbol), enc(" " + symbol)]:
            if len(tokens) == 1 or symbol in miscellaneous:
                result.add(tokens[0])
    return sorted(result)


def decode_text(tokens, vocab, eot):
    """openai's tokenizer.decode without timestamps: the bytes of the tokens below eot, as UTF-8
    with errors="replace". vocab: token bytes by id."""
    return b"".join(vocab[t] for t in tokens if t < eot).decode("utf-8", errors="replace")


@torch.no_grad()
def detect_language(model, xa):
    """openai/whisper decoding.detect_language: logits of [<|startoftranscript|>], every
    non-language token masked, softmax; the argmax language token and its probability."""
    c = model.config
    sp = special_ids(c)
    logits = model.model.decoder(torch.tensor([sp["sot"]]), xa)[0]
    mask = torch.ones(logits.shape[-1], dtype=torch.bool)
    mask[sp["languages"]] = False
    logits[mask] = float("-inf")
    tok = int(logits.argmax())
    probs = torch.softmax(logits, -1)
    return tok, float(probs[tok])


@torch.no_grad()
def greedy(model, mel, sample_len=None, language=None, translate=False, xa=None):
    """openai/whisper DecodingTask.run with beam 1, temperature 0, without_timestamps. Prompt
    <|startoftranscript|><|notimestamps|> (.en) or <|startoftranscript|><|lang|><|task|>
    <|notimestamps|> (multilingual; language None = detect_language first). SuppressBlanks at
    the first sampled step, SuppressTokens (config suppress_tokens + task/special tokens) every
    step, stop at <|endoftext|> or after sample_len = max_target_positions // 2 tokens. Returns
    tokens (without prompt and eot), the log-prob of each sampled token, avg_logprob,
    no_speech_prob (softmax at the sot position), the language token (None for .en) and the
    encoder output."""
    c = model.config
    sp = special_ids(c)
    n_ctx = c["max_target_positions"]
    if sample_len is None:
        sample_len = n_ctx // 2
    if xa is None:
        xa = model.model.encoder(torch.as_tensor(mel))
    suppress = set(c["suppress_tokens"]) | {sp["transcribe"], sp["translate"], sp["sot"],
                                            sp["sot_prev"], sp["sot_lm"], sp["no_speech"]}
    suppress = sorted(t for t in suppress if t >= 0)
    begin = list(c["begin_suppress_tokens"])
    tokens = [sp["sot"]]
    if sp["multilingual"]:
        if language is None:
            language = detect_language(model, xa)[0]
        assert language in sp["languages"]
        tokens += [language, sp["translate"] if translate else sp["transcribe"]]
    else:
        language = None
    tokens.append(sp["no_timestamps"])
    sample_begin = len(tokens)
    sum_lp = 0.0
    lps, margins = [], []
    no_speech_prob = None
    for i in range(sample_len):
        logits = model.model.decoder(torch.tensor(tokens), xa)
        if i == 0:
            no_speech_prob = torch.softmax(logits[0], -1)[sp["no_speech"]].item()
        lg = logits[-1].clone()
        if len(tokens) == sample_begin:
            lg[begin] = float("-inf")
        lg[suppress] = float("-inf")
        lp = torch.log_softmax(lg, -1)
        nxt = int(lg.argmax())
        top2 = torch.topk(lg, 2).values
        margins.append(float(top2[0] - top2[1]))
        if tokens[-1] != sp["eot"]:
            sum_lp += float(lp[nxt])
        lps.append(float(lp[nxt]))
        tokens.append(nxt)
        if nxt == sp["eot"] or len(tokens) > n_ctx:
            break
    out = tokens[sample_begin:]
    if sp["eot"] in out:
        out = out[: out.index(sp["eot"])]
    avg = sum_lp / (len(out) + 1)
    return dict(tokens=out, logprobs=lps, avg_logprob=avg, no_speech_prob=no_speech_prob,
                language=language, min_margin=min(margins), encoder=xa.numpy())


# ---- transcribe(): openai/whisper transcribe.py + decoding.py (timestamps, temperature) ---------

MASK64 = (1 << 64) - 1


class Rng:
    """The sampling generator the C code shares (models/whisper_transcribe.h): splitmix64, uniform
    floats in [0, 1) from the top 24 bits."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def uniform(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        z ^= z >> 31
        return float(np.float32(z >> 40) * np.float32(1.0 / 16777216.0))

    def uniform53_block(self, n):
        """The next n outputs as doubles in [0, 1) from their top 53 bits (vectorised: the k-th
        output mixes state + k * gamma)."""
        with np.errstate(over="ignore"):
            k = np.arange(1, n + 1, dtype=np.uint64)
            z = np.uint64(self.state) + k * np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z ^= z >> np.uint64(31)
        self.state = (self.state + n * 0x9E3779B97F4A7C15) & MASK64
        return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def sample(logits, temperature, rng):
    """One draw from softmax(logits / T), as models/whisper_priv.h defines it: Gumbel-max with one
    53-bit uniform per id (V generator outputs per draw), x = logits / T in float32, the first
    argmax of x - log(-log(u)) over finite x and u > 0."""
    n = logits.shape[0]
    u = rng.uniform53_block(n)
    x = logits.numpy().astype(np.float32) / np.float32(temperature)
    ok = np.isfinite(x) & (u > 0)
    with np.errstate(divide="ignore"):
        score = np.where(ok, x.astype(np.float64) - np.log(-np.log(np.where(ok, u, 0.5))),
                         -np.inf)
    return int(np.argmax(score))


def apply_timestamp_rules(logits, sampled, sp, vocab_size, max_initial_index):
    """openai's ApplyTimestampRules.apply on one row (logits [V], sampled = tokens since
    sample_begin)."""
    tb = sp["no_timestamps"] + 1
    logits[sp["no_timestamps"]] = float("-inf")
    last_ts = len(sampled) >= 1 and sampled[-1] >= tb
    penult_ts = len(sampled) < 2 or sampled[-2] >= tb
    if last_ts:
        if penult_ts:
            logits[tb:] = float("-inf")
        else:
            logits[: sp["eot"]] = float("-inf")
    stamps = [t for t in sampled if t >= tb]
    if stamps:
        last = stamps[-1] if (last_ts and not penult_ts) else stamps[-1] + 1
        logits[tb:last] = float("-inf")
    if len(sampled) == 0:
        logits[:tb] = float("-inf")
        if max_initial_index is not None:
            logits[tb + max_initial_index + 1:] = float("-inf")
    lp = torch.log_softmax(logits.float(), -1)
    if lp[tb:].logsumexp(-1) > lp[:tb].max():
        logits[:tb] = float("-inf")


@torch.no_grad()
def decode_window(model, xa, prompt, language, translate=False, without_timestamps=False,
                  temperature=0.0, rng=None, sample_len=None, max_initial_timestamp=1.0):
    """DecodingTask.run, beam 1 (GreedyDecoder), on an encoded window: initial tokens
    [<|startofprev|>, prompt[-(n_ctx // 2 - 1):]] + sot sequence (+ <|notimestamps|>), filters
    SuppressBlanks, SuppressTokens, ApplyTimestampRules; returns tokens up to eot, avg_logprob
    (sum / (len + 1)), no_speech_prob at the sot index."""
    c = model.config
    sp = special_ids(c)
    n_ctx = c["max_target_positions"]
    sample_len = sample_len or n_ctx // 2
    suppress = set(c["suppress_tokens"]) | {sp["transcribe"], sp["translate"], sp["sot"],
                                            sp["sot_prev"], sp["sot_lm"], sp["no_speech"]}
    suppress = sorted(t for t in suppress if t >= 0)
    begin = list(c["begin_suppress_tokens"])
    tokens = []
    if prompt:
        tokens = [sp["sot_prev"]] + list(prompt)[-(n_ctx // 2 - 1):]
    sot_index = len(tokens)
    tokens.append(sp["sot"])
    if sp["multilingual"]:
        tokens += [language, sp["translate"] if translate else sp["transcribe"]]
    if without_timestamps:
        tokens.append(sp["no_timestamps"])
    sample_begin = len(tokens)
    max_initial_index = None
    if not without_timestamps and max_initial_timestamp:
        max_initial_index = round(max_initial_timestamp / (30.0 / c["max_source_positions"]))
    emb = model.model.decoder.embed_tokens.weight
    sum_lp = 0.0
    no_speech_prob = None
    for i in range(sample_len):
        h = model.model.decoder.hidden(torch.tensor(tokens), xa)
        if i == 0:
            no_speech_prob = torch.softmax((h[sot_index] @ emb.T).float(), -1)[sp["no_speech"]].item()
        lg = (h[-1] @ emb.T).float().clone()
        if len(tokens) == sample_begin:
            lg[begin] = float("-inf")
        lg[suppress] = float("-inf")
        if not without_timestamps:
            apply_timestamp_rules(lg, tokens[sample_begin:], sp, c["vocab_size"], max_initial_index)
        nxt = int(lg.argmax()) if temperature == 0 else sample(lg, temperature, rng)
        lp = float(torch.log_softmax(lg, -1)[nxt])
        if tokens[-1] != sp["eot"]:
            sum_lp += lp
        tokens.append(nxt)
        if nxt == sp["eot"] or len(tokens) > n_ctx:
            break
    out = tokens[sample_begin:]
    if sp["eot"] in out:
        out = out[: out.index(sp["eot"])]
    return dict(tokens=out, avg_logprob=sum_lp / (len(out) + 1), no_speech_prob=no_speech_prob,
                temperature=temperature)


def decode_openai(tokens, vocab, sp):
    """tokenizer.decode: tokens below timestamp_begin, special tokens spelled out."""
    tb = sp["no_timestamps"] + 1
    names = {sp["eot"]: "<|endoftext|>", sp["sot"]: "<|startoftranscript|>",
             sp["translate"]: "<|translate|>", sp["transcribe"]: "<|transcribe|>",
             sp["sot_lm"]: "<|startoflm|>", sp["sot_prev"]: "<|startofprev|>",
             sp["no_speech"]: "<|nospeech|>", sp["no_timestamps"]: "<|notimestamps|>"}
    for i in range(sp["translate"] - sp["sot"] - 1):
        names[sp["sot"] + 1 + i] = "<|%s|>" % LANGUAGES[i]
    out = b""
    for t in tokens:
        if t < sp["eot"]:
            out += vocab[t]
        elif t < tb:
            out += names[t].encode()
    return out.decode("utf-8", errors="replace")


def compression_ratio(text):
    import zlib
    b = text.encode("utf-8")
    return len(b) / len(zlib.compress(b)) if b else 0.0


def get_end(segments):
    """transcribe.py's get_end: the end of the last word, else of the last segment, else None."""
    return next((w["end"] for s in reversed(segments) for w in reversed(s["words"])),
                segments[-1]["end"] if segments else None)


@torch.no_grad()
def transcribe(model, mel, content_frames, vocab, temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
               compression_ratio_threshold=2.4, logprob_threshold=-1.0, no_speech_threshold=0.6,
               condition_on_previous_text=True, initial_prompt_tokens=None, language=None,
               translate=False, without_timestamps=False, max_initial_timestamp=1.0, seed=0,
               sample_len=None, word_timestamps=False):
    """openai/whisper transcribe() (greedy at every temperature, default clip_timestamps, no
    hallucination_silence_threshold) on mel [n_mels, content + 3000] (the log-mel with 30 s of
    appended silence). vocab: token bytes by id (below eot). initial_prompt is passed already
    encoded (tokenizer.encode(" " + prompt.strip())). Thresholds None disable. word_timestamps:
    py/whisper_timing_reference.py's add_word_timestamps (openai's timing.py, default
    punctuations and alignment heads) on each window's segments with the window's encoder output
    and num_frames = segment_size, then transcribe.py's seek to the last word's end (unless the
    window ended with a single timestamp) and last_speech_timestamp = get_end(segments)."""
    c = model.config
    sp = special_ids(c)
    nf = 2 * c["max_source_positions"]
    tb = sp["no_timestamps"] + 1
    rng = Rng(seed)
    mel = torch.as_tensor(mel)
    if sp["multilingual"] and language is None:
        xa = model.model.encoder(mel[:, :nf])
        language = detect_language(model, xa)[0]
    input_stride = 2
    time_precision = input_stride * 160 / 16000
    all_tokens = []
    all_segments = []
    prompt_reset_since = 0
    init = list(initial_prompt_tokens or [])
    all_tokens.extend(init)
    windows = []
    if word_timestamps:
        import whisper_timing_reference as timing
        code = LANGUAGES[language - sp["sot"] - 1] if sp["multilingual"] else "en"
        tok = timing.Tok(c, vocab, code)
        sot_sequence = [sp["sot"]]
        if sp["multilingual"]:
            sot_sequence += [language, sp["translate"] if translate else sp["transcribe"]]
        heads = timing.alignment_heads(c)
    last_speech_timestamp = 0.0
    seek = 0
    while seek < content_frames:
        time_offset = float(seek * 160 / 16000)
        segment_size = min(nf, content_frames - seek)
        seg = mel[:, seek:seek + segment_size]
        seg = F.pad(seg, (0, nf - segment_size))
        segment_duration = segment_size * 160 / 16000
        xa = model.model.encoder(seg)
        prompt = all_tokens[prompt_reset_since:]
        result = None
        tried = []
        for t in temperature:
            result = decode_window(model, xa, prompt, language, translate, without_timestamps, t,
                                   rng, sample_len, max_initial_timestamp)
            text = decode_openai(result["tokens"], vocab, sp).strip()
            result["compression_ratio"] = compression_ratio(text)
            tried.append(t)
            needs = False
            if compression_ratio_threshold is not None and \
                    result["compression_ratio"] > compression_ratio_threshold:
                needs = True
            if logprob_threshold is not None and result["avg_logprob"] < logprob_threshold:
                needs = True
            if no_speech_threshold is not None and result["no_speech_prob"] > no_speech_threshold \
                    and logprob_threshold is not None and result["avg_logprob"] < logprob_threshold:
                needs = False
            if not needs:
                break
        windows.append(dict(seek=seek, temperatures=tried))
        tokens = result["tokens"]
        if no_speech_threshold is not None:
            should_skip = result["no_speech_prob"] > no_speech_threshold
            if logprob_threshold is not None and result["avg_logprob"] > logprob_threshold:
                should_skip = False
            if should_skip:
                windows[-1]["skipped"] = True
                seek += segment_size
                continue
        current = []

        def new_segment(start, end, toks):
            text_tokens = [t for t in toks if t < sp["eot"]]
            return dict(seek=seek, start=start, end=end,
                        text=b"".join(vocab[t] for t in text_tokens).decode("utf-8", "replace"),
                        tokens=list(toks), temperature=result["temperature"],
                        avg_logprob=result["avg_logprob"],
                        compression_ratio=result["compression_ratio"],
                        no_speech_prob=result["no_speech_prob"])
        is_ts = [t >= tb for t in tokens]
        single_timestamp_ending = is_ts[-2:] == [False, True]
        consecutive = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]
        if consecutive:
            slices = list(consecutive)
            if single_timestamp_ending:
                slices.append(len(tokens))
            last_slice = 0
            for cur in slices:
                sl = tokens[last_slice:cur]
                current.append(new_segment(time_offset + (sl[0] - tb) * time_precision,
                                           time_offset + (sl[-1] - tb) * time_precision, sl))
                last_slice = cur
            if single_timestamp_ending:
                seek += segment_size
            else:
                seek += (tokens[last_slice - 1] - tb) * input_stride
        else:
            duration = segment_duration
            stamps = [t for t in tokens if t >= tb]
            if stamps and stamps[-1] != tb:
                duration = (stamps[-1] - tb) * time_precision
            current.append(new_segment(time_offset, time_offset + duration, tokens))
            seek += segment_size
        if word_timestamps:
            timing.add_word_timestamps(current, model, tok, sot_sequence, xa, segment_size, heads,
                                       last_speech_timestamp)
            if not single_timestamp_ending:
                last_word_end = get_end(current)
                if last_word_end is not None and last_word_end > time_offset:
                    seek = round(last_word_end * 100)  # FRAMES_PER_SECOND
            last_word_end = get_end(current)
            if last_word_end is not None:
                last_speech_timestamp = last_word_end
        for s in current:
            if s["start"] == s["end"] or s["text"].strip() == "":
                s["text"] = ""
                s["tokens"] = []
                if word_timestamps:
                    s["words"] = []
        for s in current:
            s["id"] = len(all_segments)
            all_segments.append(s)
            all_tokens.extend(s["tokens"])
        if not condition_on_previous_text or result["temperature"] > 0.5:
            prompt_reset_since = len(all_tokens)
    return dict(text=decode_openai(all_tokens[len(init):], vocab, sp), segments=all_segments,
                language=language if sp["multilingual"] else None, windows=windows)
