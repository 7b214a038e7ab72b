/* Tests for nn/: CPU level parsing and selection, the arena, the thread pool (every task exactly
 * once, any thread count, concurrent and nested callers), linear layers at every CPU level against
 * the scalar level and a double-precision reference (F32) or bit-exactly (Q8) on shapes with odd
 * sizes, and the transformer ops and attention against naive references; the layer builders
 * (from rows on demand, several layers in one region), Q8 row packing, the packed key/value cache
 * for few-row queries (nn/kv.h) and logsumexp at every level against the scalar level and
 * double-precision references; the spike layer (nn/spike.h) against the dense layer and at every
 * level against the scalar level, and the row kernels (nn/vec.h) per level against the scalar
 * ones, on fixed and random shapes with odd sizes. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nn/arena.h"
#include "nn/cpu.h"
#include "nn/kv.h"
#include "nn/linear.h"
#include "nn/ops.h"
#include "nn/pool.h"
#include "nn/resample.h"
#include "nn/spike.h"
#include "nn/vec.h"

/* ---- helpers ---- */

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t rng_next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double rng_uniform(void) { return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0; }

static float rng_gauss(void)
{
    return (float)(sqrt(-2.0 * log(rng_uniform())) * cos(6.283185307179586 * rng_uniform()));
}

static float *gauss_array(long n, float scale)
{
    float *a = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++)
        a[i] = scale * rng_gauss();
    return a;
}

static int level_count(void) { return (int)sg_cpu_supported() + 1; }

/* ---- cpu ---- */

static void test_cpu(void)
{
    sg_cpu_level l = SG_CPU_AVX512;
    CHECK(sg_cpu_parse("scalar", &l) == 0 && l == SG_CPU_SCALAR);
#if defined SG_ARM
    CHECK(sg_cpu_parse("NEON", &l) == 0 && l == SG_CPU_NEON);
    CHECK(sg_cpu_parse("dotprod", &l) == 0 && l == SG_CPU_DOTPROD);
    CHECK(sg_cpu_parse("avx2", &l) == -1); /* another architecture's level */
    CHECK(strcmp(sg_cpu_level_name(SG_CPU_NEON), "neon") == 0);
    CHECK(strcmp(sg_cpu_level_name(SG_CPU_DOTPROD), "dotprod") == 0);
#else
    CHECK(sg_cpu_parse("AVX2", &l) == 0 && l == SG_CPU_AVX2);
    CHECK(sg_cpu_parse("avx512", &l) == 0 && l == SG_CPU_AVX512);
    CHECK(sg_cpu_parse("neon", &l) == -1);
    CHECK(strcmp(sg_cpu_level_name(SG_CPU_AVX2), "avx2") == 0);
#endif
    CHECK(sg_cpu_parse("avx1024", &l) == -1);
    CHECK(sg_cpu_parse("", &l) == -1);
    CHECK(sg_cpu_parse(NULL, &l) == -1);

    /* the level in effect at start is min(supported, SG_CPU) */
    const sg_cpu_level sup = sg_cpu_supported();
    sg_cpu_level want = sup, env;
    if (sg_cpu_parse(getenv("SG_CPU"), &env) == 0 && env < sup)
        want = env;
    CHECK_EQ_INT(sg_cpu_level_get(), want);
    printf("test_nn: cpu supports %s, SG_CPU=%s -> %s\n", sg_cpu_level_name(sup),
           getenv("SG_CPU") ? getenv("SG_CPU") : "(unset)", sg_cpu_level_name(want));
#if !defined SG_X86 && !defined SG_ARM
    CHECK_EQ_INT(sup, SG_CPU_SCALAR);
#endif
#if defined SG_ARM && defined __aarch64__
    CHECK(sup >= SG_CPU_NEON); /* Advanced SIMD is part of ARMv8-A */
#endif
    /* scripts/test-arm.sh says which level the emulated CPU must be detected as */
    sg_cpu_level expect;
    if (sg_cpu_parse(getenv("SG_TEST_CPU_EXPECT"), &expect) == 0)
        CHECK_MSG(sup == expect, "cpu detected as %s, SG_TEST_CPU_EXPECT=%s", sg_cpu_level_name(sup),
                  getenv("SG_TEST_CPU_EXPECT"));
    /* set clamps to what the machine has */
    CHECK_EQ_INT(sg_cpu_level_set(SG_CPU_AVX512), sup);
    CHECK_EQ_INT(sg_cpu_level_get(), sup);
    CHECK_EQ_INT(sg_cpu_level_set(SG_CPU_SCALAR), SG_CPU_SCALAR);
    CHECK_EQ_INT(sg_cpu_level_get(), SG_CPU_SCALAR);
    sg_cpu_level_set(want);
}

/* ---- arena ---- */

static void test_arena(void)
{
    sg_arena a;
    CHECK_EQ_INT(sg_arena_init(&a, 1000), 0);
    unsigned char *p = sg_arena_alloc(&a, 10), *q = sg_arena_alloc(&a, 100);
    CHECK(p && q && ((uintptr_t)p % 64) == 0 && ((uintptr_t)q % 64) == 0 && q >= p + 10);
    CHECK(sg_arena_alloc(&a, 2000) == NULL);
    CHECK(sg_arena_alloc(&a, (size_t)-1) == NULL);
    void *r = sg_arena_alloc(&a, 1000 - 192);
    CHECK(r != NULL);
    CHECK(sg_arena_alloc(&a, 1) == NULL);
    CHECK(a.high_water == 1000);
    sg_arena_reset(&a);
    CHECK(sg_arena_alloc(&a, 1000) == a.base);
    CHECK_EQ_INT(sg_arena_reserve(&a, 5000), 0);
    CHECK(a.cap >= 5000 && a.used == 0);
    CHECK(sg_arena_alloc(&a, 5000) != NULL);
    sg_arena_free(&a);
    CHECK_EQ_INT(sg_arena_init(&a, 0), 0);
    CHECK(sg_arena_alloc(&a, 1) == NULL);
    CHECK_EQ_INT(sg_arena_reserve(&a, 64), 0);
    CHECK(sg_arena_alloc(&a, 64) != NULL);
    sg_arena_free(&a);
}

/* ---- pool ---- */

typedef struct count_ctx {
    atomic_int *hits;
    int ntasks;
    atomic_int bad;
} count_ctx;

static void count_task(void *ctx, int task, int ntasks)
{
    count_ctx *c = ctx;
    if (task < 0 || task >= c->ntasks || ntasks != c->ntasks)
        atomic_fetch_add(&c->bad, 1);
    else
        atomic_fetch_add(&c->hits[task], 1);
}

/* Runs ntasks tasks on p and checks each ran exactly once. */
static int pool_exactly_once(sg_pool *p, int ntasks)
{
    count_ctx c = {.hits = calloc((size_t)ntasks, sizeof(atomic_int)), .ntasks = ntasks};
    atomic_init(&c.bad, 0);
    sg_pool_run(p, count_task, &c, ntasks);
    int ok = atomic_load(&c.bad) == 0;
    for (int i = 0; i < ntasks; i++)
        ok &= atomic_load(&c.hits[i]) == 1;
    free(c.hits);
    return ok;
}

typedef struct nested_ctx {
    sg_pool *p;
    atomic_int inner_ok;
} nested_ctx;

static void nested_task(void *ctx, int task, int ntasks)
{
    (void)task;
    (void)ntasks;
    nested_ctx *n = ctx;
    if (pool_exactly_once(n->p, 5))
        atomic_fetch_add(&n->inner_ok, 1);
}

typedef struct caller_arg {
    sg_pool *p;
    int ok;
} caller_arg;

static void *concurrent_caller(void *arg)
{
    caller_arg *a = arg;
    a->ok = 1;
    for (int i = 0; i < 300; i++)
        a->ok &= pool_exactly_once(a->p, 1 + i % 17);
    return NULL;
}

static void test_pool(void)
{
    CHECK(pool_exactly_once(NULL, 7));
    const int sizes[] = {1, 2, 4};
    for (int s = 0; s < 3; s++) {
        sg_pool *p = sg_pool_new(sizes[s]);
        CHECK(p != NULL);
        if (!p)
            continue;
        CHECK_EQ_INT(sg_pool_size(p), sizes[s]);
        const int counts[] = {1, 2, 3, 7, 64, 1000};
        for (int i = 0; i < 6; i++)
            CHECK_MSG(pool_exactly_once(p, counts[i]), "threads %d tasks %d", sizes[s], counts[i]);
        /* back-to-back regions (workers still spinning) and after they fell asleep */
        int ok = 1;
        for (int i = 0; i < 2000; i++)
            ok &= pool_exactly_once(p, 1 + i % 5);
        CHECK_MSG(ok, "threads %d: back-to-back regions", sizes[s]);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
        CHECK(pool_exactly_once(p, 9));
        /* a task that runs a region on the same pool runs it serially instead of deadlocking */
        nested_ctx n = {.p = p};
        atomic_init(&n.inner_ok, 0);
        sg_pool_run(p, nested_task, &n, 4);
        CHECK_EQ_INT(atomic_load(&n.inner_ok), 4);
        /* several threads sharing the pool */
        pthread_t th[4];
        caller_arg args[4];
        for (int i = 0; i < 4; i++) {
            args[i].p = p;
            pthread_create(&th[i], NULL, concurrent_caller, &args[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            CHECK_MSG(args[i].ok, "threads %d: concurrent caller %d", sizes[s], i);
        }
        if (sizes[s] == 2) /* more tasks than one round of the ticket holds */
            CHECK(pool_exactly_once(p, (1 << 20) + 5));
        sg_pool_free(p);
    }
    sg_pool *p = sg_pool_new(0); /* SG_THREADS or the core count */
    CHECK(p != NULL && sg_pool_size(p) >= 1);
    sg_pool_free(p);
    sg_pool_free(NULL);
}

/* ---- linear ---- */

/* y = x W^T + b in double, and the sum of |x||w| per output (the scale of rounding errors) */
static void linear_reference(const float *x, const float *w, const float *b, int m, int n, int k,
                             double *y, double *mag)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = b ? b[j] : 0.0, a = 0.0;
            for (int kk = 0; kk < k; kk++) {
                acc += (double)x[(long)i * k + kk] * w[(long)j * k + kk];
                a += fabs((double)x[(long)i * k + kk] * w[(long)j * k + kk]);
            }
            y[(long)i * n + j] = acc;
            mag[(long)i * n + j] = a;
        }
}

/* The Q8 function written out independently: quantise, integer dot, scale. */
static void q8_quantize_row(const float *x, int k, int8_t *q, float *scale)
{
    float mx = 0.0f;
    for (int i = 0; i < k; i++)
        mx = fabsf(x[i]) > mx ? fabsf(x[i]) : mx;
    const float inv = mx > 0.0f ? 127.0f / mx : 0.0f;
    for (int i = 0; i < k; i++) {
        float v = x[i] * inv;
        v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
        q[i] = (int8_t)nearbyintf(v);
    }
    *scale = mx / 127.0f;
}

static void q8_reference(const float *x, const float *w, const float *b, int m, int n, int k,
                         float *y)
{
    int8_t *xq = malloc((size_t)k), *wq = malloc((size_t)n * k);
    float *ws = malloc(sizeof(float) * (size_t)n), xs;
    for (int j = 0; j < n; j++)
        q8_quantize_row(w + (long)j * k, k, wq + (long)j * k, &ws[j]);
    for (int i = 0; i < m; i++) {
        q8_quantize_row(x + (long)i * k, k, xq, &xs);
        for (int j = 0; j < n; j++) {
            int32_t acc = 0;
            for (int kk = 0; kk < k; kk++)
                acc += xq[kk] * wq[(long)j * k + kk];
            const float s = xs * ws[j];
            const float v = (float)acc * s;
            y[(long)i * n + j] = b ? v + b[j] : v;
        }
    }
    free(xq);
    free(wq);
    free(ws);
}

/* Runs one layer at every level on x with row strides ldx/ldy (>= k/n) and compares. */
static void check_linear_shape(int m, int n, int k, sg_pool *pool, sg_arena *arena)
{
    const int ldx = k + (int)(rng_next() % 3), ldy = n + (int)(rng_next() % 3);
    float *w = gauss_array((long)n * k, 0.05f), *b = gauss_array(n, 0.1f);
    float *xd = gauss_array((long)m * k, 1.0f), *x = gauss_array((long)m * ldx, 1.0f);
    for (int i = 0; i < m; i++)
        memcpy(x + (long)i * ldx, xd + (long)i * k, sizeof(float) * (size_t)k);
    const int use_bias = (rng_next() & 3) != 0;
    double *ref = malloc(sizeof(double) * (size_t)m * n);
    double *mag = malloc(sizeof(double) * (size_t)m * n);
    linear_reference(xd, w, use_bias ? b : NULL, m, n, k, ref, mag);
    float *qref = malloc(sizeof(float) * (size_t)m * n);
    q8_reference(xd, w, use_bias ? b : NULL, m, n, k, qref);
    sg_linear Lf, Lq;
    sg_error err;
    CHECK(sg_linear_init(&Lf, w, use_bias ? b : NULL, n, k, SG_PREC_F32, &err) == SG_OK);
    CHECK(sg_linear_init(&Lq, w, use_bias ? b : NULL, n, k, SG_PREC_Q8, &err) == SG_OK);
    CHECK(sg_arena_reserve(arena, sg_linear_scratch_bytes(&Lq, m)) == 0);
    const long ny = (long)m * ldy;
    float *yf[3], *yq[3];
    for (int lv = 0; lv < level_count(); lv++) {
        sg_cpu_level_set((sg_cpu_level)lv);
        yf[lv] = malloc(sizeof(float) * (size_t)ny);
        yq[lv] = malloc(sizeof(float) * (size_t)ny);
        for (long i = 0; i < ny; i++)
            yf[lv][i] = yq[lv][i] = -12345.0f; /* padding must stay untouched */
        sg_linear_forward(&Lf, x, m, ldx, yf[lv], ldy, pool, arena);
        sg_linear_forward(&Lq, x, m, ldx, yq[lv], ldy, pool, arena);
        CHECK(arena->used == 0);
        int bad_ref = 0, bad_scalar = 0, bad_q8 = 0, bad_pad = 0;
        double worst = 0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < ldy; j++) {
                const float f = yf[lv][(long)i * ldy + j], q = yq[lv][(long)i * ldy + j];
                if (j >= n) {
                    bad_pad += f != -12345.0f || q != -12345.0f;
                    continue;
                }
                const double r = ref[(long)i * n + j], tol = 1e-5 * mag[(long)i * n + j] + 1e-6;
                if (fabs(f - r) > tol + 1e-4 * fabs(r))
                    bad_ref++;
                if (fabs(f - r) > worst)
                    worst = fabs(f - r);
                const float s = yf[0][(long)i * ldy + j];
                if (fabs((double)f - s) > 1e-4 * fabs(s) + 2e-5 * mag[(long)i * n + j] + 1e-6)
                    bad_scalar++;
                /* Q8: the same integers and the same float epilogue at every level */
                if (q != qref[(long)i * n + j])
                    bad_q8++;
            }
        }
        CHECK_MSG(bad_ref == 0, "f32 %s m=%d n=%d k=%d: %d off the reference (worst %g)",
                  sg_cpu_level_name((sg_cpu_level)lv), m, n, k, bad_ref, worst);
        CHECK_MSG(bad_scalar == 0, "f32 %s m=%d n=%d k=%d: %d off scalar",
                  sg_cpu_level_name((sg_cpu_level)lv), m, n, k, bad_scalar);
        CHECK_MSG(bad_q8 == 0, "q8 %s m=%d n=%d k=%d: %d not bit-exact",
                  sg_cpu_level_name((sg_cpu_level)lv), m, n, k, bad_q8);
        CHECK_MSG(bad_pad == 0, "%s m=%d n=%d k=%d: wrote past n",
                  sg_cpu_level_name((sg_cpu_level)lv), m, n, k);
    }
    /* Q8 close to F32: cosine over the whole output (k >= 31: enough terms to average out) */
    if (k >= 31 && (long)m * n >= 16) {
        float *yc = malloc(sizeof(float) * (size_t)m * n);
        for (int i = 0; i < m; i++)
            memcpy(yc + (long)i * n, yq[0] + (long)i * ldy, sizeof(float) * (size_t)n);
        const double c = check_cosine_d(yc, ref, (long)m * n);
        CHECK_MSG(c >= 0.999, "q8 m=%d n=%d k=%d: cosine %.6f to f32", m, n, k, c);
        free(yc);
    }
    for (int lv = 0; lv < level_count(); lv++) {
        free(yf[lv]);
        free(yq[lv]);
    }
    sg_linear_free(&Lf);
    sg_linear_free(&Lq);
    free(w);
    free(b);
    free(x);
    free(xd);
    free(ref);
    free(mag);
    free(qref);
}

static void test_linear(void)
{
    const int ms[] = {1, 2, 3, 7, 50, 77}, ns[] = {1, 3, 17, 64, 100, 768},
              ks[] = {1, 5, 31, 64, 67, 768};
    sg_pool *pool = sg_pool_new(2);
    sg_arena arena;
    sg_arena_init(&arena, 0);
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++)
            for (int c = 0; c < 6; c++)
                check_linear_shape(ms[a], ns[b], ks[c], (a + b + c) % 2 ? pool : NULL, &arena);
    /* more panels than tasks, a 12-row tile plus leftovers, k not a multiple of 4 */
    check_linear_shape(13, 200, 3, pool, &arena);
    check_linear_shape(25, 33, 9, pool, &arena);
    /* k split into blocks (F32) */
    check_linear_shape(3, 40, 1700, pool, &arena);
    check_linear_shape(50, 35, 2305, NULL, &arena);

    /* building from saved int8 rows gives the same layer */
    const int n = 37, k = 45, m = 5;
    float *w = gauss_array((long)n * k, 0.05f), *x = gauss_array((long)m * k, 1.0f);
    int8_t *q = malloc((size_t)n * k);
    float *s = malloc(sizeof(float) * n), *y1 = malloc(sizeof(float) * m * n),
          *y2 = malloc(sizeof(float) * m * n);
    for (int j = 0; j < n; j++)
        q8_quantize_row(w + (long)j * k, k, q + (long)j * k, &s[j]);
    sg_linear A, B;
    sg_error err;
    CHECK(sg_linear_init(&A, w, NULL, n, k, SG_PREC_Q8, &err) == SG_OK);
    CHECK(sg_linear_init_q8(&B, q, s, NULL, n, k, &err) == SG_OK);
    CHECK(A.bytes > 0 && B.bytes > 0);
    sg_arena_reserve(&arena, sg_linear_scratch_bytes(&A, m));
    sg_linear_forward(&A, x, m, k, y1, n, pool, &arena);
    sg_linear_forward(&B, x, m, k, y2, n, pool, &arena);
    CHECK(memcmp(y1, y2, sizeof(float) * m * n) == 0);
    /* no scratch: NaN, no crash */
    sg_arena tiny;
    sg_arena_init(&tiny, 16);
    sg_linear_forward(&A, x, m, k, y1, n, pool, &tiny);
    CHECK(isnan(y1[0]) && isnan(y1[m * n - 1]));
    sg_linear_forward(&A, x, m, k, y1, n, pool, NULL);
    CHECK(isnan(y1[0]));
    sg_arena_free(&tiny);
    sg_linear_free(&A);
    sg_linear_free(&B);
    /* bad arguments are errors, not crashes */
    CHECK(sg_linear_init(&A, w, NULL, 0, k, SG_PREC_F32, &err) == SG_EINVAL);
    CHECK(sg_linear_init(&A, NULL, NULL, n, k, SG_PREC_F32, &err) == SG_EINVAL);
    CHECK(sg_linear_init(&A, w, NULL, n, k, (sg_precision)7, &err) == SG_EINVAL);
    CHECK(sg_linear_init_q8(&A, q, s, NULL, n, 100000, &err) == SG_EUNSUPPORTED);
    /* all-zero and constant rows quantise without NaN */
    float zero_w[6] = {0, 0, 0, 1, 1, 1}, zx[3] = {0, 0, 0}, zy[2];
    CHECK(sg_linear_init(&A, zero_w, NULL, 2, 3, SG_PREC_Q8, &err) == SG_OK);
    for (int lv = 0; lv < level_count(); lv++) {
        sg_cpu_level_set((sg_cpu_level)lv);
        sg_linear_forward(&A, zx, 1, 3, zy, 2, NULL, &arena);
        CHECK(zy[0] == 0.0f && zy[1] == 0.0f);
    }
    sg_linear_free(&A);
    free(w);
    free(x);
    free(q);
    free(s);
    free(y1);
    free(y2);
    sg_arena_free(&arena);
    sg_pool_free(pool);
}

/* ---- ops ---- */

static double gelu_ref(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

/* Element-wise and row-wise ops at level lv against the scalar level on the same input: counts
 * outputs differing by more than rel * (1 + |scalar|). */
typedef enum { OP_LAYERNORM, OP_SOFTMAX, OP_GELU, OP_QUICK_GELU } op_kind;

static void run_op(op_kind op, float *y, int rows, int dim, const float *g, const float *b)
{
    switch (op) {
    case OP_LAYERNORM: sg_layernorm(y, y, rows, dim, g, b, 1e-5f); break;
    case OP_SOFTMAX: sg_softmax_rows(y, rows, dim); break;
    case OP_GELU: sg_gelu_erf(y, (long)rows * dim); break;
    case OP_QUICK_GELU: sg_quick_gelu(y, (long)rows * dim); break;
    }
}

static int op_vs_scalar(op_kind op, sg_cpu_level lv, const float *x, int rows, int dim,
                        const float *g, const float *b, double rel)
{
    const long n = (long)rows * dim;
    float *ys = malloc(sizeof(float) * (size_t)n), *yl = malloc(sizeof(float) * (size_t)n);
    memcpy(ys, x, sizeof(float) * (size_t)n);
    memcpy(yl, x, sizeof(float) * (size_t)n);
    sg_cpu_level_set(SG_CPU_SCALAR);
    run_op(op, ys, rows, dim, g, b);
    sg_cpu_level_set(lv);
    run_op(op, yl, rows, dim, g, b);
    int bad = 0;
    for (long i = 0; i < n; i++)
        bad += !(fabs(yl[i] - ys[i]) <= rel * (1 + fabs(ys[i])));
    free(ys);
    free(yl);
    return bad;
}

static void test_ops(void)
{
    const int dims[] = {1, 7, 16, 33, 768, 1500};
    for (int lv = 0; lv < level_count(); lv++) {
        sg_cpu_level_set((sg_cpu_level)lv);
        const char *name = sg_cpu_level_name((sg_cpu_level)lv);
        for (int di = 0; di < 6; di++) {
            const int dim = dims[di], rows = 3;
            float *x = gauss_array((long)rows * dim, 2.0f), *g = gauss_array(dim, 1.0f),
                  *b = gauss_array(dim, 1.0f), *y = malloc(sizeof(float) * rows * dim);
            for (int i = 0; i < dim; i++)
                x[i] += 100.0f; /* a large mean must not cost precision */
            const sg_cpu_level L = (sg_cpu_level)lv;
            CHECK_MSG(op_vs_scalar(OP_LAYERNORM, L, x, rows, dim, g, b, 1e-6) == 0,
                      "layernorm %s dim %d differs from scalar", name, dim);
            CHECK_MSG(op_vs_scalar(OP_SOFTMAX, L, x, rows, dim, g, b, 1e-6) == 0,
                      "softmax %s dim %d differs from scalar", name, dim);
            CHECK_MSG(op_vs_scalar(OP_GELU, L, x, rows, dim, g, b, 1e-6) == 0,
                      "gelu %s dim %d differs from scalar", name, dim);
            CHECK_MSG(op_vs_scalar(OP_QUICK_GELU, L, x, rows, dim, g, b, 1e-6) == 0,
                      "quick_gelu %s dim %d differs from scalar", name, dim);
            sg_layernorm(x, y, rows, dim, g, b, 1e-5f);
            int bad = 0;
            for (int r = 0; r < rows; r++) {
                double mean = 0, var = 0;
                for (int i = 0; i < dim; i++)
                    mean += x[r * dim + i];
                mean /= dim;
                for (int i = 0; i < dim; i++)
                    var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
                var /= dim;
                const double rstd = 1.0 / sqrt(var + 1e-5);
                for (int i = 0; i < dim; i++) {
                    const double want = (x[r * dim + i] - mean) * rstd * g[i] + b[i];
                    /* x - mean in float (as PyTorch does it) costs about an ulp of x */
                    const double tol = 2e-6 * (1 + fabs(want)) +
                                       2.4e-7 * fabs(x[r * dim + i]) * rstd * fabs(g[i]);
                    bad += fabs(y[r * dim + i] - want) > tol;
                }
            }
            CHECK_MSG(bad == 0, "layernorm %s dim %d: %d off", name, dim, bad);
            /* in place, no affine */
            memcpy(y, x, sizeof(float) * rows * dim);
            sg_layernorm(y, y, rows, dim, NULL, NULL, 1e-5f);
            double s = 0;
            for (int i = 0; i < dim; i++)
                s += y[i];
            CHECK_MSG(fabs(s / dim) < 1e-4, "layernorm %s dim %d in place: mean %g", name, dim,
                      s / dim);

            /* softmax */
            float *in = malloc(sizeof(float) * rows * dim);
            for (int i = 0; i < rows * dim; i++)
                y[i] = in[i] = (x[i] - (i < dim ? 100.0f : 0.0f)) * 3.0f;
            sg_softmax_rows(y, rows, dim);
            bad = 0;
            for (int r = 0; r < rows; r++) {
                double mx = -INFINITY, sum = 0;
                for (int i = 0; i < dim; i++)
                    mx = fmax(mx, in[r * dim + i]);
                for (int i = 0; i < dim; i++)
                    sum += exp(in[r * dim + i] - mx);
                for (int i = 0; i < dim; i++) {
                    const double want = exp(in[r * dim + i] - mx) / sum;
                    /* x - max rounds in float: an ulp of the difference, as in PyTorch */
                    const double tol = want * (2e-6 + 1.2e-7 * fabs(in[r * dim + i] - mx)) + 1e-30;
                    bad += fabs(y[r * dim + i] - want) > tol;
                }
            }
            CHECK_MSG(bad == 0, "softmax %s dim %d: %d off", name, dim, bad);
            free(in);
            free(x);
            free(g);
            free(b);
            free(y);
        }
        /* softmax with -inf entries and an all -inf row */
        float row[5] = {-INFINITY, 0.0f, -INFINITY, 0.0f, -INFINITY};
        float dead[3] = {-INFINITY, -INFINITY, -INFINITY};
        sg_softmax_rows(row, 1, 5);
        CHECK(row[0] == 0.0f && row[2] == 0.0f && row[4] == 0.0f);
        CHECK(fabsf(row[1] - 0.5f) < 1e-7f && fabsf(row[3] - 0.5f) < 1e-7f);
        sg_softmax_rows(dead, 1, 3);
        CHECK(dead[0] == 0.0f && dead[1] == 0.0f && dead[2] == 0.0f);

        /* GELU (erf), quick_gelu, add on a sweep plus random values, odd length */
        const long n = 4003;
        float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
        float *z = malloc(sizeof(float) * n);
        for (long i = 0; i < n; i++)
            x[i] = i < 2000 ? -10.0f + 20.0f * (float)i / 2000.0f : 3.0f * rng_gauss();
        x[0] = 0.0f;
        x[1] = -0.0f;
        x[2] = 1e-30f;
        x[3] = 0.875f;
        x[4] = -0.875f;
        x[5] = 3.9f;
        x[6] = -30.0f;
        x[7] = 30.0f;
        memcpy(y, x, sizeof(float) * n);
        sg_gelu_erf(y, n);
        int bad = 0;
        double worst = 0;
        for (long i = 0; i < n; i++) {
            const double want = gelu_ref(x[i]), e = fabs(y[i] - want);
            worst = fmax(worst, e / (1 + fabs(x[i])));
            bad += e > 1e-6 * (1 + fabs(x[i]));
        }
        CHECK_MSG(bad == 0, "gelu_erf %s: %d off (worst %g)", name, bad, worst);
        memcpy(y, x, sizeof(float) * n);
        sg_quick_gelu(y, n);
        bad = 0;
        for (long i = 0; i < n; i++) {
            const double want = x[i] / (1.0 + exp(-1.702 * x[i]));
            bad += fabs(y[i] - want) > 1e-6 * (1 + fabs(want));
        }
        CHECK_MSG(bad == 0, "quick_gelu %s: %d off", name, bad);
        for (long i = 0; i < n; i++)
            z[i] = rng_gauss();
        memcpy(y, x, sizeof(float) * n);
        sg_add(y, z, n);
        bad = 0;
        for (long i = 0; i < n; i++)
            bad += y[i] != x[i] + z[i];
        CHECK_MSG(bad == 0, "add %s: %d off", name, bad);
        free(x);
        free(y);
        free(z);
    }
}

/* ---- attention ---- */

static void attention_reference(const float *qkv, double *out, int seq, int d, int heads,
                                bool causal)
{
    const int hd = d / heads;
    double *s = malloc(sizeof(double) * seq);
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < seq; i++) {
            const int keys = causal ? i + 1 : seq;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < keys; j++) {
                double dot = 0;
                for (int c = 0; c < hd; c++)
                    dot += (double)qkv[(long)i * 3 * d + h * hd + c] *
                           qkv[(long)j * 3 * d + d + h * hd + c];
                s[j] = dot / sqrt((double)hd);
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < keys; j++)
                sum += s[j] = exp(s[j] - mx);
            for (int c = 0; c < hd; c++) {
                double acc = 0;
                for (int j = 0; j < keys; j++)
                    acc += s[j] / sum * qkv[(long)j * 3 * d + 2 * d + h * hd + c];
                out[(long)i * d + h * hd + c] = acc;
            }
        }
    free(s);
}

static void test_attention(void)
{
    /* seq, d, heads: one token, odd head sizes, ViT-B/32, the text tower, two query blocks */
    const int cases[][3] = {{1, 8, 2},    {7, 24, 3},  {50, 768, 12},
                            {77, 512, 8}, {130, 64, 2}, {3, 5, 1}};
    sg_pool *pools[2] = {NULL, sg_pool_new(2)};
    sg_arena arena;
    sg_arena_init(&arena, 0);
    for (int c = 0; c < 6; c++) {
        const int seq = cases[c][0], d = cases[c][1], heads = cases[c][2];
        float *qkv = gauss_array((long)seq * 3 * d, 1.0f), *out = malloc(sizeof(float) * seq * d);
        double *ref = malloc(sizeof(double) * seq * d);
        for (int causal = 0; causal < 2; causal++) {
            attention_reference(qkv, ref, seq, d, heads, causal);
            for (int lv = 0; lv < level_count(); lv++) {
                sg_cpu_level_set((sg_cpu_level)lv);
                for (int pi = 0; pi < 2; pi++) {
                    sg_arena_reserve(&arena, sg_attention_scratch_bytes(seq, d, heads,
                                                                        sg_pool_size(pools[pi])));
                    sg_attention(qkv, out, seq, d, heads, causal, pools[pi], &arena);
                    int bad = 0;
                    for (long i = 0; i < (long)seq * d; i++)
                        bad += fabs(out[i] - ref[i]) > 1e-5 * (1 + fabs(ref[i]));
                    CHECK_MSG(bad == 0, "attention %s seq %d d %d heads %d causal %d thr %d: %d",
                              sg_cpu_level_name((sg_cpu_level)lv), seq, d, heads, causal,
                              sg_pool_size(pools[pi]), bad);
                    CHECK(arena.used == 0);
                }
            }
        }
        free(qkv);
        free(out);
        free(ref);
    }
    /* no room: NaN */
    float qkv[3 * 4] = {0}, out[4];
    sg_arena tiny;
    sg_arena_init(&tiny, 8);
    sg_attention(qkv, out, 1, 4, 2, false, NULL, &tiny);
    CHECK(isnan(out[0]));
    sg_arena_free(&tiny);
    sg_arena_free(&arena);
    sg_pool_free(pools[1]);
}


/* ---- layer builders, multi-layer forward, Q8 row packing ---- */

typedef struct rows_ctx {
    const float *w;
    int k, calls, max_rows;
} rows_ctx;

static void rows_from(void *ctx, int r0, int nrows, float *dst)
{
    rows_ctx *c = ctx;
    c->calls++;
    c->max_rows = nrows > c->max_rows ? nrows : c->max_rows;
    memcpy(dst, c->w + (long)r0 * c->k, sizeof(float) * (size_t)nrows * c->k);
}

static int same_layer(const sg_linear *a, const sg_linear *b)
{
    const size_t np = (size_t)(a->n + SG_LINEAR_NR - 1) / SG_LINEAR_NR, k4 = (size_t)(a->k + 3) / 4 * 4;
    if (a->n != b->n || a->k != b->k || a->prec != b->prec || a->bytes != b->bytes)
        return 0;
    if ((a->bias == NULL) != (b->bias == NULL) ||
        (a->bias && memcmp(a->bias, b->bias, sizeof(float) * a->n)))
        return 0;
    if (a->prec == SG_PREC_F32)
        return memcmp(a->packed, b->packed, sizeof(float) * np * SG_LINEAR_NR * a->k) == 0;
    return memcmp(a->q, b->q, np * SG_LINEAR_NR * k4) == 0 &&
           memcmp(a->scale, b->scale, sizeof(float) * a->n) == 0 &&
           memcmp(a->qsum, b->qsum, sizeof(int32_t) * a->n) == 0;
}

static void test_linear_builders(void)
{
    sg_pool *pool = sg_pool_new(2);
    sg_arena arena;
    sg_arena_init(&arena, 0);
    sg_error err;
    /* from rows on demand == from the whole matrix, at every level (Q8 weights are quantised by
     * the level's quantiser, which must give the scalar one's integers) */
    const int n = 75, k = 37;
    float *w = gauss_array((long)n * k, 0.1f), *b = gauss_array(n, 0.1f);
    w[5] = 0.0f;
    for (int i = 0; i < k; i++)
        w[(long)3 * k + i] = 0.0f; /* an all-zero row */
    sg_linear ref[2];
    sg_cpu_level_set(SG_CPU_SCALAR);
    CHECK(sg_linear_init(&ref[0], w, b, n, k, SG_PREC_F32, &err) == SG_OK);
    CHECK(sg_linear_init(&ref[1], w, b, n, k, SG_PREC_Q8, &err) == SG_OK);
    for (int lv = 0; lv < level_count(); lv++) {
        sg_cpu_level_set((sg_cpu_level)lv);
        for (int p = 0; p < 2; p++) {
            sg_linear A, B;
            rows_ctx c = {w, k, 0, 0};
            CHECK(sg_linear_init(&A, w, b, n, k, (sg_precision)p, &err) == SG_OK);
            CHECK(sg_linear_init_rows(&B, n, k, (sg_precision)p, b, rows_from, &c, &err) == SG_OK);
            CHECK_MSG(same_layer(&A, &ref[p]) && same_layer(&B, &ref[p]),
                      "%s prec %d: layer differs from the scalar-level build",
                      sg_cpu_level_name((sg_cpu_level)lv), p);
            CHECK(c.calls == 3 && c.max_rows <= SG_LINEAR_NR);
            sg_linear_free(&A);
            sg_linear_free(&B);
        }
    }
    sg_linear none;
    CHECK(sg_linear_init_rows(&none, n, k, SG_PREC_F32, NULL, NULL, NULL, &err) == SG_EINVAL);
    CHECK(sg_linear_init_rows(&none, 0, k, SG_PREC_F32, NULL, rows_from, NULL, &err) == SG_EINVAL);
    sg_linear_free(&ref[1]);

    /* several layers in one region == one call each, bit for bit */
    const int ks[] = {64, 45}, nsz[3] = {33, 64, 7};
    for (int lv = 0; lv < level_count(); lv++) {
        sg_cpu_level_set((sg_cpu_level)lv);
        for (int ki = 0; ki < 2; ki++)
            for (int p = 0; p < 2; p++)
                for (int m = 1; m <= 5; m += 2) {
                    const int kk = ks[ki];
                    sg_linear L[3];
                    float *ws[3], *y1[3], *y2[3], *x = gauss_array((long)m * kk, 1.0f);
                    int ld[3];
                    for (int i = 0; i < 3; i++) {
                        ws[i] = gauss_array((long)nsz[i] * kk, 0.1f);
                        CHECK(sg_linear_init(&L[i], ws[i], i == 1 ? NULL : b, nsz[i], kk,
                                             (sg_precision)p, &err) == SG_OK);
                        ld[i] = nsz[i] + i;
                        y1[i] = calloc((size_t)m * ld[i], sizeof(float));
                        y2[i] = calloc((size_t)m * ld[i], sizeof(float));
                        sg_arena_reserve(&arena, sg_linear_scratch_bytes(&L[i], m));
                        sg_linear_forward(&L[i], x, m, kk, y1[i], ld[i], pool, &arena);
                    }
                    const sg_linear *Ls[3] = {&L[0], &L[1], &L[2]};
                    sg_linear_forward_multi(Ls, 3, x, m, kk, y2, ld, lv % 2 ? pool : NULL, &arena);
                    CHECK(arena.used == 0);
                    for (int i = 0; i < 3; i++) {
                        CHECK_MSG(memcmp(y1[i], y2[i], sizeof(float) * (size_t)m * ld[i]) == 0,
                                  "multi %s prec %d k %d m %d layer %d differs",
                                  sg_cpu_level_name((sg_cpu_level)lv), p, kk, m, i);
                        sg_linear_free(&L[i]);
                        free(ws[i]);
                        free(y1[i]);
                        free(y2[i]);
                    }
                    free(x);
                }
    }
    /* layers that do not share k: NaN, not a crash */
    {
        sg_linear A, B;
        float *wa = gauss_array(8 * 4, 1.0f), *wb = gauss_array(8 * 5, 1.0f), x[5] = {1, 2, 3, 4, 5};
        float ya[8], yb[8];
        CHECK(sg_linear_init(&A, wa, NULL, 8, 4, SG_PREC_F32, &err) == SG_OK);
        CHECK(sg_linear_init(&B, wb, NULL, 8, 5, SG_PREC_F32, &err) == SG_OK);
        const sg_linear *Ls[2] = {&A, &B};
        float *ys[2] = {ya, yb};
        const int ld[2] = {8, 8};
        sg_linear_forward_multi(Ls, 2, x, 1, 5, ys, ld, NULL, &arena);
        CHECK(isnan(ya[0]) && isnan(yb[7]));
        sg_linear_free(&A);
        sg_linear_free(&B);
        free(wa);
        free(wb);
    }

    /* Q8 row packing against the reference quantisation, every level, odd sizes and strides */
    const int pn[] = {1, 31, 33, 70}, pk[] = {1, 6, 64, 1501};
    for (int lv = 0; lv < level_count(); lv++) {
        sg_cpu_level_set((sg_cpu_level)lv);
        for (int a = 0; a < 4; a++)
            for (int c = 0; c < 4; c++) {
                const int rn = pn[a], rk = pk[c], ldw = rk + 3, k4 = (rk + 3) / 4 * 4;
                const int np = (rn + SG_LINEAR_NR - 1) / SG_LINEAR_NR;
                float *src = gauss_array((long)rn * ldw, 2.0f), *sc = malloc(sizeof(float) * rn);
                int8_t *dst = malloc((size_t)np * SG_LINEAR_NR * k4), *q = malloc((size_t)rk);
                int32_t *qs = malloc(sizeof(int32_t) * rn);
                void *tmp = malloc(sg_q8_pack_tmp_bytes(rk));
                memset(dst, 0x55, (size_t)np * SG_LINEAR_NR * k4);
                sg_q8_pack_rows(src, ldw, rn, rk, dst, sc, qs, tmp);
                int bad = 0;
                for (int j = 0; j < np * SG_LINEAR_NR; j++) {
                    float want_s = 0.0f;
                    if (j < rn)
                        q8_quantize_row(src + (long)j * ldw, rk, q, &want_s);
                    int32_t sum = 0;
                    for (int kk = 0; kk < k4; kk++) {
                        const int8_t want = j < rn && kk < rk ? q[kk] : 0;
                        const int8_t got =
                            dst[(long)(j / SG_LINEAR_NR) * SG_LINEAR_NR * k4 + (kk / 4) * 4 * SG_LINEAR_NR +
                                (j % SG_LINEAR_NR) * 4 + kk % 4];
                        bad += got != want;
                        sum += want;
                    }
                    if (j < rn)
                        bad += sc[j] != want_s || qs[j] != sum;
                }
                CHECK_MSG(bad == 0, "q8 pack %s n %d k %d: %d wrong",
                          sg_cpu_level_name((sg_cpu_level)lv), rn, rk, bad);
                free(src);
                free(sc);
                free(dst);
                free(q);
                free(qs);
                free(tmp);
            }
    }
    sg_linear_free(&ref[0]);
    free(w);
    free(b);
    sg_arena_free(&arena);
    sg_pool_free(pool);
}

/* ---- packed key/value cache ---- */

/* softmax(q K^T * scale) V per head in double; q [m][H*hd], k/v [n][H*hd] */
static void kv_reference(const float *q, const float *k, const float *v, int m, int n, int heads,
                         int hd, float scale, double *out)
{
    const int d = heads * hd;
    double *s = malloc(sizeof(double) * n);
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < m; i++) {
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < n; j++) {
                double dot = 0;
                for (int c = 0; c < hd; c++)
                    dot += (double)q[(long)i * d + h * hd + c] * k[(long)j * d + h * hd + c];
                s[j] = dot * scale;
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < n; j++)
                sum += s[j] = exp(s[j] - mx);
            for (int c = 0; c < hd; c++) {
                double acc = 0;
                for (int j = 0; j < n; j++)
                    acc += s[j] / sum * v[(long)j * d + h * hd + c];
                out[(long)i * d + h * hd + c] = acc;
            }
        }
    free(s);
}

static double rel_rms(const float *a, const double *b, long n, int lda, int d)
{
    double e = 0, r = 0;
    for (long i = 0; i < n; i++) {
        const double x = a[(i / d) * lda + i % d];
        e += (x - b[i]) * (x - b[i]);
        r += b[i] * b[i];
    }
    return r > 0 ? sqrt(e / r) : sqrt(e);
}

static void test_kv(void)
{
    /* heads, head dim, capacity, stored positions, query rows: base.en's 30 s window and a 3 s
     * one, odd head dims (not multiples of 4 or of a panel), one position, several query rows */
    const int cases[][5] = {{8, 64, 1500, 1500, 1}, {8, 64, 1500, 150, 2}, {3, 20, 100, 37, 3},
                            {1, 5, 7, 7, 1},        {2, 33, 64, 64, 4},    {2, 64, 40, 1, 1}};
    sg_pool *pools[2] = {NULL, sg_pool_new(2)};
    sg_arena arena;
    sg_arena_init(&arena, 0);
    sg_error err;
    for (int ci = 0; ci < 6; ci++) {
        const int heads = cases[ci][0], hd = cases[ci][1], cap = cases[ci][2], n = cases[ci][3],
                  m = cases[ci][4], d = heads * hd, ldk = d + 3, ldq = d + 1, ldo = d + 2;
        const float scale = 1.0f / sqrtf((float)hd);
        float *k = gauss_array((long)n * ldk, 1.5f), *v = gauss_array((long)n * ldk, 1.0f),
              *q = gauss_array((long)m * ldq, 1.5f);
        float *kd = malloc(sizeof(float) * n * d), *vd = malloc(sizeof(float) * n * d),
              *qd = malloc(sizeof(float) * m * d);
        for (int j = 0; j < n; j++) {
            memcpy(kd + (long)j * d, k + (long)j * ldk, sizeof(float) * d);
            memcpy(vd + (long)j * d, v + (long)j * ldk, sizeof(float) * d);
        }
        for (int i = 0; i < m; i++)
            memcpy(qd + (long)i * d, q + (long)i * ldq, sizeof(float) * d);
        double *ref = malloc(sizeof(double) * m * d);
        kv_reference(qd, kd, vd, m, n, heads, hd, scale, ref);
        float *out[3], *q8out[3];
        for (int p = 0; p < 2; p++) {
            for (int lv = 0; lv < level_count(); lv++) {
                sg_cpu_level_set((sg_cpu_level)lv);
                const char *name = sg_cpu_level_name((sg_cpu_level)lv);
                sg_pool *pool = pools[(lv + ci) % 2];
                sg_kv kv;
                CHECK(sg_kv_init(&kv, (sg_precision)p, heads, hd, cap, &err) == SG_OK);
                sg_arena_reserve(&arena, sg_kv_store_scratch_bytes(&kv, n, sg_pool_size(pool)));
                sg_kv_store(&kv, k, ldk, v, ldk, n, pool, &arena);
                CHECK(kv.n == n && arena.used == 0);
                float *o = malloc(sizeof(float) * m * ldo);
                for (int i = 0; i < m * ldo; i++)
                    o[i] = -777.0f;
                sg_arena_reserve(&arena, sg_kv_attend_scratch_bytes(&kv, m, sg_pool_size(pool)));
                sg_kv_attend(&kv, q, m, ldq, scale, o, ldo, pool, &arena);
                CHECK(arena.used == 0);
                int pad = 0;
                for (int i = 0; i < m; i++)
                    for (int c = d; c < ldo; c++)
                        pad += o[(long)i * ldo + c] != -777.0f;
                CHECK_MSG(pad == 0, "kv %s case %d: wrote past the heads", name, ci);
                const double e = rel_rms(o, ref, (long)m * d, ldo, d);
                if (p == SG_PREC_F32) {
                    int bad = 0;
                    for (int i = 0; i < m; i++)
                        for (int c = 0; c < d; c++)
                            bad += fabs(o[(long)i * ldo + c] - ref[(long)i * d + c]) >
                                   1e-5 * (1 + fabs(ref[(long)i * d + c]));
                    CHECK_MSG(bad == 0, "kv f32 %s case %d: %d off the reference (rel rms %g)",
                              name, ci, bad, e);
                    out[lv] = o;
                } else {
                    /* int8 keys and values, f32 queries and weights: 1-1.6% here (with the
                     * softmax weights quantised to int8 too it was 4% over 1500 keys) */
                    CHECK_MSG(e < 0.025, "kv q8 %s case %d: rel rms error %g", name, ci, e);
                    q8out[lv] = o;
                    if (lv > 0) {
                        /* the same int8 keys/values; f32 sums in another order and the level's
                         * softmax */
                        double diff = 0, norm = 0;
                        for (int i = 0; i < m * ldo; i++) {
                            diff += (o[i] - q8out[0][i]) * (o[i] - q8out[0][i]);
                            norm += q8out[0][i] * q8out[0][i];
                        }
                        CHECK_MSG(sqrt(diff / norm) < 2e-5, "kv q8 %s case %d: %g from scalar",
                                  name, ci, sqrt(diff / norm));
                    }
                }
                /* a cache's bytes are the same at every level */
                if (lv == 0 && p == SG_PREC_Q8 && ci == 2) {
                    sg_kv other;
                    sg_cpu_level_set(sg_cpu_supported());
                    CHECK(sg_kv_init(&other, SG_PREC_Q8, heads, hd, cap, &err) == SG_OK);
                    sg_kv_store(&other, k, ldk, v, ldk, n, pool, &arena);
                    int same = 1;
                    for (int h = 0; h < heads; h++) {
                        same &= memcmp((char *)kv.k + kv.kstride * h, (char *)other.k + kv.kstride * h,
                                       (size_t)(n + 31) / 32 * 32 * hd) == 0;
                        for (int pv = 0; pv < (hd + 31) / 32; pv++)
                            same &= memcmp((char *)kv.v + kv.vstride * h + (size_t)pv * 32 * cap,
                                           (char *)other.v + kv.vstride * h + (size_t)pv * 32 * cap,
                                           (size_t)n * 32) == 0;
                        same &= memcmp(kv.kscale + (long)h * cap, other.kscale + (long)h * cap,
                                       sizeof(float) * n) == 0;
                        same &= memcmp(kv.vscale + (long)h * hd, other.vscale + (long)h * hd,
                                       sizeof(float) * hd) == 0;
                    }
                    CHECK_MSG(same, "kv q8: stored bytes differ between scalar and %s",
                              sg_cpu_level_name(sg_cpu_supported()));
                    sg_kv_free(&other);
                    sg_cpu_level_set(SG_CPU_SCALAR);
                }
                sg_kv_free(&kv);
            }
            for (int lv = 0; lv < level_count(); lv++)
                free(p == SG_PREC_F32 ? out[lv] : q8out[lv]);
        }
        free(k);
        free(v);
        free(q);
        free(kd);
        free(vd);
        free(qd);
        free(ref);
    }
    /* errors and empty caches: no crash, NaN out */
    sg_kv kv;
    CHECK(sg_kv_init(&kv, SG_PREC_Q8, 0, 64, 10, &err) == SG_EINVAL);
    CHECK(sg_kv_init(&kv, SG_PREC_Q8, 2, 64, 0, &err) == SG_EINVAL);
    CHECK(sg_kv_init(&kv, (sg_precision)9, 2, 64, 10, &err) == SG_EINVAL);
    CHECK(sg_kv_init(&kv, SG_PREC_Q8, 2, 4, 10, &err) == SG_OK);
    float q[8] = {1, 2, 3, 4, 5, 6, 7, 8}, o[8];
    sg_kv_attend(&kv, q, 1, 8, 1.0f, o, 8, NULL, &arena);
    CHECK(isnan(o[0]) && isnan(o[7]));
    sg_arena tiny;
    sg_arena_init(&tiny, 16);
    float kk[11 * 8] = {0};
    sg_kv_store(&kv, kk, 8, kk, 8, 11, NULL, &arena); /* more than the capacity */
    CHECK(kv.n == 0);
    sg_kv_store(&kv, kk, 8, kk, 8, 3, NULL, &tiny); /* no scratch room */
    CHECK(kv.n == 0);
    sg_kv_store(&kv, kk, 8, kk, 8, 3, NULL, &arena);
    CHECK(kv.n == 3);
    sg_kv_attend(&kv, q, 1, 8, 1.0f, o, 8, NULL, &tiny);
    CHECK(isnan(o[3]));
    sg_arena_reserve(&arena, sg_kv_attend_scratch_bytes(&kv, 1, 1));
    sg_kv_attend(&kv, q, 1, 8, 1.0f, o, 8, NULL, &arena);
    CHECK(o[0] == 0.0f && o[7] == 0.0f); /* all-zero values */
    sg_kv_free(&kv);
    sg_kv_free(&kv); /* twice is harmless */
    sg_arena_free(&tiny);
    sg_arena_free(&arena);
    sg_pool_free(pools[1]);
}

/* ---- logsumexp ---- */

static void test_logsumexp(void)
{
    const long ns[] = {1, 7, 16, 33, 1000, 51864};
    for (int lv = 0; lv < level_count(); lv++) {
        sg_cpu_level_set((sg_cpu_level)lv);
        const char *name = sg_cpu_level_name((sg_cpu_level)lv);
        for (int i = 0; i < 6; i++) {
            const long n = ns[i];
            float *x = gauss_array(n, 5.0f);
            for (long j = 3; j < n; j += 7)
                x[j] = -INFINITY; /* suppressed tokens */
            x[n - 1] += 30.0f;
            double mx = -INFINITY, s = 0;
            for (long j = 0; j < n; j++)
                mx = fmax(mx, x[j]);
            for (long j = 0; j < n; j++)
                s += exp((double)x[j] - mx);
            const double want = mx + log(s), got = sg_logsumexp(x, n);
            CHECK_MSG(fabs(got - want) < 1e-6 * (1 + fabs(want)), "logsumexp %s n %ld: %.9g vs %.9g",
                      name, n, got, want);
            free(x);
        }
        float dead[20], mixed[20];
        for (int j = 0; j < 20; j++) {
            dead[j] = -INFINITY;
            mixed[j] = (float)j;
        }
        CHECK(sg_logsumexp(dead, 20) == -INFINITY && sg_logsumexp(dead, 0) == -INFINITY);
        mixed[17] = NAN;
        CHECK(isnan(sg_logsumexp(mixed, 20)));
        mixed[17] = INFINITY;
        CHECK(sg_logsumexp(mixed, 20) == INFINITY);
        dead[19] = 0.0f;
        CHECK(fabs(sg_logsumexp(dead, 20)) < 1e-7);
    }
}

/* ---- the spike layer (nn/spike.h) ---- */

/* The spike layer equals the dense layer on a 0/1 row (Q8 bit for bit, F32 up to the order of the
 * sums), and every level gives the scalar level's floats. */
static void check_spike_shape(int n, int k, bool with_bias, sg_pool *pool, sg_arena *arena)
{
    const double rates[] = {0.0, 0.05, 0.25, 1.0};
    float *w = gauss_array((long)n * k, 0.5f), *b = gauss_array(n, 0.3f);
    float *x = malloc((size_t)k * sizeof(float)), *yd = malloc((size_t)n * sizeof(float));
    float *ys = malloc((size_t)n * sizeof(float)), *yl = malloc((size_t)n * sizeof(float));
    uint16_t *idx = malloc((size_t)k * sizeof(uint16_t));
    for (int p = 0; p < 2; p++) {
        const sg_precision prec = p ? SG_PREC_Q8 : SG_PREC_F32;
        sg_spike_linear sl;
        sg_linear dl;
        sg_error err = {0};
        CHECK_EQ_INT(sg_spike_linear_init(&sl, w, with_bias ? b : NULL, n, k, prec, &err), SG_OK);
        CHECK_EQ_INT(sg_linear_init(&dl, w, with_bias ? b : NULL, n, k, prec, &err), SG_OK);
        for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
            int nidx = 0;
            for (int j = 0; j < k; j++) {
                x[j] = rng_uniform() < rates[r] ? 1.0f : 0.0f;
                if (x[j] > 0.0f)
                    idx[nidx++] = (uint16_t)j;
            }
            sg_arena_reset(arena);
            sg_linear_forward(&dl, x, 1, k, yd, n, pool, arena);
            sg_cpu_level_set(SG_CPU_SCALAR);
            sg_spike_linear_row(&sl, idx, nidx, ys);
            double worst = 0;
            int exact = 1;
            for (int i = 0; i < n; i++) {
                worst = fmax(worst, fabs(ys[i] - yd[i]) / (1 + fabs(yd[i])));
                exact &= ys[i] == yd[i];
            }
            if (prec == SG_PREC_Q8)
                CHECK_MSG(exact, "q8 spike layer %dx%d rate %.2f differs from dense q8", n, k, rates[r]);
            else
                CHECK_MSG(worst < 2e-6 * (1 + nidx / 8.0), "f32 spike layer %dx%d: %g", n, k, worst);
            for (int lv = 1; lv < level_count(); lv++) {
                sg_cpu_level_set((sg_cpu_level)lv);
                sg_spike_linear_row(&sl, idx, nidx, yl);
                CHECK_MSG(memcmp(yl, ys, (size_t)n * sizeof(float)) == 0,
                          "%s spike layer %dx%d rate %.2f at level %s differs from scalar",
                          p ? "q8" : "f32", n, k, rates[r], sg_cpu_level_name((sg_cpu_level)lv));
            }
        }
        sg_spike_linear_free(&sl);
        sg_linear_free(&dl);
    }
    free(w);
    free(b);
    free(x);
    free(yd);
    free(ys);
    free(yl);
    free(idx);
}

static void test_spike(void)
{
    const sg_cpu_level start = sg_cpu_level_get();
    sg_pool *pool = sg_pool_new(2);
    sg_arena arena;
    sg_arena_init(&arena, 1 << 20);
    const int shapes[][2] = {{1, 1}, {17, 5}, {64, 32}, {100, 33}, {128, 256}, {256, 128}, {47, 300}, {96, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        check_spike_shape(shapes[s][0], shapes[s][1], true, pool, &arena);
    for (int i = 0; i < 12; i++) /* random shapes, odd sizes included */
        check_spike_shape(1 + (int)(rng_next() % 300), 1 + (int)(rng_next() % 300), i % 2, pool, &arena);
    sg_error err = {0};
    sg_spike_linear sl;
    float w[4] = {0};
    CHECK(sg_spike_linear_init(&sl, w, NULL, 1, 70000, SG_PREC_F32, &err) == SG_EINVAL &&
          sl.n == 0 && strstr(err.msg, "spike layer"));
    CHECK(sg_spike_linear_init(&sl, w, NULL, 0, 4, SG_PREC_Q8, &err) == SG_EINVAL);
    sg_arena_free(&arena);
    sg_pool_free(pool);
    sg_cpu_level_set(start);
}

/* ---- row kernels (nn/vec.h) ---- */

static void check_quantize_row(const sg_vec_kernels *vk, const char *name, const float *w, int k)
{
    int8_t *q = malloc((size_t)k), *qr = malloc((size_t)k);
    float s, sr, qabs, werr, qabs_r, werr_r;
    sg_vec_scalar.quantize_row(w, k, qr, &sr, &qabs_r, &werr_r);
    vk->quantize_row(w, k, q, &s, &qabs, &werr);
    CHECK_MSG(s == sr && memcmp(q, qr, (size_t)k) == 0, "quantize_row %s k %d: q or scale differs", name, k);
    sg_vec_scalar.quantize_row(w, k, qr, &sr, NULL, NULL); /* without the bounds: the same q */
    CHECK(s == sr && memcmp(q, qr, (size_t)k) == 0);
    double sum = 0, worst = 0;
    for (int j = 0; j < k; j++) {
        sum += abs(q[j]);
        worst = fmax(worst, fabs((double)w[j] - (double)s * q[j]));
    }
    CHECK_MSG(qabs >= sum * s && werr >= worst && werr <= 2 * worst + 1e-4 * s + 1e-30,
              "quantize_row %s k %d: bounds %g %g for %g %g", name, k, qabs, werr, sum * s, worst);
    free(q);
    free(qr);
}

/* Each level's table against the scalar one on random lengths, odd ones included: axpy, argmax,
 * collect and the quantised rows equal, dot within float rounding of the exact sum. */
static void test_vec(void)
{
    const sg_cpu_level start = sg_cpu_level_get();
    for (int lv = 0; lv < level_count(); lv++) {
        sg_cpu_level_set((sg_cpu_level)lv);
        const sg_vec_kernels *vk = sg_vec_kernels_get();
#ifdef SG_X86
        CHECK(vk == (lv == SG_CPU_AVX512 ? &sg_vec_avx512 : &sg_vec_scalar));
#elif defined SG_AARCH64
        CHECK(vk == (lv >= SG_CPU_NEON ? &sg_vec_neon : &sg_vec_scalar));
#else
        CHECK(vk == &sg_vec_scalar);
#endif
        const char *name = sg_cpu_level_name((sg_cpu_level)lv);
        for (int iter = 0; iter < 40; iter++) {
            const int n = iter < 8 ? (int[]){1, 15, 16, 17, 63, 64, 65, 3584}[iter] : 1 + (int)(rng_next() % 1200);
            float *a = gauss_array(n, 1.0f), *b = gauss_array(n, 1.0f);
            /* dot */
            double exact = 0, mag = 0;
            for (int i = 0; i < n; i++) {
                exact += (double)a[i] * b[i];
                mag += fabs((double)a[i] * b[i]);
            }
            CHECK_MSG(fabs(vk->dot(a, b, n) - exact) <= 1e-6 * mag * (1 + n / 64.0) + 1e-30,
                      "dot %s n %d", name, n);
            /* axpy */
            float *y1 = gauss_array(n, 1.0f), *y2 = malloc((size_t)n * sizeof(float));
            memcpy(y2, y1, (size_t)n * sizeof(float));
            const float alpha = rng_gauss();
            vk->axpy(y1, alpha, a, n);
            sg_vec_scalar.axpy(y2, alpha, a, n);
            CHECK_MSG(memcmp(y1, y2, (size_t)n * sizeof(float)) == 0, "axpy %s n %d", name, n);
            /* argmax: ties (the first wins), NaNs (ignored), infinities, NaN first */
            for (int variant = 0; variant < 5; variant++) {
                float *y = gauss_array(n, 3.0f);
                if (variant == 1 && n > 2) {
                    y[n / 3] = y[n - 1] = 50.0f;
                    y[n / 2] = -60.0f;
                }
                if (variant == 2)
                    for (int i = 1; i < n; i += 7)
                        y[i] = NAN;
                if (variant == 3 && n > 1) {
                    y[n - 1] = INFINITY;
                    y[0] = -INFINITY;
                }
                if (variant == 4)
                    y[0] = NAN;
                float am, am_r;
                const int got = vk->argmax(y, n, &am), want = sg_vec_scalar.argmax(y, n, &am_r);
                CHECK_MSG(got == want && am == am_r, "argmax %s n %d variant %d: %d (%g) vs %d (%g)",
                          name, n, variant, got, am, want, am_r);
                /* collect at a threshold that keeps some */
                const float t = variant == 2 ? 0.5f : y[rng_next() % (unsigned)n];
                int *i1 = malloc((size_t)n * sizeof(int)), *i2 = malloc((size_t)n * sizeof(int));
                const int c1 = vk->collect(y, n, t, i1), c2 = sg_vec_scalar.collect(y, n, t, i2);
                CHECK_MSG(c1 == c2 && memcmp(i1, i2, (size_t)c1 * sizeof(int)) == 0,
                          "collect %s n %d variant %d", name, n, variant);
                free(i1);
                free(i2);
                free(y);
            }
            /* quantize_row, including all-zero and denormal rows */
            check_quantize_row(vk, name, a, n);
            float *z = calloc((size_t)n, sizeof(float));
            check_quantize_row(vk, name, z, n);
            z[n - 1] = 1e-40f;
            check_quantize_row(vk, name, z, n);
            free(z);
            free(a);
            free(b);
            free(y1);
            free(y2);
        }
    }
    sg_cpu_level_set(start);
}

/* A random resize axis: in_size inputs to n outputs, windows of 1..ksize taps that stay inside the
 * input, weights of either sign (negative lobes and sums above one included, so the clamps are
 * exercised). */
static sg_resample_axis random_axis(int in_size, int n, int ksize)
{
    sg_resample_axis ax = {n, ksize, malloc((size_t)n * sizeof(int)), malloc((size_t)n * sizeof(int)),
                           calloc((size_t)n * (size_t)ksize, sizeof(int32_t))};
    for (int i = 0; i < n; i++) {
        int cnt = 1 + (int)(rng_next() % (unsigned)(ksize < in_size ? ksize : in_size));
        ax.count[i] = cnt;
        ax.first[i] = (int)(rng_next() % (unsigned)(in_size - cnt + 1));
        /* taps of either sign whose magnitudes sum to at most 1.5 in fixed point: a negative
         * lobe and a sum above one (the clamps), never past int32 with 255 * sum (as Pillow) */
        int32_t *k = ax.k + (size_t)i * ksize;
        int64_t mag = 0;
        for (int t = 0; t < cnt; t++) {
            k[t] = (int32_t)(rng_next() % (2u << SG_RESAMPLE_BITS)) - (1 << SG_RESAMPLE_BITS);
            mag += k[t] < 0 ? -(int64_t)k[t] : k[t];
        }
        const int64_t cap = (int64_t)3 << (SG_RESAMPLE_BITS - 1);
        if (mag > cap)
            for (int t = 0; t < cnt; t++)
                k[t] = (int32_t)((int64_t)k[t] * cap / mag);
    }
    return ax;
}

static void free_axis(sg_resample_axis *ax)
{
    free(ax->first);
    free(ax->count);
    free(ax->k);
}

/* The resize passes: every level's bytes equal the scalar reference's (integer arithmetic), on
 * random sizes around the block widths (16 rows, 32 bytes). */
static void test_resample(void)
{
    const sg_cpu_level start = sg_cpu_level_get();
    for (int iter = 0; iter < 60; iter++) {
        const int in_w = 1 + (int)(rng_next() % 90), in_h = 1 + (int)(rng_next() % 70);
        const int out_w = 1 + (int)(rng_next() % 80), out_h = 1 + (int)(rng_next() % 60);
        const int ksize = 1 + (int)(rng_next() % 13);
        const size_t in_stride = (size_t)in_w * 3 + (rng_next() % 5);
        uint8_t *in = malloc(in_stride * (size_t)in_h);
        for (size_t i = 0; i < in_stride * (size_t)in_h; i++)
            in[i] = (uint8_t)rng_next();
        sg_resample_axis hx = random_axis(in_w, out_w, ksize), vy = random_axis(in_h, out_h, ksize);
        const size_t hbytes = (size_t)in_h * out_w * 3, vbytes = (size_t)out_h * in_w * 3;
        uint8_t *h_ref = malloc(hbytes), *h_got = malloc(hbytes);
        uint8_t *v_ref = malloc(vbytes), *v_got = malloc(vbytes);
        int32_t *tcol = malloc((size_t)in_w * SG_RESAMPLE_HLANES * sizeof(int32_t));
        sg_resample_scalar.horizontal(in, in_stride, in_h, &hx, h_ref, tcol);
        sg_resample_scalar.vertical(in, in_stride, (size_t)in_w * 3, &vy, v_ref);
        for (int lv = 0; lv < level_count(); lv++) {
            sg_cpu_level_set((sg_cpu_level)lv);
            memset(h_got, 0xa5, hbytes);
            memset(v_got, 0xa5, vbytes);
            sg_resample_horizontal(in, in_stride, in_h, &hx, h_got, tcol);
            sg_resample_vertical(in, in_stride, (size_t)in_w * 3, &vy, v_got);
            CHECK_MSG(memcmp(h_got, h_ref, hbytes) == 0, "resample horizontal %s %dx%d -> %d",
                      sg_cpu_level_name((sg_cpu_level)lv), in_w, in_h, out_w);
            CHECK_MSG(memcmp(v_got, v_ref, vbytes) == 0, "resample vertical %s %dx%d -> %d",
                      sg_cpu_level_name((sg_cpu_level)lv), in_w, in_h, out_h);
        }
        free_axis(&hx);
        free_axis(&vy);
        free(in);
        free(h_ref);
        free(h_got);
        free(v_ref);
        free(v_got);
        free(tcol);
    }
    sg_cpu_level_set(start);
}

int main(void)
{
    test_cpu();
    const sg_cpu_level start = sg_cpu_level_get();
    test_arena();
    test_pool();
    test_linear();
    test_ops();
    test_attention();
    test_linear_builders();
    test_kv();
    test_logsumexp();
    test_spike();
    test_vec();
    test_resample();
    sg_cpu_level_set(start);
    return check_report("test_nn");
}
