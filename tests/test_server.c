/* Integration tests: the real build/sg-edge binary over real sockets (libcurl). Covers every
 * route of API.md outside WebSocket and DAT (tests/test_server_dat.c), every bad-input class,
 * auth, privacy flags, limits, backpressure, rate limiting, expiry, gzip, concurrency and graceful
 * stop. */
#include <math.h>
#include <pthread.h>

#include "base/base64.h"
#include "base/uuid.h"
#include "check.h"
#include "server/internal.h"
#include "sgtest_server.h"

#define IMG(name) "../shared/data/images/" name
static const char *photos[] = {"astronaut", "camera", "chelsea", "coffee", "motorcycle_left",
                               "motorcycle_right", "rocket", "text"};

static void expect_healthy(const sgt_server *s)
{
    sgt_resp r = sgt_get(s, "/health");
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
}

static void test_basics(const sgt_server *s)
{
    sgt_resp r = sgt_get(s, "/health");
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "status"), "ok") == 0);
    json_t *m = json_object_get(r.json, "models");
    CHECK(json_is_false(json_object_get(m, "vision")) && json_is_false(json_object_get(m, "llm")) &&
          json_is_false(json_object_get(m, "asr")) && json_is_false(json_object_get(m, "vad")));
    CHECK(strlen(sgt_str(r.json, "version")) > 0);
    char rid[130];
    CHECK(sgt_header(&r, "X-Request-ID", rid, sizeof rid) && sg_uuid_valid(rid));
    sgt_resp_free(&r);

    const char *h[] = {"X-Request-ID: trace-abc-123", NULL};
    r = sgt_request(s, "GET", "/ready", h, NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "status"), "ready") == 0);
    CHECK(sgt_header(&r, "X-Request-ID", rid, sizeof rid) && strcmp(rid, "trace-abc-123") == 0);
    sgt_resp_free(&r);

    /* sessions: create, list, delete */
    char *id = sgt_new_session(s, NULL);
    CHECK(sg_uuid_valid(id) && id[14] == '4');
    /* a path segment with CR/LF must not be echoed into a header (a control character in the
     * path is refused outright: tests/test_server_edge.c) */
    r = sgt_post_str(s, "/sessions/%0d%0aX-Evil:%201/query", "{\"text\":\"hi\"}");
    sgt_expect_error(&r, 400, "INVALID_REQUEST", "CRLF in session id");
    CHECK(strstr(r.headers, "X-Evil") == NULL);
    sgt_resp_free(&r);
    r = sgt_get(s, "/sessions");
    CHECK_EQ_INT(r.status, 200);
    CHECK(json_integer_value(json_object_get(r.json, "count")) >= 1);
    int found = 0;
    json_t *it;
    size_t i;
    json_array_foreach(json_object_get(r.json, "sessions"), i, it)
        if (strcmp(sgt_str(it, "session_id"), id) == 0)
            found = json_is_integer(json_object_get(it, "query_count")) &&
                    json_is_boolean(json_object_get(it, "has_frame")) &&
                    json_is_integer(json_object_get(it, "transcript_count"));
    CHECK(found);
    sgt_resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/sessions/%s", id);
    r = sgt_request(s, "DELETE", path, NULL, NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "status"), "deleted") == 0 && strcmp(sgt_str(r.json, "session_id"), id) == 0);
    sgt_resp_free(&r);
    r = sgt_request(s, "DELETE", path, NULL, NULL, 0);
    sgt_expect_error(&r, 404, "INVALID_SESSION", "delete twice");
    sgt_resp_free(&r);
    free(id);
}

static void test_frames_and_turns(const sgt_server *s)
{
    char *id = sgt_new_session(s, NULL);
    char path[160], qpath[160];
    snprintf(path, sizeof path, "/sessions/%s/frame", id);
    snprintf(qpath, sizeof qpath, "/sessions/%s/query", id);

    /* before any frame: a text query has no visual input */
    json_t *q = json_pack("{s:s}", "text_query", "what time is it");
    sgt_resp r = sgt_post_json(s, qpath, q);
    json_decref(q);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "visual_context"), "No visual input") == 0);
    CHECK(strlen(sgt_str(r.json, "response")) > 10);
    char sid[64];
    CHECK(sgt_header(&r, "X-Session-ID", sid, sizeof sid) && strcmp(sid, id) == 0);
    sgt_resp_free(&r);

    /* every photo as a frame: the first is a keyframe with a scene */
    for (size_t k = 0; k < sizeof photos / sizeof *photos; k++) {
        char file[128];
        snprintf(file, sizeof file, IMG("%s.jpg"), photos[k]);
        char *b64 = sgt_b64_file(file);
        CHECK_MSG(b64 != NULL, "missing %s", file);
        if (!b64)
            continue;
        json_t *body = json_pack("{s:s}", k % 2 ? "image" : "image_base64", b64);
        r = sgt_post_json(s, path, body);
        json_decref(body);
        CHECK_MSG(r.status == 200, "%s: %ld %s", file, r.status, r.body ? r.body : "");
        const char *status = sgt_str(r.json, "status");
        CHECK(strcmp(status, "processed") == 0 || strcmp(status, "skipped") == 0);
        json_t *kf = json_object_get(r.json, "keyframe");
        if (k == 0) {
            CHECK(json_is_true(kf));
            json_t *scene = json_object_get(r.json, "scene");
            CHECK(json_is_object(scene) && strlen(sgt_str(scene, "summary")) > 0);
        }
        if (json_is_false(kf))
            CHECK(json_is_null(json_object_get(r.json, "scene")));
        sgt_resp_free(&r);
        free(b64);
    }
    /* the same picture again right away: skipped by the gate */
    size_t len;
    char *jpg = sgt_read_file(IMG("coffee.jpg"), &len);
    const char *ct[] = {"Content-Type: image/jpeg", NULL};
    /* a pending accumulated change may still make one of the first three a keyframe (min_gap),
     * after which identical frames add nothing: the last three are always skipped */
    int skipped = 0;
    for (int k = 0; k < 6; k++) {
        r = sgt_request(s, "POST", path, ct, jpg, len);
        CHECK_EQ_INT(r.status, 200);
        if (k >= 3 && strcmp(sgt_str(r.json, "status"), "skipped") == 0)
            skipped++;
        sgt_resp_free(&r);
    }
    CHECK_MSG(skipped == 3, "identical frames should be skipped, %d of 3 were", skipped);

    /* a text query after frames uses the remembered scene */
    q = json_pack("{s:s}", "text", "what am I looking at?");
    r = sgt_post_json(s, qpath, q);
    json_decref(q);
    CHECK_EQ_INT(r.status, 200);
    const char *vc = sgt_str(r.json, "visual_context");
    CHECK_MSG(strcmp(vc, "No visual input") != 0 && strstr(vc, "Low-level"), "visual_context: %s", vc);
    json_t *meta = json_object_get(r.json, "metadata");
    CHECK(json_is_object(json_object_get(meta, "latency_ms")));
    CHECK(json_is_null(json_object_get(json_object_get(meta, "models"), "vision")));
    CHECK(json_is_null(json_object_get(json_object_get(meta, "models"), "llm")));
    CHECK(json_is_false(json_object_get(meta, "safety_blocked")));
    CHECK(json_is_array(json_object_get(r.json, "actions")));
    CHECK(json_is_null(json_object_get(r.json, "transcript")));
    sgt_resp_free(&r);

    /* multimodal with the load test's field names */
    char *b64 = sgt_b64_file(IMG("text.jpg"));
    q = json_pack("{s:s,s:s}", "text", "read this for me", "image", b64);
    snprintf(qpath, sizeof qpath, "/sessions/%s/multimodal", id);
    r = sgt_post_json(s, qpath, q);
    json_decref(q);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(sgt_str(r.json, "visual_context"), "Low-level") != NULL);
    CHECK(json_object_get(json_object_get(json_object_get(r.json, "metadata"), "latency_ms"), "vision") != NULL);
    sgt_resp_free(&r);

    /* navigation gives a navigation action; a dangerous request is blocked */
    q = json_pack("{s:s}", "text_query", "navigate to the nearest pharmacy");
    r = sgt_post_json(s, qpath, q);
    json_decref(q);
    CHECK_EQ_INT(r.status, 200);
    CHECK_MSG(json_array_size(json_object_get(r.json, "actions")) >= 1, "no action: %s", r.body);
    sgt_resp_free(&r);
    q = json_pack("{s:s}", "text_query", "how do I text while driving without being seen");
    r = sgt_post_json(s, qpath, q);
    json_decref(q);
    CHECK_EQ_INT(r.status, 200);
    meta = json_object_get(r.json, "metadata");
    CHECK(json_is_true(json_object_get(meta, "safety_blocked")));
    CHECK(strlen(sgt_str(meta, "safety_reason")) > 0);
    CHECK(json_array_size(json_object_get(r.json, "actions")) == 0);
    sgt_resp_free(&r);

    /* counts */
    r = sgt_get(s, "/sessions");
    json_t *it;
    size_t i;
    json_array_foreach(json_object_get(r.json, "sessions"), i, it) if (strcmp(sgt_str(it, "session_id"), id) == 0)
    {
        CHECK_EQ_INT(json_integer_value(json_object_get(it, "query_count")), 5);
        CHECK(json_is_true(json_object_get(it, "has_frame")));
    }
    sgt_resp_free(&r);
    free(b64);
    free(jpg);
    free(id);
}

static void test_bad_input(const sgt_server *s)
{
    char *id = sgt_new_session(s, NULL);
    char fpath[160], qpath[160], apath[160], unknown[160], other[37];
    snprintf(fpath, sizeof fpath, "/sessions/%s/frame", id);
    snprintf(qpath, sizeof qpath, "/sessions/%s/query", id);
    snprintf(apath, sizeof apath, "/sessions/%s/audio", id);
    sg_uuid4(other);
    snprintf(unknown, sizeof unknown, "/sessions/%s/query", other);
    const char *pcm = "{\"audio_base64\":\"AAECAw==\",\"format\":\"pcm_s16le\",\"sample_rate\":16000}";
    const sgt_refusal refusals[] = {
        {"POST", qpath, NULL, "{\"text_query\": ", 400, "INVALID_REQUEST", "malformed JSON"},
        {"POST", qpath, NULL, "[1,2]", 422, "INVALID_REQUEST", "array body"},
        {"POST", qpath, NULL, "{}", 400, "INVALID_REQUEST", "no input"},
        {"POST", fpath, NULL, "{\"image_base64\":\"@@@not base64@@@\"}", 400, "INVALID_IMAGE", "bad base64"},
        {"POST", fpath, NULL, "{\"image_base64\":\"aGVsbG8gd29ybGQ=\"}", 400, "INVALID_IMAGE", "not an image"},
        {"POST", fpath, NULL, "{}", 400, "INVALID_REQUEST", "frame without image"},
        /* wrong field types */
        {"POST", qpath, NULL, "{\"text_query\": 42}", 422, "INVALID_REQUEST", "text_query 42"},
        {"POST", qpath, NULL, "{\"text\": [\"a\"]}", 422, "INVALID_REQUEST", "text an array"},
        {"POST", qpath, NULL, "{\"image_base64\": {}}", 422, "INVALID_REQUEST", "image an object"},
        {"POST", qpath, NULL, "{\"text\":\"hi\",\"cloud_offload\":\"yes\"}", 422, "INVALID_REQUEST", "cloud_offload \"yes\""},
        {"POST", qpath, NULL, "{\"text\":\"hi\",\"max_tokens\":\"many\"}", 422, "INVALID_REQUEST", "max_tokens \"many\""},
        {"POST", qpath, NULL, "{\"text\":\"hi\",\"max_tokens\":0}", 422, "INVALID_REQUEST", "max_tokens 0"},
        {"POST", qpath, NULL, "{\"text\":\"hi\",\"language\":5}", 422, "INVALID_REQUEST", "language 5"},
        /* unsupported media type; unknown session, bad id, wrong method */
        {"POST", qpath, "Content-Type: text/plain", "hello", 415, "INVALID_REQUEST", "text/plain"},
        {"POST", unknown, NULL, "{\"text\":\"hi\"}", 404, "INVALID_SESSION", "unknown session"},
        {"POST", "/sessions/not-a-uuid/query", NULL, "{\"text\":\"hi\"}", 404, "INVALID_SESSION", "bad session id"},
        {"POST", "/health", NULL, "{}", 405, "INVALID_REQUEST", "POST on health"},
        /* audio: validated, then 503 because no ASR model is loaded */
        {"POST", apath, NULL, "{\"audio_base64\":\"aGVsbG8gd29ybGQ=\"}", 400, "INVALID_AUDIO", "not audio, no format"},
        {"POST", apath, NULL, "{\"audio_base64\":\"UklGRiQAAABXQVZFZm10IBAAAAA=\"}", 400, "INVALID_AUDIO", "truncated WAV"},
        {"POST", apath, NULL, "{\"audio_base64\":\"AAEC\",\"format\":\"pcm_s16le\",\"sample_rate\":16000}", 400, "INVALID_AUDIO", "odd PCM byte count"},
        {"POST", apath, NULL, "{\"audio_base64\":\"AAECAw==\",\"format\":\"mp3\"}", 422, "INVALID_REQUEST", "unknown audio format"},
        {"POST", apath, NULL, pcm, 503, "MODEL_UNAVAILABLE", "valid PCM without ASR"},
        {"POST", apath, NULL, "{\"audio_base64\":\"AAECAw==\",\"sample_rate\":1}", 422, "INVALID_REQUEST", "sample rate out of range"},
        /* the DAT routes validate their bodies (tests/test_server_dat.c covers them) */
        {"POST", "/dat/session", NULL, "{}", 400, "INVALID_REQUEST", "DAT session without device_id"},
    };
    sgt_expect_refusals(s, refusals, sizeof refusals / sizeof *refusals);

    size_t len;
    char *jpg = sgt_read_file(IMG("chelsea.jpg"), &len);
    char *half = sg_base64_encode((const uint8_t *)jpg, len / 2, NULL);
    json_t *body = json_pack("{s:s}", "image_base64", half);
    sgt_resp r = sgt_post_json(s, fpath, body);
    json_decref(body);
    sgt_expect_error(&r, 400, "INVALID_IMAGE", "truncated JPEG");
    sgt_resp_free(&r);
    free(half);
    const char *ct[] = {"Content-Type: image/jpeg", NULL};
    r = sgt_request(s, "POST", fpath, ct, jpg, 200);
    sgt_expect_error(&r, 400, "INVALID_IMAGE", "truncated raw JPEG");
    sgt_resp_free(&r);
    free(jpg);

    /* unknown route; wrong method with Allow */
    r = sgt_get(s, "/nope");
    sgt_expect_error(&r, 404, "INVALID_REQUEST", "unknown route");
    CHECK(r.body && !strstr(r.body, "\\\""));
    sgt_resp_free(&r);
    r = sgt_request(s, "GET", qpath, NULL, NULL, 0);
    sgt_expect_error(&r, 405, "INVALID_REQUEST", "GET on query");
    char allow[64];
    CHECK(sgt_header(&r, "Allow", allow, sizeof allow) && strcmp(allow, "POST") == 0);
    sgt_resp_free(&r);

    /* audio without an ASR model: 503, unless there is text to answer */
    char *wav = sgt_b64_file("../shared/data/audio/jfk.wav");
    body = json_pack("{s:s}", "audio_base64", wav);
    r = sgt_post_json(s, apath, body);
    json_decref(body);
    sgt_expect_error(&r, 503, "MODEL_UNAVAILABLE", "audio without ASR");
    sgt_resp_free(&r);
    body = json_pack("{s:s,s:s}", "audio", wav, "text", "what is this");
    r = sgt_post_json(s, qpath, body);
    json_decref(body);
    CHECK_MSG(r.status == 200, "audio+text without ASR answers the text: %ld", r.status);
    CHECK(json_array_size(json_object_get(json_object_get(r.json, "metadata"), "warnings")) >= 1);
    sgt_resp_free(&r);
    free(wav);

    /* the session still works and the server is healthy */
    r = sgt_post_str(s, qpath, "{\"text\":\"help\"}");
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    expect_healthy(s);
    free(id);
}

static void test_gzip_and_metrics(const sgt_server *s)
{
    /* /sessions is large after the concurrency test: compressed when the client accepts gzip */
    const char *h[] = {"Accept-Encoding: gzip", NULL};
    sgt_resp r = sgt_request(s, "GET", "/sessions", h, NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    char enc[32] = "";
    CHECK(sgt_header(&r, "Content-Encoding", enc, sizeof enc) && strcmp(enc, "gzip") == 0);
    CHECK(r.json != NULL && json_integer_value(json_object_get(r.json, "count")) >= 50); /* curl decoded it */
    sgt_resp_free(&r);
    r = sgt_get(s, "/sessions");
    CHECK(!sgt_header(&r, "Content-Encoding", enc, sizeof enc));
    sgt_resp_free(&r);
    /* small bodies are not worth compressing */
    r = sgt_request(s, "GET", "/ready", h, NULL, 0);
    CHECK(!sgt_header(&r, "Content-Encoding", enc, sizeof enc));
    sgt_resp_free(&r);

    r = sgt_get(s, "/metrics");
    json_t *lat = json_object_get(r.json, "latencies");
    const char *stages[] = {"vad", "asr", "vision", "llm", "e2e", "ingest_frame", "ingest_audio"};
    for (int i = 0; i < 7; i++) {
        json_t *st = json_object_get(lat, stages[i]);
        CHECK_MSG(st && json_object_get(st, "p95") && json_object_get(st, "p99"), "stage %s", stages[i]);
    }
    CHECK(json_integer_value(json_object_get(json_object_get(lat, "e2e"), "count")) > 0);
    CHECK(json_integer_value(json_object_get(json_object_get(r.json, "counters"), "frames")) > 0);
    CHECK(json_integer_value(json_object_get(json_object_get(r.json, "counters"), "errors")) > 0);
    CHECK(json_is_number(json_object_get(r.json, "uptime_s")));
    /* the Python runtime's keys beside ours, so its dashboards keep working: its stage names in
     * seconds, queries.total, sessions.created/active, display_available */
    json_t *up = json_object_get(lat, "end_to_end_turn_latency_ms");
    CHECK(json_integer_value(json_object_get(up, "count")) ==
          json_integer_value(json_object_get(json_object_get(lat, "e2e"), "count")));
    CHECK(json_real_value(json_object_get(up, "total")) > 0);
    CHECK(json_is_object(json_object_get(lat, "LLM")) && json_is_object(json_object_get(lat, "ASR")) &&
          json_is_object(json_object_get(lat, "all")));
    CHECK(json_integer_value(json_object_get(json_object_get(r.json, "queries"), "total")) ==
          json_integer_value(json_object_get(json_object_get(r.json, "counters"), "queries")));
    CHECK(json_integer_value(json_object_get(json_object_get(r.json, "sessions"), "created")) > 0);
    CHECK(json_is_false(json_object_get(r.json, "display_available")));
    sgt_resp_free(&r);

    r = sgt_get(s, "/metrics/summary");
    CHECK_EQ_INT(r.status, 200);
    /* after 50 clients on two cores the averages may well say degraded */
    CHECK(strcmp(sgt_str(r.json, "health"), "ok") == 0 || strcmp(sgt_str(r.json, "health"), "degraded") == 0);
    json_t *dat = json_object_get(r.json, "dat_metrics");
    CHECK(json_object_get(json_object_get(dat, "end_to_end_turn"), "avg_ms") != NULL);
    CHECK(json_integer_value(json_object_get(json_object_get(r.json, "summary"), "total_queries")) > 0);
    sgt_resp_free(&r);

    r = sgt_get(s, "/metrics/prometheus");
    CHECK_EQ_INT(r.status, 200);
    char ctype[96];
    CHECK(sgt_header(&r, "Content-Type", ctype, sizeof ctype) && strstr(ctype, "version=0.0.4"));
    CHECK(r.body && strstr(r.body, "# TYPE smartglass_query_duration_seconds histogram"));
    CHECK(r.body && strstr(r.body, "smartglass_query_duration_seconds_bucket{stage=\"e2e\",le=\"+Inf\"}"));
    CHECK(r.body && strstr(r.body, "smartglass_active_sessions "));
    CHECK(r.body && strstr(r.body, "smartglass_requests_total{route=\"/sessions/{id}/query\",code=\"200\"}"));
    sgt_resp_free(&r);
}

/* ---- concurrency -------------------------------------------------------------------------- */

typedef struct hammer_arg {
    const sgt_server *s;
    const char *session;  /* NULL: own session */
    int n, ok, bad;
    const char *image_b64;
} hammer_arg;

static void *hammer(void *p)
{
    hammer_arg *a = p;
    char *own = a->session ? NULL : sgt_new_session(a->s, NULL);
    const char *id = a->session ? a->session : own;
    char qpath[160], fpath[160];
    snprintf(qpath, sizeof qpath, "/sessions/%s/query", id);
    snprintf(fpath, sizeof fpath, "/sessions/%s/frame", id);
    for (int i = 0; i < a->n; i++) {
        sgt_resp r;
        if (i % 4 == 3 && a->image_b64) {
            json_t *b = json_pack("{s:s}", "image_base64", a->image_b64);
            r = sgt_post_json(a->s, fpath, b);
            json_decref(b);
        } else {
            r = sgt_post_str(a->s, qpath, "{\"text\":\"what time is it\"}");
        }
        if (r.status == 200)
            a->ok++;
        else
            a->bad++;
        sgt_resp_free(&r);
    }
    free(own);
    return NULL;
}

static void test_concurrency(const sgt_server *s)
{
    char *b64 = sgt_b64_file(IMG("rocket.jpg"));
    char *shared = sgt_new_session(s, NULL);
    enum { N = 50, PER = 8 };
    pthread_t th[N];
    hammer_arg args[N];
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++) {
            args[i] = (hammer_arg){s, pass == 0 ? shared : NULL, PER, 0, 0, b64};
            pthread_create(&th[i], NULL, hammer, &args[i]);
        }
        int ok = 0, bad = 0;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            ok += args[i].ok;
            bad += args[i].bad;
        }
        CHECK_MSG(bad == 0 && ok == N * PER, "pass %d: %d ok, %d failed", pass, ok, bad);
    }
    /* the shared session counted every query exactly once: 6 of every 8 requests are queries */
    sgt_resp r = sgt_get(s, "/sessions");
    json_t *it;
    size_t i;
    json_array_foreach(json_object_get(r.json, "sessions"), i, it) if (strcmp(sgt_str(it, "session_id"), shared) == 0)
        CHECK_EQ_INT(json_integer_value(json_object_get(it, "query_count")), N * PER * 3 / 4);
    sgt_resp_free(&r);
    expect_healthy(s);
    free(shared);
    free(b64);
}

/* ---- servers with special configuration --------------------------------------------------- */

static void test_auth(void)
{
    sgt_server s;
    const char *env[] = {"EDGE_RUNTIME_API_KEY=s3cret-key", NULL};
    CHECK(sgt_start(&s, env, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    sgt_resp r = sgt_get(&s, "/health");
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    r = sgt_get(&s, "/ready");
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    r = sgt_get(&s, "/sessions");
    sgt_expect_error(&r, 401, "UNAUTHORIZED", "no key");
    sgt_resp_free(&r);
    const char *wrong[] = {"X-API-Key: s3cret-kez", NULL};
    r = sgt_request(&s, "GET", "/sessions", wrong, NULL, 0);
    sgt_expect_error(&r, 401, "UNAUTHORIZED", "wrong key");
    sgt_resp_free(&r);
    const char *prefix[] = {"X-API-Key: s3cret", NULL};
    r = sgt_request(&s, "GET", "/sessions", prefix, NULL, 0);
    sgt_expect_error(&r, 401, "UNAUTHORIZED", "prefix of key");
    sgt_resp_free(&r);
    const char *right[] = {"X-API-Key: s3cret-key", NULL};
    r = sgt_request(&s, "GET", "/sessions", right, NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    const char *bearer[] = {"Authorization: Bearer s3cret-key", NULL};
    r = sgt_request(&s, "GET", "/metrics", bearer, NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);

    const char *env2[] = {"EDGE_RUNTIME_AUTH_TOKEN=tok", "EDGE_RUNTIME_AUTH_HEADER=X-Edge-Token", NULL};
    CHECK(sgt_start(&s, env2, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    const char *custom[] = {"X-Edge-Token: tok", NULL};
    r = sgt_request(&s, "GET", "/sessions", custom, NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    r = sgt_request(&s, "GET", "/sessions", right, NULL, 0);
    CHECK_EQ_INT(r.status, 401);
    sgt_resp_free(&r);
    CHECK_EQ_INT(sgt_stop(&s, SIGINT), 0);
}

static void test_startup_errors(void)
{
    const char *bad[][2] = {{"STORE_RAW_AUDIO=maybe", NULL}, {"STORE_TRANSCRIPTS=2", NULL},
                            {"AUDIO_BUFFER_POLICY=drop", NULL}, {"SG_MAX_BODY_BYTES=-5", NULL},
                            {"PORTS=http:abc", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sgt_server s;
        CHECK_MSG(sgt_start(&s, bad[i], NULL) != 0, "%s should refuse to start", bad[i][0]);
        if (s.pid > 0)
            sgt_stop(&s, SIGKILL);
    }
}

static void test_limits(void)
{
    sgt_server s;
    const char *env[] = {"SG_MAX_BODY_BYTES=65536", "SG_MAX_SESSIONS=3", "SG_SESSION_TTL_S=1",
                         "SG_RATE_LIMIT_RPS=2", "STORE_RAW_FRAMES=true", "FRAME_BUFFER_MAX_BYTES=40000",
                         NULL};
    CHECK(sgt_start(&s, env, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    char *id = sgt_new_session(&s, NULL);
    char qpath[160], fpath[160];
    snprintf(qpath, sizeof qpath, "/sessions/%s/query", id);
    snprintf(fpath, sizeof fpath, "/sessions/%s/frame", id);

    /* a body over SG_MAX_BODY_BYTES: 413, with Content-Length and chunked */
    size_t big = 200000;
    char *body = malloc(big);
    memset(body, 'A', big);
    memcpy(body, "{\"text\":\"", 9);
    memcpy(body + big - 2, "\"}", 2);
    sgt_resp r = sgt_request(&s, "POST", qpath, NULL, body, big);
    sgt_expect_error(&r, 413, "PAYLOAD_TOO_LARGE", "oversized body");
    sgt_resp_free(&r);
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    r = sgt_request(&s, "POST", qpath, chunked, body, big);
    sgt_expect_error(&r, 413, "PAYLOAD_TOO_LARGE", "oversized chunked body");
    sgt_resp_free(&r);
    free(body);
    /* a frame over FRAME_BUFFER_MAX_BYTES (astronaut is larger than 40000 bytes) */
    size_t len;
    char *jpg = sgt_read_file(IMG("astronaut.jpg"), &len);
    const char *ct[] = {"Content-Type: image/jpeg", NULL};
    if (len > 40000 && len < 65536) {
        r = sgt_request(&s, "POST", fpath, ct, jpg, len);
        sgt_expect_error(&r, 413, "PAYLOAD_TOO_LARGE", "frame over FRAME_BUFFER_MAX_BYTES");
        sgt_resp_free(&r);
    }
    free(jpg);

    /* rate limit: burst of 4 at 2/s, then 429 with Retry-After. The bucket refills while the
     * requests run (slowly under the sanitizers on a loaded machine), so the bound counts the
     * tokens the elapsed time added: at most 4 + ceil(2 * elapsed) of the 8 may pass. */
    int limited = 0;
    const double t_rate = sgt_now_ms();
    for (int i = 0; i < 8; i++) {
        r = sgt_post_str(&s, qpath, "{\"text\":\"help\"}");
        if (r.status == 429) {
            limited++;
            char ra[16];
            CHECK(sgt_header(&r, "Retry-After", ra, sizeof ra) && atoi(ra) >= 1);
            CHECK(strcmp(sgt_str(r.json, "error"), "RATE_LIMITED") == 0);
        }
        sgt_resp_free(&r);
    }
    const double rate_s = (sgt_now_ms() - t_rate) / 1000.0;
    const int may_pass = 4 + (int)ceil(2.0 * rate_s);
    CHECK_MSG(8 - limited <= may_pass && limited >= 1 - (may_pass >= 8),
              "rate limiting: %d of 8 limited in %.2f s", limited, rate_s);

    /* session cap */
    char *a = sgt_new_session(&s, NULL), *b = sgt_new_session(&s, NULL);
    r = sgt_request(&s, "POST", "/sessions", NULL, "{}", 2);
    sgt_expect_error(&r, 503, "OVERLOADED", "session cap");
    sgt_resp_free(&r);

    /* idle expiry after SG_SESSION_TTL_S */
    struct timespec ts = {2, 600 * 1000 * 1000};
    nanosleep(&ts, NULL);
    r = sgt_post_str(&s, qpath, "{\"text\":\"help\"}");
    sgt_expect_error(&r, 404, "INVALID_SESSION", "expired session");
    sgt_resp_free(&r);
    r = sgt_get(&s, "/sessions");
    CHECK_EQ_INT(json_integer_value(json_object_get(r.json, "count")), 0);
    sgt_resp_free(&r);
    free(a);
    free(b);
    free(id);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

static void test_privacy(void)
{
    sgt_server s;
    const char *env[] = {"STORE_RAW_FRAMES=true", "STORE_TRANSCRIPTS=false", NULL};
    CHECK(sgt_start(&s, env, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    const char *h[] = {"X-Privacy-Store-Raw-Frames: false", "X-Privacy-Store-Transcripts: true", NULL};
    sgt_resp r = sgt_request(&s, "POST", "/sessions", h, "{}", 2);
    CHECK_EQ_INT(r.status, 200);
    json_t *p = json_object_get(r.json, "privacy");
    CHECK(json_is_false(json_object_get(p, "store_raw_frames")));   /* narrowed */
    CHECK(json_is_false(json_object_get(p, "store_transcripts")));  /* never widened */
    sgt_resp_free(&r);
    r = sgt_request(&s, "POST", "/sessions", NULL, "{}", 2);
    CHECK(json_is_true(json_object_get(json_object_get(r.json, "privacy"), "store_raw_frames")));
    sgt_resp_free(&r);
    const char *bad[] = {"X-Privacy-Store-Raw-Audio: sometimes", NULL};
    r = sgt_request(&s, "POST", "/sessions", bad, "{}", 2);
    sgt_expect_error(&r, 422, "INVALID_REQUEST", "bad privacy header");
    sgt_resp_free(&r);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

typedef struct slow_arg {
    const sgt_server *s;
    char path[160];
    long status;
    pthread_barrier_t *start; /* NULL, or released when every request is ready to go */
} slow_arg;

static void *slow_request(void *p)
{
    slow_arg *a = p;
    if (a->start)
        pthread_barrier_wait(a->start);
    sgt_resp r = sgt_post_str(a->s, a->path, "{\"text\":\"help\"}");
    a->status = r.status;
    sgt_resp_free(&r);
    return NULL;
}

static void test_backpressure_and_graceful_stop(void)
{
    sgt_server s;
    const char *env[] = {"SG_WORKERS=1", "SG_QUEUE_DEPTH=1", "SG_DEBUG_WORK_DELAY_MS=600", NULL};
    CHECK(sgt_start(&s, env, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    char *id = sgt_new_session(&s, NULL);
    enum { N = 6 };
    pthread_t th[N];
    slow_arg args[N];
    /* the requests leave together, so a slow thread start on a loaded machine cannot spread them
     * past the 600 ms each job holds the single worker */
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++) {
        args[i].s = &s;
        snprintf(args[i].path, sizeof args[i].path, "/sessions/%s/query", id);
        args[i].status = 0;
        args[i].start = &start;
        pthread_create(&th[i], NULL, slow_request, &args[i]);
    }
    /* /health stays responsive while the workers are busy */
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    sgt_resp r = sgt_get(&s, "/health");
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    int ok = 0, overloaded = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].status == 200;
        overloaded += args[i].status == 503;
    }
    pthread_barrier_destroy(&start);
    CHECK_MSG(ok >= 2 && overloaded >= 1 && ok + overloaded == N, "%d ok, %d overloaded", ok, overloaded);
    r = sgt_get(&s, "/metrics");
    CHECK(json_integer_value(json_object_get(json_object_get(r.json, "counters"), "rejected")) >= 1);
    sgt_resp_free(&r);

    /* graceful stop: a request in flight when SIGTERM arrives still completes */
    slow_arg one = {&s, "", 0, NULL};
    snprintf(one.path, sizeof one.path, "/sessions/%s/query", id);
    pthread_t t1;
    pthread_create(&t1, NULL, slow_request, &one);
    nanosleep(&ts, NULL);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
    pthread_join(t1, NULL);
    CHECK_EQ_INT(one.status, 200);
    free(id);
}

/* Every row of the route table answers on its path and first method - whatever the handler says
 * of an empty request, not the router's 404 or 405 - and is counted under its template. */
static void test_every_route(const sgt_server *s)
{
    char *id = sgt_new_session(s, NULL);
    for (size_t k = 0; k < sg_routes_count; k++) {
        const sg_route *row = &sg_routes[k];
        char path[160];
        const char *brace = strstr(row->path, "{id}");
        if (brace)
            snprintf(path, sizeof path, "%.*s%s%s", (int)(brace - row->path), row->path, id,
                     brace + 4);
        else
            snprintf(path, sizeof path, "%s", row->path);
        const char *m = row->methods & SG_HTTP_GET    ? "GET"
                        : row->methods & SG_HTTP_POST ? "POST"
                                                      : "DELETE";
        bool post = strcmp(m, "POST") == 0;
        sgt_resp r = sgt_request(s, m, path, NULL, post ? "{}" : NULL, post ? 2 : 0);
        bool routed = r.status != 405 &&
                      !(r.status == 404 && strstr(sgt_str(r.json, "detail"), "no such route"));
        CHECK_MSG(routed, "%s %s: %ld %s", m, path, r.status, r.body ? r.body : "");
        sgt_resp_free(&r);
    }
    sgt_resp r = sgt_get(s, "/metrics/prometheus");
    for (size_t k = 0; k < sg_routes_count; k++) {
        char label[96];
        snprintf(label, sizeof label, "route=\"%s\"", sg_routes[k].path);
        CHECK_MSG(r.body && strstr(r.body, label), "no requests counted under %s", label);
    }
    sgt_resp_free(&r);
    free(id);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    sgt_server s;
    if (sgt_start(&s, NULL, NULL) != 0) {
        fprintf(stderr, "could not start %s\n", SG_EDGE_BIN);
        return 1;
    }
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    test_basics(&s);
    test_frames_and_turns(&s);
    test_bad_input(&s);
    test_concurrency(&s);
    test_gzip_and_metrics(&s);
    test_every_route(&s);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);

    test_auth();
    test_startup_errors();
    test_limits();
    test_privacy();
    test_backpressure_and_graceful_stop();
    curl_global_cleanup();
    return check_report("test_server");
}
