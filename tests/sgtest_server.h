/* Helpers the server's integration tests (tests/test_server*.c) share on top of sgtest_http.h:
 * a file as base64, the API's error shape, a table of requests that must fail, the silent-audio
 * query. Header-only so
 * each test file stays standalone. */
#ifndef SG_TESTS_SERVER_H
#define SG_TESTS_SERVER_H

#include "base/base64.h"
#include "sgtest_http.h"

/* The file's bytes in base64 (malloc'ed), NULL when it cannot be read. */
__attribute__((unused)) static char *sgt_b64_file(const char *path)
{
    size_t len;
    char *data = sgt_read_file(path, &len);
    char *b = data ? sg_base64_encode((const uint8_t *)data, len, NULL) : NULL;
    free(data);
    return b;
}

/* r is the API's error: the status, {"error": code} and a non-empty "detail". */
__attribute__((unused)) static void sgt_expect_error(const sgt_resp *r, long status, const char *code,
                                                     const char *what)
{
    CHECK_MSG(r->status == status, "%s: status %ld, want %ld (body %s)", what, r->status, status,
              r->body ? r->body : "");
    CHECK_MSG(r->json && strcmp(sgt_str(r->json, "error"), code) == 0, "%s: error code %s, want %s",
              what, sgt_str(r->json, "error"), code);
    CHECK_MSG(r->json && strlen(sgt_str(r->json, "detail")) > 0, "%s: no detail", what);
}

/* A request that must fail, and how. header: one extra header line or NULL; body: NULL for none
 * (a body goes as JSON unless header names another Content-Type). */
typedef struct sgt_refusal {
    const char *method, *path, *header, *body;
    long status;
    const char *code, *what;
} sgt_refusal;

__attribute__((unused)) static void sgt_expect_refusals(const sgt_server *s, const sgt_refusal *t,
                                                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *h[] = {t[i].header, NULL};
        sgt_resp r = sgt_request(s, t[i].method, t[i].path, t[i].header ? h : NULL, t[i].body,
                                 t[i].body ? strlen(t[i].body) : 0);
        sgt_expect_error(&r, t[i].status, t[i].code, t[i].what);
        sgt_resp_free(&r);
    }
}

/* POST /dat/session for a pair of glasses; the new session id (malloc'ed), checked to be a 200. */
__attribute__((unused)) static char *sgt_dat_session(const sgt_server *s)
{
    sgt_resp r = sgt_post_str(s, "/dat/session", "{\"device_id\":\"rayban-1\",\"client_version\":\"1.0.0\"}");
    CHECK_EQ_INT(r.status, 200);
    char *id = strdup(sgt_str(r.json, "session_id"));
    sgt_resp_free(&r);
    return id;
}

/* With a VAD loaded: a query whose audio (base64 16 kHz s16le PCM) is silent answers its text,
 * with a warning. */
__attribute__((unused)) static void sgt_expect_silent_query(const sgt_server *s, const char *qpath,
                                                            const char *silence_b64)
{
    json_t *body = json_pack("{s:s,s:s,s:i,s:s}", "audio", silence_b64, "format", "pcm_s16le",
                             "sample_rate", 16000, "text", "what time is it");
    sgt_resp r = sgt_post_json(s, qpath, body);
    json_decref(body);
    CHECK_EQ_INT(r.status, 200);
    CHECK(strcmp(sgt_str(r.json, "query"), "what time is it") == 0);
    CHECK(json_array_size(json_object_get(json_object_get(r.json, "metadata"), "warnings")) >= 1);
    sgt_resp_free(&r);
}

#endif
