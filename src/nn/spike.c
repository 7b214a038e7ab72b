/* The spike layer (spike.h): building it from PyTorch's row-major weights, the scalar reference
 * kernels and the dispatch to the SIMD ones (spike_avx2.c, spike_avx512.c, spike_neon.c). */
#include "nn/spike.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu.h"

/* ---- scalar references ---- */

void sg_spike_f32_scalar(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y)
{
    const int n = L->n;
    for (int j = 0; j < n; j++)
        y[j] = L->bias ? L->bias[j] : 0.0f;
    for (int t = 0; t < nidx; t++) {
        const float *w = sg_spike_col_f32(L, idx[t]);
        for (int j = 0; j < n; j++)
            y[j] += w[j];
    }
}

void sg_spike_q8_scalar(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y)
{
    for (int j = 0; j < L->n; j++) {
        int32_t acc = 0;
        for (int t = 0; t < nidx; t++)
            acc += sg_spike_col_q8(L, idx[t])[j];
        y[j] = sg_spike_q8_out(L, acc, nidx, j);
    }
}

/* ---- dispatch ---- */

void sg_spike_linear_row(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y)
{
    const bool f32 = L->prec == SG_PREC_F32;
    sg_spike_row_fn row = f32 ? sg_spike_f32_scalar : sg_spike_q8_scalar;
#ifdef SG_X86
    switch (sg_cpu_level_get()) {
    case SG_CPU_AVX512: row = f32 ? sg_spike_f32_avx512 : sg_spike_q8_avx512; break;
    case SG_CPU_AVX2: row = f32 ? sg_spike_f32_avx2 : sg_spike_q8_avx2; break;
    case SG_CPU_SCALAR: break;
    }
#elif defined SG_ARM
    if (sg_cpu_level_get() >= SG_CPU_NEON)
        row = f32 ? sg_spike_f32_neon : sg_spike_q8_neon;
#endif
    row(L, idx, nidx, y);
}

/* ---- building ---- */

/* Inputs and outputs are counted in uint16 indices. */
static sg_status check_shape(int n, int k, sg_error *err)
{
    if (n < 1 || k < 1 || k > 65535 || n > 65535)
        return sg_error_set(err, SG_EINVAL, "spike layer: bad shape n=%d k=%d", n, k);
    return SG_OK;
}

/* L emptied, its shape checked and set, and its copy of the bias. */
static sg_status spike_common(sg_spike_linear *L, const float *bias, int n, int k, sg_error *err)
{
    memset(L, 0, sizeof *L);
    if (check_shape(n, k, err) != SG_OK)
        return SG_EINVAL;
    L->n = n;
    L->k = k;
    if (bias) {
        L->bias = malloc((size_t)n * sizeof(float));
        if (!L->bias)
            return sg_error_set(err, SG_ENOMEM, "out of memory");
        memcpy(L->bias, bias, (size_t)n * sizeof(float));
    }
    return SG_OK;
}

sg_status sg_spike_linear_init(sg_spike_linear *L, const float *w, const float *bias, int n, int k,
                               sg_precision prec, sg_error *err)
{
    if (prec == SG_PREC_Q8) {
        memset(L, 0, sizeof *L);
        if (check_shape(n, k, err) != SG_OK)
            return SG_EINVAL;
        int8_t *q = malloc((size_t)n * k);
        float *s = malloc((size_t)n * sizeof(float));
        sg_status st = SG_ENOMEM;
        if (q && s) {
            sg_q8_quantize_scalar(w, k, n, k, k, q, k, s); /* as sg_linear_init quantises */
            st = sg_spike_linear_init_q8(L, q, s, bias, n, k, err);
        } else {
            sg_error_set(err, SG_ENOMEM, "out of memory");
        }
        free(q);
        free(s);
        return st;
    }
    sg_status st = spike_common(L, bias, n, k, err);
    if (st != SG_OK)
        return st;
    L->prec = SG_PREC_F32;
    L->wt = malloc((size_t)n * k * sizeof(float));
    if (!L->wt) {
        sg_spike_linear_free(L);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            L->wt[(size_t)j * n + i] = w[(size_t)i * k + j];
    return SG_OK;
}

sg_status sg_spike_linear_init_q8(sg_spike_linear *L, const int8_t *q, const float *scale,
                                  const float *bias, int n, int k, sg_error *err)
{
    sg_status st = spike_common(L, bias, n, k, err);
    if (st != SG_OK)
        return st;
    L->prec = SG_PREC_Q8;
    L->qt = malloc((size_t)n * k);
    L->scale = malloc((size_t)n * sizeof(float));
    if (!L->qt || !L->scale) {
        sg_spike_linear_free(L);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    memcpy(L->scale, scale, (size_t)n * sizeof(float));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++)
            L->qt[(size_t)j * n + i] = q[(size_t)i * k + j];
    return SG_OK;
}

void sg_spike_linear_free(sg_spike_linear *L)
{
    if (L) {
        free(L->wt);
        free(L->qt);
        free(L->scale);
        free(L->bias);
        *L = (sg_spike_linear){0};
    }
}
