/* Tests of `sg say` through the real binary: Ogg Opus and WAV files that decode back to speech of
 * the length the JSON reports (Silero hears it), the voice and rate options and their environment
 * defaults, long text spoken in part and flagged, and errors (empty text, unknown voice, bad rate,
 * bad format). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/vad_silero.h"
#include "check.h"
#include "media/audio.h"
#include "sgtest_cli.h"
#include "sgtest_speech.h"

#define VAD_MODEL "../shared/models/silero-vad-v6.2.0-ggml.bin"

static char dir[] = "/tmp/sg_cli_say_XXXXXX";

/* Runs `sg say ARGS` (stderr folded into stdout), returns its status and its output. */
static int say(const char *env, const char *args, char **out)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd %s && %s %s say %s 2>&1", dir, env ? env : "", SG_CLI_BIN, args);
    return sgt_run(cmd, out);
}

static json_t *first_json(const char *out)
{
    const char *brace = strchr(out, '{');
    return brace ? json_loads(brace, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
}

/* Decodes DIR/name; its duration (0 on failure) and the seconds of speech Silero finds in it. */
static double decoded_seconds(const char *name, const sg_vad_backend *vad, double *speech)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    uint8_t *buf = check_read_file(path, &len);
    const double secs = sgt_speech_seconds(buf, buf ? len : 0, vad, speech);
    free(buf);
    return secs;
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    sg_error err = {0};
    sg_vad_silero *v = sg_vad_silero_open(VAD_MODEL, NULL, &err);
    CHECK_MSG(v != NULL, "%s", err.msg);
    if (!v)
        return check_report("test_cli_say");
    const sg_vad_backend *vad = sg_vad_silero_backend(v);
    char *out;

    /* Ogg Opus by the extension */
    CHECK_EQ_INT(say(NULL, "-o hello.ogg \"Hello from the glasses. The door is on your left.\"", &out), 0);
    json_t *j = first_json(out);
    CHECK_MSG(j != NULL, "%s", out);
    double speech, secs = decoded_seconds("hello.ogg", vad, &speech);
    if (j) {
        CHECK(strcmp(json_string_value(json_object_get(j, "format")), "ogg") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "voice")), "flite-2.2 cmu_us_slt") == 0);
        CHECK(json_is_false(json_object_get(j, "truncated")));
        double d = json_number_value(json_object_get(j, "duration_s"));
        CHECK_MSG(fabs(secs - d) < 0.03 && d > 1.5 && d < 5, "%.3f decoded, %.3f reported", secs, d);
        CHECK_MSG(speech > 0.6 * secs, "%.2f s of speech in %.2f s", speech, secs);
    }
    json_decref(j);
    free(out);

    /* WAV by --format whatever the name; voice and rate from the environment, then options */
    CHECK_EQ_INT(say("SG_TTS_VOICE=kal SG_TTS_RATE=1", "-o a.bin --format wav Turn left here", &out), 0);
    j = first_json(out);
    CHECK(j && json_integer_value(json_object_get(j, "sample_rate")) == 8000);
    CHECK(j && strcmp(json_string_value(json_object_get(j, "format")), "wav") == 0);
    double slow = j ? json_number_value(json_object_get(j, "duration_s")) : 0;
    json_decref(j);
    free(out);
    CHECK_EQ_INT(say("SG_TTS_VOICE=kal", "-o b.wav --rate 2 Turn left here", &out), 0);
    j = first_json(out);
    double fast = j ? json_number_value(json_object_get(j, "duration_s")) : 0;
    CHECK_MSG(fast > 0.4 * slow && fast < 0.65 * slow, "rate 2: %.3f s vs %.3f s", fast, slow);
    json_decref(j);
    free(out);
    secs = decoded_seconds("b.wav", vad, &speech);
    CHECK(secs > 0.2 && speech > 0.5 * secs);

    /* 10,000 characters from stdin: the first 2,000 are spoken, and it says so */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "cd %s && for i in $(seq 500); do printf 'The lights are on now. '; done | "
             "%s say -o long.ogg - 2>err.txt", dir, SG_CLI_BIN);
    CHECK_EQ_INT(sgt_run(cmd, &out), 0);
    j = first_json(out);
    CHECK(j && json_is_true(json_object_get(j, "truncated")));
    CHECK(j && json_integer_value(json_object_get(j, "chars")) <= 2000);
    json_decref(j);
    free(out);
    snprintf(cmd, sizeof cmd, "cat %s/err.txt", dir);
    CHECK(sgt_prints(cmd, 0, "only its first"));

    /* errors: clear, with a non-zero status, and no file */
    CHECK_EQ_INT(say(NULL, "-o e.ogg '  ...  '", &out), 1);
    CHECK(strstr(out, "nothing to speak") != NULL);
    free(out);
    CHECK_EQ_INT(say(NULL, "-o e.ogg --voice bob hi", &out), 2);
    CHECK(strstr(out, "unknown voice 'bob'") && strstr(out, "slt kal kal16 awb rms"));
    free(out);
    CHECK_EQ_INT(say("SG_TTS_VOICE=nobody", "-o e.ogg hi", &out), 2);
    CHECK(strstr(out, "unknown voice 'nobody'") != NULL);
    free(out);
    CHECK_EQ_INT(say(NULL, "-o e.ogg --rate 3 hi", &out), 2);
    CHECK(strstr(out, "--rate") != NULL);
    free(out);
    CHECK_EQ_INT(say("SG_TTS_RATE=fast", "-o e.ogg hi", &out), 2);
    CHECK(strstr(out, "SG_TTS_RATE") != NULL);
    free(out);
    CHECK_EQ_INT(say(NULL, "-o e.mp3 --format mp3 hi", &out), 2);
    free(out);
    CHECK_EQ_INT(say(NULL, "hi", &out), 2);
    free(out);
    snprintf(cmd, sizeof cmd, "test -e %s/e.ogg", dir);
    CHECK(sgt_status(cmd) != 0);

    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    sgt_status(cmd);
    sg_vad_silero_free(v);
    return check_report("test_cli_say");
}
