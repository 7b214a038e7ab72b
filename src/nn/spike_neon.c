/* NEON kernels of the spike layer (spike.h), aarch64 and armv7: 16 outputs at a time kept in four
 * registers across all fired inputs, the same additions in the same order as the scalar reference
 * (identical floats; int8 widened and summed exactly in int32, then the reference's scaling); the
 * last n % 16 outputs one by one, as the reference computes them. */
#include <arm_neon.h>

#include "nn/spike.h"

void sg_spike_f32_neon(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y)
{
    const int n = L->n;
    int c = 0;
    for (; c + 16 <= n; c += 16) {
        float32x4_t acc[4];
        for (int v = 0; v < 4; v++)
            acc[v] = L->bias ? vld1q_f32(L->bias + c + 4 * v) : vdupq_n_f32(0.0f);
        for (int t = 0; t < nidx; t++) {
            const float *w = sg_spike_col_f32(L, idx[t]) + c;
            for (int v = 0; v < 4; v++)
                acc[v] = vaddq_f32(acc[v], vld1q_f32(w + 4 * v));
        }
        for (int v = 0; v < 4; v++)
            vst1q_f32(y + c + 4 * v, acc[v]);
    }
    for (int j = c; j < n; j++)
        y[j] = sg_spike_f32_out(L, idx, nidx, j);
}

void sg_spike_q8_neon(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y)
{
    const int n = L->n;
    int c = 0;
    for (; c + 16 <= n; c += 16) {
        int32x4_t acc[4];
        for (int v = 0; v < 4; v++)
            acc[v] = vdupq_n_s32(0);
        for (int t = 0; t < nidx; t++) {
            const int8x16_t w = vld1q_s8(sg_spike_col_q8(L, idx[t]) + c);
            const int16x8_t lo = vmovl_s8(vget_low_s8(w)), hi = vmovl_s8(vget_high_s8(w));
            acc[0] = vaddw_s16(acc[0], vget_low_s16(lo));
            acc[1] = vaddw_s16(acc[1], vget_high_s16(lo));
            acc[2] = vaddw_s16(acc[2], vget_low_s16(hi));
            acc[3] = vaddw_s16(acc[3], vget_high_s16(hi));
        }
        int32_t sums[16];
        for (int v = 0; v < 4; v++)
            vst1q_s32(sums + 4 * v, acc[v]);
        for (int j = 0; j < 16; j++)
            y[c + j] = sg_spike_q8_out(L, sums[j], nidx, c + j);
    }
    for (int j = c; j < n; j++) {
        int32_t acc = 0;
        for (int t = 0; t < nidx; t++)
            acc += sg_spike_col_q8(L, idx[t])[j];
        y[j] = sg_spike_q8_out(L, acc, nidx, j);
    }
}
