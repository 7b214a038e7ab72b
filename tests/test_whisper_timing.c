/* Word timestamps (models/whisper_timing.h) against py/whisper_timing_reference.py (openai's
 * timing.py on our PyTorch Whisper): the real-vocabulary fixtures tests/fixtures/whisper_en and
 * whisper_ml, each as its whisper.cpp file and as a Hugging Face directory (a temporary one
 * linking the fixture's config and weights and the .tiktoken vocabulary), on the encoded window of
 * ../shared/data/audio/jfk.wav; segments from expected_words.json (timestamp tokens around text
 * and punctuation tokens, as transcribe() hands them over). At f32 every word (text, start, end,
 * probability) and the segments' adjusted start/end equal the reference's, for the default heads
 * (last half of the decoder), for a generation_config.json's alignment_heads, and for space (en,
 * de) and per-character (zh) splitting. Also: dtw and median filter on small matrices with ties,
 * the int8 model runs, malformed alignment_heads refuse to load, bad arguments are SG_EINVAL, and
 * the cost of the alignment pass next to the decoding of the same tokens is printed.
 * SG_TEST_REDUCED=1 (check.h; the runs under qemu): each case in one format (the whisper.cpp file,
 * or the Hugging Face directory for the cases only it has: a generation_config's heads, pieces of
 * characters), int8 on each fixture's first case only, one repetition of the timings; compared as
 * above. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "sgtest_whisper.h"
#include "models/whisper.h"
#include "models/whisper_timing.h"
#include "models/whisper_transcribe.h"
#include "nn/pool.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static char tmpdir[256];

/* tmpdir/name: links to fixture's config.json and model.safetensors, the vocabulary (tiktoken,
 * NULL: none) and, when gen is not NULL, a generation_config.json with that text */
static int make_hf(const char *fixture, const char *name, const char *tiktoken, const char *gen,
                   char *out, size_t cap)
{
    char cwd[4096], src[8192], dst[8192];
    if (!getcwd(cwd, sizeof cwd))
        return -1;
    snprintf(out, cap, "%s/%s", tmpdir, name);
    if (mkdir(out, 0700) != 0 && errno != EEXIST)
        return -1;
    const char *files[] = {"config.json", "model.safetensors"};
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s/%s/%s", cwd, fixture, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", out, files[i]);
        unlink(dst);
        if (symlink(src, dst) != 0)
            return -1;
    }
    if (tiktoken) {
        snprintf(src, sizeof src, "%s/../shared/tokenizers/%s", cwd, tiktoken);
        snprintf(dst, sizeof dst, "%s/%s", out, tiktoken);
        unlink(dst);
        if (symlink(src, dst) != 0)
            return -1;
    }
    if (gen) {
        snprintf(dst, sizeof dst, "%s/generation_config.json", out);
        FILE *f = fopen(dst, "w");
        if (!f)
            return -1;
        fputs(gen, f);
        fclose(f);
    }
    return 0;
}

static void remove_hf(const char *dir)
{
    const char *files[] = {"config.json", "model.safetensors", "gpt2.tiktoken",
                           "multilingual.tiktoken", "generation_config.json"};
    char p[8192];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

typedef struct segs {
    sg_whisper_segment *s;
    size_t n;
    int32_t sot[8];
    int n_sot, num_frames;
} segs;

static void segs_free(segs *S)
{
    for (size_t i = 0; i < S->n; i++) {
        free(S->s[i].tokens);
        for (size_t w = 0; w < S->s[i].n_words; w++)
            free(S->s[i].words[w].word);
        free(S->s[i].words);
    }
    free(S->s);
    memset(S, 0, sizeof *S);
}

static void segs_load(json_t *c, segs *S)
{
    memset(S, 0, sizeof *S);
    json_t *in = json_object_get(c, "segments_in"), *v;
    size_t i;
    S->n = json_array_size(in);
    S->s = calloc(S->n ? S->n : 1, sizeof *S->s);
    json_array_foreach(in, i, v)
    {
        sg_whisper_segment *g = &S->s[i];
        g->id = (int)i;
        g->seek = (int)json_integer_value(json_object_get(v, "seek"));
        g->start = (float)json_number_value(json_object_get(v, "start"));
        g->end = (float)json_number_value(json_object_get(v, "end"));
        json_t *t = json_object_get(v, "tokens");
        g->n_tokens = json_array_size(t);
        g->tokens = malloc((g->n_tokens ? g->n_tokens : 1) * sizeof *g->tokens);
        for (size_t k = 0; k < g->n_tokens; k++)
            g->tokens[k] = (int32_t)json_integer_value(json_array_get(t, k));
    }
    json_t *sot = json_object_get(c, "sot");
    S->n_sot = (int)json_array_size(sot);
    for (int k = 0; k < S->n_sot && k < 8; k++)
        S->sot[k] = (int32_t)json_integer_value(json_array_get(sot, (size_t)k));
    S->num_frames = (int)json_integer_value(json_object_get(c, "num_frames"));
}

/* the words and segment times of case c on model m (window encoded) equal the reference's */
static void check_case(sg_whisper *m, json_t *c, const char *what)
{
    segs S;
    segs_load(c, &S);
    sg_error err = {0};
    float last = 0.0f;
    sg_status st = sg_whisper_add_word_timestamps(m, S.s, S.n, S.sot, S.n_sot, S.num_frames, &last,
                                                  &err);
    CHECK_MSG(st == SG_OK, "%s: %s", what, err.msg);
    json_t *want = json_object_get(c, "segments");
    CHECK_EQ_INT(S.n, json_array_size(want));
    int bad = 0, nw = 0;
    for (size_t i = 0; st == SG_OK && i < S.n && i < json_array_size(want); i++) {
        json_t *ws = json_array_get(want, i), *words = json_object_get(ws, "words");
        const sg_whisper_segment *g = &S.s[i];
        CHECK_NEAR(g->start, json_number_value(json_object_get(ws, "start")), 1e-4);
        CHECK_NEAR(g->end, json_number_value(json_object_get(ws, "end")), 1e-4);
        CHECK_EQ_INT(g->n_words, json_array_size(words));
        for (size_t k = 0; k < g->n_words && k < json_array_size(words); k++) {
            json_t *w = json_array_get(words, k);
            const sg_whisper_word *x = &g->words[k];
            const char *text = json_string_value(json_object_get(w, "word"));
            const bool ok = text && strcmp(text, x->word) == 0 &&
                            fabs(x->start - json_number_value(json_object_get(w, "start"))) <= 1e-4 &&
                            fabs(x->end - json_number_value(json_object_get(w, "end"))) <= 1e-4 &&
                            fabs(x->probability -
                                 json_number_value(json_object_get(w, "probability"))) <= 1e-4;
            CHECK_MSG(ok, "%s: segment %zu word %zu: \"%s\" %.2f-%.2f p %.6f, reference \"%s\" "
                      "%.2f-%.2f p %.6f", what, i, k, x->word, x->start, x->end, x->probability,
                      text ? text : "?", json_number_value(json_object_get(w, "start")),
                      json_number_value(json_object_get(w, "end")),
                      json_number_value(json_object_get(w, "probability")));
            bad += !ok;
            nw++;
        }
    }
    CHECK_NEAR(last, json_number_value(json_object_get(c, "last_speech_timestamp")), 1e-4);
    fprintf(stderr, "%s: %d words, %d differ\n", what, nw, bad);
    segs_free(&S);
}

static void test_units(json_t *exp)
{
    json_t *c;
    size_t i;
    sg_error err = {0};
    json_array_foreach(json_object_get(exp, "dtw"), i, c)
    {
        json_t *x = json_object_get(c, "x");
        const int N = (int)json_array_size(x), M = (int)json_array_size(json_array_get(x, 0));
        float *a = malloc((size_t)N * M * sizeof(float));
        int *ti = malloc((size_t)(N + M) * sizeof(int)), *tj = malloc((size_t)(N + M) * sizeof(int));
        for (int r = 0; r < N; r++)
            for (int k = 0; k < M; k++)
                a[r * M + k] = (float)json_number_value(json_array_get(json_array_get(x, (size_t)r),
                                                                       (size_t)k));
        int len = -1;
        CHECK(sg_whisper_dtw(a, N, M, ti, tj, &len, &err) == SG_OK);
        json_t *wt = json_object_get(c, "text"), *wj = json_object_get(c, "time");
        CHECK_EQ_INT(len, json_array_size(wt));
        bool same = len == (int)json_array_size(wt);
        for (int k = 0; same && k < len; k++)
            same = ti[k] == json_integer_value(json_array_get(wt, (size_t)k)) &&
                   tj[k] == json_integer_value(json_array_get(wj, (size_t)k));
        CHECK_MSG(same, "dtw case %zu (%dx%d): path differs", i, N, M);
        free(a);
        free(ti);
        free(tj);
    }
    json_array_foreach(json_object_get(exp, "median"), i, c)
    {
        json_t *x = json_object_get(c, "x"), *y = json_object_get(c, "y");
        const int R = (int)json_array_size(x), n = (int)json_array_size(json_array_get(x, 0));
        float *a = malloc((size_t)R * n * sizeof(float));
        for (int r = 0; r < R; r++)
            for (int k = 0; k < n; k++)
                a[r * n + k] = (float)json_number_value(json_array_get(json_array_get(x, (size_t)r),
                                                                       (size_t)k));
        CHECK(sg_whisper_median_filter(a, R, n, 7, &err) == SG_OK);
        bool same = true;
        for (int r = 0; r < R; r++)
            for (int k = 0; k < n; k++)
                same &= a[r * n + k] ==
                        (float)json_number_value(json_array_get(json_array_get(y, (size_t)r),
                                                                (size_t)k));
        CHECK_MSG(same, "median case %zu (%dx%d) differs", i, R, n);
        free(a);
    }
    /* a tie table by hand: all costs equal -> dtw_cpu's "else left" makes the backtrace go left
     * along the last row, then up, then the diagonal into (0, 0) */
    float z[6] = {0};
    int ti[5], tj[5], len = 0;
    CHECK(sg_whisper_dtw(z, 2, 3, ti, tj, &len, &err) == SG_OK);
    CHECK_EQ_INT(len, 4);
    CHECK(len == 4 && ti[0] == 0 && tj[0] == 0 && ti[1] == 1 && tj[1] == 0 && ti[2] == 1 &&
          tj[2] == 1 && ti[3] == 1 && tj[3] == 2);
    /* NaN sorts last in each window, as torch's sort puts it (values from the reference's
     * median_filter) */
    float nn[2][8] = {{NAN, 1, 2, 3, 4, 5, 6, 7}, {NAN, NAN, NAN, NAN, 2, 1, 0, 0}};
    const float nw[2][8] = {{2, 2, 3, 4, 4, 5, 5, 5}, {NAN, NAN, NAN, NAN, 2, 1, 1, 1}};
    CHECK(sg_whisper_median_filter(&nn[0][0], 2, 8, 7, &err) == SG_OK);
    bool nsame = true;
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 8; k++)
            nsame &= isnan(nw[r][k]) ? isnan(nn[r][k]) : nn[r][k] == nw[r][k];
    CHECK_MSG(nsame, "median filter with NaN");
    float med[1] = {1};
    CHECK(sg_whisper_median_filter(med, 1, 1, 6, &err) == SG_EINVAL);
    CHECK(sg_whisper_median_filter(NULL, 1, 1, 7, &err) == SG_EINVAL);
    CHECK(sg_whisper_dtw(z, 0, 3, ti, tj, &len, &err) == SG_EINVAL);
    CHECK(sg_whisper_dtw(NULL, 2, 3, ti, tj, &len, &err) == SG_EINVAL);
}

/* alignment pass vs the decoding of the same number of tokens */
static void cost(sg_whisper *m, json_t *c, const char *what)
{
    segs S;
    segs_load(c, &S);
    size_t nt = 0;
    const int32_t eot = sg_whisper_get_info(m)->eot;
    for (size_t i = 0; i < S.n; i++)
        for (size_t k = 0; k < S.s[i].n_tokens; k++)
            nt += S.s[i].tokens[k] < eot;
    sg_error err = {0};
    double best_a = 1e30, best_d = 1e30;
    for (int rep = 0; rep < (check_reduced() ? 1 : 5); rep++) {
        float last = 0;
        double t0 = now_ms();
        sg_whisper_add_word_timestamps(m, S.s, S.n, S.sot, S.n_sot, S.num_frames, &last, &err);
        double t1 = now_ms();
        sg_whisper_decode_opts o = {S.n_sot > 1 ? S.sot[1] : -1, false, (int)nt};
        sg_whisper_result r;
        /* the decoder forced to nt steps: the reference's greedy run ends at eot after 8 */
        CHECK(sg_whisper_decode(m, &o, &r, &err) == SG_OK);
        double t2 = now_ms();
        const double per = (t2 - t1) / (double)(r.n_logprobs ? r.n_logprobs : 1);
        sg_whisper_result_free(&r);
        if (t1 - t0 < best_a)
            best_a = t1 - t0;
        if (per * (double)nt < best_d)
            best_d = per * (double)nt;
    }
    fprintf(stderr, "%s: word timestamps for %zu text tokens %.3f ms, decoding them %.3f ms "
            "(%.0f%%)\n", what, nt, best_a, best_d, 100.0 * best_a / best_d);
    segs_free(&S);
}

static void count_qk(void *ctx, int layer, const int *k, float *const *qk, int count, int n,
                     int cols)
{
    (void)layer, (void)k, (void)qk, (void)n, (void)cols;
    *(int *)ctx += count;
}

static void test_errors(sg_whisper *m, json_t *c, const float *mel, int frames, sg_pool *pool)
{
    segs S;
    segs_load(c, &S);
    sg_error err = {0};
    float last = 0;
    CHECK(sg_whisper_add_word_timestamps(NULL, S.s, S.n, S.sot, S.n_sot, S.num_frames, &last, &err) == SG_EINVAL);
    CHECK(sg_whisper_add_word_timestamps(m, NULL, 2, S.sot, S.n_sot, S.num_frames, &last, &err) == SG_EINVAL);
    CHECK(sg_whisper_add_word_timestamps(m, S.s, S.n, NULL, S.n_sot, S.num_frames, &last, &err) == SG_EINVAL);
    CHECK(sg_whisper_add_word_timestamps(m, S.s, S.n, S.sot, 0, S.num_frames, &last, &err) == SG_EINVAL);
    CHECK(sg_whisper_add_word_timestamps(m, S.s, S.n, S.sot, S.n_sot, 1, &last, &err) == SG_EINVAL);
    CHECK(sg_whisper_add_word_timestamps(m, S.s, S.n, S.sot, S.n_sot, S.num_frames, NULL, &err) == SG_EINVAL);
    int32_t bad_sot[1] = {1 << 20};
    CHECK(sg_whisper_add_word_timestamps(m, S.s, S.n, bad_sot, 1, S.num_frames, &last, &err) == SG_EINVAL);
    int32_t keep = S.s[0].tokens[1];
    S.s[0].tokens[1] = -3;
    CHECK(sg_whisper_add_word_timestamps(m, S.s, S.n, S.sot, S.n_sot, S.num_frames, &last, &err) == SG_EINVAL);
    S.s[0].tokens[1] = keep;
    /* no segments: nothing to do */
    CHECK(sg_whisper_add_word_timestamps(m, S.s, 0, S.sot, S.n_sot, S.num_frames, &last, &err) == SG_OK);
    /* segments without text: no words, times kept */
    sg_whisper_segment only_ts = S.s[S.n - 1];
    only_ts.words = NULL;
    only_ts.n_words = 0;
    CHECK(sg_whisper_add_word_timestamps(m, &only_ts, 1, S.sot, S.n_sot, S.num_frames, &last, &err) == SG_OK);
    CHECK_EQ_INT(only_ts.n_words, 0);
    CHECK(only_ts.start == S.s[S.n - 1].start && only_ts.end == S.s[S.n - 1].end);
    /* cross_qk's own checks */
    sg_whisper_head h[2] = {{7, 0}, {0, 0}};
    int calls = 0;
    CHECK(sg_whisper_cross_qk(m, S.sot, 1, h, 1, 4, count_qk, 0, 0, NULL, &calls, &err) == SG_EINVAL);
    h[0].layer = 0;
    CHECK(sg_whisper_cross_qk(m, S.sot, 1, h, 1, 0, count_qk, 0, 0, NULL, &calls, &err) == SG_EINVAL);
    CHECK(sg_whisper_cross_qk(m, S.sot, 0, h, 1, 4, count_qk, 0, 0, NULL, &calls, &err) == SG_EINVAL);
    CHECK(sg_whisper_cross_qk(m, S.sot, 1, h, 2, 4, count_qk, 0, 0, NULL, &calls, &err) == SG_EINVAL);
    CHECK(strstr(err.msg, "twice") != NULL);
    CHECK(sg_whisper_cross_qk(m, S.sot, 1, h, 1, 4, NULL, 0, 0, NULL, &calls, &err) == SG_EINVAL);
    CHECK_EQ_INT(calls, 0);
    h[1].layer = 1;
    CHECK(sg_whisper_cross_qk(m, S.sot, 1, h, 2, 4, count_qk, 0, 0, NULL, &calls, &err) == SG_OK);
    CHECK_EQ_INT(calls, 2); /* once per layer with an asked head */
    /* nothing encoded yet */
    sg_whisper *fresh = sg_whisper_load("tests/fixtures/whisper_en/ggml-model.bin", SG_PREC_F32, pool, &err);
    CHECK(fresh != NULL);
    if (fresh) {
        CHECK(sg_whisper_add_word_timestamps(fresh, S.s, S.n, S.sot, S.n_sot, S.num_frames, &last, &err) == SG_EINVAL);
        CHECK(strstr(err.msg, "encode") != NULL);
        sg_whisper_free(fresh);
    }
    /* a model without vocabulary cannot name words */
    char dir[512];
    CHECK(make_hf("tests/fixtures/whisper_en", "novocab", NULL, NULL, dir, sizeof dir) == 0);
    sg_whisper *nv = sg_whisper_load(dir, SG_PREC_F32, pool, &err);
    CHECK(nv != NULL);
    if (nv) {
        CHECK(sg_whisper_encode(nv, mel, frames, NULL, &err) == SG_OK);
        CHECK(sg_whisper_add_word_timestamps(nv, S.s, S.n, S.sot, S.n_sot, S.num_frames, &last, &err) == SG_EINVAL);
        CHECK(strstr(err.msg, "vocabulary") != NULL);
        sg_whisper_free(nv);
    }
    remove_hf(dir);
    segs_free(&S);
}

/* generation_config.json's alignment_heads: malformed ones refuse to load, null is the default */
static void test_heads_config(sg_pool *pool)
{
    static const char *const bad[] = {
        "{\"alignment_heads\": [[0]]}", "{\"alignment_heads\": [[2, 0]]}",
        "{\"alignment_heads\": [[0, 2]]}", "{\"alignment_heads\": \"all\"}",
        "{\"alignment_heads\": []}", "{\"alignment_heads\": [[0, -1]]}",
        "{\"alignment_heads\": [[0, 1.5]]}", "{\"alignment_heads\": [[0, 1], 3]}"};
    sg_error err = {0};
    char dir[512];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(make_hf("tests/fixtures/whisper_en", "badheads", NULL, bad[i], dir, sizeof dir) == 0);
        sg_whisper *m = sg_whisper_load(dir, SG_PREC_F32, pool, &err);
        CHECK_MSG(m == NULL && err.code == SG_EINVAL && strstr(err.msg, "alignment"),
                  "%s loaded (%s)", bad[i], err.msg);
        sg_whisper_free(m);
        remove_hf(dir);
    }
    CHECK(make_hf("tests/fixtures/whisper_en", "nullheads", NULL,
                  "{\"alignment_heads\": null, \"suppress_tokens\": [1]}", dir, sizeof dir) == 0);
    sg_whisper *m = sg_whisper_load(dir, SG_PREC_F32, pool, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (m) {
        int n = 0;
        const sg_whisper_head *h = sg_whisper_alignment_heads(m, &n);
        CHECK(n == 2 && h[0].layer == 1 && h[0].head == 0 && h[1].layer == 1 && h[1].head == 1);
        sg_whisper_free(m);
    }
    remove_hf(dir);
}

static void test_fixture(const char *fixture, sg_pool *pool, const float *mel, int frames)
{
    char path[512];
    snprintf(path, sizeof path, "%s/expected_words.json", fixture);
    json_error_t je;
    json_t *exp = json_load_file(path, 0, &je);
    CHECK_MSG(exp != NULL, "%s: %s", path, je.text);
    if (!exp)
        return;
    const char *tiktoken = json_string_value(json_object_get(exp, "tiktoken"));
    json_t *cases = json_object_get(exp, "cases");
    const bool reduced = check_reduced();
    for (int fmt = 0; fmt < 2; fmt++) {
        const char *key;
        json_t *c;
        int n_case = 0;
        json_object_foreach(cases, key, c)
        {
            json_t *fh = json_object_get(c, "file_heads");
            if (fmt == 0 && json_is_true(json_object_get(c, "hf_only")))
                continue; /* pieces of characters: the ggml vocabulary lost their bytes */
            if (reduced && fmt == 1 && !json_is_array(fh) &&
                !json_is_true(json_object_get(c, "hf_only")))
                continue; /* run in the ggml format */
            const bool first = n_case++ == 0;
            char dir[512], what[256], *gen = NULL;
            if (json_is_array(fh)) {
                if (fmt == 0)
                    continue; /* a ggml file names no heads */
                char *h = json_dumps(fh, JSON_COMPACT);
                size_t l = strlen(h) + 64;
                gen = malloc(l);
                snprintf(gen, l, "{\"alignment_heads\": %s}", h);
                free(h);
            }
            if (fmt == 0)
                snprintf(dir, sizeof dir, "%s/ggml-model.bin", fixture);
            else
                CHECK(make_hf(fixture, key, tiktoken, gen, dir, sizeof dir) == 0);
            free(gen);
            snprintf(what, sizeof what, "%s %s %s", fixture, fmt ? "hf" : "ggml", key);
            sg_error err = {0};
            sg_whisper *m = sg_whisper_load(dir, SG_PREC_F32, pool, &err);
            CHECK_MSG(m != NULL, "%s: %s", what, err.msg);
            if (m) {
                /* the heads in use */
                int n = 0;
                const sg_whisper_head *h = sg_whisper_alignment_heads(m, &n);
                json_t *wh = json_object_get(c, "heads");
                bool same = n == (int)json_array_size(wh);
                for (int k = 0; same && k < n; k++)
                    same = h[k].layer == json_integer_value(json_array_get(json_array_get(wh, (size_t)k), 0)) &&
                           h[k].head == json_integer_value(json_array_get(json_array_get(wh, (size_t)k), 1));
                CHECK_MSG(same, "%s: alignment heads differ", what);
                CHECK(sg_whisper_encode(m, mel, frames, NULL, &err) == SG_OK);
                check_case(m, c, what);
                if (fmt == 0 && strcmp(key, "en") == 0) {
                    cost(m, c, what);
                    test_errors(m, c, mel, frames, pool);
                }
                sg_whisper_free(m);
            }
            if (fmt == 1)
                remove_hf(dir);
            /* int8: runs, same words (times may move) */
            if (fmt == 0 && (first || !reduced)) {
                m = sg_whisper_load(dir, SG_PREC_Q8, pool, &err);
                CHECK_MSG(m != NULL, "%s int8: %s", what, err.msg);
                if (m) {
                    CHECK(sg_whisper_encode(m, mel, frames, NULL, &err) == SG_OK);
                    segs S;
                    segs_load(c, &S);
                    float last = 0;
                    CHECK_MSG(sg_whisper_add_word_timestamps(m, S.s, S.n, S.sot, S.n_sot,
                                                             S.num_frames, &last, &err) == SG_OK,
                              "%s int8: %s", what, err.msg);
                    json_t *want = json_object_get(c, "segments");
                    int total = 0, same_t = 0;
                    double dt = 0;
                    for (size_t i = 0; i < S.n; i++) {
                        json_t *ww = json_object_get(json_array_get(want, i), "words");
                        CHECK_EQ_INT(S.s[i].n_words, json_array_size(ww));
                        for (size_t k = 0; k < S.s[i].n_words && k < json_array_size(ww); k++) {
                            json_t *w = json_array_get(ww, k);
                            CHECK(strcmp(S.s[i].words[k].word,
                                         json_string_value(json_object_get(w, "word"))) == 0);
                            const double d = fabs(S.s[i].words[k].start -
                                                  json_number_value(json_object_get(w, "start"))) +
                                             fabs(S.s[i].words[k].end -
                                                  json_number_value(json_object_get(w, "end")));
                            same_t += d < 1e-4;
                            dt += d / 2;
                            total++;
                        }
                    }
                    fprintf(stderr, "%s int8: %d/%d words with the f32 times, mean |dt| %.3f s\n",
                            what, same_t, total, total ? dt / total : 0.0);
                    segs_free(&S);
                    sg_whisper_free(m);
                }
            }
        }
    }
    if (json_object_get(exp, "dtw"))
        test_units(exp);
    json_decref(exp);
}

/* SG_WHISPER_TIMING_MODEL=dir (e.g. py/gen_whisper_base.py's real-size random base.en): the
 * cost of word timestamps for the greedy transcript of jfk.wav next to decoding it */
static void cost_real(const char *path, sg_pool *pool, const float *mel, int frames)
{
    for (int q = 0; q < 2; q++) {
        sg_error err = {0};
        sg_whisper *m = sg_whisper_load(path, q ? SG_PREC_Q8 : SG_PREC_F32, pool, &err);
        CHECK_MSG(m != NULL, "%s: %s", path, err.msg);
        if (!m)
            return;
        const sg_whisper_info *I = sg_whisper_get_info(m);
        CHECK(sg_whisper_encode(m, mel, frames, NULL, &err) == SG_OK);
        double best_a = 1e30, best_d = 1e30;
        size_t nt = 0, nw = 0;
        for (int rep = 0; rep < 3; rep++) {
            sg_whisper_result r;
            const double t0 = now_ms();
            CHECK(sg_whisper_decode_greedy(m, 0, &r, &err) == SG_OK);
            const double t1 = now_ms();
            int32_t *tok = malloc((r.n + 2) * sizeof *tok);
            tok[0] = I->no_timestamps + 1;
            memcpy(tok + 1, r.tokens, r.n * sizeof *tok);
            tok[r.n + 1] = I->no_timestamps + 1 + 550;
            sg_whisper_segment seg = {.start = 0, .end = 11, .tokens = tok, .n_tokens = r.n + 2};
            int32_t sot[3] = {I->sot, -1, -1};
            int n_sot = 1;
            if (I->multilingual) {
                sot[1] = r.language;
                sot[2] = I->transcribe;
                n_sot = 3;
            }
            float last = 0;
            const double t2 = now_ms();
            CHECK_MSG(sg_whisper_add_word_timestamps(m, &seg, 1, sot, n_sot, 1100, &last, &err) ==
                          SG_OK, "%s", err.msg);
            const double t3 = now_ms();
            nt = r.n;
            nw = seg.n_words;
            for (size_t w = 0; w < seg.n_words; w++)
                free(seg.words[w].word);
            free(seg.words);
            free(tok);
            sg_whisper_result_free(&r);
            best_d = t1 - t0 < best_d ? t1 - t0 : best_d;
            best_a = t3 - t2 < best_a ? t3 - t2 : best_a;
        }
        fprintf(stderr, "%s %s: %zu tokens, %zu words: word timestamps %.2f ms, greedy decoding "
                "%.2f ms (+%.1f%%)\n", path, q ? "int8" : "f32", nt, nw, best_a, best_d,
                100.0 * best_a / best_d);
        sg_whisper_free(m);
    }
}

int main(void)
{
    int frames = 0;
    float *mel = sgt_jfk_mel(&frames);
    CHECK(mel != NULL && frames == 3000);
    if (!mel)
        return check_report("test_whisper_timing");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sg_whisper_timing_XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL);
    sg_pool *pool = sg_pool_new(2);
    test_fixture("tests/fixtures/whisper_en", pool, mel, frames);
    test_fixture("tests/fixtures/whisper_ml", pool, mel, frames);
    test_heads_config(pool);
    const char *real = getenv("SG_WHISPER_TIMING_MODEL");
    if (real && *real)
        cost_real(real, pool, mel, frames);
    rmdir(tmpdir);
    sg_pool_free(pool);
    free(mel);
    return check_report("test_whisper_timing");
}
