#!/usr/bin/python3
"""Word timestamps on our PyTorch Whisper (py/whisper_reference.py), written from openai/whisper's
timing.py (find_alignment, dtw_cpu + backtrace, median_filter, merge_punctuations,
add_word_timestamps) and tokenizer.py (split_to_word_tokens, split_tokens_on_spaces,
split_tokens_on_unicode, decode_with_timestamps), and model.py's default alignment heads (every
head of the last half of the decoder layers). The cross-attention scores come from the reference
model's capture (Attention.capture / .qk: q k^T / sqrt(head_dim) before the softmax, what openai's
hook keeps).

Writes tests/fixtures/whisper_{en,ml}/expected_words.json for tests/test_whisper_timing.c: the
fixtures' weights on the window of ../shared/data/audio/jfk.wav (log-mel padded to 3000 frames),
segments built here as transcribe() would hand them over (timestamp tokens around the greedy text
tokens of expected.json, with some punctuation tokens added so that merging is exercised, and for
the multilingual model tokens that are pieces of characters), their
words and adjusted start/end; plus small dtw / median-filter cases with ties (in whisper_en's).

Run from the project root:  /usr/bin/python3 py/whisper_timing_reference.py
"""
import json
import os
import string
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import whisper_reference as ref  # noqa: E402
from safetensors_io import load_safetensors  # noqa: E402
import gen_whisper_fixture as gen  # noqa: E402

HOP_LENGTH, SAMPLE_RATE, TOKENS_PER_SECOND = 160, 16000, 50
PREPEND = "\"'“¿([{-"
APPEND = "\"'.。,，!！?？:：”)]}、"
NUM_FRAMES = 1100  # jfk.wav's 11 s of content frames in the 3000-frame window


# ---- timing.py ------------------------------------------------------------------------------

def median_filter(x, filter_width):
    pad_width = filter_width // 2
    if x.shape[-1] <= pad_width:
        return x
    ndim = x.ndim
    if ndim <= 2:
        x = x[None, None, :]
    assert filter_width > 0 and filter_width % 2 == 1
    x = F.pad(x, (filter_width // 2, filter_width // 2, 0, 0), mode="reflect")
    result = x.unfold(-1, filter_width, 1).sort()[0][..., filter_width // 2]
    if ndim <= 2:
        result = result[0, 0]
    return result


def backtrace(trace):
    i = trace.shape[0] - 1
    j = trace.shape[1] - 1
    trace[0, :] = 2
    trace[:, 0] = 1
    result = []
    while i > 0 or j > 0:
        result.append((i - 1, j - 1))
        if trace[i, j] == 0:
            i -= 1
            j -= 1
        elif trace[i, j] == 1:
            i -= 1
        elif trace[i, j] == 2:
            j -= 1
        else:
            raise ValueError("Unexpected trace[i, j]")
    result = np.array(result)
    return result[::-1, :].T


def dtw_cpu(x):
    """dtw_cpu without numba: float32 costs, x float64."""
    N, M = x.shape
    cost = np.ones((N + 1, M + 1), dtype=np.float32) * np.inf
    trace = -np.ones((N + 1, M + 1), dtype=np.float32)
    cost[0, 0] = 0
    for j in range(1, M + 1):
        for i in range(1, N + 1):
            c0 = cost[i - 1, j - 1]
            c1 = cost[i - 1, j]
            c2 = cost[i, j - 1]
            if c0 < c1 and c0 < c2:
                c, t = c0, 0
            elif c1 < c0 and c1 < c2:
                c, t = c1, 1
            else:
                c, t = c2, 2
            cost[i, j] = np.float64(x[i - 1, j - 1]) + np.float64(c)
            trace[i, j] = t
    return backtrace(trace)


def dtw(x):
    return dtw_cpu(x.double().cpu().numpy())


# ---- tokenizer.py ---------------------------------------------------------------------------

class Tok:
    def __init__(self, c, ranks, language):
        self.sp = ref.special_ids(c)
        self.eot = self.sp["eot"]
        self.timestamp_begin = self.sp["no_timestamps"] + 1
        self.ranks = ranks
        self.language = language

    def decode(self, tokens):
        b = b"".join(self.ranks[t] if t < self.eot else b"<|endoftext|>"
                     for t in tokens if t < self.timestamp_begin)
        assert all(t <= self.eot for t in tokens)
        return b.decode("utf-8", errors="replace")

    def decode_with_timestamps(self, tokens):
        outputs = [[]]
        for token in tokens:
            if token >= self.timestamp_begin:
                outputs.append("<|%.2f|>" % ((token - self.timestamp_begin) * 0.02))
                outputs.append([])
            else:
                outputs[-1].append(token)
        return "".join(s if isinstance(s, str) else self.decode(s) for s in outputs)

    def split_to_word_tokens(self, tokens):
        if self.language in {"zh", "ja", "th", "lo", "my", "yue"}:
            return self.split_tokens_on_unicode(tokens)
        return self.split_tokens_on_spaces(tokens)

    def split_tokens_on_unicode(self, tokens):
        decoded_full = self.decode_with_timestamps(tokens)
        replacement_char = "\ufffd"
        words, word_tokens, current_tokens = [], [], []
        unicode_offset = 0
        for token in tokens:
            current_tokens.append(token)
            decoded = self.decode_with_timestamps(current_tokens)
            if (replacement_char not in decoded
                    or decoded_full[unicode_offset + decoded.index(replacement_char)]
                    == replacement_char):
                words.append(decoded)
                word_tokens.append(current_tokens)
                current_tokens = []
                unicode_offset += len(decoded)
        return words, word_tokens

    def split_tokens_on_spaces(self, tokens):
        subwords, subword_tokens_list = self.split_tokens_on_unicode(tokens)
        words, word_tokens = [], []
        for subword, subword_tokens in zip(subwords, subword_tokens_list):
            special = subword_tokens[0] >= self.eot
            with_space = subword.startswith(" ")
            punctuation = subword.strip() in string.punctuation
            if special or with_space or punctuation or len(words) == 0:
                words.append(subword)
                word_tokens.append(subword_tokens)
            else:
                words[-1] = words[-1] + subword
                word_tokens[-1].extend(subword_tokens)
        return words, word_tokens


# ---- alignment ------------------------------------------------------------------------------

def alignment_heads(c, heads=None):
    """openai: a boolean [layers, heads] mask -> sparse indices (sorted, no duplicates)."""
    L, H = c["decoder_layers"], c["decoder_attention_heads"]
    mask = torch.zeros(L, H, dtype=torch.bool)
    if heads is None:
        mask[L // 2:] = True
    else:
        for layer, head in heads:
            mask[layer, head] = True
    return mask.to_sparse().indices().T.tolist()


@torch.no_grad()
def find_alignment(model, tok, sot_sequence, text_tokens, xa, num_frames, heads,
                   medfilt_width=7, qk_scale=1.0):
    if len(text_tokens) == 0:
        return []
    sp = tok.sp
    tokens = torch.tensor([*sot_sequence, sp["no_timestamps"], *text_tokens, sp["eot"]])
    dec = model.model.decoder
    for b in dec.layers:
        b.encoder_attn.capture = True
    logits = dec(tokens, xa)
    QKs = [b.encoder_attn.qk for b in dec.layers]
    for b in dec.layers:
        b.encoder_attn.capture = False
    sampled_logits = logits[len(sot_sequence):, : sp["eot"]]
    token_probs = sampled_logits.softmax(dim=-1)
    text_token_probs = token_probs[np.arange(len(text_tokens)), text_tokens].tolist()

    weights = torch.stack([QKs[_l][_h] for _l, _h in heads])
    weights = weights[:, :, : num_frames // 2]
    weights = (weights * qk_scale).softmax(dim=-1)
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    weights = (weights - mean) / std
    weights = median_filter(weights, medfilt_width)
    matrix = weights.mean(axis=0)
    matrix = matrix[len(sot_sequence): -1]
    text_indices, time_indices = dtw(-matrix)

    words, word_tokens = tok.split_to_word_tokens(text_tokens + [sp["eot"]])
    if len(word_tokens) <= 1:
        return []
    word_boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    if len(word_boundaries) <= 1:
        return []
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] / TOKENS_PER_SECOND
    start_times = jump_times[word_boundaries[:-1]]
    end_times = jump_times[word_boundaries[1:]]
    word_probabilities = [np.mean(text_token_probs[i:j])
                          for i, j in zip(word_boundaries[:-1], word_boundaries[1:])]
    return [dict(word=w, tokens=t, start=s, end=e, probability=p)
            for w, t, s, e, p in zip(words, word_tokens, start_times, end_times,
                                     word_probabilities)]


def merge_punctuations(alignment, prepended, appended):
    i = len(alignment) - 2
    j = len(alignment) - 1
    while i >= 0:
        previous = alignment[i]
        following = alignment[j]
        if previous["word"].startswith(" ") and previous["word"].strip() in prepended:
            following["word"] = previous["word"] + following["word"]
            following["tokens"] = previous["tokens"] + following["tokens"]
            previous["word"] = ""
            previous["tokens"] = []
        else:
            j = i
        i -= 1
    i = 0
    j = 1
    while j < len(alignment):
        previous = alignment[i]
        following = alignment[j]
        if not previous["word"].endswith(" ") and following["word"] in appended:
            previous["word"] = previous["word"] + following["word"]
            previous["tokens"] = previous["tokens"] + following["tokens"]
            following["word"] = ""
            following["tokens"] = []
        else:
            i = j
        j += 1


def add_word_timestamps(segments, model, tok, sot_sequence, xa, num_frames, heads,
                        last_speech_timestamp):
    """Returns the new last_speech_timestamp (as transcribe() sets it after the call)."""
    if len(segments) == 0:
        return last_speech_timestamp
    text_tokens_per_segment = [[t for t in s["tokens"] if t < tok.eot] for s in segments]
    text_tokens = [t for ts in text_tokens_per_segment for t in ts]
    alignment = find_alignment(model, tok, sot_sequence, text_tokens, xa, num_frames, heads)
    word_durations = np.array([t["end"] - t["start"] for t in alignment])
    word_durations = word_durations[word_durations.nonzero()]
    median_duration = np.median(word_durations) if len(word_durations) > 0 else 0.0
    median_duration = min(0.7, float(median_duration))
    max_duration = median_duration * 2
    if len(word_durations) > 0:
        sentence_end_marks = ".。!！?？"
        for i in range(1, len(alignment)):
            if alignment[i]["end"] - alignment[i]["start"] > max_duration:
                if alignment[i]["word"] in sentence_end_marks:
                    alignment[i]["end"] = alignment[i]["start"] + max_duration
                elif alignment[i - 1]["word"] in sentence_end_marks:
                    alignment[i]["start"] = alignment[i]["end"] - max_duration
    merge_punctuations(alignment, PREPEND, APPEND)
    time_offset = segments[0]["seek"] * HOP_LENGTH / SAMPLE_RATE
    word_index = 0
    for segment, text_tokens in zip(segments, text_tokens_per_segment):
        saved_tokens = 0
        words = []
        while word_index < len(alignment) and saved_tokens < len(text_tokens):
            timing = alignment[word_index]
            if timing["word"]:
                words.append(dict(word=timing["word"],
                                  start=round(time_offset + timing["start"], 2),
                                  end=round(time_offset + timing["end"], 2),
                                  probability=timing["probability"]))
            saved_tokens += len(timing["tokens"])
            word_index += 1
        if len(words) > 0:
            if words[0]["end"] - last_speech_timestamp > median_duration * 4 and (
                    words[0]["end"] - words[0]["start"] > max_duration
                    or (len(words) > 1 and words[1]["end"] - words[0]["start"] > max_duration * 2)):
                if len(words) > 1 and words[1]["end"] - words[1]["start"] > max_duration:
                    boundary = max(words[1]["end"] / 2, words[1]["end"] - max_duration)
                    words[0]["end"] = words[1]["start"] = boundary
                words[0]["start"] = max(0, words[0]["end"] - max_duration)
            if segment["start"] < words[0]["end"] and segment["start"] - 0.5 > words[0]["start"]:
                words[0]["start"] = max(0, min(words[0]["end"] - median_duration, segment["start"]))
            else:
                segment["start"] = words[0]["start"]
            if segment["end"] > words[-1]["start"] and segment["end"] + 0.5 < words[-1]["end"]:
                words[-1]["end"] = max(words[-1]["start"] + median_duration, segment["end"])
            else:
                segment["end"] = words[-1]["end"]
            last_speech_timestamp = segment["end"]
        segment["words"] = words
    ends = [w["end"] for s in segments for w in s["words"]]
    return ends[-1] if ends else last_speech_timestamp


# ---- fixtures -------------------------------------------------------------------------------

def load_model(d):
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    model = ref.Whisper(c)
    sd = {k: torch.from_numpy(v.astype(np.float32)) for k, v in
          load_safetensors(os.path.join(d, "model.safetensors")).items()}
    model.load_state_dict(sd)
    model.eval()
    return c, model


def make_segments(tok, text):
    """Three segments of one window (seek 0): <|0.00|> a <|4.00|>, <|4.00|> b <|10.00|>,
    <|10.00|> <|11.00|> (no text)."""
    tb = tok.timestamp_begin
    h = len(text) // 2
    toks = [[tb] + text[:h] + [tb + 200], [tb + 200] + text[h:] + [tb + 500], [tb + 500, tb + 550]]
    return [dict(seek=0, start=(t[0] - tb) * 0.02, end=(t[-1] - tb) * 0.02, tokens=t) for t in toks]


def run_case(c, model, tok, xa, sot, text, heads=None):
    hs = alignment_heads(c, heads)
    segs = make_segments(tok, text)
    inp = [dict(s, tokens=list(s["tokens"])) for s in segs]
    last = add_word_timestamps(segs, model, tok, sot, xa, NUM_FRAMES, hs, 0.0)
    return dict(sot=sot, num_frames=NUM_FRAMES, heads=hs, file_heads=heads,
                segments_in=[{k: s[k] for k in ("seek", "start", "end", "tokens")} for s in inp],
                segments=[dict(start=s["start"], end=s["end"],
                               words=[dict(w, probability=float(w["probability"]))
                                      for w in s["words"]]) for s in segs],
                last_speech_timestamp=last)


def unit_cases():
    rng = np.random.default_rng(15)
    dtws = []
    mats = [np.round(rng.standard_normal((5, 7)) * 2) / 4,  # many ties
            np.zeros((3, 4)), np.ones((4, 2)), np.arange(6, dtype=np.float64).reshape(1, 6),
            np.array([[0.5], [0.25], [0.5]]), rng.standard_normal((6, 9)).astype(np.float32)]
    for x in mats:
        x = np.asarray(x, dtype=np.float32).astype(np.float64)
        ti, tj = dtw_cpu(x)
        dtws.append(dict(x=x.tolist(), text=ti.tolist(), time=tj.tolist()))
    meds = []
    for x in [np.round(rng.standard_normal((2, 11)) * 2) / 2, np.array([[3.0, 1.0, 2.0]]),
              np.array([[4.0, 1.0, 1.0, 3.0]]), rng.standard_normal((3, 8)).astype(np.float32)]:
        t = torch.tensor(np.asarray(x, dtype=np.float32))
        meds.append(dict(x=t.tolist(), y=median_filter(t, 7).tolist()))
    return dict(dtw=dtws, median=meds)


def punct(ranks, s):
    rank_of = {}
    for i, t in enumerate(ranks):
        rank_of.setdefault(t, i)
    return ref.bpe(rank_of, s.encode())


def main():
    mel = gen.jfk_mel()
    for kind, (d, _, tiktoken, _, _) in gen.REAL.items():
        c, model = load_model(d)
        ranks = ref.load_ranks(os.path.join(gen.TOKENIZERS, tiktoken))
        with open(os.path.join(d, "expected.json")) as f:
            greedy = json.load(f)["default"]["tokens"]
        sp = ref.special_ids(c)
        xa = model.model.encoder(torch.as_tensor(mel)).detach()
        comma, dot, bang, quote = (punct(ranks, s) for s in (",", ".", "!", ' "'))
        assert all(len(p) == 1 for p in (comma, dot, bang, quote))
        g = greedy
        text = g[:2] + comma + g[2:4] + dot + quote + g[4:7] + bang + g[7:]
        out = {"tiktoken": tiktoken, "cases": {}}
        if sp["multilingual"]:
            # tokens that are pieces of characters (鬱 = [b"\xe9\xac", b"\xb1"], ， in three
            # single bytes): a whisper.cpp file lost the bytes of the longer pieces, so these run
            # on the Hugging Face directory (with the .tiktoken vocabulary) only
            pieces = (punct(ranks, " 你好") + punct(ranks, "鬱") + punct(ranks, "。") + g[:4] +
                      punct(ranks, "，") + punct(ranks, " 龘") + g[4:])
            for code in ("de", "zh"):
                tok = Tok(c, ranks, code)
                sot = [sp["sot"], ref.language_token(c, code), sp["transcribe"]]
                out["cases"][code] = run_case(c, model, tok, xa, sot, text)
                out["cases"][code + "_pieces"] = dict(run_case(c, model, tok, xa, sot, pieces),
                                                      hf_only=True)
        else:
            tok = Tok(c, ranks, None)
            out["cases"]["en"] = run_case(c, model, tok, xa, [sp["sot"]], text)
            out["cases"]["en_heads"] = run_case(c, model, tok, xa, [sp["sot"]], text,
                                                heads=[[1, 0], [0, 1], [1, 0]])
            out.update(unit_cases())
        path = os.path.join(d, "expected_words.json")
        with open(path, "w") as f:
            json.dump(out, f, indent=None, ensure_ascii=True)
            f.write("\n")
        for k, v in out["cases"].items():
            print(d, k, [(w["word"], w["start"], w["end"]) for s in v["segments"]
                         for w in s["words"]], [(s["start"], s["end"]) for s in v["segments"]],
                  file=sys.stderr)


if __name__ == "__main__":
    main()
