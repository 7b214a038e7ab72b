/* The SNN student in memory (struct sg_snn: blocks, embedding, head) and the loader's interface,
 * shared by the model's files and private to them: snn_load.c builds the model from a directory,
 * snn_quant.c quantises weights (at load and for `sg quantize`), snn.c runs it. */
#ifndef SG_MODELS_SNN_MODEL_H
#define SG_MODELS_SNN_MODEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/gpt2_tokenizer.h"
#include "models/snn.h"
#include "nn/arena.h"
#include "nn/linear.h"
#include "nn/ptfile.h"
#include "nn/safetensors.h"
#include "nn/spike.h"
#include "nn/weights.h"

#define SNN_LN_EPS 1e-5f
#define SNN_MAX_DIM 8192
#define SNN_MAX_DEPTH 64
#define SNN_MAX_VOCAB (1 << 22)
#define SNN_INT8_FORMAT "sg-snn-int8"
/* Block 0 shifts each row's softmax sums by the row's score against its own key; a key this far
 * above that would overflow exp(), and such a row is recomputed from its maximum at every step
 * instead (sg_snn_set_shift_limit lowers it for tests). */
#define SNN_SHIFT_LIMIT 60.0f

typedef struct snn_block {
    /* attn.attn.in_proj: all of q, k, v for blocks before the last; the last block (when it is not
     * the first) gets q (one row per step) and k|v (every row) as two layers */
    sg_linear qkv, q, kv;
    sg_linear out;               /* attn.attn.out_proj (block 0: without its bias, out_bias) */
    float *out_bias;
    float *attn_norm_g, *attn_norm_b; /* attn.norm */
    sg_spike_linear ff0, ff3;    /* ff.0 [hidden, dim], ff.3 [dim, hidden]: inputs are spikes */
    float *norm_g, *norm_b;      /* norm */
} snn_block;

/* Token embeddings, read a row at a time when a token is looked up: rows of the mapped file or an
 * owned copy, F32/F16/BF16, or I8 with per-row scales (the int8 file). */
typedef struct snn_embedding {
    const void *rows;
    sg_dtype dtype;
    const float *scale;  /* I8: [vocab] */
    void *owned;         /* what the model frees: a copy of the rows, or the I8 scales */
} snn_embedding;

/* The vocabulary head: Q8 at every precision (in f32 it screens the vocabulary), f32 rows and per
 * row bounds on the Q8 error in f32 (see load_head in snn_load.c, head_argmax in snn.c). */
typedef struct snn_head {
    sg_linear q8;
    const float *w;         /* f32: [vocab][dim] row-major (mapped or owned) */
    float *w_owned;
    float *bias;            /* [vocab] */
    float *qabs;            /* f32: [vocab] scale * sum |q| of the row: bounds the activation error */
    float *werr;            /* f32: [vocab] max |w - scale q| of the row: bounds the weight error */
    float qabs_max, werr_max, bias_max;
    long rows_computed;     /* rows the f32 screening kept (statistics) */
} snn_head;

struct sg_snn {
    sg_snn_info info;
    char weights_name[32];
    snn_block *blk;
    snn_embedding emb;
    snn_head head;
    sg_bpe *tok;
    sg_st_file *st;         /* the weight file, kept mapped for the embedding and head rows */
    sg_pt_file *pt;
    sg_pool *pool;
    pthread_mutex_t lock;
    sg_arena arena;
    double firing;          /* spike rate of the last generation */
    float shift_limit;      /* SNN_SHIFT_LIMIT; tests lower it */
};

/* ---- The loader (snn_load.c) ---- */

/* metadata.json's architecture */
typedef struct snn_meta {
    int vocab, dim, depth, heads; /* vocab 0: take it from embed.weight */
    float threshold;
} snn_meta;

/* One directory's weights being read. Every call does nothing once an error has happened:
 * w.st keeps the first, w.err names the file and tensor. w.f is model.safetensors (NULL for
 * student.pt, when only w's err, st and bytes are used); w.bytes counts the memory the loaded
 * weights hold (every f32 tensor read counts until it is dropped: snn_drop_f32). */
typedef struct snn_loader {
    sg_weights w;
    sg_pt_file *pt;
    snn_meta md;
    const char *dir;
    char file[4200];        /* the weight file's path, for messages */
    char weights_name[32];  /* "student.pt" or "model.safetensors" */
    bool q8file;            /* the int8 format */
    sg_pool *pool;          /* for quantising at load; may be NULL */
} snn_loader;

/* A tensor of the file: its dtype and shape, data NULL unless contiguous row-major. */
typedef struct snn_tensor {
    sg_dtype dtype;
    int ndim;
    int64_t shape[SG_ST_MAX_DIMS];
    const void *data;
} snn_tensor;

/* Reads dir's metadata.json, opens student.pt (else model.safetensors) and settles the vocabulary
 * and depth against the file. On error l->w.st is set (and returned); snn_loader_close frees. */
sg_status snn_loader_open(snn_loader *l, const char *dir, sg_pool *pool, sg_error *err);
void snn_loader_close(snn_loader *l);
bool snn_find(const snn_loader *l, const char *name, snn_tensor *t);
/* Finds name and checks its shape against what metadata.json implies ([d0] when d1 is 0). */
bool snn_want(snn_loader *l, const char *name, int64_t d0, int64_t d1, snn_tensor *t);
/* A tensor as f32 (malloc'ed, counted in w.bytes), dequantised when the file is int8. */
float *snn_get_f32(snn_loader *l, const char *name, int64_t d0, int64_t d1);
/* Frees an f32 tensor of count floats that snn_get_f32 gave and the model does not keep. */
void snn_drop_f32(snn_loader *l, float *p, size_t count);
/* A weight matrix [n, k] as f32: straight from the mapping when the file holds it as contiguous
 * F32, else converted into *owned (counted). */
const float *snn_f32_view(snn_loader *l, const char *name, int n, int k, float **owned);
/* The per-row scales of an int8 tensor, name + "_scale": F32 [rows], finite and >= 0. */
float *snn_get_scales(snn_loader *l, const char *name, int64_t rows);
/* Whether a file of the model directory belongs to the tokenizer (vocab.json, merges.txt,
 * *.tiktoken). */
bool snn_is_tokenizer_file(const char *name);

/* ---- Quantisation (snn_quant.c) ---- */

/* A weight matrix [n, k] as int8 rows and per-row scales (malloc'ed): read from the int8 file, or
 * quantised from f32 exactly as sg_linear_init does. */
sg_status snn_get_q8(snn_loader *l, const char *name, int n, int k, int8_t **q, float **scale);
/* Rows w[n][k] quantised as vec.h's quantize_row does, on the pool for large matrices; qabs and
 * err (or NULL) get the screening bounds of each row. */
void snn_quantize_rows(sg_pool *pool, const float *w, int n, int k, int8_t *q, float *scale,
                       float *qabs, float *err);

/* ---- The forward (snn.c) ---- */

/* Arena bytes of one call with a context of up to lmax tokens. */
size_t snn_call_bytes(const sg_snn *m, int lmax);

#endif
