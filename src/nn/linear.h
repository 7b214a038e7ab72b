/* Linear layers y = x W^T + b (PyTorch's nn.Linear layout: W is [n, k], row-major) in two
 * precisions:
 *   F32: weights repacked once at load into column panels for the SIMD micro-kernels.
 *   Q8:  int8 weights, symmetric per output row (scale_n = max|W[n,:]| / 127); activations are
 *        quantized per row at run time (symmetric, scale_m = max|x[m,:]| / 127) and multiplied in
 *        int32 (AVX-512 VNNI vpdpbusd on u8 x s8 with a +128 offset compensated by per-row weight
 *        sums; AVX2 and scalar compute the same integers), then y = acc * scale_m * scale_n + b.
 *        Quantisation rounds to nearest with ties to even (the default FP mode; cvtps2dq and
 *        nearbyintf agree) at every level and for the weights. Q8 needs k <= 65536 (int32).
 * Every level (scalar, AVX2, AVX-512) computes the same function: F32 up to float rounding order,
 * Q8 bit-exact in the integer accumulators. Work is split over output columns on the pool. */
#ifndef SG_NN_LINEAR_H
#define SG_NN_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "nn/arena.h"
#include "nn/pool.h"

typedef enum sg_precision { SG_PREC_F32 = 0, SG_PREC_Q8 = 1 } sg_precision;

typedef struct sg_linear {
    int n, k;               /* out features, in features */
    sg_precision prec;
    float *bias;            /* [n] or NULL, owned */
    /* F32 */
    float *packed;          /* panel-packed weights, owned (layout private to linear.c) */
    /* Q8 */
    int8_t *q;              /* packed int8 weights, owned (layout private) */
    float *scale;           /* [n] per-row weight scales */
    int32_t *qsum;          /* [n] sum of each row's int8 weights (for the u8 offset) */
    size_t bytes;           /* memory held, for reporting */
} sg_linear;

/* Builds a layer from row-major f32 weights w[n*k] (copied/converted; w may be freed after) and
 * an optional bias[n]. L is overwritten (not freed first); on error it is left empty. */
sg_status sg_linear_init(sg_linear *L, const float *w, const float *bias, int n, int k,
                         sg_precision prec, sg_error *err);
/* The same from rows produced on demand: rows(ctx, r0, nrows, dst) writes rows r0 .. r0 + nrows
 * of W ([nrows, k] f32, nrows <= SG_LINEAR_NR) into dst. Called once per panel in order, so only
 * one panel of f32 rows exists at a time (a large tied embedding converted from a mapped file
 * needs no full f32 copy). Gives exactly the layer sg_linear_init gives for the same rows. */
typedef void (*sg_linear_rows_fn)(void *ctx, int r0, int nrows, float *dst);
sg_status sg_linear_init_rows(sg_linear *L, int n, int k, sg_precision prec, const float *bias,
                              sg_linear_rows_fn rows, void *ctx, sg_error *err);
/* Builds a Q8 layer from already-quantized int8 rows q[n*k] and scales[n] (a saved model). */
sg_status sg_linear_init_q8(sg_linear *L, const int8_t *q, const float *scales, const float *bias,
                            int n, int k, sg_error *err);
void sg_linear_free(sg_linear *L);

/* y[m, n] = x[m, k] W^T + b. x has row stride ldx (>= k) floats, y row stride ldy (>= n). Scratch
 * (for the Q8 activation quantisation: sg_linear_scratch_bytes, about m * 2k bytes) comes from
 * the arena, which must have room; it is given back before returning. If it has no room, y is
 * filled with NaN (a caller bug made visible; nothing is allocated). pool may be NULL. */
void sg_linear_forward(const sg_linear *L, const float *x, int m, int ldx, float *y, int ldy,
                       sg_pool *pool, sg_arena *scratch);
/* Arena bytes sg_linear_forward needs for m rows (0 for F32). */
size_t sg_linear_scratch_bytes(const sg_linear *L, int m);
/* count (<= SG_LINEAR_MULTI) layers with the same k and precision on the same input x, in one
 * parallel region (the input quantised once): ys[i][m, Ls[i]->n] (row stride ldys[i]) =
 * x Ls[i]->W^T + b. The same results as count sg_linear_forward calls; for few rows (one decoded
 * token), where each region's start and end cost as much as a small layer's work. */
#define SG_LINEAR_MULTI 8
void sg_linear_forward_multi(const sg_linear *const *Ls, int count, const float *x, int m, int ldx,
                             float *const *ys, const int *ldys, sg_pool *pool, sg_arena *scratch);

/* ---- Internal to nn/: kernel entry points, one per ISA level, each defined in its own file
 * (linear.c, linear_avx2.c, linear_avx512.c) so it can be compiled with that ISA's flags. ---- */

/* Packed panel width in output columns, shared by every level so that a layer packed once can
 * run at any level (tests switch levels on the same layer). F32 panel p is a k x SG_LINEAR_NR
 * row-major block holding columns [p*NR, p*NR+NR) (zero padded). Q8 panel p holds, for each
 * group of 4 k, SG_LINEAR_NR columns x 4 int8 (the VNNI layout), k zero padded to k4. */
#define SG_LINEAR_NR 32

/* c[m, n] (row stride ldc) = (accumulate ? c : 0) + a[m, k] (stride lda) . b[k, n] (stride ldb)
 * (+ bias[n] if not NULL). b is k-major: for linear layers a packed panel (ldb = SG_LINEAR_NR),
 * for attention K^T or V. accumulate lets callers split k into cache-sized blocks. (No software
 * prefetch here, unlike the Q8 kernel: for f32 it measured slower than the hardware prefetcher
 * with weights streamed from DRAM.) */
typedef void (*sg_gemm_f32_fn)(int m, int n, int k, const float *a, long lda, const float *b,
                               long ldb, float *c, long ldc, const float *bias, int accumulate);
void sg_gemm_f32_scalar(int m, int n, int k, const float *a, long lda, const float *b, long ldb,
                        float *c, long ldc, const float *bias, int accumulate);
void sg_gemm_f32_avx2(int m, int n, int k, const float *a, long lda, const float *b, long ldb,
                      float *c, long ldc, const float *bias, int accumulate);
void sg_gemm_f32_avx512(int m, int n, int k, const float *a, long lda, const float *b, long ldb,
                        float *c, long ldc, const float *bias, int accumulate);
void sg_gemm_f32_neon(int m, int n, int k, const float *a, long lda, const float *b, long ldb,
                      float *c, long ldc, const float *bias, int accumulate);
/* The f32 GEMM of the current level. */
sg_gemm_f32_fn sg_gemm_f32_get(void);

/* Q8 activation quantisation, identical at every level: per row, maxabs = max |x|,
 * inv = sg_q8_inv(maxabs), v = x * inv clamped to [-127, 127] (NaN -> 127), q = nearest integer
 * with ties to even (the default rounding mode, which cvtps2dq also uses), scale = maxabs / 127.
 * Storage per level: scalar int8 q, AVX2 int16 q, AVX-512 uint8 q + 128; rows of stride ldq
 * bytes, zero-q padded from k to k4. */
static inline float sg_q8_inv(float maxabs)
{
    float inv = 127.0f / maxabs;
    /* all-zero rows (and denormal ones, whose inverse overflows) quantise to 0 */
    return maxabs > 0.0f && inv <= 3.4e38f ? inv : 0.0f;
}
typedef void (*sg_q8_quantize_fn)(const float *x, long ldx, int m, int k, int k4, void *xq,
                                  long ldq, float *xscale);
void sg_q8_quantize_scalar(const float *x, long ldx, int m, int k, int k4, void *xq, long ldq,
                           float *xscale);
void sg_q8_quantize_avx2(const float *x, long ldx, int m, int k, int k4, void *xq, long ldq,
                         float *xscale);
void sg_q8_quantize_avx512(const float *x, long ldx, int m, int k, int k4, void *xq, long ldq,
                           float *xscale);
/* One Q8 panel: y[m, ncols] = (acc * (xscale[r] * wscale[j])) + bias[j], acc the exact int32
 * dot product of quantised row r and weight column j. qsum/wscale/bias point at the panel's
 * first column (bias may be NULL). */
typedef void (*sg_q8_panel_fn)(int m, int ncols, int k4, const void *xq, long ldq,
                               const float *xscale, const int8_t *panel, const int32_t *qsum,
                               const float *wscale, const float *bias, float *y, long ldy);
void sg_q8_panel_scalar(int m, int ncols, int k4, const void *xq, long ldq, const float *xscale,
                        const int8_t *panel, const int32_t *qsum, const float *wscale,
                        const float *bias, float *y, long ldy);
void sg_q8_panel_avx2(int m, int ncols, int k4, const void *xq, long ldq, const float *xscale,
                      const int8_t *panel, const int32_t *qsum, const float *wscale,
                      const float *bias, float *y, long ldy);
void sg_q8_panel_avx512(int m, int ncols, int k4, const void *xq, long ldq, const float *xscale,
                        const int8_t *panel, const int32_t *qsum, const float *wscale,
                        const float *bias, float *y, long ldy);
/* ARM (int8 activations, the scalar quantiser's format): widening multiplies (linear_neon.c) and
 * SDOT (linear_dotprod.c, aarch64 with the dot-product extension) */
void sg_q8_panel_neon(int m, int ncols, int k4, const void *xq, long ldq, const float *xscale,
                      const int8_t *panel, const int32_t *qsum, const float *wscale,
                      const float *bias, float *y, long ldy);
void sg_q8_panel_dotprod(int m, int ncols, int k4, const void *xq, long ldq, const float *xscale,
                         const int8_t *panel, const int32_t *qsum, const float *wscale,
                         const float *bias, float *y, long ldy);
/* The Q8 panel epilogue shared by the ARM kernels: y from the int32 sums of one row, written as
 * the scalar twin computes it (so every level rounds alike). */
static inline void sg_q8_panel_store_row(int ncols, const int32_t *acc, float xs,
                                         const float *wscale, const float *bias, float *yrow)
{
    for (int j = 0; j < ncols; j++) {
        const float s = xs * wscale[j];
        const float v = (float)acc[j] * s;
        yrow[j] = bias ? v + bias[j] : v;
    }
}

/* W8 panel: y[m, ncols] (row stride ldy) = (x[m, k] (stride ldx) . panel[k][SG_LINEAR_NR]) *
 * wscale[j], with f32 activations, int8 weights held k-major in a panel of SG_LINEAR_NR columns
 * (columns past ncols ignored) and one scale per column, summed in f32. For attention over int8
 * keys and values (nn/kv.h), where quantising the queries or the softmax weights as Q8
 * activations would cost accuracy. The levels differ only in the order of the f32 sums. */
typedef void (*sg_w8_panel_fn)(int m, int ncols, int k, const float *x, long ldx,
                               const int8_t *panel, const float *wscale, float *y, long ldy);
void sg_w8_panel_scalar(int m, int ncols, int k, const float *x, long ldx, const int8_t *panel,
                        const float *wscale, float *y, long ldy);
void sg_w8_panel_avx2(int m, int ncols, int k, const float *x, long ldx, const int8_t *panel,
                      const float *wscale, float *y, long ldy);
void sg_w8_panel_avx512(int m, int ncols, int k, const float *x, long ldx, const int8_t *panel,
                        const float *wscale, float *y, long ldy);
sg_w8_panel_fn sg_w8_panel_get(void);

/* Quantises rows w[n][k] (row stride ldw) per row, exactly as sg_linear_init quantises weights,
 * into Q8 panels at dst (ceil(n / SG_LINEAR_NR) panels of SG_LINEAR_NR x k4 bytes, k4 = k rounded
 * up to 4; rows past n and values past k zero) with scale[n] and qsum[n] (the rows' sums, for the
 * panel kernel's offset). tmp: sg_q8_pack_tmp_bytes(k) bytes. For keys/values packed at run time. */
void sg_q8_pack_rows(const float *w, long ldw, int n, int k, int8_t *dst, float *scale,
                     int32_t *qsum, void *tmp);
size_t sg_q8_pack_tmp_bytes(int k);
/* The same quantisation into plain int8 rows q[n][k] (row stride ldq bytes), at the speed of the
 * level's quantiser; tmp: sg_q8_pack_tmp_bytes(k) bytes. */
void sg_q8_rows(const float *w, long ldw, int n, int k, int8_t *q, long ldq, float *scale,
                void *tmp);

#endif
