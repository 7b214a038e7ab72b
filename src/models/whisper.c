/* Whisper: config and weight loading, the encoder (convolutions as GEMMs over im2col rows, then
 * pre-LN blocks), the decoder one step at a time (self-attention keys/values cached per position,
 * cross-attention keys/values computed once per window), and greedy decoding with
 * openai/whisper's token rules (decoding.py: SuppressBlanks, SuppressTokens, GreedyDecoder). */
#include "models/whisper.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "nn/arena.h"
#include "nn/ops.h"
#include "nn/safetensors.h"
#include "nn/weights.h"

#define LN_EPS 1e-5f

typedef struct wh_attn {
    sg_linear q, k, v, out; /* k has no bias */
} wh_attn;

typedef struct wh_layer {
    float *ln1_g, *ln1_b, *lnx_g, *lnx_b, *ln2_g, *ln2_b;
    sg_linear qkv;      /* encoder only: q, k, v fused ([3d, d], zero k bias) */
    wh_attn self, cross; /* decoder only (self.out is also the encoder's out projection) */
    sg_linear fc1, fc2;
} wh_layer;

struct sg_whisper {
    sg_whisper_info info;
    sg_linear conv1, conv2; /* [d, n_mels*3], [d, d*3]: im2col rows in (channel, tap) order */
    float *conv1_b, *conv2_b, *enc_pos, *enc_ln_g, *enc_ln_b;
    wh_layer *enc, *dec;
    const sg_st_tensor *tok_emb; /* rows read from the mapped file on demand */
    float *dec_pos, *dec_ln_g, *dec_ln_b;
    sg_linear logits; /* the tied embedding as a [vocab, d] layer */
    int32_t *suppress, *begin_suppress;
    int n_suppress, n_begin_suppress;
    /* per-window state */
    /* keys are kept transposed and pre-scaled (K^T / sqrt(head_dim), [layer][d][ctx]) so that
     * attention scores are one GEMM per head; values are [layer][ctx][d] */
    float *kx, *vx;  /* cross keys/values, ctx = n_audio_ctx */
    float *ks, *vs;  /* self keys/values, ctx = n_text_ctx */
    int n_src;       /* encoded positions of the current window (0 = none) */
    float *scores;   /* [heads][ATT_ROWS][max(n_audio_ctx, n_text_ctx)] */
    sg_st_file *file;
    sg_pool *pool;
    pthread_mutex_t lock;
    sg_arena arena;
};

/* ---- config ------------------------------------------------------------------------------- */

static int32_t *cfg_ids(json_t *o, const char *key, int *n)
{
    json_t *a = json_object_get(o, key);
    *n = 0;
    if (!json_is_array(a) || json_array_size(a) == 0)
        return NULL;
    int32_t *ids = malloc(json_array_size(a) * sizeof *ids);
    if (!ids)
        return NULL;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (json_is_integer(json_array_get(a, i)))
            ids[(*n)++] = (int32_t)json_integer_value(json_array_get(a, i));
    return ids;
}

/* ---- weights ------------------------------------------------------------------------------ */

/* A tensor of up to three dimensions through the shared loader (nn/weights.h). */
static float *get(sg_weights *w, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2)
{
    return sg_weights_get(w, name, ndim, (const int64_t[]){d0, d1, d2});
}

static void get_attn(sg_weights *l, wh_attn *A, const char *prefix, int d)
{
    char p[200];
    if (strlen(prefix) > 180) {
        l->st = sg_error_set(l->err, SG_EINVAL, "tensor name too long");
        return;
    }
    snprintf(p, sizeof p, "%.180s.q_proj", prefix);
    sg_weights_linear(l, &A->q, p, true, d, d);
    snprintf(p, sizeof p, "%.180s.k_proj", prefix);
    sg_weights_linear(l, &A->k, p, false, d, d);
    snprintf(p, sizeof p, "%.180s.v_proj", prefix);
    sg_weights_linear(l, &A->v, p, true, d, d);
    snprintf(p, sizeof p, "%.180s.out_proj", prefix);
    sg_weights_linear(l, &A->out, p, true, d, d);
}

static wh_layer *load_layers(sg_weights *l, int d, const char *stack, int n, int ffn, bool decoder)
{
    wh_layer *layers = calloc((size_t)n, sizeof *layers);
    if (!layers) {
        l->st = sg_error_set(l->err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n && l->st == SG_OK; i++) {
        wh_layer *L = &layers[i];
        char p[128], a[192];
#define NAME(suffix) (snprintf(a, sizeof a, "%s.%s", p, suffix), a)
        snprintf(p, sizeof p, "model.%s.layers.%d", stack, i);
        L->ln1_g = get(l, NAME("self_attn_layer_norm.weight"), 1, d, 0, 0);
        L->ln1_b = get(l, NAME("self_attn_layer_norm.bias"), 1, d, 0, 0);
        L->ln2_g = get(l, NAME("final_layer_norm.weight"), 1, d, 0, 0);
        L->ln2_b = get(l, NAME("final_layer_norm.bias"), 1, d, 0, 0);
        if (decoder) {
            get_attn(l, &L->self, NAME("self_attn"), d);
            get_attn(l, &L->cross, NAME("encoder_attn"), d);
            L->lnx_g = get(l, NAME("encoder_attn_layer_norm.weight"), 1, d, 0, 0);
            L->lnx_b = get(l, NAME("encoder_attn_layer_norm.bias"), 1, d, 0, 0);
        } else {
            sg_weights_qkv(l, &L->qkv, NAME("self_attn"), d, false); /* k has no bias */
            sg_weights_linear(l, &L->self.out, NAME("self_attn.out_proj"), true, d, d);
        }
        sg_weights_linear(l, &L->fc1, NAME("fc1"), true, ffn, d);
        sg_weights_linear(l, &L->fc2, NAME("fc2"), true, d, ffn);
#undef NAME
    }
    return layers;
}

static void free_attn(wh_attn *A)
{
    sg_linear_free(&A->q);
    sg_linear_free(&A->k);
    sg_linear_free(&A->v);
    sg_linear_free(&A->out);
}

static void free_layers(wh_layer *layers, int n)
{
    for (int i = 0; layers && i < n; i++) {
        wh_layer *L = &layers[i];
        free(L->ln1_g);
        free(L->ln1_b);
        free(L->ln2_g);
        free(L->ln2_b);
        free(L->lnx_g);
        free(L->lnx_b);
        sg_linear_free(&L->qkv);
        free_attn(&L->self);
        free_attn(&L->cross);
        sg_linear_free(&L->fc1);
        sg_linear_free(&L->fc2);
    }
    free(layers);
}

void sg_whisper_free(sg_whisper *m)
{
    if (!m)
        return;
    free_layers(m->enc, m->info.enc_layers);
    free_layers(m->dec, m->info.dec_layers);
    sg_linear_free(&m->conv1);
    sg_linear_free(&m->conv2);
    sg_linear_free(&m->logits);
    free(m->conv1_b);
    free(m->conv2_b);
    free(m->enc_pos);
    free(m->enc_ln_g);
    free(m->enc_ln_b);
    free(m->dec_pos);
    free(m->dec_ln_g);
    free(m->dec_ln_b);
    free(m->suppress);
    free(m->begin_suppress);
    free(m->kx);
    free(m->vx);
    free(m->ks);
    free(m->vs);
    free(m->scores);
    sg_st_close(m->file);
    sg_arena_free(&m->arena);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Arena bytes for the encoder on the full context (the decoder needs far less). */
static size_t scratch_bytes(const sg_whisper *m, int nthreads)
{
    const sg_whisper_info *I = &m->info;
    size_t T = (size_t)I->n_audio_ctx, F = 2 * T, d = (size_t)I->d_model;
    size_t conv = F * (size_t)I->n_mels * 3 + F * d + T * d * 3; /* im2col, conv1 out, conv2 im2col */
    size_t blocks = T * d * 3 + T * 3 * d + T * (size_t)max_sz(I->enc_ffn, I->dec_ffn); /* x,h,att,qkv,mlp */
    size_t lin = 0;
    const wh_layer *L = &m->enc[0];
    lin = max_sz(lin, sg_linear_scratch_bytes(&L->qkv, (int)T));
    lin = max_sz(lin, sg_linear_scratch_bytes(&L->fc2, (int)T));
    lin = max_sz(lin, sg_linear_scratch_bytes(&m->dec[0].cross.k, (int)T));
    lin = max_sz(lin, sg_linear_scratch_bytes(&m->dec[0].fc2, (int)I->n_text_ctx));
    return (conv + blocks) * sizeof(float) + lin +
           sg_attention_scratch_bytes((int)T, (int)d, I->enc_heads, nthreads) + 64 * 32;
}

sg_whisper *sg_whisper_load(const char *dir, sg_precision prec, sg_pool *pool, sg_error *err)
{
    char path[4096];
    sg_whisper *m = calloc(1, sizeof *m);
    if (!m) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->pool = pool;
    sg_whisper_info *I = &m->info;
    I->precision = prec;
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    if (!c) {
        sg_error_set(err, SG_EIO, "%s: %s", path, je.text);
        sg_whisper_free(m);
        return NULL;
    }
    I->d_model = sg_json_int(c, "d_model", 0);
    I->enc_layers = sg_json_int(c, "encoder_layers", 0);
    I->dec_layers = sg_json_int(c, "decoder_layers", 0);
    I->enc_heads = sg_json_int(c, "encoder_attention_heads", 0);
    I->dec_heads = sg_json_int(c, "decoder_attention_heads", 0);
    I->enc_ffn = sg_json_int(c, "encoder_ffn_dim", 4 * I->d_model);
    I->dec_ffn = sg_json_int(c, "decoder_ffn_dim", 4 * I->d_model);
    I->n_mels = sg_json_int(c, "num_mel_bins", 80);
    I->n_audio_ctx = sg_json_int(c, "max_source_positions", 1500);
    I->n_text_ctx = sg_json_int(c, "max_target_positions", 448);
    I->vocab = sg_json_int(c, "vocab_size", 0);
    I->sot = sg_json_int(c, "decoder_start_token_id", -1);
    I->eot = sg_json_int(c, "eos_token_id", -1);
    I->no_timestamps = sg_json_int(c, "no_timestamps_token_id", -1);
    m->suppress = cfg_ids(c, "suppress_tokens", &m->n_suppress);
    m->begin_suppress = cfg_ids(c, "begin_suppress_tokens", &m->n_begin_suppress);
    json_t *act = json_object_get(c, "activation_function");
    bool gelu = !json_is_string(act) || strcmp(json_string_value(act), "gelu") == 0;
    json_decref(c);
    if (I->no_timestamps < 0) {
        /* not in older configs: the .en vocabularies have it at 50362, multilingual one later */
        I->no_timestamps = I->vocab == 51864 ? 50362 : I->vocab >= 51865 ? I->vocab - 1501 : -1;
    }
    I->translate = I->no_timestamps - 5;
    I->transcribe = I->no_timestamps - 4;
    I->sot_lm = I->no_timestamps - 3;
    I->sot_prev = I->no_timestamps - 2;
    I->no_speech = I->no_timestamps - 1;
    sg_status st = SG_OK;
    if (!gelu)
        st = sg_error_set(err, SG_EUNSUPPORTED, "config.json: activation_function must be gelu");
    else if (I->d_model <= 0 || I->d_model > 8192 || I->enc_layers <= 0 || I->enc_layers > 128 ||
             I->dec_layers <= 0 || I->dec_layers > 128 || I->enc_heads <= 0 ||
             I->d_model % I->enc_heads || I->dec_heads <= 0 || I->d_model % I->dec_heads ||
             I->enc_ffn <= 0 || I->enc_ffn > 65536 || I->dec_ffn <= 0 || I->dec_ffn > 65536 ||
             I->n_mels <= 0 || I->n_mels > 1024 || I->n_audio_ctx <= 0 || I->n_audio_ctx > 100000 ||
             I->n_text_ctx < 4 || I->n_text_ctx > 100000 || I->vocab <= 0)
        st = sg_error_set(err, SG_EINVAL, "config.json: implausible Whisper sizes (d_model %d, "
                          "layers %d+%d, heads %d/%d, mels %d, contexts %d/%d, vocab %d)",
                          I->d_model, I->enc_layers, I->dec_layers, I->enc_heads, I->dec_heads,
                          I->n_mels, I->n_audio_ctx, I->n_text_ctx, I->vocab);
    else if (I->sot < 0 || I->sot >= I->vocab || I->eot < 0 || I->eot >= I->vocab ||
             I->no_timestamps < 5 || I->no_timestamps >= I->vocab)
        st = sg_error_set(err, SG_EINVAL, "config.json: special token ids (decoder_start_token_id "
                          "%d, eos_token_id %d, no_timestamps_token_id %d) outside the vocabulary "
                          "of %d", I->sot, I->eot, I->no_timestamps, I->vocab);
    for (int i = 0; st == SG_OK && i < m->n_suppress; i++)
        if (m->suppress[i] < -1 || m->suppress[i] >= I->vocab)
            st = sg_error_set(err, SG_EINVAL, "config.json: suppress_tokens id %d out of range",
                              m->suppress[i]);
    for (int i = 0; st == SG_OK && i < m->n_begin_suppress; i++)
        if (m->begin_suppress[i] < 0 || m->begin_suppress[i] >= I->vocab)
            st = sg_error_set(err, SG_EINVAL, "config.json: begin_suppress_tokens id %d out of range",
                              m->begin_suppress[i]);
    if (st != SG_OK) {
        sg_whisper_free(m);
        return NULL;
    }

    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    m->file = sg_st_open(path, err);
    if (!m->file) {
        sg_whisper_free(m);
        return NULL;
    }
    sg_weights l = {m->file, prec, err, SG_OK, 0};
    const int d = I->d_model;
    /* convolutions stay F32 at every precision (the log-mel input, like CLIP's pixels, carries
     * a large common offset that per-row int8 activations would flatten); the [d, c, 3] weight is
     * the GEMM's [d, c*3] */
    sg_weights_linear_from(&l, &m->conv1, get(&l, "model.encoder.conv1.weight", 3, d, I->n_mels, 3),
                           NULL, d, I->n_mels * 3, SG_PREC_F32);
    m->conv1_b = get(&l, "model.encoder.conv1.bias", 1, d, 0, 0);
    sg_weights_linear_from(&l, &m->conv2, get(&l, "model.encoder.conv2.weight", 3, d, d, 3), NULL, d,
                           d * 3, SG_PREC_F32);
    m->conv2_b = get(&l, "model.encoder.conv2.bias", 1, d, 0, 0);
    m->enc_pos = get(&l, "model.encoder.embed_positions.weight", 2, I->n_audio_ctx, d, 0);
    m->enc = load_layers(&l, d, "encoder", I->enc_layers, I->enc_ffn, false);
    m->enc_ln_g = get(&l, "model.encoder.layer_norm.weight", 1, d, 0, 0);
    m->enc_ln_b = get(&l, "model.encoder.layer_norm.bias", 1, d, 0, 0);
    const char *emb = "model.decoder.embed_tokens.weight";
    if (l.st == SG_OK) {
        m->tok_emb = sg_st_find(m->file, emb);
        if (!m->tok_emb)
            l.st = sg_error_set(err, SG_EINVAL, "tensor '%s' not found in %s", emb, path);
        else if (m->tok_emb->ndim != 2 || m->tok_emb->shape[0] != I->vocab || m->tok_emb->shape[1] != d ||
                 !(m->tok_emb->dtype == SG_DT_F32 || m->tok_emb->dtype == SG_DT_F16 ||
                   m->tok_emb->dtype == SG_DT_BF16))
            l.st = sg_error_set(err, SG_EINVAL, "tensor '%s' must be F32/F16/BF16 [%d, %d]", emb,
                                I->vocab, d);
    }
    if (l.st == SG_OK) { /* not released: embedding rows are read from the mapping per token */
        int64_t shape[2] = {I->vocab, d};
        float *w = sg_st_get_f32(m->file, emb, 2, shape, err);
        if (!w)
            l.st = err->code ? err->code : SG_EINVAL;
        else
            l.bytes += (size_t)I->vocab * d * sizeof(float); /* handed over below */
        sg_weights_linear_from(&l, &m->logits, w, NULL, I->vocab, d, prec);
    }
    m->dec_pos = get(&l, "model.decoder.embed_positions.weight", 2, I->n_text_ctx, d, 0);
    m->dec = load_layers(&l, d, "decoder", I->dec_layers, I->dec_ffn, true);
    m->dec_ln_g = get(&l, "model.decoder.layer_norm.weight", 1, d, 0, 0);
    m->dec_ln_b = get(&l, "model.decoder.layer_norm.bias", 1, d, 0, 0);
    if (l.st == SG_OK) {
        size_t xs = (size_t)I->dec_layers * I->n_audio_ctx * d, ss = (size_t)I->dec_layers * I->n_text_ctx * d;
        int heads = I->dec_heads > I->enc_heads ? I->dec_heads : I->enc_heads;
        m->kx = malloc(xs * sizeof(float));
        m->vx = malloc(xs * sizeof(float));
        m->ks = malloc(ss * sizeof(float));
        m->vs = malloc(ss * sizeof(float));
        m->scores = malloc((size_t)heads * 4 /* ATT_ROWS */ * max_sz((size_t)I->n_audio_ctx, (size_t)I->n_text_ctx) *
                           sizeof(float));
        if (!m->kx || !m->vx || !m->ks || !m->vs || !m->scores ||
            sg_arena_init(&m->arena, scratch_bytes(m, sg_pool_size(pool))) != 0)
            l.st = sg_error_set(err, SG_ENOMEM, "out of memory for the decoder caches and scratch");
    }
    if (l.st != SG_OK) {
        sg_whisper_free(m);
        return NULL;
    }
    m->info.weight_bytes = l.bytes;
    return m;
}

const sg_whisper_info *sg_whisper_get_info(const sg_whisper *m) { return &m->info; }

/* ---- attention over cached keys/values ------------------------------------------------ */

/* Attention of n query rows over cached keys and values: kt is K^T pre-scaled by 1/sqrt(head_dim)
 * ([d][ldk], head h's rows start at h * head_dim), v is [len][d]. Row i sees keys
 * 0..base + i (causal) or 0..base - 1. One pool task per head; both products are the f32 GEMM of
 * the current kernel level, over blocks of ATT_ROWS query rows. */
#define ATT_ROWS 4

typedef struct att_job {
    const float *q, *kt, *v;
    float *out, *scores;
    int n, d, heads, base, ldk, stride;
    bool causal;
    sg_gemm_f32_fn gemm;
} att_job;

static void att_head(void *ctx, int h, int nheads)
{
    (void)nheads;
    const att_job *J = ctx;
    const int hd = J->d / J->heads;
    float *s = J->scores + (size_t)h * ATT_ROWS * J->stride;
    for (int r0 = 0; r0 < J->n; r0 += ATT_ROWS) {
        const int rows = J->n - r0 < ATT_ROWS ? J->n - r0 : ATT_ROWS;
        const int keys = J->causal ? J->base + r0 + rows : J->base;
        J->gemm(rows, keys, hd, J->q + (size_t)r0 * J->d + h * hd, J->d,
                J->kt + (size_t)h * hd * J->ldk, J->ldk, s, J->stride, NULL, 0);
        for (int i = 0; i < rows; i++) {
            float *row = s + (size_t)i * J->stride;
            const int valid = J->causal ? J->base + r0 + i + 1 : keys;
            sg_softmax_rows(row, 1, valid);
            for (int j = valid; j < keys; j++)
                row[j] = 0.0f;
        }
        J->gemm(rows, hd, keys, s, J->stride, J->v + h * hd, J->d,
                J->out + (size_t)r0 * J->d + h * hd, J->d, NULL, 0);
    }
}

/* Stores rows x[n][d] transposed and scaled into kt[d][ldk] at columns col.. */
static void store_kt(float *kt, int ldk, int col, const float *x, int n, int d, float scale)
{
    for (int i = 0; i < n; i++)
        for (int c = 0; c < d; c++)
            kt[(size_t)c * ldk + col + i] = x[(size_t)i * d + c] * scale;
}

/* ---- encoder ------------------------------------------------------------------------------ */

static void add_bias_gelu(float *x, int rows, int d, const float *b)
{
    for (int r = 0; r < rows; r++)
        sg_add(x + (size_t)r * d, b, d);
    sg_gelu_erf(x, (long)rows * d);
}

sg_status sg_whisper_encode(sg_whisper *m, const float *mel, int frames, float *out, sg_error *err)
{
    const sg_whisper_info *I = &m->info;
    if (!mel || frames < 2 || frames % 2 || frames > 2 * I->n_audio_ctx)
        return sg_error_set(err, SG_EINVAL, "encoder input must have an even number of frames in "
                            "2..%d, got %d", 2 * I->n_audio_ctx, frames);
    const int d = I->d_model, C = I->n_mels, T = frames / 2, F = frames;
    pthread_mutex_lock(&m->lock);
    sg_arena *a = &m->arena;
    sg_arena_reset(a);
    /* conv1 (k3, pad 1): row t of the im2col matrix holds mel[c][t + j - 1] at c*3 + j */
    float *col = sg_arena_alloc(a, (size_t)F * C * 3 * sizeof(float));
    for (int t = 0; t < F; t++) {
        float *row = col + (size_t)t * C * 3;
        for (int c = 0; c < C; c++)
            for (int j = 0; j < 3; j++) {
                int s = t + j - 1;
                row[c * 3 + j] = s >= 0 && s < F ? mel[(size_t)c * F + s] : 0.0f;
            }
    }
    float *h1 = sg_arena_alloc(a, (size_t)F * d * sizeof(float));
    sg_linear_forward(&m->conv1, col, F, C * 3, h1, d, m->pool, a);
    add_bias_gelu(h1, F, d, m->conv1_b);
    /* conv2 (k3, stride 2, pad 1) over h1 [F][d]: output t reads frames 2t - 1 .. 2t + 1 */
    float *col2 = col; /* F*C*3 >= T*d*3 is not guaranteed: allocate when it is short */
    if ((size_t)F * C < (size_t)T * d)
        col2 = sg_arena_alloc(a, (size_t)T * d * 3 * sizeof(float));
    for (int t = 0; t < T; t++) {
        float *row = col2 + (size_t)t * d * 3;
        for (int c = 0; c < d; c++)
            for (int j = 0; j < 3; j++) {
                int s = 2 * t + j - 1;
                row[c * 3 + j] = s >= 0 && s < F ? h1[(size_t)s * d + c] : 0.0f;
            }
    }
    float *x = sg_arena_alloc(a, (size_t)T * d * sizeof(float));
    sg_linear_forward(&m->conv2, col2, T, d * 3, x, d, m->pool, a);
    add_bias_gelu(x, T, d, m->conv2_b);
    sg_add(x, m->enc_pos, (long)T * d);
    /* pre-LN blocks */
    float *h = sg_arena_alloc(a, (size_t)T * d * sizeof(float));
    float *qkv = sg_arena_alloc(a, (size_t)T * 3 * d * sizeof(float));
    float *att = sg_arena_alloc(a, (size_t)T * d * sizeof(float));
    float *mlp = sg_arena_alloc(a, (size_t)T * I->enc_ffn * sizeof(float));
    for (int i = 0; i < I->enc_layers; i++) {
        const wh_layer *L = &m->enc[i];
        sg_layernorm(x, h, T, d, L->ln1_g, L->ln1_b, LN_EPS);
        sg_linear_forward(&L->qkv, h, T, d, qkv, 3 * d, m->pool, a);
        sg_attention(qkv, att, T, d, I->enc_heads, false, m->pool, a);
        sg_linear_forward(&L->self.out, att, T, d, h, d, m->pool, a);
        sg_add(x, h, (long)T * d);
        sg_layernorm(x, h, T, d, L->ln2_g, L->ln2_b, LN_EPS);
        sg_linear_forward(&L->fc1, h, T, d, mlp, I->enc_ffn, m->pool, a);
        sg_gelu_erf(mlp, (long)T * I->enc_ffn);
        sg_linear_forward(&L->fc2, mlp, T, I->enc_ffn, h, d, m->pool, a);
        sg_add(x, h, (long)T * d);
    }
    sg_layernorm(x, x, T, d, m->enc_ln_g, m->enc_ln_b, LN_EPS);
    if (out)
        memcpy(out, x, (size_t)T * d * sizeof(float));
    /* cross-attention keys and values of every decoder layer, once per window */
    const float scale = 1.0f / sqrtf((float)(d / I->dec_heads));
    for (int i = 0; i < I->dec_layers; i++) {
        size_t off = (size_t)i * I->n_audio_ctx * d;
        sg_linear_forward(&m->dec[i].cross.k, x, T, d, h, d, m->pool, a);
        store_kt(m->kx + off, I->n_audio_ctx, 0, h, T, d, scale);
        sg_linear_forward(&m->dec[i].cross.v, x, T, d, m->vx + off, d, m->pool, a);
    }
    m->n_src = T;
    pthread_mutex_unlock(&m->lock);
    return SG_OK;
}

/* ---- decoder ------------------------------------------------------------------------------ */

/* Runs tokens tok[0..n) at positions pos.. through the decoder (their self keys/values join the
 * cache) and writes the logits of the last one to logits[vocab]. */
static void decode_step(sg_whisper *m, const int32_t *tok, int n, int pos, float *logits)
{
    const sg_whisper_info *I = &m->info;
    const int d = I->d_model, heads = I->dec_heads;
    sg_arena *a = &m->arena;
    sg_arena_reset(a);
    float *x = sg_arena_alloc(a, (size_t)n * d * sizeof(float));
    float *h = sg_arena_alloc(a, (size_t)n * d * sizeof(float));
    float *q = sg_arena_alloc(a, (size_t)n * d * sizeof(float));
    float *att = sg_arena_alloc(a, (size_t)n * d * sizeof(float));
    float *mlp = sg_arena_alloc(a, (size_t)n * I->dec_ffn * sizeof(float));
    float *knew = sg_arena_alloc(a, (size_t)n * d * sizeof(float));
    const float scale = 1.0f / sqrtf((float)(d / heads));
    const sg_gemm_f32_fn gemm = sg_gemm_f32_get();
    size_t row_bytes = (size_t)d * sg_dtype_size(m->tok_emb->dtype);
    for (int i = 0; i < n; i++)
        sg_dtype_to_f32(m->tok_emb->dtype, (const char *)m->tok_emb->data + (size_t)tok[i] * row_bytes,
                        (size_t)d, x + (size_t)i * d);
    sg_add(x, m->dec_pos + (size_t)pos * d, (long)n * d);
    int stride = I->n_audio_ctx > I->n_text_ctx ? I->n_audio_ctx : I->n_text_ctx;
    for (int l = 0; l < I->dec_layers; l++) {
        const wh_layer *L = &m->dec[l];
        float *ks = m->ks + (size_t)l * I->n_text_ctx * d, *vs = m->vs + (size_t)l * I->n_text_ctx * d;
        /* causal self-attention over the cache */
        sg_layernorm(x, h, n, d, L->ln1_g, L->ln1_b, LN_EPS);
        sg_linear_forward(&L->self.q, h, n, d, q, d, m->pool, a);
        sg_linear_forward(&L->self.k, h, n, d, knew, d, m->pool, a);
        store_kt(ks, I->n_text_ctx, pos, knew, n, d, scale);
        sg_linear_forward(&L->self.v, h, n, d, vs + (size_t)pos * d, d, m->pool, a);
        att_job js = {q, ks, vs, att, m->scores, n, d, heads, pos, I->n_text_ctx, stride, true, gemm};
        sg_pool_run(m->pool, att_head, &js, heads);
        sg_linear_forward(&L->self.out, att, n, d, h, d, m->pool, a);
        sg_add(x, h, (long)n * d);
        /* cross-attention to the encoded window */
        sg_layernorm(x, h, n, d, L->lnx_g, L->lnx_b, LN_EPS);
        sg_linear_forward(&L->cross.q, h, n, d, q, d, m->pool, a);
        size_t off = (size_t)l * I->n_audio_ctx * d;
        att_job jx = {q, m->kx + off, m->vx + off, att, m->scores, n, d, heads, m->n_src,
                      I->n_audio_ctx, stride, false, gemm};
        sg_pool_run(m->pool, att_head, &jx, heads);
        sg_linear_forward(&L->cross.out, att, n, d, h, d, m->pool, a);
        sg_add(x, h, (long)n * d);
        /* MLP */
        sg_layernorm(x, h, n, d, L->ln2_g, L->ln2_b, LN_EPS);
        sg_linear_forward(&L->fc1, h, n, d, mlp, I->dec_ffn, m->pool, a);
        sg_gelu_erf(mlp, (long)n * I->dec_ffn);
        sg_linear_forward(&L->fc2, mlp, n, I->dec_ffn, h, d, m->pool, a);
        sg_add(x, h, (long)n * d);
    }
    float *last = x + (size_t)(n - 1) * d;
    sg_layernorm(last, last, 1, d, m->dec_ln_g, m->dec_ln_b, LN_EPS);
    sg_linear_forward(&m->logits, last, 1, d, logits, I->vocab, m->pool, a);
}

/* log-softmax of x at index i (x holds -inf for suppressed tokens) */
static float log_softmax_at(const float *x, int n, int i)
{
    float mx = -INFINITY;
    for (int j = 0; j < n; j++)
        if (x[j] > mx)
            mx = x[j];
    double s = 0;
    for (int j = 0; j < n; j++)
        s += exp((double)(x[j] - mx));
    return (float)((double)(x[i] - mx) - log(s));
}

void sg_whisper_result_free(sg_whisper_result *res)
{
    if (!res)
        return;
    free(res->tokens);
    free(res->logprobs);
    memset(res, 0, sizeof *res);
}

sg_status sg_whisper_decode_greedy(sg_whisper *m, int max_tokens, sg_whisper_result *res,
                                   sg_error *err)
{
    const sg_whisper_info *I = &m->info;
    memset(res, 0, sizeof *res);
    if (m->n_src <= 0)
        return sg_error_set(err, SG_EINVAL, "no encoded audio: call sg_whisper_encode first");
    int sample_len = I->n_text_ctx / 2;
    if (max_tokens > 0 && max_tokens < sample_len)
        sample_len = max_tokens;
    const int V = I->vocab;
    int32_t *seq = malloc((size_t)(I->n_text_ctx + 1) * sizeof *seq);
    float *logits = malloc((size_t)V * sizeof(float));
    res->logprobs = malloc((size_t)sample_len * sizeof(float));
    if (!seq || !logits || !res->logprobs) {
        free(seq);
        free(logits);
        sg_whisper_result_free(res);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    const int32_t specials[6] = {I->transcribe, I->translate, I->sot, I->sot_prev, I->sot_lm,
                                 I->no_speech};
    int n = 0;
    seq[n++] = I->sot;
    seq[n++] = I->no_timestamps;
    const int sample_begin = n;
    double sum_lp = 0;
    pthread_mutex_lock(&m->lock);
    int fed = 0; /* tokens already in the cache */
    for (int step = 0; step < sample_len; step++) {
        decode_step(m, seq + fed, n - fed, fed, logits);
        if (step == 0) {
            /* no_speech_prob: softmax at the <|startoftranscript|> position; with the .en prompt
             * that needs the logits of row 0, so run it alone (cheap, once) */
            if (n - fed > 1) {
                float *l0 = malloc((size_t)V * sizeof(float));
                if (l0) {
                    decode_step(m, seq, 1, 0, l0);
                    res->no_speech_prob = expf(log_softmax_at(l0, V, I->no_speech));
                    free(l0);
                }
            } else {
                res->no_speech_prob = expf(log_softmax_at(logits, V, I->no_speech));
            }
        }
        fed = n;
        if (n == sample_begin)
            for (int i = 0; i < m->n_begin_suppress; i++)
                logits[m->begin_suppress[i]] = -INFINITY;
        for (int i = 0; i < m->n_suppress; i++)
            if (m->suppress[i] >= 0)
                logits[m->suppress[i]] = -INFINITY;
        for (int i = 0; i < 6; i++)
            if (specials[i] >= 0 && specials[i] < V)
                logits[specials[i]] = -INFINITY;
        int best = 0;
        for (int j = 1; j < V; j++)
            if (logits[j] > logits[best])
                best = j;
        float lp = log_softmax_at(logits, V, best);
        if (seq[n - 1] != I->eot)
            sum_lp += lp;
        res->logprobs[res->n_logprobs++] = lp;
        seq[n++] = best;
        if (best == I->eot || n > I->n_text_ctx)
            break;
    }
    pthread_mutex_unlock(&m->lock);
    free(logits);
    size_t count = 0;
    while (sample_begin + (int)count < n && seq[sample_begin + count] != I->eot)
        count++;
    res->tokens = malloc((count ? count : 1) * sizeof *res->tokens);
    if (!res->tokens) {
        free(seq);
        sg_whisper_result_free(res);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    memcpy(res->tokens, seq + sample_begin, count * sizeof *res->tokens);
    res->n = count;
    res->avg_logprob = (float)(sum_lp / (double)(count + 1));
    free(seq);
    return SG_OK;
}

sg_status sg_whisper_transcribe_tokens(sg_whisper *m, const float *mel, int frames,
                                       int32_t **tokens, size_t *n, float *avg_logprob,
                                       sg_error *err)
{
    sg_status st = sg_whisper_encode(m, mel, frames, NULL, err);
    if (st != SG_OK)
        return st;
    sg_whisper_result r;
    st = sg_whisper_decode_greedy(m, 0, &r, err);
    if (st != SG_OK)
        return st;
    *tokens = r.tokens;
    *n = r.n;
    if (avg_logprob)
        *avg_logprob = r.avg_logprob;
    free(r.logprobs);
    return SG_OK;
}
