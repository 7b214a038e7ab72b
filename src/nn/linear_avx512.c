/* AVX-512 kernels for nn/linear.c: the f32 GEMM (tiles of up to 12 rows x 32 columns held in 24
 * zmm accumulators, A broadcast from memory, B streamed from a k-major panel) and the Q8 panel
 * kernel (VNNI vpdpbusd on u8 activations x s8 weights, 4 k per 32-bit lane, with the +128
 * activation offset taken back out through the weights' row sums). */
#include <immintrin.h>

#include "nn/linear.h"

#define F32_MR 12
#define Q8_MR 12

#define SG_INLINE static inline __attribute__((always_inline))
/* the row loops must be fully unrolled for the accumulators to live in registers */
#if defined(__clang__)
#define UNROLL_ROWS _Pragma("clang loop unroll(full)")
#else
#define UNROLL_ROWS _Pragma("GCC unroll 16")
#endif

/* Row blocks of at most max rows, as even as possible (50 rows with 12-row tiles: 5 x 10, not
 * 4 x 12 + 2), so no tile is a thin leftover that streams the panel for little work. */
static inline int block_rows(int m, int max, int *nblocks)
{
    *nblocks = (m + max - 1) / max;
    return m / *nblocks;
}

static inline __mmask16 tail_mask(int n) { return n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1); }

SG_INLINE void f32_tile(const int mr, int k, const float *a, long lda, const float *b, long ldb,
                        float *c, long ldc, const float *bias, int ncols, int accumulate)
{
    __m512 acc[F32_MR][2];
    UNROLL_ROWS
    for (int r = 0; r < mr; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const __mmask16 m0 = tail_mask(ncols), m1 = tail_mask(ncols > 16 ? ncols - 16 : 0);
    if (ncols == 32) {
        for (int kk = 0; kk < k; kk++) {
            const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
            UNROLL_ROWS
            for (int r = 0; r < mr; r++) {
                const __m512 av = _mm512_set1_ps(a[r * lda + kk]);
                acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
            }
            b += ldb;
        }
    } else {
        for (int kk = 0; kk < k; kk++) {
            const __m512 b0 = _mm512_maskz_loadu_ps(m0, b), b1 = _mm512_maskz_loadu_ps(m1, b + 16);
            UNROLL_ROWS
            for (int r = 0; r < mr; r++) {
                const __m512 av = _mm512_set1_ps(a[r * lda + kk]);
                acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
            }
            b += ldb;
        }
    }
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (bias) {
        bias0 = _mm512_maskz_loadu_ps(m0, bias);
        bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    UNROLL_ROWS
    for (int r = 0; r < mr; r++) {
        if (accumulate) {
            acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(m0, c + r * ldc));
            acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(m1, c + r * ldc + 16));
        }
        _mm512_mask_storeu_ps(c + r * ldc, m0, _mm512_add_ps(acc[r][0], bias0));
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, _mm512_add_ps(acc[r][1], bias1));
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
F32_TILE_FN(7)
F32_TILE_FN(8)
F32_TILE_FN(9)
F32_TILE_FN(10)
F32_TILE_FN(11)
F32_TILE_FN(12)

typedef void (*f32_tile_fn)(int k, const float *a, long lda, const float *b, long ldb, float *c,
                            long ldc, const float *bias, int ncols, int accumulate);
static const f32_tile_fn f32_tiles[F32_MR + 1] = {
    NULL, f32_tile_1, f32_tile_2, f32_tile_3, f32_tile_4, f32_tile_5, f32_tile_6, f32_tile_7,
    f32_tile_8, f32_tile_9, f32_tile_10, f32_tile_11, f32_tile_12};

void sg_gemm_f32_avx512(int m, int n, int k, const float *a, long lda, const float *b, long ldb,
                        float *c, long ldc, const float *bias, int accumulate)
{
    int nblocks, base = block_rows(m, F32_MR, &nblocks), extra = m - base * nblocks;
    for (int j = 0; j < n; j += 32) {
        const int ncols = n - j < 32 ? n - j : 32;
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

/* 4 activation bytes read as one broadcast dword */
typedef int32_t i32_unaligned __attribute__((may_alias, aligned(1)));

/* acc += u8 a . s8 b in groups of 4. For GCC as asm with the accumulator tied in place: GCC 12
 * otherwise copies every accumulator through a spare register on each use of the intrinsic (and
 * spills). Clang does well with the intrinsic and would not unroll the row loop around asm. */
static inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b)
{
#if defined(__clang__)
    return _mm512_dpbusd_epi32(acc, a, b);
#else
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
#endif
}

void sg_q8_quantize_avx512(const float *x, long ldx, int m, int k, int k4, void *xq, long ldq,
                           float *xscale)
{
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
    for (int r = 0; r < m; r++) {
        const float *row = x + r * ldx;
        uint8_t *q = (uint8_t *)xq + r * ldq;
        /* max(|v|, mx): a NaN |v| leaves mx as it is, like the scalar comparison. Four chains,
         * as vmaxps has latency; max is exact, so the order does not matter. */
        __m512 mx[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                        _mm512_setzero_ps()};
        int i = 0;
        for (; i + 64 <= k; i += 64)
            for (int j = 0; j < 4; j++)
                mx[j] = _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(row + i + 16 * j), absmask),
                                      mx[j]);
        for (; i < k; i += 16) {
            const __m512 v = _mm512_maskz_loadu_ps(tail_mask(k - i), row + i);
            mx[0] = _mm512_max_ps(_mm512_and_ps(v, absmask), mx[0]);
        }
        const float maxabs =
            _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(mx[0], mx[1]), _mm512_max_ps(mx[2], mx[3])));
        const float inv = sg_q8_inv(maxabs);
        xscale[r] = maxabs / 127.0f;
        const __m512 vinv = _mm512_set1_ps(inv);
        const __m128i offset = _mm_set1_epi8((char)0x80);
        i = 0;
        /* plain stores for whole vectors: masked byte stores are slow on Zen 4 */
        for (; i + 16 <= k; i += 16) {
            __m512 v = _mm512_mul_ps(_mm512_loadu_ps(row + i), vinv);
            v = _mm512_max_ps(_mm512_min_ps(v, hi), lo);
            const __m128i b = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v));
            _mm_storeu_si128((__m128i *)(q + i), _mm_xor_si128(b, offset));
        }
        if (i < k) {
            const __mmask16 mk = tail_mask(k - i);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, row + i), vinv);
            v = _mm512_max_ps(_mm512_min_ps(v, hi), lo);
            const __m128i b = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v));
            _mm_mask_storeu_epi8(q + i, mk, _mm_xor_si128(b, offset));
        }
        for (i = k; i < k4; i++)
            q[i] = 128;
    }
}

SG_INLINE void q8_tile(const int mr, int kg, const uint8_t *a, long lda, const int8_t *b,
                       const int32_t *qsum, const float *xscale, const float *wscale,
                       const float *bias, float *c, long ldc, int ncols, uintptr_t pf)
{
    __m512i acc[Q8_MR][2];
    UNROLL_ROWS
    for (int r = 0; r < mr; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (int g = 0; g < kg; g++) {
        const __m512i b0 = _mm512_load_si512(b), b1 = _mm512_load_si512(b + 64);
        if (pf) {
            _mm_prefetch((const char *)(pf + 128 * (uintptr_t)g), _MM_HINT_T1);
            _mm_prefetch((const char *)(pf + 128 * (uintptr_t)g + 64), _MM_HINT_T1);
        }
        UNROLL_ROWS
        for (int r = 0; r < mr; r++) {
            const __m512i av = _mm512_set1_epi32(*(const i32_unaligned *)(a + r * lda + 4 * g));
            acc[r][0] = dpbusd(acc[r][0], av, b0);
            acc[r][1] = dpbusd(acc[r][1], av, b1);
        }
        b += 4 * SG_LINEAR_NR;
    }
    const __mmask16 m0 = tail_mask(ncols), m1 = tail_mask(ncols > 16 ? ncols - 16 : 0);
    /* sum (q + 128) w - 128 sum w = sum q w, exactly */
    const __m512i off0 = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(m0, qsum), 7);
    const __m512i off1 = _mm512_slli_epi32(_mm512_maskz_loadu_epi32(m1, qsum + 16), 7);
    const __m512 ws0 = _mm512_maskz_loadu_ps(m0, wscale);
    const __m512 ws1 = _mm512_maskz_loadu_ps(m1, wscale + 16);
    __m512 bias0 = _mm512_setzero_ps(), bias1 = _mm512_setzero_ps();
    if (bias) {
        bias0 = _mm512_maskz_loadu_ps(m0, bias);
        bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    UNROLL_ROWS
    for (int r = 0; r < mr; r++) {
        const __m512 xs = _mm512_set1_ps(xscale[r]);
        __m512 y0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][0], off0)),
                                  _mm512_mul_ps(xs, ws0));
        __m512 y1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][1], off1)),
                                  _mm512_mul_ps(xs, ws1));
        if (bias) {
            y0 = _mm512_add_ps(y0, bias0);
            y1 = _mm512_add_ps(y1, bias1);
        }
        _mm512_mask_storeu_ps(c + r * ldc, m0, y0);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, y1);
    }
}

#define Q8_TILE_FN(R)                                                                      \
    static void q8_tile_##R(int kg, const uint8_t *a, long lda, const int8_t *b,               \
                            const int32_t *qsum, const float *xscale, const float *wscale,     \
                            const float *bias, float *c, long ldc, int ncols,                  \
                            uintptr_t pf)                                                      \
    {                                                                                      \
        q8_tile(R, kg, a, lda, b, qsum, xscale, wscale, bias, c, ldc, ncols, pf);          \
    }
Q8_TILE_FN(1)
Q8_TILE_FN(2)
Q8_TILE_FN(3)
Q8_TILE_FN(4)
Q8_TILE_FN(5)
Q8_TILE_FN(6)
Q8_TILE_FN(7)
Q8_TILE_FN(8)
Q8_TILE_FN(9)
Q8_TILE_FN(10)
Q8_TILE_FN(11)
Q8_TILE_FN(12)

typedef void (*q8_tile_fn)(int kg, const uint8_t *a, long lda, const int8_t *b,
                           const int32_t *qsum, const float *xscale, const float *wscale,
                           const float *bias, float *c, long ldc, int ncols, uintptr_t pf);
static const q8_tile_fn q8_tiles[Q8_MR + 1] = {
    NULL, q8_tile_1, q8_tile_2, q8_tile_3, q8_tile_4, q8_tile_5, q8_tile_6, q8_tile_7, q8_tile_8,
    q8_tile_9, q8_tile_10, q8_tile_11, q8_tile_12};

void sg_q8_panel_avx512(int m, int ncols, int k4, const void *xq, long ldq, const float *xscale,
                        const int8_t *panel, const int32_t *qsum, const float *wscale,
                        const float *bias, float *y, long ldy)
{
    int nblocks, base = block_rows(m, Q8_MR, &nblocks), extra = m - base * nblocks;
    const uint8_t *a = xq;
    int r = 0;
    for (int blk = 0; blk < nblocks; blk++) {
        const int mr = base + (blk < extra);
        /* While the first row block runs, fetch the next panel (contiguous after this one) into
         * L2: int8 weights are streamed from DRAM in a real model (ViT-B/32 has 88 MB), and the
         * hardware prefetcher alone runs too few lines ahead to keep VNNI fed (measured: 210 vs
         * 400 GOP/s with cold weights). An address, not a pointer: past the last panel it points
         * outside the buffer, which a prefetch may do. */
        const uintptr_t pf = blk == 0 ? (uintptr_t)panel + (uintptr_t)k4 * SG_LINEAR_NR : 0;
        q8_tiles[mr](k4 / 4, a + r * ldq, ldq, panel, qsum, xscale + r, wscale, bias,
                     y + r * ldy, ldy, ncols, pf);
        r += mr;
    }
}

/* ---- W8: f32 activations x int8 weights (nn/kv.h's keys and values) ---- */

#define W8_MR 4

/* 32 int8 weights of row kk of a panel as two vectors of floats */
static inline void w8_load(const int8_t *b, __m512 *w0, __m512 *w1)
{
    const __m256i v = _mm256_loadu_si256((const __m256i *)b);
    *w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(v)));
    *w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(v, 1)));
}

/* mr rows x 32 columns; two sets of accumulators (even and odd k) hide the FMA latency when few
 * rows share each weight row (one decoded token is one row) */
SG_INLINE void w8_tile(const int mr, int k, const float *a, long lda, const int8_t *b,
                       const float *wscale, float *c, long ldc, int ncols)
{
    __m512 acc[W8_MR][4];
    UNROLL_ROWS
    for (int r = 0; r < mr; r++)
        acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = _mm512_setzero_ps();
    int kk = 0;
    for (; kk + 2 <= k; kk += 2) {
        __m512 w0, w1, w2, w3;
        w8_load(b + (long)kk * SG_LINEAR_NR, &w0, &w1);
        w8_load(b + (long)(kk + 1) * SG_LINEAR_NR, &w2, &w3);
        UNROLL_ROWS
        for (int r = 0; r < mr; r++) {
            const __m512 a0 = _mm512_set1_ps(a[r * lda + kk]), a1 = _mm512_set1_ps(a[r * lda + kk + 1]);
            acc[r][0] = _mm512_fmadd_ps(a0, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a0, w1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(a1, w2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(a1, w3, acc[r][3]);
        }
    }
    if (kk < k) {
        __m512 w0, w1;
        w8_load(b + (long)kk * SG_LINEAR_NR, &w0, &w1);
        UNROLL_ROWS
        for (int r = 0; r < mr; r++) {
            const __m512 a0 = _mm512_set1_ps(a[r * lda + kk]);
            acc[r][0] = _mm512_fmadd_ps(a0, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a0, w1, acc[r][1]);
        }
    }
    const __mmask16 m0 = tail_mask(ncols), m1 = tail_mask(ncols > 16 ? ncols - 16 : 0);
    const __m512 s0 = _mm512_maskz_loadu_ps(m0, wscale), s1 = _mm512_maskz_loadu_ps(m1, wscale + 16);
    UNROLL_ROWS
    for (int r = 0; r < mr; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, _mm512_mul_ps(_mm512_add_ps(acc[r][0], acc[r][2]), s0));
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1,
                              _mm512_mul_ps(_mm512_add_ps(acc[r][1], acc[r][3]), s1));
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
W8_TILE_FN(3)
W8_TILE_FN(4)

typedef void (*w8_tile_fn)(int k, const float *a, long lda, const int8_t *b, const float *wscale,
                           float *c, long ldc, int ncols);
static const w8_tile_fn w8_tiles[W8_MR + 1] = {NULL, w8_tile_1, w8_tile_2, w8_tile_3, w8_tile_4};

void sg_w8_panel_avx512(int m, int ncols, int k, const float *x, long ldx, const int8_t *panel,
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
