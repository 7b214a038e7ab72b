/* The 8x8 keyframe thumbnail (see thumb.h). Exact area average in integer arithmetic: pixel x
 * spans [8x, 8x+8) and cell j spans [j*W, (j+1)*W), so every overlap is a whole number; a picture
 * narrower than 8 px simply spreads each pixel over several cells. Luma is kept as
 * 299R+587G+114B (x1000). Looping over cells and then their pixels keeps divisions out of the
 * per-pixel path; only the one or two pixels on a cell border are visited twice. */
#include "media/thumb.h"

#include <stddef.h>
#include <string.h>

static long long overlap(long long a0, long long a1, long long b0, long long b1)
{
    long long lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

void sg_thumb8_rgb(const uint8_t *rgb, int width, int height, float thumb[64])
{
    memset(thumb, 0, 64 * sizeof *thumb);
    if (!rgb || width <= 0 || height <= 0)
        return;
    const long long W = width, H = height;
    uint64_t cells[64] = {0};
    for (long long y = 0; y < H; y++) {
        uint64_t rowacc[8] = {0};
        const uint8_t *row = rgb + (size_t)y * (size_t)W * 3;
        for (int j = 0; j < 8; j++) {
            const long long lo = j * W, hi = lo + W;
            const long long xa = lo / 8, xb = (hi - 1) / 8; /* first and last pixel touched */
            for (long long x = xa; x <= xb; x++) {
                const uint8_t *p = row + x * 3;
                uint64_t luma = 299u * p[0] + 587u * p[1] + 114u * p[2];
                long long wgt = (x > xa && x < xb) ? 8 : overlap(8 * x, 8 * x + 8, lo, hi);
                rowacc[j] += luma * (uint64_t)wgt;
            }
        }
        long long y0 = 8 * y, y1 = y0 + 8;
        for (long long i = y0 / H; i < 8 && i * H < y1; i++) {
            uint64_t oy = (uint64_t)overlap(y0, y1, i * H, (i + 1) * H);
            for (int j = 0; j < 8; j++)
                cells[i * 8 + j] += rowacc[j] * oy;
        }
    }
    /* Each cell covers W*H units (W/8 x H/8 pixels of 64 units each). */
    const double norm = 1000.0 * (double)W * (double)H;
    for (int i = 0; i < 64; i++)
        thumb[i] = (float)((double)cells[i] / norm);
}
