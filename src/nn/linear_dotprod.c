/* SDOT Q8 panel (aarch64 with the ARMv8.2 dot-product extension; compiled with +dotprod and called
 * only where HWCAP_ASIMDDP is set). The panel's VNNI layout is SDOT's: a 16-byte load is 4 columns
 * x 4 k and vdotq_s32 adds each column's 4 int8 products (with the row's 4 int8, broadcast) into
 * its int32 lane: exact, so the sums equal the scalar twin's. */
#include <arm_neon.h>
#include <string.h>

#include "nn/linear.h"

#define NR SG_LINEAR_NR

void sg_q8_panel_dotprod(int m, int ncols, int k4, const void *xq, long ldq, const float *xscale,
                         const int8_t *panel, const int32_t *qsum, const float *wscale,
                         const float *bias, float *y, long ldy)
{
    (void)qsum;
    for (int i = 0; i < m; i++) {
        const int8_t *q = (const int8_t *)xq + i * ldq;
        int32x4_t acc[NR / 4];
        for (int c = 0; c < NR / 4; c++)
            acc[c] = vdupq_n_s32(0);
        for (int g = 0; g < k4 / 4; g++) {
            int32_t q4;
            memcpy(&q4, q + 4 * g, sizeof q4);
            const int8x16_t qv = vreinterpretq_s8_s32(vdupq_n_s32(q4));
            const int8_t *pg = panel + (size_t)g * 4 * NR;
            for (int c = 0; c < NR / 4; c++)
                acc[c] = vdotq_s32(acc[c], vld1q_s8(pg + 16 * c), qv);
        }
        int32_t sums[NR];
        for (int c = 0; c < NR / 4; c++)
            vst1q_s32(sums + 4 * c, acc[c]);
        sg_q8_panel_store_row(ncols, sums, xscale[i], wscale, bias, y + i * ldy);
    }
}
