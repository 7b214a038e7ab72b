/* Tests of `sg vad` through the real binary: jfk.wav as WAV and as headerless PCM (the same
 * segments), silence, the JSON shape, and errors. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sgtest_cli.h"

#define MODEL "../shared/models/silero-vad-v6.2.0-ggml.bin"
#define JFK "../shared/data/audio/jfk.wav"

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* The "data" chunk of a RIFF/WAVE file (jfk.wav is 16 kHz mono s16). */
static const uint8_t *wav_data(const uint8_t *b, size_t len, size_t *n)
{
    size_t o = 12;
    while (o + 8 <= len) {
        uint32_t sz = (uint32_t)b[o + 4] | (uint32_t)b[o + 5] << 8 | (uint32_t)b[o + 6] << 16 |
                      (uint32_t)b[o + 7] << 24;
        if (memcmp(b + o, "data", 4) == 0) {
            *n = sz <= len - o - 8 ? sz : len - o - 8;
            return b + o + 8;
        }
        o += 8 + sz + (sz & 1);
    }
    return NULL;
}

/* Checks one `sg vad` JSON line; returns its segments (owned by the caller, json_decref). */
static json_t *check_vad_json(const char *line, size_t windows)
{
    json_t *j = json_loads(line, 0, NULL);
    CHECK_MSG(j != NULL, "not JSON: %s", line);
    if (!j)
        return NULL;
    json_t *segs = json_object_get(j, "segments");
    CHECK(json_is_array(segs));
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "windows")), windows);
    double mean = json_number_value(json_object_get(j, "probs_mean"));
    CHECK(mean >= 0.0 && mean <= 1.0);
    json_t *t = json_object_get(j, "timings_ms");
    CHECK(json_is_number(json_object_get(t, "load")) && json_is_number(json_object_get(t, "vad")));
    json_incref(segs);
    json_decref(j);
    return segs;
}

int main(void)
{
    char *out;
    /* jfk.wav: the speech, in four phrases, from ~0.3 s to ~10.6 s */
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " vad --model " MODEL " " JFK, &out), 0);
    json_t *segs = check_vad_json(out, 344);
    free(out);
    size_t n = json_array_size(segs);
    CHECK(n >= 1);
    if (n >= 1) {
        double s0 = json_number_value(json_object_get(json_array_get(segs, 0), "start"));
        double e1 = json_number_value(json_object_get(json_array_get(segs, n - 1), "end"));
        CHECK_MSG(s0 >= 0.2 && s0 <= 0.4, "first start %.3f", s0);
        CHECK_MSG(e1 >= 10.5 && e1 <= 10.7, "last end %.3f", e1);
        for (size_t i = 0; i < n; i++)
            CHECK(json_number_value(json_object_get(json_array_get(segs, i), "start")) <= 10.8);
    }

    /* the same samples as headerless s16 and f32 PCM give the same segments */
    size_t len, dn = 0;
    uint8_t *wav = check_read_file(JFK, &len);
    const uint8_t *pcm = wav ? wav_data(wav, len, &dn) : NULL;
    CHECK(pcm != NULL && dn == 352000);
    char raw[64], rawf[64], zeros[64];
    snprintf(raw, sizeof raw, "/tmp/sg_test_vad_%d.s16", (int)getpid());
    snprintf(rawf, sizeof rawf, "/tmp/sg_test_vad_%d.f32", (int)getpid());
    snprintf(zeros, sizeof zeros, "/tmp/sg_test_vad_%d.zero", (int)getpid());
    if (pcm) {
        CHECK(write_file(raw, pcm, dn) == 0);
        float *f = malloc(dn / 2 * sizeof(float));
        for (size_t i = 0; i < dn / 2; i++)
            f[i] = (float)(int16_t)(pcm[2 * i] | pcm[2 * i + 1] << 8) / 32768.0f;
        CHECK(write_file(rawf, f, dn / 2 * sizeof(float)) == 0);
        free(f);
    }
    free(wav);
    char cmd[512];
    const char *fmts[][2] = {{"pcm_s16le", raw}, {"pcm_f32le", rawf}};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd, SG_CLI_BIN " vad --model " MODEL " --format %s --sample-rate 16000 %s",
                 fmts[k][0], fmts[k][1]);
        CHECK_EQ_INT(sgt_run(cmd, &out), 0);
        json_t *s2 = check_vad_json(out, 344);
        CHECK_MSG(s2 && json_equal(s2, segs), "%s: %s", fmts[k][0], out);
        json_decref(s2);
        free(out);
    }
    json_decref(segs);

    /* 11 s of silence: no segment; --probs lists every window */
    float *z = calloc(11 * 16000, sizeof(float));
    CHECK(write_file(zeros, z, 11 * 16000 * sizeof(float)) == 0);
    free(z);
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " vad --model " MODEL " --format f32le --sample-rate 16000 --probs %s",
             zeros);
    CHECK_EQ_INT(sgt_run(cmd, &out), 0);
    json_t *j = json_loads(out, 0, NULL);
    CHECK(j && json_array_size(json_object_get(j, "segments")) == 0);
    CHECK(j && json_array_size(json_object_get(j, "probs")) == 344);
    json_decref(j);
    free(out);

    /* two files: two lines */
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " vad --model " MODEL " " JFK " " JFK, &out), 0);
    int lines = 0;
    for (char *p = out; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    CHECK_EQ_INT(lines, 2);
    free(out);

    /* errors: usage (2), a bad model or audio (1, the audio's error as JSON) */
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " vad " JFK " 2>/dev/null", &out), 2); /* no --model */
    free(out);
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " vad --model " MODEL " 2>/dev/null", &out), 2); /* no audio */
    free(out);
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " vad --model " MODEL " --format mp3 " JFK " 2>/dev/null", &out), 2);
    free(out);
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " vad --model " MODEL " --format pcm_s16le %s 2>/dev/null", raw);
    CHECK_EQ_INT(sgt_run(cmd, &out), 2); /* PCM without a rate */
    free(out);
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " vad --model /nonexistent.bin " JFK " 2>/dev/null", &out), 1);
    free(out);
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " vad --model " JFK " " JFK " 2>/dev/null", &out), 1); /* not a model */
    free(out);
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " vad --model " MODEL " /nonexistent.wav " JFK, &out), 1);
    CHECK(strstr(out, "\"error\"") != NULL && strstr(out, "\"segments\"") != NULL);
    free(out);
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " vad --model " MODEL " " MODEL, &out), 1); /* not audio */
    CHECK(strstr(out, "\"error\"") != NULL);
    free(out);
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " --help", &out), 0);
    CHECK(strstr(out, "vad --model") != NULL);
    free(out);

    unlink(raw);
    unlink(rawf);
    unlink(zeros);
    return check_report("test_cli_vad");
}
