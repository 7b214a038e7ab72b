/* NEON versions of the transformer ops in nn/ops.c (aarch64, and armv7 with -mfpu=neon): 4 floats
 * at a time, tails through a 4-float buffer.
 * - layernorm: the statistics are the scalar reference's double sums (sg_layernorm_row_stats) and
 *   the normalising pass multiplies then adds, unfused, as the reference rounds: the same floats.
 * - add: the same floats.
 * - softmax, GELU (erf), quick GELU, logsumexp: the exp and erf approximations of ops_avx2.c and
 *   ops_avx512.c (constants in ops_approx.h), so every SIMD level computes the same functions
 *   within the tolerances test_nn holds them to against the scalar level.
 * armv7 differs from aarch64 in three ways, none outside those tolerances: its NEON has no fused
 * multiply-add (vmlaq: multiply, round, add), no round-to-nearest instruction (n is rounded half
 * away from zero, which only moves r within the polynomial's range) and no divide (a reciprocal
 * estimate and two Newton steps); and armv7 NEON flushes denormals to zero, so results below
 * 1.2e-38 are 0 where the scalar code keeps a denormal (layernorm and add included). */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "nn/ops.h"
#include "nn/ops_approx.h"

#ifdef __aarch64__
#define MLA(acc, a, b) vfmaq_f32(acc, a, b) /* acc + a b */
#define MLS(acc, a, b) vfmsq_f32(acc, a, b) /* acc - a b */
static inline float32x4_t round4(float32x4_t x) { return vrndnq_f32(x); }
static inline float32x4_t div4(float32x4_t a, float32x4_t b) { return vdivq_f32(a, b); }
static inline float hmax4(float32x4_t v) { return vmaxvq_f32(v); }
#else
#define MLA(acc, a, b) vmlaq_f32(acc, a, b)
#define MLS(acc, a, b) vmlsq_f32(acc, a, b)
static inline float32x4_t round4(float32x4_t x)
{
    const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
    const float32x4_t half = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(vdupq_n_f32(0.5f)), sign));
    return vcvtq_f32_s32(vcvtq_s32_f32(vaddq_f32(x, half)));
}
static inline float32x4_t div4(float32x4_t a, float32x4_t b)
{
    float32x4_t r = vrecpeq_f32(b);
    r = vmulq_f32(r, vrecpsq_f32(b, r));
    r = vmulq_f32(r, vrecpsq_f32(b, r));
    return vmulq_f32(a, r);
}
static inline float hmax4(float32x4_t v)
{
    float32x2_t m = vpmax_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(vpmax_f32(m, m), 0);
}
#endif

/* the larger of v and acc per lane, acc where v is NaN (a scalar `v > acc ? v : acc`, as x86's
 * max_ps(v, acc) behaves; NEON's vmaxq would return the NaN) */
static inline float32x4_t max_keep(float32x4_t v, float32x4_t acc)
{
    return vbslq_f32(vcgtq_f32(v, acc), v, acc);
}

/* 2^n for integer-valued n in [-150, 128] as the product of two normal powers of two (gradual
 * underflow and overflow, as ops_avx2.c's pow2_split) */
static inline float32x4_t pow2_split(float32x4_t p, float32x4_t n)
{
    const int32x4_t ni = vcvtq_s32_f32(n);
    const int32x4_t h1 = vshrq_n_s32(ni, 1), h2 = vsubq_s32(ni, h1);
    const int32x4_t bias = vdupq_n_s32(127);
    const float32x4_t f1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(h1, bias), 23));
    const float32x4_t f2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(h2, bias), 23));
    return vmulq_f32(vmulq_f32(p, f1), f2);
}

static inline float32x4_t exp4(float32x4_t x)
{
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(SG_EXP_MIN)), vdupq_n_f32(SG_EXP_MAX));
    const float32x4_t n = round4(vmulq_f32(x, vdupq_n_f32(SG_EXP_LOG2E)));
    float32x4_t r = MLS(x, n, vdupq_n_f32(SG_EXP_LN2_HI));
    r = MLS(r, n, vdupq_n_f32(SG_EXP_LN2_LO));
    float32x4_t p = vdupq_n_f32(sg_exp_poly[0]);
    for (int i = 1; i <= SG_EXP_DEGREE; i++)
        p = MLA(vdupq_n_f32(sg_exp_poly[i]), p, r);
    return pow2_split(p, n);
}

static inline float32x4_t erf4(float32x4_t x)
{
    const float32x4_t a = vabsq_f32(x), u = vmulq_f32(x, x);
    float32x4_t p = vdupq_n_f32(sg_erf_p[0]);
    for (int i = 1; i < SG_ERF_P_TERMS; i++)
        p = MLA(vdupq_n_f32(sg_erf_p[i]), p, u);
    const float32x4_t small = vmulq_f32(x, p);
    const float32x4_t ac = vminq_f32(a, vdupq_n_f32(SG_ERF_CLAMP));
    const float32x4_t t = vsubq_f32(ac, vdupq_n_f32(SG_ERF_CENTER));
    float32x4_t q = vdupq_n_f32(sg_erf_q[0]);
    for (int i = 1; i < SG_ERF_Q_TERMS; i++)
        q = MLA(vdupq_n_f32(sg_erf_q[i]), q, t);
    const float32x4_t e = exp4(vnegq_f32(vmulq_f32(ac, ac)));
    const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x80000000u));
    const float32x4_t big = vreinterpretq_f32_u32(
        vorrq_u32(vreinterpretq_u32_f32(MLS(vdupq_n_f32(1.0f), e, q)), sign));
    return vbslq_f32(vcltq_f32(a, vdupq_n_f32(SG_ERF_SMALL)), small, big);
}

/* up to 4 floats from p (n left), the rest of the lanes `fill` */
static inline float32x4_t load_tail(const float *p, long n, float fill)
{
    if (n >= 4)
        return vld1q_f32(p);
    float t[4] = {fill, fill, fill, fill};
    memcpy(t, p, sizeof(float) * (size_t)n);
    return vld1q_f32(t);
}

static inline void store_tail(float *p, long n, float32x4_t v)
{
    if (n >= 4) {
        vst1q_f32(p, v);
        return;
    }
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, sizeof(float) * (size_t)n);
}

static void layernorm_neon(const float *x, float *y, int rows, int dim, const float *g,
                           const float *b, float eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (long)r * dim;
        float *yr = y + (long)r * dim;
        float meanf, rstd;
        sg_layernorm_row_stats(xr, dim, eps, &meanf, &rstd); /* the scalar twin's, in double */
        const float32x4_t vm = vdupq_n_f32(meanf), vr = vdupq_n_f32(rstd);
        int i = 0;
        for (; i + 4 <= dim; i += 4) {
            float32x4_t v = vmulq_f32(vsubq_f32(vld1q_f32(xr + i), vm), vr);
            v = vmulq_f32(v, g ? vld1q_f32(g + i) : vdupq_n_f32(1.0f));
            vst1q_f32(yr + i, vaddq_f32(v, b ? vld1q_f32(b + i) : vdupq_n_f32(0.0f)));
        }
        sg_layernorm_row_apply(xr, yr, i, dim, meanf, rstd, g, b);
    }
}

/* A row that is all -inf (or NaN) becomes all zeros, as in the reference. The tail's padding is
 * -inf, whose exponential is 0 (the clamp to SG_EXP_MIN gives 2^-150 p, which rounds to 0). */
static void softmax_neon(float *x, int n)
{
    float32x4_t mx = vdupq_n_f32(-INFINITY);
    for (int i = 0; i < n; i += 4)
        mx = max_keep(load_tail(x + i, n - i, -INFINITY), mx);
    const float m = hmax4(mx);
    if (!(m > -INFINITY)) {
        memset(x, 0, sizeof(float) * (size_t)n);
        return;
    }
    const float32x4_t vm = vdupq_n_f32(m);
    float32x4_t sum = vdupq_n_f32(0.0f);
    for (int i = 0; i < n; i += 4) {
        const float32x4_t e = exp4(vsubq_f32(load_tail(x + i, n - i, -INFINITY), vm));
        sum = vaddq_f32(sum, e);
        store_tail(x + i, n - i, e);
    }
    float s[4];
    vst1q_f32(s, sum);
    const float32x4_t inv = vdupq_n_f32((float)(1.0 / ((double)s[0] + s[1] + s[2] + s[3])));
    for (int i = 0; i < n; i += 4)
        store_tail(x + i, n - i, vmulq_f32(load_tail(x + i, n - i, 0.0f), inv));
}

static void gelu_erf_neon(float *x, long n)
{
    const float32x4_t half = vdupq_n_f32(0.5f), one = vdupq_n_f32(1.0f),
                      rsqrt2 = vdupq_n_f32(0.70710678118654752f);
    for (long i = 0; i < n; i += 4) {
        const float32x4_t v = load_tail(x + i, n - i, 0.0f);
        const float32x4_t e = erf4(vmulq_f32(v, rsqrt2));
        store_tail(x + i, n - i, vmulq_f32(vmulq_f32(v, half), vaddq_f32(one, e)));
    }
}

static void quick_gelu_neon(float *x, long n)
{
    const float32x4_t one = vdupq_n_f32(1.0f), k = vdupq_n_f32(-1.702f);
    for (long i = 0; i < n; i += 4) {
        const float32x4_t v = load_tail(x + i, n - i, 0.0f);
        store_tail(x + i, n - i, div4(v, vaddq_f32(one, exp4(vmulq_f32(v, k)))));
    }
}

static void add_neon(float *x, const float *y, long n)
{
    long i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(x + i, vaddq_f32(vld1q_f32(x + i), vld1q_f32(y + i)));
    for (; i < n; i++)
        x[i] += y[i];
}

/* the scalar reference's special cases, float exponentials summed in double (as ops_avx2.c) */
static double logsumexp_neon(const float *x, long n)
{
    float32x4_t mx = vdupq_n_f32(-INFINITY);
    uint32x4_t nan = vdupq_n_u32(0);
    for (long i = 0; i < n; i += 4) {
        const float32x4_t v = load_tail(x + i, n - i, -INFINITY);
        nan = vorrq_u32(nan, vmvnq_u32(vceqq_f32(v, v)));
        mx = max_keep(v, mx);
    }
    uint32_t nl[4];
    vst1q_u32(nl, nan);
    if (nl[0] | nl[1] | nl[2] | nl[3])
        return NAN;
    const float m = hmax4(mx);
    if (!(m > -INFINITY))
        return -INFINITY;
    if (isinf(m))
        return INFINITY;
    const float32x4_t vm = vdupq_n_f32(m);
    double s = 0.0;
    for (long i = 0; i < n; i += 4) {
        float e[4];
        vst1q_f32(e, exp4(vsubq_f32(load_tail(x + i, n - i, -INFINITY), vm)));
        s += ((double)e[0] + e[1]) + ((double)e[2] + e[3]);
    }
    return (double)m + log(s);
}

const sg_ops_kernels sg_ops_neon = {layernorm_neon, softmax_neon, gelu_erf_neon, quick_gelu_neon,
                                    add_neon, logsumexp_neon};
