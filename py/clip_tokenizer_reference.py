#!/usr/bin/python3
"""Reference CLIP text tokenizer: openai's SimpleTokenizer semantics (clip/simple_tokenizer.py),
written from scratch for this project to produce the expected ids that tests/test_clip_tokenizer.c
checks src/models/clip_tokenizer.c against.

It reads the Hugging Face files (vocab.json, merges.txt; see py/gen_clip_tokenizer_files.py)
and needs Debian's python3-regex (for \\p{L} / \\p{N}, as openai uses). Run it with /usr/bin/python3.

Text cleaning is openai's basic_clean + whitespace_clean + lower(), with one substitution:
openai calls ftfy.fix_text first, and ftfy is not packaged for Debian 12. For well-formed text the
only thing fix_text changes that matters here is Unicode normalisation (it applies NFC); its other
fixes (mojibake repair such as "cafÃ©" -> "café", curly quotes to straight ones, removing terminal
escapes, fixing "&amp;" in text it thinks is HTML, ...) are heuristics for broken text. So this
reference, and the C tokenizer, apply unicodedata.normalize("NFC", ...) in its place. Strings that
ftfy would repair therefore tokenize differently from openai-with-ftfy.

Commands:
  clip_tokenizer_reference.py encode DIR TEXT           print the 77 ids for TEXT
  clip_tokenizer_reference.py cases DIR OUT.json        write the test cases (tests/fixtures/...)
  clip_tokenizer_reference.py random DIR N SEED OUT     N random tricky strings with untruncated
                                                        ids, one JSON object per line, for
                                                        differential testing of the C code
"""
import html
import html.entities
import json
import random
import re as stdre
import sys
import unicodedata

import regex

CONTEXT = 77
SOT = "<|startoftext|>"
EOT = "<|endoftext|>"
# openai (and Hugging Face's CLIPTokenizer) keep this many merges from the file.
MAX_MERGES = 49152 - 256 - 2

# openai's pre-tokenisation pattern, compiled with IGNORECASE as openai does. Case-insensitivity
# still matters after lower(): "'s" also matches "'ſ" (U+017F), and U+0345 matches no
# alternative at all, so it is skipped like whitespace.
PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE)
WHITESPACE_RUN = regex.compile(r"\s+")


def bytes_to_unicode():
    """Byte -> printable character used for it in the vocabulary: printable Latin-1 bytes stand
    for themselves, the other 68 get U+0100, U+0101, ... in byte order."""
    keep = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    table = {}
    extra = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


def get_pairs(symbols):
    """The set of adjacent symbol pairs of a word."""
    return {(symbols[i], symbols[i + 1]) for i in range(len(symbols) - 1)}


# --- the HTML entity subset the C tokenizer implements ------------------------------------------
# Python's html.unescape knows all 2231 HTML5 named references; src/models/clip_tokenizer.c keeps
# a subset: every legacy name that may appear without ';', the HTML 4.01 names, &apos; and every
# HTML5 name whose value lies in U+0000..U+00FF (or is "fj"). The rule is written out here so
# that cases using a name outside it can carry the ids the C code produces ("ids_sg").
def sg_entity_subset():
    h5 = html.entities.html5
    names = {k for k in h5 if not k.endswith(";")}
    names |= {k + ";" for k in html.entities.name2codepoint}
    names |= {"apos;"}
    names |= {k for k in h5 if k.endswith(";") and all(ord(c) <= 0xFF for c in h5[k])}
    return {k: h5[k] for k in names}


_CHARREF = stdre.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")


def unescape_with(entities, text):
    """html.unescape with a given table of named references (numeric ones as Python does)."""
    def replace(m):
        s = m.group(1)
        if s[0] == "#":
            return html.unescape("&" + s)
        if s in entities:
            return entities[s]
        for n in range(len(s) - 1, 1, -1):
            if s[:n] in entities:
                return entities[s[:n]] + s[n:]
        return "&" + s
    return _CHARREF.sub(replace, text)


class Tokenizer:
    def __init__(self, directory, entities="html5"):
        with open(directory + "/vocab.json", encoding="utf-8") as f:
            self.encoder = json.load(f)
        with open(directory + "/merges.txt", encoding="utf-8") as f:
            lines = f.read().strip().split("\n")[1:MAX_MERGES + 1]
        self.ranks = {}
        for rank, line in enumerate(lines):
            self.ranks[tuple(line.split())] = rank
        self.byte_char = bytes_to_unicode()
        self.cache = {SOT: [SOT], EOT: [EOT]}
        if entities == "html5":
            self.unescape = html.unescape
        else:
            table = sg_entity_subset()
            self.unescape = lambda t: unescape_with(table, t)

    def clean(self, text):
        text = unicodedata.normalize("NFC", text)  # in place of ftfy.fix_text, see above
        text = self.unescape(self.unescape(text)).strip()
        text = WHITESPACE_RUN.sub(" ", text).strip()
        return text.lower()

    def bpe(self, token):
        """Merges the byte-level characters of one pre-token; returns the list of symbols."""
        if token in self.cache:
            return self.cache[token]
        symbols = list(token[:-1]) + [token[-1] + "</w>"]
        while len(symbols) > 1:
            ranked = [p for p in get_pairs(symbols) if p in self.ranks]
            if not ranked:
                break
            first, second = min(ranked, key=self.ranks.__getitem__)
            merged = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        self.cache[token] = symbols
        return symbols

    def encode(self, text):
        """Content ids, without <|startoftext|>/<|endoftext|> around them."""
        ids = []
        for piece in PATTERN.findall(self.clean(text)):
            token = "".join(self.byte_char[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[s] for s in self.bpe(token))
        return ids

    def tokenize(self, text, context=CONTEXT):
        ids = [self.encoder[SOT]] + self.encode(text) + [self.encoder[EOT]]
        if len(ids) > context:
            ids = ids[:context - 1] + [self.encoder[EOT]]
        return ids


SCENES = ["indoor environment", "outdoor environment", "street scene", "nature scene",
          "office space", "home interior", "restaurant or cafe", "store or shopping area",
          "transportation (car, bus, train)", "people gathering"]
OBJECTS = ["person", "face", "building", "vehicle", "food", "text", "sign", "phone", "computer",
           "book", "door", "stairs", "furniture", "plant", "animal", "traffic light",
           "street sign", "product", "package", "document"]


def case_list():
    """(name, text) pairs: the label prompts the agent uses, then the hard parts of the rules."""
    cases = [("empty", ""), ("spaces only", "   "), ("basic prompt", "a photo of a cat")]
    cases += [("scene label: " + s, s) for s in SCENES]
    cases += [("object prompt: " + o, "a photo of a " + o) for o in OBJECTS]
    words = ("the quick brown fox jumps over the lazy dog while a smart glass camera watches "
             "the busy street corner near the old library").split()
    long_text = " ".join(words[i % len(words)] for i in range(200))
    long_word = ("pneumonoultramicroscopicsilicovolcanoconiosis" * 23)[:1000]
    cases += [
        ("capitals", "A PHOTO OF A CAT"),
        ("mixed case", "iPhone McDonald's NASA"),
        ("punctuation run !!!", "!!!"),
        ("punctuation run ...", "..."),
        ("punctuation run --", "--"),
        ("punctuation inside words", "wait...what?!?! (yes) -- no/maybe"),
        ("contraction don't", "don't"),
        ("contraction I'M", "I'M"),
        ("contraction it's", "it's"),
        ("contraction y'all", "y'all"),
        ("contractions", "you'll we've they're I'd she'd 'tis"),
        ("long s after apostrophe (IGNORECASE)", "it'\u017f fine"),
        ("number 2024", "2024"),
        ("number 3.14", "3.14"),
        ("number 1,000,000", "1,000,000"),
        ("other numerals", "\u2160\u2161\u216b \u00bd x\u00b2 \u0663\u0664 \u2460"),
        ("emoji", "\U0001f600 cat \U0001f408"),
        ("emoji skin tone", "\U0001f44d\U0001f3fd ok"),
        ("emoji ZWJ family", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"),
        ("emoji flag sequences", "\U0001f3f3\ufe0f\u200d\U0001f308 \U0001f1fa\U0001f1f8"),
        ("accent precomposed", "caf\u00e9"),
        ("accent decomposed (NFC)", "cafe\u0301"),
        ("accents mixed", "Na\u00efve R\u00c9SUM\u00c9 A\u030angstr\u00f6m \u212b"),
        ("CJK", "\u4f60\u597d\u4e16\u754c"),
        ("Japanese", "\u3053\u3093\u306b\u3061\u306f \u30ab\u30e1\u30e9"),
        ("Hangul jamo compose (NFC)", "\u1100\u1161\u1102\u1161"),
        ("Arabic", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645"),
        ("Cyrillic", "\u041f\u0420\u0418\u0412\u0415\u0422 \u043c\u0438\u0440"),
        ("Greek final sigma", "\u039f\u0394\u039f\u03a3"),
        ("Greek sigma positions", "\u03a3 \u03a3\u0391\u03a3 \u039f\u0394\u039f\u03a3.\u03a3\u039f\u03a6\u039f\u03a3"),
        ("Greek sigma before apostrophe", "\u039f\u0394\u039f\u03a3's \u0391\u03a3'\u039c"),
        ("dotted capital I", "\u0130stanbul"),
        ("German sharp s", "STRA\u00dfE Stra\u00dfe \u1e9e"),
        ("Turkish dotless i", "\u0131\u015f\u0131k I\u011fdir"),
        ("titlecase digraph and ligature", "\u01c5ungla \ufb01sh"),
        ("ypogegrammeni is skipped (IGNORECASE)", "a\u0345b !\u0345!"),
        ("html &amp;", "fish &amp; chips"),
        ("html double escape", "&amp;amp; &amp;amp;amp;"),
        ("html tags", "&lt;b&gt;bold&lt;/b&gt;"),
        ("html numeric", "&#65;&#x42;&#X43; &#128512; &#233;t&#xe9;"),
        ("html invalid numeric", "&#0; &#x110000; &#xD800; &#128; &#1;x &#13;y"),
        ("html named Latin-1 and legacy", "&copy 2024 &eacute;t&eacute; &nbsp;&Auml;&ampx; &notit;"),
        ("html HTML5 names", "&Tab;a&NewLine;b &fjlig; &hearts; &euro;"),
        ("html gap: name outside the subset", "&bigstar; rating &NotEqualTilde;"),
        ("html not entities", "AT&T & co &; &# &#x; &zzz;"),
        ("tabs and newlines", "a\tb\nc\r\nd"),
        ("leading and trailing space", "  \t lead and trail \n "),
        ("NBSP and ideographic space", "a\u00a0b\u3000c\u2028d\u0085e"),
        ("separators \\x1c-\\x1f", "\x1c\x1da\x1e b\x1f"),
        ("control characters", "bell\x07 del\x7f esc\x1b[0m"),
        ("special tokens literally", "<|startoftext|>a photo<|endoftext|>"),
        ("special tokens upper case", "<|ENDOFTEXT|> <|StartOfText|>"),
        ("special token after punctuation", "!<|endoftext|>"),
        ("special token with long s (IGNORECASE)", "<|\u017ftartoftext|>"),
        ("200 words (truncation)", long_text),
        ("1000-char single word", long_word),
        ("1000 a's", "a" * 1000),
        ("characters without merges", "\ufffd \uffff \U0010fffd \u0378 \ue000x"),
        ("Unicode 15 letters (regex tables)", "a\U00031350b \U0001e4d0\U0001e4f1"),
        ("soft hyphen and zero-width", "co\u00adop zero\u200bwidth"),
        ("kelvin and ohm signs", "5\u212a 10\u2126"),
    ]
    return cases


def write_cases(tok, sg_tok, out):
    cases = []
    for name, text in case_list():
        ids = tok.tokenize(text)
        entry = {"name": name, "text": text, "ids": ids}
        sg_ids = sg_tok.tokenize(text)
        if sg_ids != ids:
            entry["ids_sg"] = sg_ids
        cases.append(entry)
    doc = {
        "about": "Expected CLIP token ids (context %d) from py/clip_tokenizer_reference.py, "
                 "openai SimpleTokenizer semantics with NFC in place of ftfy. 'ids_sg' is present "
                 "where src/models/clip_tokenizer.c deliberately differs (HTML named references "
                 "outside its subset)." % CONTEXT,
        "context": CONTEXT,
        "cases": cases,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print("wrote %d cases to %s" % (len(cases), out))


# Pieces the random strings are built from: each hits a rule above.
_POOL = (list("aAzZsSkK019 '.,!?-&#;<>|_\t\n\r") +
         ["\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u3000", "\u2028", "\u2009",
          "\u03a3", "\u03c3", "\u03c2", "\u0391", "\u0345", "\u0300", "\u0301", "\u00ad", "\u200d",
          "\u0130", "\u0131", "\u017f", "\u00df", "\u1e9e", "\u01c5", "\ufb01", "\u212a", "\u212b",
          "\u1100", "\u1161", "\u11a8", "\uac00", "\u4e16", "\u3042", "\u0645", "\u0416",
          "\U0001f600", "\U0001f3fd", "\ufe0f", "\u2160", "\u00bd", "\u0663", "\u00e9", "e\u0301",
          "\U00031350", "\U0001e4f1", "\ufffd", "\uffff", "\ue000", "\u0378", "\x07", "\x7f",
          "<|startoftext|>", "<|endoftext|>", "<|ENDOFTEXT|>", "<|\u017ftartoftext|>",
          "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL",
          "&amp;", "&amp", "&lt;", "&gt", "&nbsp;", "&AElig;", "&fjlig;", "&notin;", "&not",
          "&#", "&#x", "&#X", "&#65;", "&#x41", "&#0;", "&#128;", "&#xD800;", "&#x110000;",
          "&#1;", "&#13;", "&Tab;", "&quot", "&apos;", "&eacute", "&copy", "&ampx;", "&#38;"])


def random_text(rng):
    parts = []
    for _ in range(rng.randrange(0, 24)):
        r = rng.random()
        if r < 0.75:
            parts.append(rng.choice(_POOL))
        elif r < 0.85:
            parts.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                                 for _ in range(rng.randrange(1, 12))))
        else:
            cp = rng.randrange(1, 0x110000)
            if not 0xD800 <= cp <= 0xDFFF:
                parts.append(chr(cp))
    return "".join(parts)


def write_random(tok, count, seed, out):
    rng = random.Random(seed)
    with open(out, "w", encoding="utf-8") as f:
        for _ in range(count):
            text = random_text(rng)
            ids = tok.tokenize(text, context=1 << 30)
            f.write(json.dumps({"text": text, "ids": ids}, ensure_ascii=True) + "\n")


def main(argv):
    if len(argv) >= 4 and argv[1] == "encode":
        print(" ".join(str(i) for i in Tokenizer(argv[2]).tokenize(argv[3])))
        return 0
    if len(argv) == 4 and argv[1] == "cases":
        write_cases(Tokenizer(argv[2]), Tokenizer(argv[2], entities="sg"), argv[3])
        return 0
    if len(argv) == 6 and argv[1] == "random":
        write_random(Tokenizer(argv[2]), int(argv[3]), int(argv[4]), argv[5])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
