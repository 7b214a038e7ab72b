#!/usr/bin/python3
"""Reference GPT-2 byte-level BPE tokenizer: tiktoken's encode_ordinary and decode, written from
scratch for this project to produce the ids that tests/test_gpt2_tokenizer.c checks
src/models/gpt2_tokenizer.c against. Needs only Debian's python3-regex (for \\p{L} / \\p{N}, as
GPT-2 and tiktoken use) and the standard library; run it with /usr/bin/python3.

The vocabulary is a .tiktoken ranks file ("<base64 token bytes> <rank>" per line). Encoding:
  1. split the text with GPT-2's pattern (PATTERN below; case-sensitive);
  2. a piece whose bytes are a token is that token (tiktoken's shortcut);
  3. otherwise start from its single bytes and repeatedly merge the adjacent pair whose
     concatenation has the lowest rank (the leftmost one on a tie) until no pair is a token.
<|endoftext|> is rank count (max rank + 1); as text it is encoded like any other text.

Invalid UTF-8 (bytes input only; tiktoken takes str and cannot see it): the bytes are decoded
with errors="surrogateescape", so each byte that is not part of a valid sequence becomes one lone
surrogate, which the pattern treats like punctuation ([^\\s\\p{L}\\p{N}]); each piece is turned
back into its original bytes. decode(encode(b)) == b for every byte string.

Commands:
  gpt2_tokenizer_reference.py encode RANKS TEXT        print the ids of TEXT
  gpt2_tokenizer_reference.py decode RANKS ID...       print the bytes of the ids (repr)
  gpt2_tokenizer_reference.py hf RANKS OUTDIR [N]      write OUTDIR/vocab.json + merges.txt in
                                                       Hugging Face's GPT-2 layout (only ranks < N
                                                       if N is given; <|endoftext|> gets id N)
  gpt2_tokenizer_reference.py check-hf RANKS FILE...   encode the text files with the ranks and
                                                       with GPT-2's merges.txt algorithm on the
                                                       reconstructed merges; report differences
  gpt2_tokenizer_reference.py cases SHARED_TOKENIZERS OUTDIR
                                                       write OUTDIR/cases.json and the small
                                                       Hugging Face fixture OUTDIR/small/
  gpt2_tokenizer_reference.py random RANKS N SEED OUT  N random tricky strings and their ids, one
                                                       JSON object per line (differential tests)
"""
import base64
import json
import os
import random
import sys

import regex

EOT = "<|endoftext|>"
PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

# Ranks of the small Hugging Face fixture: the 256 bytes and the first 4744 merges.
SMALL_RANKS = 5000


def load_ranks(path):
    """bytes -> rank, as tiktoken's load_tiktoken_bpe (base64.b64decode("=") is b"")."""
    ranks = {}
    with open(path, "rb") as f:
        for line in f.read().splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    return ranks


def byte_pair_merge(piece, ranks, limit=None):
    """tiktoken's merge loop on bytes; only tokens of rank < limit if limit is given."""
    parts = [piece[i:i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is None or (limit is not None and r >= limit):
                continue
            if best is None or r < best[0]:
                best = (r, i)
        if best is None:
            break
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts


def pieces(data):
    """The pre-tokenised pieces of str or bytes input, as bytes."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "surrogateescape")
    return [p.encode("utf-8", "surrogateescape") for p in PATTERN.findall(data)]


class Encoding:
    def __init__(self, ranks):
        self.ranks = ranks
        self.eot = max(ranks.values()) + 1
        self.decoder = {r: t for t, r in ranks.items()}
        self.decoder[self.eot] = EOT.encode()

    def encode_ordinary(self, data):
        ids = []
        for piece in pieces(data):
            if piece in self.ranks:
                ids.append(self.ranks[piece])
            else:
                ids.extend(self.ranks[p] for p in byte_pair_merge(piece, self.ranks))
        return ids

    def decode_bytes(self, ids):
        return b"".join(self.decoder[i] for i in ids)


def restricted(ranks, n):
    return {t: r for t, r in ranks.items() if r < n}


# --- Hugging Face layout --------------------------------------------------------------------------

def bytes_to_unicode():
    """GPT-2's printable stand-in for each byte: printable Latin-1 bytes are themselves, the other
    68 get U+0100, U+0101, ... in byte order."""
    keep = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


BYTE_CHAR = bytes_to_unicode()


def spell(token):
    return "".join(BYTE_CHAR[b] for b in token)


def reconstruct_merges(ranks):
    """[(left bytes, right bytes)] in rank order: each multi-byte token split by running the merge
    loop on its own bytes with only lower ranks until two parts remain."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) < 2:
            continue
        parts = byte_pair_merge(token, ranks, limit=rank)
        if len(parts) != 2:
            raise ValueError("token %r (rank %d) does not split into two" % (token, rank))
        merges.append((parts[0], parts[1]))
    return merges


def write_hf(ranks, outdir):
    os.makedirs(outdir, exist_ok=True)
    eot = max(ranks.values()) + 1
    vocab = {spell(t): r for t, r in sorted(ranks.items(), key=lambda kv: kv[1])}
    vocab[EOT] = eot
    with open(os.path.join(outdir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(outdir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in reconstruct_merges(ranks):
            f.write("%s %s\n" % (spell(a), spell(b)))


class MergesBPE:
    """GPT-2's own encoder.py algorithm on vocab.json + merges.txt: merge every occurrence of the
    lowest-ranked adjacent pair of symbols, then look again (no whole-piece shortcut)."""

    def __init__(self, directory):
        with open(os.path.join(directory, "vocab.json"), encoding="utf-8") as f:
            self.encoder = json.load(f)
        with open(os.path.join(directory, "merges.txt"), encoding="utf-8") as f:
            lines = f.read().split("\n")[1:]
        self.bpe_ranks = {}
        for rank, line in enumerate(l for l in lines if l.strip()):
            self.bpe_ranks[tuple(line.split())] = rank

    def bpe(self, word):
        word = list(word)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if best not in self.bpe_ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def encode(self, data):
        ids = []
        for piece in pieces(data):
            ids.extend(self.encoder[s] for s in self.bpe(spell(piece)))
        return ids


# --- test cases ---------------------------------------------------------------------------------

SNN_PROMPT = ("You are a helpful assistant for smart glasses users. Use the provided visual context "
              "when available to deliver concise, actionable answers.\n\nVisual context: No visual "
              "input\nUser query: what time is it")


def case_list():
    """(name, text) pairs; text is str, or bytes for the invalid UTF-8 cases."""
    rng = random.Random(20240611)
    long_word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3000))
    return [
        ("empty", ""),
        ("hello world", "Hello world"),
        ("hello, world!", "Hello, world!"),
        ("SNN system prompt", SNN_PROMPT),
        ("SNN prompt with scene", SNN_PROMPT.replace(
            "No visual input", "Scene appears to be: street scene (confidence: 71.35%)\n"
            "Alternatively: outdoor environment (12.04%)")),
        ("emoji", "\U0001f600 smile \U0001f408"),
        ("emoji skin tone", "\U0001f44d\U0001f3fd ok \U0001f44b\U0001f3ff"),
        ("emoji ZWJ family", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"),
        ("emoji flags", "\U0001f1fa\U0001f1f8 \U0001f3f3\ufe0f\u200d\U0001f308"),
        ("emoji keycap", "#\ufe0f\u20e3 1\ufe0f\u20e3"),
        ("accent precomposed", "caf\u00e9 na\u00efve r\u00e9sum\u00e9"),
        ("accent decomposed (no normalisation)", "cafe\u0301 nai\u0308ve"),
        ("capital accents", "\u00c5NGSTR\u00d6M \u00c9COLE A\u030a"),
        ("CJK", "\u4f60\u597d\uff0c\u4e16\u754c\uff01"),
        ("Japanese", "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c \u30ab\u30e1\u30e9"),
        ("Korean", "\uc548\ub155\ud558\uc138\uc694"),
        ("Arabic", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645"),
        ("Hebrew with points", "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd"),
        ("Hindi (combining marks split words)", "\u0928\u092e\u0938\u094d\u0924\u0947 "
         "\u0926\u0941\u0928\u093f\u092f\u093e"),
        ("Thai", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a"),
        ("Russian", "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!"),
        ("Greek", "\u039f\u0394\u039f\u03a3 \u03ba\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1"),
        ("number 1234567", "1234567"),
        ("number 3.14159", "3.14159"),
        ("number 1,000", "1,000"),
        ("numbers in text", "I have 3 cats, 12 dogs and -42.5 fish in 2024"),
        ("other numerals", "\u00bd x\u00b2 \u2162 \u0663\u0664\u0665 \u2460 \u0967\u0968"),
        ("repeated spaces", "a   b"),
        ("two spaces before word", "a  b"),
        ("trailing spaces", "end   "),
        ("trailing single space", "end "),
        ("leading spaces", "   start"),
        ("leading single space", " start"),
        ("only spaces", "     "),
        ("single space", " "),
        ("tabs", "a\tb\t\tc\t"),
        ("newlines", "\n\n\n"),
        ("newlines between words", "a\n\n\nb"),
        ("CRLF", "line one\r\nline two\r\n"),
        ("space then newline", "a \n b  \n\n  c"),
        ("indented code", "if x:\n    return y\n        \n"),
        ("NBSP and other spaces", "a\u00a0b \u00a0c\u3000d\u2009e\u2028f\u0085g"),
        ("space before digits and punctuation", "x 1 !? 2  ... 3"),
        ("contractions", "don't I'll we've they're I'm she'd it's"),
        ("contractions upper case", "DON'T I'LL WE'VE 'S 'T 'RE"),
        ("apostrophe oddities", "''s 'sup rock 'n' roll o'clock ' s"),
        ("typographic apostrophe", "don\u2019t it\u2019s"),
        ("<|endoftext|> as text", "<|endoftext|>"),
        ("<|endoftext|> inside text", "a<|endoftext|>b <|endoftext|> c"),
        ("python code", "def square(x: int) -> int:\n    return x ** 2  # square it\n"),
        ("C code", "int main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n"),
        ("JSON", "{\"text\": \"hi\", \"max_tokens\": 50, \"ok\": [true, null]}"),
        ("URL and email", "See https://example.com/a/b?q=1&r=two#frag or mail bob@example.org."),
        ("punctuation runs", "Wait... what?!?! (yes) -- no/maybe; [ok] {x} <y> ~~~ ***"),
        ("mixed scripts and symbols", "iPhone 15 Pro\u2122 costs $1,199.99 \u2014 \u20ac1.099,00!"),
        ("control characters", "bell\x07 del\x7f esc\x1b[0m nul\x00end"),
        ("separators \\x1c-\\x1f (not regex \\s)", "a\x1cb \x1fc"),
        ("vertical tab and form feed", "a\x0bb\x0c c"),
        ("characters without a token", "\ufffd \uffff \U0010fffd \u0378 \ue000x"),
        ("Unicode 15 letters and digits", "a\U00031350b \U0001e4d0\U0001e4f1 \U00011f50"),
        ("combining mark after space", "a \u0301b"),
        ("zero-width characters", "zero\u200bwidth soft\u00adhyphen joiner\u200d"),
        ("long random word", long_word),
        ("1000 a's", "a" * 1000),
        ("500 spaces then x", " " * 500 + "x"),
        ("repeated punctuation", "!" * 200 + "?" * 3),
        ("long digit run", "31415926535897932384626433832795028841971693993751"),
        ("German", "Stra\u00dfe \u00fcber \u00c4rger gro\u00df"),
        ("Vietnamese", "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u"),
        ("invalid UTF-8: lone bytes", b"ab\xff\xfecd \xe2\x82 x\xc3"),
        ("invalid UTF-8: encoded surrogate and overlong", b"x\xed\xa0\x80y \xc0\xaf \xf8\x88"),
        ("invalid UTF-8: continuation bytes after space", b"a \x80\x81b"),
    ]


def hexstr(b):
    return b.hex()


def case_entry(enc, name, text):
    data = text.encode("utf-8") if isinstance(text, str) else text
    ids = enc.encode_ordinary(text)
    if enc.decode_bytes(ids) != data:
        raise AssertionError("round trip failed for %r" % name)
    entry = {"name": name}
    if isinstance(text, str):
        entry["text"] = text
    else:
        entry["hex"] = hexstr(text)
        entry["invalid_utf8"] = True
    entry["ids"] = ids
    return entry


def write_cases(shared, outdir):
    ranks = load_ranks(os.path.join(shared, "gpt2.tiktoken"))
    enc = Encoding(ranks)
    cases = [case_entry(enc, name, text) for name, text in case_list()]

    # Partial decodes: the first token of a multi-token character gives an incomplete sequence.
    decodes = []
    for ids in ([enc.eot], enc.encode_ordinary("\U0001f600")[:1], enc.encode_ordinary("\u4f60")[:2],
                [enc.eot, enc.encode_ordinary(" hi")[0], enc.eot], []):
        decodes.append({"ids": ids, "hex": hexstr(enc.decode_bytes(ids))})

    # The small Hugging Face fixture: ranks < SMALL_RANKS, <|endoftext|> = SMALL_RANKS.
    small_ranks = restricted(ranks, SMALL_RANKS)
    small_dir = os.path.join(outdir, "small")
    write_hf(small_ranks, small_dir)
    small_enc = Encoding(small_ranks)
    small_merges = MergesBPE(small_dir)
    small = []
    for name, text in case_list():
        ids = small_enc.encode_ordinary(text)
        if small_merges.encode(text) != ids:
            raise AssertionError("small fixture: merges BPE differs on %r" % name)
        entry = {"name": name, "ids": ids}
        small.append(entry)

    multi = Encoding(load_ranks(os.path.join(shared, "multilingual.tiktoken")))
    multilingual = []
    for text in ["Hello world", " the quick brown fox", "\u4f60\u597d\uff0c\u4e16\u754c",
                 "Bonjour \u00e0 tous, \u00e7a va ?", "\u041f\u0440\u0438\u0432\u0435\u0442",
                 "\u3053\u3093\u306b\u3061\u306f", SNN_PROMPT]:
        multilingual.append({"text": text, "ids": multi.encode_ordinary(text)})

    doc = {
        "about": "Expected GPT-2 ids (tiktoken encode_ordinary semantics) from "
                 "py/gpt2_tokenizer_reference.py. 'cases' use gpt2.tiktoken; a case has 'text' "
                 "(valid UTF-8) or 'hex' (invalid UTF-8: pre-tokenised as if each bad byte were "
                 "punctuation, a documented extension). 'small' holds the ids of the same cases "
                 "with only ranks < %d, as tests/fixtures/gpt2_tokenizer/small/ (Hugging Face "
                 "layout) gives them. 'decodes' are decode expectations (hex bytes), "
                 "'multilingual' uses multilingual.tiktoken." % SMALL_RANKS,
        "eot": enc.eot,
        "vocab_size": enc.eot + 1,
        "cases": cases,
        "decodes": decodes,
        "small_eot": SMALL_RANKS,
        "small": small,
        "multilingual_eot": multi.eot,
        "multilingual": multilingual,
    }
    with open(os.path.join(outdir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print("wrote %d cases to %s" % (len(cases), outdir))


# --- random strings for differential testing ------------------------------------------------------

_POOL = (list("aAzZsStTmMdDlLrReEvV019 '.,!?-_#<>|\t\n\r\x0b\x0c") +
         ["  ", "   ", " \n", "\n\n", "\r\n", "\x1c", "\x85", "\xa0", "\u3000", "\u2028", "\u2009",
          "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "\u2019", "<|endoftext|>",
          "\u0301", "\u0345", "\u00ad", "\u200d", "\u00e9", "e\u0301", "\u00df", "\u4e16",
          "\u3042", "\u0645", "\u0416", "\u0928\u094d", "\U0001f600", "\U0001f3fd", "\ufe0f",
          "\u2160", "\u00bd", "\u0663", "\U00031350", "\U0001e4f1", "\U00011f50", "\ufffd",
          "\uffff", "\ue000", "\u0378", "\x00", "\x07", "\x7f", " the", " and", "ing", "1,000",
          "3.14"])
_BAD = [b"\xff", b"\x80", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"]


def random_bytes(rng):
    parts = []
    for _ in range(rng.randrange(0, 24)):
        r = rng.random()
        if r < 0.7:
            parts.append(rng.choice(_POOL).encode())
        elif r < 0.82:
            parts.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                                 for _ in range(rng.randrange(1, 12))).encode())
        elif r < 0.92:
            cp = rng.randrange(1, 0x110000)
            if not 0xD800 <= cp <= 0xDFFF:
                parts.append(chr(cp).encode())
        else:
            parts.append(rng.choice(_BAD))
    return b"".join(parts)


def write_random(enc, count, seed, out):
    rng = random.Random(seed)
    with open(out, "w", encoding="utf-8") as f:
        for _ in range(count):
            data = random_bytes(rng)
            f.write(json.dumps({"hex": data.hex(), "ids": enc.encode_ordinary(data)}) + "\n")


def check_hf(ranks, files):
    import tempfile
    enc = Encoding(ranks)
    with tempfile.TemporaryDirectory() as d:
        write_hf(ranks, d)
        merges = MergesBPE(d)
        n = diff = 0
        for path in files:
            with open(path, "rb") as f:
                data = f.read()
            for line in data.split(b"\n"):
                n += 1
                if enc.encode_ordinary(line) != merges.encode(line):
                    diff += 1
                    print("differs: %r" % line[:80])
    print("%d lines, %d differ" % (n, diff))
    return 1 if diff else 0


def main(argv):
    if len(argv) == 4 and argv[1] == "encode":
        print(" ".join(str(i) for i in Encoding(load_ranks(argv[2])).encode_ordinary(argv[3])))
        return 0
    if len(argv) >= 3 and argv[1] == "decode":
        print(repr(Encoding(load_ranks(argv[2])).decode_bytes(int(a) for a in argv[3:])))
        return 0
    if len(argv) in (4, 5) and argv[1] == "hf":
        ranks = load_ranks(argv[2])
        if len(argv) == 5:
            ranks = restricted(ranks, int(argv[4]))
        write_hf(ranks, argv[3])
        return 0
    if len(argv) >= 4 and argv[1] == "check-hf":
        return check_hf(load_ranks(argv[2]), argv[3:])
    if len(argv) == 4 and argv[1] == "cases":
        write_cases(argv[2], argv[3])
        return 0
    if len(argv) == 6 and argv[1] == "random":
        write_random(Encoding(load_ranks(argv[2])), int(argv[3]), int(argv[4]), argv[5])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
