/* The spike layer: a linear layer whose inputs are exact 0/1 spikes (a spiking network's
 * feed-forward), y = b + the sum of the weight columns whose input fired, so the work is
 * proportional to the firing rate and nothing multiplies. F32 sums the f32 columns in input order;
 * Q8 sums int8 columns exactly in int32 and scales them the way the dense Q8 layer (nn/linear.h)
 * does for a 0/1 row, so the two give identical floats. Every level (spike.c: scalar reference and
 * dispatch; spike_avx2.c, spike_avx512.c) gives the scalar reference's floats. */
#ifndef SG_NN_SPIKE_H
#define SG_NN_SPIKE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "nn/linear.h"

/* The weights are held transposed, input-major: what input j adds to the n outputs is one
 * contiguous row of n values (sg_spike_col_f32 / sg_spike_col_q8). */
typedef struct sg_spike_linear {
    int n, k;      /* out features, in features (both <= 65535: inputs are uint16 indices) */
    sg_precision prec;
    float *wt;     /* F32: [k][n] */
    int8_t *qt;    /* Q8: [k][n] */
    float *scale;  /* Q8: [n] per output row of W */
    float *bias;   /* [n] or NULL */
} sg_spike_linear;

/* From row-major W[n][k] (PyTorch's layout): F32 copies, Q8 quantises like sg_linear_init. */
sg_status sg_spike_linear_init(sg_spike_linear *L, const float *w, const float *bias, int n, int k,
                               sg_precision prec, sg_error *err);
/* From already-quantised rows q[n][k] and scales[n]. */
sg_status sg_spike_linear_init_q8(sg_spike_linear *L, const int8_t *q, const float *scale,
                                  const float *bias, int n, int k, sg_error *err);
void sg_spike_linear_free(sg_spike_linear *L);
/* One row: idx[0..nidx) are the inputs that fired (ascending); y gets n floats. The kernel
 * follows sg_cpu_level_get(); every level gives the same floats. */
void sg_spike_linear_row(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y);

/* What input j adds to the outputs: column j of W, n values. */
static inline const float *sg_spike_col_f32(const sg_spike_linear *L, int j)
{
    return L->wt + (size_t)j * (size_t)L->n;
}
static inline const int8_t *sg_spike_col_q8(const sg_spike_linear *L, int j)
{
    return L->qt + (size_t)j * (size_t)L->n;
}

/* ---- Internal to nn/: the row kernels per level, each in its own file (spike.c,
 * spike_avx2.c, spike_avx512.c) so it can be compiled with that ISA's flags. ---- */
typedef void (*sg_spike_row_fn)(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y);
void sg_spike_f32_scalar(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y);
void sg_spike_f32_avx2(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y);
void sg_spike_f32_avx512(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y);
void sg_spike_q8_scalar(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y);
void sg_spike_q8_avx2(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y);
void sg_spike_q8_avx512(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y);
void sg_spike_f32_neon(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y);
void sg_spike_q8_neon(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y);

/* Output j alone, as the scalar kernels compute it (for the SIMD kernels' tails). F32: the bias,
 * then the fired inputs' weights in input order. Q8: the dense Q8 layer quantises a 0/1 row to
 * 127s with scale 1/127 (maxabs 1), so its accumulator is 127 * (the sum of the selected int8
 * weights) and its output that times (1/127 * wscale), plus the bias. */
static inline float sg_spike_f32_out(const sg_spike_linear *L, const uint16_t *idx, int nidx, int j)
{
    float a = L->bias ? L->bias[j] : 0.0f;
    for (int t = 0; t < nidx; t++)
        a += sg_spike_col_f32(L, idx[t])[j];
    return a;
}
static inline float sg_spike_q8_out(const sg_spike_linear *L, int32_t acc, int nidx, int j)
{
    const float s = (nidx ? 1.0f / 127.0f : 0.0f) * L->scale[j];
    const float v = (float)(acc * 127) * s;
    return L->bias ? v + L->bias[j] : v;
}

#endif
