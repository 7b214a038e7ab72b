/* The row kernels of vec.h: the scalar references and the dispatch to the AVX-512 table
 * (vec_avx512.c) and, on aarch64, the NEON one (vec_neon.c). */
#include "nn/vec.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "nn/cpu.h"
#include "nn/linear.h"

static float dot_scalar(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void axpy_scalar(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

static int argmax_scalar(const float *y, int n, float *absmax)
{
    int best = 0;
    float am = 0.0f;
    for (int i = 0; i < n; i++) {
        if (y[i] > y[best]) /* the first of equal maxima, as torch.argmax */
            best = i;
        const float a = fabsf(y[i]);
        am = a > am ? a : am;
    }
    *absmax = am;
    return best;
}

static int collect_scalar(const float *y, int n, float t, int *idx)
{
    int c = 0;
    for (int i = 0; i < n; i++)
        if (y[i] >= t)
            idx[c++] = i;
    return c;
}

/* the bounds in double, then rounded up by more than their rounding to float */
static void quantize_row_scalar(const float *w, int k, int8_t *q, float *scale, float *qabs,
                                float *err)
{
    sg_q8_quantize_scalar(w, k, 1, k, k, q, k, scale);
    if (!qabs)
        return;
    double sum = 0, worst = 0;
    for (int j = 0; j < k; j++) {
        sum += abs(q[j]);
        const double e = fabs((double)w[j] - (double)*scale * q[j]);
        worst = e > worst ? e : worst;
    }
    *qabs = (float)(sum * *scale * (1.0 + 1e-6));
    *err = (float)(worst * (1.0 + 1e-6)) + FLT_MIN;
}

const sg_vec_kernels sg_vec_scalar = {dot_scalar, axpy_scalar, argmax_scalar, collect_scalar,
                                      quantize_row_scalar};

const sg_vec_kernels *sg_vec_kernels_get(void)
{
#ifdef SG_X86
    if (sg_cpu_level_get() == SG_CPU_AVX512)
        return &sg_vec_avx512;
#elif defined SG_AARCH64
    if (sg_cpu_level_get() >= SG_CPU_NEON)
        return &sg_vec_neon;
#endif
    return &sg_vec_scalar;
}
