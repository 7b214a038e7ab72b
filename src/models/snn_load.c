/* Loading the SNN student: metadata.json, the weights (student.pt through nn/ptfile, or
 * model.safetensors in f32/f16/bf16 or the int8 format), the tokenizer, and the model's layers
 * built from them. Reading goes through snn_loader, whose first-error state and byte count are
 * nn/weights' (sg_weights); shapes are checked against what metadata.json implies and printed
 * with nn/shape. */
#include "models/snn_model.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/shape.h"

/* ================================================================================================
 * metadata.json
 * ============================================================================================= */

/* A positive integer at obj[key], or def when absent; -1 when present but not one. */
static int meta_int(json_t *obj, const char *key, int def)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return def;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > SNN_MAX_VOCAB)
        return -1;
    return (int)json_integer_value(v);
}

/* The training script's metadata.json: architecture{dim,depth,num_heads}, vocab_size,
 * snn_config{spike_threshold}. An older script wrote none of these (its student always had the
 * constructor's defaults 128/2/4 and threshold 1.0), so each may be absent; present, each must be
 * valid. */
static sg_status read_meta(const char *dir, snn_meta *md, sg_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/metadata.json", dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        struct stat sb;
        if (stat(path, &sb) != 0)
            return sg_error_set(err, SG_EIO, "%s: %s (the training script writes it beside student.pt)",
                                path, strerror(errno));
        return sg_error_set(err, SG_EINVAL, "%s: line %d: %s", path, je.line, je.text);
    }
    sg_status st = SG_OK;
    json_t *arch = json_object_get(root, "architecture");
    json_t *snn = json_object_get(root, "snn_config");
    if (!json_is_object(root) || (arch && !json_is_object(arch)) || (snn && !json_is_object(snn))) {
        st = sg_error_set(err, SG_EINVAL, "%s: \"architecture\" and \"snn_config\" must be objects", path);
        goto done;
    }
    md->dim = meta_int(arch, "dim", 128);
    md->depth = meta_int(arch, "depth", 2);
    md->heads = meta_int(arch, "num_heads", 4);
    md->vocab = meta_int(root, "vocab_size", 0);
    const char *bad = md->dim < 0 ? "architecture.dim" : md->depth < 0 ? "architecture.depth"
                    : md->heads < 0 ? "architecture.num_heads" : md->vocab < 0 ? "vocab_size" : NULL;
    if (bad) {
        st = sg_error_set(err, SG_EINVAL, "%s: %s must be a positive integer", path, bad);
        goto done;
    }
    if (md->dim > SNN_MAX_DIM || md->depth > SNN_MAX_DEPTH || md->dim % md->heads) {
        st = sg_error_set(err, SG_EINVAL, "%s: architecture dim %d, depth %d, num_heads %d is not a "
                          "valid student (dim <= %d divisible by num_heads, depth <= %d)", path,
                          md->dim, md->depth, md->heads, SNN_MAX_DIM, SNN_MAX_DEPTH);
        goto done;
    }
    json_t *thr = json_object_get(snn, "spike_threshold");
    md->threshold = 1.0f;
    if (thr) {
        if (!json_is_number(thr) || !isfinite(json_number_value(thr)) ||
            fabs(json_number_value(thr)) > 1e30) {
            st = sg_error_set(err, SG_EINVAL, "%s: snn_config.spike_threshold must be a finite number", path);
            goto done;
        }
        /* PyTorch compares a float32 tensor with the Python float as float32 */
        md->threshold = (float)json_number_value(thr);
    }
done:
    json_decref(root);
    return st;
}

/* ================================================================================================
 * Tensors of the weight file
 * ============================================================================================= */

bool snn_find(const snn_loader *l, const char *name, snn_tensor *t)
{
    memset(t, 0, sizeof *t);
    if (l->w.f) {
        const sg_st_tensor *s = sg_st_find(l->w.f, name);
        if (!s)
            return false;
        t->dtype = s->dtype;
        t->ndim = s->ndim;
        memcpy(t->shape, s->shape, sizeof t->shape);
        t->data = s->data;
        return true;
    }
    const sg_pt_tensor *p = sg_pt_find(l->pt, name);
    if (!p)
        return false;
    t->dtype = p->dtype;
    t->ndim = p->ndim;
    memcpy(t->shape, p->shape, sizeof t->shape);
    /* row-major contiguous (dims of size 1 may have any stride)? */
    int64_t expect = 1;
    bool contiguous = true;
    for (int i = p->ndim - 1; i >= 0; i--) {
        if (p->shape[i] != 1 && p->stride[i] != expect)
            contiguous = false;
        expect *= p->shape[i];
    }
    t->data = contiguous ? (const char *)p->storage + (size_t)p->offset * sg_dtype_size(p->dtype) : NULL;
    return true;
}

bool snn_want(snn_loader *l, const char *name, int64_t d0, int64_t d1, snn_tensor *t)
{
    if (l->w.st != SG_OK)
        return false;
    if (!snn_find(l, name, t)) {
        l->w.st = sg_error_set(l->w.err, SG_EINVAL, "%s: tensor '%s' not found (metadata.json: depth %d)",
                               l->file, name, l->md.depth);
        return false;
    }
    const int ndim = d1 ? 2 : 1;
    const int64_t shape[2] = {d0, d1};
    if (!sg_shape_matches(t->ndim, t->shape, ndim, shape)) {
        char got[128], exp[128];
        l->w.st = sg_error_set(l->w.err, SG_EINVAL, "%s: tensor '%s' has shape %s, expected %s from "
                               "metadata.json (vocab_size %d, dim %d, num_heads %d)", l->file, name,
                               sg_shape_str(got, sizeof got, t->ndim, t->shape),
                               sg_shape_str(exp, sizeof exp, ndim, shape), l->md.vocab, l->md.dim,
                               l->md.heads);
        return false;
    }
    return true;
}

float *snn_get_scales(snn_loader *l, const char *name, int64_t rows)
{
    char sname[256];
    snprintf(sname, sizeof sname, "%s_scale", name);
    snn_tensor t;
    if (!snn_want(l, sname, rows, 0, &t))
        return NULL;
    if (t.dtype != SG_DT_F32) {
        l->w.st = sg_error_set(l->w.err, SG_EINVAL, "%s: tensor '%s' must be F32", l->file, sname);
        return NULL;
    }
    float *s = malloc((size_t)rows * sizeof(float));
    if (!s) {
        l->w.st = sg_error_set(l->w.err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(s, t.data, (size_t)rows * sizeof(float));
    for (int64_t i = 0; i < rows; i++)
        if (!(s[i] >= 0.0f && s[i] <= FLT_MAX)) {
            l->w.st = sg_error_set(l->w.err, SG_EINVAL, "%s: tensor '%s' holds a negative or "
                                   "non-finite scale", l->file, sname);
            free(s);
            return NULL;
        }
    return s;
}

float *snn_get_f32(snn_loader *l, const char *name, int64_t d0, int64_t d1)
{
    snn_tensor t;
    if (!snn_want(l, name, d0, d1, &t))
        return NULL;
    const int ndim = d1 ? 2 : 1;
    const size_t count = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    if (t.dtype == SG_DT_I8 && l->q8file && ndim == 2) {
        float *s = snn_get_scales(l, name, d0);
        float *w = s ? malloc(count * sizeof(float)) : NULL;
        if (s && !w)
            l->w.st = sg_error_set(l->w.err, SG_ENOMEM, "out of memory");
        for (size_t i = 0; w && i < count; i++)
            w[i] = (float)((const int8_t *)t.data)[i] * s[i / (size_t)d1];
        free(s);
        if (w)
            l->w.bytes += count * sizeof(float);
        return w;
    }
    if (t.dtype != SG_DT_F32 && t.dtype != SG_DT_F16 && t.dtype != SG_DT_BF16) {
        l->w.st = sg_error_set(l->w.err, SG_EUNSUPPORTED, "%s: tensor '%s' is %s; the student's "
                               "weights must be F32, F16 or BF16%s", l->file, name,
                               sg_dtype_name(t.dtype), l->q8file ? " (or I8 matrices with scales)" : "");
        return NULL;
    }
    const int64_t shape[2] = {d0, d1};
    if (l->w.f)
        return sg_weights_get(&l->w, name, ndim, shape);
    float *w = sg_pt_get_f32(l->pt, name, ndim, shape, l->w.err);
    if (!w)
        l->w.st = l->w.err && l->w.err->code ? l->w.err->code : SG_ENOMEM;
    else
        l->w.bytes += count * sizeof(float);
    return w;
}

void snn_drop_f32(snn_loader *l, float *p, size_t count)
{
    if (!p)
        return;
    free(p);
    l->w.bytes -= count * sizeof(float);
}

const float *snn_f32_view(snn_loader *l, const char *name, int n, int k, float **owned)
{
    *owned = NULL;
    snn_tensor t;
    if (!snn_want(l, name, n, k, &t))
        return NULL;
    if (t.dtype == SG_DT_F32 && t.data)
        return t.data;
    *owned = snn_get_f32(l, name, n, k);
    return *owned;
}

/* ================================================================================================
 * Layers
 * ============================================================================================= */

/* A weight matrix [n, k] and its bias [n] as the layer builders take them: int8 rows and scales
 * (Q8) or f32 rows, and the f32 bias. */
typedef struct snn_matrix {
    int n, k;
    int8_t *q;
    float *scale, *w, *bias;
} snn_matrix;

static bool get_matrix(snn_loader *l, snn_matrix *M, const char *wname, const char *bname, int n,
                       int k, sg_precision prec)
{
    memset(M, 0, sizeof *M);
    M->n = n;
    M->k = k;
    if (prec == SG_PREC_Q8)
        snn_get_q8(l, wname, n, k, &M->q, &M->scale);
    else
        M->w = snn_get_f32(l, wname, n, k);
    if (l->w.st == SG_OK)
        M->bias = snn_get_f32(l, bname, n, 0);
    return l->w.st == SG_OK;
}

/* Frees what a layer built from M did not take over (it keeps the bias when keep_bias). */
static void drop_matrix(snn_loader *l, snn_matrix *M, bool keep_bias)
{
    free(M->q);
    free(M->scale);
    snn_drop_f32(l, M->w, (size_t)M->n * M->k);
    if (!keep_bias)
        snn_drop_f32(l, M->bias, (size_t)M->n);
}

/* Rows [r0, r0 + n) of an [N, k] weight matrix (and bias) as a linear layer; with bias_out the
 * bias (all of it: r0 0, n N) is handed back instead of going into the layer. */
static void make_linear(snn_loader *l, sg_linear *L, const char *wname, const char *bname, int N,
                        int k, int r0, int n, sg_precision prec, float **bias_out)
{
    snn_matrix M;
    if (get_matrix(l, &M, wname, bname, N, k, prec)) {
        const float *bias = bias_out ? NULL : M.bias + r0;
        l->w.st = prec == SG_PREC_Q8
                      ? sg_linear_init_q8(L, M.q + (size_t)r0 * k, M.scale + r0, bias, n, k, l->w.err)
                      : sg_linear_init(L, M.w + (size_t)r0 * k, bias, n, k, SG_PREC_F32, l->w.err);
    }
    const bool keep_bias = bias_out && l->w.st == SG_OK && r0 == 0 && n == N;
    if (l->w.st == SG_OK)
        l->w.bytes += L->bytes;
    if (keep_bias)
        *bias_out = M.bias;
    drop_matrix(l, &M, keep_bias);
}

static void make_spike(snn_loader *l, sg_spike_linear *L, const char *wname, const char *bname,
                       int n, int k, sg_precision prec)
{
    snn_matrix M;
    if (get_matrix(l, &M, wname, bname, n, k, prec))
        l->w.st = prec == SG_PREC_Q8
                      ? sg_spike_linear_init_q8(L, M.q, M.scale, M.bias, n, k, l->w.err)
                      : sg_spike_linear_init(L, M.w, M.bias, n, k, SG_PREC_F32, l->w.err);
    drop_matrix(l, &M, false);
    if (l->w.st == SG_OK)
        l->w.bytes += (size_t)n * k * (prec == SG_PREC_Q8 ? 1 : 4) + (size_t)n * 8;
}

static void load_block(snn_loader *l, sg_snn *m, int i)
{
    snn_block *B = &m->blk[i];
    const int d = m->info.dim, h = m->info.hidden;
    const sg_precision prec = m->info.precision;
    char w[128], b[128];
#define NAME(buf, suffix) (snprintf(buf, sizeof buf, "blocks.%d.%s", i, suffix), buf)
    NAME(w, "attn.attn.in_proj_weight");
    NAME(b, "attn.attn.in_proj_bias");
    if (i == m->info.depth - 1 && i > 0) {
        make_linear(l, &B->q, w, b, 3 * d, d, 0, d, prec, NULL);
        make_linear(l, &B->kv, w, b, 3 * d, d, d, 2 * d, prec, NULL);
    } else {
        make_linear(l, &B->qkv, w, b, 3 * d, d, 0, 3 * d, prec, NULL);
    }
    /* block 0 applies out_proj to each key's values once and adds the bias after the softmax sums
     * (snn.c: first_attention), so its layer has no bias */
    make_linear(l, &B->out, NAME(w, "attn.attn.out_proj.weight"), NAME(b, "attn.attn.out_proj.bias"),
                d, d, 0, d, prec, i == 0 ? &B->out_bias : NULL);
    B->attn_norm_g = snn_get_f32(l, NAME(w, "attn.norm.weight"), d, 0);
    B->attn_norm_b = snn_get_f32(l, NAME(w, "attn.norm.bias"), d, 0);
    make_spike(l, &B->ff0, NAME(w, "ff.0.weight"), NAME(b, "ff.0.bias"), h, d, prec);
    make_spike(l, &B->ff3, NAME(w, "ff.3.weight"), NAME(b, "ff.3.bias"), d, h, prec);
    B->norm_g = snn_get_f32(l, NAME(w, "norm.weight"), d, 0);
    B->norm_b = snn_get_f32(l, NAME(w, "norm.bias"), d, 0);
#undef NAME
}

/* The embedding stays in the file: rows are converted when a token is looked up. */
static void load_embedding(snn_loader *l, sg_snn *m)
{
    const int V = m->info.vocab, d = m->info.dim;
    snn_embedding *E = &m->emb;
    snn_tensor t;
    if (!snn_want(l, "embed.weight", V, d, &t))
        return;
    if (t.dtype == SG_DT_I8 && l->q8file) {
        float *s = snn_get_scales(l, "embed.weight", V);
        E->scale = s;
        E->owned = s; /* freed with the model; the rows stay mapped */
        E->rows = t.data;
        E->dtype = SG_DT_I8;
        l->w.bytes += (size_t)V * sizeof(float);
        return;
    }
    if (t.dtype != SG_DT_F32 && t.dtype != SG_DT_F16 && t.dtype != SG_DT_BF16) {
        l->w.st = sg_error_set(l->w.err, SG_EUNSUPPORTED, "%s: tensor 'embed.weight' is %s (F32, "
                               "F16 or BF16)", l->file, sg_dtype_name(t.dtype));
        return;
    }
    if (t.data) {
        E->rows = t.data;
        E->dtype = t.dtype;
        return;
    }
    float *w = snn_get_f32(l, "embed.weight", V, d); /* a strided view: gather it once */
    E->rows = E->owned = w;
    E->dtype = SG_DT_F32;
}

/* The head: Q8 always; in f32 also the f32 rows and, per row, the two error bounds screening uses:
 * |w.x - ws xs (q.qx)| <= ws sum_j |q_j| |x_j - xs qx_j| + sum_j |w_j - ws q_j| |x_j|
 *                      <= qabs * max_j |ex_j|           + werr * sum_j |x_j|. */
static void load_head(snn_loader *l, sg_snn *m)
{
    const int V = m->info.vocab, d = m->info.dim;
    snn_head *H = &m->head;
    H->bias = snn_get_f32(l, "head.bias", V, 0);
    if (!H->bias)
        return;
    int8_t *q = NULL;
    float *s = NULL;
    if (m->info.precision == SG_PREC_Q8) {
        if (snn_get_q8(l, "head.weight", V, d, &q, &s) == SG_OK)
            l->w.st = sg_linear_init_q8(&H->q8, q, s, H->bias, V, d, l->w.err);
    } else {
        float *owned = NULL;
        const float *w = snn_f32_view(l, "head.weight", V, d, &owned);
        q = w ? malloc((size_t)V * d) : NULL;
        s = w ? malloc((size_t)V * sizeof(float)) : NULL;
        H->qabs = w ? malloc((size_t)V * sizeof(float)) : NULL;
        H->werr = w ? malloc((size_t)V * sizeof(float)) : NULL;
        if (w && (!q || !s || !H->qabs || !H->werr))
            l->w.st = sg_error_set(l->w.err, SG_ENOMEM, "out of memory");
        if (l->w.st == SG_OK) {
            snn_quantize_rows(l->pool, w, V, d, q, s, H->qabs, H->werr);
            l->w.st = sg_linear_init_q8(&H->q8, q, s, H->bias, V, d, l->w.err);
        }
        H->w = w;
        H->w_owned = owned; /* NULL when the rows are read from the mapping */
        for (int n = 0; l->w.st == SG_OK && n < V; n++) {
            H->qabs_max = fmaxf(H->qabs_max, H->qabs[n]);
            H->werr_max = fmaxf(H->werr_max, H->werr[n]);
            H->bias_max = fmaxf(H->bias_max, fabsf(H->bias[n]));
        }
        l->w.bytes += (size_t)V * 2 * sizeof(float);
    }
    if (l->w.st == SG_OK)
        l->w.bytes += H->q8.bytes;
    free(q);
    free(s);
}

/* ================================================================================================
 * Files of the model directory
 * ============================================================================================= */

static bool file_exists(const char *dir, const char *name)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

bool snn_is_tokenizer_file(const char *name)
{
    return !strcmp(name, "vocab.json") || !strcmp(name, "merges.txt") || ends_with(name, ".tiktoken");
}

static bool has_tiktoken(const char *dir)
{
    DIR *dp = opendir(dir);
    bool found = false;
    for (struct dirent *e; dp && !found && (e = readdir(dp));)
        found = ends_with(e->d_name, ".tiktoken") && file_exists(dir, e->d_name);
    if (dp)
        closedir(dp);
    return found;
}

static sg_bpe *load_tokenizer(const char *dir, const char *path, sg_error *err, bool *none)
{
    *none = false;
    if (!path) {
        if ((file_exists(dir, "vocab.json") && file_exists(dir, "merges.txt")) || has_tiktoken(dir))
            return sg_bpe_load_dir(dir, err);
        *none = true;
        return NULL;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        sg_error_set(err, SG_EIO, "tokenizer %s: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(sb.st_mode))
        return sg_bpe_load_dir(path, err);
    if (ends_with(path, ".json")) { /* vocab.json with merges.txt beside it */
        char merges[4096];
        const size_t len = strlen(path);
        if (len >= sizeof merges) { /* (a copy, not snprintf: 32-bit gcc warns it may truncate) */
            sg_error_set(err, SG_EINVAL, "tokenizer %s: path too long", path);
            return NULL;
        }
        memcpy(merges, path, len + 1);
        char *slash = strrchr(merges, '/');
        snprintf(slash ? slash + 1 : merges, sizeof merges - (size_t)(slash ? slash + 1 - merges : 0),
                 "merges.txt");
        return sg_bpe_load_hf(path, merges, err);
    }
    return sg_bpe_load_tiktoken(path, err);
}

/* Opens dir's weights: student.pt, else model.safetensors. */
static sg_status open_weights(snn_loader *l)
{
    if (file_exists(l->dir, "student.pt")) {
        snprintf(l->file, sizeof l->file, "%s/student.pt", l->dir);
        snprintf(l->weights_name, sizeof l->weights_name, "student.pt");
        l->pt = sg_pt_open(l->file, l->w.err);
        return l->pt ? SG_OK : (l->w.err && l->w.err->code ? l->w.err->code : SG_EIO);
    }
    if (file_exists(l->dir, "model.safetensors")) {
        snprintf(l->file, sizeof l->file, "%s/model.safetensors", l->dir);
        snprintf(l->weights_name, sizeof l->weights_name, "model.safetensors");
        l->w.f = sg_st_open(l->file, l->w.err);
        if (!l->w.f)
            return l->w.err && l->w.err->code ? l->w.err->code : SG_EIO;
        const char *fmt = sg_st_metadata(l->w.f, "format");
        const sg_st_tensor *e = sg_st_find(l->w.f, "embed.weight");
        l->q8file = (fmt && strcmp(fmt, SNN_INT8_FORMAT) == 0) || (e && e->dtype == SG_DT_I8);
        return SG_OK;
    }
    struct stat sb;
    if (stat(l->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return sg_error_set(l->w.err, SG_EIO, "model directory %s: %s", l->dir,
                            stat(l->dir, &sb) != 0 ? strerror(errno) : "not a directory");
    return sg_error_set(l->w.err, SG_EIO, "%s holds neither student.pt nor model.safetensors", l->dir);
}

sg_status snn_loader_open(snn_loader *l, const char *dir, sg_pool *pool, sg_error *err)
{
    memset(l, 0, sizeof *l);
    l->dir = dir;
    l->pool = pool;
    l->w.err = err;
    l->w.st = read_meta(dir, &l->md, err);
    if (l->w.st == SG_OK)
        l->w.st = open_weights(l);
    /* vocab_size absent (older metadata): the embedding's rows, which the head must match */
    snn_tensor t;
    if (l->w.st == SG_OK && !l->md.vocab && snn_find(l, "embed.weight", &t) && t.ndim == 2 &&
        t.shape[0] > 0 && t.shape[0] <= SNN_MAX_VOCAB)
        l->md.vocab = (int)t.shape[0];
    if (l->w.st == SG_OK && !l->md.vocab)
        l->w.st = sg_error_set(err, SG_EINVAL, "%s: tensor 'embed.weight' not found or not a matrix",
                               l->file);
    return l->w.st;
}

void snn_loader_close(snn_loader *l)
{
    sg_st_close(l->w.f);
    sg_pt_close(l->pt);
    l->w.f = NULL;
    l->pt = NULL;
}

/* ================================================================================================
 * The model
 * ============================================================================================= */

void sg_snn_free(sg_snn *m)
{
    if (!m)
        return;
    for (int i = 0; m->blk && i < m->info.depth; i++) {
        snn_block *B = &m->blk[i];
        sg_linear_free(&B->qkv);
        sg_linear_free(&B->q);
        sg_linear_free(&B->kv);
        sg_linear_free(&B->out);
        sg_spike_linear_free(&B->ff0);
        sg_spike_linear_free(&B->ff3);
        float *vectors[] = {B->out_bias, B->attn_norm_g, B->attn_norm_b, B->norm_g, B->norm_b};
        for (size_t v = 0; v < sizeof vectors / sizeof *vectors; v++)
            free(vectors[v]);
    }
    free(m->blk);
    free(m->emb.owned);
    sg_linear_free(&m->head.q8);
    float *head[] = {m->head.w_owned, m->head.bias, m->head.qabs, m->head.werr};
    for (size_t v = 0; v < sizeof head / sizeof *head; v++)
        free(head[v]);
    sg_bpe_free(m->tok);
    sg_st_close(m->st);
    sg_pt_close(m->pt);
    sg_arena_free(&m->arena);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Tells the kernel the mapped weight file will not be read again except for the embedding and
 * head rows a step looks up, which fault back in from the file: the resident size is then the
 * converted weights and the rows in use, not the whole file (validation and conversion at load
 * touched all of it). Only whole pages inside each tensor's bytes, as sg_st_release does. */
static void release_mapping(const sg_snn *m)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const size_t n = m->st ? sg_st_count(m->st) : m->pt ? sg_pt_count(m->pt) : 0;
    for (size_t i = 0; i < n; i++) {
        const void *p;
        size_t bytes;
        if (m->st) {
            const sg_st_tensor *t = sg_st_at(m->st, i);
            p = t->data;
            bytes = t->nbytes;
        } else {
            const sg_pt_tensor *t = sg_pt_at(m->pt, i);
            p = t->storage;
            bytes = t->storage_bytes;
        }
        const uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1);
        const uintptr_t b = ((uintptr_t)p + bytes) & ~(page - 1);
        if (b > a)
            madvise((void *)a, b - a, MADV_DONTNEED);
    }
}

/* The tokenizer named in opt or the directory's own (none is not an error): its vocabulary must
 * be the model's, and it names the end-of-text id. */
static sg_status attach_tokenizer(sg_snn *m, const char *dir, const char *path, sg_error *err)
{
    bool none;
    m->tok = load_tokenizer(dir, path, err, &none);
    if (!m->tok)
        return none ? SG_OK : err && err->code ? err->code : SG_EINVAL;
    if (sg_bpe_vocab_size(m->tok) != m->info.vocab)
        return sg_error_set(err, SG_EINVAL, "the tokenizer has %d tokens but the model's vocabulary "
                            "is %d (metadata.json vocab_size)", sg_bpe_vocab_size(m->tok), m->info.vocab);
    m->info.has_tokenizer = true;
    if (sg_bpe_eot(m->tok) >= 0 && sg_bpe_eot(m->tok) < m->info.vocab)
        m->info.eos = sg_bpe_eot(m->tok);
    return SG_OK;
}

sg_snn *sg_snn_load(const char *dir, const sg_snn_options *opt, sg_pool *pool, sg_error *err)
{
    sg_snn *m = calloc(1, sizeof *m);
    if (!m) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->pool = pool;
    m->shift_limit = SNN_SHIFT_LIMIT;
    const sg_precision prec = opt ? opt->precision : SG_PREC_Q8;
    snn_loader l = {.w = {.err = err}};
    struct stat sb;
    if (prec != SG_PREC_F32 && prec != SG_PREC_Q8)
        l.w.st = sg_error_set(err, SG_EINVAL, "unknown precision %d", (int)prec);
    else if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        l.w.st = sg_error_set(err, SG_EIO, "model directory %s: %s", dir,
                              stat(dir, &sb) != 0 ? strerror(errno) : "not a directory");
    else
        snn_loader_open(&l, dir, pool, err);
    /* a checkpoint deeper than metadata.json says is not the model metadata describes */
    char name[64];
    snprintf(name, sizeof name, "blocks.%d.attn.attn.in_proj_weight", l.md.depth);
    snn_tensor t;
    if (l.w.st == SG_OK && snn_find(&l, name, &t))
        l.w.st = sg_error_set(err, SG_EINVAL, "%s: has tensor '%s' but metadata.json says depth %d",
                              l.file, name, l.md.depth);
    sg_snn_info *in = &m->info;
    in->vocab = l.md.vocab;
    in->dim = l.md.dim;
    in->depth = l.md.depth;
    in->heads = l.md.heads;
    in->hidden = 2 * l.md.dim; /* mlp_ratio 2.0 */
    in->spike_threshold = l.md.threshold;
    in->precision = prec;
    in->prequantized = l.q8file;
    snprintf(m->weights_name, sizeof m->weights_name, "%s", l.weights_name);
    in->weights = m->weights_name;
    in->eos = SG_SNN_EOS;
    if (l.w.st == SG_OK) {
        m->blk = calloc((size_t)in->depth, sizeof *m->blk);
        if (!m->blk)
            l.w.st = sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    load_embedding(&l, m);
    for (int i = 0; i < in->depth && l.w.st == SG_OK; i++)
        load_block(&l, m, i);
    load_head(&l, m);
    if (l.w.st == SG_OK)
        l.w.st = attach_tokenizer(m, dir, opt ? opt->tokenizer : NULL, err);
    if (l.w.st == SG_OK && sg_arena_init(&m->arena, snn_call_bytes(m, 256)) != 0)
        l.w.st = sg_error_set(err, SG_ENOMEM, "out of memory for scratch");
    /* the model keeps the file mapped: the embedding and head rows are read from it */
    m->st = l.w.f;
    m->pt = l.pt;
    l.w.f = NULL;
    l.pt = NULL;
    in->weight_bytes = l.w.bytes;
    if (l.w.st != SG_OK) {
        sg_snn_free(m);
        return NULL;
    }
    release_mapping(m);
    return m;
}

const sg_snn_info *sg_snn_get_info(const sg_snn *m) { return &m->info; }
