/* CLIP: config and weight loading, then the two forward passes, each readable top to bottom
 * (vision: patches -> class token + positions -> pre-LN -> pre-LN transformer blocks -> post-LN
 * on the class token -> projection; text: tokens + positions -> causal blocks -> final LN at the
 * end-of-text token -> projection). The last block of each tower computes its MLP only for the one
 * row the tower returns, which is exact and saves most of a block. */
#include "models/clip.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "media/preprocess.h"
#include "models/clip_tokenizer.h"
#include "nn/arena.h"
#include "nn/ops.h"
#include "nn/safetensors.h"
#include "nn/weights.h"

typedef enum { ACT_QUICK_GELU, ACT_GELU } clip_act;

typedef struct clip_layer {
    float *ln1_g, *ln1_b, *ln2_g, *ln2_b;
    sg_linear qkv, out, fc1, fc2; /* q, k, v fused into one [3d, d] layer */
} clip_layer;

typedef struct clip_tower {
    int width, layers, heads, inter;
    float eps;
    clip_act act;
    clip_layer *layer;
} clip_tower;

struct sg_clip {
    sg_clip_info info;
    sg_clip_preprocess_cfg pre;
    clip_tower vis, txt;
    /* vision */
    sg_linear patch;            /* conv as GEMM: [width, 3*p*p] */
    float *class_emb, *vis_pos; /* [width], [tokens, width] */
    float *pre_g, *pre_b, *post_g, *post_b;
    sg_linear vis_proj;
    /* text */
    const sg_st_tensor *tok_emb; /* rows read from the mapped file on demand */
    float *txt_pos;              /* [context, width] */
    float *final_g, *final_b;
    sg_linear txt_proj;
    sg_clip_tokenizer *tok;
    sg_st_file *file;
    sg_pool *pool;
    pthread_mutex_t lock;
    sg_arena arena;
};

/* ---- config ------------------------------------------------------------------------------- */

static sg_status tower_config(json_t *c, clip_tower *t, int width, int inter, int layers,
                              int heads, const char *what, sg_error *err)
{
    t->width = sg_json_int(c, "hidden_size", width);
    t->inter = sg_json_int(c, "intermediate_size", inter);
    t->layers = sg_json_int(c, "num_hidden_layers", layers);
    t->heads = sg_json_int(c, "num_attention_heads", heads);
    t->eps = (float)sg_json_number(c, "layer_norm_eps", 1e-5);
    json_t *act = json_object_get(c, "hidden_act");
    const char *a = json_is_string(act) ? json_string_value(act) : "quick_gelu";
    if (strcmp(a, "quick_gelu") == 0)
        t->act = ACT_QUICK_GELU;
    else if (strcmp(a, "gelu") == 0 || strcmp(a, "gelu_python") == 0)
        t->act = ACT_GELU;
    else
        return sg_error_set(err, SG_EUNSUPPORTED, "config.json: %s hidden_act \"%s\" is not supported "
                            "(quick_gelu or gelu)", what, a);
    if (t->width <= 0 || t->inter <= 0 || t->layers <= 0 || t->heads <= 0 || t->width % t->heads ||
        t->width > 16384 || t->inter > 65536 || t->layers > 256)
        return sg_error_set(err, SG_EINVAL, "config.json: implausible %s sizes (hidden %d, "
                            "intermediate %d, layers %d, heads %d)", what, t->width, t->inter,
                            t->layers, t->heads);
    return SG_OK;
}

static json_t *sub_config(json_t *root, const char *name)
{
    json_t *c = json_object_get(root, name);
    if (!json_is_object(c)) {
        char alt[64];
        snprintf(alt, sizeof alt, "%s_dict", name); /* older transformers configs */
        c = json_object_get(root, alt);
    }
    return json_is_object(c) ? c : NULL;
}

static void preprocessor_config(const char *dir, sg_clip *m)
{
    sg_clip_preprocess_defaults(&m->pre);
    m->pre.shortest_edge = m->pre.crop_w = m->pre.crop_h = m->info.image_size;
    char path[4096];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    json_t *p = json_load_file(path, 0, NULL);
    if (!p)
        return; /* optional: CLIP's defaults at the model's image size */
    json_t *size = json_object_get(p, "size");
    if (json_is_object(size))
        m->pre.shortest_edge = sg_json_int(size, "shortest_edge", m->pre.shortest_edge);
    else if (json_is_integer(size))
        m->pre.shortest_edge = (int)json_integer_value(size);
    json_t *crop = json_object_get(p, "crop_size");
    if (json_is_object(crop)) {
        m->pre.crop_h = sg_json_int(crop, "height", m->pre.crop_h);
        m->pre.crop_w = sg_json_int(crop, "width", m->pre.crop_w);
    } else if (json_is_integer(crop)) {
        m->pre.crop_h = m->pre.crop_w = (int)json_integer_value(crop);
    }
    json_t *mean = json_object_get(p, "image_mean"), *std = json_object_get(p, "image_std");
    for (int c = 0; c < 3; c++) {
        if (json_is_number(json_array_get(mean, (size_t)c)))
            m->pre.mean[c] = (float)json_number_value(json_array_get(mean, (size_t)c));
        if (json_is_number(json_array_get(std, (size_t)c)))
            m->pre.std[c] = (float)json_number_value(json_array_get(std, (size_t)c));
    }
    json_decref(p);
}

/* ---- weights ------------------------------------------------------------------------------ */

/* A 1-d or 2-d tensor through the shared loader (nn/weights.h). */
static float *get(sg_weights *w, const char *name, int ndim, int64_t d0, int64_t d1)
{
    return sg_weights_get(w, name, ndim, (const int64_t[]){d0, d1});
}

static void load_tower(sg_weights *l, clip_tower *t, const char *tower)
{
    t->layer = calloc((size_t)t->layers, sizeof *t->layer);
    if (!t->layer) {
        l->st = sg_error_set(l->err, SG_ENOMEM, "out of memory");
        return;
    }
    int d = t->width;
    for (int i = 0; i < t->layers && l->st == SG_OK; i++) {
        clip_layer *L = &t->layer[i];
        char p[128], a[192];
        snprintf(p, sizeof p, "%s.encoder.layers.%d", tower, i);
#define NAME(buf, suffix) (snprintf(buf, sizeof buf, "%s.%s", p, suffix), buf)
        L->ln1_g = get(l, NAME(a, "layer_norm1.weight"), 1, d, 0);
        L->ln1_b = get(l, NAME(a, "layer_norm1.bias"), 1, d, 0);
        L->ln2_g = get(l, NAME(a, "layer_norm2.weight"), 1, d, 0);
        L->ln2_b = get(l, NAME(a, "layer_norm2.bias"), 1, d, 0);
        /* q, k, v fused into one [3d, d] layer so one GEMM produces the attention input */
        sg_weights_qkv(l, &L->qkv, NAME(a, "self_attn"), d, true);
        sg_weights_linear(l, &L->out, NAME(a, "self_attn.out_proj"), true, d, d);
        sg_weights_linear(l, &L->fc1, NAME(a, "mlp.fc1"), true, t->inter, d);
        sg_weights_linear(l, &L->fc2, NAME(a, "mlp.fc2"), true, d, t->inter);
#undef NAME
    }
}

static void free_tower(clip_tower *t)
{
    for (int i = 0; t->layer && i < t->layers; i++) {
        clip_layer *L = &t->layer[i];
        free(L->ln1_g);
        free(L->ln1_b);
        free(L->ln2_g);
        free(L->ln2_b);
        sg_linear_free(&L->qkv);
        sg_linear_free(&L->out);
        sg_linear_free(&L->fc1);
        sg_linear_free(&L->fc2);
    }
    free(t->layer);
    t->layer = NULL;
}

void sg_clip_free(sg_clip *m)
{
    if (!m)
        return;
    free_tower(&m->vis);
    free_tower(&m->txt);
    sg_linear_free(&m->patch);
    sg_linear_free(&m->vis_proj);
    sg_linear_free(&m->txt_proj);
    free(m->class_emb);
    free(m->vis_pos);
    free(m->pre_g);
    free(m->pre_b);
    free(m->post_g);
    free(m->post_b);
    free(m->txt_pos);
    free(m->final_g);
    free(m->final_b);
    sg_clip_tokenizer_free(m->tok);
    sg_st_close(m->file);
    sg_arena_free(&m->arena);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Scratch for one forward pass of a tower with `rows` tokens. */
static size_t tower_scratch(const clip_tower *t, int rows, int extra_k, int nthreads)
{
    size_t d = (size_t)t->width, r = (size_t)rows;
    size_t floats = r * d * 3           /* x, h, attention output */
                    + r * 3 * d         /* qkv */
                    + r * (size_t)t->inter + (size_t)extra_k * r;
    size_t lin = sg_linear_scratch_bytes(&t->layer[0].fc2, rows);
    size_t lin2 = sg_linear_scratch_bytes(&t->layer[0].qkv, rows);
    if (lin2 > lin)
        lin = lin2;
    return floats * sizeof(float) + lin + sg_attention_scratch_bytes(rows, t->width, t->heads, nthreads) + 64 * 16;
}

sg_clip *sg_clip_load(const char *dir, sg_precision prec, sg_pool *pool, sg_error *err)
{
    char path[4096];
    sg_clip *m = calloc(1, sizeof *m);
    if (!m) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->pool = pool;
    m->info.precision = prec;
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        sg_error_set(err, SG_EIO, "%s: %s", path, je.text);
        sg_clip_free(m);
        return NULL;
    }
    json_t *vc = sub_config(root, "vision_config"), *tc = sub_config(root, "text_config");
    json_t *empty = json_object();
    sg_status st = tower_config(vc ? vc : empty, &m->vis, 768, 3072, 12, 12, "vision", err);
    if (st == SG_OK)
        st = tower_config(tc ? tc : empty, &m->txt, 512, 2048, 12, 8, "text", err);
    m->info.image_size = sg_json_int(vc ? vc : empty, "image_size", 224);
    m->info.patch_size = sg_json_int(vc ? vc : empty, "patch_size", 32);
    m->info.context = sg_json_int(tc ? tc : empty, "max_position_embeddings", 77);
    m->info.vocab = sg_json_int(tc ? tc : empty, "vocab_size", 49408);
    m->info.embed_dim = sg_json_int(root, "projection_dim", 512);
    float logit_init = (float)sg_json_number(root, "logit_scale_init_value", 2.6592);
    json_decref(empty);
    json_decref(root);
    int S = m->info.image_size, P = m->info.patch_size;
    if (st == SG_OK && (P <= 0 || S <= 0 || S % P || S / P > 256 || m->info.context < 2 ||
                        m->info.context > 4096 || m->info.vocab < 2 || m->info.embed_dim <= 0 ||
                        m->info.embed_dim > 16384))
        st = sg_error_set(err, SG_EINVAL, "config.json: implausible image_size %d / patch_size %d / "
                          "context %d / vocab %d / projection_dim %d", S, P, m->info.context,
                          m->info.vocab, m->info.embed_dim);
    if (st != SG_OK) {
        sg_clip_free(m);
        return NULL;
    }
    m->info.vision_width = m->vis.width;
    m->info.vision_layers = m->vis.layers;
    m->info.vision_heads = m->vis.heads;
    m->info.text_width = m->txt.width;
    m->info.text_layers = m->txt.layers;
    m->info.text_heads = m->txt.heads;
    preprocessor_config(dir, m);

    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    m->file = sg_st_open(path, err);
    if (!m->file) {
        sg_clip_free(m);
        return NULL;
    }
    sg_weights l = {m->file, prec, err, SG_OK, 0};
    int dv = m->vis.width, dt = m->txt.width, np = (S / P) * (S / P), E = m->info.embed_dim;
    /* vision embeddings: the conv's [width, 3, P, P] weight is the GEMM's [width, 3*P*P]. It stays
     * F32 at every precision (as PyTorch's dynamic quantisation leaves convolutions alone): pixel
     * patches carry a large common offset, so per-row int8 activations lose the small differences
     * between patches that the rest of the network amplifies (int8 here cost 0.93-0.99 embedding
     * cosine on the tiny test model; ~5% of the FLOPs). */
    float *patch = sg_weights_get(&l, "vision_model.embeddings.patch_embedding.weight", 4,
                                  (const int64_t[]){dv, 3, P, P});
    sg_weights_linear_from(&l, &m->patch, patch, NULL, dv, 3 * P * P, SG_PREC_F32);
    m->class_emb = get(&l, "vision_model.embeddings.class_embedding", 1, dv, 0);
    m->vis_pos = get(&l, "vision_model.embeddings.position_embedding.weight", 2, np + 1, dv);
    m->pre_g = get(&l, "vision_model.pre_layrnorm.weight", 1, dv, 0);
    m->pre_b = get(&l, "vision_model.pre_layrnorm.bias", 1, dv, 0);
    load_tower(&l, &m->vis, "vision_model");
    m->post_g = get(&l, "vision_model.post_layernorm.weight", 1, dv, 0);
    m->post_b = get(&l, "vision_model.post_layernorm.bias", 1, dv, 0);
    sg_weights_linear(&l, &m->vis_proj, "visual_projection", false, E, dv);
    /* text */
    if (l.st == SG_OK) {
        m->tok_emb = sg_st_find(m->file, "text_model.embeddings.token_embedding.weight");
        if (!m->tok_emb)
            l.st = sg_error_set(err, SG_EINVAL, "tensor 'text_model.embeddings.token_embedding.weight' "
                                "not found in %s", path);
        else if (m->tok_emb->ndim != 2 || m->tok_emb->shape[0] != m->info.vocab ||
                 m->tok_emb->shape[1] != dt ||
                 !(m->tok_emb->dtype == SG_DT_F32 || m->tok_emb->dtype == SG_DT_F16 ||
                   m->tok_emb->dtype == SG_DT_BF16))
            l.st = sg_error_set(err, SG_EINVAL, "tensor 'text_model.embeddings.token_embedding.weight' "
                                "must be F32/F16/BF16 [%d, %d]", m->info.vocab, dt);
    }
    m->txt_pos = get(&l, "text_model.embeddings.position_embedding.weight", 2, m->info.context, dt);
    load_tower(&l, &m->txt, "text_model");
    m->final_g = get(&l, "text_model.final_layer_norm.weight", 1, dt, 0);
    m->final_b = get(&l, "text_model.final_layer_norm.bias", 1, dt, 0);
    sg_weights_linear(&l, &m->txt_proj, "text_projection", false, E, dt);
    m->info.logit_scale = logit_init;
    if (l.st == SG_OK) {
        const sg_st_tensor *ls = sg_st_find(m->file, "logit_scale");
        if (ls && sg_st_numel(ls) == 1)
            sg_dtype_to_f32(ls->dtype, ls->data, 1, &m->info.logit_scale);
    }
    if (l.st == SG_OK) {
        m->tok = sg_clip_tokenizer_load_dir(dir, err);
        if (!m->tok)
            l.st = err ? err->code : SG_EINVAL;
    }
    if (l.st == SG_OK) {
        int nthreads = sg_pool_size(pool);
        size_t need = tower_scratch(&m->vis, np + 1, 3 * P * P, nthreads);
        size_t need_t = tower_scratch(&m->txt, m->info.context, 0, nthreads);
        if (sg_arena_init(&m->arena, need > need_t ? need : need_t) != 0)
            l.st = sg_error_set(err, SG_ENOMEM, "out of memory for scratch");
    }
    if (l.st != SG_OK) {
        sg_clip_free(m);
        return NULL;
    }
    m->info.weight_bytes = l.bytes;
    return m;
}

const sg_clip_info *sg_clip_get_info(const sg_clip *m) { return &m->info; }

int sg_clip_min_short_side(const sg_clip *m) { return m->pre.shortest_edge; }

/* ---- forward ------------------------------------------------------------------------------ */

static void activate(const clip_tower *t, float *x, long n)
{
    if (t->act == ACT_QUICK_GELU)
        sg_quick_gelu(x, n);
    else
        sg_gelu_erf(x, n);
}

/* Runs the blocks on x[rows][width] in place. The last block finishes only row `keep` (its
 * attention still sees every row), and leaves that row's result in x[keep]. */
static void run_tower(sg_clip *m, const clip_tower *t, float *x, int rows, bool causal, int keep,
                      sg_arena *a)
{
    int d = t->width;
    float *h = sg_arena_alloc(a, (size_t)rows * d * sizeof(float));
    float *qkv = sg_arena_alloc(a, (size_t)rows * 3 * d * sizeof(float));
    float *att = sg_arena_alloc(a, (size_t)rows * d * sizeof(float));
    float *mlp = sg_arena_alloc(a, (size_t)rows * t->inter * sizeof(float));
    for (int i = 0; i < t->layers; i++) {
        const clip_layer *L = &t->layer[i];
        bool last = i == t->layers - 1;
        sg_layernorm(x, h, rows, d, L->ln1_g, L->ln1_b, t->eps);
        sg_linear_forward(&L->qkv, h, rows, d, qkv, 3 * d, m->pool, a);
        sg_attention(qkv, att, rows, d, t->heads, causal, m->pool, a);
        int r0 = last ? keep : 0, n = last ? 1 : rows; /* rows still needed after attention */
        float *xr = x + (size_t)r0 * d;
        sg_linear_forward(&L->out, att + (size_t)r0 * d, n, d, h, d, m->pool, a);
        sg_add(xr, h, (long)n * d);
        sg_layernorm(xr, h, n, d, L->ln2_g, L->ln2_b, t->eps);
        sg_linear_forward(&L->fc1, h, n, d, mlp, t->inter, m->pool, a);
        activate(t, mlp, (long)n * t->inter);
        sg_linear_forward(&L->fc2, mlp, n, t->inter, h, d, m->pool, a);
        sg_add(xr, h, (long)n * d);
    }
}

sg_status sg_clip_encode_pixels(sg_clip *m, const float *chw, float *emb, sg_error *err)
{
    (void)err;
    const int S = m->info.image_size, P = m->info.patch_size, g = S / P, np = g * g;
    const int d = m->vis.width, kp = 3 * P * P, rows = np + 1;
    pthread_mutex_lock(&m->lock);
    sg_arena *a = &m->arena;
    sg_arena_reset(a);
    float *patches = sg_arena_alloc(a, (size_t)np * kp * sizeof(float));
    float *x = sg_arena_alloc(a, (size_t)rows * d * sizeof(float));
    /* patch embedding: each P x P x 3 patch (channel, row, column order, as the conv weight) is a
     * row of a GEMM with the flattened kernel */
    for (int py = 0; py < g; py++)
        for (int px = 0; px < g; px++) {
            float *row = patches + (size_t)(py * g + px) * kp;
            for (int c = 0; c < 3; c++)
                for (int ky = 0; ky < P; ky++)
                    memcpy(row + (c * P + ky) * P, chw + ((size_t)c * S + py * P + ky) * S + px * P,
                           (size_t)P * sizeof(float));
        }
    sg_linear_forward(&m->patch, patches, np, kp, x + d, d, m->pool, a);
    memcpy(x, m->class_emb, (size_t)d * sizeof(float));
    sg_add(x, m->vis_pos, (long)rows * d);
    sg_layernorm(x, x, rows, d, m->pre_g, m->pre_b, m->vis.eps);
    run_tower(m, &m->vis, x, rows, false, 0, a);
    sg_layernorm(x, x, 1, d, m->post_g, m->post_b, m->vis.eps);
    sg_linear_forward(&m->vis_proj, x, 1, d, emb, m->info.embed_dim, m->pool, a);
    pthread_mutex_unlock(&m->lock);
    return SG_OK;
}

sg_status sg_clip_encode_image(sg_clip *m, const sg_image *img, float *emb, sg_error *err)
{
    const int S = m->info.image_size;
    if (m->pre.crop_w != S || m->pre.crop_h != S)
        return sg_error_set(err, SG_EINVAL, "preprocessor crop %dx%d does not match image_size %d",
                            m->pre.crop_w, m->pre.crop_h, S);
    float *chw = malloc((size_t)3 * S * S * sizeof(float));
    if (!chw)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    sg_status st = sg_clip_preprocess(img, &m->pre, chw, err);
    if (st == SG_OK)
        st = sg_clip_encode_pixels(m, chw, emb, err);
    free(chw);
    return st;
}

int sg_clip_count_tokens(const sg_clip *m, const char *text, sg_error *err)
{
    int32_t *ids = malloc(4096 * sizeof *ids);
    if (!ids) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return -1;
    }
    int n = sg_clip_tokenize(m->tok, text, ids, 4096, err);
    free(ids);
    return n;
}

sg_status sg_clip_encode_text(sg_clip *m, const char *text, float *emb, sg_error *err)
{
    const int d = m->txt.width, ctx = m->info.context;
    int32_t ids[4096];
    int n = sg_clip_tokenize(m->tok, text, ids, ctx < 4096 ? ctx : 4096, err);
    if (n < 0)
        return err ? err->code : SG_EINVAL;
    /* pooled output: the first position of the highest id (the end-of-text token); the causal
     * mask makes every later position irrelevant, so the tower runs on ids[0..eot] only */
    int eot = 0;
    for (int i = 1; i < n; i++)
        if (ids[i] > ids[eot])
            eot = i;
    int rows = eot + 1;
    for (int i = 0; i < rows; i++)
        if (ids[i] < 0 || ids[i] >= m->info.vocab)
            return sg_error_set(err, SG_EINVAL, "token id %d outside the vocabulary of %d", ids[i],
                                m->info.vocab);
    pthread_mutex_lock(&m->lock);
    sg_arena *a = &m->arena;
    sg_arena_reset(a);
    float *x = sg_arena_alloc(a, (size_t)rows * d * sizeof(float));
    size_t row_bytes = (size_t)d * sg_dtype_size(m->tok_emb->dtype);
    for (int i = 0; i < rows; i++)
        sg_dtype_to_f32(m->tok_emb->dtype, (const char *)m->tok_emb->data + (size_t)ids[i] * row_bytes,
                        (size_t)d, x + (size_t)i * d);
    sg_add(x, m->txt_pos, (long)rows * d);
    run_tower(m, &m->txt, x, rows, true, eot, a);
    float *xe = x + (size_t)eot * d;
    sg_layernorm(xe, xe, 1, d, m->final_g, m->final_b, m->txt.eps);
    sg_linear_forward(&m->txt_proj, xe, 1, d, emb, m->info.embed_dim, m->pool, a);
    pthread_mutex_unlock(&m->lock);
    return SG_OK;
}

void sg_clip_normalize(float *v, int dim)
{
    double s = 0;
    for (int i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    for (int i = 0; i < dim; i++)
        v[i] *= inv;
}

void sg_clip_zero_shot(const sg_clip *m, const float *img, const float *labels, int n, float *probs)
{
    const int E = m->info.embed_dim;
    float scale = expf(m->info.logit_scale);
    if (scale > 100.0f)
        scale = 100.0f; /* CLIP clamps the learned temperature at 100 */
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        double dot = 0;
        for (int j = 0; j < E; j++)
            dot += (double)img[j] * labels[(size_t)i * E + j];
        probs[i] = scale * (float)dot;
        if (probs[i] > mx)
            mx = probs[i];
    }
    double sum = 0;
    for (int i = 0; i < n; i++) {
        probs[i] = expf(probs[i] - mx);
        sum += probs[i];
    }
    for (int i = 0; i < n; i++)
        probs[i] = (float)(probs[i] / sum);
}
