/* SDOT Q8 panel (aarch64 with the ARMv8.2 dot-product extension; compiled with +dotprod and called
 * only where HWCAP_ASIMDDP is set). The panel's VNNI layout is SDOT's: a 16-byte load is 4 columns
 * x 4 k and vdotq_s32 adds each column's 4 int8 products (with the row's 4 int8, broadcast) into
 * its int32 lane: exact, so the sums equal the scalar twin's. */
#include <arm_neon.h>
#include <string.h>

#include "nn/linear.h"

#define NR SG_LINEAR_NR
_Static_assert(NR % 16 == 0, "a pass is 16 columns");

void sg_q8_panel_dotprod(int m, int ncols, int k4, const void *xq, long ldq, const float *xscale,
                         const int8_t *panel, const int32_t *qsum, const float *wscale,
                         const float *bias, float *y, long ldy)
{
    (void)qsum;
    for (int i = 0; i < m; i++) {
        const int8_t *q = (const int8_t *)xq + i * ldq;
        int32_t sums[NR];
        /* 16 columns a pass, their 4 accumulators named so they stay in registers (an array of
         * NR / 4 of them went through the stack at every SDOT); the row is read once per pass */
        for (int c0 = 0; c0 < NR; c0 += 16) {
            int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
            const int8_t *pg = panel + 4 * c0;
            for (int g = 0; g < k4 / 4; g++, pg += 4 * NR) {
                int32_t q4;
                memcpy(&q4, q + 4 * g, sizeof q4);
                const int8x16_t qv = vreinterpretq_s8_s32(vdupq_n_s32(q4));
                a0 = vdotq_s32(a0, vld1q_s8(pg), qv);
                a1 = vdotq_s32(a1, vld1q_s8(pg + 16), qv);
                a2 = vdotq_s32(a2, vld1q_s8(pg + 32), qv);
                a3 = vdotq_s32(a3, vld1q_s8(pg + 48), qv);
            }
            vst1q_s32(sums + c0, a0);
            vst1q_s32(sums + c0 + 4, a1);
            vst1q_s32(sums + c0 + 8, a2);
            vst1q_s32(sums + c0 + 12, a3);
        }
        sg_q8_panel_store_row(ncols, sums, xscale[i], wscale, bias, y + i * ldy);
    }
}
