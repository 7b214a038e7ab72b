/* Whisper: config and weight loading, the encoder (convolutions as GEMMs over im2col rows, then
 * pre-LN blocks), the decoder one step at a time (self-attention keys/values cached per position,
 * cross-attention keys/values computed once per window), and greedy decoding with
 * openai/whisper's token rules (decoding.py: SuppressBlanks, SuppressTokens, GreedyDecoder). */
#include "models/whisper.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/json.h"
#include "base/utf8.h"
#include "models/gpt2_tokenizer.h"
#include "models/whisper_ggml.h"
#include "models/whisper_timing.h"
#include "models/whisper_priv.h"
#include "nn/arena.h"
#include "nn/kv.h"
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
    /* cross-attention keys/values of each decoder layer, packed for one-row queries at the
     * model's precision (nn/kv.h: int8 for Q8, 9.4 MB instead of 37 MB for base on 30 s) */
    sg_kv *xkv;      /* [dec_layers] */
    /* self-attention keys are kept transposed and pre-scaled (K^T / sqrt(head_dim),
     * [layer][d][n_text_ctx]) so that scores are one GEMM per head; values [layer][ctx][d] */
    float *ks, *vs;
    int n_src;       /* encoded positions of the current window (0 = none) */
    float *scores;   /* self-attention: [heads][ATT_ROWS][n_text_ctx] */
    sg_st_file *file;
    sg_pool *pool;
    pthread_mutex_t lock;
    sg_arena arena;
    /* source and vocabulary (loading side) */
    sg_wggml ggml;            /* a whisper.cpp file: tensors point into its mapping */
    sg_st_tensor tok_emb_own; /* tok_emb of a ggml file */
    sg_bpe *bpe;              /* a Hugging Face directory's tokenizer, or NULL */
    /* word timestamps' alignment heads (sorted by layer, head; no duplicates) */
    sg_whisper_head *align;
    int n_align;
    sg_bpe *ggml_bpe;         /* an encoder from a ggml file's vocabulary, made on first use */
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

/* openai/whisper's LANGUAGES, in token order (large-v3 added "yue", the 100th) */
static const char *const LANGS[] = {
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv",
    "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no",
    "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr",
    "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
    "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu",
    "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
    "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue"};
#define N_LANGS ((int)(sizeof LANGS / sizeof *LANGS))

/* openai/whisper's Tokenizer.non_speech_tokens (what suppress_tokens="-1" suppresses besides the
 * special tokens) for the GPT-2 (.en) and the multilingual vocabulary: the symbols
 * "#()*+/:;<=>@[\]^_`{|}~「」『』, << >> <<< >>> -- --- -( -[ (' (" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪
 * alone or after a space when they are one token, the first token of ♩♪♫♬♭♮♯, and " -", " '".
 * They are the suppress_tokens of the Hugging Face configs (without the special ids);
 * py/whisper_reference.py computes them by BPE from the .tiktoken files and
 * test_whisper_ggml compares. */
static const int32_t NON_SPEECH_EN[] = {
    1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93, 357,
    366, 438, 532, 685, 705, 796, 930, 1058, 1220, 1267, 1279, 1303, 1343, 1377, 1391, 1635, 1782,
    1875, 2162, 2361, 2488, 3467, 4008, 4211, 4600, 4808, 5299, 5855, 6329, 7203, 9609, 9959,
    10563, 10786, 11420, 11709, 11907, 13163, 13697, 13700, 14808, 15306, 16410, 16791, 17992,
    19203, 19510, 20724, 22305, 22935, 27007, 30109, 30420, 33409, 34949, 40283, 40493, 40549,
    47282, 49146};
static const int32_t NON_SPEECH_MULTI[] = {
    1, 2, 7, 8, 9, 10, 14, 25, 26, 27, 28, 29, 31, 58, 59, 60, 61, 62, 63, 90, 91, 92, 93, 359,
    503, 522, 542, 873, 893, 902, 918, 922, 931, 1350, 1853, 1982, 2460, 2627, 3246, 3253, 3268,
    3536, 3846, 3961, 4183, 4667, 6585, 6647, 7273, 9061, 9383, 10428, 10929, 11938, 12033, 12331,
    12562, 13793, 14157, 14635, 15265, 15618, 16553, 16604, 18362, 18956, 20075, 21675, 22520,
    26130, 26161, 26435, 28279, 29464, 31650, 32302, 32470, 36865, 42863, 47425, 49870, 50254};
#define N_NON_SPEECH_EN ((int)(sizeof NON_SPEECH_EN / sizeof *NON_SPEECH_EN))
#define N_NON_SPEECH_MULTI ((int)(sizeof NON_SPEECH_MULTI / sizeof *NON_SPEECH_MULTI))

const int32_t *sg_whisper_non_speech_tokens(bool multilingual, int *n)
{
    *n = multilingual ? N_NON_SPEECH_MULTI : N_NON_SPEECH_EN;
    return multilingual ? NON_SPEECH_MULTI : NON_SPEECH_EN;
}

/* The special-token layout of openai's tokenizer: vocab >= 51865 is multilingual, with
 * vocab - 51765 - 1 languages after <|startoftranscript|>, then translate, transcribe,
 * startoflm, startofprev, nospeech, notimestamps. */
static void set_languages(sg_whisper_info *I)
{
    I->multilingual = I->vocab >= 51865;
    I->n_languages = I->multilingual ? I->vocab - 51765 - 1 : 0;
}

/* ---- weights ------------------------------------------------------------------------------ */

/* Where tensors come from: a safetensors file with transformers' names (w.f), or a whisper.cpp
 * file (g) whose tensors have openai's names; the loader asks by transformers' name. */
typedef struct wsrc {
    sg_weights w; /* for ggml files only err, st, bytes and prec are used */
    const sg_wggml *g;
    const char *what; /* file name for messages */
    uint8_t *used;    /* ggml: which tensors were read */
} wsrc;

/* transformers' tensor name -> openai's (whisper.cpp's) */
static void openai_name(const char *hf, char *out, size_t cap)
{
    static const char *const rep[][2] = {
        {"model.encoder.", "encoder."}, {"model.decoder.", "decoder."}, {".layers.", ".blocks."},
        {"self_attn_layer_norm", "attn_ln"}, {"encoder_attn_layer_norm", "cross_attn_ln"},
        {"self_attn.", "attn."}, {"encoder_attn.", "cross_attn."}, {".q_proj.", ".query."},
        {".k_proj.", ".key."}, {".v_proj.", ".value."}, {".out_proj.", ".out."},
        {"final_layer_norm", "mlp_ln"}, {".fc1.", ".mlp.0."}, {".fc2.", ".mlp.2."},
        {"encoder.layer_norm.", "encoder.ln_post."}, {"decoder.layer_norm.", "decoder.ln."},
        {"embed_positions.weight", "positional_embedding"}, {"embed_tokens", "token_embedding"}};
    char a[256], b[256];
    snprintf(a, sizeof a, "%s", hf);
    for (size_t i = 0; i < sizeof rep / sizeof *rep; i++) {
        char *p = strstr(a, rep[i][0]);
        if (!p)
            continue;
        snprintf(b, sizeof b, "%.*s%s%s", (int)(p - a), a, rep[i][1], p + strlen(rep[i][0]));
        memcpy(a, b, sizeof a);
    }
    snprintf(out, cap, "%s", a);
}

/* A ggml tensor by transformers' name, shape-checked (trailing 1s of the file's shape are
 * ignored: whisper.cpp stores the conv biases as [d, 1]). NULL after an error. */
static const sg_wggml_tensor *gg_find(wsrc *s, const char *hf, int ndim, const int64_t *shape)
{
    if (s->w.st != SG_OK)
        return NULL;
    char name[256];
    openai_name(hf, name, sizeof name);
    const sg_wggml_tensor *t = sg_wggml_find(s->g, name);
    if (!t) {
        if (s->g->n_tensors == 0)
            s->w.st = sg_error_set(s->w.err, SG_EINVAL, "%s: no tensors (a header and vocabulary "
                                   "only, like whisper.cpp's for-tests-ggml-*.bin): tensor '%s' "
                                   "not found", s->what, name);
        else
            s->w.st = sg_error_set(s->w.err, SG_EINVAL, "%s: missing tensor '%s'", s->what, name);
        return NULL;
    }
    if (s->used)
        s->used[t - s->g->tensors] = 1;
    int nd = t->ndim;
    while (nd > ndim && t->shape[nd - 1] == 1)
        nd--;
    bool ok = nd == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = shape[i] < 0 || t->shape[i] == shape[i];
    if (!ok) {
        char got[96] = "", want[96] = "";
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? ", " : "",
                     (long long)t->shape[i]);
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? ", " : "",
                     (long long)shape[i]);
        s->w.st = sg_error_set(s->w.err, SG_EINVAL, "%s: tensor '%s' has shape [%s], expected [%s]",
                               s->what, name, got, want);
        return NULL;
    }
    return t;
}

static float *gg_get(wsrc *s, const char *hf, int ndim, const int64_t *shape, bool release)
{
    const sg_wggml_tensor *t = gg_find(s, hf, ndim, shape);
    if (!t)
        return NULL;
    size_t n = t->nbytes / (t->ttype == 0 ? 4 : 2);
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) {
        s->w.st = sg_error_set(s->w.err, SG_ENOMEM, "out of memory loading '%s'", t->name);
        return NULL;
    }
    sg_dtype_to_f32(t->ttype == 0 ? SG_DT_F32 : SG_DT_F16, t->data, n, p);
    if (release)
        sg_wggml_release(s->g, t);
    s->w.bytes += n * sizeof(float);
    return p;
}

/* A tensor of up to three dimensions. */
static float *get(wsrc *s, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2)
{
    const int64_t shape[3] = {d0, d1, d2};
    return s->g ? gg_get(s, name, ndim, shape, true) : sg_weights_get(&s->w, name, ndim, shape);
}

static void linear(wsrc *s, sg_linear *L, const char *prefix, bool has_bias, int n, int k)
{
    if (!s->g) {
        sg_weights_linear(&s->w, L, prefix, has_bias, n, k);
        return;
    }
    char wn[256], bn[256];
    snprintf(wn, sizeof wn, "%.240s.weight", prefix);
    snprintf(bn, sizeof bn, "%.240s.bias", prefix);
    float *wt = get(s, wn, 2, n, k, 0);
    float *b = has_bias ? get(s, bn, 1, n, 0, 0) : NULL;
    if (s->w.st != SG_OK) {
        free(wt);
        free(b);
        return;
    }
    sg_weights_linear_from(&s->w, L, wt, b, n, k, s->w.prec);
}

/* prefix.{q,k,v}_proj as one [3d, d] layer, k without bias */
static void qkv(wsrc *s, sg_linear *L, const char *prefix, int d)
{
    if (!s->g) {
        sg_weights_qkv(&s->w, L, prefix, d, false);
        return;
    }
    if (s->w.st != SG_OK)
        return;
    float *wt = malloc((size_t)3 * d * d * sizeof(float)), *b = calloc((size_t)3 * d, sizeof(float));
    if (!wt || !b)
        s->w.st = sg_error_set(s->w.err, SG_ENOMEM, "out of memory loading %s", prefix);
    const char *parts[3] = {"q_proj", "k_proj", "v_proj"};
    for (int i = 0; i < 3 && s->w.st == SG_OK; i++) {
        char n[256];
        snprintf(n, sizeof n, "%.200s.%s.weight", prefix, parts[i]);
        float *p = get(s, n, 2, d, d, 0);
        if (p)
            memcpy(wt + (size_t)i * d * d, p, (size_t)d * d * sizeof(float));
        free(p);
        if (i == 1 || s->w.st != SG_OK)
            continue;
        snprintf(n, sizeof n, "%.200s.%s.bias", prefix, parts[i]);
        p = get(s, n, 1, d, 0, 0);
        if (p)
            memcpy(b + (size_t)i * d, p, (size_t)d * sizeof(float));
        free(p);
    }
    if (s->w.st != SG_OK) {
        free(wt);
        free(b);
        return;
    }
    s->w.bytes += (size_t)d * sizeof(float); /* get() counted the parts; + the zero k bias */
    sg_weights_linear_from(&s->w, L, wt, b, 3 * d, d, s->w.prec);
}

static void get_attn(wsrc *l, wh_attn *A, const char *prefix, int d)
{
    char p[200];
    if (strlen(prefix) > 180) {
        l->w.st = sg_error_set(l->w.err, SG_EINVAL, "tensor name too long");
        return;
    }
    snprintf(p, sizeof p, "%.180s.q_proj", prefix);
    linear(l, &A->q, p, true, d, d);
    snprintf(p, sizeof p, "%.180s.k_proj", prefix);
    linear(l, &A->k, p, false, d, d);
    snprintf(p, sizeof p, "%.180s.v_proj", prefix);
    linear(l, &A->v, p, true, d, d);
    snprintf(p, sizeof p, "%.180s.out_proj", prefix);
    linear(l, &A->out, p, true, d, d);
}

static wh_layer *load_layers(wsrc *l, int d, const char *stack, int n, int ffn, bool decoder)
{
    wh_layer *layers = calloc((size_t)n, sizeof *layers);
    if (!layers) {
        l->w.st = sg_error_set(l->w.err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n && l->w.st == SG_OK; i++) {
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
            qkv(l, &L->qkv, NAME("self_attn"), d); /* k has no bias */
            linear(l, &L->self.out, NAME("self_attn.out_proj"), true, d, d);
        }
        linear(l, &L->fc1, NAME("fc1"), true, ffn, d);
        linear(l, &L->fc2, NAME("fc2"), true, d, ffn);
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
    for (int i = 0; m->xkv && i < m->info.dec_layers; i++)
        sg_kv_free(&m->xkv[i]);
    free(m->xkv);
    free(m->ks);
    free(m->vs);
    free(m->scores);
    sg_st_close(m->file);
    sg_wggml_free(&m->ggml);
    sg_bpe_free(m->bpe);
    free(m->align);
    sg_bpe_free(m->ggml_bpe);
    sg_arena_free(&m->arena);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Row blocks of the encoder's conv2 im2col and MLP: the arena holds one block of the im2col matrix
 * (1.5 MB) and of the MLP's hidden activations (2 MB) instead of the whole window's (9 + 12 MB). */
#define ENC_BLOCK 256

static int enc_blocks(int T, int *rows)
{
    const int nb = (T + ENC_BLOCK - 1) / ENC_BLOCK;
    *rows = (T + nb - 1) / nb;
    return nb;
}

/* Arena bytes: the larger of the encoder on the full context (x, then either the convolutions'
 * temporaries or the blocks' h, qkv, att and an MLP block, plus the largest kernel scratch and the
 * cross-attention store) and a decoder step of up to n_text_ctx tokens (its rows, the largest
 * layer's scratch and the cross-attention scores). Only the pages a call touches become resident. */
static size_t scratch_bytes(const sg_whisper *m, int nthreads)
{
    const sg_whisper_info *I = &m->info;
    const size_t T = (size_t)I->n_audio_ctx, F = 2 * T, d = (size_t)I->d_model, S = (size_t)I->n_text_ctx;
    int rows;
    enc_blocks((int)T, &rows);
    const size_t conv = F * (size_t)I->n_mels * 3 + F * d + (size_t)rows * d * 3;
    const size_t blocks = T * d * 2 + T * 3 * d + (size_t)rows * (size_t)I->enc_ffn;
    size_t lin = 0;
    const wh_layer *L = &m->enc[0];
    lin = max_sz(lin, sg_linear_scratch_bytes(&L->qkv, (int)T));
    lin = max_sz(lin, sg_linear_scratch_bytes(&L->fc2, rows));
    lin = max_sz(lin, sg_linear_scratch_bytes(&m->dec[0].cross.k, (int)T));
    lin = max_sz(lin, sg_attention_scratch_bytes((int)T, (int)d, I->enc_heads, nthreads));
    lin = max_sz(lin, sg_kv_store_scratch_bytes(&m->xkv[0], (int)T, nthreads));
    const size_t enc = (T * d + max_sz(conv, blocks)) * sizeof(float) + lin;
    size_t dlin = max_sz(sg_linear_scratch_bytes(&m->dec[0].fc2, (int)S),
                         sg_linear_scratch_bytes(&m->logits, 1));
    dlin = max_sz(dlin, sg_kv_attend_scratch_bytes(&m->xkv[0], (int)S, nthreads));
    const size_t dec = S * (5 * d + (size_t)I->dec_ffn) * sizeof(float) + dlin;
    return max_sz(enc, dec) + 64 * 32;
}

static sg_whisper *new_model(sg_precision prec, sg_pool *pool, sg_error *err)
{
    sg_whisper *m = calloc(1, sizeof *m);
    if (!m) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->pool = pool;
    m->info.precision = prec;
    return m;
}

/* Checks the sizes and special ids in m->info and the suppress lists. */
static sg_status check_config(sg_whisper *m, const char *what, sg_error *err)
{
    sg_whisper_info *I = &m->info;
    if (I->d_model <= 0 || I->d_model > 8192 || I->enc_layers <= 0 || I->enc_layers > 128 ||
        I->dec_layers <= 0 || I->dec_layers > 128 || I->enc_heads <= 0 ||
        I->d_model % I->enc_heads || I->dec_heads <= 0 || I->d_model % I->dec_heads ||
        I->enc_ffn <= 0 || I->enc_ffn > 65536 || I->dec_ffn <= 0 || I->dec_ffn > 65536 ||
        I->n_mels <= 0 || I->n_mels > 1024 || I->n_audio_ctx <= 0 || I->n_audio_ctx > 100000 ||
        I->n_text_ctx < 4 || I->n_text_ctx > 100000 || I->vocab <= 0)
        return sg_error_set(err, SG_EINVAL, "%s: implausible Whisper sizes (d_model %d, "
                            "layers %d+%d, heads %d/%d, mels %d, contexts %d/%d, vocab %d)", what,
                            I->d_model, I->enc_layers, I->dec_layers, I->enc_heads, I->dec_heads,
                            I->n_mels, I->n_audio_ctx, I->n_text_ctx, I->vocab);
    if (I->sot < 0 || I->sot >= I->vocab || I->eot < 0 || I->eot >= I->vocab ||
        I->no_timestamps < 5 || I->no_timestamps >= I->vocab)
        return sg_error_set(err, SG_EINVAL, "%s: special token ids (decoder_start_token_id "
                            "%d, eos_token_id %d, no_timestamps_token_id %d) outside the vocabulary "
                            "of %d", what, I->sot, I->eot, I->no_timestamps, I->vocab);
    if (I->multilingual && (I->n_languages > N_LANGS || I->translate != I->sot + 1 + I->n_languages))
        return sg_error_set(err, SG_EINVAL, "%s: a multilingual vocabulary of %d needs %d language "
                            "tokens between <|startoftranscript|> %d and <|translate|> %d "
                            "(openai's layout, at most %d languages)", what, I->vocab,
                            I->n_languages, I->sot, I->translate, N_LANGS);
    for (int i = 0; i < m->n_suppress; i++)
        if (m->suppress[i] < -1 || m->suppress[i] >= I->vocab)
            return sg_error_set(err, SG_EINVAL, "%s: suppress_tokens id %d out of range", what,
                                m->suppress[i]);
    for (int i = 0; i < m->n_begin_suppress; i++)
        if (m->begin_suppress[i] < 0 || m->begin_suppress[i] >= I->vocab)
            return sg_error_set(err, SG_EINVAL, "%s: begin_suppress_tokens id %d out of range",
                                what, m->begin_suppress[i]);
    return SG_OK;
}

/* Word timestamps' alignment heads. A Hugging Face directory's generation_config.json may name
 * them ("alignment_heads": [[layer, head], ...], as the converted openai checkpoints do); without
 * the file, the key, or with null, openai's default is used: every head of the last half of the
 * decoder layers (model.py: layers n_text_layer // 2 ..). A value that is present but malformed
 * (not a non-empty array of two-integer arrays, or a layer / head outside the decoder's) fails the
 * load with SG_EINVAL naming the file: word times from other heads than the file asks for would be
 * silently different, and a broken generation_config.json is better reported than guessed at
 * (a file that is not JSON at all stays ignored, as for the suppress lists). The list is kept
 * sorted by (layer, head) without duplicates, as openai's boolean mask -> sparse indices makes it.
 * The pairs are checked against the sizes by check_alignment_heads once config.json is read. */
static int head_cmp(const void *a, const void *b)
{
    const sg_whisper_head *x = a, *y = b;
    return x->layer != y->layer ? (x->layer > y->layer) - (x->layer < y->layer)
                                : (x->head > y->head) - (x->head < y->head);
}

static void sort_heads(sg_whisper *m)
{
    qsort(m->align, (size_t)m->n_align, sizeof *m->align, head_cmp);
    int k = 0;
    for (int i = 0; i < m->n_align; i++)
        if (k == 0 || head_cmp(&m->align[k - 1], &m->align[i]) != 0)
            m->align[k++] = m->align[i];
    m->n_align = k;
}

static sg_status hf_alignment_heads(sg_whisper *m, const char *path, sg_error *err)
{
    json_t *gc = json_load_file(path, 0, NULL);
    if (!gc)
        return SG_OK;
    json_t *a = json_object_get(gc, "alignment_heads");
    sg_status st = SG_OK;
    if (a && !json_is_null(a)) {
        const size_t n = json_is_array(a) ? json_array_size(a) : 0;
        if (n == 0 || n > 65536)
            st = sg_error_set(err, SG_EINVAL, "%s: alignment_heads must be a non-empty array of "
                              "[layer, head] pairs", path);
        else if (!(m->align = malloc(n * sizeof *m->align)))
            st = sg_error_set(err, SG_ENOMEM, "out of memory");
        for (size_t i = 0; st == SG_OK && i < n; i++) {
            json_t *p = json_array_get(a, i);
            json_t *l = json_array_get(p, 0), *h = json_array_get(p, 1);
            if (!json_is_array(p) || json_array_size(p) != 2 || !json_is_integer(l) ||
                !json_is_integer(h) || json_integer_value(l) < 0 || json_integer_value(h) < 0 ||
                json_integer_value(l) > 4096 || json_integer_value(h) > 65536) {
                st = sg_error_set(err, SG_EINVAL, "%s: alignment_heads[%zu] is not a [layer, head] "
                                  "pair of non-negative integers", path, i);
                break;
            }
            m->align[i] = (sg_whisper_head){(int)json_integer_value(l), (int)json_integer_value(h)};
            m->n_align = (int)i + 1;
        }
        if (st == SG_OK)
            sort_heads(m);
    }
    json_decref(gc);
    return st;
}

/* The file's heads within the decoder's sizes, or openai's default when it names none. */
static sg_status check_alignment_heads(sg_whisper *m, const char *what, sg_error *err)
{
    const sg_whisper_info *I = &m->info;
    for (int i = 0; i < m->n_align; i++)
        if (m->align[i].layer >= I->dec_layers || m->align[i].head >= I->dec_heads)
            return sg_error_set(err, SG_EINVAL, "%s: alignment head [%d, %d] outside the decoder's "
                                "%d layers of %d heads", what, m->align[i].layer, m->align[i].head,
                                I->dec_layers, I->dec_heads);
    if (m->align)
        return SG_OK;
    const int first = I->dec_layers / 2;
    m->n_align = (I->dec_layers - first) * I->dec_heads;
    if (!(m->align = malloc((size_t)m->n_align * sizeof *m->align)))
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    for (int l = first, k = 0; l < I->dec_layers; l++)
        for (int h = 0; h < I->dec_heads; h++)
            m->align[k++] = (sg_whisper_head){l, h};
    return SG_OK;
}

const sg_whisper_head *sg_whisper_alignment_heads(const sg_whisper *m, int *n)
{
    if (n)
        *n = m ? m->n_align : 0;
    return m ? m->align : NULL;
}

/* config.json of a Hugging Face directory (suppress lists from generation_config.json when
 * config.json has none, as newer checkpoints keep them there). */
static sg_status config_hf(sg_whisper *m, const char *dir, sg_error *err)
{
    char path[4096];
    sg_whisper_info *I = &m->info;
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    if (!c)
        return sg_error_set(err, SG_EIO, "%s: %s", path, je.text);
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
    if (!m->suppress || !m->begin_suppress) {
        snprintf(path, sizeof path, "%s/generation_config.json", dir);
        json_t *gc = json_load_file(path, 0, NULL);
        if (gc && !m->suppress)
            m->suppress = cfg_ids(gc, "suppress_tokens", &m->n_suppress);
        if (gc && !m->begin_suppress)
            m->begin_suppress = cfg_ids(gc, "begin_suppress_tokens", &m->n_begin_suppress);
        json_decref(gc);
    }
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    sg_status ast = hf_alignment_heads(m, path, err);
    if (ast != SG_OK)
        return ast;
    if (I->no_timestamps < 0) /* not in older configs: 1501 timestamps follow it */
        I->no_timestamps = I->vocab >= 51864 ? I->vocab - 1502 : -1;
    set_languages(I);
    if (I->vocab >= 51864 && !m->suppress) { /* a real vocabulary: openai's lists */
        const int32_t *ns = sg_whisper_non_speech_tokens(I->multilingual, &m->n_suppress);
        if ((m->suppress = malloc((size_t)m->n_suppress * sizeof *ns)))
            memcpy(m->suppress, ns, (size_t)m->n_suppress * sizeof *ns);
        else
            m->n_suppress = 0;
    }
    if (I->vocab >= 51864 && !m->begin_suppress && I->eot >= 0 &&
        (m->begin_suppress = malloc(2 * sizeof *m->begin_suppress))) {
        m->begin_suppress[0] = 220;
        m->begin_suppress[1] = I->eot;
        m->n_begin_suppress = 2;
    }
    I->translate = I->no_timestamps - 5;
    I->transcribe = I->no_timestamps - 4;
    I->sot_lm = I->no_timestamps - 3;
    I->sot_prev = I->no_timestamps - 2;
    I->no_speech = I->no_timestamps - 1;
    if (!gelu)
        return sg_error_set(err, SG_EUNSUPPORTED, "config.json: activation_function must be gelu");
    sg_status st = check_config(m, "config.json", err);
    if (st == SG_OK)
        st = check_alignment_heads(m, path, err);
    return st;
}

/* whisper.cpp's hparams; the special ids follow from n_vocab as in openai's tokenizer */
static sg_status config_ggml(sg_whisper *m, const char *what, sg_error *err)
{
    const sg_wggml_hparams *h = &m->ggml.hp;
    sg_whisper_info *I = &m->info;
    I->d_model = h->n_audio_state;
    I->enc_layers = h->n_audio_layer;
    I->dec_layers = h->n_text_layer;
    I->enc_heads = h->n_audio_head;
    I->dec_heads = h->n_text_head;
    I->enc_ffn = I->dec_ffn = 4 * h->n_audio_state;
    I->n_mels = h->n_mels;
    I->n_audio_ctx = h->n_audio_ctx;
    I->n_text_ctx = h->n_text_ctx;
    I->vocab = h->n_vocab;
    set_languages(I);
    I->eot = I->multilingual ? 50257 : 50256;
    I->sot = I->eot + 1;
    I->translate = I->sot + 1 + (I->multilingual ? I->n_languages : 99);
    I->transcribe = I->translate + 1;
    I->sot_lm = I->translate + 2;
    I->sot_prev = I->translate + 3;
    I->no_speech = I->translate + 4;
    I->no_timestamps = I->translate + 5;
    /* openai's suppress_tokens="-1" (its non-speech symbols) and SuppressBlanks (" " = 220,
     * eot): fixed for the two vocabularies, as the special ids are */
    const int32_t *ns = I->multilingual ? NON_SPEECH_MULTI : NON_SPEECH_EN;
    m->n_suppress = I->multilingual ? N_NON_SPEECH_MULTI : N_NON_SPEECH_EN;
    m->suppress = malloc((size_t)m->n_suppress * sizeof *m->suppress);
    m->begin_suppress = malloc(2 * sizeof *m->begin_suppress);
    if (!m->suppress || !m->begin_suppress)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    memcpy(m->suppress, ns, (size_t)m->n_suppress * sizeof *ns);
    m->begin_suppress[0] = 220;
    m->begin_suppress[1] = I->eot;
    m->n_begin_suppress = 2;
    sg_status st = check_config(m, what, err);
    if (st == SG_OK)
        st = check_alignment_heads(m, what, err); /* ggml files name none: openai's default */
    return st;
}

/* Rows of the token embedding for the tied logits layer, converted from the file's bytes a panel at
 * a time; the pages converted so far are released as it goes, so neither a full f32 copy
 * (106 MB for base) nor the whole F16 tensor (53 MB) is ever resident at once. */
typedef struct emb_src {
    const sg_st_tensor *t;
    const wsrc *l;
    const sg_whisper *m;
    size_t row_bytes;
    uintptr_t released; /* address up to which the pages were released (a page boundary) */
} emb_src;

static void emb_rows(void *ctx, int r0, int nrows, float *dst)
{
    emb_src *e = ctx;
    const char *base = (const char *)e->t->data;
    const uintptr_t end = (uintptr_t)base + (size_t)(r0 + nrows) * e->row_bytes;
    sg_dtype_to_f32(e->t->dtype, base + (size_t)r0 * e->row_bytes,
                    (size_t)nrows * (size_t)e->t->shape[1], dst);
    if (end - e->released < ((uintptr_t)1 << 20) && end < (uintptr_t)base + e->t->nbytes)
        return;
    /* the helpers release the whole pages inside [released, end) */
    if (e->l->g) {
        sg_wggml_tensor r = {.data = (const void *)e->released, .nbytes = end - e->released};
        sg_wggml_release(e->l->g, &r);
    } else {
        sg_st_tensor r = {.data = (const void *)e->released, .nbytes = end - e->released};
        sg_st_release(e->m->file, &r);
    }
    const long page = sysconf(_SC_PAGESIZE);
    if (page > 0 && (end & ~((uintptr_t)page - 1)) > e->released)
        e->released = end & ~((uintptr_t)page - 1);
}

/* m->logits from m->tok_emb at the model's precision */
static void tied_logits(sg_whisper *m, wsrc *l)
{
    const sg_whisper_info *I = &m->info;
    emb_src e = {m->tok_emb, l, m, (size_t)I->d_model * sg_dtype_size(m->tok_emb->dtype),
                 (uintptr_t)m->tok_emb->data};
    l->w.st = sg_linear_init_rows(&m->logits, I->vocab, I->d_model, I->precision, NULL, emb_rows, &e,
                                  l->w.err);
    if (l->w.st == SG_OK)
        l->w.bytes += m->logits.bytes;
}

/* The weights, by transformers' names, from either source; then the decoder state. */
static sg_status load_weights(sg_whisper *m, wsrc *l)
{
    sg_whisper_info *I = &m->info;
    sg_error *err = l->w.err;
    const int d = I->d_model;
    /* convolutions stay F32 at every precision (the log-mel input, like CLIP's pixels, carries
     * a large common offset that per-row int8 activations would flatten); the [d, c, 3] weight is
     * the GEMM's [d, c*3] */
    sg_weights_linear_from(&l->w, &m->conv1, get(l, "model.encoder.conv1.weight", 3, d, I->n_mels, 3),
                           NULL, d, I->n_mels * 3, SG_PREC_F32);
    m->conv1_b = get(l, "model.encoder.conv1.bias", 1, d, 0, 0);
    sg_weights_linear_from(&l->w, &m->conv2, get(l, "model.encoder.conv2.weight", 3, d, d, 3), NULL,
                           d, d * 3, SG_PREC_F32);
    m->conv2_b = get(l, "model.encoder.conv2.bias", 1, d, 0, 0);
    m->enc_pos = get(l, "model.encoder.embed_positions.weight", 2, I->n_audio_ctx, d, 0);
    m->enc = load_layers(l, d, "encoder", I->enc_layers, I->enc_ffn, false);
    m->enc_ln_g = get(l, "model.encoder.layer_norm.weight", 1, d, 0, 0);
    m->enc_ln_b = get(l, "model.encoder.layer_norm.bias", 1, d, 0, 0);
    const char *emb = "model.decoder.embed_tokens.weight";
    const int64_t eshape[2] = {I->vocab, d};
    if (l->w.st == SG_OK && l->g) {
        /* embedding rows are read from the file's bytes per token (pages fault back in) */
        const sg_wggml_tensor *t = gg_find(l, emb, 2, eshape);
        if (t) {
            m->tok_emb_own = (sg_st_tensor){t->name, t->ttype == 0 ? SG_DT_F32 : SG_DT_F16, 2,
                                            {I->vocab, d}, t->data, t->nbytes};
            m->tok_emb = &m->tok_emb_own;
            tied_logits(m, l);
        }
    } else if (l->w.st == SG_OK) {
        m->tok_emb = sg_st_find(m->file, emb);
        if (!m->tok_emb)
            l->w.st = sg_error_set(err, SG_EINVAL, "tensor '%s' not found in %s", emb, l->what);
        else if (m->tok_emb->ndim != 2 || m->tok_emb->shape[0] != I->vocab || m->tok_emb->shape[1] != d ||
                 !(m->tok_emb->dtype == SG_DT_F32 || m->tok_emb->dtype == SG_DT_F16 ||
                   m->tok_emb->dtype == SG_DT_BF16))
            l->w.st = sg_error_set(err, SG_EINVAL, "tensor '%s' must be F32/F16/BF16 [%d, %d]", emb,
                                   I->vocab, d);
        if (l->w.st == SG_OK) /* rows are read from the mapping per token (pages fault back in) */
            tied_logits(m, l);
    }
    m->dec_pos = get(l, "model.decoder.embed_positions.weight", 2, I->n_text_ctx, d, 0);
    m->dec = load_layers(l, d, "decoder", I->dec_layers, I->dec_ffn, true);
    m->dec_ln_g = get(l, "model.decoder.layer_norm.weight", 1, d, 0, 0);
    m->dec_ln_b = get(l, "model.decoder.layer_norm.bias", 1, d, 0, 0);
    if (l->w.st == SG_OK) {
        size_t ss = (size_t)I->dec_layers * I->n_text_ctx * d;
        m->ks = malloc(ss * sizeof(float));
        m->vs = malloc(ss * sizeof(float));
        m->scores = malloc((size_t)I->dec_heads * 4 /* ATT_ROWS */ * (size_t)I->n_text_ctx *
                           sizeof(float));
        m->xkv = calloc((size_t)I->dec_layers, sizeof *m->xkv);
        for (int i = 0; m->xkv && i < I->dec_layers && l->w.st == SG_OK; i++)
            l->w.st = sg_kv_init(&m->xkv[i], I->precision, I->dec_heads, d / I->dec_heads,
                                 I->n_audio_ctx, err);
        if (l->w.st == SG_OK && (!m->xkv || !m->ks || !m->vs || !m->scores ||
                                 sg_arena_init(&m->arena, scratch_bytes(m, sg_pool_size(m->pool))) != 0))
            l->w.st = sg_error_set(err, SG_ENOMEM, "out of memory for the decoder caches and scratch");
    }
    m->info.weight_bytes = l->w.bytes;
    return l->w.st;
}

static sg_whisper *load_hf(const char *dir, sg_precision prec, sg_pool *pool, sg_error *err)
{
    char path[4096];
    sg_whisper *m = new_model(prec, pool, err);
    if (!m)
        return NULL;
    m->info.format = "hf";
    if (config_hf(m, dir, err) != SG_OK) {
        sg_whisper_free(m);
        return NULL;
    }
    /* the tokenizer, when the directory has one */
    sg_error terr = {0};
    m->bpe = sg_bpe_load_dir(dir, &terr);
    if (!m->bpe && terr.code != SG_EIO) {
        sg_error_set(err, terr.code, "%s: tokenizer: %s", dir, terr.msg);
        sg_whisper_free(m);
        return NULL;
    }
    if (m->bpe && sg_bpe_eot(m->bpe) != m->info.eot) {
        sg_error_set(err, SG_EINVAL, "%s: the tokenizer's <|endoftext|> is %d, config.json's "
                     "eos_token_id %d", dir, (int)sg_bpe_eot(m->bpe), m->info.eot);
        sg_whisper_free(m);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    m->file = sg_st_open(path, err);
    if (!m->file) {
        sg_whisper_free(m);
        return NULL;
    }
    wsrc l = {{m->file, prec, err, SG_OK, 0}, NULL, path, NULL};
    if (load_weights(m, &l) != SG_OK) {
        sg_whisper_free(m);
        return NULL;
    }
    return m;
}

/* m->ggml parsed: config and weights */
static sg_whisper *load_ggml(sg_whisper *m, const char *what, sg_error *err)
{
    m->info.format = "ggml";
    if (config_ggml(m, what, err) != SG_OK) {
        sg_whisper_free(m);
        return NULL;
    }
    wsrc l = {{NULL, m->info.precision, err, SG_OK, 0}, &m->ggml, what,
              calloc(m->ggml.n_tensors + 1, 1)};
    if (!l.used)
        l.w.st = sg_error_set(err, SG_ENOMEM, "out of memory");
    load_weights(m, &l);
    /* every tensor must be one the hparams call for (whisper.cpp refuses unknown ones too) */
    for (size_t i = 0; l.w.st == SG_OK && i < m->ggml.n_tensors; i++)
        if (!l.used[i]) {
            char q[80];
            const char *name = m->ggml.tensors[i].name;
            l.w.st = sg_error_set(err, SG_EINVAL, "%s: unexpected tensor '%s' (not part of a model "
                                  "with %d encoder and %d decoder layers)", what,
                                  sg_utf8_quote(q, 64, name, strlen(name), false),
                                  m->info.enc_layers, m->info.dec_layers);
        }
    free(l.used);
    if (l.w.st != SG_OK) {
        sg_whisper_free(m);
        return NULL;
    }
    return m;
}

sg_whisper *sg_whisper_load_ggml_memory(const uint8_t *buf, size_t len, sg_precision prec,
                                        sg_pool *pool, sg_error *err)
{
    sg_whisper *m = new_model(prec, pool, err);
    if (!m)
        return NULL;
    if (sg_wggml_parse(buf, len, false, &m->ggml, err) != SG_OK) {
        sg_whisper_free(m);
        return NULL;
    }
    return load_ggml(m, "whisper ggml", err);
}

sg_whisper *sg_whisper_load(const char *path, sg_precision prec, sg_pool *pool, sg_error *err)
{
    struct stat sb;
    char q[96];
    if (!path || stat(path, &sb) != 0) {
        sg_error_set(err, SG_EIO, "%s: %s", path ? sg_utf8_quote(q, 80, path, strlen(path), true) : "(null)",
                     strerror(errno));
        return NULL;
    }
    if (S_ISDIR(sb.st_mode))
        return load_hf(path, prec, pool, err);
    if (!sg_wggml_is_ggml(path)) {
        sg_error_set(err, SG_EINVAL, "%s: neither a Hugging Face model directory nor a whisper.cpp "
                     "ggml file", sg_utf8_quote(q, 80, path, strlen(path), true));
        return NULL;
    }
    sg_whisper *m = new_model(prec, pool, err);
    if (!m)
        return NULL;
    if (sg_wggml_open(path, false, &m->ggml, err) != SG_OK) {
        sg_whisper_free(m);
        return NULL;
    }
    return load_ggml(m, sg_utf8_quote(q, 80, path, strlen(path), true), err);
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

/* x[r][:] += b, then GELU, over rows [r0, r1) of a [rows][d] buffer; split over the pool */
typedef struct bias_gelu_job {
    float *x;
    const float *b;
    int rows, d;
} bias_gelu_job;

static void bias_gelu_task(void *ctx, int task, int ntasks)
{
    const bias_gelu_job *J = ctx;
    const int r0 = (int)((long)J->rows * task / ntasks), r1 = (int)((long)J->rows * (task + 1) / ntasks);
    for (int r = r0; r < r1; r++) {
        float *row = J->x + (size_t)r * J->d;
        if (J->b)
            sg_add(row, J->b, J->d);
        sg_gelu_erf(row, J->d);
    }
}

static void add_bias_gelu(sg_pool *pool, float *x, int rows, int d, const float *b)
{
    bias_gelu_job J = {x, b, rows, d};
    int ntasks = 2 * sg_pool_size(pool);
    sg_pool_run(pool, bias_gelu_task, &J, ntasks < rows ? ntasks : rows);
}

sg_status sg_whisper_encode(sg_whisper *m, const float *mel, int frames, float *out, sg_error *err)
{
    const sg_whisper_info *I = &m->info;
    if (!mel || frames < 2 || frames % 2 || frames > 2 * I->n_audio_ctx)
        return sg_error_set(err, SG_EINVAL, "encoder input must have an even number of frames in "
                            "2..%d, got %d", 2 * I->n_audio_ctx, frames);
    const int d = I->d_model, C = I->n_mels, T = frames / 2, F = frames;
    int brows;
    const int nblocks = enc_blocks(T, &brows);
    pthread_mutex_lock(&m->lock);
    sg_arena *a = &m->arena;
    sg_arena_reset(a);
    float *x = sg_arena_alloc(a, (size_t)T * d * sizeof(float));
    const size_t mark = a->used;
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
    add_bias_gelu(m->pool, h1, F, d, m->conv1_b);
    /* conv2 (k3, stride 2, pad 1) over h1 [F][d], a block of output rows at a time: output t
     * reads frames 2t - 1 .. 2t + 1 */
    float *col2 = sg_arena_alloc(a, (size_t)brows * d * 3 * sizeof(float));
    for (int t0 = 0; t0 < T; t0 += brows) {
        const int rows = T - t0 < brows ? T - t0 : brows;
        for (int t = t0; t < t0 + rows; t++) {
            float *row = col2 + (size_t)(t - t0) * d * 3;
            for (int c = 0; c < d; c++)
                for (int j = 0; j < 3; j++) {
                    int s = 2 * t + j - 1;
                    row[c * 3 + j] = s >= 0 && s < F ? h1[(size_t)s * d + c] : 0.0f;
                }
        }
        sg_linear_forward(&m->conv2, col2, rows, d * 3, x + (size_t)t0 * d, d, m->pool, a);
    }
    add_bias_gelu(m->pool, x, T, d, m->conv2_b);
    sg_add(x, m->enc_pos, (long)T * d);
    a->used = mark; /* the convolutions' temporaries */
    /* pre-LN blocks; the MLP in row blocks (fc2 of a block overwrites that block of h, which
     * only its fc1 reads) */
    float *h = sg_arena_alloc(a, (size_t)T * d * sizeof(float));
    float *qkv = sg_arena_alloc(a, (size_t)T * 3 * d * sizeof(float));
    float *att = sg_arena_alloc(a, (size_t)T * d * sizeof(float));
    float *mlp = sg_arena_alloc(a, (size_t)brows * I->enc_ffn * sizeof(float));
    for (int i = 0; i < I->enc_layers; i++) {
        const wh_layer *L = &m->enc[i];
        sg_layernorm(x, h, T, d, L->ln1_g, L->ln1_b, LN_EPS);
        sg_linear_forward(&L->qkv, h, T, d, qkv, 3 * d, m->pool, a);
        sg_attention(qkv, att, T, d, I->enc_heads, false, m->pool, a);
        sg_linear_forward(&L->self.out, att, T, d, h, d, m->pool, a);
        sg_add(x, h, (long)T * d);
        sg_layernorm(x, h, T, d, L->ln2_g, L->ln2_b, LN_EPS);
        for (int b = 0; b < nblocks; b++) {
            const int r0 = b * brows, rows = T - r0 < brows ? T - r0 : brows;
            float *hb = h + (size_t)r0 * d;
            sg_linear_forward(&L->fc1, hb, rows, d, mlp, I->enc_ffn, m->pool, a);
            add_bias_gelu(m->pool, mlp, rows, I->enc_ffn, NULL);
            sg_linear_forward(&L->fc2, mlp, rows, I->enc_ffn, hb, d, m->pool, a);
        }
        sg_add(x, h, (long)T * d);
    }
    sg_layernorm(x, x, T, d, m->enc_ln_g, m->enc_ln_b, LN_EPS);
    if (out)
        memcpy(out, x, (size_t)T * d * sizeof(float));
    /* cross-attention keys and values of every decoder layer, once per window, packed for the
     * decoder's one-row queries */
    for (int i = 0; i < I->dec_layers; i++) {
        sg_linear_forward(&m->dec[i].cross.k, x, T, d, h, d, m->pool, a);
        sg_linear_forward(&m->dec[i].cross.v, x, T, d, att, d, m->pool, a);
        sg_kv_store(&m->xkv[i], h, d, att, d, T, m->pool, a);
    }
    m->n_src = m->xkv[0].n == T ? T : 0;
    pthread_mutex_unlock(&m->lock);
    if (m->n_src != T)
        return sg_error_set(err, SG_ENOMEM, "encoder: no scratch room for the cross-attention cache");
    return SG_OK;
}

/* ---- decoder ------------------------------------------------------------------------------ */

/* Runs tokens tok[0..n) at positions pos.. through the decoder (their self keys/values join the
 * cache) and writes the logits of the last one to logits[vocab]. A token's step is memory-bound
 * (base.en int8: 25 MB of decoder weights, 26.5 MB of logits layer, 9.4 MB of cross keys/values),
 * so the self-attention projections share one parallel region and the cross-attention reads
 * the packed int8 cache (nn/kv.h). */
/* Cross-attention scores wanted from a pass: ptr[layer * dec_heads + head] is NULL or the
 * [n][ld] destination of that head's scores; done(ctx, layer) runs after each layer's
 * cross-attention. */
typedef struct layer_qk {
    float *const *ptr;
    int ld;
    void (*done)(void *ctx, int layer);
    void *ctx;
} layer_qk;

static float *decode_rows(sg_whisper *m, const int32_t *tok, int n, int pos, const layer_qk *lq);

static void decode_step(sg_whisper *m, const int32_t *tok, int n, int pos, float *logits)
{
    const sg_whisper_info *I = &m->info;
    const int d = I->d_model;
    float *x = decode_rows(m, tok, n, pos, NULL);
    float *last = x + (size_t)(n - 1) * d;
    sg_layernorm(last, last, 1, d, m->dec_ln_g, m->dec_ln_b, LN_EPS);
    sg_linear_forward(&m->logits, last, 1, d, logits, I->vocab, m->pool, &m->arena);
}

/* The decoder blocks over tok[0..n) at positions pos..: returns the residual stream [n][d] (the
 * arena's first allocation, before the final LayerNorm). lq (NULL: none): the cross-attention
 * scores to keep (sg_kv_attend_qk). */
static float *decode_rows(sg_whisper *m, const int32_t *tok, int n, int pos, const layer_qk *lq)
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
    for (int l = 0; l < I->dec_layers; l++) {
        const wh_layer *L = &m->dec[l];
        float *ks = m->ks + (size_t)l * I->n_text_ctx * d, *vs = m->vs + (size_t)l * I->n_text_ctx * d;
        /* causal self-attention over the cache */
        sg_layernorm(x, h, n, d, L->ln1_g, L->ln1_b, LN_EPS);
        const sg_linear *proj[3] = {&L->self.q, &L->self.k, &L->self.v};
        float *const ys[3] = {q, knew, vs + (size_t)pos * d};
        const int lds[3] = {d, d, d};
        sg_linear_forward_multi(proj, 3, h, n, d, ys, lds, m->pool, a);
        store_kt(ks, I->n_text_ctx, pos, knew, n, d, scale);
        att_job js = {q, ks, vs, att, m->scores, n, d, heads, pos, I->n_text_ctx, I->n_text_ctx,
                      true, gemm};
        sg_pool_run(m->pool, att_head, &js, heads);
        sg_linear_forward(&L->self.out, att, n, d, h, d, m->pool, a);
        sg_add(x, h, (long)n * d);
        /* cross-attention to the encoded window */
        sg_layernorm(x, h, n, d, L->lnx_g, L->lnx_b, LN_EPS);
        sg_linear_forward(&L->cross.q, h, n, d, q, d, m->pool, a);
        sg_kv_attend_qk(&m->xkv[l], q, n, d, scale, att, d,
                        lq ? lq->ptr + (size_t)l * heads : NULL, lq ? lq->ld : 0, m->pool, a);
        if (lq && lq->done)
            lq->done(lq->ctx, l);
        sg_linear_forward(&L->cross.out, att, n, d, h, d, m->pool, a);
        sg_add(x, h, (long)n * d);
        /* MLP */
        sg_layernorm(x, h, n, d, L->ln2_g, L->ln2_b, LN_EPS);
        sg_linear_forward(&L->fc1, h, n, d, mlp, I->dec_ffn, m->pool, a);
        sg_gelu_erf(mlp, (long)n * I->dec_ffn);
        sg_linear_forward(&L->fc2, mlp, n, I->dec_ffn, h, d, m->pool, a);
        sg_add(x, h, (long)n * d);
    }
    return x;
}

int sg_whisper_encoded_positions(const sg_whisper *m) { return m ? m->n_src : 0; }

sg_pool *sg_whisper_pool(const sg_whisper *m) { return m ? m->pool : NULL; }

/* Rows of logits computed at once in the alignment pass (a GEMM over the tied embedding instead of
 * one pass over it per token) */
#define QK_LOGIT_ROWS 16

typedef struct qk_pass {
    const int *first, *count; /* per layer: its heads' run in k / qk */
    const int *k;             /* head indices grouped by layer */
    float *const *qk;         /* their buffers, grouped the same way */
    int n, cols;
    sg_whisper_qk_fn fn;
    void *ctx;
} qk_pass;

static void qk_layer_done(void *ctx, int layer)
{
    const qk_pass *P = ctx;
    if (P->count[layer] > 0)
        P->fn(P->ctx, layer, P->k + P->first[layer], P->qk + P->first[layer], P->count[layer], P->n,
              P->cols);
}

sg_status sg_whisper_cross_qk(sg_whisper *m, const int32_t *tok, int n, const sg_whisper_head *heads,
                              int nheads, int cols, sg_whisper_qk_fn qk_fn, int row0, int row1,
                              sg_whisper_row_fn row_fn, void *ctx, sg_error *err)
{
    if (!m || !tok)
        return sg_error_set(err, SG_EINVAL, "cross_qk: NULL model or tokens");
    const sg_whisper_info *I = &m->info;
    if (n < 1 || n > I->n_text_ctx)
        return sg_error_set(err, SG_EINVAL, "cross_qk: %d tokens (1..%d)", n, I->n_text_ctx);
    for (int i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= I->vocab)
            return sg_error_set(err, SG_EINVAL, "cross_qk: token %d outside the vocabulary",
                                (int)tok[i]);
    if (nheads < 0 || nheads > I->dec_layers * I->dec_heads || (nheads > 0 && (!heads || !qk_fn)))
        return sg_error_set(err, SG_EINVAL, "cross_qk: bad heads");
    for (int k = 0; k < nheads; k++) {
        if (heads[k].layer < 0 || heads[k].layer >= I->dec_layers || heads[k].head < 0 ||
            heads[k].head >= I->dec_heads)
            return sg_error_set(err, SG_EINVAL, "cross_qk: head [%d, %d] outside the decoder",
                                heads[k].layer, heads[k].head);
        for (int j = 0; j < k; j++)
            if (heads[j].layer == heads[k].layer && heads[j].head == heads[k].head)
                return sg_error_set(err, SG_EINVAL, "cross_qk: head [%d, %d] named twice",
                                    heads[k].layer, heads[k].head);
    }
    if (m->n_src <= 0)
        return sg_error_set(err, SG_EINVAL, "no encoded audio: call sg_whisper_encode first");
    if (nheads > 0 && (cols < 1 || cols > m->n_src))
        return sg_error_set(err, SG_EINVAL, "cross_qk: %d source positions (1..%d)", cols, m->n_src);
    const int L = I->dec_layers, H = I->dec_heads;
    /* one layer's heads at a time: the buffers are reused from layer to layer */
    int maxc = 0;
    int *first = calloc((size_t)L * 2 + (size_t)nheads + 1, sizeof(int));
    float **ptr = calloc((size_t)L * H + (size_t)nheads + 1, sizeof *ptr);
    float *logits = row_fn ? malloc((size_t)QK_LOGIT_ROWS * I->vocab * sizeof(float)) : NULL;
    float *buf = NULL;
    if (first && ptr) {
        int *count = first + L;
        for (int k = 0; k < nheads; k++)
            count[heads[k].layer]++;
        for (int l = 0; l < L; l++) {
            first[l] = l ? first[l - 1] + count[l - 1] : 0;
            maxc = count[l] > maxc ? count[l] : maxc;
        }
        if (maxc > 0)
            buf = malloc((size_t)maxc * n * cols * sizeof(float));
    }
    if (!first || !ptr || (row_fn && !logits) || (maxc > 0 && !buf)) {
        free(first);
        free(ptr);
        free(logits);
        free(buf);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    int *count = first + L, *kidx = first + 2 * L;
    float **qk = ptr + (size_t)L * H;
    int *fill = calloc((size_t)L + 1, sizeof(int));
    if (!fill) {
        free(first);
        free(ptr);
        free(logits);
        free(buf);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    for (int k = 0; k < nheads; k++) {
        const int l = heads[k].layer, slot = fill[l]++;
        float *b = buf + (size_t)slot * n * cols;
        ptr[(size_t)l * H + heads[k].head] = b;
        kidx[first[l] + slot] = k;
        qk[first[l] + slot] = b;
    }
    free(fill);
    qk_pass P = {first, count, kidx, qk, n, cols, qk_fn, ctx};
    layer_qk lq = {ptr, cols, qk_layer_done, &P};
    const int d = I->d_model;
    pthread_mutex_lock(&m->lock);
    float *x = decode_rows(m, tok, n, 0, nheads > 0 ? &lq : NULL);
    sg_arena *a = &m->arena;
    a->used = 0; /* keep only x (the first allocation) */
    sg_arena_alloc(a, (size_t)n * d * sizeof(float));
    int R = QK_LOGIT_ROWS;
    while (R > 1 && a->cap - a->used < sg_linear_scratch_bytes(&m->logits, R) + 64 * 4)
        R /= 2;
    if (row1 > n)
        row1 = n;
    for (int r0 = row0 < 0 ? 0 : row0; row_fn && r0 < row1; r0 += R) {
        const int rows = row1 - r0 < R ? row1 - r0 : R;
        float *xr = x + (size_t)r0 * d;
        sg_layernorm(xr, xr, rows, d, m->dec_ln_g, m->dec_ln_b, LN_EPS);
        sg_linear_forward(&m->logits, xr, rows, d, logits, I->vocab, m->pool, a);
        for (int i = 0; i < rows; i++)
            row_fn(ctx, r0 + i, logits + (size_t)i * I->vocab, I->vocab);
    }
    pthread_mutex_unlock(&m->lock);
    free(first);
    free(ptr);
    free(logits);
    free(buf);
    return SG_OK;
}

/* ---- languages ------------------------------------------------------------------------------ */

int32_t sg_whisper_language_token(const sg_whisper *m, const char *code)
{
    if (!m || !code || !m->info.multilingual)
        return -1;
    for (int i = 0; i < m->info.n_languages; i++)
        if (strcmp(LANGS[i], code) == 0)
            return m->info.sot + 1 + i;
    return -1;
}

const char *sg_whisper_language_code(const sg_whisper *m, int32_t token)
{
    if (!m || !m->info.multilingual)
        return NULL;
    const int i = token - m->info.sot - 1;
    return i >= 0 && i < m->info.n_languages ? LANGS[i] : NULL;
}

/* The most probable language token in logits (row of <|startoftranscript|>), all other tokens
 * masked as openai's detect_language does; *prob its softmax probability over the languages. */
static int32_t best_language(const sg_whisper *m, const float *logits, float *prob)
{
    const int32_t first = m->info.sot + 1;
    const int n = m->info.n_languages;
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[first + i] > logits[first + best])
            best = i;
    if (prob) {
        double s = 0;
        for (int i = 0; i < n; i++)
            s += exp((double)(logits[first + i] - logits[first + best]));
        *prob = (float)(1.0 / s);
    }
    return first + best;
}

sg_status sg_whisper_detect_language(sg_whisper *m, int32_t *token, float *prob, sg_error *err)
{
    const sg_whisper_info *I = &m->info;
    if (!I->multilingual || I->n_languages <= 0)
        return sg_error_set(err, SG_EINVAL, "language detection needs a multilingual model "
                            "(this one is English-only)");
    if (m->n_src <= 0)
        return sg_error_set(err, SG_EINVAL, "no encoded audio: call sg_whisper_encode first");
    float *logits = malloc((size_t)I->vocab * sizeof(float));
    if (!logits)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    pthread_mutex_lock(&m->lock);
    decode_step(m, &I->sot, 1, 0, logits);
    pthread_mutex_unlock(&m->lock);
    *token = best_language(m, logits, prob);
    free(logits);
    return SG_OK;
}

/* ---- greedy decoding --------------------------------------------------------------------------- */

/* log-softmax of x at index i (x holds -inf for suppressed tokens); the sum of exponentials is
 * nn's vectorised one (a scalar loop of double exp() over 51864 logits cost 0.4 ms per token) */
static float log_softmax_at(const float *x, int n, int i)
{
    return (float)((double)x[i] - sg_logsumexp(x, n));
}

void sg_whisper_result_free(sg_whisper_result *res)
{
    if (!res)
        return;
    free(res->tokens);
    free(res->logprobs);
    memset(res, 0, sizeof *res);
    res->language = -1;
}

sg_status sg_whisper_decode(sg_whisper *m, const sg_whisper_decode_opts *opts,
                            sg_whisper_result *res, sg_error *err)
{
    const sg_whisper_decode_opts defaults = {-1, false, 0};
    if (!opts)
        opts = &defaults;
    int sample_len = m->info.n_text_ctx / 2;
    if (opts->max_tokens > 0 && opts->max_tokens < sample_len)
        sample_len = opts->max_tokens;
    /* decoding.py's task without timestamps at temperature 0: sg_whisper_decode_ex's greedy path */
    const sg_whisper_decode_req q = {.language = m->info.multilingual ? opts->language : -1,
                                     .translate = opts->translate, .without_timestamps = true,
                                     .sample_len = sample_len};
    return sg_whisper_decode_ex(m, &q, res, err);
}

sg_status sg_whisper_decode_greedy(sg_whisper *m, int max_tokens, sg_whisper_result *res,
                                   sg_error *err)
{
    const sg_whisper_decode_opts o = {-1, false, max_tokens};
    return sg_whisper_decode(m, &o, res, err);
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

/* ---- general decoding (transcribe): prompt, timestamps, temperature ---------------------------- */

int32_t sg_whisper_sample(const float *logits, int n, float temperature, sg_whisper_rng *rng)
{
    /* Gumbel-max: argmax of x_i + G_i, G_i = -log(-log(u_i)) with one 53-bit uniform per id */
    int32_t best = -1;
    double best_score = -INFINITY;
    for (int i = 0; i < n; i++) {
        const double u = sg_whisper_rng_uniform53(rng);
        const float x = logits[i] / temperature;
        /* the noise is below 37 (u < 1 - 2^-53): ids that cannot win skip the two logs */
        if (x == -INFINITY || u <= 0.0 || (best >= 0 && (double)x + 37.0 < best_score))
            continue;
        const double score = (double)x - log(-log(u));
        if (best < 0 || score > best_score) {
            best = i;
            best_score = score;
        }
    }
    if (best < 0) /* every token masked (cannot happen with openai's filters) */
        for (int i = 0; i < n && best < 0; i++)
            if (logits[i] != -INFINITY)
                best = i;
    return best < 0 ? 0 : best;
}

/* openai's ApplyTimestampRules.apply on one row: sampled = the tokens since sample_begin. */
static void timestamp_rules(const sg_whisper_info *I, float *logits, const int32_t *sampled,
                            int ns, int max_initial_index)
{
    const int V = I->vocab, tb = I->no_timestamps + 1;
    logits[I->no_timestamps] = -INFINITY;
    const bool last_ts = ns >= 1 && sampled[ns - 1] >= tb;
    const bool penult_ts = ns < 2 || sampled[ns - 2] >= tb;
    if (last_ts) {
        if (penult_ts)
            for (int j = tb; j < V; j++)
                logits[j] = -INFINITY;
        else
            for (int j = 0; j < I->eot; j++)
                logits[j] = -INFINITY;
    }
    int last_stamp = -1;
    for (int i = 0; i < ns; i++)
        if (sampled[i] >= tb)
            last_stamp = sampled[i];
    if (last_stamp >= 0) {
        /* timestamps do not decrease, and a segment has a nonzero length */
        const int end = last_ts && !penult_ts ? last_stamp : last_stamp + 1;
        for (int j = tb; j < end && j < V; j++)
            logits[j] = -INFINITY;
    }
    if (ns == 0) {
        for (int j = 0; j < tb; j++)
            logits[j] = -INFINITY;
        if (max_initial_index >= 0)
            for (int j = tb + max_initial_index + 1; j < V; j++)
                logits[j] = -INFINITY;
    }
    /* when the timestamps together are more probable than any text token, sample a timestamp */
    float mx_ts = -INFINITY, mx_text = -INFINITY;
    for (int j = tb; j < V; j++)
        if (logits[j] > mx_ts)
            mx_ts = logits[j];
    for (int j = 0; j < tb; j++)
        if (logits[j] > mx_text)
            mx_text = logits[j];
    if (mx_ts == -INFINITY)
        return;
    double s = 0;
    for (int j = tb; j < V; j++)
        s += exp((double)logits[j] - (double)mx_ts);
    const double lse_ts = (double)mx_ts + log(s);
    /* both sides are log-probs with the same normaliser: compare the raw values */
    if (lse_ts > (double)mx_text)
        for (int j = 0; j < tb; j++)
            logits[j] = -INFINITY;
}

sg_status sg_whisper_decode_ex(sg_whisper *m, const sg_whisper_decode_req *q,
                               sg_whisper_result *res, sg_error *err)
{
    const sg_whisper_info *I = &m->info;
    memset(res, 0, sizeof *res);
    res->language = -1;
    if (!q)
        return sg_error_set(err, SG_EINVAL, "whisper decode: no request");
    if (m->n_src <= 0)
        return sg_error_set(err, SG_EINVAL, "no encoded audio: call sg_whisper_encode first");
    if (q->n_prompt && !q->prompt)
        return sg_error_set(err, SG_EINVAL, "whisper decode: prompt is NULL");
    if (!(q->temperature >= 0) || (q->temperature > 0 && !q->rng))
        return sg_error_set(err, SG_EINVAL, "whisper decode: bad temperature or no generator");
    if (!q->without_timestamps && I->no_timestamps + 1 >= I->vocab)
        return sg_error_set(err, SG_EINVAL, "this vocabulary has no timestamp tokens");
    int32_t lang = -1;
    if (I->multilingual) {
        lang = q->language;
        /* -1 without a prompt: detected from the <|startoftranscript|> step below */
        if (!(lang == -1 && q->n_prompt == 0) && !sg_whisper_language_code(m, lang))
            return sg_error_set(err, SG_EINVAL, "token %d is not a language token of this model",
                                (int)lang);
    }
    const int n_ctx = I->n_text_ctx, V = I->vocab;
    int sample_len = q->sample_len > 0 ? q->sample_len : n_ctx / 2;
    size_t np = q->n_prompt;
    const size_t keep = (size_t)(n_ctx / 2 - 1);
    if (np > keep)
        np = keep;
    const size_t cap = np + 8 + (size_t)sample_len + 1;
    int32_t *seq = malloc(cap * sizeof *seq);
    float *logits = malloc((size_t)V * sizeof(float));
    res->logprobs = malloc((size_t)sample_len * sizeof(float));
    if (!seq || !logits || !res->logprobs) {
        free(seq);
        free(logits);
        sg_whisper_result_free(res);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    int n = 0;
    if (np > 0) {
        seq[n++] = I->sot_prev;
        memcpy(seq + n, q->prompt + (q->n_prompt - np), np * sizeof *seq);
        n += (int)np;
    }
    const int sot_index = n;
    seq[n++] = I->sot;
    if (I->multilingual) {
        seq[n++] = lang;
        seq[n++] = q->translate ? I->translate : I->transcribe;
    }
    if (q->without_timestamps)
        seq[n++] = I->no_timestamps;
    res->language = lang;
    const int sample_begin = n;
    int max_initial = -1;
    if (!q->without_timestamps && q->max_initial_timestamp > 0) {
        const double precision = 30.0 / (double)I->n_audio_ctx;
        max_initial = (int)nearbyint((double)q->max_initial_timestamp / precision);
    }
    const int32_t specials[6] = {I->transcribe, I->translate, I->sot, I->sot_prev, I->sot_lm,
                                 I->no_speech};
    pthread_mutex_lock(&m->lock);
    /* up to <|startoftranscript|> first: its logits give no_speech_prob (openai's sot_index row
     * of the first forward pass; the causal mask makes it the same) and, without a prompt, the
     * language when it is to be detected (detect_language runs this very step) */
    decode_step(m, seq, sot_index + 1, 0, logits);
    res->no_speech_prob = expf(log_softmax_at(logits, V, I->no_speech));
    if (I->multilingual && lang < 0) {
        lang = best_language(m, logits, NULL);
        seq[sot_index + 1] = lang;
        res->language = lang;
    }
    int fed = sot_index + 1;
    double sum_lp = 0;
    for (int step = 0; step < sample_len; step++) {
        if (n > fed) {
            decode_step(m, seq + fed, n - fed, fed, logits);
            fed = n;
        }
        if (n == sample_begin)
            for (int i = 0; i < m->n_begin_suppress; i++)
                logits[m->begin_suppress[i]] = -INFINITY;
        for (int i = 0; i < m->n_suppress; i++)
            if (m->suppress[i] >= 0)
                logits[m->suppress[i]] = -INFINITY;
        for (int i = 0; i < 6; i++)
            if (specials[i] >= 0 && specials[i] < V)
                logits[specials[i]] = -INFINITY;
        if (!q->without_timestamps)
            timestamp_rules(I, logits, seq + sample_begin, n - sample_begin, max_initial);
        int best = 0;
        if (q->temperature > 0)
            best = sg_whisper_sample(logits, V, q->temperature, q->rng);
        else
            for (int j = 1; j < V; j++)
                if (logits[j] > logits[best])
                    best = j;
        const float lp = log_softmax_at(logits, V, best);
        if (seq[n - 1] != I->eot)
            sum_lp += lp;
        res->logprobs[res->n_logprobs++] = lp;
        seq[n++] = best;
        if (best == I->eot || n > n_ctx)
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

const char *sg_whisper_special_text(const sg_whisper *m, int32_t id, char *buf, size_t cap)
{
    const sg_whisper_info *I = &m->info;
    if (id == I->eot)
        return "<|endoftext|>";
    if (id == I->sot)
        return "<|startoftranscript|>";
    if (id == I->translate)
        return "<|translate|>";
    if (id == I->transcribe)
        return "<|transcribe|>";
    if (id == I->sot_lm)
        return "<|startoflm|>";
    if (id == I->sot_prev)
        return "<|startofprev|>";
    if (id == I->no_speech)
        return "<|nospeech|>";
    if (id == I->no_timestamps)
        return "<|notimestamps|>";
    /* language slots between <|startoftranscript|> and <|translate|> (.en vocabularies keep 99) */
    const int i = id - I->sot - 1;
    if (i >= 0 && id < I->translate && i < N_LANGS) {
        snprintf(buf, cap, "<|%s|>", LANGS[i]);
        return buf;
    }
    return NULL;
}

static uint8_t rank_byte(int r);

/* A whisper.cpp file's vocabulary as tiktoken ranks: the single bytes restored, the entries
 * whisper.cpp stored as U+FFFD (pieces of characters) unknown. */
static sg_bpe *ggml_encoder(const sg_whisper *m, sg_error *err)
{
    const int32_t n = m->info.eot < m->ggml.n_tokens ? m->info.eot : m->ggml.n_tokens;
    const uint8_t **tok = calloc((size_t)(n > 0 ? n : 1), sizeof *tok);
    size_t *len = calloc((size_t)(n > 0 ? n : 1), sizeof *len);
    uint8_t bytes[256];
    sg_bpe *b = NULL;
    if (!tok || !len)
        sg_error_set(err, SG_ENOMEM, "out of memory");
    else {
        for (int32_t id = 0; id < n; id++) {
            size_t l = 0;
            const char *t = sg_wggml_token(&m->ggml, id, &l);
            if (id < 256) {
                bytes[id] = rank_byte(id);
                tok[id] = bytes + id;
                len[id] = 1;
            } else if (t && !(l == 3 && memcmp(t, "\xEF\xBF\xBD", 3) == 0)) {
                tok[id] = (const uint8_t *)t;
                len[id] = l;
            }
        }
        b = sg_bpe_load_ranks(tok, len, n, err);
    }
    free(tok);
    free(len);
    return b;
}

sg_status sg_whisper_encode_text(sg_whisper *m, const char *text, int32_t **ids, size_t *n,
                                 sg_error *err)
{
    *ids = NULL;
    *n = 0;
    if (m->bpe)
        return sg_bpe_encode(m->bpe, text, strlen(text), ids, n, err);
    if (m->ggml.n_tokens <= 0)
        return sg_error_set(err, SG_EUNSUPPORTED,
                            "this model has no vocabulary to encode text (a directory without "
                            "tokenizer files)");
    sg_error e = {0};
    pthread_mutex_lock(&m->lock);
    if (!m->ggml_bpe)
        m->ggml_bpe = ggml_encoder(m, &e);
    sg_bpe *b = m->ggml_bpe;
    pthread_mutex_unlock(&m->lock);
    if (!b)
        return sg_error_set(err, e.code ? e.code : SG_ENOMEM, "%s", e.msg);
    return sg_bpe_encode(b, text, strlen(text), ids, n, err);
}

/* ---- vocabulary ----------------------------------------------------------------------------- */

bool sg_whisper_has_vocab(const sg_whisper *m)
{
    return m && (m->bpe || m->ggml.n_tokens > 0);
}

/* GPT-2's first 256 ranks are the single bytes in bytes_to_unicode() order: the printable
 * ones (! .. ~, ¡ .. ¬, ® .. ÿ), then the other 68 in byte order. */
static uint8_t rank_byte(int r)
{
    int k = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        if (printable && k++ == r)
            return (uint8_t)b;
    }
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        if (!printable && k++ == r)
            return (uint8_t)b;
    }
    return 0;
}

/* Token bytes. whisper.cpp's files hold U+FFFD for tokens that are not valid UTF-8: the 256
 * single-byte tokens get their bytes back (their ranks are fixed), longer pieces of characters
 * stay U+FFFD (as whisper.cpp prints them). */
static const char *token_bytes(const sg_whisper *m, int32_t id, size_t *len, char *one)
{
    if (m->bpe)
        return sg_bpe_token_bytes(m->bpe, id, len);
    const char *t = sg_wggml_token(&m->ggml, id, len);
    if (t && id < 256) {
        *one = (char)rank_byte(id);
        *len = 1;
        return one;
    }
    return t;
}

/* Length of the longest prefix of s[0..n) (n >= 1, s[0] not starting a valid sequence) that
 * could begin a valid sequence: Python's "replace" error handler emits one U+FFFD for it. */
static size_t invalid_prefix(const unsigned char *s, size_t n)
{
    const unsigned char b = s[0];
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
        need = 1;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        if (b == 0xE0)
            lo = 0xA0;
        if (b == 0xED)
            hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        if (b == 0xF0)
            lo = 0x90;
        if (b == 0xF4)
            hi = 0x8F;
    } else
        return 1;
    size_t k = 1;
    for (int i = 0; i < need && k < n; i++, k++) {
        const unsigned char c = s[k];
        if (i == 0 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF))
            break;
    }
    return k;
}

char *sg_whisper_detokenize(const sg_whisper *m, const int32_t *tokens, size_t n)
{
    if (!sg_whisper_has_vocab(m) || (!tokens && n))
        return NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        char one;
        if (tokens[i] >= 0 && tokens[i] < m->info.eot && token_bytes(m, tokens[i], &len, &one))
            total += len;
    }
    unsigned char *raw = malloc(total + 1);
    char *out = raw && total <= SIZE_MAX / 3 - 1 ? malloc(3 * total + 1) : NULL;
    if (!out) {
        free(raw);
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        char one;
        const char *t = tokens[i] >= 0 && tokens[i] < m->info.eot
                            ? token_bytes(m, tokens[i], &len, &one)
                            : NULL;
        if (t) {
            memcpy(raw + o, t, len);
            o += len;
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < total;) {
        size_t k = sg_utf8_seq_len(raw + i, total - i);
        if (k) {
            memcpy(out + w, raw + i, k);
            w += k;
            i += k;
        } else {
            memcpy(out + w, "\xEF\xBF\xBD", 3);
            w += 3;
            i += invalid_prefix(raw + i, total - i);
        }
    }
    out[w] = 0;
    free(raw);
    return out;
}

const float *sg_whisper_mel_filters(const sg_whisper *m)
{
    if (!m || !m->ggml.filters || m->ggml.n_mel != m->info.n_mels || m->ggml.n_fft != 201)
        return NULL;
    return m->ggml.filters;
}
