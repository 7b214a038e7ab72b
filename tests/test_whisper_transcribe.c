/* openai/whisper's transcribe() (models/whisper_transcribe.h) against our PyTorch reference
 * (py/whisper_reference.py transcribe(), expected outputs in tests/fixtures/whisper_{en,ml}/
 * transcribe.json from py/gen_whisper_transcribe_fixture.py) on the random real-vocabulary
 * fixtures, as a Hugging Face directory (config + weights of the fixture, with the
 * ../shared/tokenizers .tiktoken vocabulary linked in) and as the whisper.cpp file:
 *  - jfk.wav and jfk x 3 (33 s: seeking over several windows), defaults (every window falls back
 *    to T = 1: the seeded sampler), greedy (no log-prob threshold: conditioning on previous
 *    text), initial prompt, without timestamps, translate, a no-speech skip: in f32 the segments'
 *    seek / start / end / tokens / texts and the text equal the reference's; temperature,
 *    avg_logprob, no_speech_prob and compression_ratio within 1e-3; windows and fallbacks counted;
 *  - int8 runs without error;
 *  - sg_whisper_decode_ex without timestamps at T = 0 gives sg_whisper_decode's tokens, and the
 *    time of both is printed (the fallback loop costs nothing when the first pass is accepted);
 *  - word timestamps (models/whisper_timing.c inside transcribe(): jfk, and jfk x 3 sampled and
 *    greedy, where the next window starts at the last word's end): every word's text, start, end
 *    and probability (1e-4) and the segments' seek / start / end / tokens equal the reference's;
 *  - argument errors: SG_EINVAL with a message.
 * SG_TEST_REDUCED=1 (check.h; the runs under qemu): each fixture in one format (en as the Hugging
 * Face directory, ml as the whisper.cpp file), only the cases whose reference falls back at most
 * 3 times over at most 3 windows (the temperature loop samples up to 224 tokens a try; a seeded
 * fallback, seeking, prompts, translation, the skip and word timestamps stay), int8 (greedy) on
 * the en fixture only, of the argument checks' runs only the one without a vocabulary (greedy)
 * and the defaults on empty audio, and one repetition of the timings; all compared as above.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "check.h"
#include "media/audio.h"
#include "media/mel.h"
#include "models/whisper.h"
#include "models/whisper_priv.h"
#include "models/whisper_transcribe.h"
#include "nn/pool.h"

typedef struct input {
    float *mel;
    int frames, content;
} input;

static input make_input(int copies)
{
    input in = {0};
    size_t len = 0;
    uint8_t *wav = check_read_file("../shared/data/audio/jfk.wav", &len);
    sg_audio a = {0};
    sg_error err = {0};
    if (wav && sg_audio_decode(wav, len, SG_AUDIO_WAV, 0, 0, &a, &err) == SG_OK) {
        float *pcm = malloc(a.n * (size_t)copies * sizeof *pcm);
        for (int c = 0; pcm && c < copies; c++)
            memcpy(pcm + a.n * (size_t)c, a.samples, a.n * sizeof *pcm);
        if (pcm && sg_log_mel_padded(pcm, a.n * (size_t)copies, 80, NULL, 480000, &in.mel,
                                     &in.frames, &err) == SG_OK)
            in.content = in.frames - 3000;
        free(pcm);
        sg_audio_free(&a);
    }
    CHECK_MSG(in.mel != NULL, "mel: %s", err.msg);
    free(wav);
    return in;
}

/* A Hugging Face directory: the fixture's config and weights, and the real .tiktoken. */
static void make_hf(const char *kind, const char *tiktoken, char *dir, size_t cap)
{
    char cwd[4096], src[8192], dst[8192];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(dir, cap, "/tmp/sg_wtr_%d_%s", (int)getpid(), kind);
    mkdir(dir, 0700);
    const char *files[3] = {"config.json", "model.safetensors", tiktoken};
    for (int i = 0; i < 3; i++) {
        if (i < 2)
            snprintf(src, sizeof src, "%s/tests/fixtures/whisper_%s/%s", cwd, kind, files[i]);
        else
            snprintf(src, sizeof src, "%s/../shared/tokenizers/%s", cwd, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        unlink(dst);
        CHECK_MSG(symlink(src, dst) == 0, "symlink %s", dst);
    }
}

static void remove_hf(const char *dir, const char *tiktoken)
{
    char p[8192];
    const char *files[3] = {"config.json", "model.safetensors", tiktoken};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static double num(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static void opts_from(const sg_whisper *m, json_t *o, sg_whisper_transcribe_opts *op)
{
    sg_whisper_transcribe_opts_default(op);
    json_t *v;
    if ((v = json_object_get(o, "logprob_threshold")))
        op->logprob_threshold = json_is_null(v) ? -INFINITY : (float)json_number_value(v);
    if ((v = json_object_get(o, "no_speech_threshold")))
        op->no_speech_threshold = json_is_null(v) ? 2.0f : (float)json_number_value(v);
    if ((v = json_object_get(o, "compression_ratio_threshold")))
        op->compression_ratio_threshold = json_is_null(v) ? 0.0f : (float)json_number_value(v);
    if ((v = json_object_get(o, "temperature"))) {
        op->n_temperatures = (int)json_array_size(v);
        for (int i = 0; i < op->n_temperatures; i++)
            op->temperatures[i] = (float)json_number_value(json_array_get(v, (size_t)i));
    }
    if ((v = json_object_get(o, "seed")))
        op->seed = (uint64_t)json_integer_value(v);
    op->initial_prompt = json_string_value(json_object_get(o, "initial_prompt"));
    op->without_timestamps = json_is_true(json_object_get(o, "without_timestamps"));
    op->translate = json_is_true(json_object_get(o, "translate"));
    op->word_timestamps = json_is_true(json_object_get(o, "word_timestamps"));
    if ((v = json_object_get(o, "condition_on_previous_text")))
        op->condition_on_previous_text = json_is_true(v);
    if ((v = json_object_get(o, "language")))
        op->language = sg_whisper_language_token(m, json_string_value(v));
}

/* The segment's words (word_timestamps cases; none otherwise): texts equal, times and
 * probabilities within 1e-4. */
static void compare_words(const char *what, size_t seg, const sg_whisper_segment *s,
                          json_t *words)
{
    CHECK_MSG(s->n_words == json_array_size(words), "%s: segment %zu has %zu words, want %zu",
              what, seg, s->n_words, json_array_size(words));
    for (size_t k = 0; k < s->n_words && k < json_array_size(words); k++) {
        const sg_whisper_word *w = &s->words[k];
        json_t *x = json_array_get(words, k);
        const char *text = json_string_value(json_object_get(x, "word"));
        CHECK_MSG(text && w->word && strcmp(w->word, text) == 0,
                  "%s: segment %zu word %zu '%s' vs '%s'", what, seg, k, w->word, text);
        CHECK_MSG(fabs(w->start - num(x, "start")) <= 1e-4 && fabs(w->end - num(x, "end")) <= 1e-4,
                  "%s: segment %zu word %zu '%s' %.4f..%.4f vs %.4f..%.4f", what, seg, k, text,
                  w->start, w->end, num(x, "start"), num(x, "end"));
        CHECK_MSG(fabs(w->probability - num(x, "probability")) <= 1e-4,
                  "%s: segment %zu word %zu '%s' probability %.6f vs %.6f", what, seg, k, text,
                  w->probability, num(x, "probability"));
    }
}

/* the temperature fallbacks of the reference's run (want: one format's expected output) */
static int ref_fallbacks(json_t *want)
{
    json_t *wins = json_object_get(want, "windows");
    int fallbacks = 0;
    for (size_t i = 0; i < json_array_size(wins); i++)
        fallbacks += (int)json_array_size(json_object_get(json_array_get(wins, i), "temperatures")) - 1;
    return fallbacks;
}

static void compare(const char *what, const sg_whisper_transcript *t, json_t *want)
{
    json_t *segs = json_object_get(want, "segments");
    CHECK_MSG(t->n_segments == json_array_size(segs), "%s: %zu segments, want %zu", what,
              t->n_segments, json_array_size(segs));
    for (size_t i = 0; i < t->n_segments && i < json_array_size(segs); i++) {
        const sg_whisper_segment *s = &t->segments[i];
        json_t *w = json_array_get(segs, i);
        json_t *tok = json_object_get(w, "tokens");
        bool same = s->n_tokens == json_array_size(tok);
        for (size_t k = 0; same && k < s->n_tokens; k++)
            same = s->tokens[k] == json_integer_value(json_array_get(tok, k));
        CHECK_MSG(same, "%s: segment %zu tokens differ (%zu vs %zu)", what, i, s->n_tokens,
                  json_array_size(tok));
        CHECK_EQ_INT(s->id, (int)json_integer_value(json_object_get(w, "id")));
        CHECK_EQ_INT(s->seek, (int)json_integer_value(json_object_get(w, "seek")));
        CHECK_NEAR(s->start, num(w, "start"), 1e-4);
        CHECK_NEAR(s->end, num(w, "end"), 1e-4);
        const char *text = json_string_value(json_object_get(w, "text"));
        CHECK_MSG(text && strcmp(s->text, text) == 0, "%s: segment %zu text '%s' vs '%s'", what,
                  i, s->text, text);
        CHECK_NEAR(s->temperature, num(w, "temperature"), 1e-6);
        CHECK_NEAR(s->avg_logprob, num(w, "avg_logprob"), 1e-3);
        CHECK_NEAR(s->no_speech_prob, num(w, "no_speech_prob"), 1e-3);
        CHECK_NEAR(s->compression_ratio, num(w, "compression_ratio"), 1e-3);
        compare_words(what, i, s, json_object_get(w, "words"));
    }
    const char *text = json_string_value(json_object_get(want, "text"));
    CHECK_MSG(text && t->text && strcmp(t->text, text) == 0, "%s: text '%s' vs '%s'", what,
              t->text, text);
    json_t *lang = json_object_get(want, "language");
    CHECK_EQ_INT(t->language, json_is_null(lang) ? -1 : (int)json_integer_value(lang));
    json_t *wins = json_object_get(want, "windows");
    CHECK_EQ_INT(t->n_windows, (int)json_array_size(wins));
    CHECK_EQ_INT(t->n_fallbacks, ref_fallbacks(want));
}

static void run_kind(const char *kind, sg_pool *pool, const input *jfk, const input *jfk3)
{
    char path[512];
    snprintf(path, sizeof path, "tests/fixtures/whisper_%s/transcribe.json", kind);
    json_error_t je;
    json_t *exp = json_load_file(path, 0, &je);
    CHECK_MSG(exp != NULL, "%s: %s", path, je.text);
    if (!exp)
        return;
    const char *tiktoken = json_string_value(json_object_get(exp, "tiktoken"));
    char dir[512], ggml[512];
    make_hf(kind, tiktoken, dir, sizeof dir);
    snprintf(ggml, sizeof ggml, "tests/fixtures/whisper_%s/ggml-model.bin", kind);
    const char *fmts[2] = {"hf", "ggml"};
    const char *paths[2] = {dir, ggml};
    const bool reduced = check_reduced();
    for (int f = 0; f < 2; f++) {
        if (reduced && f != (strcmp(kind, "en") == 0 ? 0 : 1))
            continue;
        sg_error err = {0};
        sg_whisper *m = sg_whisper_load(paths[f], SG_PREC_F32, pool, &err);
        CHECK_MSG(m != NULL, "%s: %s", paths[f], err.msg);
        if (!m)
            continue;
        CHECK(sg_whisper_has_vocab(m));
        json_t *cases = json_object_get(exp, "cases");
        for (size_t i = 0; i < json_array_size(cases); i++) {
            json_t *c = json_array_get(cases, i);
            const char *name = json_string_value(json_object_get(c, "name"));
            const input *in = strcmp(json_string_value(json_object_get(c, "audio")), "jfk3") == 0
                                  ? jfk3 : jfk;
            CHECK_EQ_INT(in->content, (int)json_integer_value(json_object_get(c, "content_frames")));
            sg_whisper_transcribe_opts o;
            opts_from(m, json_object_get(c, "options"), &o);
            json_t *want = json_object_get(c, fmts[f]);
            if (reduced && want && (ref_fallbacks(want) > 3 ||
                                    json_array_size(json_object_get(want, "windows")) > 3))
                continue;
            sg_whisper_transcript t;
            char what[256];
            snprintf(what, sizeof what, "%s %s %s", kind, name, fmts[f]);
            sg_status st = sg_whisper_transcribe(m, in->mel, in->frames, in->content, &o, &t, &err);
            CHECK_MSG(want != NULL, "%s: no expected output", what);
            CHECK_MSG(st == SG_OK, "%s: %s", what, err.msg);
            if (st == SG_OK && want)
                compare(what, &t, want);
            printf("%s: %zu segments, %d windows, %d fallbacks, encode %.1f ms decode %.1f ms "
                   "text '%.40s'\n", what, t.n_segments, t.n_windows, t.n_fallbacks, t.encode_ms,
                   t.decode_ms, t.text ? t.text : "");
            sg_whisper_transcript_free(&t);
        }
        sg_whisper_free(m);
        /* int8: runs */
        if (reduced && strcmp(kind, "en") != 0)
            continue;
        m = sg_whisper_load(paths[f], SG_PREC_Q8, pool, &err);
        CHECK_MSG(m != NULL, "%s q8: %s", paths[f], err.msg);
        if (m) {
            sg_whisper_transcribe_opts o;
            sg_whisper_transcribe_opts_default(&o);
            if (reduced) { /* greedy: no fallbacks */
                o.n_temperatures = 1;
                o.temperatures[0] = 0.0f;
            }
            sg_whisper_transcript t;
            CHECK_MSG(sg_whisper_transcribe(m, jfk3->mel, jfk3->frames, jfk3->content, &o, &t,
                                            &err) == SG_OK, "q8: %s", err.msg);
            CHECK(t.n_windows >= 2 && t.text != NULL);
            printf("%s %s int8: %zu segments, %d windows, text '%.40s'\n", kind, fmts[f],
                   t.n_segments, t.n_windows, t.text ? t.text : "");
            sg_whisper_transcript_free(&t);
            sg_whisper_free(m);
        }
    }
    remove_hf(dir, tiktoken);
    json_decref(exp);
}

/* decode_ex without timestamps at T = 0 is sg_whisper_decode; times of both, and of the
 * timestamp path (the first pass of transcribe's fallback loop). */
static void bench(sg_pool *pool, const input *jfk)
{
    sg_error err = {0};
    sg_whisper *m = sg_whisper_load("tests/fixtures/whisper_ml/ggml-model.bin", SG_PREC_F32, pool,
                                    &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m)
        return;
    const sg_whisper_info *I = sg_whisper_get_info(m);
    float *win = malloc((size_t)80 * 3000 * sizeof *win);
    for (int r = 0; r < 80; r++)
        memcpy(win + (size_t)r * 3000, jfk->mel + (size_t)r * jfk->frames, 3000 * sizeof *win);
    CHECK(sg_whisper_encode(m, win, 3000, NULL, &err) == SG_OK);
    int32_t lang = -1;
    CHECK(sg_whisper_detect_language(m, &lang, NULL, &err) == SG_OK);
    const int reps = check_reduced() ? 1 : 5;
    sg_whisper_result a = {0}, b = {0}, c = {0};
    double t0 = sg_now_ms();
    for (int i = 0; i < reps; i++) {
        sg_whisper_result_free(&a);
        sg_whisper_decode_opts o = {lang, false, 0};
        CHECK(sg_whisper_decode(m, &o, &a, &err) == SG_OK);
    }
    double t_old = (sg_now_ms() - t0) / reps;
    sg_whisper_decode_req q = {0};
    q.language = lang;
    q.without_timestamps = true;
    t0 = sg_now_ms();
    for (int i = 0; i < reps; i++) {
        sg_whisper_result_free(&b);
        CHECK(sg_whisper_decode_ex(m, &q, &b, &err) == SG_OK);
    }
    double t_new = (sg_now_ms() - t0) / reps;
    bool same = a.n == b.n && memcmp(a.tokens, b.tokens, a.n * sizeof *a.tokens) == 0 &&
                a.n_logprobs == b.n_logprobs;
    CHECK_MSG(same, "decode_ex without timestamps differs from sg_whisper_decode");
    CHECK_NEAR(a.avg_logprob, b.avg_logprob, 1e-6);
    CHECK_NEAR(a.no_speech_prob, b.no_speech_prob, 1e-6);
    q.without_timestamps = false;
    q.max_initial_timestamp = 1.0f;
    t0 = sg_now_ms();
    for (int i = 0; i < reps; i++) {
        sg_whisper_result_free(&c);
        CHECK(sg_whisper_decode_ex(m, &q, &c, &err) == SG_OK);
    }
    double t_ts = (sg_now_ms() - t0) / reps;
    printf("bench (whisper_ml ggml, d_model %d, vocab %d, one window): sg_whisper_decode %.2f ms "
           "(%zu tokens, %.3f ms/token); decode_ex no timestamps %.2f ms (%zu tokens, %.3f "
           "ms/token); decode_ex with timestamp rules %.2f ms (%zu tokens, %.3f ms/token)\n",
           I->d_model, I->vocab, t_old, a.n_logprobs, t_old / (double)a.n_logprobs, t_new,
           b.n_logprobs, t_new / (double)b.n_logprobs, t_ts, c.n_logprobs,
           t_ts / (double)c.n_logprobs);
    /* one draw at T > 0 (Gumbel-max over the vocabulary) */
    float *logits = malloc((size_t)I->vocab * sizeof *logits);
    sg_whisper_rng rng;
    sg_whisper_rng_seed(&rng, 1);
    for (int i = 0; i < I->vocab; i++)
        logits[i] = 4.0f * (sg_whisper_rng_uniform(&rng) - 0.5f);
    const int draws = check_reduced() ? 5 : 50;
    int32_t last = -1;
    t0 = sg_now_ms();
    for (int i = 0; i < draws; i++)
        last = sg_whisper_sample(logits, I->vocab, 1.0f, &rng);
    CHECK(last >= 0 && last < I->vocab);
    printf("bench: one sampled token at T = 1 over %d ids: %.3f ms\n", I->vocab,
           (sg_now_ms() - t0) / draws);
    free(logits);
    sg_whisper_result_free(&a);
    sg_whisper_result_free(&b);
    sg_whisper_result_free(&c);
    free(win);
    sg_whisper_free(m);
}

static void check_errors(sg_pool *pool, const input *jfk)
{
    sg_error err = {0};
    sg_whisper *en = sg_whisper_load("tests/fixtures/whisper_en/ggml-model.bin", SG_PREC_F32,
                                     pool, &err);
    sg_whisper *ml = sg_whisper_load("tests/fixtures/whisper_ml/ggml-model.bin", SG_PREC_F32,
                                     pool, &err);
    CHECK(en && ml);
    if (!en || !ml)
        return;
    sg_whisper_transcribe_opts o;
    sg_whisper_transcript t;
#define EXPECT_EINVAL(call)                                                                   \
    do {                                                                                      \
        memset(&err, 0, sizeof err);                                                          \
        sg_status st_ = (call);                                                               \
        CHECK_MSG(st_ == SG_EINVAL && err.msg[0], "%s: %d '%s'", #call, st_, err.msg);        \
        sg_whisper_transcript_free(&t);                                                       \
    } while (0)
    sg_whisper_transcribe_opts_default(&o);
    EXPECT_EINVAL(sg_whisper_transcribe(en, NULL, jfk->frames, jfk->content, &o, &t, &err));
    EXPECT_EINVAL(sg_whisper_transcribe(NULL, jfk->mel, jfk->frames, jfk->content, &o, &t, &err));
    EXPECT_EINVAL(sg_whisper_transcribe(en, jfk->mel, 2999, 0, &o, &t, &err));
    EXPECT_EINVAL(sg_whisper_transcribe(en, jfk->mel, jfk->frames, -1, &o, &t, &err));
    EXPECT_EINVAL(sg_whisper_transcribe(en, jfk->mel, jfk->frames, jfk->frames + 1, &o, &t, &err));
    memset(&err, 0, sizeof err);
    CHECK(sg_whisper_transcribe(en, jfk->mel, jfk->frames, jfk->content, &o, NULL, &err) ==
          SG_EINVAL);
    o.translate = true;
    EXPECT_EINVAL(sg_whisper_transcribe(en, jfk->mel, jfk->frames, jfk->content, &o, &t, &err));
    sg_whisper_transcribe_opts_default(&o);
    o.language = 5; /* not a language token */
    EXPECT_EINVAL(sg_whisper_transcribe(ml, jfk->mel, jfk->frames, jfk->content, &o, &t, &err));
    sg_whisper_transcribe_opts_default(&o);
    o.temperatures[1] = -0.5f;
    EXPECT_EINVAL(sg_whisper_transcribe(ml, jfk->mel, jfk->frames, jfk->content, &o, &t, &err));
    sg_whisper_transcribe_opts_default(&o);
    o.temperatures[0] = NAN;
    EXPECT_EINVAL(sg_whisper_transcribe(ml, jfk->mel, jfk->frames, jfk->content, &o, &t, &err));
    sg_whisper_transcribe_opts_default(&o);
    o.n_temperatures = SG_WHISPER_MAX_TEMPERATURES + 1;
    EXPECT_EINVAL(sg_whisper_transcribe(ml, jfk->mel, jfk->frames, jfk->content, &o, &t, &err));
    sg_whisper_transcribe_opts_default(&o);
    o.sample_len = -1;
    EXPECT_EINVAL(sg_whisper_transcribe(ml, jfk->mel, jfk->frames, jfk->content, &o, &t, &err));
    sg_whisper_transcribe_opts_default(&o);
    o.logprob_threshold = NAN;
    EXPECT_EINVAL(sg_whisper_transcribe(ml, jfk->mel, jfk->frames, jfk->content, &o, &t, &err));
    /* opts NULL = defaults; word timestamps. Reduced: both left out (the defaults run on empty
       audio below, word timestamps in the compared cases) */
    const bool reduced = check_reduced();
    if (!reduced) {
        memset(&err, 0, sizeof err);
        CHECK_MSG(sg_whisper_transcribe(en, jfk->mel, jfk->frames, jfk->content, NULL, &t, &err) ==
                  SG_OK, "%s", err.msg);
        sg_whisper_transcript_free(&t);
        /* word timestamps (compared with the reference in run_kind): they run, ordered */
        sg_whisper_transcribe_opts_default(&o);
        o.word_timestamps = true;
        o.logprob_threshold = -INFINITY;
        memset(&err, 0, sizeof err);
        sg_status st = sg_whisper_transcribe(en, jfk->mel, jfk->frames, jfk->content, &o, &t, &err);
        CHECK_MSG(st == SG_OK, "word timestamps: %d %s", st, err.msg);
        size_t n_words = 0;
        for (size_t i = 0; st == SG_OK && i < t.n_segments; i++)
            for (size_t w = 0; w < t.segments[i].n_words; w++, n_words++)
                CHECK(t.segments[i].words[w].word && t.segments[i].words[w].start <=
                                                         t.segments[i].words[w].end);
        CHECK(n_words > 0);
        sg_whisper_transcript_free(&t);
    }
    /* empty audio: no window */
    CHECK(sg_whisper_transcribe(en, jfk->mel, jfk->frames, 0, NULL, &t, &err) == SG_OK);
    CHECK(t.n_segments == 0 && t.n_windows == 0 && t.text && t.text[0] == 0);
    sg_whisper_transcript_free(&t);
    sg_whisper_transcript_free(NULL);
    /* compression ratio (Python: len(b"ag" * 16) / len(zlib.compress(b"ag" * 16)) = 32 / 12) */
    CHECK_NEAR(sg_whisper_compression_ratio("agagagagagagagagagagagagagagagag"), 32.0 / 12.0, 1e-6);
    CHECK_NEAR(sg_whisper_compression_ratio(""), 0.0, 0);
    CHECK_NEAR(sg_whisper_compression_ratio(NULL), 0.0, 0);
    /* the generator: splitmix64 of seed 0's first output 0xE220A8397B1DCDAF */
    sg_whisper_rng r;
    sg_whisper_rng_seed(&r, 0);
    CHECK_NEAR(sg_whisper_rng_uniform(&r), (double)(0xE220A8397B1DCDAFull >> 40) / 16777216.0, 0);
    sg_whisper_free(en);
    sg_whisper_free(ml);

    /* a Hugging Face directory without tokenizer files: runs, texts "", no initial prompt */
    sg_whisper *nov = sg_whisper_load("tests/fixtures/whisper_en", SG_PREC_F32, pool, &err);
    CHECK_MSG(nov != NULL, "%s", err.msg);
    if (nov) {
        CHECK(!sg_whisper_has_vocab(nov));
        sg_whisper_transcribe_opts_default(&o);
        o.logprob_threshold = -INFINITY;
        if (reduced)
            o.n_temperatures = 1;
        CHECK_MSG(sg_whisper_transcribe(nov, jfk->mel, jfk->frames, jfk->content, &o, &t, &err) ==
                      SG_OK, "%s", err.msg);
        CHECK(t.n_segments > 0 && t.text && t.text[0] == 0);
        for (size_t i = 0; i < t.n_segments; i++)
            CHECK(t.segments[i].text && t.segments[i].text[0] == 0 && t.segments[i].n_tokens > 0);
        sg_whisper_transcript_free(&t);
        o.initial_prompt = "hello";
        memset(&err, 0, sizeof err);
        CHECK(sg_whisper_transcribe(nov, jfk->mel, jfk->frames, jfk->content, &o, &t, &err) ==
                  SG_EUNSUPPORTED && err.msg[0]);
        sg_whisper_transcript_free(&t);
        sg_whisper_free(nov);
    }
}

int main(void)
{
    sg_pool *pool = sg_pool_new(2);
    input jfk = make_input(1), jfk3 = make_input(3);
    if (jfk.mel && jfk3.mel) {
        check_errors(pool, &jfk);
        bench(pool, &jfk);
        run_kind("en", pool, &jfk, &jfk3);
        run_kind("ml", pool, &jfk, &jfk3);
    }
    free(jfk.mel);
    free(jfk3.mel);
    sg_pool_free(pool);
    return check_report("test_whisper_transcribe");
}
