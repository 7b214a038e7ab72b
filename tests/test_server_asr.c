/* The server with Whisper (the tiny random fixture, tests/fixtures/whisper_tiny) and Silero VAD
 * (the real v6.2 weights): /health reports the ASR model, POST /audio with jfk.wav returns exactly
 * the transcript `sg transcribe` gives for the same file and options, a query with that audio uses
 * the transcript as its query, silent audio is "speech": false, the environment variables work,
 * a model that cannot load (or has no vocabulary) stops the server with exit 2 and the reason, and
 * without --asr-model speech is still 503 MODEL_UNAVAILABLE. The fixture's text is gibberish
 * (random weights): it is compared with the CLI's, never with English. */
#include <stdbool.h>

#include "base/base64.h"
#include "check.h"
#include "sgtest_server.h"
#include "sgtest_whisper.h"

static const char model[] = "tests/fixtures/whisper_tiny"; /* with vocab.json + merges.txt */
#define VAD "../shared/models/silero-vad-v6.2.0-ggml.bin"
#define JFK "../shared/data/audio/jfk.wav"

/* The text `sg transcribe ARGS JFK` prints (malloc'ed), NULL on failure. */
static char *cli_text(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, SG_CLI_BIN " transcribe --model %s %s " JFK, model, args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    json_t *j = json_loads(buf, 0, NULL);
    char *t = j && st == 0 && json_is_string(json_object_get(j, "text"))
                  ? strdup(json_string_value(json_object_get(j, "text")))
                  : NULL;
    json_decref(j);
    return t;
}

/* A new session's /audio and /query paths (128 bytes each). */
static void session_paths(sgt_server *s, char *apath, char *qpath)
{
    char *id = sgt_new_session(s, NULL);
    snprintf(apath, 128, "/sessions/%s/audio", id);
    snprintf(qpath, 128, "/sessions/%s/query", id);
    free(id);
}

/* POST /audio of jfk.wav (raw): speech, transcribed as the CLI does (want). */
static sgt_resp post_jfk(const sgt_server *s, const char *apath, const char *wav, size_t wav_len,
                         const char *want)
{
    const char *ct[] = {"Content-Type: audio/wav", NULL};
    sgt_resp r = sgt_request(s, "POST", apath, ct, wav, wav_len);
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_is_true(json_object_get(r.json, "speech")));
    CHECK_MSG(want && strcmp(sgt_str(r.json, "transcript"), want) == 0, "server '%s' vs CLI '%s'",
              sgt_str(r.json, "transcript"), want ? want : "");
    return r;
}

/* Runs sg-edge with args until it exits (expected to fail at start), returns its exit status and
 * its stderr in err. */
static int failing_start(const char *args, char *err, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, SG_EDGE_BIN " --host 127.0.0.1 --port %d --log-level warn %s 2>&1 >/dev/null",
             sgt_free_port(), args);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(err, 1, cap - 1, p) : 0;
    err[n] = 0;
    int st = p ? pclose(p) : -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    char *want_vad = cli_text("--precision f32 --vad " VAD);
    char *want_plain = cli_text("--precision int8");
    CHECK(want_vad && *want_vad && want_plain);
    size_t wav_len = 0;
    char *wav = sgt_read_file(JFK, &wav_len);
    CHECK(wav != NULL);
    char *wav_b64 = wav ? sg_base64_encode((const uint8_t *)wav, wav_len, NULL) : NULL;
    const char *ct[] = {"Content-Type: audio/wav", NULL};
    char apath[128], qpath[128];

    /* --asr-model + --vad-model, f32 */
    sgt_server s;
    const char *args[] = {"--asr-model", model, "--asr-precision", "f32", "--vad-model", VAD,
                          "--threads", "2", NULL};
    CHECK(sgt_start(&s, NULL, args) == 0);
    CHECK(sgt_wait_ready(&s));
    sgt_resp r = sgt_get(&s, "/health");
    CHECK(json_is_true(json_object_get(json_object_get(r.json, "models"), "asr")));
    CHECK(json_is_true(json_object_get(json_object_get(r.json, "models"), "vad")));
    CHECK_MSG(strcmp(sgt_str(json_object_get(r.json, "model_names"), "asr"), "whisper_tiny f32") == 0,
              "asr name '%s'", sgt_str(json_object_get(r.json, "model_names"), "asr"));
    sgt_resp_free(&r);
    session_paths(&s, apath, qpath);

    /* /audio: the CLI's transcript (same VAD, same windows, same model) */
    r = post_jfk(&s, apath, wav, wav_len, want_vad);
    json_t *lat = json_object_get(r.json, "latency_ms");
    CHECK(json_real_value(json_object_get(lat, "vad")) > 0 && json_real_value(json_object_get(lat, "asr")) > 0);
    sgt_resp_free(&r);
    /* base64 JSON with a language gives the same (.en model: the language changes nothing) */
    json_t *body = json_pack("{s:s,s:s,s:s}", "audio_base64", wav_b64 ? wav_b64 : "", "format", "wav",
                             "language", "en");
    r = sgt_post_json(&s, apath, body);
    json_decref(body);
    CHECK_EQ_INT(r.status, 200);
    CHECK(want_vad && strcmp(sgt_str(r.json, "transcript"), want_vad) == 0);
    sgt_resp_free(&r);

    /* /query with the audio: the transcript is the query (the rule-based responder answers it) */
    body = json_pack("{s:s,s:s}", "audio", wav_b64 ? wav_b64 : "", "text", "typed words lose");
    r = sgt_post_json(&s, qpath, body);
    json_decref(body);
    CHECK_EQ_INT(r.status, 200);
    CHECK(want_vad && strcmp(sgt_str(r.json, "transcript"), want_vad) == 0);
    CHECK_MSG(want_vad && strcmp(sgt_str(r.json, "query"), want_vad) == 0, "query '%s'",
              sgt_str(r.json, "query"));
    json_t *meta = json_object_get(r.json, "metadata");
    CHECK(strcmp(sgt_str(json_object_get(meta, "models"), "asr"), "whisper_tiny f32") == 0);
    CHECK(json_real_value(json_object_get(json_object_get(meta, "latency_ms"), "asr")) > 0);
    sgt_resp_free(&r);

    /* silence: "speech": false, and the ASR does no work */
    size_t zn = 16000 * 2 * 2;
    uint8_t *zeros = calloc(1, zn);
    char *sil = sg_base64_encode(zeros, zn, NULL);
    free(zeros);
    body = json_pack("{s:s,s:s,s:i}", "audio_base64", sil, "format", "pcm_s16le", "sample_rate", 16000);
    r = sgt_post_json(&s, apath, body);
    json_decref(body);
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_is_false(json_object_get(r.json, "speech")));
    CHECK(strcmp(sgt_str(r.json, "transcript"), "") == 0);
    CHECK(json_real_value(json_object_get(json_object_get(r.json, "latency_ms"), "asr")) == 0);
    sgt_resp_free(&r);
    sgt_expect_silent_query(&s, qpath, sil);
    r = sgt_get(&s, "/metrics");
    CHECK(json_integer_value(json_object_get(json_object_get(json_object_get(r.json, "latencies"), "asr"), "count")) >= 3);
    sgt_resp_free(&r);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);

    /* the multilingual ggml fixture through the server: a language it does not know is a 422
     * (the field's value), not an audio error; a known one is used */
    {
        sgt_server m;
        const char *margs[] = {"--asr-model", "tests/fixtures/whisper_ml/ggml-model.bin",
                               "--asr-precision", "f32", NULL};
        CHECK(sgt_start(&m, NULL, margs) == 0);
        CHECK(sgt_wait_ready(&m));
        char mapath[128], mqpath[128];
        session_paths(&m, mapath, mqpath);
        json_t *b = json_pack("{s:s,s:s}", "audio", wav_b64 ? wav_b64 : "", "language", "xx");
        sgt_resp mr = sgt_post_json(&m, mapath, b);
        json_decref(b);
        CHECK_EQ_INT(mr.status, 422);
        CHECK(strcmp(sgt_str(mr.json, "error"), "INVALID_REQUEST") == 0);
        CHECK(strstr(sgt_str(mr.json, "detail"), "unknown language") != NULL);
        sgt_resp_free(&mr);
        b = json_pack("{s:s,s:s}", "audio", wav_b64 ? wav_b64 : "", "language", "de");
        mr = sgt_post_json(&m, mapath, b);
        json_decref(b);
        CHECK_EQ_INT(mr.status, 200);
        CHECK(json_is_true(json_object_get(mr.json, "speech")));
        sgt_resp_free(&mr);
        CHECK_EQ_INT(sgt_stop(&m, SIGTERM), 0);
    }

    /* the environment: SG_ASR_MODEL (int8 by default), no VAD: the whole audio is transcribed, as
     * `sg transcribe` without --vad does */
    char env_model[160];
    snprintf(env_model, sizeof env_model, "SG_ASR_MODEL=%s", model);
    const char *env[] = {env_model, NULL};
    CHECK(sgt_start(&s, env, NULL) == 0);
    CHECK(sgt_wait_ready(&s));
    r = sgt_get(&s, "/health");
    CHECK(strcmp(sgt_str(json_object_get(r.json, "model_names"), "asr"), "whisper_tiny int8") == 0);
    CHECK(json_is_false(json_object_get(json_object_get(r.json, "models"), "vad")));
    sgt_resp_free(&r);
    session_paths(&s, apath, qpath);
    r = post_jfk(&s, apath, wav, wav_len, want_plain);
    sgt_resp_free(&r);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);

    /* without an ASR model speech is still 503 MODEL_UNAVAILABLE (the environment is empty) */
    const char *novad[] = {"--vad-model", VAD, NULL};
    const char *empty_env[] = {"SG_ASR_MODEL=", NULL};
    CHECK(sgt_start(&s, empty_env, novad) == 0);
    CHECK(sgt_wait_ready(&s));
    session_paths(&s, apath, qpath);
    r = sgt_request(&s, "POST", apath, ct, wav, wav_len);
    CHECK_EQ_INT(r.status, 503);
    CHECK(strcmp(sgt_str(r.json, "error"), "MODEL_UNAVAILABLE") == 0);
    sgt_resp_free(&r);
    r = sgt_get(&s, "/health");
    CHECK(json_is_false(json_object_get(json_object_get(r.json, "models"), "asr")));
    sgt_resp_free(&r);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);

    /* models that cannot load: exit 2 with the reason */
    char err[8192];
    CHECK_EQ_INT(failing_start("--asr-model /nonexistent/whisper", err, sizeof err), 2);
    CHECK_MSG(strstr(err, "cannot load the speech model /nonexistent/whisper") != NULL, "%s", err);
    CHECK_EQ_INT(failing_start("--asr-model " VAD, err, sizeof err), 2); /* a ggml file, not Whisper */
    CHECK_MSG(strstr(err, "cannot load the speech model") != NULL, "%s", err);
    char a2[256];
    snprintf(a2, sizeof a2, "--asr-model %s --asr-precision f16", model);
    CHECK_EQ_INT(failing_start(a2, err, sizeof err), 2);
    CHECK_MSG(strstr(err, "--asr-precision") != NULL, "%s", err);
    /* a model without a vocabulary: refused, it could only produce token ids */
    char nodir[64], nomodel[128];
    snprintf(nodir, sizeof nodir, "/tmp/sg_test_server_asr_nv_%d", (int)getpid());
    CHECK(sgt_whisper_novocab_make(nodir, nomodel, sizeof nomodel) == 0);
    snprintf(a2, sizeof a2, "--asr-model %s", nomodel);
    CHECK_EQ_INT(failing_start(a2, err, sizeof err), 2);
    CHECK_MSG(strstr(err, "vocabulary") != NULL, "%s", err);
    sgt_whisper_novocab_remove(nodir, nomodel);

    free(sil);
    free(wav_b64);
    free(wav);
    free(want_vad);
    free(want_plain);
    curl_global_cleanup();
    return check_report("test_server_asr");
}
