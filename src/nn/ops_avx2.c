/* AVX2 versions of the transformer ops in nn/ops.c: 8 floats at a time with masked tails, and the
 * same exp and erf approximations as ops_avx512.c (constants in ops_approx.h; 2^n built in two
 * halves from the exponent bits so that underflow and overflow stay gradual, as vscalefps does). */
#include <immintrin.h>
#include <math.h>

#include "nn/ops.h"
#include "nn/ops_approx.h"

static inline __m256i lane_mask(long n)
{
    const int k = n >= 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* 2^n for integer-valued n in [-150, 128] as the product of two normal powers of two */
static inline __m256 pow2_split(__m256 p, __m256 n)
{
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i h1 = _mm256_srai_epi32(ni, 1), h2 = _mm256_sub_epi32(ni, h1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h1, bias), 23));
    const __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
}

static inline __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(SG_EXP_MIN)), _mm256_set1_ps(SG_EXP_MAX));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(SG_EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(SG_EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(SG_EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(sg_exp_poly[0]);
    for (int i = 1; i <= SG_EXP_DEGREE; i++)
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(sg_exp_poly[i]));
    return pow2_split(p, n);
}

static inline __m256 erf8(__m256 x)
{
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    const __m256 a = _mm256_andnot_ps(signbit, x);
    const __m256 u = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(sg_erf_p[0]);
    for (int i = 1; i < SG_ERF_P_TERMS; i++)
        p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(sg_erf_p[i]));
    const __m256 small = _mm256_mul_ps(x, p);
    const __m256 ac = _mm256_min_ps(a, _mm256_set1_ps(SG_ERF_CLAMP));
    const __m256 t = _mm256_sub_ps(ac, _mm256_set1_ps(SG_ERF_CENTER));
    __m256 q = _mm256_set1_ps(sg_erf_q[0]);
    for (int i = 1; i < SG_ERF_Q_TERMS; i++)
        q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(sg_erf_q[i]));
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ac, ac)));
    const __m256 big = _mm256_or_ps(_mm256_fnmadd_ps(e, q, _mm256_set1_ps(1.0f)),
                                    _mm256_and_ps(x, signbit));
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(SG_ERF_SMALL), _CMP_LT_OQ));
}

static inline __m256 load_tail(const float *p, long n)
{
    return _mm256_maskload_ps(p, lane_mask(n));
}

static inline void store_tail(float *p, long n, __m256 v)
{
    _mm256_maskstore_ps(p, lane_mask(n), v);
}

/* the low and high four floats of v widened to double */
static inline __m256d lo_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
static inline __m256d hi_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }

/* the low and high four lanes of a 32-bit lane mask as 64-bit lane masks */
static inline __m256d mask_lo_pd(__m256i mk)
{
    return _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(mk)));
}
static inline __m256d mask_hi_pd(__m256i mk)
{
    return _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(mk, 1)));
}

static inline double hsum_pd(__m256d v)
{
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

static inline float hmax_ps(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

static void layernorm_avx2(const float *x, float *y, int rows, int dim, const float *g,
                           const float *b, float eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (long)r * dim;
        float *yr = y + (long)r * dim;
        __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
        for (int i = 0; i < dim; i += 8) {
            const __m256 v = load_tail(xr + i, dim - i);
            s0 = _mm256_add_pd(s0, lo_pd(v));
            s1 = _mm256_add_pd(s1, hi_pd(v));
        }
        const double mean = hsum_pd(_mm256_add_pd(s0, s1)) / dim;
        const __m256d vmean = _mm256_set1_pd(mean);
        s0 = s1 = _mm256_setzero_pd();
        for (int i = 0; i < dim; i += 8) {
            const __m256 v = load_tail(xr + i, dim - i);
            const __m256i mk = lane_mask(dim - i);
            /* lanes past the end loaded as 0: mask their deviation out */
            const __m256d k0 = mask_lo_pd(mk), k1 = mask_hi_pd(mk);
            const __m256d d0 = _mm256_and_pd(_mm256_sub_pd(lo_pd(v), vmean), k0);
            const __m256d d1 = _mm256_and_pd(_mm256_sub_pd(hi_pd(v), vmean), k1);
            s0 = _mm256_add_pd(s0, _mm256_mul_pd(d0, d0));
            s1 = _mm256_add_pd(s1, _mm256_mul_pd(d1, d1));
        }
        const double ss = hsum_pd(_mm256_add_pd(s0, s1));
        const __m256 meanf = _mm256_set1_ps((float)mean);
        const __m256 rstd = _mm256_set1_ps((float)(1.0 / sqrt(ss / dim + eps)));
        for (int i = 0; i < dim; i += 8) {
            __m256 v = _mm256_mul_ps(_mm256_sub_ps(load_tail(xr + i, dim - i), meanf), rstd);
            if (g)
                v = _mm256_mul_ps(v, load_tail(g + i, dim - i));
            if (b)
                v = _mm256_add_ps(v, load_tail(b + i, dim - i));
            store_tail(yr + i, dim - i, v);
        }
    }
}

static void softmax_avx2(float *x, int n)
{
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 mx = ninf;
    for (int i = 0; i < n; i += 8)
        mx = _mm256_max_ps(_mm256_blendv_ps(ninf, load_tail(x + i, n - i),
                                            _mm256_castsi256_ps(lane_mask(n - i))),
                           mx);
    const float m = hmax_ps(mx);
    if (!(m > -INFINITY)) {
        for (int i = 0; i < n; i++)
            x[i] = 0.0f;
        return;
    }
    const __m256 vm = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) {
        const __m256 mk = _mm256_castsi256_ps(lane_mask(n - i));
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(load_tail(x + i, n - i), vm)), mk);
        sum = _mm256_add_ps(sum, e);
        store_tail(x + i, n - i, e);
    }
    const __m256 inv = _mm256_set1_ps((float)(1.0 / hsum_ps(sum)));
    for (int i = 0; i < n; i += 8)
        store_tail(x + i, n - i, _mm256_mul_ps(load_tail(x + i, n - i), inv));
}

static void gelu_erf_avx2(float *x, long n)
{
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f),
                 rsqrt2 = _mm256_set1_ps(0.70710678118654752f);
    for (long i = 0; i < n; i += 8) {
        const __m256 v = load_tail(x + i, n - i);
        const __m256 e = erf8(_mm256_mul_ps(v, rsqrt2));
        store_tail(x + i, n - i, _mm256_mul_ps(_mm256_mul_ps(v, half), _mm256_add_ps(one, e)));
    }
}

static void quick_gelu_avx2(float *x, long n)
{
    const __m256 one = _mm256_set1_ps(1.0f), k = _mm256_set1_ps(-1.702f);
    for (long i = 0; i < n; i += 8) {
        const __m256 v = load_tail(x + i, n - i);
        store_tail(x + i, n - i, _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_mul_ps(v, k)))));
    }
}

static void add_avx2(float *x, const float *y, long n)
{
    long i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    if (i < n)
        store_tail(x + i, n - i, _mm256_add_ps(load_tail(x + i, n - i), load_tail(y + i, n - i)));
}

/* as logsumexp_avx512: the scalar reference's special cases, float exponentials summed in double */
static double logsumexp_avx2(const float *x, long n)
{
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 mx = ninf, nan = _mm256_setzero_ps();
    for (long i = 0; i < n; i += 8) {
        const __m256 v = _mm256_blendv_ps(ninf, load_tail(x + i, n - i),
                                          _mm256_castsi256_ps(lane_mask(n - i)));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        mx = _mm256_max_ps(v, mx);
    }
    if (_mm256_movemask_ps(nan))
        return NAN;
    const float m = hmax_ps(mx);
    if (!(m > -INFINITY))
        return -INFINITY;
    if (isinf(m))
        return INFINITY;
    const __m256 vm = _mm256_set1_ps(m);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (long i = 0; i < n; i += 8) {
        const __m256 v = _mm256_blendv_ps(ninf, load_tail(x + i, n - i),
                                          _mm256_castsi256_ps(lane_mask(n - i)));
        const __m256 e = exp8(_mm256_sub_ps(v, vm));
        s0 = _mm256_add_pd(s0, lo_pd(e));
        s1 = _mm256_add_pd(s1, hi_pd(e));
    }
    return (double)m + log(hsum_pd(_mm256_add_pd(s0, s1)));
}

const sg_ops_kernels sg_ops_avx2 = {layernorm_avx2, softmax_avx2, gelu_erf_avx2, quick_gelu_avx2,
                                    add_avx2, logsumexp_avx2};
