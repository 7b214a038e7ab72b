/* AVX2 kernels of the spike layer (spike.h): 32 outputs at a time kept in four registers across
 * all fired inputs, the same additions in the same order as the scalar reference (identical
 * floats); the last n % 32 outputs one by one, as the reference computes them. */
#include <immintrin.h>

#include "nn/spike.h"

void sg_spike_f32_avx2(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y)
{
    const int n = L->n;
    int c = 0;
    for (; c + 32 <= n; c += 32) {
        __m256 acc[4];
        for (int v = 0; v < 4; v++)
            acc[v] = L->bias ? _mm256_loadu_ps(L->bias + c + 8 * v) : _mm256_setzero_ps();
        for (int t = 0; t < nidx; t++) {
            const float *w = sg_spike_col_f32(L, idx[t]) + c;
            for (int v = 0; v < 4; v++)
                acc[v] = _mm256_add_ps(acc[v], _mm256_loadu_ps(w + 8 * v));
        }
        for (int v = 0; v < 4; v++)
            _mm256_storeu_ps(y + c + 8 * v, acc[v]);
    }
    for (int j = c; j < n; j++)
        y[j] = sg_spike_f32_out(L, idx, nidx, j);
}

/* int8 weights widened to int32 and summed exactly; the scaling is the reference's float
 * operations, lane by lane */
void sg_spike_q8_avx2(const sg_spike_linear *L, const uint16_t *idx, int nidx, float *y)
{
    const int n = L->n;
    int c = 0;
    const __m256 xs = _mm256_set1_ps(nidx ? 1.0f / 127.0f : 0.0f);
    const __m256i k127 = _mm256_set1_epi32(127);
    for (; c + 32 <= n; c += 32) {
        __m256i acc[4];
        for (int v = 0; v < 4; v++)
            acc[v] = _mm256_setzero_si256();
        for (int t = 0; t < nidx; t++) {
            const int8_t *w = sg_spike_col_q8(L, idx[t]) + c;
            for (int v = 0; v < 4; v++)
                acc[v] = _mm256_add_epi32(
                    acc[v], _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(w + 8 * v))));
        }
        for (int v = 0; v < 4; v++) {
            const __m256 s = _mm256_mul_ps(xs, _mm256_loadu_ps(L->scale + c + 8 * v));
            __m256 o = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_mullo_epi32(acc[v], k127)), s);
            if (L->bias)
                o = _mm256_add_ps(o, _mm256_loadu_ps(L->bias + c + 8 * v));
            _mm256_storeu_ps(y + c + 8 * v, o);
        }
    }
    for (int j = c; j < n; j++) {
        int32_t acc = 0;
        for (int t = 0; t < nidx; t++)
            acc += sg_spike_col_q8(L, idx[t])[j];
        y[j] = sg_spike_q8_out(L, acc, nidx, j);
    }
}
