/* The server's speech synthesis hook: /health shows the synthesiser, "speak": true on a query adds
 * the answer's audio (Ogg Opus by default, WAV on request) that decodes back to speech, a bad
 * speak_format is 400, and with SG_TTS=off the answer comes without audio and says why. A bad
 * SG_TTS_VOICE stops the server at start. */
#include "agent/vad_silero.h"
#include "base/base64.h"
#include "check.h"
#include "media/audio.h"
#include "sgtest_server.h"
#include "sgtest_speech.h"

/* The decoded "audio" member: its length in seconds (0 when it does not decode). */
static double audio_seconds(json_t *audio, const char *want_format, const sg_vad_backend *vad,
                            double *speech)
{
    *speech = 0;
    const char *b64 = sgt_str(audio, "audio_base64");
    CHECK(strcmp(sgt_str(audio, "format"), want_format) == 0);
    uint8_t *raw = NULL;
    size_t len = 0;
    sg_error err = {0};
    if (sg_base64_decode(b64, strlen(b64), &raw, &len, &err) != SG_OK)
        return 0;
    const double secs = sgt_speech_seconds(raw, len, vad, speech);
    free(raw);
    return secs;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    sg_error err = {0};
    sg_vad_silero *v = sg_vad_silero_open("../shared/models/silero-vad-v6.2.0-ggml.bin", NULL, &err);
    CHECK_MSG(v != NULL, "%s", err.msg);
    if (!v)
        return check_report("test_server_tts");
    const sg_vad_backend *vad = sg_vad_silero_backend(v);

    sgt_server s;
    const char *env[] = {"SG_TTS_VOICE=slt", NULL};
    CHECK(sgt_start(&s, env, NULL) == 0);
    sgt_resp r = sgt_get(&s, "/health");
    CHECK(json_is_true(json_object_get(json_object_get(r.json, "models"), "tts")));
    CHECK(strcmp(sgt_str(json_object_get(r.json, "model_names"), "tts"), "flite-2.2 cmu_us_slt") == 0);
    sgt_resp_free(&r);

    char *sid = sgt_new_session(&s, NULL);
    char qpath[128];
    snprintf(qpath, sizeof qpath, "/sessions/%s/query", sid);

    /* without "speak", no audio */
    r = sgt_post_str(&s, qpath, "{\"text_query\":\"What time is it?\"}");
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_object_get(r.json, "audio") == NULL);
    sgt_resp_free(&r);

    /* "speak": true: Ogg Opus of the whole answer, speech to Silero */
    r = sgt_post_str(&s, qpath, "{\"text_query\":\"What time is it?\",\"speak\":true}");
    CHECK_EQ_INT(r.status, 200);
    json_t *audio = json_object_get(r.json, "audio");
    CHECK(json_is_object(audio) && json_integer_value(json_object_get(audio, "sample_rate")) == 16000);
    double speech, secs = audio_seconds(audio, "ogg", vad, &speech);
    double reported = json_number_value(json_object_get(audio, "duration_s"));
    CHECK_MSG(secs > 0.5 && fabs(secs - reported) < 0.03, "%.3f s decoded, %.3f reported", secs,
              reported);
    CHECK_MSG(speech > 0.5 * secs, "%.2f s of speech in %.2f s", speech, secs);
    CHECK(strlen(sgt_str(r.json, "response")) > 0);
    sgt_resp_free(&r);

    /* WAV on request */
    r = sgt_post_str(&s, qpath, "{\"text_query\":\"hello\",\"speak\":true,\"speak_format\":\"wav\"}");
    CHECK_EQ_INT(r.status, 200);
    secs = audio_seconds(json_object_get(r.json, "audio"), "wav", vad, &speech);
    CHECK(secs > 0.3 && speech > 0.3 * secs);
    sgt_resp_free(&r);

    /* a bad format or a non-boolean speak is the request's error */
    r = sgt_post_str(&s, qpath, "{\"text_query\":\"hello\",\"speak\":true,\"speak_format\":\"mp3\"}");
    sgt_expect_error(&r, 400, "INVALID_REQUEST", "mp3");
    sgt_resp_free(&r);
    r = sgt_post_str(&s, qpath, "{\"text_query\":\"hello\",\"speak\":\"yes\"}");
    CHECK_EQ_INT(r.status, 422); /* the API's answer to a field of the wrong type */
    sgt_resp_free(&r);
    free(sid);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);

    /* SG_TTS=off: the answer stands, the audio says why it is missing */
    const char *off[] = {"SG_TTS=off", NULL};
    CHECK(sgt_start(&s, off, NULL) == 0);
    r = sgt_get(&s, "/health");
    CHECK(json_is_false(json_object_get(json_object_get(r.json, "models"), "tts")));
    CHECK(json_is_null(json_object_get(json_object_get(r.json, "model_names"), "tts")));
    sgt_resp_free(&r);
    sid = sgt_new_session(&s, NULL);
    snprintf(qpath, sizeof qpath, "/sessions/%s/query", sid);
    r = sgt_post_str(&s, qpath, "{\"text_query\":\"hello\",\"speak\":true}");
    CHECK_EQ_INT(r.status, 200);
    audio = json_object_get(r.json, "audio");
    CHECK(strcmp(sgt_str(audio, "error"), "MODEL_UNAVAILABLE") == 0);
    CHECK(strstr(sgt_str(audio, "detail"), "SG_TTS=off") != NULL);
    sgt_resp_free(&r);
    free(sid);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);

    /* an unknown voice stops the server (exit 2) instead of speaking with another */
    const char *bad[] = {"SG_TTS_VOICE=nobody", NULL};
    CHECK(sgt_start(&s, bad, NULL) != 0);
    const char *badrate[] = {"SG_TTS_RATE=9", NULL};
    CHECK(sgt_start(&s, badrate, NULL) != 0);

    sg_vad_silero_free(v);
    curl_global_cleanup();
    return check_report("test_server_tts");
}
