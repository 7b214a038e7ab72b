/* NEON row kernels (vec.h), aarch64 only: 4 floats at a time. axpy and quantize_row's q and scale
 * give the scalar references' numbers; dot sums in another order (fused, four accumulators);
 * argmax and collect give the same answers.
 * armv7 keeps the scalar table: its NEON flushes denormals to zero, which would change axpy's
 * floats, argmax's ties and quantize_row's scale on denormal rows, all of which the table
 * promises to keep equal. */
#include "nn/vec.h"

#ifdef __aarch64__
#include <arm_neon.h>
#include <float.h>
#include <math.h>

#include "nn/linear.h"

/* per lane: v where v > acc, else acc (NaN v keeps acc, as the scalar comparisons do) */
static inline float32x4_t max_keep(float32x4_t v, float32x4_t acc)
{
    return vbslq_f32(vcgtq_f32(v, acc), v, acc);
}

static inline float32x4_t min_keep(float32x4_t v, float32x4_t acc)
{
    return vbslq_f32(vcltq_f32(v, acc), v, acc);
}

static float dot_neon(const float *a, const float *b, int n)
{
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f),
                          vdupq_n_f32(0.0f)};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 4; j++)
            acc[j] = vfmaq_f32(acc[j], vld1q_f32(a + i + 4 * j), vld1q_f32(b + i + 4 * j));
    for (; i + 4 <= n; i += 4)
        acc[0] = vfmaq_f32(acc[0], vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* a x rounded, then added: the scalar reference's two roundings */
static void axpy_neon(float *y, float a, const float *x, int n)
{
    const float32x4_t va = vdupq_n_f32(a);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_f32(va, vld1q_f32(x + i))));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static int argmax_neon(const float *y, int n, float *absmax)
{
    /* a NaN at y[0] makes the scalar scan's answer 0 whatever follows: only it gives that */
    if (n < 16 || y[0] != y[0])
        return sg_vec_scalar.argmax(y, n, absmax);
    float32x4_t mx[4], mn[4];
    for (int j = 0; j < 4; j++)
        mx[j] = mn[j] = vdupq_n_f32(y[0]);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 4; j++) {
            const float32x4_t v = vld1q_f32(y + i + 4 * j);
            mx[j] = max_keep(v, mx[j]);
            mn[j] = min_keep(v, mn[j]);
        }
    float top = vmaxvq_f32(max_keep(max_keep(mx[0], mx[1]), max_keep(mx[2], mx[3])));
    float low = vminvq_f32(min_keep(min_keep(mn[0], mn[1]), min_keep(mn[2], mn[3])));
    for (int t = i; t < n; t++) {
        top = y[t] > top ? y[t] : top;
        low = y[t] < low ? y[t] : low;
    }
    *absmax = fabsf(top) > fabsf(low) ? fabsf(top) : fabsf(low);
    const float32x4_t vt = vdupq_n_f32(top);
    for (i = 0; i + 4 <= n; i += 4)
        if (vmaxvq_u32(vceqq_f32(vld1q_f32(y + i), vt)))
            break;
    for (; i < n; i++)
        if (y[i] == top)
            return i;
    return 0; /* unreachable: top is one of the values */
}

static int collect_neon(const float *y, int n, float t, int *idx)
{
    const float32x4_t vt = vdupq_n_f32(t);
    int c = 0, i = 0;
    for (; i + 4 <= n; i += 4)
        if (vmaxvq_u32(vcgeq_f32(vld1q_f32(y + i), vt)))
            for (int j = i; j < i + 4; j++)
                if (y[j] >= t)
                    idx[c++] = j;
    for (; i < n; i++)
        if (y[i] >= t)
            idx[c++] = i;
    return c;
}

/* The same q and scale: max is exact, x * inv and the clamp (compare and select: NaN -> 127)
 * round as the scalar code, and vcvtnq rounds to nearest, ties to even. The bounds are computed
 * in float and rounded up by more than their rounding error (as vec_avx512.c). */
static void quantize_row_neon(const float *w, int k, int8_t *q, float *scale, float *qabs,
                              float *err)
{
    float32x4_t mx = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 4 <= k; i += 4)
        mx = max_keep(vabsq_f32(vld1q_f32(w + i)), mx);
    float maxabs = vmaxvq_f32(mx);
    for (int t = i; t < k; t++)
        maxabs = fabsf(w[t]) > maxabs ? fabsf(w[t]) : maxabs;
    const float inv = sg_q8_inv(maxabs), s = maxabs / 127.0f;
    *scale = s;
    const float32x4_t vinv = vdupq_n_f32(inv), hi = vdupq_n_f32(127.0f), lo = vdupq_n_f32(-127.0f);
    const float32x4_t vs = vdupq_n_f32(s);
    uint32x4_t sum = vdupq_n_u32(0);
    float32x4_t worst = vdupq_n_f32(0.0f);
    for (i = 0; i < k; i += 4) {
        const int m = k - i < 4 ? k - i : 4;
        float x4[4] = {0, 0, 0, 0};
        for (int j = 0; m < 4 && j < m; j++)
            x4[j] = w[i + j];
        const float32x4_t x = vld1q_f32(m == 4 ? w + i : x4); /* the tail zero-padded */
        float32x4_t v = vmulq_f32(x, vinv);
        v = vbslq_f32(vcltq_f32(v, hi), v, hi);
        v = vbslq_f32(vcgtq_f32(v, lo), v, lo);
        const int32x4_t qi = vcvtnq_s32_f32(v);
        int32_t q4[4];
        vst1q_s32(q4, qi);
        for (int j = 0; j < m; j++)
            q[i + j] = (int8_t)q4[j];
        if (qabs) {
            sum = vaddq_u32(sum, vreinterpretq_u32_s32(vabsq_s32(qi)));
            const float32x4_t d = vsubq_f32(x, vmulq_f32(vs, vcvtq_f32_s32(qi)));
            worst = max_keep(vabsq_f32(d), worst);
        }
    }
    if (qabs) {
        *qabs = (float)((double)vaddvq_u32(sum) * s * (1.0 + 1e-6));
        *err = vmaxvq_f32(worst) * (1.0f + 1e-5f) + maxabs * 2.5e-7f + FLT_MIN;
    }
}

const sg_vec_kernels sg_vec_neon = {dot_neon, axpy_neon, argmax_neon, collect_neon,
                                    quantize_row_neon};
#endif
