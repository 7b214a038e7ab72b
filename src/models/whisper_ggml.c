/* whisper.cpp ggml model files: the parser (see whisper_ggml.h). Reads are bounds-checked against
 * the bytes there are before every field, so any byte string gives either a parsed file or an
 * error. */
#include "models/whisper_ggml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

#define MAX_TENSORS 100000
#define MAX_FILTER_FLOATS (1u << 24)

typedef struct rd {
    const uint8_t *p;
    size_t len, off;
} rd;

static int rd_u32(rd *r, uint32_t *v)
{
    if (r->len - r->off < 4)
        return -1;
    const uint8_t *b = r->p + r->off;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    r->off += 4;
    return 0;
}

static int rd_i32(rd *r, int32_t *v)
{
    uint32_t u;
    if (rd_u32(r, &u) != 0)
        return -1;
    *v = (int32_t)u;
    return 0;
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

void sg_wggml_free(sg_wggml *g)
{
    if (!g)
        return;
    free(g->filters);
    free(g->tok_off);
    free(g->tok_len);
    free(g->tok_bytes);
    free(g->tensors);
    free(g->index);
    sg_file_map_close(&g->file);
    memset(g, 0, sizeof *g);
}

static const char *ggml_type_name(int32_t t)
{
    switch (t) {
    case 2: return "q4_0";
    case 3: return "q4_1";
    case 6: return "q5_0";
    case 7: return "q5_1";
    case 8: return "q8_0";
    case 9: return "q8_1";
    case 10: return "q2_k";
    case 11: return "q3_k";
    case 12: return "q4_k";
    case 13: return "q5_k";
    case 14: return "q6_k";
    case 15: return "q8_k";
    default: return "unknown";
    }
}

static sg_status parse_header(rd *r, sg_wggml *g, sg_error *err)
{
    uint32_t magic;
    if (rd_u32(r, &magic) != 0)
        return sg_error_set(err, SG_EINVAL, "whisper ggml: file too short for a header");
    if (magic != SG_WGGML_MAGIC)
        return sg_error_set(err, SG_EINVAL, "whisper ggml: not a ggml file (magic 0x%08x)",
                            (unsigned)magic);
    int32_t *hp = &g->hp.n_vocab;
    static const char *names[11] = {"n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head",
                                    "n_audio_layer", "n_text_ctx", "n_text_state", "n_text_head",
                                    "n_text_layer", "n_mels", "ftype"};
    for (int i = 0; i < 11; i++)
        if (rd_i32(r, &hp[i]) != 0)
            return sg_error_set(err, SG_EINVAL, "whisper ggml: truncated hparams (%s)", names[i]);
    const sg_wggml_hparams *h = &g->hp;
    if (h->n_vocab < 51864 || h->n_vocab > 51866)
        return sg_error_set(err, SG_EINVAL, "whisper ggml: n_vocab %d is not a Whisper vocabulary "
                            "(51864 .en, 51865 multilingual, 51866 large-v3)", (int)h->n_vocab);
    if (h->n_audio_state <= 0 || h->n_audio_state > 8192 || h->n_text_state != h->n_audio_state ||
        h->n_audio_head <= 0 || h->n_audio_state % h->n_audio_head || h->n_text_head <= 0 ||
        h->n_text_state % h->n_text_head || h->n_audio_layer <= 0 || h->n_audio_layer > 128 ||
        h->n_text_layer <= 0 || h->n_text_layer > 128 || h->n_audio_ctx <= 0 ||
        h->n_audio_ctx > 100000 || h->n_text_ctx < 4 || h->n_text_ctx > 100000 || h->n_mels <= 0 ||
        h->n_mels > 1024)
        return sg_error_set(err, SG_EINVAL, "whisper ggml: implausible hparams (state %d/%d, heads "
                            "%d/%d, layers %d/%d, contexts %d/%d, mels %d)", (int)h->n_audio_state,
                            (int)h->n_text_state, (int)h->n_audio_head, (int)h->n_text_head,
                            (int)h->n_audio_layer, (int)h->n_text_layer, (int)h->n_audio_ctx,
                            (int)h->n_text_ctx, (int)h->n_mels);
    const int32_t ft = h->ftype % 1000; /* whisper.cpp adds GGML_QNT_VERSION * 1000 */
    if (h->ftype < 0 || (ft != 0 && ft != 1))
        return sg_error_set(err, SG_EUNSUPPORTED, "whisper ggml: ftype %d is a quantized model; "
                            "only F32 (0) and F16 (1) whisper.cpp files are supported",
                            (int)h->ftype);
    /* mel filters */
    int32_t nm, nf;
    if (rd_i32(r, &nm) != 0 || rd_i32(r, &nf) != 0)
        return sg_error_set(err, SG_EINVAL, "whisper ggml: truncated mel filter header");
    if (nm <= 0 || nm > 1024 || nf <= 0 || nf > 4096)
        return sg_error_set(err, SG_EINVAL, "whisper ggml: mel filter table of %d x %d", (int)nm,
                            (int)nf);
    const size_t nfl = (size_t)nm * (size_t)nf;
    if ((r->len - r->off) / 4 < nfl)
        return sg_error_set(err, SG_EINVAL, "whisper ggml: truncated mel filters (%d x %d)",
                            (int)nm, (int)nf);
    g->filters = malloc(nfl * sizeof(float));
    if (!g->filters)
        return sg_error_set(err, SG_ENOMEM, "whisper ggml: out of memory");
    for (size_t i = 0; i < nfl; i++) {
        uint32_t u = 0;
        rd_u32(r, &u);
        memcpy(&g->filters[i], &u, 4);
    }
    g->n_mel = nm;
    g->n_fft = nf;
    /* vocabulary */
    int32_t nv;
    if (rd_i32(r, &nv) != 0)
        return sg_error_set(err, SG_EINVAL, "whisper ggml: truncated vocabulary size");
    if (nv < 0 || nv > h->n_vocab)
        return sg_error_set(err, SG_EINVAL, "whisper ggml: vocabulary of %d entries (n_vocab %d)",
                            (int)nv, (int)h->n_vocab);
    /* first pass: sizes */
    const size_t start = r->off;
    size_t total = 0;
    for (int32_t i = 0; i < nv; i++) {
        uint32_t l;
        if (rd_u32(r, &l) != 0 || r->len - r->off < l)
            return sg_error_set(err, SG_EINVAL, "whisper ggml: truncated vocabulary at entry %d "
                                "of %d", (int)i, (int)nv);
        r->off += l;
        total += (size_t)l + 1;
    }
    g->tok_off = malloc(((size_t)nv + 1) * sizeof *g->tok_off);
    g->tok_len = malloc(((size_t)nv + 1) * sizeof *g->tok_len);
    g->tok_bytes = malloc(total + 1);
    if (!g->tok_off || !g->tok_len || !g->tok_bytes)
        return sg_error_set(err, SG_ENOMEM, "whisper ggml: out of memory");
    if (total > UINT32_MAX)
        return sg_error_set(err, SG_EINVAL, "whisper ggml: vocabulary too large");
    r->off = start;
    size_t o = 0;
    for (int32_t i = 0; i < nv; i++) {
        uint32_t l = 0;
        rd_u32(r, &l);
        memcpy(g->tok_bytes + o, r->p + r->off, l);
        g->tok_bytes[o + l] = 0;
        g->tok_off[i] = (uint32_t)o;
        g->tok_len[i] = l;
        o += (size_t)l + 1;
        r->off += l;
    }
    g->n_tokens = nv;
    return SG_OK;
}

static sg_status parse_tensors(rd *r, sg_wggml *g, sg_error *err)
{
    size_t cap = 0;
    while (r->off < r->len) {
        const size_t at = r->off;
        int32_t nd, nl, tt;
        if (rd_i32(r, &nd) != 0 || rd_i32(r, &nl) != 0 || rd_i32(r, &tt) != 0)
            return sg_error_set(err, SG_EINVAL, "whisper ggml: truncated tensor header at byte %zu",
                                at);
        if (nd < 1 || nd > SG_WGGML_MAX_DIMS)
            return sg_error_set(err, SG_EINVAL, "whisper ggml: tensor at byte %zu has %d "
                                "dimensions", at, (int)nd);
        if (nl <= 0 || nl > SG_WGGML_MAX_NAME)
            return sg_error_set(err, SG_EINVAL, "whisper ggml: tensor at byte %zu has a name of %d "
                                "bytes", at, (int)nl);
        int32_t ne[SG_WGGML_MAX_DIMS];
        for (int i = 0; i < nd; i++) {
            if (rd_i32(r, &ne[i]) != 0)
                return sg_error_set(err, SG_EINVAL, "whisper ggml: truncated tensor header at "
                                    "byte %zu", at);
            if (ne[i] <= 0)
                return sg_error_set(err, SG_EINVAL, "whisper ggml: tensor at byte %zu has "
                                    "dimension %d", at, (int)ne[i]);
        }
        if (r->len - r->off < (size_t)nl)
            return sg_error_set(err, SG_EINVAL, "whisper ggml: truncated tensor name at byte %zu",
                                at);
        if (g->n_tensors == cap) {
            if (cap >= MAX_TENSORS)
                return sg_error_set(err, SG_EINVAL, "whisper ggml: more than %d tensors",
                                    MAX_TENSORS);
            size_t nc = cap ? 2 * cap : 256;
            sg_wggml_tensor *t = realloc(g->tensors, nc * sizeof *t);
            if (!t)
                return sg_error_set(err, SG_ENOMEM, "whisper ggml: out of memory");
            g->tensors = t;
            cap = nc;
        }
        sg_wggml_tensor *t = &g->tensors[g->n_tensors];
        memcpy(t->name, r->p + r->off, (size_t)nl);
        t->name[nl] = 0;
        r->off += (size_t)nl;
        char q[80];
        if (strlen(t->name) != (size_t)nl || !sg_utf8_valid((const unsigned char *)t->name, (size_t)nl))
            return sg_error_set(err, SG_EINVAL, "whisper ggml: tensor name at byte %zu is not "
                                "NUL-free UTF-8", at);
        if (tt != 0 && tt != 1)
            return sg_error_set(err, tt >= 2 && tt <= 15 ? SG_EUNSUPPORTED : SG_EINVAL,
                                "whisper ggml: tensor '%s' has type %d (%s); only F32 (0) and F16 "
                                "(1) whisper.cpp files are supported, not quantized ones",
                                sg_utf8_quote(q, 64, t->name, (size_t)nl, false), (int)tt,
                                ggml_type_name(tt));
        size_t count = 1;
        /* 2^40 elements at most (SIZE_MAX / 4 where size_t is 32-bit) */
        const size_t max_count =
            (size_t)(UINT64_C(1) << 40 < SIZE_MAX ? UINT64_C(1) << 40 : SIZE_MAX / 4);
        for (int i = 0; i < nd; i++) {
            if (count > max_count / (size_t)ne[i])
                return sg_error_set(err, SG_EINVAL, "whisper ggml: tensor '%s' is too large",
                                    sg_utf8_quote(q, 64, t->name, (size_t)nl, false));
            count *= (size_t)ne[i];
        }
        const size_t es = tt == 0 ? 4 : 2;
        if ((r->len - r->off) / es < count)
            return sg_error_set(err, SG_EINVAL, "whisper ggml: tensor '%s' is truncated (%zu of "
                                "%zu bytes)", sg_utf8_quote(q, 64, t->name, (size_t)nl, false),
                                r->len - r->off, count * es);
        t->ttype = tt;
        t->ndim = nd;
        for (int i = 0; i < nd; i++)
            t->shape[i] = ne[nd - 1 - i];
        t->data = r->p + r->off;
        t->nbytes = count * es;
        r->off += count * es;
        g->n_tensors++;
    }
    /* name index; a repeated name is an error */
    size_t ic = 16;
    while (ic < 2 * g->n_tensors)
        ic *= 2;
    g->index = calloc(ic, sizeof *g->index);
    if (!g->index)
        return sg_error_set(err, SG_ENOMEM, "whisper ggml: out of memory");
    g->index_cap = ic;
    for (size_t i = 0; i < g->n_tensors; i++) {
        size_t h = (size_t)hash_name(g->tensors[i].name) & (ic - 1);
        while (g->index[h]) {
            if (strcmp(g->tensors[g->index[h] - 1].name, g->tensors[i].name) == 0) {
                char q[80];
                return sg_error_set(err, SG_EINVAL, "whisper ggml: tensor '%s' appears twice",
                                    sg_utf8_quote(q, 64, g->tensors[i].name,
                                                  strlen(g->tensors[i].name), false));
            }
            h = (h + 1) & (ic - 1);
        }
        g->index[h] = i + 1;
    }
    return SG_OK;
}

sg_status sg_wggml_parse(const uint8_t *buf, size_t len, bool header_only, sg_wggml *g,
                         sg_error *err)
{
    memset(g, 0, sizeof *g);
    if (!buf && len)
        return sg_error_set(err, SG_EINVAL, "whisper ggml: no data");
    rd r = {buf, len, 0};
    sg_status st = parse_header(&r, g, err);
    if (st == SG_OK && !header_only)
        st = parse_tensors(&r, g, err);
    if (st != SG_OK) {
        sg_wggml_free(g);
        return st;
    }
    g->buf = buf;
    g->len = len;
    return SG_OK;
}

sg_status sg_wggml_open(const char *path, bool header_only, sg_wggml *g, sg_error *err)
{
    memset(g, 0, sizeof *g);
    sg_file_map file;
    sg_status st = sg_file_map_open(path, SIZE_MAX, &file, err);
    if (st != SG_OK)
        return st;
    st = sg_wggml_parse(file.data, file.len, header_only, g, err);
    if (st != SG_OK) {
        sg_file_map_close(&file);
        if (err) { /* prefix the path to the parser's message */
            char msg[sizeof err->msg], lb[SG_FILE_LABEL_SIZE];
            snprintf(msg, sizeof msg, "%s", err->msg);
            sg_error_set(err, st, "%s: %s", sg_file_label(lb, path), msg);
        }
        return st;
    }
    g->file = file;
    return SG_OK;
}

const sg_wggml_tensor *sg_wggml_find(const sg_wggml *g, const char *name)
{
    if (!g->index_cap)
        return NULL;
    size_t h = (size_t)hash_name(name) & (g->index_cap - 1);
    while (g->index[h]) {
        const sg_wggml_tensor *t = &g->tensors[g->index[h] - 1];
        if (strcmp(t->name, name) == 0)
            return t;
        h = (h + 1) & (g->index_cap - 1);
    }
    return NULL;
}

void sg_wggml_release(const sg_wggml *g, const sg_wggml_tensor *t)
{
    if (t)
        sg_file_map_release(&g->file, t->data, t->nbytes);
}

const char *sg_wggml_token(const sg_wggml *g, int32_t id, size_t *len)
{
    if (id < 0 || id >= g->n_tokens)
        return NULL;
    *len = g->tok_len[id];
    return g->tok_bytes + g->tok_off[id];
}

bool sg_wggml_is_ggml(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    uint8_t b[4];
    bool yes = fread(b, 1, 4, f) == 4 &&
               ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24) ==
                   SG_WGGML_MAGIC;
    fclose(f);
    return yes;
}
