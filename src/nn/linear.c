/* Linear layers y = x W^T + b: weight packing at load time, the scalar reference kernels, and the
 * forward pass, which quantises activations (Q8) on the calling thread and then splits the output
 * columns, in whole packed panels, across the pool. The SIMD kernels live in linear_avx2.c and
 * linear_avx512.c and compute the same function (F32 up to rounding order, Q8 bit-exact). */
#include "nn/linear.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu.h"

#define NR SG_LINEAR_NR
/* F32 k block: 768 keeps ViT's k = 768 in one piece; 50 rows x 768 of x (150 KB) plus a panel
 * block (96 KB) sit in a 1 MB L2 where a whole k = 3072 panel (384 KB) and x (600 KB) do not. */
#define F32_KC 768
/* vpdpbusd sums (q + 128) * w <= 255 * 127 per k in int32: keep k far from overflow */
#define Q8_MAX_K 65536

/* ---- scalar reference kernels ---- */

void sg_gemm_f32_scalar(int m, int n, int k, const float *a, long lda, const float *b, long ldb,
                        float *c, long ldc, const float *bias, int accumulate)
{
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int kk = 0; kk < k; kk++)
                acc += a[i * lda + kk] * b[kk * ldb + j];
            if (accumulate)
                acc += c[i * ldc + j];
            c[i * ldc + j] = bias ? acc + bias[j] : acc;
        }
    }
}

/* The clamp is written as the SIMD min/max instructions behave (NaN -> 127) and the rounding is
 * nearbyintf in the default mode: ties to even, like cvtps2dq. */
static int q8_round(float v)
{
    const float t = v < 127.0f ? v : 127.0f;
    const float u = t > -127.0f ? t : -127.0f;
    return (int)nearbyintf(u);
}

static float q8_row_maxabs(const float *x, int k)
{
    float maxabs = 0.0f;
    for (int i = 0; i < k; i++) {
        const float a = fabsf(x[i]);
        maxabs = a > maxabs ? a : maxabs;
    }
    return maxabs;
}

void sg_q8_quantize_scalar(const float *x, long ldx, int m, int k, int k4, void *xq, long ldq,
                           float *xscale)
{
    for (int r = 0; r < m; r++) {
        const float *row = x + r * ldx;
        int8_t *q = (int8_t *)xq + r * ldq;
        const float maxabs = q8_row_maxabs(row, k);
        const float inv = sg_q8_inv(maxabs);
        xscale[r] = maxabs / 127.0f;
        for (int i = 0; i < k; i++)
            q[i] = (int8_t)q8_round(row[i] * inv);
        for (int i = k; i < k4; i++)
            q[i] = 0;
    }
}

/* weight (column j, index kk) of a Q8 panel */
static inline int q8_panel_at(const int8_t *panel, int j, int kk)
{
    return panel[(kk / 4) * 4 * NR + j * 4 + kk % 4];
}

void sg_q8_panel_scalar(int m, int ncols, int k4, const void *xq, long ldq, const float *xscale,
                        const int8_t *panel, const int32_t *qsum, const float *wscale,
                        const float *bias, float *y, long ldy)
{
    (void)qsum;
    for (int i = 0; i < m; i++) {
        const int8_t *q = (const int8_t *)xq + i * ldq;
        for (int j = 0; j < ncols; j++) {
            int32_t acc = 0;
            for (int kk = 0; kk < k4; kk++)
                acc += q[kk] * q8_panel_at(panel, j, kk);
            /* separate statements: no fused multiply-add, so every level rounds alike */
            const float s = xscale[i] * wscale[j];
            const float v = (float)acc * s;
            y[i * ldy + j] = bias ? v + bias[j] : v;
        }
    }
}

void sg_w8_panel_scalar(int m, int ncols, int k, const float *x, long ldx, const int8_t *panel,
                        const float *wscale, float *y, long ldy)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ncols; j++) {
            float acc = 0.0f;
            for (int kk = 0; kk < k; kk++)
                acc += x[i * ldx + kk] * (float)panel[(long)kk * NR + j];
            y[i * ldy + j] = acc * wscale[j];
        }
}

/* ---- dispatch ---- */

sg_w8_panel_fn sg_w8_panel_get(void)
{
#ifdef SG_X86
    switch (sg_cpu_level_get()) {
    case SG_CPU_AVX512: return sg_w8_panel_avx512;
    case SG_CPU_AVX2: return sg_w8_panel_avx2;
    case SG_CPU_SCALAR: break;
    }
#endif
    return sg_w8_panel_scalar;
}

sg_gemm_f32_fn sg_gemm_f32_get(void)
{
#ifdef SG_X86
    switch (sg_cpu_level_get()) {
    case SG_CPU_AVX512: return sg_gemm_f32_avx512;
    case SG_CPU_AVX2: return sg_gemm_f32_avx2;
    case SG_CPU_SCALAR: break;
    }
#elif defined SG_ARM
    if (sg_cpu_level_get() >= SG_CPU_NEON)
        return sg_gemm_f32_neon;
#endif
    return sg_gemm_f32_scalar;
}

typedef sg_q8_quantize_fn q8_quantize_fn;

/* Bytes per quantised activation at a level (AVX2 keeps them as int16 for vpmaddwd). The ARM
 * levels share the x86 levels' numbers and keep plain int8. */
static int q8_act_bytes(sg_cpu_level level)
{
#ifdef SG_X86
    return level == SG_CPU_AVX2 ? 2 : 1;
#else
    (void)level;
    return 1;
#endif
}

/* Whether a level's quantiser stores uint8 q + 128 (AVX-512 VNNI's vpdpbusd is unsigned x signed). */
static int q8_act_offset(sg_cpu_level level)
{
#ifdef SG_X86
    return level == SG_CPU_AVX512;
#else
    (void)level;
    return 0;
#endif
}

static void q8_kernels(sg_cpu_level level, q8_quantize_fn *quantize, sg_q8_panel_fn *panel)
{
    *quantize = sg_q8_quantize_scalar;
    *panel = sg_q8_panel_scalar;
#ifdef SG_X86
    if (level == SG_CPU_AVX512) {
        *quantize = sg_q8_quantize_avx512;
        *panel = sg_q8_panel_avx512;
    } else if (level == SG_CPU_AVX2) {
        *quantize = sg_q8_quantize_avx2;
        *panel = sg_q8_panel_avx2;
    }
#elif defined SG_ARM
    /* the quantiser stays the scalar one (int8 rows): only the panels differ */
    if (level >= SG_CPU_NEON)
        *panel = sg_q8_panel_neon;
#ifdef __aarch64__
    if (level >= SG_CPU_DOTPROD)
        *panel = sg_q8_panel_dotprod;
#endif
#else
    (void)level;
#endif
}

/* ---- construction ---- */

static int linear_panels(int n) { return (n + NR - 1) / NR; }
static int linear_k4(int k) { return (k + 3) / 4 * 4; }

static void *linear_alloc(size_t bytes, size_t *total)
{
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p)
        *total += rounded;
    return p;
}

static sg_status linear_check(int n, int k, sg_precision prec, sg_error *err)
{
    if (n < 1 || k < 1)
        return sg_error_set(err, SG_EINVAL, "linear: bad shape n=%d k=%d", n, k);
    if (prec != SG_PREC_F32 && prec != SG_PREC_Q8)
        return sg_error_set(err, SG_EINVAL, "linear: unknown precision %d", (int)prec);
    if (prec == SG_PREC_Q8 && k > Q8_MAX_K)
        return sg_error_set(err, SG_EUNSUPPORTED, "linear: q8 needs k <= %d (k=%d)", Q8_MAX_K, k);
    /* in 64 bits, and within a 32-bit size_t's reach on armv7 */
    if ((uint64_t)linear_panels(n) * NR * (uint64_t)linear_k4(k) >
        (UINT64_C(1) << 40 < SIZE_MAX / 4 ? UINT64_C(1) << 40 : SIZE_MAX / 4))
        return sg_error_set(err, SG_ETOOBIG, "linear: %d x %d is too large", n, k);
    return SG_OK;
}

static sg_status linear_init_bias(sg_linear *L, const float *bias, sg_error *err)
{
    if (!bias)
        return SG_OK;
    L->bias = linear_alloc((size_t)L->n * sizeof(float), &L->bytes);
    if (!L->bias)
        return sg_error_set(err, SG_ENOMEM, "linear: out of memory");
    memcpy(L->bias, bias, (size_t)L->n * sizeof(float));
    return SG_OK;
}

/* Row stride of the quantised activations: room for the widest (int16) storage. */
static long q8_ldq(int k) { return ((long)linear_k4(k) * 2 + 63) / 64 * 64; }

/* int8 value i of a row quantised by the level's quantiser (int8 / int16 / uint8 + 128) */
static inline int8_t q8_level_value(int act_bytes, int offset, const void *row, int i)
{
    if (act_bytes == 2)
        return (int8_t)((const int16_t *)row)[i];
    const uint8_t u = ((const uint8_t *)row)[i];
    return (int8_t)(offset ? u ^ 0x80 : u);
}

/* Packs nrows (<= NR) quantised rows (level format, stride ldq bytes; act_bytes/offset describe it)
 * into one VNNI panel of k4 and fills qsum[0..nrows). */
static void q8_pack_panel(const void *xq, long ldq, int act_bytes, int offset, int nrows, int k,
                          int k4, int8_t *panel, int32_t *qsum)
{
    for (int g = 0; g < k4 / 4; g++)
        for (int j = 0; j < NR; j++)
            for (int t = 0; t < 4; t++) {
                const int kk = 4 * g + t;
                panel[g * 4 * NR + j * 4 + t] =
                    j < nrows && kk < k
                        ? q8_level_value(act_bytes, offset, (const char *)xq + j * ldq, kk)
                        : 0;
            }
    for (int j = 0; j < nrows; j++) {
        int32_t sum = 0;
        for (int kk = 0; kk < k; kk++)
            sum += q8_level_value(act_bytes, offset, (const char *)xq + j * ldq, kk);
        qsum[j] = sum;
    }
}

size_t sg_q8_pack_tmp_bytes(int k) { return (size_t)NR * (size_t)q8_ldq(k); }

void sg_q8_pack_rows(const float *w, long ldw, int n, int k, int8_t *dst, float *scale,
                     int32_t *qsum, void *tmp)
{
    const sg_cpu_level level = sg_cpu_level_get();
    q8_quantize_fn quantize;
    sg_q8_panel_fn panel_fn;
    q8_kernels(level, &quantize, &panel_fn);
    const int act = q8_act_bytes(level), k4 = linear_k4(k);
    const long ldq = q8_ldq(k); /* bytes: room for the widest (int16) storage */
    for (int r0 = 0; r0 < n; r0 += NR) {
        const int rows = n - r0 < NR ? n - r0 : NR;
        quantize(w + (long)r0 * ldw, ldw, rows, k, k4, tmp, ldq, scale + r0);
        q8_pack_panel(tmp, ldq, act, q8_act_offset(level), rows, k, k4, dst + (size_t)r0 * k4,
                      qsum + r0);
    }
}

void sg_q8_rows(const float *w, long ldw, int n, int k, int8_t *q, long ldq, float *scale,
                void *tmp)
{
    const sg_cpu_level level = sg_cpu_level_get();
    q8_quantize_fn quantize;
    sg_q8_panel_fn panel_fn;
    q8_kernels(level, &quantize, &panel_fn);
    const int act = q8_act_bytes(level), offset = q8_act_offset(level);
    const long ldt = q8_ldq(k);
    for (int r0 = 0; r0 < n; r0 += NR) {
        const int rows = n - r0 < NR ? n - r0 : NR;
        quantize(w + (long)r0 * ldw, ldw, rows, k, linear_k4(k), tmp, ldt, scale + r0);
        for (int j = 0; j < rows; j++)
            for (int i = 0; i < k; i++)
                q[(long)(r0 + j) * ldq + i] = q8_level_value(act, offset, (const char *)tmp + j * ldt, i);
    }
}

typedef struct rows_src {
    const float *w;
    int k;
} rows_src;

static void rows_copy(void *ctx, int r0, int nrows, float *dst)
{
    const rows_src *src = ctx;
    memcpy(dst, src->w + (size_t)r0 * src->k, (size_t)nrows * src->k * sizeof(float));
}

sg_status sg_linear_init(sg_linear *L, const float *w, const float *bias, int n, int k,
                         sg_precision prec, sg_error *err)
{
    memset(L, 0, sizeof *L);
    if (!w && n >= 1 && k >= 1 && (prec == SG_PREC_F32 || prec == SG_PREC_Q8))
        return sg_error_set(err, SG_EINVAL, "linear: no weights");
    rows_src src = {w, k};
    return sg_linear_init_rows(L, n, k, prec, bias, rows_copy, &src, err);
}

sg_status sg_linear_init_rows(sg_linear *L, int n, int k, sg_precision prec, const float *bias,
                              sg_linear_rows_fn rows, void *ctx, sg_error *err)
{
    memset(L, 0, sizeof *L);
    sg_status st = linear_check(n, k, prec, err);
    if (st != SG_OK)
        return st;
    if (!rows)
        return sg_error_set(err, SG_EINVAL, "linear: no weights");
    L->n = n;
    L->k = k;
    L->prec = prec;
    if ((st = linear_init_bias(L, bias, err)) != SG_OK)
        goto fail;
    const int np = linear_panels(n), k4 = linear_k4(k);
    /* one panel of f32 rows (and, for Q8, of quantised rows) at a time */
    float *buf = malloc((size_t)NR * k * sizeof(float));
    void *tmp = prec == SG_PREC_Q8 ? malloc(sg_q8_pack_tmp_bytes(k)) : NULL;
    if (prec == SG_PREC_F32) {
        L->packed = linear_alloc((size_t)np * NR * (size_t)k * sizeof(float), &L->bytes);
    } else {
        L->q = linear_alloc((size_t)np * NR * (size_t)k4, &L->bytes);
        L->qsum = linear_alloc((size_t)n * sizeof(int32_t), &L->bytes);
        L->scale = linear_alloc((size_t)n * sizeof(float), &L->bytes);
    }
    if (!buf || (prec == SG_PREC_Q8 && (!tmp || !L->q || !L->qsum || !L->scale)) ||
        (prec == SG_PREC_F32 && !L->packed)) {
        free(buf);
        free(tmp);
        st = sg_error_set(err, SG_ENOMEM, "linear: out of memory");
        goto fail;
    }
    for (int p = 0; p < np; p++) {
        const int r0 = p * NR, nrows = n - r0 < NR ? n - r0 : NR;
        rows(ctx, r0, nrows, buf);
        if (prec == SG_PREC_F32) {
            float *panel = L->packed + (size_t)p * NR * k;
            for (int kk = 0; kk < k; kk++)
                for (int j = 0; j < NR; j++)
                    panel[(size_t)kk * NR + j] = j < nrows ? buf[(size_t)j * k + kk] : 0.0f;
        } else {
            /* symmetric per output row, quantised like the activations */
            sg_q8_pack_rows(buf, k, nrows, k, L->q + (size_t)p * NR * k4, L->scale + r0,
                            L->qsum + r0, tmp);
        }
    }
    free(buf);
    free(tmp);
    return SG_OK;
fail:
    sg_linear_free(L);
    return st;
}

sg_status sg_linear_init_q8(sg_linear *L, const int8_t *q, const float *scales, const float *bias,
                            int n, int k, sg_error *err)
{
    memset(L, 0, sizeof *L);
    sg_status st = linear_check(n, k, SG_PREC_Q8, err);
    if (st != SG_OK)
        return st;
    if (!q || !scales)
        return sg_error_set(err, SG_EINVAL, "linear: no weights");
    L->n = n;
    L->k = k;
    L->prec = SG_PREC_Q8;
    L->scale = linear_alloc((size_t)n * sizeof(float), &L->bytes);
    if (!L->scale) {
        st = sg_error_set(err, SG_ENOMEM, "linear: out of memory");
        goto fail;
    }
    memcpy(L->scale, scales, (size_t)n * sizeof(float));
    if ((st = linear_init_bias(L, bias, err)) != SG_OK)
        goto fail;
    const int np = linear_panels(n), k4 = linear_k4(k);
    L->q = linear_alloc((size_t)np * NR * (size_t)k4, &L->bytes);
    L->qsum = linear_alloc((size_t)n * sizeof(int32_t), &L->bytes);
    if (!L->q || !L->qsum) {
        st = sg_error_set(err, SG_ENOMEM, "linear: out of memory");
        goto fail;
    }
    for (int p = 0; p < np; p++) {
        const int r0 = p * NR, nrows = n - r0 < NR ? n - r0 : NR;
        q8_pack_panel(q + (size_t)r0 * k, k, 1, 0, nrows, k, k4, L->q + (size_t)p * NR * k4,
                      L->qsum + r0);
    }
    return SG_OK;
fail:
    sg_linear_free(L);
    return st;
}

void sg_linear_free(sg_linear *L)
{
    if (!L)
        return;
    free(L->bias);
    free(L->packed);
    free(L->q);
    free(L->scale);
    free(L->qsum);
    memset(L, 0, sizeof *L);
}

/* ---- forward ---- */

size_t sg_linear_scratch_bytes(const sg_linear *L, int m)
{
    if (L->prec != SG_PREC_Q8 || m <= 0)
        return 0;
    /* activations, scales, and 64 bytes of alignment slack for each of the two blocks */
    return (size_t)m * (size_t)q8_ldq(L->k) + ((size_t)m * sizeof(float) + 63) / 64 * 64 + 128;
}

/* One parallel region over the panels of count layers that share the input (and so k). */
typedef struct linear_job {
    const sg_linear *L[SG_LINEAR_MULTI];
    float *y[SG_LINEAR_MULTI];
    long ldy[SG_LINEAR_MULTI];
    int first[SG_LINEAR_MULTI + 1]; /* global index of each layer's first panel; [count] = total */
    int count, m;
    const float *x;
    long ldx;
    sg_gemm_f32_fn gemm;
    sg_q8_panel_fn q8;
    const void *xq;
    long ldq;
    const float *xscale;
} linear_job;

static void linear_task(void *ctx, int task, int ntasks)
{
    const linear_job *J = ctx;
    const int total = J->first[J->count];
    const int g0 = (int)((long)total * task / ntasks), g1 = (int)((long)total * (task + 1) / ntasks);
    for (int l = 0; l < J->count; l++) {
        /* this task's panels of layer l */
        const int p0 = (g0 > J->first[l] ? g0 : J->first[l]) - J->first[l];
        const int p1 = (g1 < J->first[l + 1] ? g1 : J->first[l + 1]) - J->first[l];
        if (p0 >= p1)
            continue;
        const sg_linear *L = J->L[l];
        float *y = J->y[l];
        const long ldy = J->ldy[l];
        if (L->prec == SG_PREC_F32) {
            /* k in blocks, so that the block of x and of each panel stay in L2 while reused */
            for (int k0 = 0; k0 < L->k; k0 += F32_KC) {
                const int kc = L->k - k0 < F32_KC ? L->k - k0 : F32_KC;
                for (int p = p0; p < p1; p++) {
                    const int col = p * NR, ncols = L->n - col < NR ? L->n - col : NR;
                    const float *bias = L->bias && k0 == 0 ? L->bias + col : NULL;
                    const float *panel = L->packed + (size_t)p * NR * L->k + (size_t)k0 * NR;
                    J->gemm(J->m, ncols, kc, J->x + k0, J->ldx, panel, NR, y + col, ldy, bias,
                            k0 > 0);
                }
            }
            continue;
        }
        const int k4 = linear_k4(L->k);
        for (int p = p0; p < p1; p++) {
            const int col = p * NR, ncols = L->n - col < NR ? L->n - col : NR;
            J->q8(J->m, ncols, k4, J->xq, J->ldq, J->xscale, L->q + (size_t)p * NR * k4,
                  L->qsum + col, L->scale + col, L->bias ? L->bias + col : NULL, y + col, ldy);
        }
    }
}

void sg_linear_forward_multi(const sg_linear *const *Ls, int count, const float *x, int m, int ldx,
                             float *const *ys, const int *ldys, sg_pool *pool, sg_arena *scratch)
{
    if (m <= 0 || count <= 0)
        return;
    linear_job J = {.count = count > SG_LINEAR_MULTI ? SG_LINEAR_MULTI : count, .m = m, .x = x,
                    .ldx = ldx};
    const sg_linear *L0 = Ls[0];
    bool mixed = false;
    for (int l = 0; l < J.count; l++) {
        J.L[l] = Ls[l];
        J.y[l] = ys[l];
        J.ldy[l] = ldys[l];
        J.first[l + 1] = J.first[l] + linear_panels(Ls[l]->n);
        mixed |= Ls[l]->k != L0->k || Ls[l]->prec != L0->prec;
    }
    const size_t mark = scratch ? scratch->used : 0;
    void *xq = NULL;
    float *xscale = NULL;
    if (L0->prec == SG_PREC_F32) {
        J.gemm = sg_gemm_f32_get();
    } else {
        const sg_cpu_level level = sg_cpu_level_get();
        q8_quantize_fn quantize;
        q8_kernels(level, &quantize, &J.q8);
        J.ldq = q8_ldq(L0->k) / 2 * q8_act_bytes(level);
        xq = scratch ? sg_arena_alloc(scratch, (size_t)m * J.ldq) : NULL;
        xscale = scratch ? sg_arena_alloc(scratch, (size_t)m * sizeof(float)) : NULL;
        if (xq && xscale && !mixed)
            quantize(x, ldx, m, L0->k, linear_k4(L0->k), xq, J.ldq, xscale);
        J.xq = xq;
        J.xscale = xscale;
    }
    if (mixed || (L0->prec == SG_PREC_Q8 && (!xq || !xscale))) {
        /* layers that cannot share the input, or no room (caller bugs): make it visible in the
         * output rather than crash */
        for (int l = 0; l < J.count; l++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < Ls[l]->n; j++)
                    ys[l][(long)i * ldys[l] + j] = NAN;
        if (scratch)
            scratch->used = mark;
        return;
    }
    const int threads = sg_pool_size(pool);
    /* a few tasks per thread: whole panels, claimed dynamically, so a thread that starts late
     * (woken from sleep, or preempted) does not leave the others waiting at the end */
    int ntasks = threads > 1 ? threads * 4 : 1;
    if (ntasks > J.first[J.count])
        ntasks = J.first[J.count];
    sg_pool_run(pool, linear_task, &J, ntasks);
    if (scratch)
        scratch->used = mark;
}

void sg_linear_forward(const sg_linear *L, const float *x, int m, int ldx, float *y, int ldy,
                       sg_pool *pool, sg_arena *scratch)
{
    sg_linear_forward_multi(&L, 1, x, m, ldx, &y, &ldy, pool, scratch);
}
