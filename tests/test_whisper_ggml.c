/* Whisper from whisper.cpp's ggml files (models/whisper_ggml.h) and the multilingual decoding
 * path, against our PyTorch reference:
 *  - ../shared/models/for-tests-ggml-tiny{,.en}.bin (real header, mel filters and vocabulary, no
 *    tensors): tiny's hparams, filters within 1e-6 of sg_mel_filters and of
 *    ../shared/tokenizers/whisper_mel_filters.npz, vocabulary entries equal to the .tiktoken ranks
 *    (whisper.cpp stored the entries that are not valid UTF-8 as U+FFFD: counted), a full load
 *    refused with "no tensors";
 *  - tests/fixtures/whisper_{en,ml} (py/gen_whisper_fixture.py): the same random weights as
 *    a Hugging Face directory and as ggml-model.bin, on the log-mel of jfk.wav: in f32 the tokens
 *    equal the reference's for both formats, avg_logprob / no_speech_prob / log-probs within 1e-3,
 *    the detected language and its probability, decoding with a given language and translate,
 *    the length limit, the detokenized text; both formats give identical tokens; int8 agreement
 *    printed; openai's non-speech token lists equal the reference's BPE over the .tiktoken files;
 *  - garbled and truncated files (every cut of the header and sampled cuts of the tensors),
 *    quantized types, bad hparams, missing, misshapen and repeated tensors: errors with messages.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/utf8.h"
#include "check.h"
#include "sgtest_whisper.h"
#include "media/audio.h"
#include "media/mel.h"
#include "models/gpt2_tokenizer.h"
#include "models/whisper.h"
#include "models/whisper_ggml.h"
#include "nn/pool.h"
#include "sgtest_npz.h"

#define MODELS "../shared/models/"
#define TOKENIZERS "../shared/tokenizers/"

/* s without its invalid UTF-8 bytes (into out, room for n + 1) */
static size_t strip_invalid(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = sg_utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            i++;
        }
    }
    out[o] = 0;
    return o;
}

/* s without U+FFFD */
static size_t strip_fffd(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && memcmp(s + i, "\xEF\xBF\xBD", 3) == 0) {
            i += 3;
        } else {
            out[o++] = s[i++];
        }
    }
    out[o] = 0;
    return o;
}

static void test_header(const char *file, int n_vocab, const char *tiktoken, const float *filters,
                        const float *npz)
{
    sg_wggml g;
    sg_error err = {0};
    CHECK_MSG(sg_wggml_open(file, true, &g, &err) == SG_OK, "%s: %s", file, err.msg);
    const sg_wggml_hparams *h = &g.hp;
    CHECK_EQ_INT(h->n_vocab, n_vocab);
    CHECK_EQ_INT(h->n_audio_ctx, 1500);
    CHECK_EQ_INT(h->n_audio_state, 384);
    CHECK_EQ_INT(h->n_audio_head, 6);
    CHECK_EQ_INT(h->n_audio_layer, 4);
    CHECK_EQ_INT(h->n_text_ctx, 448);
    CHECK_EQ_INT(h->n_text_state, 384);
    CHECK_EQ_INT(h->n_text_head, 6);
    CHECK_EQ_INT(h->n_text_layer, 4);
    CHECK_EQ_INT(h->n_mels, 80);
    CHECK_EQ_INT(h->ftype, 1);
    CHECK_EQ_INT(g.n_mel, 80);
    CHECK_EQ_INT(g.n_fft, 201);
    CHECK_EQ_INT(g.n_tensors, 0);
    if (g.filters && g.n_mel == 80 && g.n_fft == 201) {
        double d_ours = 0, d_npz = 0;
        for (int i = 0; i < 80 * 201; i++) {
            d_ours = fmax(d_ours, fabs(g.filters[i] - filters[i]));
            if (npz)
                d_npz = fmax(d_npz, fabs(g.filters[i] - npz[i]));
        }
        CHECK_MSG(d_ours <= 1e-6, "filters vs sg_mel_filters: %g", d_ours);
        CHECK_MSG(npz && d_npz <= 1e-6, "filters vs whisper_mel_filters.npz: %g", d_npz);
        fprintf(stderr, "%s: mel filters max diff %.3g vs sg_mel_filters, %.3g vs the .npz\n", file,
                d_ours, d_npz);
    }
    /* the vocabulary: the ranks, except what whisper.cpp's converter replaced */
    sg_bpe *bpe = sg_bpe_load_tiktoken(tiktoken, &err);
    CHECK_MSG(bpe != NULL, "%s: %s", tiktoken, err.msg);
    CHECK_EQ_INT(g.n_tokens, 50257);
    if (bpe) {
        const int32_t eot = sg_bpe_eot(bpe);
        CHECK_EQ_INT(eot, n_vocab == 51864 ? 50256 : 50257);
        int same = 0, replaced = 0, bad = 0;
        char a[512], b[512];
        for (int32_t i = 0; i < eot && i < g.n_tokens; i++) {
            size_t rl = 0, fl = 0;
            const char *r = sg_bpe_token_bytes(bpe, i, &rl);
            const char *f = sg_wggml_token(&g, i, &fl);
            if (!r || !f || rl > 200 || fl > 600) {
                bad++;
                continue;
            }
            if (sg_utf8_valid((const unsigned char *)r, rl)) {
                same += rl == fl && memcmp(r, f, rl) == 0;
                bad += !(rl == fl && memcmp(r, f, rl) == 0);
            } else {
                size_t x = strip_invalid(r, rl, a), y = strip_fffd(f, fl, b);
                bool ok = x == y && memcmp(a, b, x) == 0 && fl > y &&
                          sg_utf8_valid((const unsigned char *)f, fl);
                replaced += ok;
                bad += !ok;
            }
        }
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(same + replaced, eot);
        if (n_vocab == 51864) {
            size_t l = 0;
            const char *t = sg_wggml_token(&g, 50256, &l);
            CHECK(t && l == 13 && memcmp(t, "<|endoftext|>", 13) == 0);
        }
        fprintf(stderr, "%s: %d vocabulary entries equal the ranks of %s, %d stored as U+FFFD\n",
                file, same, tiktoken, replaced);
        sg_bpe_free(bpe);
    }
    sg_wggml_free(&g);
    /* the whole file parses (no tensors), but is no model */
    CHECK(sg_wggml_open(file, false, &g, &err) == SG_OK);
    CHECK_EQ_INT(g.n_tensors, 0);
    sg_wggml_free(&g);
    sg_whisper *m = sg_whisper_load(file, SG_PREC_F32, NULL, &err);
    CHECK(m == NULL);
    CHECK(err.code == SG_EINVAL);
    CHECK_MSG(strstr(err.msg, "no tensors") != NULL, "message: %s", err.msg);
    sg_whisper_free(m);
}

/* ---- the random models in both formats ------------------------------------------------------ */

static int tokens_equal(const sg_whisper_result *r, json_t *want)
{
    json_t *t = json_object_get(want, "tokens");
    if (r->n != json_array_size(t))
        return 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->tokens[i] != json_integer_value(json_array_get(t, i)))
            return 0;
    return 1;
}

/* A decode result against the reference's run want: tokens exactly, numbers within 1e-3 */
static void check_run(const char *what, const sg_whisper *m, const sg_whisper_result *r,
                      json_t *want)
{
    CHECK_MSG(tokens_equal(r, want), "%s: tokens differ (%zu vs %zu)", what, r->n,
              json_array_size(json_object_get(want, "tokens")));
    json_t *lps = json_object_get(want, "logprobs");
    CHECK_EQ_INT(r->n_logprobs, json_array_size(lps));
    double worst = 0;
    for (size_t i = 0; i < r->n_logprobs && i < json_array_size(lps); i++)
        worst = fmax(worst, fabs(r->logprobs[i] - json_number_value(json_array_get(lps, i))));
    CHECK_MSG(worst <= 1e-3, "%s: log-prob diff %g", what, worst);
    CHECK_NEAR(r->avg_logprob, json_number_value(json_object_get(want, "avg_logprob")), 1e-3);
    double ns = json_number_value(json_object_get(want, "no_speech_prob"));
    CHECK_NEAR(r->no_speech_prob, ns, 1e-3);
    CHECK_NEAR(log(r->no_speech_prob), log(ns), 1e-3); /* tiny here: compare logs too */
    json_t *lang = json_object_get(want, "language");
    CHECK_EQ_INT(r->language, lang ? json_integer_value(lang) : -1);
    json_t *text = json_object_get(want, "text");
    if (sg_whisper_has_vocab(m) && text) {
        char *s = sg_whisper_detokenize(m, r->tokens, r->n);
        CHECK_MSG(s && strcmp(s, json_string_value(text)) == 0, "%s: text \"%s\" vs \"%s\"", what,
                  s ? s : "(null)", json_string_value(text));
        free(s);
    }
}

typedef struct fmt_run {
    sg_whisper_result def;
    double enc_ms, tok_ms;
} fmt_run;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Loads path, checks what the reference says, keeps the default run in out. */
static int run_format(const char *path, const char *format, sg_precision prec, json_t *exp,
                      bool ml, const float *mel, int frames, sg_pool *pool, fmt_run *out)
{
    sg_error err = {0};
    memset(out, 0, sizeof *out);
    sg_whisper *m = sg_whisper_load(path, prec, pool, &err);
    CHECK_MSG(m != NULL, "%s: %s", path, err.msg);
    if (!m)
        return -1;
    const sg_whisper_info *I = sg_whisper_get_info(m);
    CHECK(strcmp(I->format, format) == 0);
    CHECK_EQ_INT(I->d_model, 16);
    CHECK_EQ_INT(I->vocab, ml ? 51865 : 51864);
    CHECK_EQ_INT(I->multilingual, ml);
    CHECK_EQ_INT(I->n_languages, ml ? 99 : 0);
    CHECK_EQ_INT(I->eot, ml ? 50257 : 50256);
    CHECK_EQ_INT(I->sot, ml ? 50258 : 50257);
    CHECK_EQ_INT(I->translate, ml ? 50358 : 50357);
    CHECK_EQ_INT(I->transcribe, ml ? 50359 : 50358);
    CHECK_EQ_INT(I->no_speech, ml ? 50362 : 50361);
    CHECK_EQ_INT(I->no_timestamps, ml ? 50363 : 50362);
    CHECK_EQ_INT(sg_whisper_has_vocab(m), strcmp(format, "ggml") == 0);
    if (ml) {
        CHECK_EQ_INT(sg_whisper_language_token(m, "en"), 50259);
        CHECK_EQ_INT(sg_whisper_language_token(m, "de"), 50261);
        CHECK_EQ_INT(sg_whisper_language_token(m, "su"), 50357);
        CHECK_EQ_INT(sg_whisper_language_token(m, "yue"), -1); /* large-v3 only */
        CHECK_EQ_INT(sg_whisper_language_token(m, "xx"), -1);
        CHECK(sg_whisper_language_code(m, 50259) && strcmp(sg_whisper_language_code(m, 50259), "en") == 0);
        CHECK(sg_whisper_language_code(m, 50358) == NULL);
        CHECK(sg_whisper_language_code(m, 50258) == NULL);
    } else {
        CHECK_EQ_INT(sg_whisper_language_token(m, "en"), -1);
    }
    if (strcmp(format, "ggml") == 0) {
        const float *f = sg_whisper_mel_filters(m);
        float *ours = malloc(80 * 201 * sizeof(float));
        CHECK(f != NULL);
        if (f && ours && sg_mel_filters(80, 400, 16000, ours, &err) == SG_OK) {
            double d = 0;
            for (int i = 0; i < 80 * 201; i++)
                d = fmax(d, fabs(f[i] - ours[i]));
            CHECK(d <= 1e-6);
        }
        free(ours);
    }
    double t0 = now_ms();
    CHECK(sg_whisper_encode(m, mel, frames, NULL, &err) == SG_OK);
    double t1 = now_ms();
    const bool f32 = prec == SG_PREC_F32;
    char what[160];
    snprintf(what, sizeof what, "%s %s", path, f32 ? "f32" : "int8");
    if (ml) {
        int32_t tok = -1;
        float prob = 0;
        CHECK(sg_whisper_detect_language(m, &tok, &prob, &err) == SG_OK);
        json_t *d = json_object_get(exp, "detect");
        if (f32) {
            CHECK_EQ_INT(tok, json_integer_value(json_object_get(d, "token")));
            CHECK(sg_whisper_language_code(m, tok) &&
                  strcmp(sg_whisper_language_code(m, tok), json_string_value(json_object_get(d, "code"))) == 0);
            CHECK_NEAR(prob, json_number_value(json_object_get(d, "prob")), 1e-3);
        }
        fprintf(stderr, "%s: language %s p=%.4f\n", what, sg_whisper_language_code(m, tok), prob);
    }
    sg_whisper_result r;
    double t2 = now_ms();
    sg_status st = sg_whisper_decode(m, NULL, &out->def, &err);
    double t3 = now_ms();
    CHECK_MSG(st == SG_OK, "%s: %s", what, err.msg);
    out->enc_ms = t1 - t0;
    out->tok_ms = out->def.n_logprobs ? (t3 - t2) / (double)out->def.n_logprobs : 0;
    if (f32 && st == SG_OK) {
        check_run(what, m, &out->def, json_object_get(exp, "default"));
        /* the same through sg_whisper_decode_greedy */
        CHECK(sg_whisper_decode_greedy(m, 0, &r, &err) == SG_OK);
        CHECK(tokens_equal(&r, json_object_get(exp, "default")));
        sg_whisper_result_free(&r);
        json_t *sh = json_object_get(exp, "short");
        sg_whisper_decode_opts o = {-1, false, (int)json_integer_value(json_object_get(sh, "max_tokens"))};
        CHECK(sg_whisper_decode(m, &o, &r, &err) == SG_OK);
        check_run("short", m, &r, sh);
        sg_whisper_result_free(&r);
        if (ml) {
            json_t *tr = json_object_get(exp, "en_translate");
            sg_whisper_decode_opts t = {sg_whisper_language_token(m, "en"), true, 0};
            CHECK(sg_whisper_decode(m, &t, &r, &err) == SG_OK);
            check_run("en+translate", m, &r, tr);
            sg_whisper_result_free(&r);
            /* a token that is no language */
            sg_whisper_decode_opts bad = {50358, false, 0};
            CHECK(sg_whisper_decode(m, &bad, &r, &err) == SG_EINVAL);
            CHECK(strstr(err.msg, "language") != NULL);
        }
    }
    sg_whisper_free(m);
    return 0;
}

static void test_fixture(const char *dir, bool ml, const float *mel, int frames, sg_pool *pool)
{
    char path[256], ggml[256];
    snprintf(path, sizeof path, "%s/expected.json", dir);
    snprintf(ggml, sizeof ggml, "%s/ggml-model.bin", dir);
    json_error_t je;
    json_t *exp = json_load_file(path, 0, &je);
    CHECK_MSG(exp != NULL, "%s: %s", path, je.text);
    if (!exp)
        return;
    /* openai's non-speech tokens: our tables vs the reference's BPE over the .tiktoken file */
    int n = 0;
    const int32_t *ns = sg_whisper_non_speech_tokens(ml, &n);
    json_t *want = json_object_get(exp, "non_speech_tokens");
    CHECK_EQ_INT(n, json_array_size(want));
    int same = 0;
    for (int i = 0; i < n && i < (int)json_array_size(want); i++)
        same += ns[i] == json_integer_value(json_array_get(want, i));
    CHECK_EQ_INT(same, n);

    fmt_run hf, gg, q;
    int a = run_format(dir, "hf", SG_PREC_F32, exp, ml, mel, frames, pool, &hf);
    int b = run_format(ggml, "ggml", SG_PREC_F32, exp, ml, mel, frames, pool, &gg);
    if (a == 0 && b == 0) {
        /* the same weights give the same tokens */
        CHECK_EQ_INT(hf.def.n, gg.def.n);
        CHECK(hf.def.n == gg.def.n &&
              memcmp(hf.def.tokens, gg.def.tokens, hf.def.n * sizeof *hf.def.tokens) == 0);
        CHECK_NEAR(hf.def.avg_logprob, gg.def.avg_logprob, 1e-5);
        fprintf(stderr, "%s f32: %zu tokens, avg_logprob %.6f (hf) %.6f (ggml), %.3f ms/token\n",
                dir, gg.def.n, hf.def.avg_logprob, gg.def.avg_logprob, gg.tok_ms);
    }
    if (b == 0 && run_format(ggml, "ggml", SG_PREC_Q8, exp, ml, mel, frames, pool, &q) == 0) {
        size_t agree = 0;
        for (size_t k = 0; k < q.def.n && k < gg.def.n; k++)
            agree += q.def.tokens[k] == gg.def.tokens[k];
        CHECK(q.def.n_logprobs > 0);
        fprintf(stderr, "%s int8 (ggml): tokens %zu/%zu agree with f32 (n %zu vs %zu), language %d "
                "(f32 %d), avg_logprob %.6f\n", dir, agree, gg.def.n, q.def.n, gg.def.n,
                q.def.language, gg.def.language, q.def.avg_logprob);
        sg_whisper_result_free(&q.def);
    }
    /* a config without suppress lists (older checkpoints keep them in generation_config.json,
     * absent here) gets openai's for the real vocabulary: the same tokens */
    char tmp[64] = "/tmp/sg_whisper_ggml_XXXXXX", cfg[128], st[128], target[4096];
    json_t *c = json_load_file(strcat(strcpy(path, dir), "/config.json"), 0, NULL);
    if (a == 0 && c && mkdtemp(tmp) && realpath(strcat(strcpy(path, dir), "/model.safetensors"), target)) {
        json_object_del(c, "suppress_tokens");
        json_object_del(c, "begin_suppress_tokens");
        snprintf(cfg, sizeof cfg, "%s/config.json", tmp);
        snprintf(st, sizeof st, "%s/model.safetensors", tmp);
        CHECK(json_dump_file(c, cfg, 0) == 0 && symlink(target, st) == 0);
        sg_error err = {0};
        sg_whisper *m = sg_whisper_load(tmp, SG_PREC_F32, pool, &err);
        CHECK_MSG(m != NULL, "%s", err.msg);
        sg_whisper_result r;
        if (m && sg_whisper_encode(m, mel, frames, NULL, &err) == SG_OK &&
            sg_whisper_decode(m, NULL, &r, &err) == SG_OK) {
            CHECK(tokens_equal(&r, json_object_get(exp, "default")));
            sg_whisper_result_free(&r);
        } else {
            CHECK_MSG(0, "no-suppress-list config: %s", err.msg);
        }
        sg_whisper_free(m);
        unlink(cfg);
        unlink(st);
        rmdir(tmp);
    }
    json_decref(c);
    sg_whisper_result_free(&hf.def);
    sg_whisper_result_free(&gg.def);
    json_decref(exp);
}

/* ---- bad files ---------------------------------------------------------------------------- */

static void expect_bad(const uint8_t *buf, size_t len, sg_status code, const char *needle,
                       const char *what)
{
    sg_error err = {0};
    uint8_t *copy = malloc(len ? len : 1); /* exactly sized: ASan sees reads past the end */
    if (!copy)
        return;
    memcpy(copy, buf, len);
    sg_whisper *m = sg_whisper_load_ggml_memory(copy, len, SG_PREC_F32, NULL, &err);
    CHECK_MSG(m == NULL, "%s: loaded", what);
    CHECK_MSG(err.code == code, "%s: code %d (%s)", what, (int)err.code, err.msg);
    CHECK_MSG(err.msg[0] && (!needle || strstr(err.msg, needle)), "%s: message \"%s\" lacks \"%s\"",
              what, err.msg, needle ? needle : "");
    sg_whisper_free(m);
    free(copy);
}

static void put32(uint8_t *p, int32_t v) { memcpy(p, &v, 4); }

static void test_bad_files(void)
{
    size_t len = 0;
    uint8_t *file = check_read_file("tests/fixtures/whisper_en/ggml-model.bin", &len);
    CHECK(file != NULL);
    if (!file)
        return;
    sg_error err = {0};
    /* it loads from memory as it is */
    sg_whisper *m = sg_whisper_load_ggml_memory(file, len, SG_PREC_F32, NULL, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    sg_whisper_free(m);
    sg_wggml g;
    CHECK(sg_wggml_parse(file, len, false, &g, &err) == SG_OK);
    size_t hdr_end = 0, rec[2] = {0, 0}; /* end of the vocabulary; starts of two records */
    const sg_wggml_tensor *t0 = g.n_tensors ? &g.tensors[0] : NULL;
    if (t0) {
        hdr_end = rec[0] = (size_t)((const uint8_t *)t0->data - file) - strlen(t0->name) -
                           4 * (size_t)t0->ndim - 12;
        const sg_wggml_tensor *t1 = &g.tensors[g.n_tensors - 1];
        rec[1] = (size_t)((const uint8_t *)t1->data - file) - strlen(t1->name) - 4 * (size_t)t1->ndim - 12;
    }
    CHECK(hdr_end > 1000);
    const int t0_ndim = t0 ? t0->ndim : 0;
    sg_wggml_free(&g);
    uint8_t *buf = malloc(len + 4096);
    if (!buf || !t0_ndim) {
        free(buf);
        free(file);
        return;
    }
    char what[64];
    /* truncation: every cut in the hparams and filters, sampled cuts in the vocabulary and the
     * tensors; a cut at a record boundary leaves a missing tensor */
    for (size_t cut = 0; cut < len; cut += cut < 100000 ? (cut < 600 ? 1 : 997) : 30011) {
        snprintf(what, sizeof what, "cut at %zu", cut);
        expect_bad(file, cut, SG_EINVAL, NULL, what);
    }
    expect_bad(file, rec[1], SG_EINVAL, "missing tensor", "last record dropped");
    /* magic */
    memcpy(buf, file, len);
    buf[0] ^= 1;
    expect_bad(buf, len, SG_EINVAL, "magic", "magic");
    /* hparams */
    struct {
        int index;
        int32_t value;
        sg_status code;
        const char *needle;
    } hp[] = {{0, 50000, SG_EINVAL, "n_vocab"},      {0, 51867, SG_EINVAL, "n_vocab"},
              {2, 0, SG_EINVAL, "implausible"},      {2, -16, SG_EINVAL, "implausible"},
              {3, 3, SG_EINVAL, "implausible"},      {6, 32, SG_EINVAL, "implausible"},
              {4, 5, SG_EINVAL, "missing tensor"},   {4, 200, SG_EINVAL, "implausible"},
              {5, 447, SG_EINVAL, "has shape"},      {1, 1499, SG_EINVAL, "has shape"},
              {9, 64, SG_EINVAL, "has shape"},       {10, 2, SG_EUNSUPPORTED, "quantized"},
              {10, 1008, SG_EUNSUPPORTED, "ftype"}, {10, -1, SG_EUNSUPPORTED, "ftype"},
              {8, 1, SG_EINVAL, "unexpected tensor"}};
    for (size_t i = 0; i < sizeof hp / sizeof *hp; i++) {
        memcpy(buf, file, len);
        put32(buf + 4 + 4 * hp[i].index, hp[i].value);
        snprintf(what, sizeof what, "hparam %d = %d", hp[i].index, (int)hp[i].value);
        expect_bad(buf, len, hp[i].code, hp[i].needle, what);
    }
    /* the ftype of a file that is F16 in the header but F32 in the tensors is fine: tensors carry
     * their own types */
    memcpy(buf, file, len);
    put32(buf + 4 + 40, 0);
    m = sg_whisper_load_ggml_memory(buf, len, SG_PREC_F32, NULL, &err);
    CHECK_MSG(m != NULL, "ftype 0: %s", err.msg);
    sg_whisper_free(m);
    /* filter table and vocabulary sizes */
    const size_t filt = 4 + 44;
    memcpy(buf, file, len);
    put32(buf + filt, 0);
    expect_bad(buf, len, SG_EINVAL, "mel filter", "n_mel 0");
    memcpy(buf, file, len);
    put32(buf + filt + 4, 1 << 30);
    expect_bad(buf, len, SG_EINVAL, "mel filter", "n_fft huge");
    const size_t voc = filt + 8 + 80 * 201 * 4;
    memcpy(buf, file, len);
    put32(buf + voc, -1);
    expect_bad(buf, len, SG_EINVAL, "vocabulary", "n -1");
    memcpy(buf, file, len);
    put32(buf + voc, 60000);
    expect_bad(buf, len, SG_EINVAL, "vocabulary", "n 60000");
    memcpy(buf, file, len);
    put32(buf + voc + 4, 0x7FFFFFF0);
    expect_bad(buf, len, SG_EINVAL, "vocabulary", "token length");
    /* tensor records: dims, name length, type, shape, name */
    const size_t r = rec[0];
    struct {
        size_t off;
        int32_t value;
        sg_status code;
        const char *needle;
    } tr[] = {{0, 0, SG_EINVAL, "dimensions"},          {0, 5, SG_EINVAL, "dimensions"},
              {4, 0, SG_EINVAL, "name of"},             {4, 1000, SG_EINVAL, "name of"},
              {8, 8, SG_EUNSUPPORTED, "q8_0"},           {8, 2, SG_EUNSUPPORTED, "quantized"},
              {8, 99, SG_EINVAL, "type 99"},            {12, 0, SG_EINVAL, "dimension 0"},
              {12, -5, SG_EINVAL, "dimension"},         {12, 0x7FFFFFFF, SG_EINVAL, NULL}};
    for (size_t i = 0; i < sizeof tr / sizeof *tr; i++) {
        memcpy(buf, file, len);
        put32(buf + r + tr[i].off, tr[i].value);
        snprintf(what, sizeof what, "record field %zu = %d", tr[i].off, (int)tr[i].value);
        expect_bad(buf, len, tr[i].code, tr[i].needle, what);
    }
    /* a renamed tensor is missing; a NUL in a name is garbage */
    const size_t name_at = r + 12 + 4 * (size_t)t0_ndim;
    memcpy(buf, file, len);
    buf[name_at] = 'X';
    expect_bad(buf, len, SG_EINVAL, "missing tensor", "renamed");
    memcpy(buf, file, len);
    buf[name_at + 1] = 0;
    expect_bad(buf, len, SG_EINVAL, "NUL", "NUL in name");
    memcpy(buf, file, len);
    buf[name_at + 1] = (uint8_t)0xFF;
    expect_bad(buf, len, SG_EINVAL, "UTF-8", "invalid UTF-8 in name");
    /* a repeated record */
    memcpy(buf, file, len);
    const size_t last = len - rec[1];
    if (last <= 4096) {
        memcpy(buf + len, file + rec[1], last);
        expect_bad(buf, len + last, SG_EINVAL, "twice", "repeated record");
    }
    /* trailing garbage shorter than a record header */
    memcpy(buf, file, len);
    memset(buf + len, 0, 5);
    expect_bad(buf, len + 5, SG_EINVAL, "truncated", "trailing bytes");
    /* a path that is neither a directory nor a ggml file */
    m = sg_whisper_load("tests/fixtures/whisper_en/config.json", SG_PREC_F32, NULL, &err);
    CHECK(m == NULL && err.code == SG_EINVAL && strstr(err.msg, "neither"));
    sg_whisper_free(m);
    CHECK(sg_wggml_open("tests/fixtures/no_such_file.bin", true, &g, &err) == SG_EIO);
    CHECK(sg_whisper_load("tests/fixtures/no_such_file.bin", SG_PREC_F32, NULL, &err) == NULL &&
          err.code == SG_EIO);
    free(buf);
    free(file);
}

int main(void)
{
    sg_error err = {0};
    float *filters = malloc(80 * 201 * sizeof(float));
    CHECK(filters && sg_mel_filters(80, 400, 16000, filters, &err) == SG_OK);
    int rows = 0, cols = 0;
    float *npz = npz_matrix(TOKENIZERS "whisper_mel_filters.npz", "mel_80.npy", &rows, &cols);
    CHECK(npz && rows == 80 && cols == 201);
    if (filters) {
        test_header(MODELS "for-tests-ggml-tiny.en.bin", 51864, TOKENIZERS "gpt2.tiktoken", filters, npz);
        test_header(MODELS "for-tests-ggml-tiny.bin", 51865, TOKENIZERS "multilingual.tiktoken", filters,
                    npz);
    }
    free(filters);
    free(npz);

    int frames = 0;
    float *mel = sgt_jfk_mel(&frames);
    CHECK_MSG(mel != NULL, "cannot make the log-mel of ../shared/data/audio/jfk.wav");
    sg_pool *pool = sg_pool_new(2);
    if (mel) {
        test_fixture("tests/fixtures/whisper_en", false, mel, frames, pool);
        test_fixture("tests/fixtures/whisper_ml", true, mel, frames, pool);
    }
    test_bad_files();
    sg_pool_free(pool);
    free(mel);
    return check_report("test_whisper_ggml");
}
