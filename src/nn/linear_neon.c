/* NEON Q8 panel (aarch64, and armv7 with -mfpu=neon): for each group of 4 k the panel holds
 * SG_LINEAR_NR columns x 4 int8 (the VNNI layout), so one 8-byte load is 2 columns x 4 k. vmull_s8
 * multiplies them by the row's 4 int8 (broadcast) into int16 (|q w| <= 127 * 127 fits), vpadalq_s16
 * adds neighbouring products into int32 lanes: exact, so the sums equal the scalar twin's. */
#include <arm_neon.h>
#include <string.h>

#include "nn/linear.h"

#define NR SG_LINEAR_NR
_Static_assert(NR % 8 == 0, "a Q8 pass is 8 columns");

void sg_q8_panel_neon(int m, int ncols, int k4, const void *xq, long ldq, const float *xscale,
                      const int8_t *panel, const int32_t *qsum, const float *wscale,
                      const float *bias, float *y, long ldy)
{
    (void)qsum;
    for (int i = 0; i < m; i++) {
        const int8_t *q = (const int8_t *)xq + i * ldq;
        int32_t sums[NR];
        /* 8 columns a pass, their 4 accumulators named so they stay in registers (armv7 has 16
         * quad registers; an array of NR / 2 went through the stack at every step). a<c>: column
         * c0 + 2c as lanes 0+1, column c0 + 2c + 1 as lanes 2+3 */
        for (int c0 = 0; c0 < NR; c0 += 8) {
            int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
            const int8_t *pg = panel + 4 * c0;
            for (int g = 0; g < k4 / 4; g++, pg += 4 * NR) {
                int32_t q4;
                memcpy(&q4, q + 4 * g, sizeof q4);
                const int8x8_t qv = vreinterpret_s8_s32(vdup_n_s32(q4));
                a0 = vpadalq_s16(a0, vmull_s8(vld1_s8(pg), qv));
                a1 = vpadalq_s16(a1, vmull_s8(vld1_s8(pg + 8), qv));
                a2 = vpadalq_s16(a2, vmull_s8(vld1_s8(pg + 16), qv));
                a3 = vpadalq_s16(a3, vmull_s8(vld1_s8(pg + 24), qv));
            }
            vst1_s32(sums + c0, vpadd_s32(vget_low_s32(a0), vget_high_s32(a0)));
            vst1_s32(sums + c0 + 2, vpadd_s32(vget_low_s32(a1), vget_high_s32(a1)));
            vst1_s32(sums + c0 + 4, vpadd_s32(vget_low_s32(a2), vget_high_s32(a2)));
            vst1_s32(sums + c0 + 6, vpadd_s32(vget_low_s32(a3), vget_high_s32(a3)));
        }
        sg_q8_panel_store_row(ncols, sums, xscale[i], wscale, bias, y + i * ldy);
    }
}

/* F32 GEMM (the dense panels and attention's products): c[m, n] = a[m, k] b[k, n] (+ c) (+ bias),
 * a row of 4 rows x 8 columns of c in registers, k-major b loaded 8 columns at a time. Multiply-
 * add is fused on aarch64 (vfmaq_f32) and not on armv7 (vmlaq_f32): equal to the scalar twin up to
 * rounding order, as the x86 kernels are. */
#ifdef __aarch64__
#define F32_MLA(acc, x, y) vfmaq_f32((acc), (x), (y))
#else
#define F32_MLA(acc, x, y) vmlaq_f32((acc), (x), (y))
#endif

/* c[mr (<= 4), 8] for columns j..j+7 */
static void f32_tile(int mr, int k, const float *a, long lda, const float *b, long ldb, float *c,
                     long ldc, const float *bias, int accumulate)
{
    float32x4_t acc[4][2];
    for (int r = 0; r < 4; r++)
        acc[r][0] = acc[r][1] = vdupq_n_f32(0.0f);
    for (int kk = 0; kk < k; kk++) {
        const float32x4_t b0 = vld1q_f32(b + kk * ldb), b1 = vld1q_f32(b + kk * ldb + 4);
        for (int r = 0; r < mr; r++) {
            const float32x4_t x = vdupq_n_f32(a[r * lda + kk]);
            acc[r][0] = F32_MLA(acc[r][0], x, b0);
            acc[r][1] = F32_MLA(acc[r][1], x, b1);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int h = 0; h < 2; h++) {
            float32x4_t v = acc[r][h];
            float *dst = c + r * ldc + 4 * h;
            if (accumulate)
                v = vaddq_f32(v, vld1q_f32(dst));
            if (bias)
                v = vaddq_f32(v, vld1q_f32(bias + 4 * h));
            vst1q_f32(dst, v);
        }
}

void sg_gemm_f32_neon(int m, int n, int k, const float *a, long lda, const float *b, long ldb,
                      float *c, long ldc, const float *bias, int accumulate)
{
    const int n8 = n / 8 * 8;
    for (int i = 0; i < m; i += 4) {
        const int mr = m - i < 4 ? m - i : 4;
        for (int j = 0; j < n8; j += 8)
            f32_tile(mr, k, a + i * lda, lda, b + j, ldb, c + i * ldc + j, ldc,
                     bias ? bias + j : NULL, accumulate);
    }
    if (n8 < n) /* the last < 8 columns: the scalar twin */
        sg_gemm_f32_scalar(m, n - n8, k, a, lda, b + n8, ldb, c + n8, ldc, bias ? bias + n8 : NULL,
                           accumulate);
}
