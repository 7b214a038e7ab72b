/* Integration tests of the DAT routes (/dat/session, /dat/stream, /dat/turn/complete) through the
 * real build/sg-edge binary: session shape, audio chunks of ../shared/data/audio/jfk.wav buffered
 * with duplicates and out-of-order numbers, frames and IMU, every bad-input class, the buffer
 * limits under both policies, turns over the buffer (text + frame, audio without ASR, silence
 * with the Silero VAD, Whisper when the server has --asr-model), buffers cleared after a turn and
 * on session deletion, and dat_metrics in /metrics/summary. */
#include <math.h>
#include <pthread.h>

#include "base/base64.h"
#include "base/uuid.h"
#include "check.h"
#include "sgtest_server.h"

#define CHUNK_BYTES 3200 /* 100 ms of 16 kHz mono s16le */

static uint8_t *jfk_pcm;  /* jfk.wav's samples (s16le, 16 kHz mono) */
static size_t jfk_len;

static void load_jfk(void)
{
    size_t len;
    uint8_t *wav = (uint8_t *)sgt_read_file("../shared/data/audio/jfk.wav", &len);
    CHECK(wav && len > 44);
    /* find the data chunk */
    size_t pos = 12;
    while (wav && pos + 8 <= len) {
        uint32_t n = (uint32_t)wav[pos + 4] | (uint32_t)wav[pos + 5] << 8 |
                     (uint32_t)wav[pos + 6] << 16 | (uint32_t)wav[pos + 7] << 24;
        if (memcmp(wav + pos, "data", 4) == 0) {
            jfk_len = n <= len - pos - 8 ? n : len - pos - 8;
            jfk_pcm = malloc(jfk_len);
            memcpy(jfk_pcm, wav + pos + 8, jfk_len);
            break;
        }
        pos += 8 + n + (n & 1);
    }
    free(wav);
    CHECK(jfk_pcm && jfk_len == 176000 * 2);
}

static char *b64(const void *p, size_t n) { return sg_base64_encode(p, n, NULL); }

/* POSTs one chunk; meta is stolen (may be NULL). */
static sgt_resp chunk(const sgt_server *s, const char *id, const char *type, long long seq,
                      const char *payload, json_t *meta)
{
    json_t *b = json_pack("{s:s,s:s,s:I,s:I,s:s}", "session_id", id, "chunk_type", type,
                          "sequence_number", (json_int_t)seq, "timestamp_ms",
                          (json_int_t)(1702080000000LL + seq * 100), "payload", payload);
    if (meta)
        json_object_set_new(b, "meta", meta);
    sgt_resp r = sgt_post_json(s, "/dat/stream", b);
    json_decref(b);
    return r;
}

/* Audio chunk k of jfk.wav (100 ms each), numbered seq. */
static sgt_resp jfk_chunk(const sgt_server *s, const char *id, int k, long long seq)
{
    char *p = b64(jfk_pcm + (size_t)k * CHUNK_BYTES, CHUNK_BYTES);
    sgt_resp r = chunk(s, id, "audio", seq, p,
                       json_pack("{s:i,s:i,s:s,s:i}", "sample_rate", 16000, "channels", 1, "format",
                                 "pcm_s16le", "duration_ms", 100));
    free(p);
    return r;
}

/* An audio chunk of nbytes of jfk.wav's PCM that is over a buffer limit on its own: 413. */
static void expect_chunk_too_big(const sgt_server *s, const char *id, long long seq, size_t nbytes,
                                 const char *what)
{
    char *p = b64(jfk_pcm, nbytes);
    sgt_resp r = chunk(s, id, "audio", seq, p, NULL);
    sgt_expect_error(&r, 413, "PAYLOAD_TOO_LARGE", what);
    sgt_resp_free(&r);
    free(p);
}

static json_t *buffer_of(const sgt_resp *r) { return json_object_get(r->json, "buffer"); }
static long long buffered_chunks(const sgt_resp *r)
{
    return json_integer_value(json_object_get(buffer_of(r), "audio_chunks"));
}
static double buffered_seconds(const sgt_resp *r)
{
    return json_real_value(json_object_get(buffer_of(r), "audio_seconds"));
}

static sgt_resp turn(const sgt_server *s, const char *id, const char *turn_id, const char *text)
{
    json_t *b = json_pack("{s:s,s:s}", "session_id", id, "turn_id", turn_id);
    if (text)
        json_object_set_new(b, "query_text", json_string(text));
    sgt_resp r = sgt_post_json(s, "/dat/turn/complete", b);
    json_decref(b);
    return r;
}

static json_t *dat_meta(const sgt_resp *r)
{
    return json_object_get(json_object_get(r->json, "metadata"), "dat");
}

static long long dat_int(const sgt_resp *r, const char *k)
{
    return json_integer_value(json_object_get(dat_meta(r), k));
}

static void test_session_init(const sgt_server *s)
{
    sgt_resp r = sgt_post_str(s, "/dat/session",
                              "{\"device_id\":\"rayban-meta-12345\",\"client_version\":\"1.0.0\","
                              "\"capabilities\":{\"audio_streaming\":true,\"video_streaming\":true,"
                              "\"imu_streaming\":false},\"metadata\":{\"os\":\"Android 14\"}}");
    CHECK_EQ_INT(r.status, 200);
    const char *id = sgt_str(r.json, "session_id");
    CHECK(sg_uuid_valid(id));
    char hdr[64];
    CHECK(sgt_header(&r, "X-Session-ID", hdr, sizeof hdr) && strcmp(hdr, id) == 0);
    CHECK(strlen(sgt_str(r.json, "server_version")) >= 5);
    CHECK(json_integer_value(json_object_get(r.json, "max_chunk_size_bytes")) >= 1024);
    json_t *caps = json_object_get(r.json, "capabilities");
    CHECK(json_is_true(json_object_get(caps, "multimodal_queries")));
    CHECK(json_is_false(json_object_get(caps, "streaming_transcription"))); /* no ASR model */
    /* an ordinary session: listed by GET /sessions */
    sgt_resp l = sgt_get(s, "/sessions");
    int found = 0;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(l.json, "sessions"), i, it)
        found |= strcmp(sgt_str(it, "session_id"), id) == 0;
    CHECK(found);
    sgt_resp_free(&l);
    sgt_resp_free(&r);

    /* privacy headers narrow as for POST /sessions */
    const char *h[] = {"X-Privacy-Store-Transcripts: false", NULL};
    const char *body = "{\"device_id\":\"d\",\"client_version\":\"1.0.0\"}";
    r = sgt_request(s, "POST", "/dat/session", h, body, strlen(body));
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_is_false(json_object_get(json_object_get(r.json, "privacy"), "store_transcripts")));
    sgt_resp_free(&r);
    const sgt_refusal refusals[] = {
        {"POST", "/dat/session", "X-Privacy-Store-Raw-Audio: maybe", body, 422, "INVALID_REQUEST",
         "bad privacy header"},
        {"POST", "/dat/session", NULL, "{\"device_id\":7,\"client_version\":\"1.0.0\"}", 422,
         "INVALID_REQUEST", "device_id not a string"},
        {"POST", "/dat/session", NULL, "{\"device_id\":\"d\",\"client_version\":\"1\",\"capabilities\":[]}",
         422, "INVALID_REQUEST", "capabilities not an object"},
        {"POST", "/dat/session", NULL,
         "{\"device_id\":\"d\",\"client_version\":\"1\",\"capabilities\":{\"audio_streaming\":\"yes\"}}",
         422, "INVALID_REQUEST", "capability not a bool"},
        {"POST", "/dat/session", NULL, "{\"device_id\":\"d\",", 400, "INVALID_REQUEST", "malformed JSON"},
        {"POST", "/dat/other", NULL, "{}", 404, "INVALID_REQUEST", "unknown DAT route"},
    };
    sgt_expect_refusals(s, refusals, sizeof refusals / sizeof *refusals);
    r = sgt_post_str(s, "/dat/session", "{\"client_version\":\"1.0.0\"}");
    sgt_expect_error(&r, 400, "INVALID_REQUEST", "missing device_id");
    CHECK(strstr(sgt_str(r.json, "detail"), "device_id") != NULL);
    sgt_resp_free(&r);
    r = sgt_get(s, "/dat/session");
    sgt_expect_error(&r, 405, "INVALID_REQUEST", "GET /dat/session");
    char allow[32];
    CHECK(sgt_header(&r, "Allow", allow, sizeof allow) && strcmp(allow, "POST") == 0);
    sgt_resp_free(&r);
}

static void test_stream_and_turn(const sgt_server *s)
{
    char *id = sgt_dat_session(s);

    /* 20 chunks (2 s), with chunk 5 sent twice and 10..12 arriving as 12, 10, 11 */
    int order[] = {0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 12, 10, 11, 13, 14, 15, 16, 17, 18, 19};
    int n = (int)(sizeof order / sizeof *order), dups = 0;
    long long last_chunks = 0;
    for (int i = 0; i < n; i++) {
        sgt_resp r = jfk_chunk(s, id, order[i], 100 + order[i]);
        CHECK_EQ_INT(r.status, 200);
        CHECK_EQ_INT(json_integer_value(json_object_get(r.json, "sequence_number")), 100 + order[i]);
        CHECK(strcmp(sgt_str(r.json, "session_id"), id) == 0);
        bool dup = i > 0 && order[i] == order[i - 1];
        CHECK_MSG(strcmp(sgt_str(r.json, "status"), dup ? "duplicate" : "buffered") == 0,
                  "chunk %d: status %s", order[i], sgt_str(r.json, "status"));
        CHECK(strlen(sgt_str(r.json, "message")) > 0);
        if (dup) {
            dups++;
            CHECK_EQ_INT(buffered_chunks(&r), last_chunks); /* not buffered twice */
        } else {
            CHECK_EQ_INT(buffered_chunks(&r), last_chunks + 1);
        }
        last_chunks = buffered_chunks(&r);
        sgt_resp_free(&r);
    }
    CHECK_EQ_INT(last_chunks, 20);

    /* a frame and IMU chunks */
    char *img = sgt_b64_file("../shared/data/images/coffee.jpg");
    sgt_resp r = chunk(s, id, "frame", 500, img,
                       json_pack("{s:i,s:i,s:s,s:i,s:b}", "width", 400, "height", 300, "format",
                                 "jpeg", "quality", 85, "is_keyframe", 1));
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "status"), "accepted") == 0);
    CHECK(json_is_true(json_object_get(r.json, "keyframe")));
    CHECK(json_is_object(json_object_get(r.json, "scene")));
    sgt_resp_free(&r);
    r = chunk(s, id, "frame", 500, img, NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "status"), "duplicate") == 0);
    sgt_resp_free(&r);
    uint8_t imu[120] = {1, 2, 3};
    char *imu64 = b64(imu, sizeof imu);
    r = chunk(s, id, "imu", 7, imu64, json_pack("{s:s,s:i}", "sensor_type", "accelerometer", "sample_count", 10));
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "status"), "accepted") == 0);
    sgt_resp_free(&r);
    r = chunk(s, id, "imu", 7, imu64, NULL);
    CHECK(strcmp(sgt_str(r.json, "status"), "duplicate") == 0);
    sgt_resp_free(&r);

    /* the turn: query_text + the frame's scene; the audio cannot be transcribed (no ASR model),
     * so it is ignored with a warning, exactly as /query does */
    r = turn(s, id, "660e8400-e29b-41d4-a716-446655440001", "what am I looking at");
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "turn_id"), "660e8400-e29b-41d4-a716-446655440001") == 0);
    CHECK(strcmp(sgt_str(r.json, "session_id"), id) == 0);
    CHECK(strcmp(sgt_str(r.json, "query"), "what am I looking at") == 0);
    const char *vc = sgt_str(r.json, "visual_context");
    CHECK_MSG(strlen(vc) > 0 && strcmp(vc, "No visual input") != 0, "visual_context %s", vc);
    CHECK(strlen(sgt_str(r.json, "response")) > 0);
    CHECK(json_is_array(json_object_get(r.json, "actions")));
    CHECK(json_is_null(json_object_get(r.json, "transcript")));
    json_t *meta = json_object_get(r.json, "metadata");
    CHECK(json_is_object(json_object_get(meta, "latency_ms")));
    json_t *w = json_object_get(meta, "warnings");
    int warned = 0;
    size_t i;
    json_t *it;
    json_array_foreach(w, i, it)
        warned |= strstr(json_string_value(it), "no ASR model") != NULL;
    CHECK(warned);
    CHECK_EQ_INT(dat_int(&r, "audio_chunks"), 20);
    CHECK_NEAR(json_real_value(json_object_get(dat_meta(&r), "audio_seconds")), 2.0, 1e-9);
    CHECK_EQ_INT(dat_int(&r, "audio_bytes"), 20 * CHUNK_BYTES);
    CHECK_EQ_INT(dat_int(&r, "duplicates"), dups + 2);
    CHECK_EQ_INT(dat_int(&r, "frames"), 1);
    CHECK_EQ_INT(dat_int(&r, "imu_chunks"), 1);
    CHECK_EQ_INT(dat_int(&r, "imu_samples"), 10);
    sgt_resp_free(&r);

    /* the buffer is empty now: a retried chunk of the completed turn is a duplicate, a new one
     * starts the next turn's buffer */
    r = jfk_chunk(s, id, 3, 103);
    CHECK(strcmp(sgt_str(r.json, "status"), "duplicate") == 0);
    CHECK_EQ_INT(buffered_chunks(&r), 0);
    sgt_resp_free(&r);
    r = jfk_chunk(s, id, 20, 120);
    CHECK(strcmp(sgt_str(r.json, "status"), "buffered") == 0);
    CHECK_EQ_INT(buffered_chunks(&r), 1);
    CHECK_NEAR(buffered_seconds(&r), 0.1, 1e-9);
    sgt_resp_free(&r);

    /* audio alone without ASR: 503 MODEL_UNAVAILABLE, as /query; the turn still consumed it */
    json_t *b = json_pack("{s:s,s:s}", "session_id", id, "turn_id", "t2");
    r = sgt_post_json(s, "/dat/turn/complete", b);
    json_decref(b);
    sgt_expect_error(&r, 503, "MODEL_UNAVAILABLE", "audio-only DAT turn without ASR");
    sgt_resp_free(&r);

    /* no audio, no text: the frame's scene is still there, so this is "What am I looking at?" */
    r = turn(s, id, "t3", NULL);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "query"), "What am I looking at?") == 0);
    CHECK_EQ_INT(dat_int(&r, "audio_chunks"), 0);
    CHECK(json_is_null(json_object_get(dat_meta(&r), "speech")));
    sgt_resp_free(&r);

    /* stereo and f32 chunks: duration from the bytes and the format */
    int16_t st[3200];
    for (int k = 0; k < 3200; k++)
        st[k] = (int16_t)(k * 7);
    char *st64 = b64(st, sizeof st); /* 1600 stereo frames = 0.1 s */
    r = chunk(s, id, "audio", 200, st64,
              json_pack("{s:i,s:i,s:s}", "sample_rate", 16000, "channels", 2, "format", "pcm_s16le"));
    CHECK(strcmp(sgt_str(r.json, "status"), "buffered") == 0);
    CHECK_NEAR(buffered_seconds(&r), 0.1, 1e-9);
    sgt_resp_free(&r);
    float f[4410];
    for (int k = 0; k < 4410; k++)
        f[k] = 0.25f * sinf((float)k * 0.1f);
    char *f64 = b64(f, sizeof f); /* 0.1 s at 44.1 kHz */
    r = chunk(s, id, "audio", 201, f64,
              json_pack("{s:i,s:i,s:s}", "sample_rate", 44100, "channels", 1, "format", "pcm_f32le"));
    CHECK(strcmp(sgt_str(r.json, "status"), "buffered") == 0);
    CHECK_NEAR(buffered_seconds(&r), 0.2, 1e-9);
    sgt_resp_free(&r);
    r = turn(s, id, "t4", "hello there");
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(dat_int(&r, "audio_chunks"), 2);
    CHECK_NEAR(json_real_value(json_object_get(dat_meta(&r), "audio_seconds")), 0.2, 1e-9);
    sgt_resp_free(&r);
    free(st64);
    free(f64);

    /* a fresh session with nothing buffered, no text and no frame: 400 */
    char *id2 = sgt_dat_session(s);
    r = turn(s, id2, "t5", NULL);
    sgt_expect_error(&r, 400, "INVALID_REQUEST", "empty DAT turn");
    sgt_resp_free(&r);
    r = turn(s, id2, "t6", "   ");
    sgt_expect_error(&r, 400, "INVALID_REQUEST", "blank DAT turn");
    sgt_resp_free(&r);

    /* deleting a session with buffered chunks frees them; the session is gone for DAT too */
    for (int k = 0; k < 5; k++) {
        r = jfk_chunk(s, id2, k, k);
        CHECK(strcmp(sgt_str(r.json, "status"), "buffered") == 0);
        sgt_resp_free(&r);
    }
    char path[128];
    snprintf(path, sizeof path, "/sessions/%s", id2);
    r = sgt_request(s, "DELETE", path, NULL, NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    r = jfk_chunk(s, id2, 5, 5);
    sgt_expect_error(&r, 404, "INVALID_SESSION", "chunk after delete");
    sgt_resp_free(&r);
    r = turn(s, id2, "t7", "hi");
    sgt_expect_error(&r, 404, "INVALID_SESSION", "turn after delete");
    sgt_resp_free(&r);

    free(imu64);
    free(img);
    free(id2);
    free(id);
}

static void test_bad_input(const sgt_server *s)
{
    char *id = sgt_dat_session(s);
    char *p = b64(jfk_pcm, CHUNK_BYTES);
    sgt_resp r;

    r = chunk(s, "6f1c2d3e-0000-4000-8000-000000000000", "audio", 0, p, NULL);
    sgt_expect_error(&r, 404, "INVALID_SESSION", "unknown session");
    sgt_resp_free(&r);
    r = chunk(s, "not-a-session", "audio", 0, p, NULL);
    sgt_expect_error(&r, 404, "INVALID_SESSION", "malformed session id");
    sgt_resp_free(&r);
    char seq_string[256], no_timestamp[256], meta_array[256];
    snprintf(seq_string, sizeof seq_string, "{\"session_id\":\"%s\",\"chunk_type\":\"audio\","
             "\"sequence_number\":\"1\",\"timestamp_ms\":1,\"payload\":\"AAAA\"}", id);
    snprintf(no_timestamp, sizeof no_timestamp, "{\"session_id\":\"%s\",\"chunk_type\":\"audio\","
             "\"sequence_number\":1,\"payload\":\"AAAA\"}", id);
    snprintf(meta_array, sizeof meta_array, "{\"session_id\":\"%s\",\"chunk_type\":\"audio\","
             "\"sequence_number\":1,\"timestamp_ms\":1,\"payload\":\"AAAA\",\"meta\":[1]}", id);
    const sgt_refusal refusals[] = {
        {"POST", "/dat/stream", NULL, "{\"chunk_type\":\"audio\",\"sequence_number\":0}", 400,
         "INVALID_REQUEST", "missing session_id"},
        {"POST", "/dat/stream", NULL, "{\"session_id\":", 400, "INVALID_REQUEST", "malformed JSON"},
        {"PUT", "/dat/stream", NULL, "{}", 405, "INVALID_REQUEST", "PUT /dat/stream"},
        {"POST", "/dat/stream", "Content-Type: text/xml", "<a/>", 415, "INVALID_REQUEST", "XML body"},
        {"POST", "/dat/stream", NULL, seq_string, 422, "INVALID_REQUEST", "sequence_number as a string"},
        {"POST", "/dat/stream", NULL, no_timestamp, 400, "INVALID_REQUEST", "missing timestamp_ms"},
        {"POST", "/dat/stream", NULL, meta_array, 422, "INVALID_REQUEST", "meta not an object"},
    };
    sgt_expect_refusals(s, refusals, sizeof refusals / sizeof *refusals);
    r = chunk(s, id, "video", 0, p, NULL);
    sgt_expect_error(&r, 422, "INVALID_REQUEST", "unknown chunk_type");
    sgt_resp_free(&r);
    r = chunk(s, id, "audio", -1, p, NULL);
    sgt_expect_error(&r, 422, "INVALID_REQUEST", "negative sequence_number");
    sgt_resp_free(&r);
    r = chunk(s, id, "audio", 1, "not base64!", NULL);
    sgt_expect_error(&r, 400, "INVALID_AUDIO", "bad base64");
    sgt_resp_free(&r);
    r = chunk(s, id, "audio", 1, "AAA=", NULL); /* 2 bytes... */
    CHECK_EQ_INT(r.status, 200);             /* ...is one s16 sample: fine */
    sgt_resp_free(&r);
    r = chunk(s, id, "audio", 2, "AAAA", NULL); /* 3 bytes */
    sgt_expect_error(&r, 400, "INVALID_AUDIO", "odd PCM length");
    sgt_resp_free(&r);
    r = chunk(s, id, "audio", 2, p, json_pack("{s:s,s:i}", "format", "opus", "sample_rate", 16000));
    sgt_expect_error(&r, 415, "INVALID_AUDIO", "opus");
    CHECK(strstr(sgt_str(r.json, "detail"), "opus") != NULL);
    sgt_resp_free(&r);
    r = chunk(s, id, "audio", 2, p, json_pack("{s:s}", "format", "mulaw8"));
    sgt_expect_error(&r, 422, "INVALID_REQUEST", "unknown audio format");
    sgt_resp_free(&r);
    r = chunk(s, id, "audio", 2, p, json_pack("{s:i}", "channels", 3));
    sgt_expect_error(&r, 422, "INVALID_REQUEST", "3 channels");
    sgt_resp_free(&r);
    r = chunk(s, id, "audio", 2, p, json_pack("{s:i}", "sample_rate", 1000));
    sgt_expect_error(&r, 422, "INVALID_REQUEST", "sample_rate 1000");
    sgt_resp_free(&r);
    r = chunk(s, id, "audio", 2, p, json_pack("{s:f}", "sample_rate", 16000.5));
    sgt_expect_error(&r, 422, "INVALID_REQUEST", "fractional sample_rate");
    sgt_resp_free(&r);
    float nan4[4] = {0, NAN, 0, 0};
    char *nan64 = b64(nan4, sizeof nan4);
    r = chunk(s, id, "audio", 2, nan64, json_pack("{s:s}", "format", "pcm_f32le"));
    sgt_expect_error(&r, 400, "INVALID_AUDIO", "NaN samples");
    sgt_resp_free(&r);
    free(nan64);
    /* none of the refused chunks was buffered, so number 2 is still free */
    r = jfk_chunk(s, id, 0, 2);
    CHECK(strcmp(sgt_str(r.json, "status"), "buffered") == 0);
    CHECK_EQ_INT(buffered_chunks(&r), 2);
    sgt_resp_free(&r);

    r = chunk(s, id, "frame", 3, p, json_pack("{s:s}", "format", "yuv420"));
    sgt_expect_error(&r, 415, "INVALID_IMAGE", "yuv420 frame");
    sgt_resp_free(&r);
    r = chunk(s, id, "frame", 3, p, json_pack("{s:s}", "format", "gif"));
    sgt_expect_error(&r, 422, "INVALID_REQUEST", "gif frame");
    sgt_resp_free(&r);
    r = chunk(s, id, "frame", 3, p, json_pack("{s:i}", "quality", 101));
    sgt_expect_error(&r, 422, "INVALID_REQUEST", "quality 101");
    sgt_resp_free(&r);
    r = chunk(s, id, "frame", 3, p, json_pack("{s:s}", "is_keyframe", "yes"));
    sgt_expect_error(&r, 422, "INVALID_REQUEST", "is_keyframe not a bool");
    sgt_resp_free(&r);
    r = chunk(s, id, "frame", 3, p, NULL); /* PCM is not an image */
    sgt_expect_error(&r, 400, "INVALID_IMAGE", "undecodable frame");
    sgt_resp_free(&r);
    char *img = sgt_b64_file("../shared/data/images/rocket.jpg");
    r = chunk(s, id, "frame", 3, img, NULL); /* the corrected retry of number 3 is not a duplicate */
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "status"), "accepted") == 0);
    CHECK(json_is_true(json_object_get(r.json, "analysed")));
    sgt_resp_free(&r);
    r = chunk(s, id, "frame", 2, img, NULL); /* older than the analysed frame */
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_is_false(json_object_get(r.json, "analysed")));
    sgt_resp_free(&r);
    free(img);
    r = chunk(s, id, "imu", 1, "AAAA", json_pack("{s:s,s:i}", "sensor_type", "barometer", "sample_count", 1));
    sgt_expect_error(&r, 422, "INVALID_REQUEST", "unknown sensor_type");
    sgt_resp_free(&r);
    r = chunk(s, id, "imu", 1, "AAAA", json_pack("{s:s,s:i}", "sensor_type", "gyroscope", "sample_count", 0));
    sgt_expect_error(&r, 422, "INVALID_REQUEST", "sample_count 0");
    sgt_resp_free(&r);
    r = chunk(s, id, "imu", 1, "A", NULL);
    sgt_expect_error(&r, 400, "INVALID_REQUEST", "bad IMU base64");
    sgt_resp_free(&r);

    /* turn/complete */
    char no_turn_id[128], numeric_id[128], bad_offload[160], bad_meta[160];
    snprintf(no_turn_id, sizeof no_turn_id, "{\"session_id\":\"%s\"}", id);
    snprintf(numeric_id, sizeof numeric_id, "{\"session_id\":\"%s\",\"turn_id\":5}", id);
    snprintf(bad_offload, sizeof bad_offload,
             "{\"session_id\":\"%s\",\"turn_id\":\"a\",\"cloud_offload\":\"no\"}", id);
    snprintf(bad_meta, sizeof bad_meta, "{\"session_id\":\"%s\",\"turn_id\":\"a\",\"metadata\":\"x\"}",
             id);
    const sgt_refusal turn_refusals[] = {
        {"POST", "/dat/turn/complete", NULL, "{\"turn_id\":\"x\"}", 400, "INVALID_REQUEST",
         "turn without session_id"},
        {"POST", "/dat/turn/complete", NULL, no_turn_id, 400, "INVALID_REQUEST", "turn without turn_id"},
        {"POST", "/dat/turn/complete", NULL, numeric_id, 422, "INVALID_REQUEST", "numeric turn_id"},
        {"POST", "/dat/turn/complete", NULL, bad_offload, 422, "INVALID_REQUEST",
         "cloud_offload not a bool"},
        {"POST", "/dat/turn/complete", NULL, bad_meta, 422, "INVALID_REQUEST", "metadata not an object"},
    };
    sgt_expect_refusals(s, turn_refusals, sizeof turn_refusals / sizeof *turn_refusals);
    r = turn(s, "6f1c2d3e-0000-4000-8000-000000000000", "a", "hi");
    sgt_expect_error(&r, 404, "INVALID_SESSION", "turn on an unknown session");
    sgt_resp_free(&r);
    r = sgt_get(s, "/dat/turn/complete");
    sgt_expect_error(&r, 405, "INVALID_REQUEST", "GET turn/complete");
    sgt_resp_free(&r);
    /* everything refused above left the buffer as it was: 2 chunks */
    char body[512];
    snprintf(body, sizeof body, "{\"session_id\":\"%s\",\"turn_id\":\"ok\",\"query_text\":\"hi\","
             "\"language\":\"en\",\"cloud_offload\":true,\"metadata\":{\"location\":\"x\"}}", id);
    r = sgt_post_str(s, "/dat/turn/complete", body);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(dat_int(&r, "audio_chunks"), 2);
    CHECK_EQ_INT(dat_int(&r, "frames"), 2);
    sgt_resp_free(&r);
    free(p);
    free(id);
}

/* Four clients stream one session's chunks at once, every chunk sent by two of them: each is
 * buffered exactly once and the turn sees them all. */
typedef struct racer {
    const sgt_server *s;
    const char *id;
    int which, ok;
} racer;

static void *race(void *p)
{
    racer *rc = p;
    for (int k = 0; k < 100; k++) {
        if (k % 4 != rc->which && k % 4 != (rc->which + 1) % 4)
            continue;
        sgt_resp r = jfk_chunk(rc->s, rc->id, k, k);
        rc->ok += r.status == 200 && (strcmp(sgt_str(r.json, "status"), "buffered") == 0 ||
                                      strcmp(sgt_str(r.json, "status"), "duplicate") == 0);
        sgt_resp_free(&r);
    }
    return NULL;
}

static void test_concurrent(const sgt_server *s)
{
    char *id = sgt_dat_session(s);
    racer rc[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        rc[i] = (racer){s, id, i, 0};
        pthread_create(&th[i], NULL, race, &rc[i]);
    }
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok += rc[i].ok;
    }
    CHECK_EQ_INT(ok, 200);
    sgt_resp r = turn(s, id, "race", "hello");
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(dat_int(&r, "audio_chunks"), 100);
    CHECK_EQ_INT(dat_int(&r, "duplicates"), 100);
    CHECK_EQ_INT(dat_int(&r, "audio_bytes"), 100 * CHUNK_BYTES);
    sgt_resp_free(&r);
    free(id);
}

static void test_metrics(const sgt_server *s)
{
    sgt_resp r = sgt_get(s, "/metrics/summary");
    CHECK_EQ_INT(r.status, 200);
    json_t *d = json_object_get(r.json, "dat_metrics");
    CHECK(json_integer_value(json_object_get(json_object_get(d, "ingest_audio"), "count")) >= 25);
    CHECK(json_integer_value(json_object_get(json_object_get(d, "ingest_frame"), "count")) >= 3);
    CHECK(json_integer_value(json_object_get(json_object_get(d, "end_to_end_turn"), "count")) >= 4);
    sgt_resp_free(&r);
}

/* AUDIO_BUFFER_MAX_BYTES=16000 (five 100 ms chunks) under reject, AUDIO_BUFFER_MAX_SECONDS=1
 * under trim. */
static void test_limits(void)
{
    sgt_server s;
    const char *env[] = {"AUDIO_BUFFER_MAX_BYTES=16000", "AUDIO_BUFFER_POLICY=reject", NULL};
    CHECK(sgt_start(&s, env, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    char *id = sgt_dat_session(&s);
    for (int k = 0; k < 5; k++) {
        sgt_resp r = jfk_chunk(&s, id, k, k);
        CHECK(strcmp(sgt_str(r.json, "status"), "buffered") == 0);
        sgt_resp_free(&r);
    }
    sgt_resp r = jfk_chunk(&s, id, 5, 5);
    sgt_expect_error(&r, 413, "PAYLOAD_TOO_LARGE", "buffer full under reject");
    /* the Python runtime's words (they name the way out: AUDIO_BUFFER_POLICY=trim), then ours */
    CHECK(strncmp(sgt_str(r.json, "detail"), "Audio buffer would exceed configured limits;", 44) == 0);
    CHECK(strstr(sgt_str(r.json, "detail"), "under reject (limits 120 s, 16000 bytes") != NULL);
    sgt_resp_free(&r);
    expect_chunk_too_big(&s, id, 6, 16002, "one chunk over the byte limit");
    /* the turn empties the buffer, and the refused number is usable again */
    r = turn(&s, id, "t", "hello");
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(dat_int(&r, "audio_chunks"), 5);
    sgt_resp_free(&r);
    r = jfk_chunk(&s, id, 5, 5);
    CHECK(strcmp(sgt_str(r.json, "status"), "buffered") == 0);
    CHECK_EQ_INT(buffered_chunks(&r), 1);
    sgt_resp_free(&r);
    free(id);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);

    const char *env2[] = {"AUDIO_BUFFER_MAX_SECONDS=1", "AUDIO_BUFFER_POLICY=trim", NULL};
    CHECK(sgt_start(&s, env2, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    id = sgt_dat_session(&s);
    for (int k = 0; k < 15; k++) {
        r = jfk_chunk(&s, id, k, k);
        CHECK(strcmp(sgt_str(r.json, "status"), "buffered") == 0);
        CHECK_EQ_INT(json_integer_value(json_object_get(r.json, "trimmed")), k >= 10 ? 1 : 0);
        CHECK_EQ_INT(buffered_chunks(&r), k >= 10 ? 10 : k + 1);
        sgt_resp_free(&r);
    }
    r = jfk_chunk(&s, id, 2, 2); /* trimmed already: still a duplicate */
    CHECK(strcmp(sgt_str(r.json, "status"), "duplicate") == 0);
    sgt_resp_free(&r);
    expect_chunk_too_big(&s, id, 20, 2 * 16000 * 2, "one chunk over the seconds limit"); /* 2 s > 1 s */
    r = turn(&s, id, "t", "hello");
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(dat_int(&r, "audio_chunks"), 10);
    CHECK_EQ_INT(dat_int(&r, "trimmed"), 5);
    CHECK_NEAR(json_real_value(json_object_get(dat_meta(&r), "audio_seconds")), 1.0, 1e-9);
    sgt_resp_free(&r);
    free(id);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

/* With the Silero VAD and no ASR: silent chunks give the "speech": false path. */
static void test_vad(void)
{
    sgt_server s;
    const char *args[] = {"--vad-model", "../shared/models/silero-vad-v6.2.0-ggml.bin", NULL};
    CHECK(sgt_start(&s, NULL, args) == 0);
    CHECK(sgt_wait_ready(&s));
    char *id = sgt_dat_session(&s);
    uint8_t zero[CHUNK_BYTES] = {0};
    char *z = b64(zero, sizeof zero);
    for (int k = 0; k < 20; k++) {
        sgt_resp r = chunk(&s, id, "audio", k, z, NULL);
        CHECK(strcmp(sgt_str(r.json, "status"), "buffered") == 0);
        sgt_resp_free(&r);
    }
    sgt_resp r = turn(&s, id, "silent", "what time is it");
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_is_false(json_object_get(dat_meta(&r), "speech")));
    CHECK(strcmp(sgt_str(r.json, "transcript"), "") == 0);
    CHECK(strcmp(sgt_str(r.json, "query"), "what time is it") == 0);
    json_t *w = json_object_get(json_object_get(r.json, "metadata"), "warnings");
    int warned = 0;
    size_t i;
    json_t *it;
    json_array_foreach(w, i, it)
        warned |= strstr(json_string_value(it), "no speech") != NULL;
    CHECK(warned);
    CHECK(json_real_value(json_object_get(json_object_get(json_object_get(r.json, "metadata"), "latency_ms"), "vad")) > 0);
    sgt_resp_free(&r);
    /* silence alone: nothing to answer */
    for (int k = 20; k < 30; k++) {
        r = chunk(&s, id, "audio", k, z, NULL);
        sgt_resp_free(&r);
    }
    r = turn(&s, id, "silent2", NULL);
    sgt_expect_error(&r, 400, "INVALID_REQUEST", "silence alone");
    sgt_resp_free(&r);
    /* real speech without ASR: 503 */
    for (int k = 0; k < 30; k++) {
        r = jfk_chunk(&s, id, k, 100 + k);
        sgt_resp_free(&r);
    }
    r = turn(&s, id, "speech", NULL);
    sgt_expect_error(&r, 503, "MODEL_UNAVAILABLE", "speech without ASR");
    sgt_resp_free(&r);
    free(z);
    free(id);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

/* With Whisper: the DAT turn over jfk.wav streamed in 100 ms chunks (out of order, one repeated)
 * transcribes exactly what POST /sessions/{id}/audio gives for the same audio. */
static void test_asr(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --help 2>&1 | grep -q -- --asr-model", SG_EDGE_BIN);
    if (system(cmd) != 0) {
        printf("test_server_dat: SKIP the ASR test (sg-edge has no --asr-model yet)\n");
        return;
    }
    sgt_server s;
    const char *args[] = {"--asr-model", "tests/fixtures/whisper_tiny", NULL};
    CHECK(sgt_start(&s, NULL, args) == 0);
    CHECK(sgt_wait_ready(&s));
    char *id = sgt_dat_session(&s);
    int nchunks = (int)(jfk_len / CHUNK_BYTES);
    for (int k = 0; k < nchunks; k++) {
        int idx = (k % 10 == 3 && k + 1 < nchunks) ? k + 1 : (k % 10 == 4 ? k - 1 : k);
        sgt_resp r = jfk_chunk(&s, id, idx, idx);
        CHECK(strcmp(sgt_str(r.json, "status"), "buffered") == 0);
        sgt_resp_free(&r);
        if (k == 7) {
            r = jfk_chunk(&s, id, idx, idx);
            CHECK(strcmp(sgt_str(r.json, "status"), "duplicate") == 0);
            sgt_resp_free(&r);
        }
    }
    sgt_resp t = turn(&s, id, "speech", NULL);
    CHECK_EQ_INT(t.status, 200);
    CHECK_EQ_INT(dat_int(&t, "audio_chunks"), nchunks);
    CHECK(json_is_true(json_object_get(dat_meta(&t), "speech")));

    char *pcm = b64(jfk_pcm, (size_t)nchunks * CHUNK_BYTES);
    json_t *b = json_pack("{s:s,s:s,s:i}", "audio_base64", pcm, "format", "pcm_s16le", "sample_rate", 16000);
    char path[128];
    snprintf(path, sizeof path, "/sessions/%s/audio", id);
    sgt_resp a = sgt_post_json(&s, path, b);
    json_decref(b);
    CHECK_EQ_INT(a.status, 200);
    CHECK(strlen(sgt_str(t.json, "transcript")) > 0); /* the tiny random model still says something */
    CHECK_MSG(strcmp(sgt_str(t.json, "transcript"), sgt_str(a.json, "transcript")) == 0,
              "DAT transcript \"%s\" vs /audio \"%s\"", sgt_str(t.json, "transcript"),
              sgt_str(a.json, "transcript"));
    sgt_resp_free(&a);
    sgt_resp_free(&t);
    free(pcm);
    free(id);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    load_jfk();
    if (!jfk_pcm)
        return check_report("test_server_dat");
    sgt_server s;
    if (sgt_start(&s, NULL, NULL) != 0) {
        fprintf(stderr, "could not start %s\n", SG_EDGE_BIN);
        return 1;
    }
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    test_session_init(&s);
    test_stream_and_turn(&s);
    test_bad_input(&s);
    test_concurrent(&s);
    test_metrics(&s);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
    test_limits();
    test_vad();
    test_asr();
    free(jfk_pcm);
    curl_global_cleanup();
    return check_report("test_server_dat");
}
