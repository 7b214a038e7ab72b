/* AVX2 kernels for nn/linear.c: the f32 GEMM in tiles of up to 6 rows x 16 columns (12 ymm
 * accumulators), and the Q8 panel kernel with vpmaddwd on sign-extended int16 (exact, unlike
 * vpmaddubsw, which saturates), producing the same int32 sums as the scalar and VNNI kernels. */
#include <immintrin.h>
#include <string.h>

#include "nn/linear.h"

#define F32_MR 6
/* 4 rows x 2 accumulators: with 6, GCC runs out of the 16 ymm registers and spills */
#define Q8_MR 4

#define SG_INLINE static inline __attribute__((always_inline))
/* the row loops must be fully unrolled for the accumulators to live in registers */
#if defined(__clang__)
#define UNROLL_ROWS _Pragma("clang loop unroll(full)")
#else
#define UNROLL_ROWS _Pragma("GCC unroll 8")
#endif

static inline int block_rows(int m, int max, int *nblocks)
{
    *nblocks = (m + max - 1) / max;
    return m / *nblocks;
}

/* lanes [0, n) set */
static inline __m256i lane_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

SG_INLINE void f32_tile(const int mr, int k, const float *a, long lda, const float *b, long ldb,
                        float *c, long ldc, const float *bias, int ncols, int accumulate)
{
    __m256 acc[F32_MR][2];
    UNROLL_ROWS
    for (int r = 0; r < mr; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const __m256i m0 = lane_mask(ncols), m1 = lane_mask(ncols - 8);
    if (ncols == 16) {
        for (int kk = 0; kk < k; kk++) {
            const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
            UNROLL_ROWS
            for (int r = 0; r < mr; r++) {
                const __m256 av = _mm256_broadcast_ss(a + r * lda + kk);
                acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
            }
            b += ldb;
        }
    } else {
        for (int kk = 0; kk < k; kk++) {
            const __m256 b0 = _mm256_maskload_ps(b, m0), b1 = _mm256_maskload_ps(b + 8, m1);
            UNROLL_ROWS
            for (int r = 0; r < mr; r++) {
                const __m256 av = _mm256_broadcast_ss(a + r * lda + kk);
                acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
            }
            b += ldb;
        }
    }
    __m256 bias0 = _mm256_setzero_ps(), bias1 = _mm256_setzero_ps();
    if (bias) {
        bias0 = _mm256_maskload_ps(bias, m0);
        bias1 = _mm256_maskload_ps(bias + 8, m1);
    }
    UNROLL_ROWS
    for (int r = 0; r < mr; r++) {
        if (accumulate) {
            acc[r][0] = _mm256_add_ps(acc[r][0], _mm256_maskload_ps(c + r * ldc, m0));
            acc[r][1] = _mm256_add_ps(acc[r][1], _mm256_maskload_ps(c + r * ldc + 8, m1));
        }
        _mm256_maskstore_ps(c + r * ldc, m0, _mm256_add_ps(acc[r][0], bias0));
        _mm256_maskstore_ps(c + r * ldc + 8, m1, _mm256_add_ps(acc[r][1], bias1));
    }
}

/* One function per tile height, called through a table: with a switch of inlined calls, clang
 * merges the calls back into one with a variable height and the accumulators leave registers. */
#define F32_TILE_FN(R)                                                                     \
    static void f32_tile_##R(int k, const float *a, long lda, const float *b, long ldb,       \
                             float *c, long ldc, const float *bias, int ncols, int accumulate) \
    {                                                                                      \
        f32_tile(R, k, a, lda, b, ldb, c, ldc, bias, ncols, accumulate);                   \
    }
F32_TILE_FN(1)
F32_TILE_FN(2)
F32_TILE_FN(3)
F32_TILE_FN(4)
F32_TILE_FN(5)
F32_TILE_FN(6)

typedef void (*f32_tile_fn)(int k, const float *a, long lda, const float *b, long ldb, float *c,
                            long ldc, const float *bias, int ncols, int accumulate);
static const f32_tile_fn f32_tiles[F32_MR + 1] = {
    NULL, f32_tile_1, f32_tile_2, f32_tile_3, f32_tile_4, f32_tile_5, f32_tile_6};

void sg_gemm_f32_avx2(int m, int n, int k, const float *a, long lda, const float *b, long ldb,
                      float *c, long ldc, const float *bias, int accumulate)
{
    int nblocks, base = block_rows(m, F32_MR, &nblocks), extra = m - base * nblocks;
    for (int j = 0; j < n; j += 16) {
        const int ncols = n - j < 16 ? n - j : 16;
        int r = 0;
        for (int blk = 0; blk < nblocks; blk++) {
            const int mr = base + (blk < extra);
            f32_tiles[mr](k, a + r * lda, lda, b + j, ldb, c + r * ldc + j, ldc,
                          bias ? bias + j : NULL, ncols, accumulate);
            r += mr;
        }
    }
}

/* ---- Q8 ---- */

/* 4 int16 activations read as one broadcast qword */
typedef long long i64_unaligned __attribute__((may_alias, aligned(1)));

/* 8 floats -> 8 int16 quantised as sg_q8_quantize_scalar does */
static inline __m128i q8_quantize8(__m256 v, __m256 inv)
{
    v = _mm256_mul_ps(v, inv);
    v = _mm256_max_ps(_mm256_min_ps(v, _mm256_set1_ps(127.0f)), _mm256_set1_ps(-127.0f));
    const __m256i q = _mm256_cvtps_epi32(v);
    return _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
}

void sg_q8_quantize_avx2(const float *x, long ldx, int m, int k, int k4, void *xq, long ldq,
                         float *xscale)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int r = 0; r < m; r++) {
        const float *row = x + r * ldx;
        int16_t *q = (int16_t *)((char *)xq + r * ldq);
        __m256 mx = _mm256_setzero_ps();
        int i = 0;
        for (; i + 8 <= k; i += 8)
            mx = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(row + i), absmask), mx);
        if (i < k) {
            const __m256 v = _mm256_maskload_ps(row + i, lane_mask(k - i));
            mx = _mm256_max_ps(_mm256_and_ps(v, absmask), mx);
        }
        float lanes[8];
        _mm256_storeu_ps(lanes, mx);
        float maxabs = 0.0f;
        for (int l = 0; l < 8; l++)
            maxabs = lanes[l] > maxabs ? lanes[l] : maxabs;
        const __m256 inv = _mm256_set1_ps(sg_q8_inv(maxabs));
        xscale[r] = maxabs / 127.0f;
        for (i = 0; i + 8 <= k; i += 8)
            _mm_storeu_si128((__m128i *)(q + i), q8_quantize8(_mm256_loadu_ps(row + i), inv));
        if (i < k) {
            int16_t tmp[8];
            _mm_storeu_si128((__m128i *)tmp,
                             q8_quantize8(_mm256_maskload_ps(row + i, lane_mask(k - i)), inv));
            memcpy(q + i, tmp, (size_t)(k - i) * sizeof(int16_t));
        }
        for (i = k; i < k4; i++)
            q[i] = 0;
    }
}

/* rows x 8 columns of one panel; each 32-bit accumulator lane holds half (2 of 4 k) of one
 * column's sum, folded together with hadd at the end */
SG_INLINE void q8_tile(const int mr, int kg, const char *a, long lda, const int8_t *b,
                       const float *xscale, const float *wscale, const float *bias, float *c,
                       long ldc, int ncols)
{
    __m256i acc[Q8_MR][2];
    UNROLL_ROWS
    for (int r = 0; r < mr; r++)
        acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int g = 0; g < kg; g++) {
        const __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b));
        const __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 16)));
        UNROLL_ROWS
        for (int r = 0; r < mr; r++) {
            const __m256i av = _mm256_set1_epi64x(*(const i64_unaligned *)(a + r * lda + 8 * g));
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
        }
        b += 4 * SG_LINEAR_NR;
    }
    const __m256i mk = lane_mask(ncols);
    const __m256 ws = _mm256_maskload_ps(wscale, mk);
    const __m256 bv = bias ? _mm256_maskload_ps(bias, mk) : _mm256_setzero_ps();
    UNROLL_ROWS
    for (int r = 0; r < mr; r++) {
        /* hadd gives columns 0 1 4 5 | 2 3 6 7; the permute puts them in order */
        const __m256i sum = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][0], acc[r][1]), 0xd8);
        const __m256 s = _mm256_mul_ps(_mm256_set1_ps(xscale[r]), ws);
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(sum), s);
        if (bias)
            v = _mm256_add_ps(v, bv);
        _mm256_maskstore_ps(c + r * ldc, mk, v);
    }
}

#define Q8_TILE_FN(R)                                                                      \
    static void q8_tile_##R(int kg, const char *a, long lda, const int8_t *b,                  \
                            const float *xscale, const float *wscale, const float *bias,       \
                            float *c, long ldc, int ncols)                                     \
    {                                                                                      \
        q8_tile(R, kg, a, lda, b, xscale, wscale, bias, c, ldc, ncols);                    \
    }
Q8_TILE_FN(1)
Q8_TILE_FN(2)
Q8_TILE_FN(3)
Q8_TILE_FN(4)

typedef void (*q8_tile_fn)(int kg, const char *a, long lda, const int8_t *b, const float *xscale,
                           const float *wscale, const float *bias, float *c, long ldc, int ncols);
static const q8_tile_fn q8_tiles[Q8_MR + 1] = {
    NULL, q8_tile_1, q8_tile_2, q8_tile_3, q8_tile_4};

void sg_q8_panel_avx2(int m, int ncols, int k4, const void *xq, long ldq, const float *xscale,
                      const int8_t *panel, const int32_t *qsum, const float *wscale,
                      const float *bias, float *y, long ldy)
{
    (void)qsum;
    int nblocks, base = block_rows(m, Q8_MR, &nblocks), extra = m - base * nblocks;
    for (int j = 0; j < ncols; j += 8) {
        const int nc = ncols - j < 8 ? ncols - j : 8;
        int r = 0;
        for (int blk = 0; blk < nblocks; blk++) {
            const int mr = base + (blk < extra);
            q8_tiles[mr](k4 / 4, (const char *)xq + r * ldq, ldq, panel + j * 4, xscale + r,
                        wscale + j, bias ? bias + j : NULL, y + r * ldy + j, ldy, nc);
            r += mr;
        }
    }
}

/* ---- W8: f32 activations x int8 weights (nn/kv.h's keys and values) ---- */

#define W8_MR 2

/* mr rows x 32 columns in four 8-float accumulators per row */
SG_INLINE void w8_tile(const int mr, int k, const float *a, long lda, const int8_t *b,
                       const float *wscale, float *c, long ldc, int ncols)
{
    __m256 acc[W8_MR][4];
    UNROLL_ROWS
    for (int r = 0; r < mr; r++)
        acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = _mm256_setzero_ps();
    for (int kk = 0; kk < k; kk++) {
        const int8_t *row = b + (long)kk * SG_LINEAR_NR;
        const __m128i lo = _mm_loadu_si128((const __m128i *)row),
                      hi = _mm_loadu_si128((const __m128i *)(row + 16));
        const __m256 w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
        const __m256 w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
        const __m256 w2 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
        const __m256 w3 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
        UNROLL_ROWS
        for (int r = 0; r < mr; r++) {
            const __m256 av = _mm256_broadcast_ss(a + r * lda + kk);
            acc[r][0] = _mm256_fmadd_ps(av, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(av, w1, acc[r][1]);
            acc[r][2] = _mm256_fmadd_ps(av, w2, acc[r][2]);
            acc[r][3] = _mm256_fmadd_ps(av, w3, acc[r][3]);
        }
    }
    UNROLL_ROWS
    for (int r = 0; r < mr; r++)
        for (int q = 0; q < 4; q++) {
            const int nc = ncols - 8 * q;
            if (nc <= 0)
                break;
            const __m256i mk = lane_mask(nc);
            _mm256_maskstore_ps(c + r * ldc + 8 * q, mk,
                                _mm256_mul_ps(acc[r][q], _mm256_maskload_ps(wscale + 8 * q, mk)));
        }
}

#define W8_TILE_FN(R)                                                                      \
    static void w8_tile_##R(int k, const float *a, long lda, const int8_t *b,                  \
                            const float *wscale, float *c, long ldc, int ncols)                \
    {                                                                                      \
        w8_tile(R, k, a, lda, b, wscale, c, ldc, ncols);                                   \
    }
W8_TILE_FN(1)
W8_TILE_FN(2)

typedef void (*w8_tile_fn)(int k, const float *a, long lda, const int8_t *b, const float *wscale,
                           float *c, long ldc, int ncols);
static const w8_tile_fn w8_tiles[W8_MR + 1] = {NULL, w8_tile_1, w8_tile_2};

void sg_w8_panel_avx2(int m, int ncols, int k, const float *x, long ldx, const int8_t *panel,
                      const float *wscale, float *y, long ldy)
{
    int nblocks, base = block_rows(m, W8_MR, &nblocks), extra = m - base * nblocks;
    int r = 0;
    for (int blk = 0; blk < nblocks; blk++) {
        const int mr = base + (blk < extra);
        w8_tiles[mr](k, x + r * ldx, ldx, panel, wscale, y + r * ldy, ldy, ncols);
        r += mr;
    }
}
