/* Element-wise and row-wise operations of transformer models, in FP32, each with a scalar
 * reference and SIMD versions chosen by sg_cpu_level_get(). All take row-major buffers. */
#ifndef SG_NN_OPS_H
#define SG_NN_OPS_H

#include <stdbool.h>

#include "nn/arena.h"
#include "nn/pool.h"

/* y[r,:] = (x[r,:] - mean) / sqrt(var + eps) * g + b over dim; y may alias x. */
void sg_layernorm(const float *x, float *y, int rows, int dim, const float *g, const float *b,
                  float eps);
/* In-place softmax of each row (max-subtracted). */
void sg_softmax_rows(float *x, int rows, int cols);
/* Exact GELU x * 0.5 * (1 + erf(x / sqrt 2)), in place. */
void sg_gelu_erf(float *x, long n);
/* quick_gelu x * sigmoid(1.702 x), in place. */
void sg_quick_gelu(float *x, long n);
/* x += y */
void sg_add(float *x, const float *y, long n);
/* log(sum_i exp(x[i])), max-subtracted, the exponentials summed in double: -inf when every x is
 * -inf (or n <= 0), NaN if any x is NaN. For log-probabilities over a large vocabulary
 * (log_softmax(x)[i] = x[i] - sg_logsumexp(x, n)). */
double sg_logsumexp(const float *x, long n);

/* Multi-head scaled dot-product attention on a fused qkv buffer: qkv is [seq, 3*d] (q | k | v per
 * row, heads of head_dim = d / heads contiguous inside each), out is [seq, d]. causal masks
 * positions j > i. Heads are split over the pool. Scratch per parallel task: K^T of one head and
 * the scores of a block of query rows, (min(seq, 64) + head_dim) * seq floats, see
 * sg_attention_scratch_bytes (nthreads = sg_pool_size(pool)); it is given back on return. If the
 * arena has no room, out is filled with NaN. d must be a multiple of heads. */
void sg_attention(const float *qkv, float *out, int seq, int d, int heads, bool causal,
                  sg_pool *pool, sg_arena *scratch);
unsigned long sg_attention_scratch_bytes(int seq, int d, int heads, int nthreads);

/* ---- Internal to nn/: per-level kernels behind the functions above (ops.c holds the scalar
 * references and the dispatch, ops_avx2.c / ops_avx512.c / ops_neon.c the SIMD versions). ---- */
typedef struct sg_ops_kernels {
    void (*layernorm)(const float *x, float *y, int rows, int dim, const float *g, const float *b,
                      float eps);
    void (*softmax)(float *x, int n); /* one row */
    void (*gelu_erf)(float *x, long n);
    void (*quick_gelu)(float *x, long n);
    void (*add)(float *x, const float *y, long n);
    double (*logsumexp)(const float *x, long n); /* n >= 1 */
} sg_ops_kernels;
extern const sg_ops_kernels sg_ops_scalar, sg_ops_avx2, sg_ops_avx512;
/* A layernorm row's mean and 1 / sqrt(var + eps), summed in double (the scalar reference's; the
 * NEON kernel shares it, so its rows are bit-identical) */
void sg_layernorm_row_stats(const float *xr, int dim, float eps, float *meanf, float *rstd);
/* The reference's normalising pass over a row's elements [from, dim): (x - mean) * rstd * g + b,
 * multiply then add (the scalar level, and the tail of a SIMD row) */
void sg_layernorm_row_apply(const float *xr, float *yr, int from, int dim, float meanf, float rstd,
                            const float *g, const float *b);
/* ARM (ops_neon.c), for NEON and dot-product machines alike */
extern const sg_ops_kernels sg_ops_neon;

#endif
