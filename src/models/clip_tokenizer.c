/* CLIP's text tokenizer, openai's SimpleTokenizer rule for rule: clean the text (NFC in place of
 * ftfy, HTML unescape twice, strip, whitespace runs to one space, Python's str.lower()), split it
 * with openai's regular expression, spell each piece's UTF-8 bytes as byte symbols (the last one
 * with "</w>") and apply the BPE merges lowest rank first. The text is handled as UTF-32 so that
 * every step works on code points as Python does; libunistring supplies NFC, lower-casing and
 * the general categories. py/clip_tokenizer_reference.py is the specification this follows.
 *
 * After loading, the tokenizer is two things: the ids of the 512 byte symbols and a hash map from
 * a pair of symbol ids to (rank, id of the merged symbol), merged by bpe_common.c's engine in
 * openai's order. BPE never looks at strings, so a call needs no cache and no lock; each call
 * allocates its own scratch space. */
#include "models/clip_tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include "base/file.h"
#include "models/bpe_common.h"

/* openai keeps 49152 - 256 - 2 merges (so that the vocabulary has 49408 entries); Hugging Face's
 * CLIPTokenizer slices merges.txt the same way. */
#define CLIP_MAX_MERGES (49152 - 256 - 2)
/* Largest vocab.json or merges.txt read (openai's are 1.6 MB and 0.5 MB). */
#define MAX_FILE_BYTES ((size_t)256 << 20)

#define SOT_TEXT "<|startoftext|>"
#define EOT_TEXT "<|endoftext|>"

struct sg_clip_tokenizer {
    int vocab_size;
    int32_t sot, eot;
    sg_bpe_rules rules; /* the byte symbols (with "</w>" for a word's last byte), merges.txt */
};

/* ---------------------------------------------------------------------------------------------
 * Loading */

/* Value of c as a digit in base 10 or 16, or -1. */
static int digit_value(uint32_t c, int base)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (base == 16 && (c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (int)((c | 0x20) - 'a' + 10);
    return -1;
}

/* vocab.json is one flat JSON object, token string -> id (49408 members for CLIP). jansson would
 * build some 100k heap values for it, which was most of the load time; instead it is parsed
 * straight into a temporary hash table, each key decoded in place inside the file buffer. The
 * parser is strict RFC 8259 for this one shape: a single object whose values are integers in
 * [0, 2^31); strings valid UTF-8 with paired \u surrogates; a repeated key keeps its last id, as
 * in Python's json.load. */

typedef struct vocab_entry {
    const char *key; /* NULL: free slot */
    size_t len;
    int32_t id;
} vocab_entry;

typedef struct vocab_map {
    vocab_entry *slots;
    size_t mask;  /* capacity - 1, capacity a power of two */
    size_t count; /* distinct keys */
} vocab_map;

static size_t str_hash(const char *s, size_t n)
{
    uint64_t h = 0xCBF29CE484222325u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001B3u;
    return (size_t)(h ^ (h >> 29));
}

static vocab_entry *vocab_slot(const vocab_map *v, const char *s, size_t n)
{
    size_t i = str_hash(s, n) & v->mask;
    while (v->slots[i].key && (v->slots[i].len != n || memcmp(v->slots[i].key, s, n) != 0))
        i = (i + 1) & v->mask;
    return &v->slots[i];
}

/* The id of vocabulary entry s[0..n), or -1. */
static int32_t vocab_id(const vocab_map *v, const char *s, size_t n)
{
    const vocab_entry *e = vocab_slot(v, s, n);
    return e->key ? e->id : -1;
}

static int vocab_put(vocab_map *v, const char *s, size_t n, int32_t id)
{
    if (2 * (v->count + 1) > v->mask + 1) {
        vocab_map bigger = {calloc(2 * (v->mask + 1), sizeof *v->slots), 2 * v->mask + 1, 0};
        if (!bigger.slots)
            return 0;
        for (size_t i = 0; i <= v->mask; i++)
            if (v->slots[i].key)
                *vocab_slot(&bigger, v->slots[i].key, v->slots[i].len) = v->slots[i];
        bigger.count = v->count;
        free(v->slots);
        *v = bigger;
    }
    vocab_entry *e = vocab_slot(v, s, n);
    if (!e->key)
        v->count++;
    *e = (vocab_entry){s, n, id};
    return 1;
}

static const char *skip_json_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hex4(const char *p, const char *end, uint32_t *out)
{
    if (end - p < 4)
        return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = digit_value((unsigned char)p[i], 16);
        if (d < 0)
            return 0;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 1;
}

/* Decodes the JSON string starting at *pp (at its opening quote) in place: on success the key is
 * *pp + 1 .. + *len and *pp points after the closing quote. Returns NULL or what is wrong. */
static const char *json_key_in_place(char **pp, const char *end, size_t *len)
{
    char *p = *pp + 1, *out = p;
    for (;;) {
        if (p == end)
            return "unterminated string";
        unsigned char c = (unsigned char)*p++;
        if (c == '"')
            break;
        if (c < 0x20)
            return "control character in string";
        if (c != '\\') {
            *out++ = (char)c;
            continue;
        }
        if (p == end)
            return "unterminated string";
        c = (unsigned char)*p++;
        const char *simple = strchr("\"\\/bfnrt", c);
        if (c && simple) {
            *out++ = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
            continue;
        }
        uint32_t cp, low;
        if (c != 'u' || !hex4(p, end, &cp))
            return "bad escape";
        p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return "unpaired surrogate escape";
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, end, &low) ||
                low < 0xDC00 || low > 0xDFFF)
                return "unpaired surrogate escape";
            p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        /* at most as long as the escape it replaces, so the in-place write never overtakes */
        out += u8_uctomb((uint8_t *)out, cp, 4);
    }
    *len = (size_t)(out - (*pp + 1));
    *pp = p;
    return NULL;
}

/* Parses text[0..len) (the whole of vocab.json) into v. */
static sg_status parse_vocab(vocab_map *v, char *text, size_t len, const char *path,
                             sg_error *err)
{
    const char *end = text + len, *what = NULL;
    const uint8_t *bad = u8_check((const uint8_t *)text, len);
    if (bad)
        return sg_error_set(err, SG_EINVAL, "%s: not UTF-8 at byte %zu", path,
                            (size_t)(bad - (const uint8_t *)text));
    char *p = (char *)skip_json_space(text, end);
    if (p == end || *p != '{') {
        what = "expected an object of token ids";
        goto bad;
    }
    p = (char *)skip_json_space(p + 1, end);
    if (p < end && *p == '}') {
        what = "the object is empty";
        goto bad;
    }
    for (;;) {
        if (p == end || *p != '"') {
            what = "expected a string key";
            goto bad;
        }
        char *key = p + 1;
        size_t key_len;
        if ((what = json_key_in_place(&p, end, &key_len)) != NULL)
            goto bad;
        p = (char *)skip_json_space(p, end);
        if (p == end || *p != ':') {
            what = "expected ':'";
            goto bad;
        }
        p = (char *)skip_json_space(p + 1, end);
        int64_t id = 0;
        const char *digits = p;
        while (p < end && *p >= '0' && *p <= '9' && id <= INT32_MAX)
            id = id * 10 + (*p++ - '0');
        if (p == digits || id > INT32_MAX || (p - digits > 1 && *digits == '0') ||
            (p < end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9')))) {
            return sg_error_set(err, SG_EINVAL,
                                "%s: the id of \"%.*s\" is not an integer in [0, 2^31)", path,
                                key_len > 64 ? 64 : (int)key_len, key);
        }
        if (!vocab_put(v, key, key_len, (int32_t)id))
            return sg_error_set(err, SG_ENOMEM, "out of memory loading %s", path);
        p = (char *)skip_json_space(p, end);
        if (p < end && *p == ',') {
            p = (char *)skip_json_space(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            break;
        what = "expected ',' or '}'";
        goto bad;
    }
    if (skip_json_space(p + 1, end) != end) {
        what = "text after the object";
        goto bad;
    }
    return SG_OK;
bad:
    return sg_error_set(err, SG_EINVAL, "%s: invalid JSON at byte %zu: %s", path,
                        (size_t)(p - text), what);
}

static sg_status load_byte_symbols(sg_clip_tokenizer *t, const vocab_map *vocab, const char *path,
                                   sg_error *err)
{
    for (int b = 0; b < 256; b++) {
        uint8_t s[8];
        int n = u8_uctomb(s, sg_bpe_byte_char((uint8_t)b), 4);
        memcpy(s + n, "</w>", 4);
        t->rules.byte_id[b] = vocab_id(vocab, (const char *)s, (size_t)n);
        t->rules.last_byte_id[b] = vocab_id(vocab, (const char *)s, (size_t)n + 4);
        if (t->rules.byte_id[b] < 0 || t->rules.last_byte_id[b] < 0)
            return sg_error_set(err, SG_EINVAL, "%s: no entry for the symbol of byte 0x%02X",
                                path, b);
    }
    t->sot = vocab_id(vocab, SOT_TEXT, strlen(SOT_TEXT));
    t->eot = vocab_id(vocab, EOT_TEXT, strlen(EOT_TEXT));
    if (t->sot < 0 || t->eot < 0)
        return sg_error_set(err, SG_EINVAL, "%s: no entry for %s or %s", path, SOT_TEXT,
                            EOT_TEXT);
    return SG_OK;
}

static int32_t vocab_symbol_id(const void *vocab, const char *s, size_t n)
{
    return vocab_id(vocab, s, n);
}

/* Reads merges.txt; as Hugging Face does, everything after CLIP_MAX_MERGES is ignored. */
static sg_status load_merges(sg_clip_tokenizer *t, const vocab_map *vocab, const char *path,
                             sg_error *err)
{
    size_t len;
    char *text;
    sg_status st = sg_file_read(path, MAX_FILE_BYTES, &text, &len, err);
    if (st != SG_OK)
        return st;
    st = sg_bpe_pairs_read_merges(&t->rules.pairs, text, len, path, CLIP_MAX_MERGES,
                                  vocab_symbol_id, vocab, err);
    free(text);
    return st;
}

sg_clip_tokenizer *sg_clip_tokenizer_load(const char *vocab_json_path, const char *merges_txt_path,
                                          sg_error *err)
{
    if (!vocab_json_path || !merges_txt_path) {
        sg_error_set(err, SG_EINVAL, "clip tokenizer: missing file path");
        return NULL;
    }
    sg_clip_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    t->rules.end_of_word = true;
    t->rules.order = SG_BPE_RANK_AT_A_TIME;
    size_t len = 0;
    char *text;
    sg_status st = sg_file_read(vocab_json_path, MAX_FILE_BYTES, &text, &len, err);
    vocab_map vocab = {calloc(1024, sizeof(vocab_entry)), 1023, 0};
    if (st == SG_OK)
        st = !vocab.slots ? sg_error_set(err, SG_ENOMEM, "out of memory")
                          : parse_vocab(&vocab, text, len, vocab_json_path, err);
    if (st == SG_OK)
        st = load_byte_symbols(t, &vocab, vocab_json_path, err);
    if (st == SG_OK)
        st = load_merges(t, &vocab, merges_txt_path, err);
    t->vocab_size = (int)vocab.count;
    free(vocab.slots);
    free(text); /* the keys pointed into it */
    if (st != SG_OK) {
        sg_clip_tokenizer_free(t);
        return NULL;
    }
    return t;
}

sg_clip_tokenizer *sg_clip_tokenizer_load_dir(const char *dir, sg_error *err)
{
    if (!dir) {
        sg_error_set(err, SG_EINVAL, "clip tokenizer: missing directory");
        return NULL;
    }
    size_t n = strlen(dir) + sizeof "/vocab.json" + 1;
    char *vocab = malloc(n), *merges = malloc(n);
    sg_clip_tokenizer *t = NULL;
    if (!vocab || !merges) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
    } else {
        snprintf(vocab, n, "%s/vocab.json", dir);
        snprintf(merges, n, "%s/merges.txt", dir);
        t = sg_clip_tokenizer_load(vocab, merges, err);
    }
    free(vocab);
    free(merges);
    return t;
}

void sg_clip_tokenizer_free(sg_clip_tokenizer *t)
{
    if (!t)
        return;
    sg_bpe_pairs_free(&t->rules.pairs);
    free(t);
}

int32_t sg_clip_tokenizer_sot(const sg_clip_tokenizer *t) { return t->sot; }
int32_t sg_clip_tokenizer_eot(const sg_clip_tokenizer *t) { return t->eot; }
int sg_clip_tokenizer_vocab_size(const sg_clip_tokenizer *t) { return t->vocab_size; }

/* ---------------------------------------------------------------------------------------------
 * Character classes, as Python and its regex module (Debian 12: Unicode 15.0 tables) see them */

/* str.isspace(), which str.strip() uses: also the separators U+001C..U+001F. */
static int is_py_space(uint32_t c)
{
    return sg_bpe_is_space(c) || (c >= 0x1C && c <= 0x1F);
}

/* openai compiles its pattern with IGNORECASE. Under it, regex's [^\s\p{L}\p{N}] does not match
 * U+0345 COMBINING GREEK YPOGEGRAMMENI (whose case variants are the letter iota), while
 * [\p{L}] does not match it either: no alternative does, so it is skipped like a space. */
static int is_other(uint32_t c)
{
    return !sg_bpe_is_space(c) && !sg_bpe_is_letter(c) && !sg_bpe_is_number(c) && c != 0x345;
}

/* ---------------------------------------------------------------------------------------------
 * HTML unescaping, as Python's html.unescape */

/* Named references known here (see clip_tokenizer.h): name without ';', value (one or two code
 * points), and whether the name is also recognised without ';' (the legacy names). Sorted by
 * name in byte order for bsearch. Values from the WHATWG HTML entity list. */
typedef struct html_entity {
    const char *name;
    uint16_t cp, cp2;
    unsigned char bare;
} html_entity;

static const html_entity html_entities[] = {
    {"AElig", 0xC6, 0, 1}, {"AMP", 0x26, 0, 1}, {"Aacute", 0xC1, 0, 1},
    {"Acirc", 0xC2, 0, 1}, {"Agrave", 0xC0, 0, 1}, {"Alpha", 0x391, 0, 0},
    {"Aring", 0xC5, 0, 1}, {"Atilde", 0xC3, 0, 1}, {"Auml", 0xC4, 0, 1},
    {"Beta", 0x392, 0, 0}, {"COPY", 0xA9, 0, 1}, {"Ccedil", 0xC7, 0, 1},
    {"Cedilla", 0xB8, 0, 0}, {"CenterDot", 0xB7, 0, 0}, {"Chi", 0x3A7, 0, 0},
    {"Dagger", 0x2021, 0, 0}, {"Delta", 0x394, 0, 0}, {"DiacriticalAcute", 0xB4, 0, 0},
    {"DiacriticalGrave", 0x60, 0, 0}, {"Dot", 0xA8, 0, 0}, {"DoubleDot", 0xA8, 0, 0},
    {"ETH", 0xD0, 0, 1}, {"Eacute", 0xC9, 0, 1}, {"Ecirc", 0xCA, 0, 1},
    {"Egrave", 0xC8, 0, 1}, {"Epsilon", 0x395, 0, 0}, {"Eta", 0x397, 0, 0},
    {"Euml", 0xCB, 0, 1}, {"GT", 0x3E, 0, 1}, {"Gamma", 0x393, 0, 0}, {"Hat", 0x5E, 0, 0},
    {"Iacute", 0xCD, 0, 1}, {"Icirc", 0xCE, 0, 1}, {"Igrave", 0xCC, 0, 1},
    {"Iota", 0x399, 0, 0}, {"Iuml", 0xCF, 0, 1}, {"Kappa", 0x39A, 0, 0},
    {"LT", 0x3C, 0, 1}, {"Lambda", 0x39B, 0, 0}, {"Mu", 0x39C, 0, 0},
    {"NewLine", 0xA, 0, 0}, {"NonBreakingSpace", 0xA0, 0, 0}, {"Ntilde", 0xD1, 0, 1},
    {"Nu", 0x39D, 0, 0}, {"OElig", 0x152, 0, 0}, {"Oacute", 0xD3, 0, 1},
    {"Ocirc", 0xD4, 0, 1}, {"Ograve", 0xD2, 0, 1}, {"Omega", 0x3A9, 0, 0},
    {"Omicron", 0x39F, 0, 0}, {"Oslash", 0xD8, 0, 1}, {"Otilde", 0xD5, 0, 1},
    {"Ouml", 0xD6, 0, 1}, {"Phi", 0x3A6, 0, 0}, {"Pi", 0x3A0, 0, 0},
    {"PlusMinus", 0xB1, 0, 0}, {"Prime", 0x2033, 0, 0}, {"Psi", 0x3A8, 0, 0},
    {"QUOT", 0x22, 0, 1}, {"REG", 0xAE, 0, 1}, {"Rho", 0x3A1, 0, 0},
    {"Scaron", 0x160, 0, 0}, {"Sigma", 0x3A3, 0, 0}, {"THORN", 0xDE, 0, 1},
    {"Tab", 0x9, 0, 0}, {"Tau", 0x3A4, 0, 0}, {"Theta", 0x398, 0, 0},
    {"Uacute", 0xDA, 0, 1}, {"Ucirc", 0xDB, 0, 1}, {"Ugrave", 0xD9, 0, 1},
    {"UnderBar", 0x5F, 0, 0}, {"Upsilon", 0x3A5, 0, 0}, {"Uuml", 0xDC, 0, 1},
    {"VerticalLine", 0x7C, 0, 0}, {"Xi", 0x39E, 0, 0}, {"Yacute", 0xDD, 0, 1},
    {"Yuml", 0x178, 0, 0}, {"Zeta", 0x396, 0, 0}, {"aacute", 0xE1, 0, 1},
    {"acirc", 0xE2, 0, 1}, {"acute", 0xB4, 0, 1}, {"aelig", 0xE6, 0, 1},
    {"agrave", 0xE0, 0, 1}, {"alefsym", 0x2135, 0, 0}, {"alpha", 0x3B1, 0, 0},
    {"amp", 0x26, 0, 1}, {"and", 0x2227, 0, 0}, {"ang", 0x2220, 0, 0},
    {"angst", 0xC5, 0, 0}, {"apos", 0x27, 0, 0}, {"aring", 0xE5, 0, 1},
    {"ast", 0x2A, 0, 0}, {"asymp", 0x2248, 0, 0}, {"atilde", 0xE3, 0, 1},
    {"auml", 0xE4, 0, 1}, {"bdquo", 0x201E, 0, 0}, {"beta", 0x3B2, 0, 0},
    {"brvbar", 0xA6, 0, 1}, {"bsol", 0x5C, 0, 0}, {"bull", 0x2022, 0, 0},
    {"cap", 0x2229, 0, 0}, {"ccedil", 0xE7, 0, 1}, {"cedil", 0xB8, 0, 1},
    {"cent", 0xA2, 0, 1}, {"centerdot", 0xB7, 0, 0}, {"chi", 0x3C7, 0, 0},
    {"circ", 0x2C6, 0, 0}, {"circledR", 0xAE, 0, 0}, {"clubs", 0x2663, 0, 0},
    {"colon", 0x3A, 0, 0}, {"comma", 0x2C, 0, 0}, {"commat", 0x40, 0, 0},
    {"cong", 0x2245, 0, 0}, {"copy", 0xA9, 0, 1}, {"crarr", 0x21B5, 0, 0},
    {"cup", 0x222A, 0, 0}, {"curren", 0xA4, 0, 1}, {"dArr", 0x21D3, 0, 0},
    {"dagger", 0x2020, 0, 0}, {"darr", 0x2193, 0, 0}, {"deg", 0xB0, 0, 1},
    {"delta", 0x3B4, 0, 0}, {"diams", 0x2666, 0, 0}, {"die", 0xA8, 0, 0},
    {"div", 0xF7, 0, 0}, {"divide", 0xF7, 0, 1}, {"dollar", 0x24, 0, 0},
    {"eacute", 0xE9, 0, 1}, {"ecirc", 0xEA, 0, 1}, {"egrave", 0xE8, 0, 1},
    {"empty", 0x2205, 0, 0}, {"emsp", 0x2003, 0, 0}, {"ensp", 0x2002, 0, 0},
    {"epsilon", 0x3B5, 0, 0}, {"equals", 0x3D, 0, 0}, {"equiv", 0x2261, 0, 0},
    {"eta", 0x3B7, 0, 0}, {"eth", 0xF0, 0, 1}, {"euml", 0xEB, 0, 1},
    {"euro", 0x20AC, 0, 0}, {"excl", 0x21, 0, 0}, {"exist", 0x2203, 0, 0},
    {"fjlig", 0x66, 0x6A, 0}, {"fnof", 0x192, 0, 0}, {"forall", 0x2200, 0, 0},
    {"frac12", 0xBD, 0, 1}, {"frac14", 0xBC, 0, 1}, {"frac34", 0xBE, 0, 1},
    {"frasl", 0x2044, 0, 0}, {"gamma", 0x3B3, 0, 0}, {"ge", 0x2265, 0, 0},
    {"grave", 0x60, 0, 0}, {"gt", 0x3E, 0, 1}, {"hArr", 0x21D4, 0, 0},
    {"half", 0xBD, 0, 0}, {"harr", 0x2194, 0, 0}, {"hearts", 0x2665, 0, 0},
    {"hellip", 0x2026, 0, 0}, {"iacute", 0xED, 0, 1}, {"icirc", 0xEE, 0, 1},
    {"iexcl", 0xA1, 0, 1}, {"igrave", 0xEC, 0, 1}, {"image", 0x2111, 0, 0},
    {"infin", 0x221E, 0, 0}, {"int", 0x222B, 0, 0}, {"iota", 0x3B9, 0, 0},
    {"iquest", 0xBF, 0, 1}, {"isin", 0x2208, 0, 0}, {"iuml", 0xEF, 0, 1},
    {"kappa", 0x3BA, 0, 0}, {"lArr", 0x21D0, 0, 0}, {"lambda", 0x3BB, 0, 0},
    {"lang", 0x27E8, 0, 0}, {"laquo", 0xAB, 0, 1}, {"larr", 0x2190, 0, 0},
    {"lbrace", 0x7B, 0, 0}, {"lbrack", 0x5B, 0, 0}, {"lceil", 0x2308, 0, 0},
    {"lcub", 0x7B, 0, 0}, {"ldquo", 0x201C, 0, 0}, {"le", 0x2264, 0, 0},
    {"lfloor", 0x230A, 0, 0}, {"lowast", 0x2217, 0, 0}, {"lowbar", 0x5F, 0, 0},
    {"loz", 0x25CA, 0, 0}, {"lpar", 0x28, 0, 0}, {"lrm", 0x200E, 0, 0},
    {"lsaquo", 0x2039, 0, 0}, {"lsqb", 0x5B, 0, 0}, {"lsquo", 0x2018, 0, 0},
    {"lt", 0x3C, 0, 1}, {"macr", 0xAF, 0, 1}, {"mdash", 0x2014, 0, 0},
    {"micro", 0xB5, 0, 1}, {"midast", 0x2A, 0, 0}, {"middot", 0xB7, 0, 1},
    {"minus", 0x2212, 0, 0}, {"mu", 0x3BC, 0, 0}, {"nabla", 0x2207, 0, 0},
    {"nbsp", 0xA0, 0, 1}, {"ndash", 0x2013, 0, 0}, {"ne", 0x2260, 0, 0},
    {"ni", 0x220B, 0, 0}, {"not", 0xAC, 0, 1}, {"notin", 0x2209, 0, 0},
    {"nsub", 0x2284, 0, 0}, {"ntilde", 0xF1, 0, 1}, {"nu", 0x3BD, 0, 0},
    {"num", 0x23, 0, 0}, {"oacute", 0xF3, 0, 1}, {"ocirc", 0xF4, 0, 1},
    {"oelig", 0x153, 0, 0}, {"ograve", 0xF2, 0, 1}, {"oline", 0x203E, 0, 0},
    {"omega", 0x3C9, 0, 0}, {"omicron", 0x3BF, 0, 0}, {"oplus", 0x2295, 0, 0},
    {"or", 0x2228, 0, 0}, {"ordf", 0xAA, 0, 1}, {"ordm", 0xBA, 0, 1},
    {"oslash", 0xF8, 0, 1}, {"otilde", 0xF5, 0, 1}, {"otimes", 0x2297, 0, 0},
    {"ouml", 0xF6, 0, 1}, {"para", 0xB6, 0, 1}, {"part", 0x2202, 0, 0},
    {"percnt", 0x25, 0, 0}, {"period", 0x2E, 0, 0}, {"permil", 0x2030, 0, 0},
    {"perp", 0x22A5, 0, 0}, {"phi", 0x3C6, 0, 0}, {"pi", 0x3C0, 0, 0},
    {"piv", 0x3D6, 0, 0}, {"plus", 0x2B, 0, 0}, {"plusmn", 0xB1, 0, 1}, {"pm", 0xB1, 0, 0},
    {"pound", 0xA3, 0, 1}, {"prime", 0x2032, 0, 0}, {"prod", 0x220F, 0, 0},
    {"prop", 0x221D, 0, 0}, {"psi", 0x3C8, 0, 0}, {"quest", 0x3F, 0, 0},
    {"quot", 0x22, 0, 1}, {"rArr", 0x21D2, 0, 0}, {"radic", 0x221A, 0, 0},
    {"rang", 0x27E9, 0, 0}, {"raquo", 0xBB, 0, 1}, {"rarr", 0x2192, 0, 0},
    {"rbrace", 0x7D, 0, 0}, {"rbrack", 0x5D, 0, 0}, {"rceil", 0x2309, 0, 0},
    {"rcub", 0x7D, 0, 0}, {"rdquo", 0x201D, 0, 0}, {"real", 0x211C, 0, 0},
    {"reg", 0xAE, 0, 1}, {"rfloor", 0x230B, 0, 0}, {"rho", 0x3C1, 0, 0},
    {"rlm", 0x200F, 0, 0}, {"rpar", 0x29, 0, 0}, {"rsaquo", 0x203A, 0, 0},
    {"rsqb", 0x5D, 0, 0}, {"rsquo", 0x2019, 0, 0}, {"sbquo", 0x201A, 0, 0},
    {"scaron", 0x161, 0, 0}, {"sdot", 0x22C5, 0, 0}, {"sect", 0xA7, 0, 1},
    {"semi", 0x3B, 0, 0}, {"shy", 0xAD, 0, 1}, {"sigma", 0x3C3, 0, 0},
    {"sigmaf", 0x3C2, 0, 0}, {"sim", 0x223C, 0, 0}, {"sol", 0x2F, 0, 0},
    {"spades", 0x2660, 0, 0}, {"strns", 0xAF, 0, 0}, {"sub", 0x2282, 0, 0},
    {"sube", 0x2286, 0, 0}, {"sum", 0x2211, 0, 0}, {"sup", 0x2283, 0, 0},
    {"sup1", 0xB9, 0, 1}, {"sup2", 0xB2, 0, 1}, {"sup3", 0xB3, 0, 1},
    {"supe", 0x2287, 0, 0}, {"szlig", 0xDF, 0, 1}, {"tau", 0x3C4, 0, 0},
    {"there4", 0x2234, 0, 0}, {"theta", 0x3B8, 0, 0}, {"thetasym", 0x3D1, 0, 0},
    {"thinsp", 0x2009, 0, 0}, {"thorn", 0xFE, 0, 1}, {"tilde", 0x2DC, 0, 0},
    {"times", 0xD7, 0, 1}, {"trade", 0x2122, 0, 0}, {"uArr", 0x21D1, 0, 0},
    {"uacute", 0xFA, 0, 1}, {"uarr", 0x2191, 0, 0}, {"ucirc", 0xFB, 0, 1},
    {"ugrave", 0xF9, 0, 1}, {"uml", 0xA8, 0, 1}, {"upsih", 0x3D2, 0, 0},
    {"upsilon", 0x3C5, 0, 0}, {"uuml", 0xFC, 0, 1}, {"verbar", 0x7C, 0, 0},
    {"vert", 0x7C, 0, 0}, {"weierp", 0x2118, 0, 0}, {"xi", 0x3BE, 0, 0},
    {"yacute", 0xFD, 0, 1}, {"yen", 0xA5, 0, 1}, {"yuml", 0xFF, 0, 1},
    {"zeta", 0x3B6, 0, 0}, {"zwj", 0x200D, 0, 0}, {"zwnj", 0x200C, 0, 0},
};

static int entity_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const html_entity *)elem)->name);
}

/* The entity called name (ASCII, NUL-terminated, without ';'), or NULL. */
static const html_entity *entity_find(const char *name, int with_semicolon)
{
    const html_entity *e = bsearch(name, html_entities,
                                   sizeof html_entities / sizeof *html_entities,
                                   sizeof *html_entities, entity_cmp);
    return e && (with_semicolon || e->bare) ? e : NULL;
}

/* Windows-1252 meanings of references to U+0080..U+009F, per HTML (Python's _invalid_charrefs);
 * the five bytes 1252 leaves undefined stand for themselves. */
static const uint16_t cp1252_high[32] = {
    0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021, 0x2C6,  0x2030, 0x160,
    0x2039, 0x152,  0x8D,   0x17D,  0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178};

/* What a numeric reference to v becomes (too_big: the digits overflowed): one code point, or
 * nothing (returns 0) for the code points HTML says to drop. */
static int numeric_ref(uint32_t v, int too_big, uint32_t *out)
{
    if (!too_big && v == 0)
        *out = 0xFFFD;
    else if (!too_big && v >= 0x80 && v <= 0x9F)
        *out = cp1252_high[v - 0x80];
    else if (too_big || (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF)
        *out = 0xFFFD;
    else if ((v >= 0x01 && v <= 0x08) || v == 0x0B || (v >= 0x0E && v <= 0x1F) ||
             (v >= 0x7F && v <= 0x9F) || (v >= 0xFDD0 && v <= 0xFDEF) || (v & 0xFFFE) == 0xFFFE)
        return 0;
    else
        *out = v;
    return 1;
}

/* Matches Python's &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?) at in[i] == '&', in[i + 1] == '#'. Returns
 * the end of the match (0: none) and appends the replacement to out[*o]. */
static size_t unescape_numeric(const uint32_t *in, size_t n, size_t i, uint32_t *out, size_t *o)
{
    size_t j = i + 2;
    int base = 10;
    if (j < n && (in[j] == 'x' || in[j] == 'X')) {
        base = 16;
        j++;
    }
    size_t first_digit = j;
    uint32_t v = 0;
    int too_big = 0, d;
    for (; j < n && (d = digit_value(in[j], base)) >= 0; j++) {
        v = v * (uint32_t)base + (uint32_t)d;
        if (v > 0x10FFFF) {
            too_big = 1;
            v = 0x110000; /* saturate: more digits cannot bring it back */
        }
    }
    if (j == first_digit)
        return 0;
    if (j < n && in[j] == ';')
        j++;
    uint32_t c;
    if (numeric_ref(v, too_big, &c))
        out[(*o)++] = c;
    return j;
}

/* Matches Python's &([^\t\n\f <&#;]{1,32};?) at in[i] == '&' and replaces it as html.unescape
 * does: the whole name (with its ';', if any) if known, else the longest known prefix of at least
 * two characters (necessarily a legacy name, valid without ';') followed by the rest as text,
 * else nothing changes. Returns the end of the match (0: none). */
static size_t unescape_named(const uint32_t *in, size_t n, size_t i, uint32_t *out, size_t *o)
{
    size_t j = i + 1;
    while (j < n && j - (i + 1) < 32 && in[j] != '\t' && in[j] != '\n' && in[j] != '\f' &&
           in[j] != ' ' && in[j] != '<' && in[j] != '&' && in[j] != '#' && in[j] != ';')
        j++;
    size_t name_len = j - (i + 1);
    if (name_len == 0)
        return 0;
    size_t semicolon = j < n && in[j] == ';';
    size_t end = j + semicolon;

    char name[33];
    size_t ascii = 0; /* known names are ASCII, so only the ASCII start of the name can match */
    while (ascii < name_len && in[i + 1 + ascii] < 0x80) {
        name[ascii] = (char)in[i + 1 + ascii];
        ascii++;
    }
    const html_entity *e = NULL;
    size_t used = name_len + semicolon; /* characters after '&' the entity stands for */
    if (ascii == name_len) {
        name[ascii] = '\0';
        e = entity_find(name, (int)semicolon);
    }
    /* Python tries s[:k] for k = len(s) - 1 down to 2, s being the name with its ';'. */
    for (size_t k = ascii < name_len + semicolon - 1 ? ascii : name_len + semicolon - 1;
         !e && k >= 2; k--) {
        name[k] = '\0';
        e = entity_find(name, 0);
        used = k;
    }
    size_t rest = i + 1 + used; /* what the entity does not cover stays as text */
    if (e) {
        out[(*o)++] = e->cp;
        if (e->cp2)
            out[(*o)++] = e->cp2;
    } else {
        rest = i;
    }
    memcpy(out + *o, in + rest, (end - rest) * sizeof *in);
    *o += end - rest;
    return end;
}

/* One pass of html.unescape over in[0..n) into out, which has room for n code points (no
 * replacement is longer than what it replaces). Returns the output length. */
static size_t html_unescape(const uint32_t *in, size_t n, uint32_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t end = 0;
        if (in[i] == '&' && i + 1 < n)
            end = in[i + 1] == '#' ? unescape_numeric(in, n, i, out, &o)
                                   : unescape_named(in, n, i, out, &o);
        if (end)
            i = end;
        else
            out[o++] = in[i++];
    }
    return o;
}

/* ---------------------------------------------------------------------------------------------
 * Text cleaning: openai's whitespace_clean(basic_clean(text)).lower() */

/* Python's s.strip(): moves the part without leading/trailing isspace() characters to u[0]. */
static size_t py_strip(uint32_t *u, size_t n)
{
    size_t a = 0, b = n;
    while (a < b && is_py_space(u[a]))
        a++;
    while (b > a && is_py_space(u[b - 1]))
        b--;
    memmove(u, u + a, (b - a) * sizeof *u);
    return b - a;
}

/* strip(), then regex.sub(r"\s+", " "), then strip() again; in place. */
static size_t clean_whitespace(uint32_t *u, size_t n)
{
    n = py_strip(u, n);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (sg_bpe_is_space(u[i])) {
            u[o++] = ' ';
            while (i < n && sg_bpe_is_space(u[i]))
                i++;
        } else {
            u[o++] = u[i++];
        }
    }
    return py_strip(u, o);
}

/* Whether the capital sigma at u[i] ends a word, by the rule str.lower() uses (Unicode's
 * Final_Sigma): a cased letter before it and none after it, looking past case-ignorable
 * characters both ways. libunistring's own u32_tolower gets this wrong after an apostrophe
 * ("ΟΔΟΣ'S"), although its properties agree with Python's for every code point. */
static int is_final_sigma(const uint32_t *u, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && uc_is_property_case_ignorable(u[j - 1]))
        j--;
    if (j == 0 || !uc_is_property_cased(u[j - 1]))
        return 0;
    for (j = i + 1; j < n && uc_is_property_case_ignorable(u[j]);)
        j++;
    return j == n || !uc_is_property_cased(u[j]);
}

/* str.lower() of in[0..n) into out (room for 2n). Python uses the full lower-case mapping, which
 * differs from the simple one only for U+0130 (to "i" + U+0307) and for the context-dependent
 * final sigma; uc_tolower agrees with Python 3.11 (Unicode 14.0) on every other code point. */
static size_t py_lower(const uint32_t *in, size_t n, uint32_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c < 0x80) {
            out[o++] = c >= 'A' && c <= 'Z' ? c + 32 : c;
        } else if (c == 0x130) {
            out[o++] = 'i';
            out[o++] = 0x307;
        } else if (c == 0x3A3) {
            out[o++] = is_final_sigma(in, n, i) ? 0x3C2 : 0x3C3;
        } else {
            out[o++] = uc_tolower(c);
        }
    }
    return o;
}

/* Valid UTF-8 s[0..len), len > 0, to cleaned, lower-cased UTF-32 (*out, malloc'ed). */
static sg_status clean_text(const char *s, size_t len, uint32_t **out, size_t *out_n,
                            sg_error *err)
{
    size_t n = 0, m = 0;
    uint32_t *u = u8_to_u32((const uint8_t *)s, len, NULL, &n);
    uint32_t *nfc = u ? u32_normalize(UNINORM_NFC, u, n, NULL, &m) : NULL;
    free(u);
    uint32_t *tmp = nfc ? malloc(2 * m * sizeof *tmp) : NULL;
    if (!tmp) {
        free(nfc);
        return sg_error_set(err, SG_ENOMEM, "out of memory tokenizing");
    }
    n = html_unescape(nfc, m, tmp);
    n = html_unescape(tmp, n, nfc);
    n = clean_whitespace(nfc, n);
    *out_n = py_lower(nfc, n, tmp);
    *out = tmp;
    free(nfc);
    return SG_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Pre-tokenisation: openai's pattern, compiled with IGNORECASE,
 *   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * scanned as regex.findall does: at each position the first alternative that matches wins (each
 * is greedy and nothing follows it, so there is no backtracking); where none matches the scan
 * moves on by one character. */

/* Case-insensitive equality of a text character with an ASCII pattern character. Besides ASCII
 * case, the only character the regex module folds onto a letter of the literals is U+017F LATIN
 * SMALL LETTER LONG S (onto 's'), which lower() leaves in place. */
static int literal_char_eq(uint32_t c, char p)
{
    if (c == (unsigned char)p)
        return 1;
    if (p >= 'a' && p <= 'z')
        return c == (uint32_t)(p - 'a' + 'A') || (p == 's' && c == 0x17F);
    return 0;
}

static size_t match_literal(const uint32_t *u, size_t n, size_t i, const char *lit)
{
    size_t k = 0;
    for (; lit[k]; k++)
        if (i + k >= n || !literal_char_eq(u[i + k], lit[k]))
            return 0;
    return k;
}

/* Length of the pattern's match at u[i], 0 if none. */
static size_t match_at(const uint32_t *u, size_t n, size_t i)
{
    static const char *const literals[] = {SOT_TEXT, EOT_TEXT, "'s",  "'t", "'re",
                                           "'ve",    "'m",     "'ll", "'d"};
    size_t m = 0;
    if (u[i] == '<' || u[i] == '\'')
        for (size_t k = 0; k < sizeof literals / sizeof *literals; k++)
            if ((m = match_literal(u, n, i, literals[k])) > 0)
                return m;
    if (sg_bpe_is_letter(u[i])) {
        for (m = 1; i + m < n && sg_bpe_is_letter(u[i + m]);)
            m++;
    } else if (sg_bpe_is_number(u[i])) {
        m = 1;
    } else if (is_other(u[i])) {
        for (m = 1; i + m < n && is_other(u[i + m]);)
            m++;
    }
    return m;
}

/* Whether u[0..n) is exactly the ASCII string s. openai's BPE cache maps only the exact special
 * token strings to themselves; "<|ſtartoftext|>" matches the pattern but is spelled out. */
static int is_exactly(const uint32_t *u, size_t n, const char *s)
{
    size_t k = 0;
    while (k < n && s[k] && u[k] == (unsigned char)s[k])
        k++;
    return k == n && s[k] == '\0';
}

/* ---------------------------------------------------------------------------------------------
 * Byte-pair encoding of one piece: its UTF-8 bytes as byte symbols, the last one with "</w>",
 * merged in openai's order (every occurrence of the lowest-ranked pair, then look again). */

/* BPE of the piece u[0..m) into out[0..room); returns how many ids it wrote. w has room for the
 * piece's bytes. */
static int bpe_piece(const sg_clip_tokenizer *t, sg_bpe_work *w, const uint32_t *u, size_t m,
                     int32_t *out, int room)
{
    size_t n = 0;
    for (size_t k = 0; k < m; k++)
        n += (size_t)u8_uctomb(w->bytes + n, u[k], 4);
    return (int)sg_bpe_merge(&t->rules, w, w->bytes, n, out, (size_t)room);
}

/* ---------------------------------------------------------------------------------------------
 * The whole thing */

int sg_clip_tokenize(const sg_clip_tokenizer *t, const char *utf8_text, int32_t *ids, int ctx,
                     sg_error *err)
{
    if (!t || !utf8_text || !ids || ctx < 2) {
        sg_error_set(err, SG_EINVAL, "clip tokenize: bad argument (ctx %d)", ctx);
        return -1;
    }
    size_t len = strnlen(utf8_text, (size_t)SG_CLIP_MAX_TEXT_BYTES + 1);
    if (len > SG_CLIP_MAX_TEXT_BYTES) {
        sg_error_set(err, SG_ETOOBIG, "text longer than %u bytes", SG_CLIP_MAX_TEXT_BYTES);
        return -1;
    }
    const uint8_t *bad = u8_check((const uint8_t *)utf8_text, len);
    if (bad) {
        sg_error_set(err, SG_EINVAL, "text is not valid UTF-8 (byte %zu)",
                     (size_t)(bad - (const uint8_t *)utf8_text));
        return -1;
    }
    uint32_t *text = NULL;
    size_t n = 0;
    if (len > 0 && clean_text(utf8_text, len, &text, &n, err) != SG_OK)
        return -1;

    int count = 0, limit = ctx - 1; /* ids[limit] is the last place, kept for eot */
    ids[count++] = t->sot;
    sg_bpe_work w = {0};
    for (size_t i = 0; i < n && count < limit;) {
        size_t m = match_at(text, n, i);
        if (m == 0) {
            i++;
            continue;
        }
        if (is_exactly(text + i, m, SOT_TEXT)) {
            ids[count++] = t->sot;
        } else if (is_exactly(text + i, m, EOT_TEXT)) {
            ids[count++] = t->eot;
        } else {
            if (!sg_bpe_work_reserve(&w, 4 * m)) {
                sg_bpe_work_release(&w);
                free(text);
                sg_error_set(err, SG_ENOMEM, "out of memory tokenizing");
                return -1;
            }
            count += bpe_piece(t, &w, text + i, m, ids + count, limit - count);
        }
        i += m;
    }
    ids[count++] = t->eot;
    sg_bpe_work_release(&w);
    free(text);
    return count;
}
