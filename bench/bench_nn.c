/* GEMM benchmark for nn/linear: GFLOP/s (2 m n k / time, median of --runs) per CPU level,
 * precision and thread count on the ViT-B/32 image-tower shapes (m = 50 tokens) and the text-tower
 * shapes (m = 77), next to this machine's theoretical f32 peak, with the Q8 output's cosine
 * similarity to F32 on the same inputs. Also times an empty parallel region.
 *   bench_nn [--runs N] [--level scalar|avx2|avx512] [--shape NAME]
 * Assumed peak (Zen 4): 2 FMA pipes x 8 floats (256-bit datapath) x 2 flops per cycle per core,
 * i.e. 32 f32 flop/cycle/core; int8 VNNI: 1 zmm vpdpbusd per cycle = 128 int8 op/cycle/core. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "nn/arena.h"
#include "nn/cpu.h"
#include "nn/linear.h"
#include "nn/ops.h"
#include "nn/pool.h"

typedef struct shape {
    const char *name;
    int m, n, k;
} shape;

static const shape shapes[] = {
    {"vit.attn_out", 50, 768, 768},  {"vit.qkv", 50, 2304, 768},  {"vit.fc1", 50, 3072, 768},
    {"vit.fc2", 50, 768, 3072},      {"txt.attn_out", 77, 512, 512}, {"txt.qkv", 77, 1536, 512},
    {"txt.fc1", 77, 2048, 512},      {"txt.fc2", 77, 512, 2048},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static unsigned long long rng_state = 0x9e3779b97f4a7c15ull;
static double rng_gauss(void)
{
    double u[2];
    for (int i = 0; i < 2; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        u[i] = ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2.0 * log(u[0])) * cos(6.283185307179586 * u[1]);
}

/* Core clock from a chain of dependent adds (1 cycle each on any x86 of the last decade): the
 * fastest of many short samples, so that time slices lost to other processes do not count. */
static double measure_ghz(void)
{
#if defined(__x86_64__)
    double best = 0;
    for (int rep = 0; rep < 400; rep++) {
        const long iters = 50000;
        double t0 = sg_now_ms();
        long x = 0;
        for (long i = 0; i < iters; i++)
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                             : "+r"(x));
        double ms = sg_now_ms() - t0;
        double ghz = 8.0 * iters / (ms * 1e6);
        if (ghz > best)
            best = ghz;
    }
    return best;
#else
    return 0;
#endif
}

static double cpuinfo_mhz(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return 0;
    char line[256];
    double mhz = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "cpu MHz", 7) == 0) {
            const char *colon = strchr(line, ':');
            if (colon)
                mhz = atof(colon + 1);
            break;
        }
    fclose(f);
    return mhz;
}

/* spins for about 2 us: long enough that both threads take a task */
static void spin_task(void *ctx, int task, int ntasks)
{
    (void)ctx;
    (void)task;
    (void)ntasks;
    double t0 = sg_now_ms();
    while (sg_now_ms() - t0 < 0.002) {
    }
}

/* median and best time of one forward, in ms */
static void time_forward(const sg_linear *L, const float *x, int m, float *y, sg_pool *pool,
                         sg_arena *arena, int runs, double *med, double *best)
{
    double *t = malloc(sizeof(double) * (size_t)runs);
    for (int i = 0; i < 3; i++)
        sg_linear_forward(L, x, m, L->k, y, L->n, pool, arena);
    for (int i = 0; i < runs; i++) {
        double t0 = sg_now_ms();
        sg_linear_forward(L, x, m, L->k, y, L->n, pool, arena);
        t[i] = sg_now_ms() - t0;
    }
    *med = median(t, runs);
    *best = t[0]; /* sorted by median() */
    free(t);
}

/* The non-GEMM work of one ViT-B/32 layer (seq 50, d 768, 12 heads) and one Whisper-base encoder
 * attention (seq 1500, d 512, 8 heads), at the current level, median of runs. */
static void bench_ops(sg_pool *pool, int runs)
{
    const int seq = 50, d = 768;
    float *x = malloc(sizeof(float) * seq * 4 * d), *y = malloc(sizeof(float) * seq * 4 * d);
    float *g = malloc(sizeof(float) * d), *b = malloc(sizeof(float) * d);
    float *qkv = malloc(sizeof(float) * 1500 * 3 * 512), *out = malloc(sizeof(float) * 1500 * 512);
    for (int i = 0; i < seq * 4 * d; i++)
        x[i] = (float)rng_gauss();
    for (int i = 0; i < d; i++) {
        g[i] = 1.0f;
        b[i] = 0.0f;
    }
    for (int i = 0; i < 1500 * 3 * 512; i++)
        qkv[i] = (float)rng_gauss();
    sg_arena arena;
    sg_arena_init(&arena, sg_attention_scratch_bytes(1500, 512, 8, sg_pool_size(pool)));
    double *t = malloc(sizeof(double) * (size_t)runs);
    const char *names[] = {"layernorm 50x768", "quick_gelu 50x3072", "gelu_erf 50x3072",
                           "softmax 600x50", "attention vit (50, 768, 12h)",
                           "attention whisper (1500, 512, 8h)"};
    for (int op = 0; op < 6; op++) {
        const int n = op == 5 ? (runs < 10 ? runs : 10) : runs;
        for (int i = 0; i < n; i++) {
            memcpy(y, x, sizeof(float) * seq * 4 * d);
            double t0 = sg_now_ms();
            switch (op) {
            case 0: sg_layernorm(y, y, seq, d, g, b, 1e-5f); break;
            case 1: sg_quick_gelu(y, (long)seq * 4 * d); break;
            case 2: sg_gelu_erf(y, (long)seq * 4 * d); break;
            case 3: sg_softmax_rows(y, 12 * seq, seq); break;
            case 4: sg_attention(qkv, out, seq, d, 12, false, pool, &arena); break;
            case 5: sg_attention(qkv, out, 1500, 512, 8, false, pool, &arena); break;
            }
            t[i] = sg_now_ms() - t0;
        }
        printf("  %-36s %8.1f us\n", names[op], median(t, n) * 1e3);
    }
    free(t);
    sg_arena_free(&arena);
    free(x);
    free(y);
    free(g);
    free(b);
    free(qkv);
    free(out);
}

int main(int argc, char **argv)
{
    int runs = 100;
    const char *only_level = NULL, *only_shape = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--level") == 0 && i + 1 < argc)
            only_level = argv[++i];
        else if (strcmp(argv[i], "--shape") == 0 && i + 1 < argc)
            only_shape = argv[++i];
        else {
            fprintf(stderr, "usage: bench_nn [--runs N] [--level L] [--shape NAME]\n");
            return 2;
        }
    }
    if (runs < 1)
        runs = 1;
    const double ghz = measure_ghz(), mhz = cpuinfo_mhz();
    const double peak1 = 32.0 * ghz; /* f32 GFLOP/s per core */
    printf("cpu: %s supported; clock measured %.2f GHz (/proc/cpuinfo %.0f MHz)\n",
           sg_cpu_level_name(sg_cpu_supported()), ghz, mhz);
    printf("assumed f32 peak: 32 flop/cycle/core (2 x 256-bit FMA) = %.0f GFLOP/s (1 thread), "
           "%.0f (2 threads); int8 VNNI 4x that\n", peak1, 2 * peak1);

    sg_pool *pools[2] = {sg_pool_new(1), sg_pool_new(2)};
    {
        /* 2 tasks of 2 us each: the excess over 2 us is the cost of a parallel region */
        static double t[2000];
        for (int i = 0; i < 2000; i++) {
            double t0 = sg_now_ms();
            sg_pool_run(pools[1], spin_task, NULL, 2);
            t[i] = sg_now_ms() - t0;
        }
        const double us = median(t, 2000) * 1e3;
        printf("parallel region of 2 x 2 us tasks, 2 threads: median %.2f us (overhead %.2f us)\n",
               us, us - 2.0);
    }
    sg_arena arena;
    sg_arena_init(&arena, 0);
    printf("\n%-13s %4s %5s %5s  %-6s %-4s %3s %8s %8s %7s %8s %8s\n", "shape", "m", "n", "k",
           "level", "prec", "thr", "med ms", "GFLOP/s", "%peak", "best", "cos(f32)");
    for (int s = 0; s < NSHAPES; s++) {
        const shape *S = &shapes[s];
        if (only_shape && strcmp(only_shape, S->name) != 0)
            continue;
        float *w = malloc(sizeof(float) * (size_t)S->n * S->k);
        float *x = malloc(sizeof(float) * (size_t)S->m * S->k);
        float *yf = malloc(sizeof(float) * (size_t)S->m * S->n);
        float *yq = malloc(sizeof(float) * (size_t)S->m * S->n);
        float *b = malloc(sizeof(float) * (size_t)S->n);
        for (long i = 0; i < (long)S->n * S->k; i++)
            w[i] = (float)(0.02 * rng_gauss());
        for (long i = 0; i < (long)S->m * S->k; i++)
            x[i] = (float)rng_gauss();
        for (int i = 0; i < S->n; i++)
            b[i] = (float)(0.01 * rng_gauss());
        sg_linear Lf, Lq;
        sg_error err;
        if (sg_linear_init(&Lf, w, b, S->n, S->k, SG_PREC_F32, &err) != SG_OK ||
            sg_linear_init(&Lq, w, b, S->n, S->k, SG_PREC_Q8, &err) != SG_OK) {
            fprintf(stderr, "init: %s\n", err.msg);
            return 1;
        }
        sg_arena_reserve(&arena, sg_linear_scratch_bytes(&Lq, S->m));
        const double flop = 2.0 * S->m * S->n * S->k;
        for (int lv = SG_CPU_AVX512; lv >= SG_CPU_SCALAR; lv--) {
            if (lv > (int)sg_cpu_supported())
                continue;
            if (only_level && strcmp(only_level, sg_cpu_level_name((sg_cpu_level)lv)) != 0)
                continue;
            sg_cpu_level_set((sg_cpu_level)lv);
            /* the scalar reference is ~100x slower: fewer runs */
            const int nruns = lv == SG_CPU_SCALAR ? (runs < 5 ? runs : 5) : runs;
            for (int prec = 0; prec < 2; prec++) {
                for (int th = 0; th < 2; th++) {
                    const sg_linear *L = prec ? &Lq : &Lf;
                    float *y = prec ? yq : yf;
                    double ms, best;
                    time_forward(L, x, S->m, y, pools[th], &arena, nruns, &ms, &best);
                    const double gf = flop / (ms * 1e6);
                    char cosbuf[16] = "";
                    if (prec) {
                        sg_linear_forward(&Lf, x, S->m, S->k, yf, S->n, pools[th], &arena);
                        double dot = 0, na = 0, nb = 0;
                        for (long i = 0; i < (long)S->m * S->n; i++) {
                            dot += (double)yf[i] * yq[i];
                            na += (double)yf[i] * yf[i];
                            nb += (double)yq[i] * yq[i];
                        }
                        snprintf(cosbuf, sizeof cosbuf, "%.5f", dot / sqrt(na * nb));
                    }
                    printf("%-13s %4d %5d %5d  %-6s %-4s %3d %8.3f %8.1f %6.1f%% %8.1f %8s\n",
                           S->name, S->m, S->n, S->k, sg_cpu_level_name((sg_cpu_level)lv),
                           prec ? "q8" : "f32", th + 1, ms, gf, 100.0 * gf / (peak1 * (th + 1)),
                           flop / (best * 1e6), cosbuf);
                    fflush(stdout);
                }
            }
        }
        sg_cpu_level_set(sg_cpu_supported());
        sg_linear_free(&Lf);
        sg_linear_free(&Lq);
        free(w);
        free(x);
        free(yf);
        free(yq);
        free(b);
    }
    for (int th = 0; th < 2; th++) {
        printf("\nops at %s, %d thread(s):\n", sg_cpu_level_name(sg_cpu_level_get()), th + 1);
        bench_ops(pools[th], runs);
    }
    printf("(GFLOP/s and %%peak at the median time, best = GFLOP/s of the fastest run; %%peak is\n"
           " against the f32 peak for both precisions; q8 ops counted as 2 m n k)\n");
    sg_arena_free(&arena);
    sg_pool_free(pools[0]);
    sg_pool_free(pools[1]);
    return 0;
}
