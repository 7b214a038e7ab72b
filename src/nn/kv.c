/* Packed attention keys/values for few-row queries (see kv.h). Layout per head, NR = SG_LINEAR_NR,
 * the same for both precisions (elements f32 or int8):
 *   K:   ceil(cap/NR) panels of [hd][NR] (positions across a panel's columns)
 *   V^T: ceil(hd/NR) panels of [cap][NR] (V's rows, NR channels at a time)
 * so that scores and the weighted sum are both "x[m][k] . panel[k][NR]": the f32 GEMM for F32, the
 * W8 panel kernel (f32 x int8, a scale per column: per key for K, per value channel for V) for Q8.
 * Work is split over heads: min(heads, threads) tasks, each taking every ntasks-th head, so each
 * task's scratch is one slice of the arena. */
#include "nn/kv.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ops.h"

#define NR SG_LINEAR_NR

static int panels(int n) { return (n + NR - 1) / NR; }
static size_t round64(size_t b) { return (b + 63) / 64 * 64; }

static void *kv_alloc(size_t bytes, size_t *total)
{
    bytes = round64(bytes ? bytes : 1);
    void *p = aligned_alloc(64, bytes);
    if (p)
        *total += bytes;
    return p;
}

sg_status sg_kv_init(sg_kv *kv, sg_precision prec, int heads, int hd, int cap, sg_error *err)
{
    memset(kv, 0, sizeof *kv);
    if (heads < 1 || hd < 1 || cap < 1 || hd > 65536 || cap > 65536 || heads > 4096)
        return sg_error_set(err, SG_EINVAL, "kv cache: bad sizes (heads %d, head dim %d, %d positions)",
                            heads, hd, cap);
    if (prec != SG_PREC_F32 && prec != SG_PREC_Q8)
        return sg_error_set(err, SG_EINVAL, "kv cache: unknown precision %d", (int)prec);
    kv->prec = prec;
    kv->heads = heads;
    kv->hd = hd;
    kv->cap = cap;
    const size_t el = prec == SG_PREC_F32 ? sizeof(float) : 1;
    kv->kstride = (size_t)panels(cap) * NR * (size_t)hd * el;
    kv->vstride = (size_t)panels(hd) * NR * (size_t)cap * el;
    if (prec == SG_PREC_Q8) {
        kv->kscale = kv_alloc((size_t)heads * cap * sizeof(float), &kv->bytes);
        kv->vscale = kv_alloc((size_t)heads * hd * sizeof(float), &kv->bytes);
    }
    /* untouched until stored: a short window only makes the pages it uses resident */
    kv->k = kv_alloc(kv->kstride * (size_t)heads, &kv->bytes);
    kv->v = kv_alloc(kv->vstride * (size_t)heads, &kv->bytes);
    if (!kv->k || !kv->v ||
        (prec == SG_PREC_Q8 && (!kv->kscale || !kv->vscale))) {
        sg_kv_free(kv);
        return sg_error_set(err, SG_ENOMEM, "kv cache: out of memory");
    }
    return SG_OK;
}

void sg_kv_free(sg_kv *kv)
{
    if (!kv)
        return;
    free(kv->k);
    free(kv->v);
    free(kv->kscale);
    free(kv->vscale);
    memset(kv, 0, sizeof *kv);
}

static int kv_tasks(const sg_kv *kv, int nthreads)
{
    return nthreads < 1 ? 1 : nthreads < kv->heads ? nthreads : kv->heads;
}

/* ---- store ---- */

/* Q8 per task: the quantiser's temporary, NR rows of f32 (V^T rows) and NR rows of int8 */
static size_t store_task_bytes(const sg_kv *kv, int n)
{
    if (kv->prec == SG_PREC_F32)
        return 0;
    const int w = n > kv->hd ? n : kv->hd;
    return round64(sg_q8_pack_tmp_bytes(w)) + round64((size_t)NR * w * sizeof(float)) +
           round64((size_t)NR * w);
}

size_t sg_kv_store_scratch_bytes(const sg_kv *kv, int n, int nthreads)
{
    if (n < 1)
        return 0;
    return store_task_bytes(kv, n) * (size_t)kv_tasks(kv, nthreads) + 64;
}

typedef struct store_job {
    sg_kv *kv;
    const float *k, *v;
    int ldk, ldv, n;
    char *scratch;
    size_t per_task;
} store_job;

static void store_head(const store_job *J, int h, char *scratch)
{
    sg_kv *kv = J->kv;
    const int n = J->n, hd = kv->hd;
    const float *k = J->k + (size_t)h * hd, *v = J->v + (size_t)h * hd;
    if (kv->prec == SG_PREC_F32) {
        float *K = (float *)((char *)kv->k + kv->kstride * h);
        for (int p = 0; p < panels(n); p++) {
            float *panel = K + (size_t)p * NR * hd;
            for (int j = 0; j < NR; j++) {
                const int pos = p * NR + j;
                for (int c = 0; c < hd; c++)
                    panel[(size_t)c * NR + j] = pos < n ? k[(size_t)pos * J->ldk + c] : 0.0f;
            }
        }
        float *V = (float *)((char *)kv->v + kv->vstride * h);
        for (int p = 0; p < panels(hd); p++) {
            float *panel = V + (size_t)p * NR * kv->cap;
            for (int pos = 0; pos < n; pos++)
                for (int j = 0; j < NR; j++) {
                    const int c = p * NR + j;
                    panel[(size_t)pos * NR + j] = c < hd ? v[(size_t)pos * J->ldv + c] : 0.0f;
                }
        }
        return;
    }
    const int w = n > hd ? n : hd;
    void *tmp = scratch;
    float *vt = (float *)(scratch + round64(sg_q8_pack_tmp_bytes(w)));
    int8_t *q = (int8_t *)((char *)vt + round64((size_t)NR * w * sizeof(float)));
    /* keys: int8 per position (row of K), NR positions per panel */
    int8_t *K = (int8_t *)kv->k + kv->kstride * h;
    float *ks = kv->kscale + (size_t)h * kv->cap;
    for (int p = 0; p < panels(n); p++) {
        const int p0 = p * NR, rows = n - p0 < NR ? n - p0 : NR;
        sg_q8_rows(k + (size_t)p0 * J->ldk, J->ldk, rows, hd, q, hd, ks + p0, tmp);
        int8_t *panel = K + (size_t)p * NR * hd;
        for (int c = 0; c < hd; c++)
            for (int j = 0; j < NR; j++)
                panel[(size_t)c * NR + j] = j < rows ? q[(size_t)j * hd + c] : 0;
    }
    /* values: int8 per channel (row of V^T, over the stored positions), NR channels per panel */
    int8_t *V = (int8_t *)kv->v + kv->vstride * h;
    for (int p = 0; p < panels(hd); p++) {
        const int c0 = p * NR, rows = hd - c0 < NR ? hd - c0 : NR;
        for (int pos = 0; pos < n; pos++)
            for (int j = 0; j < rows; j++)
                vt[(size_t)j * n + pos] = v[(size_t)pos * J->ldv + c0 + j];
        sg_q8_rows(vt, n, rows, n, q, n, kv->vscale + (size_t)h * hd + c0, tmp);
        int8_t *panel = V + (size_t)p * NR * kv->cap;
        for (int pos = 0; pos < n; pos++)
            for (int j = 0; j < NR; j++)
                panel[(size_t)pos * NR + j] = j < rows ? q[(size_t)j * n + pos] : 0;
    }
}

static void store_task(void *ctx, int task, int ntasks)
{
    const store_job *J = ctx;
    for (int h = task; h < J->kv->heads; h += ntasks)
        store_head(J, h, J->per_task ? J->scratch + J->per_task * task : NULL);
}

void sg_kv_store(sg_kv *kv, const float *k, int ldk, const float *v, int ldv, int n,
                 sg_pool *pool, sg_arena *scratch)
{
    kv->n = 0;
    if (n < 1 || n > kv->cap)
        return;
    const int ntasks = kv_tasks(kv, sg_pool_size(pool));
    const size_t mark = scratch ? scratch->used : 0;
    store_job J = {kv, k, v, ldk, ldv, n, NULL, store_task_bytes(kv, n)};
    if (J.per_task) {
        J.scratch = scratch ? sg_arena_alloc(scratch, J.per_task * (size_t)ntasks) : NULL;
        if (!J.scratch)
            return;
    }
    sg_pool_run(pool, store_task, &J, ntasks);
    kv->n = n;
    if (scratch)
        scratch->used = mark;
}

/* ---- attend ---- */

static long scores_stride(int n) { return (n + 15) / 16 * 16; }

static size_t attend_task_bytes(int m, int n)
{
    return round64((size_t)m * scores_stride(n > 0 ? n : 1) * sizeof(float));
}

size_t sg_kv_attend_scratch_bytes(const sg_kv *kv, int m, int nthreads)
{
    if (m < 1)
        return 0;
    /* for any number of stored positions up to the capacity */
    return attend_task_bytes(m, kv->cap) * (size_t)kv_tasks(kv, nthreads) + 64;
}

typedef struct attend_job {
    const sg_kv *kv;
    const float *q;
    float *out;
    int m, ldq, ldo;
    float scale;
    char *scratch;
    size_t per_task;
    sg_gemm_f32_fn gemm;
    sg_w8_panel_fn w8;
    float *const *qk; /* NULL, or per head NULL / [m][ldqk] for the scaled scores */
    int ldqk;
} attend_job;

static void attend_head(const attend_job *J, int h, char *scratch)
{
    const sg_kv *kv = J->kv;
    const int m = J->m, n = kv->n, hd = kv->hd;
    const long lds = scores_stride(n);
    float *s = (float *)scratch;
    const float *q = J->q + (size_t)h * hd;
    float *out = J->out + (size_t)h * hd;
    const bool f32 = kv->prec == SG_PREC_F32;
    const char *K = (const char *)kv->k + kv->kstride * h, *V = (const char *)kv->v + kv->vstride * h;
    const size_t el = f32 ? sizeof(float) : 1;
    for (int p = 0; p < panels(n); p++) {
        const int ncols = n - p * NR < NR ? n - p * NR : NR;
        const char *panel = K + (size_t)p * NR * hd * el;
        if (f32)
            J->gemm(m, ncols, hd, q, J->ldq, (const float *)panel, NR, s + p * NR, lds, NULL, 0);
        else
            J->w8(m, ncols, hd, q, J->ldq, (const int8_t *)panel, kv->kscale + (size_t)h * kv->cap + p * NR,
                  s + p * NR, lds);
    }
    for (int i = 0; i < m; i++) {
        float *row = s + (size_t)i * lds;
        for (int j = 0; j < n; j++)
            row[j] *= J->scale;
        if (J->qk && J->qk[h])
            memcpy(J->qk[h] + (size_t)i * J->ldqk, row,
                   (size_t)(n < J->ldqk ? n : J->ldqk) * sizeof(float));
        sg_softmax_rows(row, 1, n);
    }
    for (int p = 0; p < panels(hd); p++) {
        const int ncols = hd - p * NR < NR ? hd - p * NR : NR;
        const char *panel = V + (size_t)p * NR * kv->cap * el;
        if (f32)
            J->gemm(m, ncols, n, s, lds, (const float *)panel, NR, out + p * NR, J->ldo, NULL, 0);
        else
            J->w8(m, ncols, n, s, lds, (const int8_t *)panel, kv->vscale + (size_t)h * hd + p * NR,
                  out + p * NR, J->ldo);
    }
}

static void attend_task(void *ctx, int task, int ntasks)
{
    const attend_job *J = ctx;
    for (int h = task; h < J->kv->heads; h += ntasks)
        attend_head(J, h, J->scratch + J->per_task * task);
}

void sg_kv_attend(const sg_kv *kv, const float *q, int m, int ldq, float scale, float *out,
                  int ldo, sg_pool *pool, sg_arena *scratch)
{
    sg_kv_attend_qk(kv, q, m, ldq, scale, out, ldo, NULL, 0, pool, scratch);
}

void sg_kv_attend_qk(const sg_kv *kv, const float *q, int m, int ldq, float scale, float *out,
                     int ldo, float *const *qk, int ldqk, sg_pool *pool, sg_arena *scratch)
{
    if (m < 1)
        return;
    const int ntasks = kv_tasks(kv, sg_pool_size(pool));
    const size_t mark = scratch ? scratch->used : 0;
    attend_job J = {.kv = kv, .q = q, .out = out, .m = m, .ldq = ldq, .ldo = ldo, .scale = scale,
                    .per_task = attend_task_bytes(m, kv->n), .qk = qk, .ldqk = ldqk};
    J.scratch = kv->n > 0 && scratch ? sg_arena_alloc(scratch, J.per_task * (size_t)ntasks) : NULL;
    if (!J.scratch) {
        for (int i = 0; i < m; i++)
            for (int c = 0; c < kv->heads * kv->hd; c++)
                out[(size_t)i * ldo + c] = NAN;
        return;
    }
    if (kv->prec == SG_PREC_F32)
        J.gemm = sg_gemm_f32_get();
    else
        J.w8 = sg_w8_panel_get();
    sg_pool_run(pool, attend_task, &J, ntasks);
    scratch->used = mark;
}
