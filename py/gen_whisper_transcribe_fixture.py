#!/usr/bin/python3
"""Expected outputs of openai/whisper's transcribe() (our PyTorch reference,
py/whisper_reference.py transcribe()) on the real-vocabulary fixtures tests/fixtures/whisper_en
and whisper_ml (weights as py/gen_whisper_fixture.py wrote them; not changed here), written to
tests/fixtures/whisper_{en,ml}/transcribe.json for tests/test_whisper_transcribe.c.

Inputs: ../shared/data/audio/jfk.wav ("jfk", 11 s) and jfk three times over ("jfk3", 33 s: two
windows or more), as log_mel_spectrogram(audio, padding=480000) (sg_log_mel_padded) with the
content frames = frames - 3000. Each case is run with two vocabularies, since the texts (and so
the compression ratios, the cleared segments and the prompts) may differ: "hf", the tiktoken
ranks of ../shared/tokenizers (what a Hugging Face directory with that *.tiktoken decodes), and
"ggml", the fixture's whisper.cpp file's token texts (single bytes restored). Initial prompts are
encoded with the tiktoken ranks (GPT-2's pattern + BPE); the C code encodes them for a ggml file
with the file's token texts as ranks, the same ids for this ASCII prompt.

Run from the project root:  /usr/bin/python3 py/gen_whisper_transcribe_fixture.py [en] [ml]
"""
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import whisper_reference as ref  # noqa: E402
import gen_mel_fixture as melref  # noqa: E402
import gen_whisper_fixture as gen  # noqa: E402
import gpt2_tokenizer_reference as gpt2  # noqa: E402
from safetensors_io import load_safetensors  # noqa: E402

PROMPT = "  Ask not what your country can do.  "
GREEDY = {"logprob_threshold": None}  # the random models' avg_logprob is below -1: no fallback
WORDS = {"word_timestamps": True}
CASES = {  # name: (audio, options; None = the threshold disabled)
    "en": [
        ("default", "jfk", {}),
        ("long", "jfk3", {}),
        ("greedy", "jfk", GREEDY),
        ("long_greedy", "jfk3", GREEDY),
        ("prompt", "jfk", dict(GREEDY, initial_prompt=PROMPT)),
        ("notimestamps", "jfk", dict(GREEDY, without_timestamps=True)),
        ("noprev", "jfk3", dict(GREEDY, condition_on_previous_text=False)),
        ("seeded", "jfk", {"seed": 1234, "temperature": [0.0, 0.5]}),
        # sampled at 0.8: the second window ends in a single timestamp (single_timestamp_ending)
        ("single_ending", "jfk3", {"seed": 0, "temperature": [0.8], "logprob_threshold": None}),
        ("skip", "jfk", {"no_speech_threshold": 0.0, "logprob_threshold": 0.0,
                         "temperature": [0.0]}),
        # word timestamps: transcribe()'s seek to the last word's end and last_speech_timestamp
        ("words", "jfk", WORDS),
        ("long_words", "jfk3", WORDS),
        ("long_greedy_words", "jfk3", dict(GREEDY, **WORDS)),
    ],
    "ml": [
        ("default", "jfk", {}),
        ("long_greedy", "jfk3", GREEDY),
        ("prompt", "jfk", dict(GREEDY, initial_prompt=PROMPT)),
        ("translate", "jfk", dict(GREEDY, translate=True)),
        ("en_translate", "jfk", dict(GREEDY, language="en", translate=True)),
        ("notimestamps", "jfk", {"without_timestamps": True}),
        ("fallback", "jfk3", {"seed": 99}),
        ("skip", "jfk", {"no_speech_threshold": 0.0, "logprob_threshold": 0.0,
                         "temperature": [0.0]}),
        ("words", "jfk", WORDS),
        ("long_words", "jfk3", WORDS),
        ("long_greedy_words", "jfk3", dict(GREEDY, **WORDS)),
    ],
}


def load_model(d):
    c = json.load(open(os.path.join(d, "config.json")))
    model = ref.Whisper(c)
    sd = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in
          load_safetensors(os.path.join(d, "model.safetensors")).items()}
    missing = model.load_state_dict(sd, strict=False)
    assert all(k.endswith("encoder.embed_positions.weight") for k in missing.missing_keys), missing
    model.eval()
    return model, c


def mels():
    jfk = melref.load_jfk()
    with np.load(os.path.join(gen.TOKENIZERS, "whisper_mel_filters.npz")) as f:
        filters = f["mel_80"]
    out = {}
    for name, audio in (("jfk", jfk), ("jfk3", np.concatenate([jfk] * 3))):
        mel = melref.log_mel_spectrogram(audio, filters, padding=480000)
        out[name] = (mel, mel.shape[-1] - 3000)
    return out


def run(model, c, mel, content, vocab, opts, enc):
    o = dict(opts)
    kw = {}
    if "initial_prompt" in o:
        kw["initial_prompt_tokens"] = enc.encode_ordinary(" " + o.pop("initial_prompt").strip())
    if "language" in o:
        kw["language"] = ref.language_token(c, o.pop("language"))
    if "temperature" in o:
        kw["temperature"] = tuple(o.pop("temperature"))
    kw.update(o)
    r = ref.transcribe(model, mel, content, vocab, **kw)
    if "initial_prompt_tokens" in kw:
        r["initial_prompt_tokens"] = kw["initial_prompt_tokens"]
    return r


def main(argv):
    ms = mels()
    for kind, cases in CASES.items():
        if argv and kind not in argv:
            continue
        d, _, tiktoken, _, _ = gen.REAL[kind]
        model, c = load_model(d)
        sp = ref.special_ids(c)
        ranks = ref.load_ranks(os.path.join(gen.TOKENIZERS, tiktoken))
        enc = gpt2.Encoding({t: i for i, t in enumerate(ranks) if t})
        _, file_vocab = gen.ggml_header_tail(os.path.join(d, "ggml-model.bin"))
        vocabs = {"hf": ranks, "ggml": [ranks[i] if i < 256 else t for i, t in
                                        enumerate(file_vocab)]}
        out = {"tiktoken": tiktoken, "cases": []}
        for name, audio, opts in cases:
            mel, content = ms[audio]
            case = {"name": name, "audio": audio, "content_frames": content, "options": opts}
            for v, vocab in vocabs.items():
                t0 = time.time()
                r = run(model, c, mel, content, vocab, opts, enc)
                case[v] = r
                print("%s %s %s: %.1fs windows %s segments %d text %r" % (
                    kind, name, v, time.time() - t0, r["windows"], len(r["segments"]),
                    r["text"][:60]), file=sys.stderr)
            out["cases"].append(case)
        with open(os.path.join(d, "transcribe.json"), "w") as f:
            json.dump(out, f, indent=0)
        print("%s: %d bytes" % (d, os.path.getsize(os.path.join(d, "transcribe.json"))),
              file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
