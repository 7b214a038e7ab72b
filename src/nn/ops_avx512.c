/* AVX-512 versions of the transformer ops in nn/ops.c: 16 floats at a time with masked tails,
 * a vector exp (Cody-Waite reduction, degree-7 polynomial, vscalefps) and a vector erf
 * (odd polynomial near 0, 1 - exp(-x^2) P(x) beyond), both within ~2 ulp of libm; their
 * constants, shared with ops_avx2.c, are in ops_approx.h. */
#include <immintrin.h>
#include <math.h>

#include "nn/ops.h"
#include "nn/ops_approx.h"

static inline __mmask16 tail_mask(long n) { return n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1); }

/* e^x (nn/ops_approx.h), 2^n applied with vscalefps */
static inline __m512 exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(SG_EXP_MIN)), _mm512_set1_ps(SG_EXP_MAX));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(SG_EXP_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(SG_EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(SG_EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(sg_exp_poly[0]);
    for (int i = 1; i <= SG_EXP_DEGREE; i++)
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(sg_exp_poly[i]));
    return _mm512_scalef_ps(p, n);
}

/* erf(x) (nn/ops_approx.h) */
static inline __m512 erf16(__m512 x)
{
    const __m512 a = _mm512_abs_ps(x);
    const __m512 u = _mm512_mul_ps(x, x);
    __m512 p = _mm512_set1_ps(sg_erf_p[0]);
    for (int i = 1; i < SG_ERF_P_TERMS; i++)
        p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(sg_erf_p[i]));
    const __m512 small = _mm512_mul_ps(x, p);
    const __m512 ac = _mm512_min_ps(a, _mm512_set1_ps(SG_ERF_CLAMP));
    const __m512 t = _mm512_sub_ps(ac, _mm512_set1_ps(SG_ERF_CENTER));
    __m512 q = _mm512_set1_ps(sg_erf_q[0]);
    for (int i = 1; i < SG_ERF_Q_TERMS; i++)
        q = _mm512_fmadd_ps(q, t, _mm512_set1_ps(sg_erf_q[i]));
    const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ac, ac)));
    __m512 big = _mm512_fnmadd_ps(e, q, _mm512_set1_ps(1.0f));
    /* copy the sign of x */
    const __m512 sign = _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u)));
    big = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(big), _mm512_castps_si512(sign)));
    const __mmask16 is_small = _mm512_cmp_ps_mask(a, _mm512_set1_ps(SG_ERF_SMALL), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(is_small, big, small);
}

/* the low and high eight floats of v widened to double */
static inline __m512d lo_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
static inline __m512d hi_pd(__m512 v)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

static void layernorm_avx512(const float *x, float *y, int rows, int dim, const float *g,
                             const float *b, float eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (long)r * dim;
        float *yr = y + (long)r * dim;
        /* double sums, like the scalar reference */
        __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
        for (int i = 0; i < dim; i += 16) {
            const __m512 v = _mm512_maskz_loadu_ps(tail_mask(dim - i), xr + i);
            s0 = _mm512_add_pd(s0, lo_pd(v));
            s1 = _mm512_add_pd(s1, hi_pd(v));
        }
        const double mean = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1)) / dim;
        const __m512d vmean = _mm512_set1_pd(mean);
        s0 = s1 = _mm512_setzero_pd();
        for (int i = 0; i < dim; i += 16) {
            const __mmask16 mk = tail_mask(dim - i);
            const __m512 v = _mm512_maskz_loadu_ps(mk, xr + i);
            __m512d d0 = _mm512_sub_pd(lo_pd(v), vmean), d1 = _mm512_sub_pd(hi_pd(v), vmean);
            /* masked-off lanes loaded as 0 and must not count */
            d0 = _mm512_maskz_mov_pd((__mmask8)mk, d0);
            d1 = _mm512_maskz_mov_pd((__mmask8)(mk >> 8), d1);
            s0 = _mm512_add_pd(s0, _mm512_mul_pd(d0, d0));
            s1 = _mm512_add_pd(s1, _mm512_mul_pd(d1, d1));
        }
        const double ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
        const __m512 meanf = _mm512_set1_ps((float)mean);
        const __m512 rstd = _mm512_set1_ps((float)(1.0 / sqrt(ss / dim + eps)));
        for (int i = 0; i < dim; i += 16) {
            const __mmask16 mk = tail_mask(dim - i);
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, xr + i), meanf), rstd);
            if (g)
                v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mk, g + i));
            if (b)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, b + i));
            _mm512_mask_storeu_ps(yr + i, mk, v);
        }
    }
}

static void softmax_avx512(float *x, int n)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mx = ninf;
    for (int i = 0; i < n; i += 16)
        mx = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, tail_mask(n - i), x + i), mx);
    const float m = _mm512_reduce_max_ps(mx);
    if (!(m > -INFINITY)) {
        for (int i = 0; i < n; i++)
            x[i] = 0.0f;
        return;
    }
    const __m512 vm = _mm512_set1_ps(m);
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        const __mmask16 mk = tail_mask(n - i);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + i), vm));
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(mk, e));
        _mm512_mask_storeu_ps(x + i, mk, e);
    }
    const __m512 inv = _mm512_set1_ps((float)(1.0 / _mm512_reduce_add_ps(sum)));
    for (int i = 0; i < n; i += 16) {
        const __mmask16 mk = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, x + i), inv));
    }
}

static void gelu_erf_avx512(float *x, long n)
{
    const __m512 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f),
                 rsqrt2 = _mm512_set1_ps(0.70710678118654752f);
    for (long i = 0; i < n; i += 16) {
        const __mmask16 mk = tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(mk, x + i);
        const __m512 e = erf16(_mm512_mul_ps(v, rsqrt2));
        const __m512 y = _mm512_mul_ps(_mm512_mul_ps(v, half), _mm512_add_ps(one, e));
        _mm512_mask_storeu_ps(x + i, mk, y);
    }
}

static void quick_gelu_avx512(float *x, long n)
{
    const __m512 one = _mm512_set1_ps(1.0f), k = _mm512_set1_ps(-1.702f);
    for (long i = 0; i < n; i += 16) {
        const __mmask16 mk = tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(mk, x + i);
        const __m512 e = exp16(_mm512_mul_ps(v, k));
        _mm512_mask_storeu_ps(x + i, mk, _mm512_div_ps(v, _mm512_add_ps(one, e)));
    }
}

static void add_avx512(float *x, const float *y, long n)
{
    for (long i = 0; i < n; i += 16) {
        const __mmask16 mk = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, mk, _mm512_add_ps(_mm512_maskz_loadu_ps(mk, x + i),
                                                       _mm512_maskz_loadu_ps(mk, y + i)));
    }
}

/* the scalar reference's semantics: NaN anywhere -> NaN, all -inf -> -inf, +inf -> +inf; the
 * exponentials in float (exp16), summed in double */
static double logsumexp_avx512(const float *x, long n)
{
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 mx = ninf;
    __mmask16 nan = 0;
    for (long i = 0; i < n; i += 16) {
        const __m512 v = _mm512_mask_loadu_ps(ninf, tail_mask(n - i), x + i);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        mx = _mm512_max_ps(v, mx);
    }
    if (nan)
        return NAN;
    const float m = _mm512_reduce_max_ps(mx);
    if (!(m > -INFINITY))
        return -INFINITY;
    if (isinf(m))
        return INFINITY;
    const __m512 vm = _mm512_set1_ps(m);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (long i = 0; i < n; i += 16) {
        /* lanes past the end load -inf: exp gives 0 */
        const __m512 e = exp16(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, tail_mask(n - i), x + i), vm));
        s0 = _mm512_add_pd(s0, lo_pd(e));
        s1 = _mm512_add_pd(s1, hi_pd(e));
    }
    return (double)m + log(_mm512_reduce_add_pd(_mm512_add_pd(s0, s1)));
}

const sg_ops_kernels sg_ops_avx512 = {layernorm_avx512, softmax_avx512, gelu_erf_avx512,
                                      quick_gelu_avx512, add_avx512, logsumexp_avx512};
