/* Whisper against our PyTorch reference (py/whisper_reference.py) on the tiny random model
 * in tests/fixtures/whisper_tiny (Hugging Face layout, reduced vocabulary; made by
 * py/gen_whisper_fixture.py), fed the log-mel of ../shared/data/audio/jfk.wav: encoder
 * output values, greedy tokens, per-token log-probs, avg_logprob and no_speech_prob in f32; int8
 * agreement printed; load and input errors; the .en model's language API answers; detokenization
 * through the fixture's vocab.json + merges.txt (Python's errors="replace" on invalid UTF-8). The
 * real-vocabulary models in both file formats are test_whisper_ggml's.
 * SG_TEST_REDUCED=1 (check.h; the runs under qemu): the levels below the best run on the thread
 * pool too (not single-threaded) and without the int8 run, whose agreement is only printed; f32
 * is compared with the reference at every level as above. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "sgtest_whisper.h"
#include "media/audio.h"
#include "media/mel.h"
#include "models/whisper.h"
#include "nn/cpu.h"
#include "nn/pool.h"

#define DIR "tests/fixtures/whisper_tiny"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct run {
    float *enc;
    sg_whisper_result res;
    double enc_ms, tok_ms;
} run;

static int run_model(sg_precision prec, sg_pool *pool, const float *mel, int frames, run *r)
{
    sg_error err = {0};
    memset(r, 0, sizeof *r);
    sg_whisper *m = sg_whisper_load(DIR, prec, pool, &err);
    CHECK_MSG(m != NULL, "load: %s", err.msg);
    if (!m)
        return -1;
    const sg_whisper_info *I = sg_whisper_get_info(m);
    CHECK_EQ_INT(I->d_model, 64);
    CHECK_EQ_INT(I->sot, 1001);
    CHECK_EQ_INT(I->no_speech, 1006);
    r->enc = malloc((size_t)(frames / 2) * I->d_model * sizeof(float));
    double t0 = now_ms();
    sg_status st = sg_whisper_encode(m, mel, frames, r->enc, &err);
    double t1 = now_ms();
    CHECK_MSG(st == SG_OK, "encode: %s", err.msg);
    st = sg_whisper_decode_greedy(m, 0, &r->res, &err);
    double t2 = now_ms();
    CHECK_MSG(st == SG_OK, "decode: %s", err.msg);
    r->enc_ms = t1 - t0;
    r->tok_ms = r->res.n_logprobs ? (t2 - t1) / (double)r->res.n_logprobs : 0;
    /* bad inputs are errors, not crashes */
    CHECK(sg_whisper_encode(m, mel, 3001, NULL, &err) == SG_EINVAL);
    CHECK(sg_whisper_encode(m, mel, 4000, NULL, &err) == SG_EINVAL);
    CHECK(sg_whisper_encode(m, NULL, 3000, NULL, &err) == SG_EINVAL);
    sg_whisper_free(m);
    return 0;
}

/* Writes DIR's config.json with one key replaced into a fresh temporary directory that links to
 * DIR's weights; returns the directory (static buffer) or NULL. */
static const char *variant_dir(const char *key, json_t *value)
{
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/sg_whisper_test_XXXXXX");
    if (!mkdtemp(dir))
        return NULL;
    json_t *c = json_load_file(DIR "/config.json", 0, NULL);
    json_object_set_new(c, key, value);
    char path[128], target[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_dump_file(c, path, 0);
    json_decref(c);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!realpath(DIR "/model.safetensors", target) || symlink(target, path) != 0)
        return NULL;
    return dir;
}

static void remove_variant(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    rmdir(dir);
}

static void expect_load_error(const char *key, json_t *value, sg_status code, const char *needle)
{
    const char *dir = variant_dir(key, value);
    CHECK(dir != NULL);
    if (!dir)
        return;
    sg_error err = {0};
    sg_whisper *m = sg_whisper_load(dir, SG_PREC_F32, NULL, &err);
    CHECK_MSG(m == NULL, "%s: loaded", key);
    CHECK_MSG(err.code == code, "%s: code %d, message %s", key, (int)err.code, err.msg);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", key, err.msg, needle);
    sg_whisper_free(m);
    remove_variant(dir);
}

static void test_errors(void)
{
    sg_error err = {0};
    /* shapes are checked against the config, and the message names the tensor */
    expect_load_error("d_model", json_integer(32), SG_EINVAL, "model.encoder.conv1.weight");
    expect_load_error("encoder_ffn_dim", json_integer(128), SG_EINVAL, "fc1.weight");
    expect_load_error("max_target_positions", json_integer(100), SG_EINVAL, "decoder.embed_positions");
    expect_load_error("vocab_size", json_integer(2000), SG_EINVAL, "embed_tokens");
    expect_load_error("decoder_layers", json_integer(3), SG_EINVAL, "model.decoder.layers.2");
    expect_load_error("encoder_attention_heads", json_integer(3), SG_EINVAL, "implausible");
    expect_load_error("eos_token_id", json_integer(5000), SG_EINVAL, "special token");
    expect_load_error("suppress_tokens", json_pack("[i]", 99999), SG_EINVAL, "suppress_tokens");
    expect_load_error("activation_function", json_string("relu"), SG_EUNSUPPORTED, "gelu");
    CHECK(sg_whisper_load("tests/fixtures/no_such_whisper", SG_PREC_F32, NULL, &err) == NULL);
    CHECK(err.code == SG_EIO);
    /* a CLIP directory has a config but not Whisper's sizes */
    CHECK(sg_whisper_load("tests/fixtures/clip_tiny", SG_PREC_F32, NULL, &err) == NULL);
    CHECK(err.code == SG_EINVAL);
}

/* f32 against the reference, then int8 against f32 (reported), at the current kernel level. */
static void check_level(json_t *exp, const float *mel, int frames, sg_pool *pool, const char *level)
{
    const int d = 64, T = 1500;
    run f;
    if (run_model(SG_PREC_F32, pool, mel, frames, &f) == 0) {
        /* encoder: sampled values and row means */
        double worst = 0;
        json_t *s;
        size_t i;
        json_array_foreach(json_object_get(exp, "encoder_samples"), i, s)
        {
            int t = (int)json_integer_value(json_array_get(s, 0));
            int c = (int)json_integer_value(json_array_get(s, 1));
            double want = json_number_value(json_array_get(s, 2));
            double diff = fabs(f.enc[(size_t)t * d + c] - want) / fmax(1.0, fabs(want));
            if (diff > worst)
                worst = diff;
        }
        CHECK_MSG(worst <= 1e-3, "encoder worst relative diff %g", worst);
        int stride = (int)json_integer_value(json_object_get(exp, "encoder_row_mean_stride"));
        double worst_mean = 0;
        json_array_foreach(json_object_get(exp, "encoder_row_mean"), i, s)
        {
            double mean = 0;
            for (int c = 0; c < d; c++)
                mean += f.enc[(size_t)i * stride * d + c];
            mean /= d;
            worst_mean = fmax(worst_mean, fabs(mean - json_number_value(s)));
        }
        CHECK_MSG(worst_mean <= 1e-3, "encoder row mean diff %g", worst_mean);
        /* decoder: tokens exactly, log-probs closely */
        json_t *toks = json_object_get(exp, "tokens"), *lps = json_object_get(exp, "logprobs");
        CHECK_EQ_INT(f.res.n, json_array_size(toks));
        size_t same = 0;
        for (i = 0; i < f.res.n && i < json_array_size(toks); i++)
            same += f.res.tokens[i] == json_integer_value(json_array_get(toks, i));
        CHECK_EQ_INT(same, json_array_size(toks));
        CHECK_EQ_INT(f.res.n_logprobs, json_array_size(lps));
        double worst_lp = 0;
        for (i = 0; i < f.res.n_logprobs && i < json_array_size(lps); i++)
            worst_lp = fmax(worst_lp, fabs(f.res.logprobs[i] - json_number_value(json_array_get(lps, i))));
        CHECK_MSG(worst_lp <= 1e-3, "token log-prob diff %g", worst_lp);
        CHECK_NEAR(f.res.avg_logprob, json_number_value(json_object_get(exp, "avg_logprob")), 1e-3);
        /* tiny for this model: compare logs */
        CHECK_NEAR(log(f.res.no_speech_prob), log(json_number_value(json_object_get(exp, "no_speech_prob"))), 1e-3);
        CHECK_EQ_INT(f.res.n_logprobs, f.res.n + 1); /* stopped at <|endoftext|> */
        fprintf(stderr, "%s f32: encoder rel diff %.3g, row mean diff %.3g, %zu tokens (%zu match), "
                "log-prob diff %.3g, avg_logprob %.6f; encoder %.1f ms / 30 s window, %.3f ms/token\n",
                level, worst, worst_mean, f.res.n, same, worst_lp, f.res.avg_logprob, f.enc_ms, f.tok_ms);

        /* int8: agreement with f32, reported */
        run q;
        if (!(check_reduced() && sg_cpu_level_get() < sg_cpu_supported()) &&
            run_model(SG_PREC_Q8, pool, mel, frames, &q) == 0) {
            double ab = 0, aa = 0, bb = 0;
            for (size_t k = 0; k < (size_t)T * d; k++) {
                ab += (double)q.enc[k] * f.enc[k];
                aa += (double)q.enc[k] * q.enc[k];
                bb += (double)f.enc[k] * f.enc[k];
            }
            size_t agree = 0;
            for (size_t k = 0; k < q.res.n && k < f.res.n; k++)
                agree += q.res.tokens[k] == f.res.tokens[k];
            CHECK(q.res.n > 0);
            fprintf(stderr, "%s int8: encoder cosine vs f32 %.5f, tokens %zu/%zu agree (n %zu vs %zu), "
                    "avg_logprob %.6f; encoder %.1f ms / 30 s window, %.3f ms/token\n",
                    level, ab / sqrt(aa * bb), agree, f.res.n, q.res.n, f.res.n, q.res.avg_logprob,
                    q.enc_ms, q.tok_ms);
            free(q.enc);
            sg_whisper_result_free(&q.res);
        }
        free(f.enc);
        sg_whisper_result_free(&f.res);
    }
}

/* The .en fixture: no languages; its vocabulary detokenizes as the reference decodes. */
static void test_vocab_and_languages(json_t *exp, sg_pool *pool, const float *mel, int frames)
{
    sg_error err = {0};
    sg_whisper *m = sg_whisper_load(DIR, SG_PREC_F32, pool, &err);
    CHECK_MSG(m != NULL, "load: %s", err.msg);
    if (!m)
        return;
    const sg_whisper_info *I = sg_whisper_get_info(m);
    CHECK(strcmp(I->format, "hf") == 0);
    CHECK(!I->multilingual);
    CHECK_EQ_INT(I->n_languages, 0);
    CHECK_EQ_INT(sg_whisper_language_token(m, "en"), -1);
    CHECK(sg_whisper_language_code(m, 1002) == NULL);
    CHECK(sg_whisper_mel_filters(m) == NULL);
    int32_t lang = 0;
    float prob = 0;
    /* nothing encoded yet, and English-only anyway */
    CHECK(sg_whisper_detect_language(m, &lang, &prob, &err) == SG_EINVAL);
    sg_whisper_result r;
    CHECK(sg_whisper_decode(m, NULL, &r, &err) == SG_EINVAL);
    CHECK(sg_whisper_encode(m, mel, frames, NULL, &err) == SG_OK);
    CHECK(sg_whisper_detect_language(m, &lang, &prob, &err) == SG_EINVAL);
    CHECK(strstr(err.msg, "multilingual") != NULL);
    /* sg_whisper_decode ignores language and task for an .en model */
    sg_whisper_decode_opts o = {1002, true, 0};
    CHECK(sg_whisper_decode(m, &o, &r, &err) == SG_OK);
    json_t *toks = json_object_get(exp, "tokens");
    CHECK_EQ_INT(r.n, json_array_size(toks));
    for (size_t i = 0; i < r.n && i < json_array_size(toks); i++)
        CHECK_EQ_INT(r.tokens[i], json_integer_value(json_array_get(toks, i)));
    CHECK_EQ_INT(r.language, -1);
    CHECK(sg_whisper_has_vocab(m));
    char *text = sg_whisper_detokenize(m, r.tokens, r.n);
    const char *want = json_string_value(json_object_get(exp, "text"));
    CHECK_MSG(text && want && strcmp(text, want) == 0, "text \"%s\" vs \"%s\"", text ? text : "(null)",
              want ? want : "(null)");
    fprintf(stderr, "detokenized: \"%s\"\n", text ? text : "(null)");
    free(text);
    sg_whisper_result_free(&r);
    /* invalid UTF-8 becomes U+FFFD as Python's errors="replace" makes it; ids >= eot skipped */
    json_t *c;
    size_t i;
    json_array_foreach(json_object_get(exp, "detokenize"), i, c)
    {
        json_t *t = json_object_get(c, "tokens");
        size_t n = json_array_size(t);
        int32_t ids[64];
        for (size_t k = 0; k < n && k < 64; k++)
            ids[k] = (int32_t)json_integer_value(json_array_get(t, k));
        char *s = sg_whisper_detokenize(m, ids, n < 64 ? n : 64);
        const char *w = json_string_value(json_object_get(c, "text"));
        CHECK_MSG(s && w && strcmp(s, w) == 0, "case %zu: \"%s\" vs \"%s\"", i, s ? s : "(null)",
                  w ? w : "(null)");
        free(s);
    }
    sg_whisper_free(m);
    /* without tokenizer files there is no vocabulary */
    const char *dir = variant_dir("d_model", json_integer(64));
    CHECK(dir != NULL);
    if (dir) {
        m = sg_whisper_load(dir, SG_PREC_F32, NULL, &err);
        CHECK_MSG(m != NULL, "%s", err.msg);
        if (m) {
            int32_t one = 300;
            CHECK(!sg_whisper_has_vocab(m));
            CHECK(sg_whisper_detokenize(m, &one, 1) == NULL);
            sg_whisper_free(m);
        }
        remove_variant(dir);
    }
}

int main(void)
{
    json_error_t je;
    json_t *exp = json_load_file(DIR "/expected.json", 0, &je);
    CHECK_MSG(exp != NULL, "%s", je.text);
    int frames = 0;
    float *mel = sgt_jfk_mel(&frames);
    CHECK_MSG(mel != NULL, "cannot make the log-mel of ../shared/data/audio/jfk.wav");
    if (!exp || !mel)
        return check_report("test_whisper");
    CHECK_EQ_INT(frames, 3000);
    test_errors();
    sg_pool *pool = sg_pool_new(2);
    sg_cpu_level top = sg_cpu_supported();
    for (int lvl = SG_CPU_SCALAR; lvl <= (int)top; lvl++) {
        sg_cpu_level_set((sg_cpu_level)lvl);
        check_level(exp, mel, frames, lvl == SG_CPU_SCALAR && !check_reduced() ? NULL : pool,
                    sg_cpu_level_name((sg_cpu_level)lvl));
    }
    sg_cpu_level_set(top);
    /* the convenience wrapper gives the same tokens */
    sg_error err = {0};
    sg_whisper *m = sg_whisper_load(DIR, SG_PREC_F32, pool, &err);
    if (m) {
        int32_t *tok = NULL;
        size_t n = 0;
        float avg = 0;
        CHECK(sg_whisper_transcribe_tokens(m, mel, frames, &tok, &n, &avg, &err) == SG_OK);
        CHECK_EQ_INT(n, json_array_size(json_object_get(exp, "tokens")));
        CHECK_NEAR(avg, json_number_value(json_object_get(exp, "avg_logprob")), 1e-3);
        free(tok);
        /* the length limit: no <|endoftext|>, avg_logprob divides the sum by n + 1 all the same */
        json_t *sh = json_object_get(exp, "short");
        sg_whisper_result r;
        int max_tokens = (int)json_integer_value(json_object_get(sh, "max_tokens"));
        CHECK(sg_whisper_decode_greedy(m, max_tokens, &r, &err) == SG_OK);
        json_t *st = json_object_get(sh, "tokens");
        CHECK_EQ_INT(r.n, json_array_size(st));
        CHECK_EQ_INT(r.n_logprobs, json_array_size(st));
        for (size_t i = 0; i < r.n && i < json_array_size(st); i++)
            CHECK_EQ_INT(r.tokens[i], json_integer_value(json_array_get(st, i)));
        CHECK_NEAR(r.avg_logprob, json_number_value(json_object_get(sh, "avg_logprob")), 1e-3);
        sg_whisper_result_free(&r);
        sg_whisper_free(m);
        /* decoding before any encoding is an error */
        m = sg_whisper_load(DIR, SG_PREC_F32, pool, &err);
        CHECK(m != NULL);
        if (m) {
            CHECK(sg_whisper_decode_greedy(m, 0, &r, &err) == SG_EINVAL);
            sg_whisper_free(m);
        }
    }
    test_vocab_and_languages(exp, pool, mel, frames);
    sg_pool_free(pool);
    free(mel);
    json_decref(exp);
    return check_report("test_whisper");
}
