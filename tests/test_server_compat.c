/* Whole request strings and the Python runtime's clients and operators, through the real binary:
 * a \u0000 inside any JSON string (query, multimodal, language, format, image, DAT fields,
 * /ws/audio's configuration and type) is refused with 400 naming the field, never cut short; the
 * configuration that runtime accepted starts the server (AUDIO_BUFFER_MAX_SECONDS=0.05,
 * FRAME_BUFFER_MAX_BYTES=300, PORTS lists, padded policies) and tiny limits then behave (trim keeps
 * the newest 0.05 s, reject and single payloads over a limit are 413), what it refused is refused
 * with its message; error details start with its phrases ("Unknown session id", "Invalid audio
 * payload", "Invalid image payload", "Audio payload exceeds ..."); GET /metrics carries its keys. */
#include <stdarg.h>
#include <stdbool.h>

#include "base/base64.h"
#include "check.h"
#include "sgtest_cli.h"
#include "sgtest_png.h"
#include "sgtest_server.h"
#include "sgtest_ws.h"

#define ASR_MODEL "tests/fixtures/whisper_tiny"

/* Noise, so that the deflated size is about the raw one. */
static void noise_pixel(uint32_t x, uint32_t y, uint8_t rgb[3])
{
    uint32_t v = (x * 2654435761u) ^ (y * 40503u + 0x9E3779B9u);
    v ^= v >> 13;
    v *= 0x5bd1e995u;
    rgb[0] = (uint8_t)v;
    rgb[1] = (uint8_t)(v >> 8);
    rgb[2] = (uint8_t)(v >> 16);
}

/* A valid noisy w x w PNG in base64 (malloc'ed); *raw_len its size. */
static char *png_b64(uint32_t w, size_t *raw_len)
{
    uint8_t *png = sgt_png(w, w, w, w, noise_pixel, raw_len);
    char *b = sg_base64_encode(png, *raw_len, NULL);
    free(png);
    return b;
}

/* seconds of a 440 Hz tone as 16 kHz s16le PCM, base64 (malloc'ed). */
static char *pcm_b64(double seconds)
{
    size_t n = (size_t)(seconds * 16000);
    int16_t *pcm = malloc(n * 2 + 2);
    for (size_t i = 0; i < n; i++)
        pcm[i] = (int16_t)(8000 * sin(2 * M_PI * 440 * (double)i / 16000));
    char *b = sg_base64_encode((const uint8_t *)pcm, n * 2, NULL);
    free(pcm);
    return b;
}

static sgt_resp post(const sgt_server *s, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static sgt_resp post(const sgt_server *s, const char *path, const char *fmt, ...)
{
    char *body;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&body, fmt, ap) < 0)
        abort();
    va_end(ap);
    sgt_resp r = sgt_post_str(s, path, body);
    free(body);
    return r;
}

/* r is an error with this status and code whose detail starts with `starts` (when given) and
 * holds `has` (when given). */
static void expect(const sgt_resp *r, long status, const char *code, const char *starts,
                   const char *has, const char *what)
{
    sgt_expect_error(r, status, code, what);
    const char *d = sgt_str(r->json, "detail");
    CHECK_MSG(!starts || strncmp(d, starts, strlen(starts)) == 0, "%s: detail \"%s\" does not start "
              "with \"%s\"", what, d, starts);
    CHECK_MSG(!has || strstr(d, has), "%s: detail \"%s\" lacks \"%s\"", what, d, has);
}

/* A new session and its routes. */
typedef struct session {
    char *id;
    char query[128], multimodal[128], audio[128], frame[128];
} session;

static session session_new(const sgt_server *s)
{
    session x;
    x.id = sgt_new_session(s, NULL);
    snprintf(x.query, sizeof x.query, "/sessions/%s/query", x.id);
    snprintf(x.multimodal, sizeof x.multimodal, "/sessions/%s/multimodal", x.id);
    snprintf(x.audio, sizeof x.audio, "/sessions/%s/audio", x.id);
    snprintf(x.frame, sizeof x.frame, "/sessions/%s/frame", x.id);
    return x;
}

/* sg-edge with the tiny Whisper fixture (audio gets transcribed) and env; false if it does not
 * start. */
static bool start_asr(sgt_server *s, const char **env)
{
    const char *args[] = {"--asr-model", ASR_MODEL, NULL};
    return sgt_start(s, env, args) == 0 && sgt_wait_ready(s);
}

/* ---- \u0000: refused with 400 naming the field, on every route that reads strings ----------- */

static void test_nul_http(const sgt_server *s)
{
    session x = session_new(s);
    char *id = x.id;
    const char *q = x.query;
    size_t plen;
    char *png = png_b64(4, &plen), *pcm = pcm_b64(0.2);
    static const struct {
        int route; /* 0 query, 1 multimodal, 2 audio, 3 frame */
        const char *body, *field;
    } cases[] = {
        {0, "{\"text_query\":\"ab\\u0000cd\"}", "text_query"},
        {1, "{\"text\":\"ab\\u0000cd\"}", "text"},
        {0, "{\"text_query\":\"\\u0000\"}", "text_query"},
        {0, "{\"text_query\":\"hi\",\"language\":\"en\\u0000xx\"}", "language"},
        {1, "{\"text\":\"hi\",\"image\":\"%s\\u0000AAAA\"}", "image"},
        {0, "{\"text_query\":\"hi\",\"audio_base64\":\"%s\\u0000\",\"format\":\"pcm_s16le\"}", "audio_base64"},
        {2, "{\"audio_base64\":\"%s\",\"format\":\"pcm_s16le\\u0000junk\",\"sample_rate\":16000}", "format"},
        {2, "{\"audio\":\"%s\",\"format\":\"pcm_s16le\",\"language\":\"en\\u0000\"}", "language"},
        {3, "{\"image_base64\":\"%s\\u0000garbage\"}", "image_base64"},
    };
    const char *paths[] = {x.query, x.multimodal, x.audio, x.frame};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *payload = strstr(cases[i].field, "image") ? png : pcm;
        char what[96];
        snprintf(what, sizeof what, "NUL in %s (case %zu)", cases[i].field, i);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        sgt_resp r = post(s, paths[cases[i].route], cases[i].body, payload);
#pragma GCC diagnostic pop
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\"", cases[i].field);
        expect(&r, 400, "INVALID_REQUEST", NULL, quoted, what);
        CHECK_MSG(strstr(sgt_str(r.json, "detail"), "NUL"), "%s: %s", what, sgt_str(r.json, "detail"));
        sgt_resp_free(&r);
    }
    /* other control characters are carried whole: the query is the whole string */
    sgt_resp r = sgt_post_str(s, q, "{\"text_query\":\"ab\\u0001cd\"}");
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "query"), "ab\x01" "cd") == 0);
    sgt_resp_free(&r);
    /* a NUL in an object key was refused before this issue and still is */
    r = sgt_post_str(s, q, "{\"text_query\\u0000\":\"hi\"}");
    expect(&r, 400, "INVALID_REQUEST", "malformed JSON body", NULL, "NUL in a key");
    sgt_resp_free(&r);

    /* DAT: the turn's query_text, and the strings that name the session, the turn, the chunk */
    char *ds = sgt_dat_session(s);
    static const struct {
        const char *path, *body, *field;
    } dat[] = {
        {"/dat/turn/complete", "{\"session_id\":\"%s\",\"turn_id\":\"t1\",\"query_text\":"
                               "\"ab\\u0000cd\"}", "\"query_text\""},
        {"/dat/turn/complete", "{\"session_id\":\"%s\\u0000x\",\"turn_id\":\"t1\",\"query_text\":"
                               "\"hi\"}", "\"session_id\""},
        {"/dat/turn/complete", "{\"session_id\":\"%s\",\"turn_id\":\"t\\u0000\",\"query_text\":"
                               "\"hi\",\"language\":\"en\"}", "\"turn_id\""},
        {"/dat/stream", "{\"session_id\":\"%s\",\"chunk_type\":\"audio\\u0000\",\"sequence_number\""
                        ":1,\"timestamp_ms\":1,\"payload\":\"AAAA\"}", "\"chunk_type\""},
    };
    for (size_t i = 0; i < sizeof dat / sizeof *dat; i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        r = post(s, dat[i].path, dat[i].body, ds);
#pragma GCC diagnostic pop
        expect(&r, 400, "INVALID_REQUEST", NULL, dat[i].field, dat[i].field);
        sgt_resp_free(&r);
    }
    r = post(s, "/dat/turn/complete", "{\"session_id\":\"%s\",\"turn_id\":\"t2\",\"query_text\":"
             "\"what time is it\"}", ds);
    CHECK_EQ_INT(r.status, 200); /* the session is fine and answers whole strings */
    CHECK(strcmp(sgt_str(r.json, "query"), "what time is it") == 0);
    sgt_resp_free(&r);
    free(ds);
    /* a query parameter is never cut at a NUL: the edge refuses %00 anywhere in the target (400)
     * before the parameter is read (which would decode it with its length: 422) */
    char wpath[192];
    snprintf(wpath, sizeof wpath, "/ws/frame/%s?client_keyframe=true%%00x", id);
    sgt_ws w;
    sgt_ws_open(&w, s->port, "GET", wpath, NULL, NULL);
    CHECK_MSG(w.status == 400 && w.json && strcmp(sgt_str(w.json, "error"), "INVALID_REQUEST") == 0,
              "?client_keyframe=true%%00x: %d", w.status);
    sgt_ws_free(&w);
    free(png);
    free(pcm);
    free(id);
}

/* /ws/audio's text messages: a configuration or type with a NUL is an error message, not a
 * shorter value ("end\u0000x" must not end the stream, "pcm_f32le\u0000" must not switch it). */
static void test_nul_ws_audio(const sgt_server *s)
{
    char *id = sgt_new_session(s, NULL);
    sgt_ws w;
    CHECK_EQ_INT(sgt_ws_connect(s->port, &w, "audio", id), 101);
    static const char *const bad[] = {"{\"format\":\"pcm_f32le\\u0000x\"}",
                                      "{\"language\":\"en\\u0000zz\"}",
                                      "{\"type\":\"end\\u0000x\"}",
                                      "{\"type\":\"config\",\"format\":\"\\u0000\"}"};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(sgt_ws_send_text(&w, bad[i]), 0);
        json_t *j = sgt_ws_recv_json(&w, 10000, NULL);
        CHECK_MSG(j && strcmp(sgt_str(j, "type"), "error") == 0 &&
                      strcmp(sgt_str(j, "error"), "INVALID_REQUEST") == 0,
                  "ws config %s answered %s", bad[i], j ? sgt_str(j, "type") : "nothing");
        json_decref(j);
    }
    /* the stream is still s16le and still open */
    CHECK_EQ_INT(sgt_ws_send_text(&w, "{\"type\":\"end\"}"), 0);
    json_t *j = sgt_ws_recv_json(&w, 10000, NULL);
    CHECK(j && strcmp(sgt_str(j, "type"), "end") == 0);
    json_decref(j);
    sgt_ws_send_close(&w, 1000, NULL);
    CHECK(sgt_ws_wait_eof(&w, 10000));
    sgt_ws_free(&w);
    free(id);
}

/* ---- the Python runtime's wording for its errors, our specifics after a colon ---------------- */

static void test_wording(const sgt_server *s)
{
    static const char unknown[] = "0b8e1a9e-3c7d-4a55-9a43-0c1b2d3e4f50";
    char path[160];
    snprintf(path, sizeof path, "/sessions/%s/query", unknown);
    sgt_resp r = sgt_post_str(s, path, "{\"text\":\"hi\"}");
    expect(&r, 404, "INVALID_SESSION", "Unknown session id: ", unknown, "query, unknown session");
    sgt_resp_free(&r);
    snprintf(path, sizeof path, "/sessions/%s", unknown);
    r = sgt_request(s, "DELETE", path, NULL, NULL, 0);
    expect(&r, 404, "INVALID_SESSION", "Unknown session id: ", unknown, "delete, unknown session");
    sgt_resp_free(&r);
    r = sgt_post_str(s, "/sessions/not-a-uuid/frame", "{}");
    expect(&r, 404, "INVALID_SESSION", "Unknown session id: ", NULL, "malformed id");
    sgt_resp_free(&r);
    r = post(s, "/dat/stream", "{\"session_id\":\"%s\",\"chunk_type\":\"imu\",\"sequence_number\":1,"
             "\"timestamp_ms\":1,\"payload\":\"AAAA\"}", unknown);
    expect(&r, 404, "INVALID_SESSION", "Unknown session id: ", NULL, "DAT, unknown session");
    sgt_resp_free(&r);

    session x = session_new(s);
    char *id = x.id;
    const char *a = x.audio, *f = x.frame;
    r = sgt_post_str(s, a, "{\"audio_base64\":\"aGVsbG8gd29ybGQh\"}");
    expect(&r, 400, "INVALID_AUDIO", "Invalid audio payload: ", "WAV", "audio that is no file");
    sgt_resp_free(&r);
    r = sgt_post_str(s, a, "{\"audio_base64\":\"not base64!\"}");
    expect(&r, 400, "INVALID_AUDIO", "Invalid audio payload: ", "audio_base64", "audio, bad base64");
    sgt_resp_free(&r);
    const char *wav[] = {"Content-Type: audio/wav", NULL};
    r = sgt_request(s, "POST", a, wav, "RIFF\x04\0\0\0WAVEjunk", 16);
    expect(&r, 400, "INVALID_AUDIO", "Invalid audio payload: ", NULL, "a broken WAV");
    CHECK(!strstr(sgt_str(r.json, "detail"), "audio: ")); /* the library's prefix goes */
    sgt_resp_free(&r);
    r = sgt_post_str(s, f, "{\"image_base64\":\"aGVsbG8gd29ybGQh\"}");
    expect(&r, 400, "INVALID_IMAGE", "Invalid image payload: ", NULL, "an image that is none");
    sgt_resp_free(&r);
    const char *jpeg[] = {"Content-Type: image/jpeg", NULL};
    r = sgt_request(s, "POST", f, jpeg, "\xff\xd8\xff\xe0garbage", 11);
    expect(&r, 400, "INVALID_IMAGE", "Invalid image payload: ", NULL, "a broken JPEG");
    sgt_resp_free(&r);

    /* /ws/frame answers a bad frame with the same words */
    sgt_ws w;
    CHECK_EQ_INT(sgt_ws_connect(s->port, &w, "frame", id), 101);
    sgt_ws_send(&w, 2, "not an image", 12);
    json_t *j = sgt_ws_recv_json(&w, 10000, NULL);
    CHECK_MSG(j && strcmp(sgt_str(j, "error"), "INVALID_IMAGE") == 0 &&
                  strncmp(sgt_str(j, "detail"), "Invalid image payload: ", 23) == 0,
              "ws frame error: %s", j ? sgt_str(j, "detail") : "none");
    json_decref(j);
    sgt_ws_send_close(&w, 1000, NULL);
    sgt_ws_wait_eof(&w, 10000);
    sgt_ws_free(&w);
    free(id);
}

/* ---- /metrics: the Python runtime's keys beside ours ----------------------------------------- */

static void test_metrics_keys(const sgt_server *s)
{
    session x = session_new(s);
    char *id = x.id;
    const char *q = x.query;
    sgt_resp r = sgt_post_str(s, q, "{\"text_query\":\"what time is it\"}");
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    r = sgt_get(s, "/metrics");
    CHECK_EQ_INT(r.status, 200);
    json_t *lat = json_object_get(r.json, "latencies");
    /* ours, API.md's shape, first */
    json_t *e2e = json_object_get(lat, "e2e");
    CHECK(json_integer_value(json_object_get(e2e, "count")) >= 1 && json_object_get(e2e, "p99"));
    /* the runtime's: its stage names, count/total/avg/min/max in seconds */
    static const char *const names[] = {"ASR", "Vision", "LLM", "dat_ingest_audio_latency_ms",
                                        "dat_ingest_frame_latency_ms", "end_to_end_turn_latency_ms",
                                        "all"};
    for (int i = 0; i < 7; i++) {
        json_t *e = json_object_get(lat, names[i]);
        CHECK_MSG(json_is_object(e) && json_is_integer(json_object_get(e, "count")) &&
                      json_is_number(json_object_get(e, "total")) &&
                      json_is_number(json_object_get(e, "avg")) &&
                      json_is_number(json_object_get(e, "min")) &&
                      json_is_number(json_object_get(e, "max")),
                  "latencies.%s", names[i]);
    }
    json_t *turn = json_object_get(lat, "end_to_end_turn_latency_ms");
    CHECK(json_integer_value(json_object_get(turn, "count")) ==
          json_integer_value(json_object_get(e2e, "count")));
    CHECK_NEAR(json_number_value(json_object_get(turn, "max")) * 1000.0,
               json_number_value(json_object_get(e2e, "max")), 0.01);
    CHECK(json_integer_value(json_object_get(json_object_get(r.json, "queries"), "total")) >= 1);
    json_t *ses = json_object_get(r.json, "sessions");
    CHECK(json_integer_value(json_object_get(ses, "created")) >= 1 &&
          json_is_integer(json_object_get(ses, "active")));
    CHECK(json_is_false(json_object_get(r.json, "display_available")));
    sgt_resp_free(&r);
    free(id);
}

/* ---- configuration the Python runtime took ------------------------------------------------------ */

/* sg-edge with one variable set exits 2 with its message on stderr. */
static void expect_refused_config(const char *assign, const char *message)
{
    char cmd[512], *out;
    snprintf(cmd, sizeof cmd, "%s timeout 5 " SG_EDGE_BIN " --host 127.0.0.1 --port 1 2>&1", assign);
    int st = sgt_run(cmd, &out);
    CHECK_MSG(st == 2 && strstr(out, message), "%s: exit %d, \"%s\"", assign, st, out);
    free(out);
}

/* AUDIO_BUFFER_MAX_SECONDS=0.05 and FRAME_BUFFER_MAX_BYTES=300 under reject: what passes a limit
 * is 413 with the runtime's words, what fits is served. */
static void test_tiny_limits_reject(void)
{
    sgt_server s;
    const char *env[] = {"AUDIO_BUFFER_MAX_SECONDS=0.05", "AUDIO_BUFFER_POLICY=reject",
                         "FRAME_BUFFER_MAX_BYTES=300", "FRAME_BUFFER_POLICY=reject",
                         "STORE_RAW_FRAMES=true", "STORE_RAW_AUDIO=true", "PORTS=http:1,metrics:2",
                         NULL};
    CHECK_MSG(start_asr(&s, env),
              "sg-edge does not start with AUDIO_BUFFER_MAX_SECONDS=0.05 FRAME_BUFFER_MAX_BYTES=300");
    if (!s.pid)
        return;
    session x = session_new(&s);
    char *id = x.id;
    const char *a = x.audio, *f = x.frame, *q = x.query;
    char *long_pcm = pcm_b64(1.0), *short_pcm = pcm_b64(0.04);
    sgt_resp r = post(&s, a, "{\"audio_base64\":\"%s\",\"format\":\"pcm_s16le\"}", long_pcm);
    expect(&r, 413, "PAYLOAD_TOO_LARGE", "Audio payload exceeds configured maximum buffer duration",
           "0.05", "1 s of audio, reject");
    sgt_resp_free(&r);
    r = post(&s, q, "{\"text\":\"hi\",\"audio_base64\":\"%s\",\"format\":\"pcm_s16le\"}", long_pcm);
    expect(&r, 413, "PAYLOAD_TOO_LARGE", "Audio payload exceeds configured maximum buffer duration",
           NULL, "a query with 1 s of audio, reject");
    sgt_resp_free(&r);
    r = post(&s, a, "{\"audio_base64\":\"%s\",\"format\":\"pcm_s16le\"}", short_pcm);
    CHECK_MSG(r.status == 200, "0.04 s of audio: %ld %s", r.status, r.body ? r.body : "");
    CHECK_NEAR(json_number_value(json_object_get(r.json, "duration_s")), 0.04, 1e-9);
    sgt_resp_free(&r);
    /* the session keeps 0.04 s; two more would pass 0.05 s: the buffer refuses */
    r = post(&s, a, "{\"audio_base64\":\"%s\",\"format\":\"pcm_s16le\"}", short_pcm);
    expect(&r, 413, "PAYLOAD_TOO_LARGE", "Audio buffer would exceed configured limits", NULL,
           "the session's audio buffer, reject");
    sgt_resp_free(&r);

    /* frames: a 4x4 PNG fits in 300 bytes, a 9x9 noisy one does not */
    size_t small_len, big_len;
    char *small = png_b64(4, &small_len), *big = png_b64(9, &big_len);
    CHECK_MSG(small_len <= 150 && big_len > 300, "PNG sizes %zu, %zu", small_len, big_len);
    r = post(&s, f, "{\"image_base64\":\"%s\"}", small);
    CHECK_MSG(r.status == 200 && strcmp(sgt_str(r.json, "status"), "processed") == 0, "a %zu-byte "
              "frame: %ld %s", small_len, r.status, r.body ? r.body : "");
    sgt_resp_free(&r);
    r = post(&s, f, "{\"image_base64\":\"%s\"}", big);
    expect(&r, 413, "PAYLOAD_TOO_LARGE", "Frame payload exceeds configured maximum buffer size",
           "FRAME_BUFFER_MAX_BYTES", "a frame over 300 bytes (base64)");
    sgt_resp_free(&r);
    size_t raw_len;
    uint8_t *raw = sgt_png(9, 9, 9, 9, noise_pixel, &raw_len);
    const char *ct[] = {"Content-Type: image/png", NULL};
    r = sgt_request(&s, "POST", f, ct, raw, raw_len);
    expect(&r, 413, "PAYLOAD_TOO_LARGE", "Frame payload exceeds configured maximum buffer size",
           NULL, "a frame over 300 bytes (raw)");
    sgt_resp_free(&r);
    free(raw);
    /* small frames are kept (STORE_RAW_FRAMES) until the next would pass 300 bytes: refused */
    for (size_t k = 2; k <= 300 / small_len + 1; k++) {
        r = post(&s, f, "{\"image_base64\":\"%s\"}", small);
        if (k * small_len > 300)
            expect(&r, 413, "PAYLOAD_TOO_LARGE", "Frame buffer would exceed configured limits",
                   "FRAME_BUFFER_MAX_BYTES=300", "the frame buffer, reject");
        else
            CHECK_EQ_INT(r.status, 200);
        sgt_resp_free(&r);
    }

    /* DAT: the limits it announces, a chunk over 0.05 s on its own, a buffer that would pass it */
    char *ds = sgt_dat_session(&s);
    r = post(&s, "/dat/session", "{\"device_id\":\"g\",\"client_version\":\"1\"}");
    CHECK_NEAR(json_number_value(json_object_get(json_object_get(r.json, "limits"),
                                                 "audio_max_seconds")), 0.05, 1e-12);
    CHECK_EQ_INT(json_integer_value(json_object_get(r.json, "max_chunk_size_bytes")), 300);
    sgt_resp_free(&r);
    char *chunk = pcm_b64(0.03), *tenth = pcm_b64(0.1);
    r = post(&s, "/dat/stream", "{\"session_id\":\"%s\",\"chunk_type\":\"audio\",\"sequence_number\":1,"
             "\"timestamp_ms\":1,\"payload\":\"%s\"}", ds, tenth);
    expect(&r, 413, "PAYLOAD_TOO_LARGE", "Audio payload exceeds configured maximum buffer duration",
           NULL, "a DAT chunk of 0.1 s");
    sgt_resp_free(&r);
    r = post(&s, "/dat/stream", "{\"session_id\":\"%s\",\"chunk_type\":\"audio\",\"sequence_number\":2,"
             "\"timestamp_ms\":2,\"payload\":\"%s\"}", ds, chunk);
    CHECK_MSG(r.status == 200 && strcmp(sgt_str(r.json, "status"), "buffered") == 0, "DAT 0.03 s: %s",
              r.body ? r.body : "");
    sgt_resp_free(&r);
    r = post(&s, "/dat/stream", "{\"session_id\":\"%s\",\"chunk_type\":\"audio\",\"sequence_number\":3,"
             "\"timestamp_ms\":3,\"payload\":\"%s\"}", ds, chunk);
    expect(&r, 413, "PAYLOAD_TOO_LARGE", "Audio buffer would exceed configured limits",
           "complete the turn first", "a DAT buffer over 0.05 s");
    sgt_resp_free(&r);
    r = post(&s, "/dat/turn/complete", "{\"session_id\":\"%s\",\"turn_id\":\"t\"}", ds);
    CHECK_MSG(r.status == 200, "DAT turn over 0.03 s: %ld %s", r.status, r.body ? r.body : "");
    CHECK_NEAR(json_number_value(json_object_get(json_object_get(json_object_get(r.json, "metadata"),
                                                                 "dat"), "audio_seconds")), 0.03, 1e-9);
    sgt_resp_free(&r);

    /* /ws/frame takes messages up to FRAME_BUFFER_MAX_BYTES: a bigger one closes with 1009 */
    sgt_ws w;
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w, "frame", id), 101);
    uint8_t junk[400];
    memset(junk, 7, sizeof junk);
    sgt_ws_send(&w, 2, junk, sizeof junk);
    sgt_ws_frame fr = {0};
    json_t *j = sgt_ws_recv_json(&w, 10000, &fr);
    CHECK_MSG(!j && fr.opcode == 8 && fr.close_code == 1009, "ws frame of 400 bytes: opcode %d code %d",
              fr.opcode, fr.close_code);
    json_decref(j);
    sgt_ws_frame_free(&fr);
    sgt_ws_free(&w);

    free(chunk);
    free(tenth);
    free(ds);
    free(small);
    free(big);
    free(long_pcm);
    free(short_pcm);
    free(id);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

/* The same limits under trim (the default policy): the newest 0.05 s is kept, nothing refused. */
static void test_tiny_limits_trim(void)
{
    sgt_server s;
    const char *env[] = {"AUDIO_BUFFER_MAX_SECONDS=.05", "AUDIO_BUFFER_POLICY= Trim ",
                         "FRAME_BUFFER_MAX_BYTES=300", "STORE_RAW_FRAMES= yes ",
                         "STORE_RAW_AUDIO=true", NULL};
    CHECK_MSG(start_asr(&s, env), "sg-edge does not start with AUDIO_BUFFER_MAX_SECONDS=.05 and "
              "padded policy and boolean");
    if (!s.pid)
        return;
    session x = session_new(&s);
    char *id = x.id;
    const char *a = x.audio, *f = x.frame, *q = x.query;
    char *pcm = pcm_b64(1.0);
    for (int i = 0; i < 2; i++) {
        sgt_resp r = post(&s, a, "{\"audio_base64\":\"%s\",\"format\":\"pcm_s16le\"}", pcm);
        CHECK_MSG(r.status == 200, "1 s of audio, trim: %ld %s", r.status, r.body ? r.body : "");
        CHECK_NEAR(json_number_value(json_object_get(r.json, "duration_s")), 0.05, 1e-9);
        sgt_resp_free(&r);
    }
    sgt_resp r = post(&s, q, "{\"text\":\"hi\",\"audio_base64\":\"%s\",\"format\":\"pcm_s16le\"}", pcm);
    CHECK_MSG(r.status == 200, "a query with 1 s of audio, trim: %ld %s", r.status, r.body ? r.body : "");
    sgt_resp_free(&r);
    size_t small_len;
    char *small = png_b64(4, &small_len);
    for (int i = 0; i < 3; i++) { /* 3 frames of ~100 bytes: the oldest go, nothing is refused */
        r = post(&s, f, "{\"image_base64\":\"%s\"}", small);
        CHECK_EQ_INT(r.status, 200);
        sgt_resp_free(&r);
    }
    char *ds = sgt_dat_session(&s), *chunk = pcm_b64(0.03);
    for (int i = 1; i <= 3; i++) {
        r = post(&s, "/dat/stream", "{\"session_id\":\"%s\",\"chunk_type\":\"audio\","
                 "\"sequence_number\":%d,\"timestamp_ms\":%d,\"payload\":\"%s\"}", ds, i, i, chunk);
        CHECK_MSG(r.status == 200, "DAT chunk %d, trim: %s", i, r.body ? r.body : "");
        CHECK(json_number_value(json_object_get(json_object_get(r.json, "buffer"), "audio_seconds"))
              <= 0.05 + 1e-9);
        sgt_resp_free(&r);
    }
    free(ds);
    free(chunk);
    free(small);
    free(pcm);
    free(id);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

static void test_config_refusals(void)
{
    expect_refused_config("AUDIO_BUFFER_MAX_SECONDS=abc", "Invalid float value: abc");
    expect_refused_config("AUDIO_BUFFER_MAX_SECONDS=0", "AUDIO_BUFFER_MAX_SECONDS=0 is out of range");
    expect_refused_config("FRAME_BUFFER_MAX_BYTES=1.5", "Invalid integer value: 1.5");
    expect_refused_config("FRAME_BUFFER_POLICY=drop", "Invalid buffer policy 'drop'. Choose one of: "
                                                      "reject, trim");
    expect_refused_config("STORE_RAW_AUDIO=perhaps", "Invalid boolean value; use one of:");
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sgt_server s;
    CHECK(start_asr(&s, NULL));
    if (s.pid) {
        test_nul_http(&s);
        test_nul_ws_audio(&s);
        test_wording(&s);
        test_metrics_keys(&s);
        CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
    }
    test_tiny_limits_reject();
    test_tiny_limits_trim();
    test_config_refusals();
    curl_global_cleanup();
    return check_report("test_server_compat");
}
