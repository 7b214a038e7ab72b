/* BPE tokenizer benchmark: a large UTF-8 text through GPT-2's tokenizer (gpt2.tiktoken, and the
 * small Hugging Face vocab.json + merges.txt fixture) and through CLIP's (in chunks of whole lines,
 * at a context large enough to keep every token). Prints per case the median and best of N runs
 * in CPU time of the thread (steadier than the wall clock on a shared machine) and the median
 * wall time, and a checksum of the ids (equal checksums: the same tokens); then the CPU time of
 * loading each vocabulary, and one JSON line.
 *   bench_bpe [--runs N] [--text PATH]   (run from the project root; the default text is the
 *   README and docs/ repeated to 4 MB) */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "models/clip_tokenizer.h"
#include "models/gpt2_tokenizer.h"

#define CHUNK_BYTES (64 * 1024)

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    do {
        if (n == cap) {
            char *p = realloc(buf, (cap = cap ? 2 * cap : 1 << 20) + 1);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
    } while (r > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The README and docs/ repeated to at least 4 MB. */
static char *default_text(size_t *len)
{
    const char *files[] = {"README.md", "docs/ARCHITECTURE.md", "docs/PERFORMANCE.md"};
    char *text = NULL;
    size_t n = 0;
    while (n < (4u << 20)) {
        size_t before = n;
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
            size_t m;
            char *part = read_all(files[i], &m);
            char *grown = part ? realloc(text, n + m + 1) : NULL;
            if (grown) {
                memcpy(grown + n, part, m + 1);
                text = grown;
                n += m;
            }
            free(part);
        }
        if (n == before)
            break;
    }
    *len = n;
    return text;
}

static uint64_t fnv(uint64_t h, const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint32_t)ids[i]) * 0x100000001B3u;
    return h;
}

typedef struct bench_case {
    const char *name;
    const sg_bpe *gpt2;             /* or */
    const sg_clip_tokenizer *clip;
    double median_ms, best_ms, wall_ms; /* CPU, CPU, wall */
    size_t tokens;
    uint64_t checksum;
} bench_case;

/* One pass over text; -1 on error. */
static int run_once(bench_case *c, char *text, size_t len)
{
    sg_error err = {0};
    c->tokens = 0;
    c->checksum = 0xCBF29CE484222325u;
    if (c->gpt2) {
        int32_t *ids;
        size_t n;
        if (sg_bpe_encode(c->gpt2, text, len, &ids, &n, &err) != SG_OK) {
            fprintf(stderr, "%s: %s\n", c->name, err.msg);
            return -1;
        }
        c->tokens = n;
        c->checksum = fnv(c->checksum, ids, n);
        free(ids);
        return 0;
    }
    int32_t *ids = malloc((CHUNK_BYTES + 2) * sizeof *ids);
    if (!ids)
        return -1;
    for (size_t pos = 0; pos < len;) {
        size_t end = pos + CHUNK_BYTES < len ? pos + CHUNK_BYTES : len;
        while (end < len && end > pos + 1 && text[end - 1] != '\n')
            end--;
        char saved = text[end];
        text[end] = '\0';
        int n = sg_clip_tokenize(c->clip, text + pos, ids, (int)(end - pos) + 2, &err);
        text[end] = saved;
        if (n < 0) {
            fprintf(stderr, "%s: %s\n", c->name, err.msg);
            free(ids);
            return -1;
        }
        c->tokens += (size_t)n - 2;
        c->checksum = fnv(c->checksum, ids + 1, (size_t)n - 2);
        pos = end;
    }
    free(ids);
    return 0;
}

static int run_case(bench_case *c, char *text, size_t len, int runs)
{
    double *ms = malloc(2 * (size_t)runs * sizeof *ms), *wall = ms + runs;
    if (!ms || run_once(c, text, len) != 0) { /* one warm-up pass */
        free(ms);
        return -1;
    }
    for (int r = 0; r < runs; r++) {
        double t0 = sg_now_ms(), c0 = cpu_ms();
        int rc = run_once(c, text, len);
        ms[r] = cpu_ms() - c0;
        wall[r] = sg_now_ms() - t0;
        if (rc != 0) {
            free(ms);
            return -1;
        }
    }
    qsort(ms, (size_t)runs, sizeof *ms, cmp);
    qsort(wall, (size_t)runs, sizeof *wall, cmp);
    c->median_ms = ms[runs / 2];
    c->best_ms = ms[0];
    c->wall_ms = wall[runs / 2];
    free(ms);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"runs", required_argument, NULL, 'r'}, {"text", required_argument, NULL, 't'}, {0}};
    int runs = 7, c;
    const char *text_path = NULL;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'r' && atoi(optarg) > 0) {
            runs = atoi(optarg);
        } else if (c == 't') {
            text_path = optarg;
        } else {
            fprintf(stderr, "usage: bench_bpe [--runs N >= 1] [--text PATH]\n");
            return 2;
        }
    }
    size_t len = 0;
    char *text = text_path ? read_all(text_path, &len) : default_text(&len);
    if (!text || len == 0) {
        fprintf(stderr, "bench_bpe: cannot read %s\n", text_path ? text_path : "README.md, docs/");
        free(text);
        return 1;
    }
    sg_error err = {0};
    double c0 = cpu_ms();
    sg_bpe *tiktoken = sg_bpe_load_tiktoken("../shared/tokenizers/gpt2.tiktoken", &err);
    double c1 = cpu_ms();
    sg_bpe *hf = tiktoken ? sg_bpe_load_dir("tests/fixtures/gpt2_tokenizer/small", &err) : NULL;
    double c2 = cpu_ms();
    sg_clip_tokenizer *clip = hf ? sg_clip_tokenizer_load_dir("tests/fixtures/clip_tokenizer", &err)
                                 : NULL;
    double c3 = cpu_ms();
    int rc = 0;
    if (!clip) {
        fprintf(stderr, "bench_bpe: %s\n", err.msg);
        rc = 1;
    }
    bench_case cases[] = {{"gpt2_tiktoken", tiktoken, NULL, 0, 0, 0, 0, 0},
                          {"gpt2_merges_small", hf, NULL, 0, 0, 0, 0, 0},
                          {"clip", NULL, clip, 0, 0, 0, 0, 0}};
    char json[512];
    int used = snprintf(json, sizeof json, "{\"bench\":\"bpe\",\"bytes\":%zu,\"runs\":%d", len,
                        runs);
    for (size_t k = 0; k < sizeof cases / sizeof *cases && rc == 0; k++) {
        bench_case *bc = &cases[k];
        if (run_case(bc, text, len, runs) != 0) {
            rc = 1;
            break;
        }
        printf("%-18s cpu %8.2f ms median %8.2f best, wall %8.2f median  %8zu tokens  "
               "%5.2f MB/s  ids %016llx\n",
               bc->name, bc->median_ms, bc->best_ms, bc->wall_ms, bc->tokens,
               (double)len / 1e6 / (bc->median_ms / 1e3), (unsigned long long)bc->checksum);
        used += snprintf(json + used, sizeof json - (size_t)used, ",\"%s_cpu_ms\":%.2f", bc->name,
                         bc->median_ms);
    }
    if (rc == 0)
        printf("load cpu ms: gpt2.tiktoken %.2f, small vocab.json + merges.txt %.2f, clip %.2f\n"
               "%s}\n",
               c1 - c0, c2 - c1, c3 - c2, json);
    sg_clip_tokenizer_free(clip);
    sg_bpe_free(hf);
    sg_bpe_free(tiktoken);
    free(text);
    return rc;
}
