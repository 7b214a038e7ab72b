/* `sg transcribe` and `sg bench whisper` through the real binary, with the tiny random Whisper
 * fixture (tests/fixtures/whisper_tiny; its text is gibberish, so values are compared with the
 * PyTorch reference's tokens and with the library's own pipeline, never with English) and the real
 * Silero v6.2 weights: the JSON shape, f32 tokens equal to the reference's, the VAD trimming the
 * silence of jfk.wav, stdin, a generated silent WAV giving no segment, and errors (exit 2 with a
 * message). */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/speech.h"
#include "check.h"
#include "sgtest_cli.h"
#include "media/audio.h"
#include "models/silero_vad.h"
#include "models/whisper.h"

#define MODEL "tests/fixtures/whisper_tiny"
#define VAD "../shared/models/silero-vad-v6.2.0-ggml.bin"
#define JFK "../shared/data/audio/jfk.wav"

static char errpath[64];

/* Runs cmd (stderr to errpath), returns its exit status and stdout (malloc'ed). */
static int run(const char *cmd, char **out)
{
    char full[1024];
    snprintf(full, sizeof full, "%s 2>%s", cmd, errpath);
    return sgt_run(full, out);
}

static char *stderr_text(void)
{
    size_t len;
    char *s = check_read_file(errpath, &len);
    return s ? s : calloc(1, 1);
}

/* A 16 kHz mono s16 WAV of n samples. */
static int write_wav(const char *path, const int16_t *pcm, uint32_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint32_t data = n * 2, riff = 36 + data, fmt = 16, rate = 16000, byte_rate = 32000;
    uint16_t pcm_fmt = 1, ch = 1, align = 2, bits = 16;
    fwrite("RIFF", 1, 4, f);
    fwrite(&riff, 4, 1, f);
    fwrite("WAVEfmt ", 1, 8, f);
    fwrite(&fmt, 4, 1, f);
    fwrite(&pcm_fmt, 2, 1, f);
    fwrite(&ch, 2, 1, f);
    fwrite(&rate, 4, 1, f);
    fwrite(&byte_rate, 4, 1, f);
    fwrite(&align, 2, 1, f);
    fwrite(&bits, 2, 1, f);
    fwrite("data", 1, 4, f);
    fwrite(&data, 4, 1, f);
    if (n)
        fwrite(pcm, 2, n, f);
    return fclose(f);
}

/* Checks the shape of one `sg transcribe` object; returns it parsed (caller frees). */
static json_t *check_shape(const char *out)
{
    json_t *j = json_loads(out, 0, NULL);
    CHECK_MSG(j != NULL, "not one JSON object: %s", out);
    if (!j)
        return NULL;
    CHECK(json_is_string(json_object_get(j, "text")));
    CHECK(json_is_string(json_object_get(j, "language")));
    json_t *segs = json_object_get(j, "segments");
    CHECK(json_is_array(segs));
    for (size_t i = 0; i < json_array_size(segs); i++) {
        json_t *s = json_array_get(segs, i);
        CHECK(json_is_number(json_object_get(s, "start")) && json_is_number(json_object_get(s, "end")));
        CHECK(json_number_value(json_object_get(s, "start")) < json_number_value(json_object_get(s, "end")));
        CHECK(json_is_string(json_object_get(s, "text")) && json_is_array(json_object_get(s, "tokens")));
        CHECK(json_is_number(json_object_get(s, "avg_logprob")) &&
              json_is_number(json_object_get(s, "no_speech_prob")) &&
              json_is_number(json_object_get(s, "compression_ratio")));
    }
    json_t *t = json_object_get(j, "timings_ms");
    const char *keys[] = {"load", "mel", "vad", "encode", "decode", "total"};
    for (int k = 0; k < 6; k++)
        CHECK_MSG(json_is_number(json_object_get(t, keys[k])), "timings_ms.%s", keys[k]);
    /* exactly one line */
    const char *nl = strchr(out, '\n');
    CHECK(nl && nl[1] == 0);
    return j;
}

/* The library's pipeline on the same input, as JSON (timings dropped), to compare with the CLI. */
static json_t *library_result(sg_precision prec, bool with_vad)
{
    sg_error err = {0};
    size_t len;
    uint8_t *wav = check_read_file(JFK, &len);
    sg_audio a;
    json_t *out = NULL;
    if (!wav || sg_audio_decode(wav, len, SG_AUDIO_AUTO, 0, 0, &a, &err) != SG_OK) {
        free(wav);
        return NULL;
    }
    free(wav);
    sg_whisper *m = sg_whisper_load(MODEL, prec, NULL, &err);
    sg_silero *v = with_vad ? sg_silero_load(VAD, &err) : NULL;
    sg_speech_result r;
    if (m && (!with_vad || v) && sg_speech_transcribe(m, v, a.samples, a.n, NULL, &r, &err) == SG_OK) {
        out = sg_speech_result_json(&r, 0);
        json_object_del(out, "timings_ms");
        sg_speech_result_free(&r);
    }
    sg_silero_free(v);
    sg_whisper_free(m);
    sg_audio_free(&a);
    return out;
}

/* The CLI's object (printed with 9 significant digits) against the library's: text, language,
 * windows and tokens exactly, the statistics to 1e-6. */
static bool same_result(json_t *cli, json_t *lib)
{
    if (!cli || !lib || !json_equal(json_object_get(cli, "text"), json_object_get(lib, "text")) ||
        !json_equal(json_object_get(cli, "language"), json_object_get(lib, "language")))
        return false;
    json_t *a = json_object_get(cli, "segments"), *b = json_object_get(lib, "segments");
    if (json_array_size(a) != json_array_size(b))
        return false;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *x = json_array_get(a, i), *y = json_array_get(b, i);
        const char *exact[] = {"text", "tokens", "start", "end"};
        for (int k = 0; k < 4; k++)
            if (!json_equal(json_object_get(x, exact[k]), json_object_get(y, exact[k])))
                return false;
        const char *near[] = {"avg_logprob", "no_speech_prob", "compression_ratio"};
        for (int k = 0; k < 3; k++) {
            double u = json_number_value(json_object_get(x, near[k]));
            double v = json_number_value(json_object_get(y, near[k]));
            if (fabs(u - v) > 1e-6 * (1 + fabs(v)))
                return false;
        }
    }
    return true;
}

int main(void)
{
    snprintf(errpath, sizeof errpath, "/tmp/sg_test_transcribe_%d.err", (int)getpid());
    char silence[64], cmd[1024];
    snprintf(silence, sizeof silence, "/tmp/sg_test_transcribe_%d.wav", (int)getpid());
    char *out;

    /* f32, no VAD: one 11 s window whose tokens are the PyTorch reference's */
    CHECK_EQ_INT(run(SG_CLI_BIN " transcribe --model " MODEL " --precision f32 --threads 2 " JFK, &out), 0);
    json_t *j = check_shape(out);
    free(out);
    json_error_t je;
    json_t *exp = json_load_file(MODEL "/expected.json", 0, &je);
    CHECK(exp != NULL);
    json_t *segs = json_object_get(j, "segments");
    CHECK_EQ_INT(json_array_size(segs), 1);
    json_t *s0 = json_array_get(segs, 0);
    CHECK(json_number_value(json_object_get(s0, "start")) == 0.0);
    CHECK(json_number_value(json_object_get(s0, "end")) == 11.0);
    CHECK_MSG(json_equal(json_object_get(s0, "tokens"), json_object_get(exp, "tokens")),
              "tokens differ from the reference");
    CHECK_NEAR(json_number_value(json_object_get(s0, "avg_logprob")),
               json_number_value(json_object_get(exp, "avg_logprob")), 1e-3);
    CHECK(strcmp(json_string_value(json_object_get(j, "language")), "en") == 0);
    CHECK(strcmp(json_string_value(json_object_get(j, "text")),
                 json_string_value(json_object_get(s0, "text"))) == 0);
    CHECK(json_number_value(json_object_get(json_object_get(j, "timings_ms"), "vad")) == 0);
    /* the same as the library gives (text, tokens, statistics) */
    json_t *lib = library_result(SG_PREC_F32, false);
    json_object_del(j, "timings_ms");
    CHECK_MSG(same_result(j, lib), "CLI and library differ");
    json_decref(lib);
    json_t *ref_text = json_object_get(exp, "text");
    if (json_is_string(ref_text))
        CHECK(strcmp(json_string_value(ref_text), json_string_value(json_object_get(j, "text"))) == 0);
    char *no_vad_f32 = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);

    /* stdin gives the same */
    CHECK_EQ_INT(run("cat " JFK " | " SG_CLI_BIN " transcribe --model " MODEL " --precision f32 -", &out), 0);
    j = check_shape(out);
    free(out);
    json_object_del(j, "timings_ms");
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK(s && no_vad_f32 && strcmp(s, no_vad_f32) == 0);
    free(s);
    json_decref(j);
    free(no_vad_f32);

    /* with the VAD: the silence before ~0.3 s and after ~10.6 s never reaches the encoder */
    CHECK_EQ_INT(run(SG_CLI_BIN " transcribe --model " MODEL " --precision f32 --vad " VAD " " JFK, &out), 0);
    j = check_shape(out);
    free(out);
    segs = json_object_get(j, "segments");
    CHECK_EQ_INT(json_array_size(segs), 1);
    s0 = json_array_get(segs, 0);
    double st0 = json_number_value(json_object_get(s0, "start")), en0 = json_number_value(json_object_get(s0, "end"));
    CHECK_MSG(st0 >= 0.2 && st0 <= 0.4 && en0 >= 10.5 && en0 <= 10.7, "segment %.3f-%.3f", st0, en0);
    CHECK(json_number_value(json_object_get(json_object_get(j, "timings_ms"), "vad")) > 0);
    lib = library_result(SG_PREC_F32, true);
    json_object_del(j, "timings_ms");
    CHECK_MSG(same_result(j, lib), "CLI and library differ with the VAD");
    json_decref(lib);
    json_decref(j);

    /* int8 is the default precision; it runs and has the same shape */
    CHECK_EQ_INT(run(SG_CLI_BIN " transcribe --model " MODEL " " JFK, &out), 0);
    j = check_shape(out);
    free(out);
    lib = library_result(SG_PREC_Q8, false);
    json_object_del(j, "timings_ms");
    CHECK_MSG(same_result(j, lib), "int8: CLI and library differ");
    json_decref(lib);
    json_decref(j);

    /* options: --max-tokens, --audio-ctx, --language on an English-only model */
    CHECK_EQ_INT(run(SG_CLI_BIN " transcribe --model " MODEL " --precision f32 --max-tokens 2 "
                     "--audio-ctx 250 --language de " JFK, &out), 0);
    j = check_shape(out);
    free(out);
    segs = json_object_get(j, "segments");
    CHECK_EQ_INT(json_array_size(segs), 3); /* 5 s windows */
    for (size_t i = 0; i < json_array_size(segs); i++)
        CHECK(json_array_size(json_object_get(json_array_get(segs, i), "tokens")) <= 2);
    CHECK(strcmp(json_string_value(json_object_get(j, "language")), "en") == 0);
    json_decref(j);
    CHECK_EQ_INT(run(SG_CLI_BIN " transcribe --model " MODEL " --audio-ctx auto " JFK, &out), 0);
    j = check_shape(out);
    free(out);
    CHECK_EQ_INT(json_array_size(json_object_get(j, "segments")), 1);
    json_decref(j);

    /* silence (a generated WAV): with the VAD, no segment, no text, no encoder work */
    int16_t *z = calloc(16000 * 4, sizeof(int16_t));
    CHECK(write_wav(silence, z, 16000 * 4) == 0);
    free(z);
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " transcribe --model " MODEL " --vad " VAD " %s", silence);
    CHECK_EQ_INT(run(cmd, &out), 0);
    j = check_shape(out);
    free(out);
    CHECK(j && json_array_size(json_object_get(j, "segments")) == 0);
    CHECK(j && strcmp(json_string_value(json_object_get(j, "text")), "") == 0);
    CHECK(j && json_number_value(json_object_get(json_object_get(j, "timings_ms"), "encode")) == 0);
    json_decref(j);

    /* with the fixture's vocabulary (vocab.json + merges.txt: GPT-2's first 1000 tokens): the
     * reference's 16 tokens 363 are "ag" each; the text is the segments' texts joined,
     * compression_ratio openai's (Python: len(b"ag" * 16) / len(zlib.compress(b"ag" * 16)) = 32 / 12) */
    CHECK_EQ_INT(run(SG_CLI_BIN " transcribe --model " MODEL " --precision f32 " JFK, &out), 0);
    j = check_shape(out);
    free(out);
    CHECK(j && strcmp(json_string_value(json_object_get(j, "text")), "agagagagagagagagagagagagagagagag") == 0);
    s0 = json_array_get(json_object_get(j, "segments"), 0);
    CHECK_NEAR(json_number_value(json_object_get(s0, "compression_ratio")), 32.0 / 12.0, 1e-6);
    CHECK(json_equal(json_object_get(s0, "tokens"), json_object_get(exp, "tokens")));
    json_decref(j);
    char *e0 = stderr_text();
    CHECK_MSG(strstr(e0, "no vocabulary") == NULL, "%s", e0);
    free(e0);

    /* a multilingual whisper.cpp file (tests/fixtures/whisper_ml): the language is detected, or
     * given with --translate; the reference's tokens and text */
    json_t *mexp = json_load_file("tests/fixtures/whisper_ml/expected.json", 0, &je);
    CHECK(mexp != NULL);
    CHECK_EQ_INT(run(SG_CLI_BIN " transcribe --model tests/fixtures/whisper_ml/ggml-model.bin "
                     "--precision f32 " JFK, &out), 0);
    j = check_shape(out);
    free(out);
    json_t *def = json_object_get(mexp, "default");
    CHECK(j && json_equal(json_object_get(j, "language"),
                          json_object_get(json_object_get(mexp, "detect"), "code")));
    CHECK(j && json_equal(json_object_get(j, "text"), json_object_get(def, "text")));
    s0 = json_array_get(json_object_get(j, "segments"), 0);
    CHECK(json_equal(json_object_get(s0, "tokens"), json_object_get(def, "tokens")));
    json_decref(j);
    CHECK_EQ_INT(run(SG_CLI_BIN " transcribe --model tests/fixtures/whisper_ml/ggml-model.bin "
                     "--precision f32 --language en --translate " JFK, &out), 0);
    j = check_shape(out);
    free(out);
    CHECK(j && strcmp(json_string_value(json_object_get(j, "language")), "en") == 0);
    s0 = json_array_get(json_object_get(j, "segments"), 0);
    CHECK(json_equal(json_object_get(s0, "tokens"),
                     json_object_get(json_object_get(mexp, "en_translate"), "tokens")));
    json_decref(j);
    json_decref(mexp);
    CHECK_EQ_INT(run(SG_CLI_BIN " transcribe --model tests/fixtures/whisper_ml/ggml-model.bin "
                     "--language klingon " JFK, &out), 2);
    free(out);
    char *e1 = stderr_text();
    CHECK_MSG(strstr(e1, "unknown language") != NULL, "%s", e1);
    free(e1);

    /* bench whisper: medians as JSON */
    CHECK_EQ_INT(run(SG_CLI_BIN " bench whisper --model " MODEL " --runs 2 --vad " VAD " " JFK, &out), 0);
    j = json_loads(out, 0, NULL);
    CHECK_MSG(j != NULL, "%s", out);
    free(out);
    json_t *med = json_object_get(j, "median_ms");
    const char *mk[] = {"mel", "vad", "encode", "decode", "decode_per_token", "total"};
    for (int k = 0; k < 6; k++)
        CHECK_MSG(json_is_number(json_object_get(med, mk[k])) &&
                  json_number_value(json_object_get(med, mk[k])) > 0, "median_ms.%s", mk[k]);
    CHECK(json_integer_value(json_object_get(j, "runs")) == 2);
    CHECK(json_integer_value(json_object_get(j, "windows")) == 1);
    CHECK(json_integer_value(json_object_get(j, "tokens")) > 0);
    json_decref(j);

    /* errors: exit 2 and a message that says what is wrong */
    struct {
        const char *cmd, *msg;
    } bad[] = {
        {SG_CLI_BIN " transcribe --model /nonexistent/model " JFK, "/nonexistent/model"},
        {SG_CLI_BIN " transcribe --model " VAD " " JFK, "cannot load the Whisper model"},
        {SG_CLI_BIN " transcribe --model " MODEL " /nonexistent.wav", "/nonexistent.wav"},
        {SG_CLI_BIN " transcribe --model " MODEL " " MODEL "/config.json", "config.json"},
        {SG_CLI_BIN " transcribe --model " MODEL " --vad " JFK " " JFK, "VAD"},
        {SG_CLI_BIN " transcribe --model " MODEL " --precision f16 " JFK, "precision"},
        {SG_CLI_BIN " transcribe --model " MODEL " --audio-ctx 10 " JFK, "audio_ctx"},
        {SG_CLI_BIN " transcribe --model " MODEL " --audio-ctx x " JFK, "audio-ctx"},
        {SG_CLI_BIN " transcribe --model " MODEL " --translate " JFK, "English-only"},
        {SG_CLI_BIN " transcribe --model " MODEL " --runs 3 " JFK, "bench"},
        {SG_CLI_BIN " transcribe --model " MODEL, "AUDIO"},
        {SG_CLI_BIN " transcribe " JFK, "--model"},
        {SG_CLI_BIN " transcribe --model " MODEL " --format pcm_s16le " JFK, "sample-rate"},
        {SG_CLI_BIN " bench whisper --model /nonexistent " JFK, "/nonexistent"},
        {SG_CLI_BIN " bench whisper --model " MODEL " --runs 0 " JFK, "runs"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(run(bad[i].cmd, &out) == 2, "%s", bad[i].cmd);
        CHECK_MSG(*out == 0, "%s printed to stdout: %s", bad[i].cmd, out);
        free(out);
        char *e = stderr_text();
        CHECK_MSG(strstr(e, bad[i].msg) != NULL, "%s: stderr '%s' lacks '%s'", bad[i].cmd, e, bad[i].msg);
        free(e);
    }

    CHECK_EQ_INT(run(SG_CLI_BIN " --help", &out), 0);
    CHECK(strstr(out, "transcribe --model") != NULL && strstr(out, "bench whisper") != NULL);
    free(out);

    json_decref(exp);
    unlink(silence);
    unlink(errpath);
    return check_report("test_cli_transcribe");
}
