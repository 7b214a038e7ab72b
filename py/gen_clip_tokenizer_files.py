#!/usr/bin/env python3
"""Writes the CLIP tokenizer files in the Hugging Face layout (vocab.json + merges.txt) from
openai's bpe_simple_vocab_16e6.txt.gz, building the vocabulary in the same order and with the same
ids as openai's SimpleTokenizer: the 256 byte-level characters, the same with "</w>", one entry
per merge (the pair joined), then <|startoftext|> and <|endoftext|>.

Usage: gen_clip_tokenizer_files.py BPE_GZ OUT_DIR
  e.g. py/gen_clip_tokenizer_files.py ../shared/tokenizers/clip_bpe_simple_vocab_16e6.txt.gz \
           tests/fixtures/clip_tokenizer
Standard library only."""
import gzip
import json
import os
import sys

# openai keeps lines[1 : 49152 - 256 - 2 + 1] of the file: 48894 merges, so that the vocabulary
# (512 byte symbols + merges + 2 specials) has 49408 entries.
N_MERGES = 49152 - 256 - 2


def byte_symbols():
    """The 256 byte-level characters in openai's order: printable Latin-1 bytes map to
    themselves (listed first), the other 68 bytes to U+0100.. in byte order (listed after)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = [chr(b) for b in printable]
    extra = 0
    for b in range(256):
        if b not in printable:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    with gzip.open(argv[1], "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:N_MERGES + 1]]
    for i, m in enumerate(merges):
        if len(m) != 2:
            sys.stderr.write("line %d: not a pair: %r\n" % (i + 2, lines[i + 1]))
            return 1

    syms = byte_symbols()
    vocab = syms + [s + "</w>" for s in syms]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    encoder = {}
    for i, tok in enumerate(vocab):
        encoder[tok] = i  # openai's dict(zip(vocab, range)): a repeated string keeps the last id
    if len(encoder) != len(vocab):
        sys.stderr.write("warning: %d repeated vocabulary strings\n" % (len(vocab) - len(encoder)))

    os.makedirs(argv[2], exist_ok=True)
    # Same serialisation as the files on the Hugging Face hub: one JSON object in id order,
    # non-ASCII characters written as themselves.
    with open(os.path.join(argv[2], "vocab.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(encoder, ensure_ascii=False))
        f.write("\n")
    with open(os.path.join(argv[2], "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write("%s %s\n" % (a, b))
    sys.stdout.write("wrote %d vocabulary entries and %d merges to %s\n"
                     % (len(encoder), len(merges), argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
