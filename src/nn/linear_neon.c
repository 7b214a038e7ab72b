/* NEON Q8 panel (aarch64, and armv7 with -mfpu=neon): for each group of 4 k the panel holds
 * SG_LINEAR_NR columns x 4 int8 (the VNNI layout), so one 8-byte load is 2 columns x 4 k. vmull_s8
 * multiplies them by the row's 4 int8 (broadcast) into int16 (|q w| <= 127 * 127 fits), vpadalq_s16
 * adds neighbouring products into int32 lanes: exact, so the sums equal the scalar twin's. */
#include <arm_neon.h>
#include <string.h>

#include "nn/linear.h"

#define NR SG_LINEAR_NR

void sg_q8_panel_neon(int m, int ncols, int k4, const void *xq, long ldq, const float *xscale,
                      const int8_t *panel, const int32_t *qsum, const float *wscale,
                      const float *bias, float *y, long ldy)
{
    (void)qsum;
    for (int i = 0; i < m; i++) {
        const int8_t *q = (const int8_t *)xq + i * ldq;
        int32x4_t acc[NR / 2]; /* acc[c]: column 2c as lanes 0+1, column 2c+1 as lanes 2+3 */
        for (int c = 0; c < NR / 2; c++)
            acc[c] = vdupq_n_s32(0);
        for (int g = 0; g < k4 / 4; g++) {
            int32_t q4;
            memcpy(&q4, q + 4 * g, sizeof q4);
            const int8x8_t qv = vreinterpret_s8_s32(vdup_n_s32(q4));
            const int8_t *pg = panel + (size_t)g * 4 * NR;
            for (int c = 0; c < NR / 2; c++)
                acc[c] = vpadalq_s16(acc[c], vmull_s8(vld1_s8(pg + 8 * c), qv));
        }
        int32_t sums[NR];
        for (int c = 0; c < NR / 2; c++)
            vst1_s32(sums + 2 * c, vpadd_s32(vget_low_s32(acc[c]), vget_high_s32(acc[c])));
        sg_q8_panel_store_row(ncols, sums, xscale[i], wscale, bias, y + i * ldy);
    }
}
