/* Kernels on single rows that a token-by-token decoder calls many times on short lengths: dot
 * product, y += a x, argmax, threshold selection, and the int8 quantisation of a weight row with
 * bounds on its error. One table per level (vec.c: the scalar references and the dispatch;
 * vec_avx512.c, vec_neon.c); AVX2 and armv7 machines use the references, these being a small
 * part of a decoder step.
 * A caller takes the table once (sg_vec_kernels_get) and calls through it in its loops. */
#ifndef SG_NN_VEC_H
#define SG_NN_VEC_H

#include <stdint.h>

typedef struct sg_vec_kernels {
    /* sum of a[i] b[i]; the levels sum in different orders */
    float (*dot)(const float *a, const float *b, int n);
    /* y += a x; the same floats at every level */
    void (*axpy)(float *y, float a, const float *x, int n);
    /* index of the first maximum (NaNs ignored unless y[0] is one, as a scalar scan), and in
     * *absmax the largest |y| of the non-NaN values; the same answers at every level */
    int (*argmax)(const float *y, int n, float *absmax);
    /* the indices i with y[i] >= t, ascending, into idx; returns how many */
    int (*collect)(const float *y, int n, float t, int *idx);
    /* Row w[k] as int8 q[k] and *scale exactly as sg_linear_init quantises a weight row
     * (symmetric, scale = max|w| / 127, ties to even: the same q and scale at every level).
     * With qabs (and err) not NULL, also bounds rounded up for screening with the int8 row:
     * *qabs >= scale * sum|q_j| and *err >= max_j |w_j - scale q_j| (levels may round them up
     * differently). */
    void (*quantize_row)(const float *w, int k, int8_t *q, float *scale, float *qabs, float *err);
} sg_vec_kernels;

/* The table of the current level (sg_cpu_level_get()). */
const sg_vec_kernels *sg_vec_kernels_get(void);

/* Internal to nn/ (and for tests): the tables per level. */
extern const sg_vec_kernels sg_vec_scalar, sg_vec_avx512, sg_vec_neon; /* neon: aarch64 only */

#endif
