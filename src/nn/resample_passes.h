/* The bodies of the resize's two passes, included once per instruction set (resample.c: the
 * scalar reference; resample_avx2.c: the same C compiled for AVX2). The includer defines
 * SG_RESAMPLE_FN(name) to give each copy its own names. Plain C written so that compilers
 * vectorise it: the loops over lanes have fixed widths. */
#include <string.h>

#include "nn/resample.h"

/* Fixed-point sum -> byte: negative sums clamp to 0, the rest shift down and clamp to 255 (the
 * reference's lookup table, branch-free so that it vectorises). */
static inline uint8_t SG_RESAMPLE_FN(clip)(int32_t v)
{
    v = v < 0 ? 0 : v;
    v >>= SG_RESAMPLE_BITS;
    return (uint8_t)(v > 255 ? 255 : v);
}

/* Horizontal pass. A block of SG_RESAMPLE_HBLOCK rows is first transposed into tcol, one column
 * of SG_RESAMPLE_HLANES ints per input pixel (room for in_w columns), widened once and then read by
 * every output pixel whose window covers it; leftover rows go pixel by pixel. */
static void SG_RESAMPLE_FN(horizontal)(const uint8_t *in, size_t in_stride, int nrows,
                                       const sg_resample_axis *ax, uint8_t *out, int32_t *tcol)
{
    const int n = ax->n, ksize = ax->ksize;
    const size_t out_stride = (size_t)n * 3;
    /* Input columns the weights read. */
    int xlo = ax->first[0], xhi = ax->first[0] + ax->count[0];
    for (int i = 1; i < n; i++) {
        if (ax->first[i] < xlo)
            xlo = ax->first[i];
        if (ax->first[i] + ax->count[i] > xhi)
            xhi = ax->first[i] + ax->count[i];
    }

    int y = 0;
    for (; y + SG_RESAMPLE_HBLOCK <= nrows; y += SG_RESAMPLE_HBLOCK) {
        for (int x = xlo; x < xhi; x++) {
            int32_t *tc = tcol + (size_t)(x - xlo) * SG_RESAMPLE_HLANES;
            for (int r = 0; r < SG_RESAMPLE_HBLOCK; r++) {
                const uint8_t *p = in + (size_t)(y + r) * in_stride + (size_t)x * 3;
                tc[3 * r + 0] = p[0];
                tc[3 * r + 1] = p[1];
                tc[3 * r + 2] = p[2];
            }
        }
        uint8_t *o = out + (size_t)y * out_stride;
        for (int i = 0; i < n; i++) {
            const int32_t *tc = tcol + (size_t)(ax->first[i] - xlo) * SG_RESAMPLE_HLANES;
            const int32_t *k = ax->k + (size_t)i * ksize;
            const int cnt = ax->count[i];
            int32_t acc[SG_RESAMPLE_HLANES];
            for (int l = 0; l < SG_RESAMPLE_HLANES; l++)
                acc[l] = SG_RESAMPLE_HALF;
            for (int t = 0; t < cnt; t++) {
                const int32_t kt = k[t];
                const int32_t *c = tc + (size_t)t * SG_RESAMPLE_HLANES;
                for (int l = 0; l < SG_RESAMPLE_HLANES; l++)
                    acc[l] += c[l] * kt;
            }
            uint8_t px[SG_RESAMPLE_HLANES];
            for (int l = 0; l < SG_RESAMPLE_HLANES; l++)
                px[l] = SG_RESAMPLE_FN(clip)(acc[l]);
            for (int r = 0; r < SG_RESAMPLE_HBLOCK; r++)
                memcpy(o + (size_t)r * out_stride + (size_t)i * 3, px + 3 * r, 3);
        }
    }
    for (; y < nrows; y++) {
        const uint8_t *row = in + (size_t)y * in_stride;
        uint8_t *o = out + (size_t)y * out_stride;
        for (int i = 0; i < n; i++) {
            const uint8_t *p = row + (size_t)ax->first[i] * 3;
            const int32_t *k = ax->k + (size_t)i * ksize;
            const int cnt = ax->count[i];
            int32_t r = SG_RESAMPLE_HALF, g = SG_RESAMPLE_HALF, b = SG_RESAMPLE_HALF;
            for (int t = 0; t < cnt; t++) {
                r += p[3 * t + 0] * k[t];
                g += p[3 * t + 1] * k[t];
                b += p[3 * t + 2] * k[t];
            }
            o[3 * i + 0] = SG_RESAMPLE_FN(clip)(r);
            o[3 * i + 1] = SG_RESAMPLE_FN(clip)(g);
            o[3 * i + 2] = SG_RESAMPLE_FN(clip)(b);
        }
    }
}

/* Bytes of a row the vertical pass handles together, in registers. */
#define VLANES 32

/* Vertical pass. Runs of VLANES bytes accumulate in a local array the
 * compiler keeps in vector registers; the tail goes byte by byte. */
static void SG_RESAMPLE_FN(vertical)(const uint8_t *in, size_t in_stride, size_t row_bytes,
                                     const sg_resample_axis *ax, uint8_t *out)
{
    for (int i = 0; i < ax->n; i++) {
        const int32_t *k = ax->k + (size_t)i * ax->ksize;
        const int cnt = ax->count[i];
        const uint8_t *base = in + (size_t)ax->first[i] * in_stride;
        uint8_t *o = out + (size_t)i * row_bytes;
        size_t j = 0;
        for (; j + VLANES <= row_bytes; j += VLANES) {
            int32_t acc[VLANES];
            for (int l = 0; l < VLANES; l++)
                acc[l] = SG_RESAMPLE_HALF;
            for (int t = 0; t < cnt; t++) {
                const uint8_t *row = base + (size_t)t * in_stride + j;
                const int32_t kt = k[t];
                for (int l = 0; l < VLANES; l++)
                    acc[l] += row[l] * kt;
            }
            for (int l = 0; l < VLANES; l++)
                o[j + l] = SG_RESAMPLE_FN(clip)(acc[l]);
        }
        for (; j < row_bytes; j++) {
            int32_t acc = SG_RESAMPLE_HALF;
            for (int t = 0; t < cnt; t++)
                acc += base[(size_t)t * in_stride + j] * k[t];
            o[j] = SG_RESAMPLE_FN(clip)(acc);
        }
    }
}
