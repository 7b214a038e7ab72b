/* Streamed answers (issue 14) through the real sg-edge: POST /query with Accept: text/event-stream
 * answers as Server-Sent Events - the scene, the answer's text piece by piece (the pieces are
 * the final response), each sentence spoken as Ogg Opus before the next, `done` holding the turn
 * result (as the JSON route's, with first_token / first_audio); without the header nothing
 * changes; an error before the stream is the JSON error, after it an `error` event; a client that
 * goes away mid-stream, or stops reading, costs the server a bounded amount and leaves the session
 * usable; the tiny SNN student's tokens stream one by one. */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base64.h"
#include "check.h"
#include "media/audio.h"
#include "sgtest_http.h"

typedef struct event {
    char name[32];
    json_t *data;
} event;

typedef struct stream {
    long status;
    char ctype[128];
    event *v;
    int n;
    char *raw;
    size_t len;
} stream;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    stream *s = ud;
    char *r = realloc(s->raw, s->len + sz * n + 1);
    if (!r)
        return 0;
    memcpy(r + s->len, p, sz * n);
    s->raw = r;
    s->len += sz * n;
    s->raw[s->len] = 0;
    return sz * n;
}

static size_t on_head(char *p, size_t sz, size_t n, void *ud)
{
    stream *s = ud;
    if (strncasecmp(p, "Content-Type:", 13) == 0)
        snprintf(s->ctype, sizeof s->ctype, "%.*s", (int)(sz * n - 13), p + 13);
    return sz * n;
}

/* Splits the body into events ("event: X\ndata: {...}\n\n"). */
static void parse_events(stream *s)
{
    for (char *p = s->raw; p && *p;) {
        char *end = strstr(p, "\n\n");
        if (!end)
            break;
        *end = 0;
        event e = {{0}, NULL};
        for (char *line = p; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = 0;
            if (strncmp(line, "event: ", 7) == 0)
                snprintf(e.name, sizeof e.name, "%s", line + 7);
            else if (strncmp(line, "data: ", 6) == 0)
                e.data = json_loads(line + 6, 0, NULL);
            line = nl ? nl + 1 : NULL;
        }
        s->v = realloc(s->v, (size_t)(s->n + 1) * sizeof *s->v);
        s->v[s->n++] = e;
        p = end + 2;
    }
}

static stream post_stream(const sgt_server *srv, const char *sid, const char *body)
{
    stream s = {0};
    char url[256];
    snprintf(url, sizeof url, "%s/sessions/%s/query", srv->base, sid);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Accept: text/event-stream");
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_head);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (s.raw && strstr(s.ctype, "text/event-stream"))
        parse_events(&s);
    return s;
}

static void stream_free(stream *s)
{
    for (int i = 0; i < s->n; i++)
        json_decref(s->v[i].data);
    free(s->v);
    free(s->raw);
    memset(s, 0, sizeof *s);
}

static int count(const stream *s, const char *name)
{
    int k = 0;
    for (int i = 0; i < s->n; i++)
        k += strcmp(s->v[i].name, name) == 0;
    return k;
}

static json_t *last(const stream *s, const char *name)
{
    for (int i = s->n - 1; i >= 0; i--)
        if (strcmp(s->v[i].name, name) == 0)
            return s->v[i].data;
    return NULL;
}

/* The token pieces after the last reset, concatenated. */
static char *tokens_text(const stream *s)
{
    size_t cap = 1, len = 0;
    char *t = calloc(1, 1);
    for (int i = 0; i < s->n; i++) {
        if (strcmp(s->v[i].name, "reset") == 0) {
            len = 0;
            t[0] = 0;
        }
        if (strcmp(s->v[i].name, "token") != 0)
            continue;
        const char *p = json_string_value(json_object_get(s->v[i].data, "text"));
        size_t n = p ? strlen(p) : 0;
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            t = realloc(t, cap);
        }
        memcpy(t + len, p ? p : "", n);
        len += n;
        t[len] = 0;
    }
    return t;
}

/* Every structural promise of a stream that ended with done. */
static json_t *check_done_stream(const stream *s, const char *what, bool speak)
{
    CHECK_MSG(s->status == 200 && strstr(s->ctype, "text/event-stream"), "%s: %ld %s", what,
              s->status, s->ctype);
    CHECK_MSG(s->n >= 3, "%s: %d events", what, s->n);
    if (s->n < 3)
        return NULL;
    CHECK_MSG(strcmp(s->v[0].name, "vision") == 0 || strcmp(s->v[0].name, "transcript") == 0,
              "%s: first event %s", what, s->v[0].name);
    CHECK_MSG(strcmp(s->v[s->n - 1].name, "done") == 0, "%s: last event %s", what,
              s->v[s->n - 1].name);
    CHECK_EQ_INT(count(s, "done"), 1);
    CHECK_EQ_INT(count(s, "error"), 0);
    CHECK(count(s, "token") >= 1);
    for (int i = 0; i < s->n; i++)
        CHECK_MSG(s->v[i].data != NULL, "%s: event %d (%s) without JSON data", what, i,
                  s->v[i].name);
    json_t *done = s->v[s->n - 1].data;
    char *text = tokens_text(s);
    const char *response = json_string_value(json_object_get(done, "response"));
    CHECK_MSG(response && strcmp(text, response) == 0, "%s: tokens \"%s\" != response \"%s\"", what,
              text, response ? response : "(none)");
    free(text);
    json_t *lat = json_object_get(json_object_get(done, "metadata"), "latency_ms");
    json_t *ft = json_object_get(lat, "first_token"), *fa = json_object_get(lat, "first_audio");
    CHECK_MSG(json_is_number(ft) && json_number_value(ft) >= 0 &&
                  json_number_value(ft) <= json_number_value(json_object_get(lat, "total")),
              "%s: first_token", what);
    if (speak) {
        CHECK(count(s, "audio") >= 1);
        CHECK_MSG(json_is_number(fa) && json_number_value(fa) >= json_number_value(ft), "%s: "
                  "first_audio", what);
        int next = 0, first_token = -1;
        for (int i = 0; i < s->n; i++) {
            if (strcmp(s->v[i].name, "token") == 0 && first_token < 0)
                first_token = i;
            if (strcmp(s->v[i].name, "audio") != 0)
                continue;
            json_t *a = s->v[i].data;
            CHECK_MSG(first_token >= 0 && first_token < i, "%s: audio before any text", what);
            /* sentences in order; a long first one in two parts (agent/tts.h) */
            json_t *part = json_object_get(a, "part");
            CHECK_EQ_INT(json_integer_value(json_object_get(a, "sentence")), next);
            CHECK(!part || (next == 0 && json_integer_value(part) <= 1));
            if (!part || json_integer_value(part) == 1)
                next++;
            CHECK(strcmp(json_string_value(json_object_get(a, "format")), "ogg") == 0);
            const char *b64 = json_string_value(json_object_get(a, "audio_base64"));
            size_t blen = b64 ? strlen(b64) : 0, n = 0;
            uint8_t *bytes = NULL;
            sg_error err = {0};
            sg_audio pcm = {0};
            CHECK(b64 && sg_base64_decode(b64, blen, &bytes, &n, &err) == SG_OK);
            CHECK_MSG(bytes && sg_audio_decode(bytes, n, SG_AUDIO_OGG, 0, 0, &pcm, &err) == SG_OK &&
                          pcm.n > 1600,
                      "%s: audio %d does not decode to speech-sized audio: %s", what, next - 1,
                      err.msg);
            sg_audio_free(&pcm);
            free(bytes);
        }
    } else {
        CHECK_EQ_INT(count(s, "audio"), 0);
        CHECK(json_is_null(fa));
    }
    return done;
}

static json_t *post_json(const sgt_server *srv, const char *sid, const char *body)
{
    char path[128];
    snprintf(path, sizeof path, "/sessions/%s/query", sid);
    sgt_resp r = sgt_post_str(srv, path, body);
    CHECK_EQ_INT(r.status, 200);
    json_t *j = json_incref(r.json);
    sgt_resp_free(&r);
    return j;
}

/* The turn result without what differs between two runs (ids, times). */
static void strip(json_t *o)
{
    json_object_del(o, "session_id");
    json_object_del(json_object_get(o, "metadata"), "latency_ms");
}

static void check_rule_based(void)
{
    sgt_server srv;
    CHECK(sgt_start(&srv, NULL, NULL) == 0);
    char *a = sgt_new_session(&srv, NULL), *b = sgt_new_session(&srv, NULL);
    const char *q = "{\"text_query\":\"What can you do? Tell me.\",\"speak\":true}";
    stream s = post_stream(&srv, a, q);
    json_t *done = check_done_stream(&s, "rule-based, spoken", true);
    /* the JSON route on another session gives the same turn (its "speak" adds the whole audio) */
    json_t *plain = post_json(&srv, b, "{\"text_query\":\"What can you do? Tell me.\"}");
    if (done && plain) {
        json_t *d = json_deep_copy(done);
        strip(d);
        strip(plain);
        char *x = json_dumps(d, JSON_SORT_KEYS), *y = json_dumps(plain, JSON_SORT_KEYS);
        CHECK_MSG(x && y && strcmp(x, y) == 0, "done != the JSON route's result:\n%s\n%s", x, y);
        free(x);
        free(y);
        json_decref(d);
    }
    json_decref(plain);
    stream_free(&s);

    /* WAV on request */
    s = post_stream(&srv, a, "{\"text_query\":\"help\",\"speak\":true,\"speak_format\":\"wav\"}");
    json_t *au = last(&s, "audio");
    CHECK(au && strcmp(json_string_value(json_object_get(au, "format")), "wav") == 0);
    stream_free(&s);

    /* errors before the stream: the JSON error response */
    s = post_stream(&srv, a, "{\"text_query\":\"hi\",\"image_base64\":\"%%%\"}");
    CHECK_EQ_INT(s.status, 400);
    CHECK(strstr(s.ctype, "application/json") && s.n == 0);
    stream_free(&s);
    s = post_stream(&srv, a, "{\"text_query\":\"hi\",\"speak\":true,\"speak_format\":\"mp3\"}");
    CHECK(s.status == 422 || s.status == 400);
    stream_free(&s);
    s = post_stream(&srv, "00000000-0000-0000-0000-000000000000", "{\"text_query\":\"hi\"}");
    CHECK_EQ_INT(s.status, 404);
    stream_free(&s);
    free(a);
    free(b);
    CHECK_EQ_INT(sgt_stop(&srv, SIGTERM), 0);
}

/* A connection with a tiny receive window that sends a streamed query and then does not read. */
static int stalled_client(int port, const char *sid, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "POST /sessions/%s/query HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     sid, strlen(body), body);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

static void check_llm(void)
{
    sgt_server srv;
    const char *env[] = {"SG_SSE_BUFFER_BYTES=16384", "SG_SSE_STALL_MS=500", NULL};
    const char *args[] = {"--llm-model", "tests/fixtures/snn_tiny", "--threads", "2", NULL};
    CHECK(sgt_start(&srv, env, args) == 0);
    CHECK(sgt_wait_ready(&srv));
    char *a = sgt_new_session(&srv, NULL);

    /* the student's tokens, one event each, are the response */
    stream s = post_stream(&srv, a, "{\"text_query\":\"describe the scene\",\"max_tokens\":24}");
    check_done_stream(&s, "snn", false);
    CHECK_MSG(count(&s, "token") >= 8, "%d token events for 24 tokens", count(&s, "token"));
    stream_free(&s);

    /* an error after the stream started (the context is too small for 4,000 new tokens): an
     * error event with the status, after the scene, and no done */
    s = post_stream(&srv, a, "{\"text_query\":\"describe the scene\",\"max_tokens\":4000}");
    CHECK_EQ_INT(s.status, 200);
    json_t *e = last(&s, "error");
    char *last_data = s.n > 0 ? json_dumps(s.v[s.n - 1].data, JSON_COMPACT) : NULL;
    CHECK_MSG(e && json_integer_value(json_object_get(e, "status")) >= 400 &&
                  json_is_string(json_object_get(e, "error")) &&
                  json_is_string(json_object_get(e, "detail")),
              "no error event (%d events, the last %s: %.300s)", s.n,
              s.n > 0 ? s.v[s.n - 1].name : "-", last_data ? last_data : "-");
    free(last_data);
    CHECK_EQ_INT(count(&s, "done"), 0);
    CHECK(s.n >= 2 && strcmp(s.v[0].name, "vision") == 0);
    stream_free(&s);

    /* a client that goes away mid-stream: the server stops the turn and the session goes on */
    const char *long_q = "{\"text_query\":\"describe the scene\",\"max_tokens\":200,\"speak\":true}";
    for (int i = 0; i < 3; i++) {
        int fd = stalled_client(srv.port, a, long_q);
        CHECK(fd >= 0);
        char buf[256];
        ssize_t got = read(fd, buf, sizeof buf); /* the head and the first event have started */
        CHECK(got > 0);
        close(fd);
    }
    json_t *j = post_json(&srv, a, "{\"text_query\":\"what is this?\",\"max_tokens\":8}");
    CHECK(j && json_is_string(json_object_get(j, "response")));
    json_decref(j);

    /* a client that stops reading: its turn is given up after SG_SSE_STALL_MS with at most
     * SG_SSE_BUFFER_BYTES (or one event) waiting, while the connection stays open; the session
     * answers the next question meanwhile */
    int fd = stalled_client(srv.port, a, "{\"text_query\":\"describe the scene\",\"max_tokens\":200,"
                                         "\"speak\":true,\"speak_format\":\"wav\"}");
    CHECK(fd >= 0);
    const double t0 = sgt_now_ms();
    j = post_json(&srv, a, "{\"text_query\":\"and now?\",\"max_tokens\":8}");
    CHECK(j && json_is_string(json_object_get(j, "response")));
    json_decref(j);
    printf("a question behind a stalled stream answered after %.0f ms\n", sgt_now_ms() - t0);
    sgt_resp h = sgt_get(&srv, "/health");
    CHECK_EQ_INT(h.status, 200);
    sgt_resp_free(&h);
    close(fd);

    /* speech asked of a server without a synthesiser: the JSON error, before any stream */
    free(a);
    CHECK_EQ_INT(sgt_stop(&srv, SIGTERM), 0);
    const char *off[] = {"SG_TTS=off", NULL};
    CHECK(sgt_start(&srv, off, NULL) == 0);
    a = sgt_new_session(&srv, NULL);
    s = post_stream(&srv, a, "{\"text_query\":\"help\",\"speak\":true}");
    CHECK_EQ_INT(s.status, 503);
    CHECK(s.n == 0 && s.raw && strstr(s.raw, "MODEL_UNAVAILABLE"));
    stream_free(&s);
    s = post_stream(&srv, a, "{\"text_query\":\"help\"}"); /* text only still streams */
    check_done_stream(&s, "no synthesiser, text", false);
    stream_free(&s);
    free(a);
    CHECK_EQ_INT(sgt_stop(&srv, SIGTERM), 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    check_rule_based();
    check_llm();
    curl_global_cleanup();
    return check_report("test_server_sse");
}
