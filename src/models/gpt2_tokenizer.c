/* GPT-2's byte-level BPE as tiktoken's encode_ordinary runs it: split the text with GPT-2's
 * pattern (written out by hand below, code point by code point, as Python's regex module matches
 * it), then within each piece start from its single bytes and keep merging the adjacent pair of
 * highest priority (lowest rank; the leftmost on a tie) until no adjacent pair can merge.
 * py/gpt2_tokenizer_reference.py is the specification this follows.
 *
 * After loading, a tokenizer is: every token's bytes (for decoding), the ids of the 256 single
 * bytes, and a hash map from a pair of token ids to (rank, merged id). Both file formats become
 * that map. For a .tiktoken file, tiktoken merges two parts when their concatenated bytes are a
 * token, so every way of splitting a token into two tokens is a pair, ranked by the token; for
 * merges.txt, each line is one pair ranked by its line, as Hugging Face and GPT-2's encoder.py
 * do (for the GPT-2 vocabulary the two give the same ids). A tiktoken vocabulary also keeps a map
 * from bytes to id, because tiktoken takes a piece that is itself a token as that token without
 * merging. bpe_common.c holds the pair map and the merge engine (run in tiktoken's order).
 * Encoding reads the tokenizer and allocates its own scratch space, so it needs no lock. */
#include "models/gpt2_tokenizer.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <unistr.h>

#include "base/base64.h"
#include "base/file.h"
#include "base/json.h"
#include "models/bpe_common.h"

#define EOT_TEXT "<|endoftext|>"
/* Largest vocabulary file read; GPT-2's are about 1 MB. */
#define MAX_FILE_BYTES ((size_t)256 << 20)
/* Longest text sg_bpe_encode takes: positions inside a piece are int32_t. */
#define MAX_TEXT_BYTES ((size_t)INT32_MAX - 1)

typedef struct token_ref {
    uint32_t off, len; /* bytes at blob + off, followed by a NUL */
} token_ref;

typedef struct token_slot {
    uint32_t hash;
    int32_t id; /* -1: empty */
} token_slot;

struct sg_bpe {
    int32_t n_ids; /* ids are 0..n_ids-1 */
    int32_t eot;
    char *blob;
    token_ref *tokens; /* n_ids entries */
    token_slot *map; /* bytes -> id of the BPE tokens; NULL: no whole-piece rule (merges.txt) */
    size_t map_mask;
    sg_bpe_rules rules; /* the single bytes' ids, the pairs; tiktoken's order */
};

/* ---------------------------------------------------------------------------------------------
 * Hash maps */

static uint32_t bytes_hash(const uint8_t *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15u ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDu;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)s[i] << (8 * i);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53u;
    h ^= h >> 29;
    h *= 0xFF51AFD7ED558CCDu;
    return (uint32_t)(h >> 32);
}

static const uint8_t *token_data(const sg_bpe *t, int32_t id)
{
    return (const uint8_t *)t->blob + t->tokens[id].off;
}

/* The slot holding bytes s[0..n) with hash h, or the empty slot where they would go. */
static token_slot *map_slot(const sg_bpe *t, const uint8_t *s, size_t n, uint32_t h)
{
    for (size_t i = h & t->map_mask;; i = (i + 1) & t->map_mask) {
        token_slot *e = &t->map[i];
        if (e->id < 0 || (e->hash == h && t->tokens[e->id].len == n &&
                          memcmp(token_data(t, e->id), s, n) == 0))
            return e;
    }
}

static int32_t map_find(const sg_bpe *t, const uint8_t *s, size_t n)
{
    return map_slot(t, s, n, bytes_hash(s, n))->id;
}

/* ---------------------------------------------------------------------------------------------
 * Loading: shared parts */

static sg_bpe *bpe_new(sg_error *err)
{
    sg_bpe *t = calloc(1, sizeof *t);
    if (!t)
        sg_error_set(err, SG_ENOMEM, "out of memory loading a BPE vocabulary");
    else
        t->rules.order = SG_BPE_PAIR_AT_A_TIME;
    return t;
}

/* ---------------------------------------------------------------------------------------------
 * Loading a .tiktoken file */

/* Fills t->map with the n BPE tokens (ids 0..n-1); line_of[id] names lines for errors. */
static sg_status build_token_map(sg_bpe *t, int32_t n, const int32_t *line_of, const char *path,
                                 sg_error *err)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)n)
        cap *= 2;
    t->map = malloc(cap * sizeof *t->map);
    if (!t->map)
        return sg_error_set(err, SG_ENOMEM, "out of memory loading %s", path);
    for (size_t i = 0; i < cap; i++)
        t->map[i].id = -1;
    t->map_mask = cap - 1;
    for (int32_t id = 0; id < n; id++) {
        const uint8_t *s = token_data(t, id);
        uint32_t h = bytes_hash(s, t->tokens[id].len);
        token_slot *e = map_slot(t, s, t->tokens[id].len, h);
        if (e->id >= 0)
            return sg_error_set(err, SG_EINVAL, "%s line %d: the token of line %d again", path,
                                line_of[id] > line_of[e->id] ? line_of[id] : line_of[e->id],
                                line_of[id] > line_of[e->id] ? line_of[e->id] : line_of[id]);
        *e = (token_slot){h, id};
    }
    return SG_OK;
}

/* tiktoken merges two adjacent parts when their concatenation is a token: list every split of
 * every token into two tokens as a pair ranked (and merging into) that token. */
static sg_status pairs_from_splits(sg_bpe *t, int32_t n, const char *path, sg_error *err)
{
    /* gpt2.tiktoken has 2.2 pairs a token: reserving 2 makes one resize at most */
    if (!sg_bpe_pairs_reserve(&t->rules.pairs, 2 * (size_t)n))
        return sg_error_set(err, SG_ENOMEM, "out of memory loading %s", path);
    for (int32_t id = 0; id < n; id++) {
        const uint8_t *s = token_data(t, id);
        size_t len = t->tokens[id].len;
        for (size_t k = 1; k < len; k++) {
            int32_t left = map_find(t, s, k);
            if (left < 0)
                continue;
            int32_t right = map_find(t, s + k, len - k);
            if (right >= 0 && !sg_bpe_pairs_put(&t->rules.pairs, left, right, id, id))
                return sg_error_set(err, SG_ENOMEM, "out of memory loading %s", path);
        }
    }
    return SG_OK;
}

static int is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/' || c == '=';
}

/* The end of the line starting at text[pos] and, in *next, the start of the next one. Lines end
 * at "\n", "\r\n" or "\r", as for Python's bytes.splitlines(), which tiktoken uses. */
static size_t line_end(const char *text, size_t pos, size_t len, size_t *next)
{
    while (pos < len && text[pos] != '\n' && text[pos] != '\r')
        pos++;
    *next = pos + (pos + 1 < len && text[pos] == '\r' && text[pos + 1] == '\n' ? 2 : 1);
    return pos;
}

/* Parses the lines of a ranks file into t->blob / t->tokens (ids 0..n-1 by rank, then eot). */
static sg_status parse_tiktoken(sg_bpe *t, const char *text, size_t len, const char *path,
                                int32_t **line_of_out, sg_error *err)
{
    size_t n = 0, next;
    for (size_t pos = 0; pos < len; pos = next)
        n += line_end(text, pos, len, &next) > pos;
    if (n == 0)
        return sg_error_set(err, SG_EINVAL, "%s: no tokens", path);
    if (n > (size_t)INT32_MAX - 2)
        return sg_error_set(err, SG_ETOOBIG, "%s: too many tokens", path);
    /* decoded tokens are shorter than their lines, so the blob never grows */
    size_t blob_cap = len + n + sizeof EOT_TEXT + 1, blob_len = 0;
    t->blob = malloc(blob_cap);
    t->tokens = malloc((n + 1) * sizeof *t->tokens);
    int32_t *line_of = malloc(n * sizeof *line_of);
    *line_of_out = line_of;
    if (!t->blob || !t->tokens || !line_of)
        return sg_error_set(err, SG_ENOMEM, "out of memory loading %s", path);
    for (size_t i = 0; i < n; i++)
        line_of[i] = -1;

    int line_no = 0;
    for (size_t pos = 0; pos < len; pos = next) {
        const char *line = text + pos;
        size_t line_len = line_end(text, pos, len, &next) - pos;
        line_no++;
        if (line_len == 0)
            continue;
        const char *field[2];
        size_t field_len[2];
        if (sg_bpe_split_fields(line, line_len, field, field_len, 2) != 2)
            return sg_error_set(err, SG_EINVAL, "%s line %d: expected \"<base64> <rank>\"", path,
                                line_no);
        uint64_t rank = 0;
        for (size_t i = 0; i < field_len[1]; i++) {
            char c = field[1][i];
            if (c < '0' || c > '9' || i >= 10)
                return sg_error_set(err, SG_EINVAL, "%s line %d: bad rank \"%.*s\"", path,
                                    line_no, field_len[1] > 20 ? 20 : (int)field_len[1],
                                    field[1]);
            rank = rank * 10 + (uint64_t)(c - '0');
        }
        if (rank >= n)
            return sg_error_set(err, SG_EINVAL,
                                "%s line %d: rank %llu out of range (the ranks of %zu tokens "
                                "must be 0..%zu)",
                                path, line_no, (unsigned long long)rank, n, n - 1);
        if (line_of[rank] >= 0)
            return sg_error_set(err, SG_EINVAL, "%s line %d: rank %llu already on line %d",
                                path, line_no, (unsigned long long)rank, line_of[rank]);
        line_of[rank] = line_no;

        size_t tok_len = 0;
        if (!(field_len[0] == 1 && field[0][0] == '=')) { /* "=" is b64decode's empty token */
            for (size_t i = 0; i < field_len[0]; i++)
                if (!is_base64_char(field[0][i]))
                    return sg_error_set(err, SG_EINVAL, "%s line %d: bad base64 token", path,
                                        line_no);
            uint8_t *bytes = NULL;
            sg_error b64err = {0};
            if (sg_base64_decode(field[0], field_len[0], &bytes, &tok_len, &b64err) != SG_OK)
                return b64err.code == SG_ENOMEM
                           ? sg_error_set(err, SG_ENOMEM, "out of memory loading %s", path)
                           : sg_error_set(err, SG_EINVAL, "%s line %d: bad base64 token (%s)",
                                          path, line_no, b64err.msg);
            memcpy(t->blob + blob_len, bytes, tok_len);
            free(bytes);
        }
        t->tokens[rank] = (token_ref){(uint32_t)blob_len, (uint32_t)tok_len};
        blob_len += tok_len;
        t->blob[blob_len++] = '\0';
    }
    t->eot = (int32_t)n;
    t->tokens[n] = (token_ref){(uint32_t)blob_len, (uint32_t)strlen(EOT_TEXT)};
    memcpy(t->blob + blob_len, EOT_TEXT, sizeof EOT_TEXT);
    t->n_ids = (int32_t)n + 1;
    return SG_OK;
}

sg_bpe *sg_bpe_load_tiktoken(const char *path, sg_error *err)
{
    if (!path) {
        sg_error_set(err, SG_EINVAL, "bpe: missing path");
        return NULL;
    }
    size_t len = 0;
    char *text;
    if (sg_file_read(path, MAX_FILE_BYTES, &text, &len, err) != SG_OK)
        return NULL;
    int32_t *line_of = NULL;
    sg_bpe *t = bpe_new(err);
    sg_status st = t ? parse_tiktoken(t, text, len, path, &line_of, err) : SG_ENOMEM;
    free(text);
    if (st == SG_OK)
        st = build_token_map(t, t->eot, line_of, path, err);
    for (int b = 0; b < 256 && st == SG_OK; b++) {
        uint8_t byte = (uint8_t)b;
        if ((t->rules.byte_id[b] = map_find(t, &byte, 1)) < 0)
            st = sg_error_set(err, SG_EINVAL, "%s: no token for the byte 0x%02X", path, b);
    }
    if (st == SG_OK)
        st = pairs_from_splits(t, t->eot, path, err);
    free(line_of);
    if (st != SG_OK) {
        sg_bpe_free(t);
        return NULL;
    }
    return t;
}

sg_bpe *sg_bpe_load_ranks(const uint8_t *const *tok, const size_t *len, int32_t n, sg_error *err)
{
    if (!tok || !len || n < 256 || n > INT32_MAX - 2) {
        sg_error_set(err, SG_EINVAL, "bpe: bad ranks (%d tokens)", (int)n);
        return NULL;
    }
    sg_bpe *t = bpe_new(err);
    if (!t)
        return NULL;
    size_t blob = sizeof EOT_TEXT + 1;
    for (int32_t i = 0; i < n; i++)
        blob += (tok[i] ? len[i] : 0) + 1;
    t->blob = malloc(blob);
    t->tokens = malloc(((size_t)n + 1) * sizeof *t->tokens);
    size_t cap = 16;
    while (cap < 2 * (size_t)n)
        cap *= 2;
    t->map = malloc(cap * sizeof *t->map);
    if (!t->blob || !t->tokens || !t->map) {
        sg_bpe_free(t);
        sg_error_set(err, SG_ENOMEM, "out of memory building a BPE vocabulary");
        return NULL;
    }
    for (size_t i = 0; i < cap; i++)
        t->map[i].id = -1;
    t->map_mask = cap - 1;
    size_t o = 0;
    for (int32_t id = 0; id < n; id++) {
        const size_t l = tok[id] ? len[id] : 0;
        if (l)
            memcpy(t->blob + o, tok[id], l);
        t->tokens[id] = (token_ref){(uint32_t)o, (uint32_t)l};
        o += l;
        t->blob[o++] = '\0';
        if (!l)
            continue; /* unknown: decodes to nothing, never produced */
        const uint8_t *b = token_data(t, id);
        const uint32_t h = bytes_hash(b, l);
        token_slot *e = map_slot(t, b, l, h);
        if (e->id < 0) /* a repeated token keeps its lowest rank */
            *e = (token_slot){h, id};
    }
    t->eot = n;
    t->tokens[n] = (token_ref){(uint32_t)o, (uint32_t)strlen(EOT_TEXT)};
    memcpy(t->blob + o, EOT_TEXT, sizeof EOT_TEXT);
    t->n_ids = n + 1;
    sg_status st = SG_OK;
    for (int b = 0; b < 256 && st == SG_OK; b++) {
        uint8_t byte = (uint8_t)b;
        if ((t->rules.byte_id[b] = map_find(t, &byte, 1)) < 0)
            st = sg_error_set(err, SG_EINVAL, "bpe: no token for the byte 0x%02X", b);
    }
    if (st == SG_OK)
        st = pairs_from_splits(t, t->eot, "ranks", err);
    if (st != SG_OK) {
        sg_bpe_free(t);
        return NULL;
    }
    return t;
}

/* ---------------------------------------------------------------------------------------------
 * Loading Hugging Face's vocab.json + merges.txt */

/* The bytes a vocab.json key stands for, written to out (room for strlen(key)): each character
 * decoded with GPT-2's byte table, or, if any character is not in it, the key's own UTF-8. */
static size_t key_bytes(const char *key, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        ucs4_t c;
        int k = u8_mbtouc(&c, (const uint8_t *)key + i, n - i);
        int b = sg_bpe_char_byte(c);
        if (b < 0) {
            memcpy(out, key, n);
            return n;
        }
        out[o++] = (char)b;
        i += (size_t)k;
    }
    return o;
}

static int32_t vocab_id(const json_t *vocab, const char *key, size_t n)
{
    json_t *v = json_object_getn(vocab, key, n);
    return v ? (int32_t)json_integer_value(v) : -1;
}

/* Reads the ids and token bytes from vocab.json (already parsed). */
static sg_status load_vocab(sg_bpe *t, const json_t *vocab, const char *path, sg_error *err)
{
    if (!json_is_object(vocab) || json_object_size(vocab) == 0)
        return sg_error_set(err, SG_EINVAL, "%s: expected an object of token ids", path);
    size_t n = json_object_size(vocab), blob_cap = 1;
    if (n > (size_t)INT32_MAX - 1)
        return sg_error_set(err, SG_ETOOBIG, "%s: too many tokens", path);
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)vocab, key, value) blob_cap += strlen(key) + 1;
    t->blob = malloc(blob_cap);
    t->tokens = malloc(n * sizeof *t->tokens);
    unsigned char *seen = calloc(n, 1);
    sg_status st = SG_OK;
    if (!t->blob || !t->tokens || !seen) {
        free(seen);
        return sg_error_set(err, SG_ENOMEM, "out of memory loading %s", path);
    }
    size_t blob_len = 0;
    json_object_foreach((json_t *)vocab, key, value) {
        json_int_t id = json_is_integer(value) ? json_integer_value(value) : -1;
        if (id < 0 || (size_t)id >= n) {
            st = sg_error_set(err, SG_EINVAL,
                              "%s: the id of \"%.64s\" is not an integer in 0..%zu (the ids of "
                              "%zu tokens must be 0..%zu)",
                              path, key, n - 1, n, n - 1);
            break;
        }
        if (seen[id]) {
            st = sg_error_set(err, SG_EINVAL, "%s: id %lld is given twice (\"%.64s\")", path,
                              (long long)id, key);
            break;
        }
        seen[id] = 1;
        size_t len = key_bytes(key, strlen(key), t->blob + blob_len);
        t->tokens[id] = (token_ref){(uint32_t)blob_len, (uint32_t)len};
        blob_len += len;
        t->blob[blob_len++] = '\0';
    }
    free(seen);
    if (st != SG_OK)
        return st;
    t->n_ids = (int32_t)n;
    for (int b = 0; b < 256; b++) {
        uint8_t s[4];
        int k = u8_uctomb(s, sg_bpe_byte_char((uint8_t)b), 4);
        if ((t->rules.byte_id[b] = vocab_id(vocab, (const char *)s, (size_t)k)) < 0)
            return sg_error_set(err, SG_EINVAL, "%s: no entry for the byte 0x%02X", path, b);
    }
    if ((t->eot = vocab_id(vocab, EOT_TEXT, strlen(EOT_TEXT))) < 0)
        return sg_error_set(err, SG_EINVAL, "%s: no entry for %s", path, EOT_TEXT);
    return SG_OK;
}

static int32_t vocab_symbol_id(const void *vocab, const char *key, size_t n)
{
    return vocab_id(vocab, key, n);
}

/* Reads merges.txt: a "#version" line, then "left right" per line; rank = line order. */
static sg_status load_merges(sg_bpe *t, const json_t *vocab, const char *path, sg_error *err)
{
    size_t len = 0;
    char *text;
    sg_status st = sg_file_read(path, MAX_FILE_BYTES, &text, &len, err);
    if (st != SG_OK)
        return st;
    st = sg_bpe_pairs_read_merges(&t->rules.pairs, text, len, path, SIZE_MAX, vocab_symbol_id, vocab,
                                  err);
    free(text);
    return st;
}

sg_bpe *sg_bpe_load_hf(const char *vocab_json, const char *merges_txt, sg_error *err)
{
    if (!vocab_json || !merges_txt) {
        sg_error_set(err, SG_EINVAL, "bpe: missing path");
        return NULL;
    }
    size_t len = 0;
    char *text;
    if (sg_file_read(vocab_json, MAX_FILE_BYTES, &text, &len, err) != SG_OK)
        return NULL;
    sg_error jerr = {0};
    json_t *vocab = sg_json_parse(text, len, &jerr);
    free(text);
    if (!vocab) {
        sg_error_set(err, jerr.code, "%s: %s", vocab_json, jerr.msg);
        return NULL;
    }
    sg_bpe *t = bpe_new(err);
    sg_status st = t ? load_vocab(t, vocab, vocab_json, err) : SG_ENOMEM;
    if (st == SG_OK)
        st = load_merges(t, vocab, merges_txt, err);
    json_decref(vocab);
    if (st != SG_OK) {
        sg_bpe_free(t);
        return NULL;
    }
    return t;
}

/* ---------------------------------------------------------------------------------------------
 * Loading a directory, freeing, accessors */

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int is_regular_file(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The byte-order-first name ending in ".tiktoken" (not hidden) in dir, malloc'ed, or NULL. */
static char *first_tiktoken(DIR *d)
{
    char *best = NULL;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name), suffix = strlen(".tiktoken");
        if (e->d_name[0] == '.' || n <= suffix ||
            strcmp(e->d_name + n - suffix, ".tiktoken") != 0)
            continue;
        if (!best || strcmp(e->d_name, best) < 0) {
            char *copy = strdup(e->d_name);
            if (!copy)
                continue;
            free(best);
            best = copy;
        }
    }
    return best;
}

sg_bpe *sg_bpe_load_dir(const char *dir, sg_error *err)
{
    if (!dir) {
        sg_error_set(err, SG_EINVAL, "bpe: missing directory");
        return NULL;
    }
    sg_bpe *t = NULL;
    char *vocab = path_join(dir, "vocab.json"), *merges = path_join(dir, "merges.txt");
    char *name = NULL, *path = NULL;
    DIR *d = NULL;
    if (!vocab || !merges) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
    } else if (is_regular_file(vocab) && is_regular_file(merges)) {
        t = sg_bpe_load_hf(vocab, merges, err);
    } else if (!(d = opendir(dir))) {
        sg_error_set(err, SG_EIO, "cannot open the directory %s: %s", dir, strerror(errno));
    } else if (!(name = first_tiktoken(d))) {
        sg_error_set(err, SG_EIO, "%s: no vocab.json + merges.txt and no *.tiktoken file", dir);
    } else if (!(path = path_join(dir, name))) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
    } else {
        t = sg_bpe_load_tiktoken(path, err);
    }
    if (d)
        closedir(d);
    free(name);
    free(path);
    free(vocab);
    free(merges);
    return t;
}

void sg_bpe_free(sg_bpe *t)
{
    if (!t)
        return;
    free(t->blob);
    free(t->tokens);
    free(t->map);
    sg_bpe_pairs_free(&t->rules.pairs);
    free(t);
}

int sg_bpe_vocab_size(const sg_bpe *t) { return t ? t->n_ids : 0; }
int32_t sg_bpe_eot(const sg_bpe *t) { return t ? t->eot : -1; }

const char *sg_bpe_token_bytes(const sg_bpe *t, int32_t id, size_t *len)
{
    if (!t || id < 0 || id >= t->n_ids) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = t->tokens[id].len;
    return t->blob + t->tokens[id].off;
}

/* ---------------------------------------------------------------------------------------------
 * Pre-tokenisation: GPT-2's pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * as regex.findall matches it (case-sensitive). Every character is a space, letter, number or
 * other, so some alternative always matches and the pieces cover the text. The optional space
 * joins the run of letters, numbers or others after it; a run of whitespace followed by a
 * non-space gives up its last character, which then starts the next piece (" b" after "a  ",
 * or a lone "\n" before a word). */

enum { CL_SPACE, CL_LETTER, CL_NUMBER, CL_OTHER };

/* What next_char gives for a byte that does not start a valid sequence: "other", like the lone
 * surrogate Python's surrogateescape would make of it. */
#define BAD_BYTE 0xFFFFFFFFu

static int char_class(uint32_t c)
{
    if (c < 0x80) {
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
            return CL_LETTER;
        if (c >= '0' && c <= '9')
            return CL_NUMBER;
        return c == ' ' || (c >= 0x09 && c <= 0x0D) ? CL_SPACE : CL_OTHER;
    }
    if (c == BAD_BYTE)
        return CL_OTHER;
    if (sg_bpe_is_letter(c))
        return CL_LETTER;
    if (sg_bpe_is_number(c))
        return CL_NUMBER;
    return sg_bpe_is_space(c) ? CL_SPACE : CL_OTHER;
}

/* Decodes the character at s[i], i < len, as Python's strict UTF-8 decoder would (no overlong
 * forms, no surrogates, nothing above U+10FFFF): returns its length and sets *c, or returns 1
 * with *c = BAD_BYTE. */
static size_t next_char(const uint8_t *s, size_t len, size_t i, uint32_t *c)
{
    uint8_t b = s[i];
    if (b < 0x80) {
        *c = b;
        return 1;
    }
    size_t need;
    uint32_t v;
    uint8_t lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
        v = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        v = b & 0x0Fu;
        lo = b == 0xE0 ? 0xA0 : 0x80;
        hi = b == 0xED ? 0x9F : 0xBF;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        v = b & 0x07u;
        lo = b == 0xF0 ? 0x90 : 0x80;
        hi = b == 0xF4 ? 0x8F : 0xBF;
    } else {
        *c = BAD_BYTE;
        return 1;
    }
    if (len - i <= need || s[i + 1] < lo || s[i + 1] > hi) {
        *c = BAD_BYTE;
        return 1;
    }
    v = v << 6 | (s[i + 1] & 0x3Fu);
    for (size_t k = 2; k <= need; k++) {
        if ((s[i + k] & 0xC0) != 0x80) {
            *c = BAD_BYTE;
            return 1;
        }
        v = v << 6 | (s[i + k] & 0x3Fu);
    }
    *c = v;
    return need + 1;
}

/* The end of the piece that starts at s[i], i < len. */
static size_t piece_end(const uint8_t *s, size_t len, size_t i)
{
    if (s[i] == '\'' && i + 1 < len) {
        uint8_t c1 = s[i + 1], c2 = i + 2 < len ? s[i + 2] : 0;
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
            return i + 2;
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
            return i + 3;
    }
    uint32_t c;
    size_t j = i + next_char(s, len, i, &c);
    int cls = char_class(c);
    if (c == ' ' && j < len) { /* " ?" then a run of the class of the next character */
        uint32_t c1;
        size_t k = next_char(s, len, j, &c1);
        if (char_class(c1) != CL_SPACE) {
            cls = char_class(c1);
            j += k;
        }
    }
    if (cls != CL_SPACE) {
        while (j < len) {
            size_t k = next_char(s, len, j, &c);
            if (char_class(c) != cls)
                break;
            j += k;
        }
        return j;
    }
    size_t last = i; /* start of the last whitespace character of the run */
    while (j < len) {
        size_t k = next_char(s, len, j, &c);
        if (char_class(c) != CL_SPACE)
            break;
        last = j;
        j += k;
    }
    /* \s+(?!\S): the whole run at the end of the text, else all but its last character;
     * \s+: a single whitespace character before a non-space */
    return j == len || last == i ? j : last;
}

/* ---------------------------------------------------------------------------------------------
 * Encoding and decoding */

/* The ids of s[0..len), 0 < len <= MAX_TEXT_BYTES: *ids malloc'ed, *n of them. */
static sg_status encode_pieces(const sg_bpe *t, const uint8_t *s, size_t len, int32_t **ids,
                               size_t *n, sg_error *err)
{
    int32_t *out = malloc(len * sizeof *out); /* at most one id per byte */
    sg_bpe_work w = {0};
    if (!out)
        return sg_error_set(err, SG_ENOMEM, "out of memory encoding %zu bytes", len);
    size_t count = 0;
    for (size_t i = 0; i < len;) {
        size_t end = piece_end(s, len, i), m = end - i;
        int32_t whole = m == 1 ? t->rules.byte_id[s[i]] : t->map ? map_find(t, s + i, m) : -1;
        if (whole >= 0) {
            out[count++] = whole;
        } else if (sg_bpe_work_reserve(&w, m)) {
            count += sg_bpe_merge(&t->rules, &w, s + i, m, out + count, m);
        } else {
            sg_bpe_work_release(&w);
            free(out);
            return sg_error_set(err, SG_ENOMEM, "out of memory encoding %zu bytes", len);
        }
        i = end;
    }
    sg_bpe_work_release(&w);
    int32_t *shrunk = realloc(out, count * sizeof *out);
    *ids = shrunk ? shrunk : out;
    *n = count;
    return SG_OK;
}

sg_status sg_bpe_encode(const sg_bpe *t, const char *text, size_t len, int32_t **ids, size_t *n,
                        sg_error *err)
{
    int32_t *out = NULL;
    size_t count = 0;
    sg_status st = !t || !ids || !n || (!text && len > 0)
                       ? sg_error_set(err, SG_EINVAL, "bpe encode: bad argument")
                   : len > MAX_TEXT_BYTES
                       ? sg_error_set(err, SG_ETOOBIG, "bpe encode: text longer than %zu bytes",
                                      MAX_TEXT_BYTES)
                   : len == 0 ? SG_OK
                              : encode_pieces(t, (const uint8_t *)text, len, &out, &count, err);
    if (ids)
        *ids = out;
    if (n)
        *n = count;
    return st;
}

sg_status sg_bpe_decode(const sg_bpe *t, const int32_t *ids, size_t n, char **out, size_t *len,
                        sg_error *err)
{
    if (out)
        *out = NULL;
    if (len)
        *len = 0;
    if (!t || !out || !len || (!ids && n > 0))
        return sg_error_set(err, SG_EINVAL, "bpe decode: bad argument");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_ids)
            return sg_error_set(err, SG_EINVAL, "bpe decode: unknown token id %d at %zu",
                                (int)ids[i], i);
        total += t->tokens[ids[i]].len;
        if (total > SIZE_MAX / 2)
            return sg_error_set(err, SG_ETOOBIG, "bpe decode: output too large");
    }
    char *buf = malloc(total + 1);
    if (!buf)
        return sg_error_set(err, SG_ENOMEM, "out of memory decoding %zu tokens", n);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + o, t->blob + t->tokens[ids[i]].off, t->tokens[ids[i]].len);
        o += t->tokens[ids[i]].len;
    }
    buf[o] = '\0';
    *out = buf;
    *len = o;
    return SG_OK;
}
