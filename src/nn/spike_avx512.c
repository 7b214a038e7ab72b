/* AVX-512 kernels of the spike layer (spike.h): 64 outputs at a time kept in four registers
 * across all fired inputs, masked at the end of the row; the same additions in the same order as
 * the scalar reference, so the floats are identical. */
#include <immintrin.h>
#include <string.h>

#include "nn/spike.h"

/* the lanes of the 16 outputs from c + 16 v that exist */
static inline __mmask16 lanes(int n, int c, int v)
{
    const int left = n - c - 16 * v;
    return left >= 16 ? (__mmask16)0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
}

void sg_spike_f32_avx512(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y)
{
    const int n = L->n;
    for (int c = 0; c < n; c += 64) {
        __mmask16 mk[4];
        __m512 acc[4];
        for (int v = 0; v < 4; v++) {
            mk[v] = lanes(n, c, v);
            acc[v] = L->bias ? _mm512_maskz_loadu_ps(mk[v], L->bias + c + 16 * v) : _mm512_setzero_ps();
        }
        for (int t = 0; t < nidx; t++) {
            const float *w = sg_spike_col_f32(L, idx[t]) + c;
            for (int v = 0; v < 4; v++)
                acc[v] = _mm512_add_ps(acc[v], _mm512_maskz_loadu_ps(mk[v], w + 16 * v));
        }
        for (int v = 0; v < 4; v++)
            _mm512_mask_storeu_ps(y + c + 16 * v, mk[v], acc[v]);
    }
}

/* int8 weights widened to int32 and summed exactly; the scaling is the reference's float
 * operations, lane by lane */
void sg_spike_q8_avx512(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y)
{
    const int n = L->n;
    const __m512 xs = _mm512_set1_ps(nidx ? 1.0f / 127.0f : 0.0f);
    const __m512i k127 = _mm512_set1_epi32(127);
    for (int c = 0; c < n; c += 64) {
        __mmask16 mk[4];
        __m512i acc[4];
        for (int v = 0; v < 4; v++) {
            mk[v] = lanes(n, c, v);
            acc[v] = _mm512_setzero_si512();
        }
        for (int t = 0; t < nidx; t++) {
            const int8_t *w = sg_spike_col_q8(L, idx[t]) + c;
            for (int v = 0; v < 4; v++) {
                /* a 16-byte load would read past the row's end: the tail goes through a copy */
                __m128i b;
                if (mk[v] == 0xffff) {
                    b = _mm_loadu_si128((const __m128i *)(w + 16 * v));
                } else if (mk[v]) {
                    int8_t tmp[16] = {0};
                    memcpy(tmp, w + 16 * v, (size_t)__builtin_popcount(mk[v]));
                    b = _mm_loadu_si128((const __m128i *)tmp);
                } else {
                    continue;
                }
                acc[v] = _mm512_add_epi32(acc[v], _mm512_cvtepi8_epi32(b));
            }
        }
        for (int v = 0; v < 4; v++) {
            if (!mk[v])
                continue;
            const __m512 s = _mm512_mul_ps(xs, _mm512_maskz_loadu_ps(mk[v], L->scale + c + 16 * v));
            __m512 o = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(acc[v], k127)), s);
            if (L->bias)
                o = _mm512_add_ps(o, _mm512_maskz_loadu_ps(mk[v], L->bias + c + 16 * v));
            _mm512_mask_storeu_ps(y + c + 16 * v, mk[v], o);
        }
    }
}
