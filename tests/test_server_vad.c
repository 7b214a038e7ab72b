/* The server with Silero VAD (the real v6.2 weights from ../shared): audio without speech is
 * answered "speech": false without any ASR work, audio with speech still needs an ASR model
 * (503 MODEL_UNAVAILABLE), and a query whose audio is silent falls back to its text. */
#include "base/base64.h"
#include "check.h"
#include "sgtest_server.h"

static char *silence_b64(double seconds)
{
    size_t n = (size_t)(seconds * 16000) * 2;
    uint8_t *pcm = calloc(1, n);
    char *b = sg_base64_encode(pcm, n, NULL);
    free(pcm);
    return b;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    sgt_server s;
    const char *args[] = {"--vad-model", "../shared/models/silero-vad-v6.2.0-ggml.bin", NULL};
    CHECK(sgt_start(&s, NULL, args) == 0);
    CHECK(sgt_wait_ready(&s));
    sgt_resp r = sgt_get(&s, "/health");
    CHECK(json_is_true(json_object_get(json_object_get(r.json, "models"), "vad")));
    CHECK(json_is_false(json_object_get(json_object_get(r.json, "models"), "asr")));
    sgt_resp_free(&r);

    r = sgt_request(&s, "POST", "/sessions", NULL, "{}", 2);
    char apath[128], qpath[128];
    snprintf(apath, sizeof apath, "/sessions/%s/audio", sgt_str(r.json, "session_id"));
    snprintf(qpath, sizeof qpath, "/sessions/%s/query", sgt_str(r.json, "session_id"));
    sgt_resp_free(&r);

    /* 3 s of silence as the Android client sends it: headerless PCM with a rate */
    char *sil = silence_b64(3.0);
    json_t *body = json_pack("{s:s,s:s,s:i}", "audio_base64", sil, "format", "pcm_s16le", "sample_rate", 16000);
    r = sgt_post_json(&s, apath, body);
    json_decref(body);
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_is_false(json_object_get(r.json, "speech")));
    CHECK(strcmp(sgt_str(r.json, "transcript"), "") == 0);
    CHECK(json_real_value(json_object_get(json_object_get(r.json, "latency_ms"), "vad")) > 0);
    sgt_resp_free(&r);

    /* real speech: VAD finds it, and transcribing it needs the ASR model this server lacks */
    size_t len;
    char *wav = sgt_read_file("../shared/data/audio/jfk.wav", &len);
    const char *ct[] = {"Content-Type: audio/wav", NULL};
    r = sgt_request(&s, "POST", apath, ct, wav, len);
    CHECK_EQ_INT(r.status, 503);
    CHECK(strcmp(sgt_str(r.json, "error"), "MODEL_UNAVAILABLE") == 0);
    sgt_resp_free(&r);
    free(wav);

    sgt_expect_silent_query(&s, qpath, sil);
    /* silent audio alone is nothing to answer */
    body = json_pack("{s:s,s:s,s:i}", "audio", sil, "format", "pcm_s16le", "sample_rate", 16000);
    r = sgt_post_json(&s, qpath, body);
    json_decref(body);
    CHECK_EQ_INT(r.status, 400);
    sgt_resp_free(&r);
    free(sil);

    r = sgt_get(&s, "/metrics");
    CHECK(json_integer_value(json_object_get(json_object_get(json_object_get(r.json, "latencies"), "vad"), "count")) >= 2);
    sgt_resp_free(&r);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);

    /* a VAD file that does not load stops the server */
    const char *bad[] = {"--vad-model", "../shared/models/for-tests-ggml-tiny.bin", NULL};
    if (sgt_start(&s, NULL, bad) == 0)
        CHECK_EQ_INT(sgt_stop(&s, 0), 2);
    curl_global_cleanup();
    return check_report("test_server_vad");
}
