/* NEON element-wise kernels (aarch64 and armv7), bit-identical to the scalar references: the
 * residual add, and layernorm's normalising pass (the statistics stay the reference's double
 * sums; multiply then add, unfused, as the reference rounds). ops.c's NEON table takes softmax,
 * GELU and logsumexp from the scalar references for now (their exp/erf want vector
 * approximations, as ops_avx2.c has). */
#include <arm_neon.h>

#include "nn/ops.h"

void sg_layernorm_neon(const float *x, float *y, int rows, int dim, const float *g,
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
        for (; i < dim; i++) {
            const float v = (xr[i] - meanf) * rstd;
            yr[i] = v * (g ? g[i] : 1.0f) + (b ? b[i] : 0.0f);
        }
    }
}

void sg_add_neon(float *x, const float *y, long n)
{
    long i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(x + i, vaddq_f32(vld1q_f32(x + i), vld1q_f32(y + i)));
    for (; i < n; i++)
        x[i] += y[i];
}
