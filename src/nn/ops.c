/* Transformer element-wise and row-wise operations in FP32: the scalar references, the dispatch
 * to the SIMD versions (ops_avx2.c, ops_avx512.c, ops_neon.c) by sg_cpu_level_get(), and multi-head attention,
 * which is built from the f32 GEMM of nn/linear and the per-level softmax. */
#include "nn/ops.h"

#include <math.h>
#include <stddef.h>

#include "nn/cpu.h"
#include "nn/linear.h"

/* ---- scalar references ---- */

/* Two passes with double sums: mean, then the variance of the centred values (what PyTorch's
 * biased var computes), so rows with a large mean lose nothing. */
void sg_layernorm_row_stats(const float *xr, int dim, float eps, float *meanf, float *rstd)
{
    double sum = 0.0;
    for (int i = 0; i < dim; i++)
        sum += xr[i];
    const double mean = sum / dim;
    double ss = 0.0;
    for (int i = 0; i < dim; i++) {
        const double d = xr[i] - mean;
        ss += d * d;
    }
    *meanf = (float)mean;
    *rstd = (float)(1.0 / sqrt(ss / dim + eps));
}

void sg_layernorm_row_apply(const float *xr, float *yr, int from, int dim, float meanf, float rstd,
                            const float *g, const float *b)
{
    for (int i = from; i < dim; i++) {
        const float v = (xr[i] - meanf) * rstd;
        yr[i] = v * (g ? g[i] : 1.0f) + (b ? b[i] : 0.0f);
    }
}

static void layernorm_scalar(const float *x, float *y, int rows, int dim, const float *g,
                             const float *b, float eps)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (long)r * dim;
        float meanf, rstd;
        sg_layernorm_row_stats(xr, dim, eps, &meanf, &rstd);
        sg_layernorm_row_apply(xr, y + (long)r * dim, 0, dim, meanf, rstd, g, b);
    }
}

/* A row that is all -inf (or NaN) has no distribution: it becomes all zeros. */
static void softmax_scalar(float *x, int n)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    if (!(mx > -INFINITY)) {
        for (int i = 0; i < n; i++)
            x[i] = 0.0f;
        return;
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

static void gelu_erf_scalar(float *x, long n)
{
    for (long i = 0; i < n; i++)
        x[i] = x[i] * 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
}

static void quick_gelu_scalar(float *x, long n)
{
    for (long i = 0; i < n; i++)
        x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

static void add_scalar(float *x, const float *y, long n)
{
    for (long i = 0; i < n; i++)
        x[i] += y[i];
}

static double logsumexp_scalar(const float *x, long n)
{
    float mx = -INFINITY;
    for (long i = 0; i < n; i++) {
        if (isnan(x[i]))
            return NAN;
        mx = x[i] > mx ? x[i] : mx;
    }
    if (!(mx > -INFINITY))
        return -INFINITY;
    if (isinf(mx))
        return INFINITY;
    double s = 0.0;
    for (long i = 0; i < n; i++)
        s += exp((double)(x[i] - mx));
    return (double)mx + log(s);
}

const sg_ops_kernels sg_ops_scalar = {layernorm_scalar, softmax_scalar, gelu_erf_scalar,
                                      quick_gelu_scalar, add_scalar, logsumexp_scalar};

/* ---- dispatch ---- */

static const sg_ops_kernels *ops_get(void)
{
#ifdef SG_X86
    switch (sg_cpu_level_get()) {
    case SG_CPU_AVX512: return &sg_ops_avx512;
    case SG_CPU_AVX2: return &sg_ops_avx2;
    case SG_CPU_SCALAR: break;
    }
#elif defined SG_ARM
    if (sg_cpu_level_get() >= SG_CPU_NEON)
        return &sg_ops_neon;
#endif
    return &sg_ops_scalar;
}

void sg_layernorm(const float *x, float *y, int rows, int dim, const float *g, const float *b,
                  float eps)
{
    if (rows > 0 && dim > 0)
        ops_get()->layernorm(x, y, rows, dim, g, b, eps);
}

void sg_softmax_rows(float *x, int rows, int cols)
{
    if (cols <= 0)
        return;
    void (*softmax)(float *, int) = ops_get()->softmax;
    for (int r = 0; r < rows; r++)
        softmax(x + (long)r * cols, cols);
}

void sg_gelu_erf(float *x, long n)
{
    if (n > 0)
        ops_get()->gelu_erf(x, n);
}

void sg_quick_gelu(float *x, long n)
{
    if (n > 0)
        ops_get()->quick_gelu(x, n);
}

void sg_add(float *x, const float *y, long n)
{
    if (n > 0)
        ops_get()->add(x, y, n);
}

double sg_logsumexp(const float *x, long n)
{
    return n > 0 ? ops_get()->logsumexp(x, n) : -INFINITY;
}

/* ---- attention ---- */

/* Query rows per block: the scores of one block stay in L2 while they are used twice. */
#define ATTN_ROWS 64

static long attn_seq_pad(int seq) { return (seq + 15) / 16 * 16; }

static int attn_tasks(int heads, int nthreads) { return nthreads < heads ? nthreads : heads; }

static size_t attn_task_floats(int seq, int hd)
{
    const int rows = seq < ATTN_ROWS ? seq : ATTN_ROWS;
    return (size_t)(rows + hd) * (size_t)attn_seq_pad(seq);
}

unsigned long sg_attention_scratch_bytes(int seq, int d, int heads, int nthreads)
{
    if (seq <= 0 || d <= 0 || heads <= 0 || d % heads)
        return 0;
    if (nthreads < 1)
        nthreads = 1;
    const size_t per = (attn_task_floats(seq, d / heads) * sizeof(float) + 63) / 64 * 64;
    return (unsigned long)(per * (size_t)attn_tasks(heads, nthreads) + 64);
}

typedef struct attn_job {
    const float *qkv;
    float *out;
    int seq, d, heads, hd;
    bool causal;
    float *scratch;
    size_t task_floats;
    sg_gemm_f32_fn gemm;
    void (*softmax)(float *, int);
} attn_job;

static void attn_head(const attn_job *J, int h, float *kt, float *s)
{
    const int seq = J->seq, hd = J->hd, d = J->d;
    const long ld = 3L * d, lds = attn_seq_pad(seq);
    const float *q = J->qkv + (long)h * hd, *k = q + d, *v = q + 2 * d;
    const float scale = 1.0f / sqrtf((float)hd);
    /* K^T, pre-scaled, so that scores = Q . K^T is a plain GEMM */
    for (int j = 0; j < seq; j++)
        for (int c = 0; c < hd; c++)
            kt[(long)c * lds + j] = k[j * ld + c] * scale;
    for (int r0 = 0; r0 < seq; r0 += ATTN_ROWS) {
        const int rows = seq - r0 < ATTN_ROWS ? seq - r0 : ATTN_ROWS;
        /* causal rows of this block see keys [0, r0 + rows) at most */
        const int keys = J->causal ? r0 + rows : seq;
        J->gemm(rows, keys, hd, q + r0 * ld, ld, kt, lds, s, lds, NULL, 0);
        for (int i = 0; i < rows; i++) {
            float *srow = s + (long)i * lds;
            const int valid = J->causal ? r0 + i + 1 : keys;
            J->softmax(srow, valid);
            for (int j = valid; j < keys; j++)
                srow[j] = 0.0f;
        }
        J->gemm(rows, hd, keys, s, lds, v, ld, J->out + (long)r0 * d + (long)h * hd, d, NULL, 0);
    }
}

static void attn_task(void *ctx, int task, int ntasks)
{
    const attn_job *J = ctx;
    float *kt = J->scratch + J->task_floats * (size_t)task;
    float *s = kt + (size_t)J->hd * (size_t)attn_seq_pad(J->seq);
    for (int h = task; h < J->heads; h += ntasks)
        attn_head(J, h, kt, s);
}

void sg_attention(const float *qkv, float *out, int seq, int d, int heads, bool causal,
                  sg_pool *pool, sg_arena *scratch)
{
    if (seq <= 0 || d <= 0 || heads <= 0 || d % heads)
        return;
    const int ntasks = attn_tasks(heads, sg_pool_size(pool));
    const size_t mark = scratch ? scratch->used : 0;
    const size_t per = (attn_task_floats(seq, d / heads) * sizeof(float) + 63) / 64 * 64;
    float *buf = scratch ? sg_arena_alloc(scratch, per * (size_t)ntasks) : NULL;
    if (!buf) {
        for (long i = 0; i < (long)seq * d; i++)
            out[i] = NAN;
        return;
    }
    attn_job J = {.qkv = qkv, .out = out, .seq = seq, .d = d, .heads = heads, .hd = d / heads,
                  .causal = causal, .scratch = buf, .task_floats = per / sizeof(float),
                  .gemm = sg_gemm_f32_get(), .softmax = ops_get()->softmax};
    sg_pool_run(pool, attn_task, &J, ntasks);
    scratch->used = mark;
}
