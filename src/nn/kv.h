/* Attention keys and values packed for queries of a few rows: a decoder's cross-attention, where
 * the encoder's keys and values are stored once per window and read by every decoded token. Per
 * head, K (n x hd) and V^T (hd x n) are kept k-major in panels of SG_LINEAR_NR columns, so that
 * one query row's scores and weighted sum stream contiguous panels:
 *   F32: f32 panels through the f32 GEMM (a plain softmax(q K^T * scale) V up to rounding order);
 *   Q8:  int8, symmetric per key (row of K) and per value channel (row of V^T, over the stored
 *        positions), quantised as sg_linear quantises weights, through the W8 panel kernel (f32
 *        x int8): the queries and the softmax weights stay f32 (quantising the weights of a flat
 *        softmax over 1500 keys to 7 bits cost 4% of the output). A token reads 1 byte per
 *        key/value element instead of 4 (base.en, 30 s window: 9.4 MB instead of 37 MB).
 * Levels differ only in the order of f32 sums and in the softmax (nn/ops.h); the stored bytes are
 * the same at every level. */
#ifndef SG_NN_KV_H
#define SG_NN_KV_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "nn/arena.h"
#include "nn/linear.h"
#include "nn/pool.h"

typedef struct sg_kv {
    sg_precision prec;
    int heads, hd, cap; /* capacity in positions */
    int n;              /* positions stored (0: empty) */
    size_t kstride, vstride; /* bytes of one head's K panels, V^T panels */
    void *k, *v;             /* [heads] x K panels, [heads] x V^T panels */
    float *kscale, *vscale;  /* Q8: [heads][cap] per key, [heads][hd] per value channel */
    size_t bytes;            /* memory held */
} sg_kv;

/* An empty cache for up to cap positions of heads x hd. Errors: SG_EINVAL (sizes), SG_ENOMEM. */
sg_status sg_kv_init(sg_kv *kv, sg_precision prec, int heads, int hd, int cap, sg_error *err);
void sg_kv_free(sg_kv *kv);

/* Replaces the contents with n (1..cap) positions: k and v are [n][heads * hd] with row strides
 * ldk, ldv (head h's part at column h * hd). Heads are split over the pool; scratch needs
 * sg_kv_store_scratch_bytes (given back on return; with no room the cache is left empty). */
void sg_kv_store(sg_kv *kv, const float *k, int ldk, const float *v, int ldv, int n,
                 sg_pool *pool, sg_arena *scratch);
size_t sg_kv_store_scratch_bytes(const sg_kv *kv, int n, int nthreads);

/* out[m][heads * hd] (row stride ldo) = softmax(q K^T * scale) V per head over all stored
 * positions, for m query rows q[m][heads * hd] (stride ldq). Heads are split over the pool;
 * scratch needs sg_kv_attend_scratch_bytes (enough for any number of stored positions; given back
 * on return; with no room, or an empty cache, out is filled with NaN). */
void sg_kv_attend(const sg_kv *kv, const float *q, int m, int ldq, float scale, float *out,
                  int ldo, sg_pool *pool, sg_arena *scratch);
size_t sg_kv_attend_scratch_bytes(const sg_kv *kv, int m, int nthreads);

/* sg_kv_attend that also copies, for every head h with qk[h] != NULL, the scaled scores
 * q K^T * scale before the softmax (openai's cross-attention "qk" with scale = hd^-0.5) to
 * qk[h][i * ldqk + j] for the m rows i and the first min(ldqk, kv->n) stored positions j. At Q8
 * they are the scores of the int8 keys. qk NULL is sg_kv_attend. */
void sg_kv_attend_qk(const sg_kv *kv, const float *q, int m, int ldq, float scale, float *out,
                     int ldo, float *const *qk, int ldqk, sg_pool *pool, sg_arena *scratch);

#endif
