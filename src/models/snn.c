/* The SNN student: metadata and weight loading (student.pt, model.safetensors, the int8 file),
 * the forward pass (forward_step() and the three block functions above it), greedy generation,
 * text in and out, and `sg quantize`.
 *
 * Attention has no mask, so every position of every block depends on every token and the
 * reference re-runs the whole sequence for each new token. This decoder gives the same numbers
 * (up to float summation order) without redoing what cannot have changed:
 *  - Block 0 reads the embedding, which has no position term: a position's q, k, v and the
 *    out_proj of each head's slice of its v are computed once. out_proj distributes over the
 *    attention's weighted sum, and with the softmax shifted by a constant per row (the row's
 *    score with its own key) each row's numerator and denominator only gain a term per new key,
 *    so a step costs O(L d) there instead of O(L^2 d + L d^2).
 *  - A block's output row depends on its attention only through the row's first spikes
 *    (spike(attn.norm(x + attn)), exact 0/1). When they are the same as at the previous step the
 *    row's output, and the next block's k/v of that row, are reused bit for bit.
 *  - The last block is needed at the last position only: k/v of the rows whose input changed,
 *    then one query, one attention row, one feed-forward, and the head.
 *  - The feed-forward reads spikes: ff.0 and ff.3 are sums of the weight columns of the inputs
 *    that fired (sg_spike_linear); the residual adds 1 where a spike fired.
 *  - Greedy decoding needs the head's argmax, not its logits. In f32 the head's int8 copy screens
 *    the vocabulary with a rigorous bound on its error and only rows that could be the maximum
 *    are computed from the f32 weights (in double): ~6 MB read per token instead of ~26 MB, and
 *    still the exact argmax.
 * No malloc in the token loop: a call's buffers come from the model's arena, sized once per call
 * from the context length. */
#include "models/snn.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "models/gpt2_tokenizer.h"
#include "nn/arena.h"
#include "nn/ops.h"
#include "nn/ptfile.h"
#include "nn/safetensors.h"
#include "nn/spike.h"
#include "nn/vec.h"


#define LN_EPS 1e-5f
#define MAX_DIM 8192
#define MAX_DEPTH 64
#define MAX_VOCAB (1 << 22)
#define INT8_FORMAT "sg-snn-int8"
/* A key this far above a row's own score would overflow exp() without the row's maximum: such a
 * row is recomputed with it at every step (block_first). */
#define WIDE_SCORE 60.0f

typedef struct snn_block {
    /* attn.attn.in_proj: all of q, k, v for blocks before the last; the last block (when it is not
     * the first) gets q (one row per step) and k|v (every row) as two layers */
    sg_linear qkv, q, kv;
    sg_linear out;            /* attn.attn.out_proj (block 0: without its bias, which is out_b) */
    float *out_b;
    float *ln1_g, *ln1_b;     /* attn.norm */
    sg_spike_linear ff0, ff3; /* ff.0 [hidden, dim], ff.3 [dim, hidden]: inputs are spikes */
    float *ln2_g, *ln2_b;     /* norm */
} snn_block;

struct sg_snn {
    sg_snn_info info;
    char weights_name[32];
    snn_block *blk;
    /* embedding rows, read on demand (mapped file or an owned copy): F32/F16/BF16, or I8 with
     * per-row scales (int8 file) */
    const void *emb;
    sg_dtype emb_dtype;
    const float *emb_scale;
    void *emb_owned;
    /* head: Q8 for every precision (in f32 it screens the vocabulary), f32 rows for f32 */
    sg_linear head;
    const float *head_w;  /* [vocab][dim] row-major f32 (mapped or owned) */
    float *head_w_owned;
    float *head_b;        /* [vocab] */
    float *head_a;        /* [vocab] scale * sum |q| of the row: bound on the activation error */
    float *head_e;        /* [vocab] max |w - scale q| of the row: bound on the weight error */
    float head_amax, head_emax, head_bmax; /* their maxima, and max |head_b| */
    long head_rows;       /* rows the f32 screening kept (statistics) */
    sg_bpe *tok;
    sg_st_file *st;
    sg_pt_file *pt;
    sg_pool *pool;
    pthread_mutex_t lock;
    sg_arena arena;
    double firing; /* spike rate of the last generation */
    float wide_score; /* WIDE_SCORE; tests lower it */
};

/* ================================================================================================
 * metadata.json
 * ============================================================================================= */

typedef struct snn_meta {
    int vocab, dim, depth, heads; /* vocab 0: take it from embed.weight */
    float threshold;
} snn_meta;

/* A positive integer at obj[key], or def when absent; -1 when present but not one. */
static int meta_int(json_t *obj, const char *key, int def)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return def;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_VOCAB)
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
    if (md->dim > MAX_DIM || md->depth > MAX_DEPTH || md->dim % md->heads) {
        st = sg_error_set(err, SG_EINVAL, "%s: architecture dim %d, depth %d, num_heads %d is not a "
                          "valid student (dim <= %d divisible by num_heads, depth <= %d)", path,
                          md->dim, md->depth, md->heads, MAX_DIM, MAX_DEPTH);
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
 * Weight files: student.pt (ptfile) or model.safetensors, f32/f16/bf16 or the int8 format
 * ============================================================================================= */

typedef struct wview {
    sg_dtype dtype;
    int ndim;
    int64_t shape[SG_ST_MAX_DIMS];
    const void *data; /* first element; NULL when not contiguous row-major */
} wview;

typedef struct loader {
    sg_snn *m;
    snn_meta md;
    const char *dir;
    char file[4200];    /* path, for messages */
    bool q8file;        /* int8 format */
    sg_precision prec;
    sg_error *err;
    sg_status st;
} loader;

static bool find_tensor(const loader *l, const char *name, wview *v)
{
    memset(v, 0, sizeof *v);
    if (l->m->st) {
        const sg_st_tensor *t = sg_st_find(l->m->st, name);
        if (!t)
            return false;
        v->dtype = t->dtype;
        v->ndim = t->ndim;
        memcpy(v->shape, t->shape, sizeof v->shape);
        v->data = t->data;
        return true;
    }
    const sg_pt_tensor *t = sg_pt_find(l->m->pt, name);
    if (!t)
        return false;
    v->dtype = t->dtype;
    v->ndim = t->ndim;
    memcpy(v->shape, t->shape, sizeof v->shape);
    /* row-major contiguous (dims of size 1 may have any stride)? */
    int64_t expect = 1;
    bool contiguous = true;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expect)
            contiguous = false;
        expect *= t->shape[i];
    }
    v->data = contiguous ? (const char *)t->storage + (size_t)t->offset * sg_dtype_size(t->dtype) : NULL;
    return true;
}

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

/* Finds name and checks its shape against what metadata.json implies. */
static bool want(loader *l, const char *name, int ndim, int64_t d0, int64_t d1, wview *v)
{
    if (l->st != SG_OK)
        return false;
    if (!find_tensor(l, name, v)) {
        l->st = sg_error_set(l->err, SG_EINVAL, "%s: tensor '%s' not found (metadata.json: depth %d)",
                             l->file, name, l->md.depth);
        return false;
    }
    int64_t shape[2] = {d0, d1};
    bool ok = v->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = v->shape[i] == shape[i];
    if (!ok) {
        char got[128], exp[128];
        shape_str(got, sizeof got, v->ndim, v->shape);
        shape_str(exp, sizeof exp, ndim, shape);
        l->st = sg_error_set(l->err, SG_EINVAL, "%s: tensor '%s' has shape %s, expected %s from "
                             "metadata.json (vocab_size %d, dim %d, num_heads %d)", l->file, name,
                             got, exp, l->md.vocab, l->md.dim, l->md.heads);
        return false;
    }
    return true;
}

/* The per-row scales of an int8 tensor: F32 [rows], finite and >= 0. */
static float *get_scales(loader *l, const char *name, int64_t rows)
{
    char sname[256];
    snprintf(sname, sizeof sname, "%s_scale", name);
    wview v;
    if (!want(l, sname, 1, rows, 0, &v))
        return NULL;
    if (v.dtype != SG_DT_F32) {
        l->st = sg_error_set(l->err, SG_EINVAL, "%s: tensor '%s' must be F32", l->file, sname);
        return NULL;
    }
    float *s = malloc((size_t)rows * sizeof(float));
    if (!s) {
        l->st = sg_error_set(l->err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(s, v.data, (size_t)rows * sizeof(float));
    for (int64_t i = 0; i < rows; i++)
        if (!(s[i] >= 0.0f && s[i] <= FLT_MAX)) {
            l->st = sg_error_set(l->err, SG_EINVAL, "%s: tensor '%s' holds a negative or non-finite "
                                 "scale", l->file, sname);
            free(s);
            return NULL;
        }
    return s;
}

/* A tensor as f32 (malloc'ed), dequantised when the file is int8. d1 0 means a vector. */
static float *get_f32(loader *l, const char *name, int64_t d0, int64_t d1)
{
    const int ndim = d1 ? 2 : 1;
    wview v;
    if (!want(l, name, ndim, d0, d1, &v))
        return NULL;
    const size_t count = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    if (v.dtype == SG_DT_I8 && l->q8file && ndim == 2) {
        float *s = get_scales(l, name, d0);
        float *w = s ? malloc(count * sizeof(float)) : NULL;
        if (s && !w)
            l->st = sg_error_set(l->err, SG_ENOMEM, "out of memory");
        for (size_t i = 0; w && i < count; i++)
            w[i] = (float)((const int8_t *)v.data)[i] * s[i / (size_t)d1];
        free(s);
        return w;
    }
    if (v.dtype != SG_DT_F32 && v.dtype != SG_DT_F16 && v.dtype != SG_DT_BF16) {
        l->st = sg_error_set(l->err, SG_EUNSUPPORTED, "%s: tensor '%s' is %s; the student's weights "
                             "must be F32, F16 or BF16%s", l->file, name, sg_dtype_name(v.dtype),
                             l->q8file ? " (or I8 matrices with scales)" : "");
        return NULL;
    }
    int64_t shape[2] = {d0, d1};
    float *w = l->m->st ? sg_st_get_f32(l->m->st, name, ndim, shape, l->err)
                        : sg_pt_get_f32(l->m->pt, name, ndim, shape, l->err);
    if (!w)
        l->st = l->err && l->err->code ? l->err->code : SG_ENOMEM;
    else if (l->m->st)
        sg_st_release(l->m->st, sg_st_find(l->m->st, name));
    return w;
}

/* ---- quantisation at load: nn/vec's quantize_row, on the pool ---- */

typedef struct quant_job {
    const sg_vec_kernels *vk;
    const float *w;
    int n, k;
    int8_t *q;
    float *s, *qa, *e;
} quant_job;

static void quant_task(void *ctx, int task, int ntasks)
{
    const quant_job *J = ctx;
    const int a = (int)((long)J->n * task / ntasks), b = (int)((long)J->n * (task + 1) / ntasks);
    for (int r = a; r < b; r++) {
        const float *w = J->w + (size_t)r * J->k;
        int8_t *q = J->q + (size_t)r * J->k;
        float *qa = J->qa ? J->qa + r : NULL, *e = J->e ? J->e + r : NULL;
        J->vk->quantize_row(w, J->k, q, J->s + r, qa, e);
    }
}

static void quantize_rows(sg_pool *pool, const float *w, int n, int k, int8_t *q, float *s,
                          float *qa, float *e)
{
    quant_job J = {sg_vec_kernels_get(), w, n, k, q, s, qa, e};
    const int nt = n >= 1024 ? 4 * sg_pool_size(pool) : 1;
    if (nt > 1)
        sg_pool_run(pool, quant_task, &J, nt);
    else
        quant_task(&J, 0, 1);
}

/* A weight matrix as f32: straight from the mapping when the file holds it as contiguous F32,
 * else converted (dequantised for an int8 file) into *owned. */
static const float *f32_view(loader *l, const char *name, int n, int k, float **owned)
{
    *owned = NULL;
    wview v;
    if (!want(l, name, 2, n, k, &v))
        return NULL;
    if (v.dtype == SG_DT_F32 && v.data)
        return v.data;
    *owned = get_f32(l, name, n, k);
    return *owned;
}

/* A weight matrix as int8 rows + per-row scales (malloc'ed): read from the int8 file, or
 * quantised from f32 exactly as sg_linear_init does. */
static sg_status get_q8(loader *l, const char *name, int n, int k, int8_t **q, float **s)
{
    *q = NULL;
    *s = NULL;
    if (l->st != SG_OK)
        return l->st;
    wview v;
    *q = malloc((size_t)n * k);
    if (!*q)
        return l->st = sg_error_set(l->err, SG_ENOMEM, "out of memory");
    if (l->q8file && find_tensor(l, name, &v) && v.dtype == SG_DT_I8) {
        if (want(l, name, 2, n, k, &v) && (*s = get_scales(l, name, n)) != NULL)
            memcpy(*q, v.data, (size_t)n * k);
        if (l->m->st)
            sg_st_release(l->m->st, sg_st_find(l->m->st, name));
    } else {
        float *owned;
        const float *w = f32_view(l, name, n, k, &owned);
        *s = w ? malloc((size_t)n * sizeof(float)) : NULL;
        if (w && !*s)
            l->st = sg_error_set(l->err, SG_ENOMEM, "out of memory");
        if (*s)
            quantize_rows(l->m->pool, w, n, k, *q, *s, NULL, NULL);
        free(owned);
    }
    if (l->st != SG_OK) {
        free(*q);
        free(*s);
        *q = NULL;
        *s = NULL;
    }
    return l->st;
}

/* rows [r0, r0 + n) of an [N, k] weight matrix (and bias) as a linear layer; with bias_out the
 * bias is handed back instead of going into the layer */
static void make_linear(loader *l, sg_linear *L, const char *wname, const char *bname, int N, int k,
                        int r0, int n, sg_precision prec, float **bias_out)
{
    if (l->st != SG_OK)
        return;
    int8_t *q = NULL;
    float *s = NULL, *w = NULL, *b = NULL;
    if (prec == SG_PREC_Q8)
        get_q8(l, wname, N, k, &q, &s);
    else
        w = get_f32(l, wname, N, k);
    if (l->st == SG_OK)
        b = get_f32(l, bname, N, 0);
    const float *lb = b && !bias_out ? b + r0 : NULL;
    if (b && prec == SG_PREC_Q8)
        l->st = sg_linear_init_q8(L, q + (size_t)r0 * k, s + r0, lb, n, k, l->err);
    else if (b)
        l->st = sg_linear_init(L, w + (size_t)r0 * k, lb, n, k, SG_PREC_F32, l->err);
    free(q);
    free(s);
    free(w);
    if (l->st == SG_OK)
        l->m->info.weight_bytes += L->bytes + (bias_out ? (size_t)n * sizeof(float) : 0);
    if (bias_out && l->st == SG_OK && r0 == 0 && n == N)
        *bias_out = b;
    else
        free(b);
}

static void make_spike(loader *l, sg_spike_linear *L, const char *wname, const char *bname, int n,
                       int k, sg_precision prec)
{
    if (l->st != SG_OK)
        return;
    int8_t *q = NULL;
    float *s = NULL, *w = NULL, *b = NULL;
    if (prec == SG_PREC_Q8)
        get_q8(l, wname, n, k, &q, &s);
    else
        w = get_f32(l, wname, n, k);
    if (l->st == SG_OK)
        b = get_f32(l, bname, n, 0);
    if (b && prec == SG_PREC_Q8)
        l->st = sg_spike_linear_init_q8(L, q, s, b, n, k, l->err);
    else if (b)
        l->st = sg_spike_linear_init(L, w, b, n, k, SG_PREC_F32, l->err);
    free(q);
    free(s);
    free(w);
    free(b);
    if (l->st == SG_OK)
        l->m->info.weight_bytes += (size_t)n * k * (prec == SG_PREC_Q8 ? 1 : 4) + (size_t)n * 8;
}

static float *vec(loader *l, const char *name, int n)
{
    float *v = get_f32(l, name, n, 0);
    if (v)
        l->m->info.weight_bytes += (size_t)n * sizeof(float);
    return v;
}

static void load_block(loader *l, int i)
{
    sg_snn *m = l->m;
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
     * (forward: block_first), so its layer has no bias */
    make_linear(l, &B->out, NAME(w, "attn.attn.out_proj.weight"), NAME(b, "attn.attn.out_proj.bias"),
                d, d, 0, d, prec, i == 0 ? &B->out_b : NULL);
    B->ln1_g = vec(l, NAME(w, "attn.norm.weight"), d);
    B->ln1_b = vec(l, NAME(w, "attn.norm.bias"), d);
    make_spike(l, &B->ff0, NAME(w, "ff.0.weight"), NAME(b, "ff.0.bias"), h, d, prec);
    make_spike(l, &B->ff3, NAME(w, "ff.3.weight"), NAME(b, "ff.3.bias"), d, h, prec);
    B->ln2_g = vec(l, NAME(w, "norm.weight"), d);
    B->ln2_b = vec(l, NAME(w, "norm.bias"), d);
#undef NAME
}

/* The embedding stays in the file: rows are converted when a token is looked up. */
static void load_embedding(loader *l)
{
    sg_snn *m = l->m;
    const int V = m->info.vocab, d = m->info.dim;
    wview v;
    if (!want(l, "embed.weight", 2, V, d, &v))
        return;
    if (v.dtype == SG_DT_I8 && l->q8file) {
        float *s = get_scales(l, "embed.weight", V);
        m->emb_scale = s;
        m->emb_owned = s; /* freed with the model; the rows stay mapped */
        m->emb = v.data;
        m->emb_dtype = SG_DT_I8;
        m->info.weight_bytes += (size_t)V * sizeof(float);
        return;
    }
    if (v.dtype != SG_DT_F32 && v.dtype != SG_DT_F16 && v.dtype != SG_DT_BF16) {
        l->st = sg_error_set(l->err, SG_EUNSUPPORTED, "%s: tensor 'embed.weight' is %s (F32, F16 or "
                             "BF16)", l->file, sg_dtype_name(v.dtype));
        return;
    }
    if (v.data) {
        m->emb = v.data;
        m->emb_dtype = v.dtype;
        return;
    }
    float *w = get_f32(l, "embed.weight", V, d); /* a strided view: gather it once */
    m->emb = m->emb_owned = w;
    m->emb_dtype = SG_DT_F32;
    if (w)
        m->info.weight_bytes += (size_t)V * d * sizeof(float);
}

/* The head: Q8 always; in f32 also the f32 rows and, per row, the two error bounds screening uses:
 * |w.x - ws xs (q.qx)| <= ws sum_j |q_j| |x_j - xs qx_j| + sum_j |w_j - ws q_j| |x_j|
 *                      <= head_a * max_j |ex_j|        + head_e * sum_j |x_j|. */
static void load_head(loader *l)
{
    sg_snn *m = l->m;
    const int V = m->info.vocab, d = m->info.dim;
    m->head_b = vec(l, "head.bias", V);
    if (!m->head_b)
        return;
    int8_t *q = NULL;
    float *s = NULL;
    if (m->info.precision == SG_PREC_Q8) {
        if (get_q8(l, "head.weight", V, d, &q, &s) == SG_OK)
            l->st = sg_linear_init_q8(&m->head, q, s, m->head_b, V, d, l->err);
    } else {
        float *owned = NULL;
        const float *w = f32_view(l, "head.weight", V, d, &owned);
        q = w ? malloc((size_t)V * d) : NULL;
        s = w ? malloc((size_t)V * sizeof(float)) : NULL;
        m->head_a = w ? malloc((size_t)V * sizeof(float)) : NULL;
        m->head_e = w ? malloc((size_t)V * sizeof(float)) : NULL;
        if (w && (!q || !s || !m->head_a || !m->head_e))
            l->st = sg_error_set(l->err, SG_ENOMEM, "out of memory");
        if (l->st == SG_OK) {
            quantize_rows(m->pool, w, V, d, q, s, m->head_a, m->head_e);
            l->st = sg_linear_init_q8(&m->head, q, s, m->head_b, V, d, l->err);
        }
        m->head_w = w;
        m->head_w_owned = owned; /* NULL when the rows are read from the mapping */
        if (owned)
            m->info.weight_bytes += (size_t)V * d * sizeof(float);
        for (int n = 0; l->st == SG_OK && n < V; n++) {
            m->head_amax = fmaxf(m->head_amax, m->head_a[n]);
            m->head_emax = fmaxf(m->head_emax, m->head_e[n]);
            m->head_bmax = fmaxf(m->head_bmax, fabsf(m->head_b[n]));
        }
        m->info.weight_bytes += (size_t)V * 2 * sizeof(float);
    }
    if (l->st == SG_OK)
        m->info.weight_bytes += m->head.bytes;
    free(q);
    free(s);
}

/* ---- tokenizer files ---- */

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
        snprintf(merges, sizeof merges, "%s", path);
        char *slash = strrchr(merges, '/');
        snprintf(slash ? slash + 1 : merges, sizeof merges - (size_t)(slash ? slash + 1 - merges : 0),
                 "merges.txt");
        return sg_bpe_load_hf(path, merges, err);
    }
    return sg_bpe_load_tiktoken(path, err);
}

/* ---- load ---- */

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
        free(B->out_b);
        sg_spike_linear_free(&B->ff0);
        sg_spike_linear_free(&B->ff3);
        free(B->ln1_g);
        free(B->ln1_b);
        free(B->ln2_g);
        free(B->ln2_b);
    }
    free(m->blk);
    free(m->emb_owned);
    sg_linear_free(&m->head);
    free(m->head_w_owned);
    free(m->head_b);
    free(m->head_a);
    free(m->head_e);
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

/* Opens dir's weights: student.pt, else model.safetensors. */
static sg_status open_weights(loader *l)
{
    sg_snn *m = l->m;
    if (file_exists(l->dir, "student.pt")) {
        snprintf(l->file, sizeof l->file, "%s/student.pt", l->dir);
        snprintf(m->weights_name, sizeof m->weights_name, "student.pt");
        m->pt = sg_pt_open(l->file, l->err);
        return m->pt ? SG_OK : (l->err && l->err->code ? l->err->code : SG_EIO);
    }
    if (file_exists(l->dir, "model.safetensors")) {
        snprintf(l->file, sizeof l->file, "%s/model.safetensors", l->dir);
        snprintf(m->weights_name, sizeof m->weights_name, "model.safetensors");
        m->st = sg_st_open(l->file, l->err);
        if (!m->st)
            return l->err && l->err->code ? l->err->code : SG_EIO;
        const char *fmt = sg_st_metadata(m->st, "format");
        const sg_st_tensor *e = sg_st_find(m->st, "embed.weight");
        l->q8file = (fmt && strcmp(fmt, INT8_FORMAT) == 0) || (e && e->dtype == SG_DT_I8);
        return SG_OK;
    }
    struct stat sb;
    if (stat(l->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return sg_error_set(l->err, SG_EIO, "model directory %s: %s", l->dir,
                            stat(l->dir, &sb) != 0 ? strerror(errno) : "not a directory");
    return sg_error_set(l->err, SG_EIO, "%s holds neither student.pt nor model.safetensors", l->dir);
}

/* Arena bytes of one call with a context of up to lmax tokens (see gen_setup). */
static size_t gen_bytes(const sg_snn *m, int lmax);

sg_snn *sg_snn_load(const char *dir, const sg_snn_options *opt, sg_pool *pool, sg_error *err)
{
    sg_snn *m = calloc(1, sizeof *m);
    if (!m) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->pool = pool;
    m->wide_score = WIDE_SCORE;
    const sg_precision prec = opt ? opt->precision : SG_PREC_Q8;
    loader l = {.m = m, .dir = dir, .prec = prec, .err = err, .st = SG_OK};
    struct stat sb;
    if (prec != SG_PREC_F32 && prec != SG_PREC_Q8)
        l.st = sg_error_set(err, SG_EINVAL, "unknown precision %d", (int)prec);
    else if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        l.st = sg_error_set(err, SG_EIO, "model directory %s: %s", dir,
                            stat(dir, &sb) != 0 ? strerror(errno) : "not a directory");
    if (l.st == SG_OK)
        l.st = read_meta(dir, &l.md, err);
    if (l.st == SG_OK)
        l.st = open_weights(&l);
    if (l.st == SG_OK) {
        /* vocab_size absent (older metadata): the embedding's rows, which the head must match */
        wview v;
        if (!l.md.vocab && find_tensor(&l, "embed.weight", &v) && v.ndim == 2 && v.shape[0] > 0 &&
            v.shape[0] <= MAX_VOCAB)
            l.md.vocab = (int)v.shape[0];
        if (!l.md.vocab)
            l.st = sg_error_set(err, SG_EINVAL, "%s: tensor 'embed.weight' not found or not a matrix",
                                l.file);
        /* a checkpoint deeper than metadata.json says is not the model metadata describes */
        char name[64];
        snprintf(name, sizeof name, "blocks.%d.attn.attn.in_proj_weight", l.md.depth);
        if (l.st == SG_OK && find_tensor(&l, name, &v))
            l.st = sg_error_set(err, SG_EINVAL, "%s: has tensor '%s' but metadata.json says depth %d",
                                l.file, name, l.md.depth);
    }
    sg_snn_info *in = &m->info;
    in->vocab = l.md.vocab;
    in->dim = l.md.dim;
    in->depth = l.md.depth;
    in->heads = l.md.heads;
    in->hidden = 2 * l.md.dim; /* mlp_ratio 2.0 */
    in->spike_threshold = l.md.threshold;
    in->precision = prec;
    in->prequantized = l.q8file;
    in->weights = m->weights_name;
    in->eos = SG_SNN_EOS;
    if (l.st == SG_OK) {
        m->blk = calloc((size_t)in->depth, sizeof *m->blk);
        if (!m->blk)
            l.st = sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    load_embedding(&l);
    for (int i = 0; i < in->depth && l.st == SG_OK; i++)
        load_block(&l, i);
    load_head(&l);
    if (l.st == SG_OK) {
        bool none;
        m->tok = load_tokenizer(dir, opt ? opt->tokenizer : NULL, err, &none);
        if (!m->tok && !none) {
            l.st = err && err->code ? err->code : SG_EINVAL;
        } else if (m->tok && sg_bpe_vocab_size(m->tok) != in->vocab) {
            l.st = sg_error_set(err, SG_EINVAL, "the tokenizer has %d tokens but the model's vocabulary "
                                "is %d (metadata.json vocab_size)", sg_bpe_vocab_size(m->tok), in->vocab);
        } else if (m->tok) {
            in->has_tokenizer = true;
            if (sg_bpe_eot(m->tok) >= 0 && sg_bpe_eot(m->tok) < in->vocab)
                in->eos = sg_bpe_eot(m->tok);
        }
    }
    if (l.st == SG_OK && sg_arena_init(&m->arena, gen_bytes(m, 256)) != 0)
        l.st = sg_error_set(err, SG_ENOMEM, "out of memory for scratch");
    if (l.st == SG_OK)
        release_mapping(m);
    if (l.st != SG_OK) {
        sg_snn_free(m);
        return NULL;
    }
    return m;
}

const sg_snn_info *sg_snn_get_info(const sg_snn *m) { return &m->info; }

/* ================================================================================================
 * Forward
 * ============================================================================================= */

/* One call's state, carved from the arena once per call; rows are positions. What persists from
 * step to step is what a step reuses. */
typedef struct gen {
    int lmax, ntasks, mwords, from; /* rows [from, L) are new this step */
    const sg_vec_kernels *vk;
    int32_t *ids;
    /* block 0: its rows' q|k|v and the values' out_proj depend on the token alone; the softmax
     * sums of each row only gain a term per new key */
    float *emb;      /* [lmax][d] block 0's input, each position's token embedding */
    float *qkv0;     /* [lmax][3d] */
    float *u0;       /* [lmax][heads][d] out_proj (no bias) of each head's slice of v */
    float *m0;       /* [lmax][heads][d] sum over keys j of exp(s_ij - c_ih) u0[j][h] */
    float *z0;       /* [lmax][heads]    sum over keys j of exp(s_ij - c_ih) */
    float *c0;       /* [lmax][heads]    c_ih = s_ii: a row's score with its own key */
    uint8_t *wide;   /* [lmax] rows that need their maximum (WIDE_SCORE) */
    /* per block */
    float **x;       /* [depth][lmax][d] block outputs */
    uint64_t **mask; /* [depth][lmax][mwords] each row's first spikes (attn.norm > threshold) */
    uint8_t **dirty; /* [depth][lmax] rows whose output changed this step */
    float **kv;      /* [depth][lmax][3d] q|k|v of middle blocks, k|v of the last block */
    /* temporaries of a step */
    float *tmp;      /* [lmax * max(heads, 3)][d] */
    float *tmp2;     /* [lmax][3d] */
    float *att, *h;  /* [lmax][d] */
    float *qrow;     /* [d] */
    float *scores;   /* [lmax] */
    float *logits;   /* [vocab] */
    int8_t *qx;      /* [d] */
    int *rows;       /* [lmax] */
    int *cand;       /* [vocab] head rows screening keeps */
    float *task;     /* per task: u[d], f[hidden], y[d] */
    uint16_t *tidx;  /* per task: idx1[d], idx2[hidden] */
    long *fired, *sites; /* per task spike counters */
    size_t scratch_mark;
} gen;

static size_t al(size_t bytes) { return (bytes + 63) / 64 * 64; }

static int gen_tasks(const sg_snn *m)
{
    int t = sg_pool_size(m->pool);
    return t < 1 ? 1 : t * 4;
}

static int gen_mwords(const sg_snn *m) { return (m->info.dim + 63) / 64; }

/* Arena bytes of one call with a context of up to lmax tokens: gen_setup's allocations, then the
 * largest scratch of a kernel it calls. */
static size_t gen_bytes(const sg_snn *m, int lmax)
{
    const size_t d = (size_t)m->info.dim, hid = (size_t)m->info.hidden, L = (size_t)lmax;
    const size_t H = (size_t)m->info.heads, D = (size_t)m->info.depth, nt = (size_t)gen_tasks(m);
    const size_t tmp_rows = L * (H > 3 ? H : 3);
    size_t b = al(L * 4) + al(L * d * 4) + al(L * 3 * d * 4) + 2 * al(L * H * d * 4) +
               2 * al(L * H * 4) + al(L) + 4 * al(D * sizeof(void *)) +
               D * (al(L * d * 4) + al(L * (size_t)gen_mwords(m) * 8) + al(L) + al(L * 3 * d * 4)) +
               al(tmp_rows * d * 4) + al(L * 3 * d * 4) + 2 * al(L * d * 4) + al(d * 4) + al(L * 4) +
               2 * al((size_t)m->info.vocab * 4) + al(d) + al(L * sizeof(int)) +
               nt * al((2 * d + hid) * 4) + nt * al((d + hid) * 2) + 2 * al(nt * sizeof(long));
    size_t k = sg_attention_scratch_bytes(lmax, m->info.dim, m->info.heads, sg_pool_size(m->pool));
    for (int i = 0; i < m->info.depth; i++) {
        const snn_block *B = &m->blk[i];
        const sg_linear *ls[4] = {&B->qkv, &B->q, &B->kv, &B->out};
        for (int j = 0; j < 4; j++)
            if (ls[j]->n) {
                size_t s = sg_linear_scratch_bytes(ls[j], (int)tmp_rows);
                k = s > k ? s : k;
            }
    }
    size_t hs = sg_linear_scratch_bytes(&m->head, 1);
    return b + (k > hs ? k : hs) + 64 * 64;
}

static sg_status gen_setup(sg_snn *m, gen *g, int lmax, sg_error *err)
{
    if (sg_arena_reserve(&m->arena, gen_bytes(m, lmax)) != 0)
        return sg_error_set(err, SG_ENOMEM, "out of memory for a context of %d tokens", lmax);
    sg_arena *a = &m->arena;
    sg_arena_reset(a);
    const size_t d = (size_t)m->info.dim, hid = (size_t)m->info.hidden, L = (size_t)lmax;
    const size_t H = (size_t)m->info.heads, D = (size_t)m->info.depth;
    memset(g, 0, sizeof *g);
    g->lmax = lmax;
    g->ntasks = gen_tasks(m);
    g->mwords = gen_mwords(m);
    const size_t nt = (size_t)g->ntasks;
    g->ids = sg_arena_alloc(a, L * 4);
    g->emb = sg_arena_alloc(a, L * d * 4);
    g->qkv0 = sg_arena_alloc(a, L * 3 * d * 4);
    g->u0 = sg_arena_alloc(a, L * H * d * 4);
    g->m0 = sg_arena_alloc(a, L * H * d * 4);
    g->z0 = sg_arena_alloc(a, L * H * 4);
    g->c0 = sg_arena_alloc(a, L * H * 4);
    g->wide = sg_arena_alloc(a, L);
    g->x = sg_arena_alloc(a, D * sizeof(void *));
    g->mask = sg_arena_alloc(a, D * sizeof(void *));
    g->dirty = sg_arena_alloc(a, D * sizeof(void *));
    g->kv = sg_arena_alloc(a, D * sizeof(void *));
    if (!g->kv)
        return sg_error_set(err, SG_EINTERNAL, "snn: arena too small");
    for (size_t b = 0; b < D; b++) {
        g->x[b] = sg_arena_alloc(a, L * d * 4);
        g->mask[b] = sg_arena_alloc(a, L * (size_t)g->mwords * 8);
        g->dirty[b] = sg_arena_alloc(a, L);
        g->kv[b] = sg_arena_alloc(a, L * 3 * d * 4);
    }
    g->tmp = sg_arena_alloc(a, L * (H > 3 ? H : 3) * d * 4);
    g->tmp2 = sg_arena_alloc(a, L * 3 * d * 4);
    g->att = sg_arena_alloc(a, L * d * 4);
    g->h = sg_arena_alloc(a, L * d * 4);
    g->qrow = sg_arena_alloc(a, d * 4);
    g->scores = sg_arena_alloc(a, L * 4);
    g->logits = sg_arena_alloc(a, (size_t)m->info.vocab * 4);
    g->qx = sg_arena_alloc(a, d);
    g->rows = sg_arena_alloc(a, L * sizeof(int));
    g->cand = sg_arena_alloc(a, (size_t)m->info.vocab * sizeof(int));
    g->task = sg_arena_alloc(a, nt * al((2 * d + hid) * 4));
    g->tidx = sg_arena_alloc(a, nt * al((d + hid) * 2));
    g->fired = sg_arena_alloc(a, nt * sizeof(long));
    g->sites = sg_arena_alloc(a, nt * sizeof(long));
    if (!g->sites)
        return sg_error_set(err, SG_EINTERNAL, "snn: arena too small");
    memset(g->fired, 0, nt * sizeof(long));
    memset(g->sites, 0, nt * sizeof(long));
    memset(g->wide, 0, L);
    g->scratch_mark = a->used;
    return SG_OK;
}

/* Token id's embedding row as f32. In int8 the row is quantised and dequantised as the int8 file
 * stores it (symmetric per row), whether it comes from that file or from f32 weights. */
static void embed_row(const sg_snn *m, int32_t id, float *out, int8_t *tmp)
{
    const int d = m->info.dim;
    const size_t at = (size_t)id * d;
    if (m->emb_dtype == SG_DT_I8) {
        const int8_t *q = (const int8_t *)m->emb + at;
        for (int j = 0; j < d; j++)
            out[j] = (float)q[j] * m->emb_scale[id];
        return;
    }
    sg_dtype_to_f32(m->emb_dtype, (const char *)m->emb + at * sg_dtype_size(m->emb_dtype), (size_t)d, out);
    if (m->info.precision == SG_PREC_Q8) {
        float s;
        sg_q8_quantize_scalar(out, d, 1, d, d, tmp, d, &s);
        for (int j = 0; j < d; j++)
            out[j] = (float)tmp[j] * s;
    }
}

/* Attention of one query row against rows [0, L) of k and v (row stride ld), all heads: what
 * nn.MultiheadAttention computes for that row (there is no mask). */
static void attention_row(const sg_vec_kernels *vk, const float *q, const float *k, const float *v,
                          long ld, int L, int d, int heads, float *scores, float *out)
{
    const int hd = d / heads;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < heads; h++) {
        for (int j = 0; j < L; j++)
            scores[j] = vk->dot(q + h * hd, k + j * ld + h * hd, hd) * scale;
        sg_softmax_rows(scores, 1, L);
        float *oh = out + h * hd;
        for (int c = 0; c < hd; c++)
            oh[c] = 0.0f;
        for (int j = 0; j < L; j++)
            vk->axpy(oh, scores[j], v + j * ld + h * hd, hd);
    }
}

/* The rest of a block for a list of rows: s = spike(attn.norm(x_in + attn)) and, unless s is the
 * row's pattern of the previous step (then nothing after it can have changed: the output is still
 * in x_out), x_out = norm(s + ff.3(spike(GELU(ff.0(s))))). attn is h, or for block 0 its softmax
 * sums: out_b + sum over heads of m0 / z0. */
typedef struct rows_job {
    const sg_snn *m;
    gen *g;
    const snn_block *B;
    const float *xin, *h; /* h NULL: block 0's sums */
    float *xout;
    uint64_t *mask;       /* NULL: always compute */
    uint8_t *dirty;       /* may be NULL */
    const int *rows;
    int n;
} rows_job;

static void rows_task(void *ctx, int task, int ntasks)
{
    const rows_job *J = ctx;
    const sg_snn *m = J->m;
    gen *g = J->g;
    const snn_block *B = J->B;
    const int d = m->info.dim, hid = m->info.hidden, H = m->info.heads, mw = g->mwords;
    const float thr = m->info.spike_threshold;
    float *u = g->task + (size_t)task * (al((size_t)(2 * d + hid) * 4) / 4);
    float *f = u + d, *y = f + hid;
    uint16_t *idx1 = g->tidx + (size_t)task * (al((size_t)(d + hid) * 2) / 2), *idx2 = idx1 + d;
    long fired = 0, sites = 0;
    const int a = (int)((long)J->n * task / ntasks), b = (int)((long)J->n * (task + 1) / ntasks);
    for (int t = a; t < b; t++) {
        const int r = J->rows[t];
        const float *xi = J->xin + (size_t)r * d;
        if (J->h) {
            const float *hi = J->h + (size_t)r * d;
            for (int j = 0; j < d; j++)
                u[j] = xi[j] + hi[j];
        } else {
            for (int j = 0; j < d; j++)
                u[j] = B->out_b[j];
            for (int hh = 0; hh < H; hh++)
                g->vk->axpy(u, 1.0f / g->z0[(size_t)r * H + hh], g->m0 + ((size_t)r * H + hh) * d, d);
            for (int j = 0; j < d; j++)
                u[j] += xi[j];
        }
        sg_layernorm(u, u, 1, d, B->ln1_g, B->ln1_b, LN_EPS);
        uint64_t bits[MAX_DIM / 64];
        memset(bits, 0, (size_t)mw * 8);
        int n1 = 0;
        for (int j = 0; j < d; j++)
            if (u[j] > thr) {
                idx1[n1++] = (uint16_t)j;
                bits[j / 64] |= 1ull << (j % 64);
            }
        fired += n1;
        sites += d;
        if (J->mask) {
            uint64_t *mr = J->mask + (size_t)r * mw;
            if (r < g->from && memcmp(mr, bits, (size_t)mw * 8) == 0) {
                if (J->dirty)
                    J->dirty[r] = 0;
                continue;
            }
            memcpy(mr, bits, (size_t)mw * 8);
        }
        sg_spike_linear_row(&B->ff0, idx1, n1, f);
        sg_gelu_erf(f, hid);
        int n2 = 0;
        for (int j = 0; j < hid; j++)
            if (f[j] > thr)
                idx2[n2++] = (uint16_t)j;
        sg_spike_linear_row(&B->ff3, idx2, n2, y);
        for (int i = 0; i < n1; i++)
            y[idx1[i]] += 1.0f; /* the residual: s + ff(s) */
        sg_layernorm(y, J->xout + (size_t)r * d, 1, d, B->ln2_g, B->ln2_b, LN_EPS);
        if (J->dirty)
            J->dirty[r] = 1;
        fired += n2;
        sites += hid;
    }
    g->fired[task] += fired;
    g->sites[task] += sites;
}
static void run_rows(sg_snn *m, gen *g, const snn_block *B, const float *xin, const float *h,
                     float *xout, uint64_t *mask, uint8_t *dirty, const int *rows, int n)
{
    rows_job J = {m, g, B, xin, h, xout, mask, dirty, rows, n};
    int nt = n < g->ntasks ? n : g->ntasks;
    /* a row costs a microsecond or a few: split only when every thread gets several */
    if (n < 8 * sg_pool_size(m->pool))
        nt = 1;
    if (nt <= 1)
        rows_task(&J, 0, 1);
    else
        sg_pool_run(m->pool, rows_task, &J, nt);
}

/* The rows of src (row stride lds floats) listed in rows, through L, into dst rows (stride ldd). */
static void linear_rows(sg_snn *m, gen *g, const sg_linear *L, const float *src, int lds,
                        const int *rows, int n, float *dst, int ldd)
{
    if (n <= 0)
        return;
    const int k = L->k, out = L->n;
    bool contiguous = true;
    for (int i = 1; i < n && contiguous; i++)
        contiguous = rows[i] == rows[0] + i;
    if (contiguous) {
        sg_linear_forward(L, src + (size_t)rows[0] * lds, n, lds, dst + (size_t)rows[0] * ldd, ldd,
                          m->pool, &m->arena);
        return;
    }
    for (int i = 0; i < n; i++)
        memcpy(g->tmp + (size_t)i * k, src + (size_t)rows[i] * lds, (size_t)k * sizeof(float));
    sg_linear_forward(L, g->tmp, n, k, g->tmp2, out, m->pool, &m->arena);
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)rows[i] * ldd, g->tmp2 + (size_t)i * out, (size_t)out * sizeof(float));
}

/* Rows whose flag is set in dirty, into g->rows; returns how many. */
static int dirty_rows(gen *g, const uint8_t *dirty, int L)
{
    int n = 0;
    for (int i = 0; i < L; i++)
        if (dirty[i])
            g->rows[n++] = i;
    return n;
}

/* Adds key j to row i's softmax sums of block 0 (or marks the row wide). */
static void first_add_key(const sg_snn *m, gen *g, int i, int j, float scale)
{
    const int d = m->info.dim, H = m->info.heads, hd = d / H;
    const float *q = g->qkv0 + (size_t)i * 3 * d, *k = g->qkv0 + (size_t)j * 3 * d + d;
    for (int h = 0; h < H; h++) {
        const float s = g->vk->dot(q + h * hd, k + h * hd, hd) * scale - g->c0[(size_t)i * H + h];
        if (s > m->wide_score) {
            g->wide[i] = 1;
            return;
        }
        const float e = expf(s);
        g->z0[(size_t)i * H + h] += e;
        g->vk->axpy(g->m0 + ((size_t)i * H + h) * d, e, g->u0 + ((size_t)j * H + h) * d, d);
    }
}

/* A wide row's sums over keys [0, L) from scratch, shifted by the row's maximum. */
static void first_wide_row(const sg_snn *m, gen *g, int i, int L, float scale)
{
    const int d = m->info.dim, H = m->info.heads, hd = d / H;
    const float *q = g->qkv0 + (size_t)i * 3 * d;
    for (int h = 0; h < H; h++) {
        float mx = -INFINITY;
        for (int j = 0; j < L; j++) {
            g->scores[j] = g->vk->dot(q + h * hd, g->qkv0 + (size_t)j * 3 * d + d + h * hd, hd) * scale;
            mx = g->scores[j] > mx ? g->scores[j] : mx;
        }
        float z = 0.0f, *mh = g->m0 + ((size_t)i * H + h) * d;
        for (int c = 0; c < d; c++)
            mh[c] = 0.0f;
        for (int j = 0; j < L; j++) {
            const float e = expf(g->scores[j] - mx);
            z += e;
            g->vk->axpy(mh, e, g->u0 + ((size_t)j * H + h) * d, d);
        }
        g->z0[(size_t)i * H + h] = z;
    }
}

/* Block 0. Its input is the embedding, so a position's q, k, v and the out_proj of each head's
 * slice of v (u0) are computed once. out_proj distributes over the attention's weighted sum:
 *   out_proj(attn_i) = b + sum_h (sum_j exp(s_ij - c) u0[j][h]) / (sum_j exp(s_ij - c)),
 * and with a shift c fixed per row (its score against its own key, so the denominator is >= 1)
 * both sums of a row only gain one term per new key: O(L d) per step instead of O(L^2 d + L d^2).
 * The terms are added in key order whether a row is new or old, so a step gives the same floats
 * as a forward from scratch. Then every row's spikes, and the feed-forward of the rows whose
 * spikes changed. */
static void block_first(sg_snn *m, gen *g, int from, int L)
{
    const snn_block *B = &m->blk[0];
    const int d = m->info.dim, H = m->info.heads, hd = d / H;
    const float scale = 1.0f / sqrtf((float)hd);
    sg_arena *a = &m->arena;
    /* new positions */
    for (int i = from; i < L; i++)
        embed_row(m, g->ids[i], g->emb + (size_t)i * d, g->qx);
    sg_linear_forward(&B->qkv, g->emb + (size_t)from * d, L - from, d, g->qkv0 + (size_t)from * 3 * d,
                      3 * d, m->pool, a);
    const int nr = (L - from) * H;
    memset(g->tmp, 0, (size_t)nr * d * sizeof(float));
    for (int j = from; j < L; j++)
        for (int h = 0; h < H; h++)
            memcpy(g->tmp + ((size_t)(j - from) * H + h) * d + h * hd,
                   g->qkv0 + (size_t)j * 3 * d + 2 * d + h * hd, (size_t)hd * sizeof(float));
    sg_linear_forward(&B->out, g->tmp, nr, d, g->u0 + (size_t)from * H * d, d, m->pool, a);
    /* softmax sums: old rows gain the new keys, new rows get every key */
    for (int i = 0; i < from; i++)
        for (int j = from; j < L && !g->wide[i]; j++)
            first_add_key(m, g, i, j, scale);
    for (int i = from; i < L; i++) {
        const float *q = g->qkv0 + (size_t)i * 3 * d;
        for (int h = 0; h < H; h++)
            g->c0[(size_t)i * H + h] = g->vk->dot(q + h * hd, q + d + h * hd, hd) * scale;
        memset(g->z0 + (size_t)i * H, 0, (size_t)H * sizeof(float));
        memset(g->m0 + (size_t)i * H * d, 0, (size_t)H * d * sizeof(float));
        for (int j = 0; j < L && !g->wide[i]; j++)
            first_add_key(m, g, i, j, scale);
    }
    for (int i = 0; i < L; i++)
        if (g->wide[i])
            first_wide_row(m, g, i, L, scale);
    /* with one block only the last row matters */
    int n = 0;
    if (m->info.depth == 1)
        g->rows[n++] = L - 1;
    else
        for (int i = 0; i < L; i++)
            g->rows[n++] = i;
    run_rows(m, g, B, g->emb, NULL, g->x[0], m->info.depth == 1 ? NULL : g->mask[0], g->dirty[0],
             g->rows, n);
}

/* A block between the first and the last: q|k|v of the rows whose input changed, attention and
 * out_proj for every row (any changed key moves them all), the feed-forward where spikes changed. */
static void block_middle(sg_snn *m, gen *g, int b, int L)
{
    const snn_block *B = &m->blk[b];
    const int d = m->info.dim;
    const int n = dirty_rows(g, g->dirty[b - 1], L);
    if (n == 0) { /* nothing this block reads changed */
        memset(g->dirty[b], 0, (size_t)L);
        return;
    }
    linear_rows(m, g, &B->qkv, g->x[b - 1], d, g->rows, n, g->kv[b], 3 * d);
    sg_attention(g->kv[b], g->att, L, d, m->info.heads, false, m->pool, &m->arena);
    sg_linear_forward(&B->out, g->att, L, d, g->h, d, m->pool, &m->arena);
    for (int i = 0; i < L; i++)
        g->rows[i] = i;
    run_rows(m, g, B, g->x[b - 1], g->h, g->x[b], g->mask[b], g->dirty[b], g->rows, L);
}

/* The last block, needed at the last position only: k|v of the rows whose input changed, then
 * that row's query, attention, out_proj and feed-forward. */
static void block_last(sg_snn *m, gen *g, int L)
{
    const int b = m->info.depth - 1, d = m->info.dim;
    const snn_block *B = &m->blk[b];
    const float *xin = g->x[b - 1];
    const int n = dirty_rows(g, g->dirty[b - 1], L);
    linear_rows(m, g, &B->kv, xin, d, g->rows, n, g->kv[b], 2 * d);
    sg_linear_forward(&B->q, xin + (size_t)(L - 1) * d, 1, d, g->qrow, d, m->pool, &m->arena);
    float *att = g->att + (size_t)(L - 1) * d;
    attention_row(g->vk, g->qrow, g->kv[b], g->kv[b] + d, 2 * d, L, d, m->info.heads, g->scores, att);
    sg_linear_forward(&B->out, att, 1, d, g->h + (size_t)(L - 1) * d, d, m->pool, &m->arena);
    const int last = L - 1;
    run_rows(m, g, B, xin, g->h, g->x[b], NULL, NULL, &last, 1);
}

static double dot_f64(const float *w, const float *x, int d)
{
    double s = 0.0;
    for (int j = 0; j < d; j++)
        s += (double)w[j] * x[j];
    return s;
}

/* The head at x: its argmax, and its logits in g->logits (int8: the Q8 head's; f32 with dense:
 * every row from the f32 weights, in double). f32 without dense screens the vocabulary with the
 * Q8 logits y_n, which are within B_n of the exact ones (load_head):
 *   B_n = head_a[n] max_j |x_j - xs qx_j| + head_e[n] sum_j |x_j| + 2e-6 |b_n| + 1e-6 max_m |y_m|
 * (the last two cover the float rounding of the Q8 epilogue). The exact maximum is at least
 * lo = y_k - B_k for k the Q8 argmax, so only rows with y_n + B_n >= lo can hold it; those are
 * computed exactly. A first pass keeps the rows with y_n >= lo - max_n B_n. */
static int32_t head_argmax(sg_snn *m, gen *g, const float *x, bool dense)
{
    const int V = m->info.vocab, d = m->info.dim;
    float *y = g->logits, yabs;
    if (m->info.precision == SG_PREC_F32 && dense) {
        for (int n = 0; n < V; n++)
            y[n] = (float)(dot_f64(m->head_w + (size_t)n * d, x, d) + m->head_b[n]);
        return g->vk->argmax(y, V, &yabs);
    }
    sg_linear_forward(&m->head, x, 1, d, y, V, m->pool, &m->arena);
    const int top = g->vk->argmax(y, V, &yabs);
    if (m->info.precision == SG_PREC_Q8)
        return top;
    float sx;
    sg_q8_quantize_scalar(x, d, 1, d, d, g->qx, d, &sx);
    double x1 = 0.0, exmax = 0.0;
    for (int j = 0; j < d; j++) {
        x1 += fabs((double)x[j]);
        const double e = fabs((double)x[j] - (double)sx * g->qx[j]);
        exmax = e > exmax ? e : exmax;
    }
    const float ea = (float)(exmax * 1.001), ee = (float)(x1 * 1.001), slack = 1e-6f * yabs + 1e-30f;
#define BOUND(n) (m->head_a[n] * ea + m->head_e[n] * ee + 2e-6f * fabsf(m->head_b[n]) + slack)
    const float lo = y[top] - BOUND(top);
    const float bmax = (m->head_amax * ea + m->head_emax * ee + 2e-6f * m->head_bmax + slack) * 1.0001f;
    const int nc = g->vk->collect(y, V, lo - bmax, g->cand);
    int best = -1;
    double bestv = 0.0;
    for (int c = 0; c < nc; c++) {
        const int n = g->cand[c];
        if (!(y[n] + BOUND(n) >= lo))
            continue;
        const double v = dot_f64(m->head_w + (size_t)n * d, x, d) + m->head_b[n];
        if (best < 0 || v > bestv) {
            best = n;
            bestv = v;
        }
    }
#undef BOUND
    m->head_rows += nc;
    if (best < 0) /* non-finite activations: no bound holds; every row then */
        return head_argmax(m, g, x, true);
    return best;
}

/* One step: positions [from, L) of g->ids are new. Brings every block's state up to date and
 * returns the argmax of the last position's logits. */
static int32_t forward_step(sg_snn *m, gen *g, int from, int L, bool dense)
{
    const int D = m->info.depth;
    m->arena.used = g->scratch_mark;
    g->from = from;
    g->vk = sg_vec_kernels_get();
    block_first(m, g, from, L);
    for (int b = 1; b < D - 1; b++)
        block_middle(m, g, b, L);
    if (D > 1)
        block_last(m, g, L);
    return head_argmax(m, g, g->x[D - 1] + (size_t)(L - 1) * m->info.dim, dense);
}

static sg_status check_ids(const sg_snn *m, const int32_t *ids, int n, sg_error *err)
{
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->info.vocab)
            return sg_error_set(err, SG_EINVAL, "token id %d at position %d is outside the model's "
                                "vocabulary of %d", ids[i], i, m->info.vocab);
    return SG_OK;
}

static sg_status generate_locked(sg_snn *m, const int32_t *prompt, int n, int max_tokens,
                                 bool stop_at_eos, int32_t *out, int *n_out, sg_error *err)
{
    *n_out = 0;
    if (max_tokens < 0 || n < 0)
        return sg_error_set(err, SG_EINVAL, "max_tokens and the prompt length must be >= 0");
    if ((long)n + max_tokens > SG_SNN_MAX_CONTEXT)
        return sg_error_set(err, SG_ETOOBIG, "a prompt of %d tokens plus %d new tokens exceeds the "
                            "context limit of %d tokens", n, max_tokens, SG_SNN_MAX_CONTEXT);
    sg_status st = check_ids(m, prompt, n, err);
    if (st != SG_OK || n == 0 || max_tokens == 0)
        return st; /* an empty prompt generates nothing, as the reference */
    gen g;
    if ((st = gen_setup(m, &g, n + max_tokens, err)) != SG_OK)
        return st;
    memcpy(g.ids, prompt, (size_t)n * sizeof(int32_t));
    int L = n, from = 0;
    while (*n_out < max_tokens) {
        const int32_t t = forward_step(m, &g, from, L, false);
        if (stop_at_eos && t == m->info.eos)
            break;
        out[(*n_out)++] = t;
        g.ids[L] = t;
        from = L++;
    }
    long f = 0, s = 0;
    for (int i = 0; i < g.ntasks; i++) {
        f += g.fired[i];
        s += g.sites[i];
    }
    m->firing = s ? (double)f / (double)s : 0.0;
    return SG_OK;
}

sg_status sg_snn_generate_ids(sg_snn *m, const int32_t *prompt, int n, int max_tokens,
                              bool stop_at_eos, int32_t *out, int *n_out, sg_error *err)
{
    pthread_mutex_lock(&m->lock);
    sg_status st = generate_locked(m, prompt, n, max_tokens, stop_at_eos, out, n_out, err);
    pthread_mutex_unlock(&m->lock);
    return st;
}

sg_status sg_snn_last_logits(sg_snn *m, const int32_t *ids, int n, float *logits, sg_error *err)
{
    if (n < 1 || n > SG_SNN_MAX_CONTEXT)
        return sg_error_set(err, SG_EINVAL, "need 1..%d token ids", SG_SNN_MAX_CONTEXT);
    sg_status st = check_ids(m, ids, n, err);
    if (st != SG_OK)
        return st;
    pthread_mutex_lock(&m->lock);
    gen g;
    st = gen_setup(m, &g, n, err);
    if (st == SG_OK) {
        memcpy(g.ids, ids, (size_t)n * sizeof(int32_t));
        forward_step(m, &g, 0, n, true);
        memcpy(logits, g.logits, (size_t)m->info.vocab * sizeof(float));
    }
    pthread_mutex_unlock(&m->lock);
    return st;
}

double sg_snn_last_firing(const sg_snn *m) { return m->firing; }

void sg_snn_set_shift_limit(sg_snn *m, float limit)
{
    pthread_mutex_lock(&m->lock);
    m->wide_score = limit;
    pthread_mutex_unlock(&m->lock);
}

/* ================================================================================================
 * Text in, text out
 * ============================================================================================= */

/* Invalid UTF-8 becomes U+FFFD per maximal ill-formed subsequence, as Python's
 * bytes.decode("utf-8", errors="replace") does (so the text matches the reference's decode). */
static char *utf8_sanitize(const char *s, size_t n)
{
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        const unsigned c = p[i];
        if (c < 0x80) {
            *o++ = (char)c;
            i++;
            continue;
        }
        int need = 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        }
        size_t j = i + 1;
        int got = 0;
        while (need && got < need && j < n) {
            const unsigned b = p[j];
            if (b < (got == 0 ? lo : 0x80) || b > (got == 0 ? hi : 0xBF))
                break;
            j++;
            got++;
        }
        if (need && got == need) {
            memcpy(o, p + i, j - i);
            o += j - i;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i = j;
    }
    *o = 0;
    return out;
}

void sg_snn_result_free(sg_snn_result *r)
{
    if (!r)
        return;
    free(r->text);
    free(r->tokens);
    free(r->prompt_tokens);
    memset(r, 0, sizeof *r);
}

sg_status sg_snn_generate(sg_snn *m, const char *system, const char *prompt, int max_tokens,
                          bool stop_at_eos, sg_snn_result *out, sg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!m->tok)
        return sg_error_set(err, SG_EUNSUPPORTED, "no tokenizer: put vocab.json + merges.txt or a "
                            "*.tiktoken file in the model directory, or name one (--tokenizer)");
    if (!prompt)
        prompt = "";
    if (max_tokens < 0)
        return sg_error_set(err, SG_EINVAL, "max_tokens must be >= 0");
    double t0 = sg_now_ms();
    char *full = NULL;
    if (system) {
        if (asprintf(&full, "%s\n\n%s", system, prompt) < 0)
            return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    const char *text = full ? full : prompt;
    size_t n = 0;
    int32_t *ids = NULL;
    sg_status st = sg_bpe_encode(m->tok, text, strlen(text), &ids, &n, err);
    free(full);
    if (st != SG_OK)
        return st;
    out->prompt_tokens = ids;
    out->n_prompt = (int)n;
    double t1 = sg_now_ms();
    out->tokenize_ms = t1 - t0;
    if ((long long)n + max_tokens > SG_SNN_MAX_CONTEXT) {
        sg_snn_result_free(out);
        return sg_error_set(err, SG_ETOOBIG, "a prompt of %zu tokens plus %d new tokens exceeds the "
                            "context limit of %d tokens", n, max_tokens, SG_SNN_MAX_CONTEXT);
    }
    out->tokens = malloc((size_t)(max_tokens ? max_tokens : 1) * sizeof(int32_t));
    if (!out->tokens) {
        sg_snn_result_free(out);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    st = sg_snn_generate_ids(m, ids, (int)n, max_tokens, stop_at_eos, out->tokens, &out->n_tokens, err);
    out->generate_ms = sg_now_ms() - t1;
    char *bytes = NULL;
    size_t len = 0;
    if (st == SG_OK)
        st = sg_bpe_decode(m->tok, out->tokens, (size_t)out->n_tokens, &bytes, &len, err);
    if (st == SG_OK) {
        out->text = utf8_sanitize(bytes, len);
        if (!out->text)
            st = sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    free(bytes);
    if (st != SG_OK)
        sg_snn_result_free(out);
    return st;
}

/* ================================================================================================
 * sg quantize
 * ============================================================================================= */

static sg_status copy_file(const char *from, const char *to, sg_error *err)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return sg_error_set(err, SG_EIO, "%s: %s", from, strerror(errno));
    FILE *o = fopen(to, "wb");
    if (!o) {
        fclose(in);
        return sg_error_set(err, SG_EIO, "%s: %s", to, strerror(errno));
    }
    char buf[65536];
    size_t r;
    int bad = 0;
    while ((r = fread(buf, 1, sizeof buf, in)) > 0)
        bad |= fwrite(buf, 1, r, o) != r;
    bad |= ferror(in);
    fclose(in);
    bad |= fclose(o) != 0;
    return bad ? sg_error_set(err, SG_EIO, "copying %s to %s failed", from, to) : SG_OK;
}

typedef struct qwriter {
    sg_st_out *t;
    void **owned;
    size_t n, cap;
    char **names;
} qwriter;

static sg_status qw_add(qwriter *w, const char *name, sg_dtype dt, int64_t d0, int64_t d1, void *data,
                        sg_error *err)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        sg_st_out *t = realloc(w->t, cap * sizeof *t);
        if (t)
            w->t = t;
        void **o = realloc(w->owned, cap * sizeof *o);
        if (o)
            w->owned = o;
        char **nm = realloc(w->names, cap * sizeof *nm);
        if (nm)
            w->names = nm;
        if (!t || !o || !nm) {
            free(data);
            return sg_error_set(err, SG_ENOMEM, "out of memory");
        }
        w->cap = cap;
    }
    char *nm = strdup(name);
    if (!nm) {
        free(data);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    sg_st_out *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = w->names[w->n] = nm;
    t->dtype = dt;
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->data = data;
    w->owned[w->n++] = data;
    return SG_OK;
}

static void qw_matrix(loader *l, qwriter *w, const char *name, int n, int k)
{
    int8_t *q;
    float *s;
    if (get_q8(l, name, n, k, &q, &s) != SG_OK)
        return;
    char sname[256];
    snprintf(sname, sizeof sname, "%s_scale", name);
    if ((l->st = qw_add(w, name, SG_DT_I8, n, k, q, l->err)) == SG_OK)
        l->st = qw_add(w, sname, SG_DT_F32, n, 0, s, l->err);
    else
        free(s);
}

static void qw_vector(loader *l, qwriter *w, const char *name, int n)
{
    float *v = get_f32(l, name, n, 0);
    if (v)
        l->st = qw_add(w, name, SG_DT_F32, n, 0, v, l->err);
}

sg_status sg_snn_quantize(const char *dir, const char *out_dir, sg_error *err)
{
    /* the weights are read through the loader's paths (shape checks against metadata.json, the
     * same quantisation as int8 on the fly) without building layers */
    sg_snn *m = calloc(1, sizeof *m);
    if (!m)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    pthread_mutex_init(&m->lock, NULL);
    loader l = {.m = m, .dir = dir, .prec = SG_PREC_Q8, .err = err, .st = SG_OK};
    l.st = read_meta(dir, &l.md, err);
    if (l.st == SG_OK)
        l.st = open_weights(&l);
    wview v;
    if (l.st == SG_OK && !l.md.vocab && find_tensor(&l, "embed.weight", &v) && v.ndim == 2 &&
        v.shape[0] > 0 && v.shape[0] <= MAX_VOCAB)
        l.md.vocab = (int)v.shape[0];
    if (l.st == SG_OK && !l.md.vocab)
        l.st = sg_error_set(err, SG_EINVAL, "%s: tensor 'embed.weight' not found", l.file);
    m->info.depth = 0; /* no blocks were built: sg_snn_free must not walk them */
    const int V = l.md.vocab, d = l.md.dim, hid = 2 * l.md.dim;
    qwriter w = {0};
    qw_matrix(&l, &w, "embed.weight", V, d);
    for (int i = 0; i < l.md.depth && l.st == SG_OK; i++) {
        char a[128], b[128];
#define NAME(buf, suffix) (snprintf(buf, sizeof buf, "blocks.%d.%s", i, suffix), buf)
        qw_matrix(&l, &w, NAME(a, "attn.attn.in_proj_weight"), 3 * d, d);
        qw_vector(&l, &w, NAME(b, "attn.attn.in_proj_bias"), 3 * d);
        qw_matrix(&l, &w, NAME(a, "attn.attn.out_proj.weight"), d, d);
        qw_vector(&l, &w, NAME(b, "attn.attn.out_proj.bias"), d);
        qw_vector(&l, &w, NAME(a, "attn.norm.weight"), d);
        qw_vector(&l, &w, NAME(b, "attn.norm.bias"), d);
        qw_matrix(&l, &w, NAME(a, "ff.0.weight"), hid, d);
        qw_vector(&l, &w, NAME(b, "ff.0.bias"), hid);
        qw_matrix(&l, &w, NAME(a, "ff.3.weight"), d, hid);
        qw_vector(&l, &w, NAME(b, "ff.3.bias"), d);
        qw_vector(&l, &w, NAME(a, "norm.weight"), d);
        qw_vector(&l, &w, NAME(b, "norm.bias"), d);
#undef NAME
    }
    qw_matrix(&l, &w, "head.weight", V, d);
    qw_vector(&l, &w, "head.bias", V);
    if (l.st == SG_OK && mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        l.st = sg_error_set(err, SG_EIO, "%s: %s", out_dir, strerror(errno));
    char path[4096], from[4096];
    if (l.st == SG_OK) {
        snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
        const char *meta[] = {"format", INT8_FORMAT, "quantization",
                              "int8 symmetric per row: weight = q * <name>_scale", NULL};
        l.st = sg_st_write(path, w.t, w.n, meta, err);
    }
    /* metadata and tokenizer files travel with the weights; a stale student.pt must not shadow
     * the int8 file */
    if (l.st == SG_OK) {
        snprintf(path, sizeof path, "%s/student.pt", out_dir);
        struct stat sb;
        if (stat(path, &sb) == 0)
            l.st = sg_error_set(err, SG_EINVAL, "%s exists and would be loaded instead of the int8 "
                                "model.safetensors; remove it or choose another --out", path);
    }
    DIR *dp = l.st == SG_OK ? opendir(dir) : NULL;
    for (struct dirent *e; dp && l.st == SG_OK && (e = readdir(dp));) {
        const char *nm = e->d_name;
        if (strcmp(nm, "metadata.json") && strcmp(nm, "vocab.json") && strcmp(nm, "merges.txt") &&
            !ends_with(nm, ".tiktoken"))
            continue;
        snprintf(from, sizeof from, "%s/%s", dir, nm);
        snprintf(path, sizeof path, "%s/%s", out_dir, nm);
        l.st = copy_file(from, path, err);
    }
    if (dp)
        closedir(dp);
    for (size_t i = 0; i < w.n; i++) {
        free(w.owned[i]);
        free(w.names[i]);
    }
    free(w.t);
    free(w.owned);
    free(w.names);
    sg_snn_free(m);
    return l.st;
}
