/* Tests of Silero VAD (models/silero_vad.h) and its backend (agent/vad_silero.h) with the real
 * v6.2 weights: probabilities on jfk.wav against our PyTorch reference (py/
 * silero_reference.py, fixtures in tests/fixtures/silero/), the segment rules against the
 * reference's get_speech_timestamps on random cases, speech found and nothing found in silence,
 * noise and a tone, and the loader refusing missing, truncated and garbled files.
 * SG_TEST_REDUCED=1 (check.h; the runs under qemu): silence, noise and the tone 4 s long instead
 * of 11 s, and the streaming probabilities in 4 of the 10 chunkings (1600, 7, 513, random). */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/vad_silero.h"
#include "check.h"
#include "media/audio.h"
#include "models/silero_vad.h"

#define MODEL "../shared/models/silero-vad-v6.2.0-ggml.bin"
#define JFK "../shared/data/audio/jfk.wav"
#define PROBS_FIXTURE "tests/fixtures/silero/jfk_probs.txt"
#define CASES_FIXTURE "tests/fixtures/silero/segment_cases.txt"
#define RATE 16000

/* ---- helpers ---- */

static float *run_probs(const sg_silero *m, const float *pcm, size_t n, size_t *np)
{
    float *p = NULL;
    sg_error err = {0};
    sg_status st = sg_silero_probs(m, pcm, n, &p, np, &err);
    CHECK_MSG(st == SG_OK, "probs: %s", err.msg);
    return p;
}

static size_t run_segments(const float *p, size_t np, size_t n, const sg_vad_params *params,
                           sg_vad_segment **segs)
{
    size_t ns = 0;
    sg_error err = {0};
    sg_status st = sg_vad_segments(p, np, n, params, segs, &ns, &err);
    CHECK_MSG(st == SG_OK, "segments: %s", err.msg);
    return ns;
}

static void check_probs_valid(const float *p, size_t np, const char *what)
{
    size_t bad = 0;
    for (size_t i = 0; i < np; i++)
        if (!(p[i] >= 0.0f && p[i] <= 1.0f))
            bad++;
    CHECK_MSG(bad == 0, "%s: %zu probabilities outside [0, 1]", what, bad);
}

/* Probabilities and segments of n samples: no segment expected. */
static void check_no_speech(const sg_silero *m, sg_vad_backend *be, const float *pcm, size_t n,
                            const char *what)
{
    size_t np;
    float *p = run_probs(m, pcm, n, &np);
    CHECK_EQ_INT(np, (n + 511) / 512);
    check_probs_valid(p, np, what);
    float maxp = 0;
    for (size_t i = 0; i < np; i++)
        maxp = p[i] > maxp ? p[i] : maxp;
    sg_vad_segment *s = NULL;
    size_t ns = run_segments(p, np, n, NULL, &s);
    CHECK_MSG(ns == 0 && s == NULL, "%s: %zu segments (max probability %.3f)", what, ns, maxp);
    sg_speech_segment *bs = NULL;
    size_t nbs = 99;
    sg_error err = {0};
    CHECK(be->segments(be->self, pcm, n, &bs, &nbs, &err) == SG_OK);
    CHECK_MSG(nbs == 0 && bs == NULL, "%s: backend gave %zu segments", what, nbs);
    free(s);
    free(bs);
    free(p);
}

/* ---- the real model on real and synthetic audio ---- */

typedef struct thread_job {
    const sg_silero *m;
    const float *pcm;
    size_t n;
    float *p;
    size_t np;
} thread_job;

static void *thread_probs(void *arg)
{
    thread_job *j = arg;
    sg_error err;
    if (sg_silero_probs(j->m, j->pcm, j->n, &j->p, &j->np, &err) != SG_OK)
        j->p = NULL;
    return NULL;
}

static void test_jfk(const sg_silero *m, sg_vad_backend *be)
{
    size_t len;
    uint8_t *wav = check_read_file(JFK, &len);
    CHECK(wav != NULL);
    if (!wav)
        return;
    sg_audio a;
    sg_error err = {0};
    CHECK(sg_audio_decode(wav, len, SG_AUDIO_AUTO, 0, 0, &a, &err) == SG_OK);
    free(wav);
    CHECK_EQ_INT(a.n, 176000);

    size_t np;
    float *p = run_probs(m, a.samples, a.n, &np);
    CHECK_EQ_INT(np, 344);
    check_probs_valid(p, np, "jfk");

    /* against the PyTorch reference: probabilities and its segments (samples) */
    size_t flen;
    char *fx = check_read_file(PROBS_FIXTURE, &flen);
    CHECK(fx != NULL);
    size_t nref = 0, nrefseg = 0;
    long long refseg[16][2];
    double maxdiff = 0;
    for (char *line = fx ? strtok(fx, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        long long s0, s1;
        if (line[0] == '#')
            continue;
        if (sscanf(line, "segment %lld %lld", &s0, &s1) == 2) {
            if (nrefseg < 16) {
                refseg[nrefseg][0] = s0;
                refseg[nrefseg][1] = s1;
            }
            nrefseg++;
            continue;
        }
        double ref = strtod(line, NULL);
        if (nref < np && fabs(ref - p[nref]) > maxdiff)
            maxdiff = fabs(ref - p[nref]);
        nref++;
    }
    free(fx);
    CHECK_EQ_INT(nref, np);
    CHECK_MSG(maxdiff <= 1e-4, "max |p - reference| = %g", maxdiff);
    if (getenv("SG_TEST_VERBOSE"))
        fprintf(stderr, "jfk: %zu windows, max |p - reference| = %.3g\n", np, maxdiff);

    sg_vad_segment *s = NULL;
    size_t ns = run_segments(p, np, a.n, NULL, &s);
    CHECK_EQ_INT(ns, nrefseg);
    for (size_t i = 0; i < ns && i < nrefseg && i < 16; i++) {
        /* the same rules on probabilities within 1e-4: the same windows, allow one either way */
        CHECK_NEAR(s[i].start_s * RATE, (double)refseg[i][0], 512);
        CHECK_NEAR(s[i].end_s * RATE, (double)refseg[i][1], 512);
    }
    /* the speech is there: it starts at about 0.3 s and ends at about 10.6 s, nothing starts in
     * the trailing silence, every window the model calls speech in [0.3, 10.6] is inside a
     * segment, and the segments span all of [0.3, 10.6]. (Their union covers ~77% of it: JFK
     * pauses 0.5-1 s between phrases, probability < 0.1, and silero's rules end a segment after
     * 100 ms of silence.) */
    CHECK(ns >= 1);
    if (ns >= 1) {
        CHECK_MSG(s[0].start_s >= 0.2 && s[0].start_s <= 0.4, "first start %.3f", s[0].start_s);
        CHECK_MSG(s[ns - 1].end_s >= 10.5 && s[ns - 1].end_s <= 10.7, "last end %.3f",
                  s[ns - 1].end_s);
        double covered = 0;
        for (size_t i = 0; i < ns; i++) {
            CHECK_MSG(s[i].start_s <= 10.8, "segment %zu starts at %.3f", i, s[i].start_s);
            CHECK(s[i].end_s > s[i].start_s);
            if (i > 0)
                CHECK(s[i].start_s >= s[i - 1].end_s);
            const double lo = fmax(s[i].start_s, 0.3), hi = fmin(s[i].end_s, 10.6);
            covered += hi > lo ? hi - lo : 0;
        }
        const double span = fmin(s[ns - 1].end_s, 10.6) - fmax(s[0].start_s, 0.3);
        CHECK_MSG(span >= 0.9 * 10.3, "segments span %.2f s of [0.3, 10.6]", span);
        CHECK_MSG(covered >= 0.7 * 10.3, "segments cover %.2f s of [0.3, 10.6]", covered);
        if (getenv("SG_TEST_VERBOSE"))
            fprintf(stderr, "jfk: %zu segments, union covers %.1f%% of [0.3, 10.6]\n", ns,
                    100.0 * covered / 10.3);
        size_t missed = 0;
        for (size_t w = 0; w < np; w++) {
            const double t = w * 512.0 / RATE;
            if (p[w] < 0.5 || t < 0.3 || t > 10.6)
                continue;
            int in = 0;
            for (size_t i = 0; i < ns; i++)
                in |= t >= s[i].start_s && t < s[i].end_s;
            missed += !in;
        }
        CHECK_MSG(missed == 0, "%zu speech windows outside every segment", missed);
    }

    /* the backend gives the same segments */
    sg_speech_segment *bs = NULL;
    size_t nbs = 0;
    CHECK(be->segments(be->self, a.samples, a.n, &bs, &nbs, &err) == SG_OK);
    CHECK_EQ_INT(nbs, ns);
    for (size_t i = 0; i < nbs && i < ns; i++)
        CHECK(bs[i].start_s == s[i].start_s && bs[i].end_s == s[i].end_s);
    free(bs);

    /* deterministic, and each call starts from a fresh state */
    size_t np2;
    float *noise = malloc(8000 * sizeof(float));
    for (int i = 0; i < 8000; i++)
        noise[i] = (float)((i * 7919 % 2000) - 1000) / 4000.0f;
    float *pn = run_probs(m, noise, 8000, &np2);
    free(pn);
    float *p2 = run_probs(m, a.samples, a.n, &np2);
    CHECK(np2 == np && p2 && memcmp(p, p2, np * sizeof(float)) == 0);
    free(p2);
    free(noise);

    /* the model is shared read-only: calls on several threads at once give the same numbers */
    pthread_t th[3];
    thread_job jobs[3];
    for (int k = 0; k < 3; k++) {
        jobs[k] = (thread_job){m, a.samples, a.n, NULL, 0};
        CHECK(pthread_create(&th[k], NULL, thread_probs, &jobs[k]) == 0);
    }
    for (int k = 0; k < 3; k++) {
        pthread_join(th[k], NULL);
        CHECK(jobs[k].np == np && jobs[k].p && memcmp(jobs[k].p, p, np * sizeof(float)) == 0);
        free(jobs[k].p);
    }

    /* a prefix of the audio gives the prefix of the probabilities (only the last, partial window
     * can differ: it is zero-padded) */
    const size_t cut = 100 * 512 + 300;
    float *p3 = run_probs(m, a.samples, cut, &np2);
    CHECK_EQ_INT(np2, 101);
    CHECK(p3 && memcmp(p, p3, 100 * sizeof(float)) == 0);
    free(p3);

    free(s);
    free(p);
    sg_audio_free(&a);
}

static void test_no_speech(const sg_silero *m, sg_vad_backend *be)
{
    const size_t n = (check_reduced() ? 4 : 11) * RATE;
    float *x = calloc(n, sizeof(float));
    check_no_speech(m, be, x, n, "silence");

    uint64_t s = 0x9E3779B97F4A7C15ull; /* white noise, uniform in [-0.1, 0.1], seeded */
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 0.2 - 0.1);
    }
    check_no_speech(m, be, x, n, "white noise");

    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.5 * sin(2.0 * M_PI * 440.0 * (double)i / RATE));
    check_no_speech(m, be, x, n, "440 Hz tone");
    free(x);
}

static void test_probs_edges(const sg_silero *m)
{
    float x[1100] = {0};
    sg_error err = {0};
    float *p = (float *)1;
    size_t np = 7;
    CHECK(sg_silero_probs(m, x, 0, &p, &np, &err) == SG_OK && p == NULL && np == 0);
    const size_t sizes[][2] = {{1, 1}, {511, 1}, {512, 1}, {513, 2}, {1024, 2}, {1025, 3}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        p = run_probs(m, x, sizes[i][0], &np);
        CHECK_EQ_INT(np, sizes[i][1]);
        check_probs_valid(p, np, "short");
        free(p);
    }
    x[700] = NAN;
    CHECK(sg_silero_probs(m, x, 1100, &p, &np, &err) == SG_EINVAL && p == NULL && np == 0);
    CHECK(strstr(err.msg, "700") != NULL);
    x[700] = INFINITY;
    CHECK(sg_silero_probs(m, x, 1100, &p, &np, &err) == SG_EINVAL);
    CHECK(sg_silero_probs(m, NULL, 10, &p, &np, &err) == SG_EINVAL);
    /* huge but finite: an error or probabilities, never NaN; loud clipping is just audio */
    const float amps[] = {1e30f, 1e19f, 1e6f, 8.0f};
    for (size_t k = 0; k < sizeof amps / sizeof amps[0]; k++) {
        for (int i = 0; i < 1100; i++)
            x[i] = (i / 37) % 2 ? amps[k] : -amps[k];
        p = NULL;
        sg_status st = sg_silero_probs(m, x, 1100, &p, &np, &err);
        CHECK(st == SG_EINVAL || st == SG_OK);
        if (st == SG_OK)
            check_probs_valid(p, np, "loud");
        else
            CHECK(p == NULL && strstr(err.msg, "overflow") != NULL);
        if (getenv("SG_TEST_VERBOSE"))
            fprintf(stderr, "amplitude %g: %s\n", amps[k], st == SG_OK ? "ok" : err.msg);
        free(p);
    }
    CHECK(sg_silero_probs(NULL, x, 10, &p, &np, &err) == SG_EINVAL);
}

/* ---- segment rules ---- */

static bool tracker_matches(const float *p, size_t np, size_t n, const sg_vad_params *prm,
                            const sg_vad_segment *segs, size_t ns);

/* Random cases from py/silero_reference.py --segment-cases: our segments must be exactly
 * the reference's, in samples. */
static void test_segment_cases(void)
{
    size_t len;
    char *fx = check_read_file(CASES_FIXTURE, &len);
    CHECK(fx != NULL);
    if (!fx)
        return;
    int cases = 0, failed = 0, stream_cases = 0, stream_failed = 0;
    char *save = NULL;
    for (char *line = strtok_r(fx, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "case ", 5) != 0)
            continue;
        size_t n, np;
        sg_vad_params prm;
        if (sscanf(line, "case %zu %f %f %d %d %d %zu", &n, &prm.threshold, &prm.neg_threshold,
                   &prm.min_speech_ms, &prm.min_silence_ms, &prm.speech_pad_ms, &np) != 7) {
            CHECK_MSG(0, "bad case line: %s", line);
            break;
        }
        char *pl = strtok_r(NULL, "\n", &save), *el = pl ? strtok_r(NULL, "\n", &save) : NULL;
        if (!el)
            break;
        float *p = malloc(np * sizeof(float));
        char *q = pl;
        for (size_t i = 0; i < np; i++)
            p[i] = strtof(q, &q);
        sg_vad_segment *s = NULL;
        size_t ns = run_segments(p, np, n, &prm, &s);
        if (prm.min_silence_ms + 32 >= 2 * prm.speech_pad_ms) {
            /* the streaming tracker must end the same segments (see silero_vad.h) */
            stream_cases++;
            if (!tracker_matches(p, np, n, &prm, s, ns)) {
                stream_failed++;
                fprintf(stderr, "segment case %d: the streaming tracker differs\n", cases);
            }
        }
        int want;
        char *e = el + 7;
        want = (int)strtol(e, &e, 10);
        int ok = (size_t)want == ns;
        for (int i = 0; ok && i < want; i++) {
            long long s0 = strtoll(e, &e, 10), s1 = strtoll(e, &e, 10);
            ok = llround(s[i].start_s * RATE) == s0 && llround(s[i].end_s * RATE) == s1;
        }
        if (!ok) {
            failed++;
            fprintf(stderr, "segment case %d differs: got %zu segments, want: %s\n", cases, ns, el);
        }
        cases++;
        free(s);
        free(p);
    }
    free(fx);
    CHECK(cases >= 40);
    CHECK_EQ_INT(failed, 0);
    CHECK_MSG(stream_cases >= 10, "only %d cases for the streaming tracker", stream_cases);
    CHECK_EQ_INT(stream_failed, 0);
    if (getenv("SG_TEST_VERBOSE"))
        fprintf(stderr, "segment cases: %d, %d also streamed\n", cases, stream_cases);
}

static void test_segment_rules(void)
{
    /* hand-made: 0.5 is speech, 0.35 is not silence (p < 0.35 is); 16 windows = 8192 samples */
    float p[16];
    sg_vad_segment *s = NULL;
    size_t ns;
    /* speech in windows 2..9 (8 windows = 4096 samples > 4000), silence after */
    for (int i = 0; i < 16; i++)
        p[i] = i >= 2 && i <= 9 ? 0.5f : 0.1f;
    ns = run_segments(p, 16, 8192, NULL, &s);
    CHECK_EQ_INT(ns, 1);
    if (ns == 1) {
        CHECK_EQ_INT(llround(s[0].start_s * RATE), 2 * 512 - 480);
        CHECK_EQ_INT(llround(s[0].end_s * RATE), 10 * 512 + 480);
    }
    free(s);
    /* 7 windows = 3584 samples: too short */
    p[9] = 0.1f;
    ns = run_segments(p, 16, 8192, NULL, &s);
    CHECK_EQ_INT(ns, 0);
    free(s);
    /* values between the thresholds keep a segment going */
    for (int i = 9; i < 16; i++)
        p[i] = 0.36f;
    ns = run_segments(p, 16, 8100, NULL, &s);
    CHECK_EQ_INT(ns, 1);
    if (ns == 1)
        CHECK_EQ_INT(llround(s[0].end_s * RATE), 8100); /* to the end, clamped */
    free(s);

    /* bad input */
    sg_error err = {0};
    sg_vad_params bad = sg_vad_params_default();
    bad.threshold = 1.5f;
    CHECK(sg_vad_segments(p, 16, 8192, &bad, &s, &ns, &err) == SG_EINVAL);
    bad = sg_vad_params_default();
    bad.min_silence_ms = -1;
    CHECK(sg_vad_segments(p, 16, 8192, &bad, &s, &ns, &err) == SG_EINVAL);
    bad = sg_vad_params_default();
    bad.threshold = NAN;
    CHECK(sg_vad_segments(p, 16, 8192, &bad, &s, &ns, &err) == SG_EINVAL);
    CHECK(sg_vad_segments(p, 16, 9000, NULL, &s, &ns, &err) == SG_EINVAL); /* 18 windows */
    CHECK(sg_vad_segments(p, 16, 7680, NULL, &s, &ns, &err) == SG_EINVAL); /* 15 windows */
    CHECK(sg_vad_segments(NULL, 0, 0, NULL, &s, &ns, &err) == SG_OK && ns == 0 && s == NULL);
    CHECK(sg_vad_segments(NULL, 1, 512, NULL, &s, &ns, &err) == SG_EINVAL);
    const sg_vad_params d = sg_vad_params_default();
    CHECK(d.threshold == 0.5f && d.neg_threshold == 0.0f && d.min_speech_ms == 250 &&
          d.min_silence_ms == 100 && d.speech_pad_ms == 30);
}

/* ---- streaming ---- */

/* The tracker over probabilities one at a time: its END segments must be the batch's segs, every
 * END must follow a START of the same padded start, and the events must come in order. */
static bool tracker_matches(const float *p, size_t np, size_t n, const sg_vad_params *prm,
                            const sg_vad_segment *segs, size_t ns)
{
    sg_vad_tracker t;
    sg_error err = {0};
    if (sg_vad_tracker_init(&t, prm, &err) != SG_OK)
        return false;
    size_t k = 0;
    bool open = false, ok = true;
    long long open_start = -1, last_at = 0;
    for (size_t i = 0; i <= np && ok; i++) {
        sg_vad_tracker_event ev;
        bool have = i < np ? sg_vad_tracker_push(&t, p[i], &ev) : sg_vad_tracker_finish(&t, n, &ev);
        if (!have)
            continue;
        /* at: the end of the deciding window; finish: the audio's end, which the zero-padded
         * last window may pass by < 512 samples */
        ok = ev.at >= last_at - (i < np ? 0 : 511) && ev.at <= (long long)((i + 1) * 512);
        last_at = ev.at;
        if (ev.kind == SG_VAD_TRACK_START) {
            ok = ok && !open;
            open = true;
            open_start = ev.start;
        } else {
            ok = ok && open;
            open = false;
            if (ev.kind == SG_VAD_TRACK_END) {
                ok = ok && k < ns && ev.start == open_start && ev.end <= ev.at &&
                     ev.start == llround(segs[k].start_s * RATE) &&
                     ev.end == llround(segs[k].end_s * RATE);
                k++;
            }
        }
    }
    return ok && k == ns && !open;
}

/* Feeds pcm to a stream in chunks (sizes cycled from chunks[], 0-terminated, or random when
 * chunks is NULL), then finishes it; *np probabilities, malloc'ed. */
static float *stream_probs(sg_silero_stream *st, const float *pcm, size_t n, const size_t *chunks,
                           size_t *np)
{
    float *out = malloc(((n + 511) / 512 + 1) * sizeof(float));
    size_t got = 0, k = 0;
    uint32_t r = 99;
    sg_error err = {0};
    for (size_t at = 0; at < n;) {
        size_t c;
        if (chunks) {
            c = chunks[k++];
            if (!chunks[k])
                k = 0;
        } else {
            r = r * 1103515245u + 12345u;
            c = 1 + (r >> 8) % 5000;
        }
        if (c > n - at)
            c = n - at;
        size_t cap = sg_silero_stream_capacity(st, c), nout = 0;
        CHECK(cap == (size_t)(at + c) / 512 - (size_t)at / 512);
        if (sg_silero_stream_feed(st, pcm + at, c, out + got, cap, &nout, &err) != SG_OK || nout != cap) {
            CHECK_MSG(0, "stream feed: %s", err.msg);
            break;
        }
        got += nout;
        at += c;
        CHECK_EQ_INT(sg_silero_stream_windows(st), got);
    }
    size_t last = 0;
    CHECK(sg_silero_stream_finish(st, out + got, &last, &err) == SG_OK);
    *np = got + last;
    CHECK_EQ_INT(sg_silero_stream_windows(st), 0); /* finish resets */
    return out;
}

static void test_stream(const sg_silero *m, sg_vad_backend *be)
{
    size_t len;
    uint8_t *wav = check_read_file(JFK, &len);
    sg_audio a;
    sg_error err = {0};
    CHECK(wav && sg_audio_decode(wav, len, SG_AUDIO_AUTO, 0, 0, &a, &err) == SG_OK);
    free(wav);
    if (!wav)
        return;
    size_t nb;
    float *batch = run_probs(m, a.samples, a.n, &nb);
    sg_silero_stream *st = sg_silero_stream_new(m, &err);
    CHECK(st != NULL);
    /* bit for bit the batch probabilities, for any chunking (100 ms = 1600 samples is what the
     * phone sends) */
    const size_t chunkings[][4] = {{1600, 0}, {1, 0}, {7, 0}, {511, 0}, {512, 0}, {513, 0},
                                   {16387, 0}, {176000, 0}, {3, 1000, 40000, 0}, {0}};
    for (size_t c = 0; c < sizeof chunkings / sizeof chunkings[0]; c++) {
        const size_t *ch = chunkings[c][0] ? chunkings[c] : NULL; /* last: random sizes */
        if (check_reduced() && ch && ch[0] != 1600 && ch[0] != 7 && ch[0] != 513)
            continue;
        size_t ns;
        float *sp = stream_probs(st, a.samples, a.n, ch, &ns);
        CHECK_EQ_INT(ns, nb);
        size_t diff = 0;
        for (size_t i = 0; i < ns && i < nb; i++)
            diff += sp[i] != batch[i];
        CHECK_MSG(ns == nb && diff == 0, "chunks of %zu: %zu of %zu probabilities differ", ch ? ch[0] : 0,
                  diff, nb);
        free(sp);
    }
    /* a prefix that ends mid-window: the same zero-padded last window as the batch */
    size_t np3, ns3;
    float *p3 = run_probs(m, a.samples, 100 * 512 + 300, &np3);
    const size_t c1600[] = {1600, 0};
    float *s3 = stream_probs(st, a.samples, 100 * 512 + 300, c1600, &ns3);
    CHECK(np3 == 101 && ns3 == 101 && memcmp(p3, s3, 101 * sizeof(float)) == 0);
    free(p3);
    free(s3);

    /* bad input: a NaN is refused and changes nothing; too little room is refused */
    float chunk[1600];
    memcpy(chunk, a.samples, sizeof chunk);
    chunk[900] = NAN;
    float out[8];
    size_t nout = 5;
    CHECK(sg_silero_stream_feed(st, chunk, 1600, out, 8, &nout, &err) == SG_EINVAL && nout == 0);
    CHECK(strstr(err.msg, "900") != NULL);
    CHECK_EQ_INT(sg_silero_stream_windows(st), 0);
    CHECK(sg_silero_stream_feed(st, a.samples, 1600, out, 2, &nout, &err) == SG_EINVAL);
    size_t ns;
    float *again = stream_probs(st, a.samples, a.n, c1600, &ns);
    CHECK(ns == nb && memcmp(again, batch, nb * sizeof(float)) == 0);
    free(again);
    CHECK(sg_silero_stream_new(NULL, &err) == NULL);
    sg_silero_stream_free(st);

    /* the backend's stream: END events are the batch segments, twice (finish starts anew) */
    CHECK(be->stream_open && be->stream_feed && be->stream_finish && be->stream_close);
    sg_speech_segment *segs = NULL;
    size_t nsegs = 0;
    CHECK(be->segments(be->self, a.samples, a.n, &segs, &nsegs, &err) == SG_OK && nsegs >= 1);
    sg_vad_stream *vs = be->stream_open(be->self, &err);
    CHECK(vs != NULL);
    for (int pass = 0; pass < 2 && vs; pass++) {
        size_t k = 0, starts = 0, drops = 0;
        double last_at = 0;
        bool ok = true;
        for (size_t at = 0; at <= a.n; at += 1600) {
            sg_vad_event *ev = NULL;
            size_t nev = 0;
            sg_status s2 = at < a.n ? be->stream_feed(vs, a.samples + at, a.n - at < 1600 ? a.n - at : 1600,
                                                      &ev, &nev, &err)
                                    : be->stream_finish(vs, &ev, &nev, &err);
            CHECK(s2 == SG_OK);
            for (size_t i = 0; i < nev; i++) {
                ok = ok && ev[i].at_s >= last_at && ev[i].at_s <= (double)(at + 1600) / RATE + 1e-9;
                last_at = ev[i].at_s;
                if (ev[i].kind == SG_VAD_EV_START) {
                    starts++;
                } else if (ev[i].kind == SG_VAD_EV_DROP) {
                    drops++;
                } else {
                    ok = ok && k < nsegs && ev[i].start_s == segs[k].start_s &&
                         ev[i].end_s == segs[k].end_s && ev[i].end_s <= ev[i].at_s;
                    /* end-pointing latency: decided within min silence + 2 windows of the end */
                    ok = ok && (ev[i].at_s - ev[i].end_s < 0.100 + 2 * 0.032 || at >= a.n);
                    k++;
                }
            }
            free(ev);
            if (at >= a.n)
                break;
        }
        CHECK_MSG(ok && k == nsegs && starts == k + drops, "backend stream pass %d: %zu of %zu segments",
                  pass, k, nsegs);
    }
    if (vs)
        be->stream_close(vs);
    free(segs);
    free(batch);
    sg_audio_free(&a);
}

/* ---- loader ---- */

/* Offsets of the tensor records in the file (walked here independently of the loader). */
static size_t tensor_offsets(const uint8_t *b, size_t len, size_t *off, size_t max)
{
    size_t o = 4, k = 0;
    int32_t v;
    memcpy(&v, b + o, 4);
    o += 4 + (size_t)v + 4 * 3 + 4 * 3 + 4 * 3 * 4 + 4 * 4;
    while (o + 12 <= len && k < max) {
        int32_t nd, nl, ty, ne;
        memcpy(&nd, b + o, 4);
        memcpy(&nl, b + o + 4, 4);
        memcpy(&ty, b + o + 8, 4);
        off[k++] = o;
        size_t count = 1, p = o + 12;
        for (int i = 0; i < nd; i++, p += 4) {
            memcpy(&ne, b + p, 4);
            count *= (size_t)ne;
        }
        o = p + (size_t)nl + count * (ty == 1 ? 2 : 4);
    }
    return k;
}

static void expect_refused(const uint8_t *b, size_t len, const char *needle, const char *what)
{
    sg_error err = {0};
    sg_silero *m = sg_silero_load_memory(b, len, &err);
    CHECK_MSG(m == NULL, "%s: loaded", what);
    CHECK_MSG(err.code == SG_EINVAL, "%s: code %s (%s)", what, sg_status_name(err.code), err.msg);
    if (needle)
        CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err.msg,
                  needle);
    sg_silero_free(m);
}

static void put32(uint8_t *p, int32_t v) { memcpy(p, &v, 4); }

static void test_loader(const sg_silero *ref)
{
    sg_error err = {0};
    CHECK(sg_silero_load("/nonexistent/silero.bin", &err) == NULL && err.code == SG_EIO);
    CHECK(strstr(err.msg, "/nonexistent/silero.bin") != NULL);
    CHECK(sg_silero_load("tests", &err) == NULL && err.code == SG_EIO); /* a directory */
    CHECK(sg_silero_load(JFK, &err) == NULL && err.code == SG_EINVAL); /* not a model */
    CHECK(strstr(err.msg, "magic") != NULL);
    CHECK(sg_silero_load_memory(NULL, 0, &err) == NULL && err.code == SG_EINVAL);

    size_t len;
    uint8_t *b = check_read_file(MODEL, &len);
    CHECK(b != NULL && len == 885098);
    if (!b)
        return;
    /* from memory: the same model */
    sg_silero *m = sg_silero_load_memory(b, len, &err);
    CHECK_MSG(m != NULL, "load_memory: %s", err.msg);
    if (m) {
        float x[2000];
        for (int i = 0; i < 2000; i++)
            x[i] = (float)sin(i * 0.05) * 0.3f;
        size_t n1, n2;
        float *p1 = run_probs(m, x, 2000, &n1), *p2 = run_probs(ref, x, 2000, &n2);
        CHECK(n1 == n2 && p1 && p2 && memcmp(p1, p2, n1 * sizeof(float)) == 0);
        free(p1);
        free(p2);
        sg_silero_free(m);
    }

    size_t off[32];
    const size_t nt = tensor_offsets(b, len, off, 32);
    CHECK_EQ_INT(nt, 15);
    if (nt != 15) {
        free(b);
        return;
    }

    /* truncated: in the header, at and inside every tensor record, and every 997 bytes */
    for (size_t cut = 0; cut < 300; cut++)
        expect_refused(b, cut, NULL, "truncated header");
    for (size_t i = 0; i < nt; i++) {
        char what[64];
        snprintf(what, sizeof what, "truncated at tensor %zu", i);
        expect_refused(b, off[i], "missing tensor", what);
        expect_refused(b, off[i] + 5, "truncated", what);
        expect_refused(b, off[i] + 14, "truncated", what);
        expect_refused(b, off[i] + 60, "truncated", what);
    }
    expect_refused(b, len - 1, "truncated", "last byte cut");
    for (size_t cut = 300; cut < len; cut += 997)
        expect_refused(b, cut, NULL, "truncated");

    uint8_t *g = malloc(len + 4096); /* room for a record appended */
    /* wrong magic */
    memcpy(g, b, len);
    g[0] ^= 1;
    expect_refused(g, len, "magic", "wrong magic");
    /* another model type */
    memcpy(g, b, len);
    g[8 + 7] = '8';
    expect_refused(g, len, "model type", "model type");
    /* hparams: window 512 -> 256, a kernel size, the lstm size */
    memcpy(g, b, len);
    put32(g + 8 + 10 + 12, 256);
    expect_refused(g, len, "window", "window");
    memcpy(g, b, len);
    put32(g + 8 + 10 + 12 + 12 + 8, 5);
    expect_refused(g, len, "kernel", "kernel size");
    memcpy(g, b, len);
    put32(g + 8 + 10 + 12 + 12 + 48 + 4, 64);
    expect_refused(g, len, "hidden", "lstm hidden");
    /* first tensor (encoder.0.weight, [3, 129, 128] F16): dimensions, type, name */
    memcpy(g, b, len);
    put32(g + off[0] + 12 + 4, 128);
    expect_refused(g, len, "shape", "dims");
    memcpy(g, b, len);
    put32(g + off[0], 5);
    expect_refused(g, len, "dimensions", "ndims 5");
    memcpy(g, b, len);
    put32(g + off[0], -1);
    expect_refused(g, len, "dimensions", "ndims -1");
    memcpy(g, b, len);
    put32(g + off[0] + 8, 2);
    expect_refused(g, len, "type", "type 2");
    memcpy(g, b, len);
    put32(g + off[0] + 8, 0); /* claims F32: then the bytes run into the next record */
    expect_refused(g, len, NULL, "type F32 with F16 data");
    memcpy(g, b, len);
    put32(g + off[0] + 4, 100000);
    expect_refused(g, len, "name", "name length");
    memcpy(g, b, len);
    g[off[0] + 12 + 12 + 3] = 'X';
    expect_refused(g, len, "unknown tensor", "renamed");
    memcpy(g, b, len);
    g[off[0] + 12 + 12 + 3] = 0;
    expect_refused(g, len, NULL, "NUL in name");
    /* a NaN weight (F16 0x7E00) in the first tensor's data */
    memcpy(g, b, len);
    const size_t data0 = off[0] + 12 + 12 + 36;
    g[data0 + 10] = 0x00;
    g[data0 + 11] = 0x7E;
    expect_refused(g, len, "non-finite", "NaN weight");
    /* a tensor twice: the bias of layer 0 appended again */
    memcpy(g, b, len);
    memcpy(g + len, b + off[1], off[2] - off[1]);
    expect_refused(g, len + (off[2] - off[1]), "twice", "duplicate");
    /* trailing garbage */
    memcpy(g, b, len);
    memset(g + len, 0x41, 12);
    expect_refused(g, len + 12, NULL, "trailing bytes");
    /* a tensor left out (the last one, the STFT basis) */
    expect_refused(b, off[14], "forward_basis", "missing stft");
    /* records in another order load */
    memcpy(g, b, off[0]);
    size_t o = off[0];
    memcpy(g + o, b + off[14], len - off[14]);
    o += len - off[14];
    memcpy(g + o, b + off[0], off[14] - off[0]);
    m = sg_silero_load_memory(g, len, &err);
    CHECK_MSG(m != NULL, "reordered: %s", err.msg);
    sg_silero_free(m);
    free(g);
    free(b);
}

static void test_backend(void)
{
    sg_error err = {0};
    sg_vad_params bad = sg_vad_params_default();
    bad.speech_pad_ms = -5;
    CHECK(sg_vad_silero_open(MODEL, &bad, &err) == NULL && err.code == SG_EINVAL);
    CHECK(sg_vad_silero_open("/nonexistent", NULL, &err) == NULL && err.code == SG_EIO);
    CHECK(sg_vad_silero_new(NULL, NULL, &err) == NULL);
}

int main(void)
{
    sg_error err = {0};
    sg_vad_silero *v = sg_vad_silero_open(MODEL, NULL, &err);
    CHECK_MSG(v != NULL, "load %s: %s", MODEL, err.msg);
    if (!v)
        return check_report("test_silero_vad");
    const sg_silero *m = sg_vad_silero_model(v);
    sg_vad_backend *be = sg_vad_silero_backend(v);
    CHECK(strcmp(be->name, "silero-vad-v6.2") == 0);
    CHECK(strcmp(sg_silero_version(m), "6.2.0") == 0);

    test_jfk(m, be);
    test_no_speech(m, be);
    test_probs_edges(m);
    test_segment_cases();
    test_segment_rules();
    test_stream(m, be);
    test_loader(m);
    test_backend();
    sg_vad_silero_free(v);
    return check_report("test_silero_vad");
}
