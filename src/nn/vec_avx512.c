/* AVX-512 row kernels (vec.h): 16 floats at a time with masked tails. axpy and quantize_row's q
 * and scale give the scalar references' numbers; dot sums in another order; argmax and collect
 * give the same answers. */
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "nn/linear.h"
#include "nn/vec.h"

static inline __mmask16 tail16(int left)
{
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

static float dot_avx512(const float *a, const float *b, int n)
{
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        const __mmask16 k = tail16(n - i);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* a x rounded, then added: the scalar reference's two roundings */
static void axpy_avx512(float *y, float a, const float *x, int n)
{
    const __m512 va = _mm512_set1_ps(a);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 k = tail16(n - i);
        const __m512 p = _mm512_mul_ps(va, _mm512_maskz_loadu_ps(k, x + i));
        _mm512_mask_storeu_ps(y + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, y + i), p));
    }
}

static int argmax_avx512(const float *y, int n, float *absmax)
{
    /* a NaN at y[0] makes the scalar scan's answer 0 whatever follows: only it gives that */
    if (n < 64 || y[0] != y[0])
        return sg_vec_scalar.argmax(y, n, absmax);
    /* max(v, acc) keeps acc when v is NaN: NaNs are ignored, as by the scalar comparison */
    __m512 mx[4], mn[4];
    for (int j = 0; j < 4; j++)
        mx[j] = mn[j] = _mm512_set1_ps(y[0]);
    int i = 0;
    for (; i + 64 <= n; i += 64)
        for (int j = 0; j < 4; j++) {
            const __m512 v = _mm512_loadu_ps(y + i + 16 * j);
            mx[j] = _mm512_max_ps(v, mx[j]);
            mn[j] = _mm512_min_ps(v, mn[j]);
        }
    for (; i < n; i += 16) {
        const __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(y[0]), tail16(n - i), y + i);
        mx[0] = _mm512_max_ps(v, mx[0]);
        mn[0] = _mm512_min_ps(v, mn[0]);
    }
    const float top = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(mx[0], mx[1]), _mm512_max_ps(mx[2], mx[3])));
    const float low = _mm512_reduce_min_ps(_mm512_min_ps(_mm512_min_ps(mn[0], mn[1]), _mm512_min_ps(mn[2], mn[3])));
    *absmax = fabsf(top) > fabsf(low) ? fabsf(top) : fabsf(low);
    const __m512 vt = _mm512_set1_ps(top);
    for (i = 0; i < n; i += 16) {
        const __mmask16 tail = tail16(n - i);
        const __mmask16 k = _mm512_mask_cmp_ps_mask(tail, _mm512_maskz_loadu_ps(tail, y + i), vt, _CMP_EQ_OQ);
        if (k)
            return i + __builtin_ctz(k);
    }
    return 0; /* unreachable: top is one of the values */
}

static int collect_avx512(const float *y, int n, float t, int *idx)
{
    const __m512 vt = _mm512_set1_ps(t);
    int c = 0;
    for (int i = 0; i < n; i += 16) {
        const __mmask16 tail = tail16(n - i);
        __mmask16 k = _mm512_mask_cmp_ps_mask(tail, _mm512_maskz_loadu_ps(tail, y + i), vt, _CMP_GE_OQ);
        while (k) {
            idx[c++] = i + __builtin_ctz(k);
            k &= (__mmask16)(k - 1);
        }
    }
    return c;
}

/* The same q and scale: max is exact, and x * inv, the clamp (NaN -> 127) and cvtps2dq's rounding
 * (nearest, ties to even) are what the scalar code computes. The bounds are computed in float
 * and rounded up by more than their rounding error. */
static void quantize_row_avx512(const float *w, int k, int8_t *q, float *scale, float *qabs,
                                float *err)
{
    __m512 mx = _mm512_setzero_ps();
    for (int i = 0; i < k; i += 16)
        mx = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(tail16(k - i), w + i)), mx);
    const float maxabs = _mm512_reduce_max_ps(mx);
    const float inv = sg_q8_inv(maxabs), s = maxabs / 127.0f;
    *scale = s;
    const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
    const __m512 vs = _mm512_set1_ps(s);
    __m512i sum = _mm512_setzero_si512();
    __m512 worst = _mm512_setzero_ps();
    for (int i = 0; i < k; i += 16) {
        const __mmask16 t = tail16(k - i);
        const __m512 x = _mm512_maskz_loadu_ps(t, w + i);
        const __m512 v = _mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(x, vinv), hi), lo);
        const __m512i qi = _mm512_cvtps_epi32(v);
        int8_t tmp[16];
        _mm_storeu_si128((__m128i *)tmp, _mm512_cvtsepi32_epi8(qi));
        memcpy(q + i, tmp, (size_t)__builtin_popcount(t));
        if (qabs) {
            sum = _mm512_add_epi32(sum, _mm512_abs_epi32(qi));
            const __m512 d = _mm512_sub_ps(x, _mm512_mul_ps(vs, _mm512_cvtepi32_ps(qi)));
            worst = _mm512_max_ps(_mm512_abs_ps(d), worst);
        }
    }
    if (qabs) {
        *qabs = (float)((double)_mm512_reduce_add_epi32(sum) * s * (1.0 + 1e-6));
        *err = _mm512_reduce_max_ps(worst) * (1.0f + 1e-5f) + maxabs * 2.5e-7f + FLT_MIN;
    }
}

const sg_vec_kernels sg_vec_avx512 = {dot_avx512, axpy_avx512, argmax_avx512, collect_avx512,
                                      quantize_row_avx512};
