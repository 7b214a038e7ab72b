/* libsgclient's streamed answers (issue 14): the SSE parser (line ends, comments, multi-line
 * data, any split of the bytes, bounds), sg_client_query_stream against the real sg-edge (the
 * tokens are the result's response, the speech decodes, the callback's stop ends the request and
 * leaves the server well, an error before the stream is the usual failure), and
 * sg_answer_ws_message on /ws/audio messages. */
#include <string.h>

#include "check.h"
#include "sgclient.h"
#include "sgtest_http.h"

typedef struct seen {
    char names[16][32];
    char data[16][128];
    int n, stop_after;
} seen;

static bool on_sse(void *ud, const char *event, const char *data, size_t len)
{
    seen *s = ud;
    if (s->n < 16) {
        snprintf(s->names[s->n], sizeof s->names[0], "%s", event);
        snprintf(s->data[s->n], sizeof s->data[0], "%s", data);
        CHECK(strlen(data) == len);
    }
    return ++s->n != s->stop_after;
}

static void check_parser(void)
{
    static const char text[] = ": keep-alive\r\n"
                               "event: token\r\ndata: {\"text\":\"a\"}\r\n\r\n"
                               "event:done\rdata: one\rdata:two\r\r"
                               "id: 7\nretry: 10\ndata: plain\n\n"
                               "event: nothing\n\n"
                               "data\n\n";
    const size_t n = sizeof text - 1;
    /* whole, then byte by byte, then in threes: the same events */
    for (size_t step = n; step >= 1; step = step == n ? 1 : step == 1 ? 3 : 0) {
        sg_sse_parser *p;
        CHECK(sg_sse_parser_new(0, &p) == SG_CLIENT_OK);
        seen s = {.stop_after = -1};
        for (size_t at = 0; at < n; at += step)
            CHECK(sg_sse_parser_feed(p, text + at, n - at < step ? n - at : step, on_sse, &s) ==
                  SG_CLIENT_OK);
        CHECK_MSG(s.n == 4, "step %zu: %d events", step, s.n);
        CHECK(strcmp(s.names[0], "token") == 0 && strcmp(s.data[0], "{\"text\":\"a\"}") == 0);
        CHECK(strcmp(s.names[1], "done") == 0 && strcmp(s.data[1], "one\ntwo") == 0);
        CHECK(strcmp(s.names[2], "message") == 0 && strcmp(s.data[2], "plain") == 0);
        CHECK(strcmp(s.names[3], "message") == 0 && strcmp(s.data[3], "") == 0);
        sg_sse_parser_free(p);
        if (step == 3)
            break;
    }
    /* the callback's stop; an event over the bound; a NUL byte */
    sg_sse_parser *p;
    CHECK(sg_sse_parser_new(16, &p) == SG_CLIENT_OK);
    seen s = {.stop_after = 1};
    CHECK(sg_sse_parser_feed(p, "data: x\n\ndata: y\n\n", 18, on_sse, &s) == SG_CLIENT_ABANDONED);
    CHECK_EQ_INT(s.n, 1);
    CHECK(sg_sse_parser_feed(p, "data: 0123456789abcdefXYZ\n\n", 27, on_sse, &s) ==
          SG_CLIENT_EFORMAT);
    CHECK(sg_sse_parser_feed(p, "data: y\n\n", 9, on_sse, &s) == SG_CLIENT_EFORMAT); /* broken */
    sg_sse_parser_free(p);
    CHECK(sg_sse_parser_new(0, &p) == SG_CLIENT_OK);
    CHECK(sg_sse_parser_feed(p, "data: a\0b\n\n", 11, on_sse, &s) == SG_CLIENT_EFORMAT);
    sg_sse_parser_free(p);
}

typedef struct got {
    char text[4096];
    size_t len;
    int tokens, audio, events, stop_at_token;
    bool ogg, ordered;
    double first_token, first_audio;
    char last_type[32];
} got;

static bool on_answer(void *ud, const sg_answer_event *ev)
{
    got *g = ud;
    g->events++;
    snprintf(g->last_type, sizeof g->last_type, "%s", ev->type);
    g->ordered &= ev->t_ms >= 0 && ev->json && ev->json_len > 0;
    if (strcmp(ev->type, "token") == 0) {
        if (g->first_token < 0)
            g->first_token = ev->t_ms;
        size_t n = strlen(ev->text);
        if (g->len + n < sizeof g->text) {
            memcpy(g->text + g->len, ev->text, n + 1);
            g->len += n;
        }
        if (++g->tokens == g->stop_at_token)
            return false;
    } else if (strcmp(ev->type, "audio") == 0) {
        if (g->first_audio < 0)
            g->first_audio = ev->t_ms;
        g->audio++;
        g->ogg &= ev->audio_len > 100 && memcmp(ev->audio, "OggS", 4) == 0 && ev->sentence >= 0 &&
                  ev->sample_rate > 0 && strcmp(ev->format, "ogg") == 0;
    }
    return true;
}

static void check_http(void)
{
    sgt_server srv;
    CHECK(sgt_start(&srv, NULL, NULL) == 0);
    sg_client_config cc;
    sg_client_config_default(&cc, srv.base);
    sg_client *c;
    char err[SG_CLIENT_ERROR_SIZE];
    CHECK(sg_client_new(&cc, &c, err) == SG_CLIENT_OK);
    char sid[SG_CLIENT_SESSION_ID_SIZE];
    CHECK(sg_client_create_session(c, sid, NULL) == SG_CLIENT_OK);

    got g = {.first_token = -1, .first_audio = -1, .ogg = true, .ordered = true};
    sg_client_result r;
    CHECK(sg_client_query_stream(c, sid, "What can you do for me?", NULL, 0, true, on_answer, &g,
                                 &r) == SG_CLIENT_OK);
    CHECK_EQ_INT(r.status, 200);
    json_t *res = r.body ? json_loads(r.body, 0, NULL) : NULL;
    const char *resp = json_string_value(json_object_get(res, "response"));
    CHECK_MSG(resp && strcmp(resp, g.text) == 0, "tokens \"%s\" != response \"%s\"", g.text,
              resp ? resp : "");
    CHECK(g.tokens >= 1 && g.audio >= 1 && g.ogg && g.ordered);
    CHECK(strcmp(g.last_type, "done") == 0);
    CHECK(g.first_token >= 0 && g.first_audio >= g.first_token);
    CHECK(r.server_ms > 0 && r.bytes_up > 0 && r.bytes_down > r.body_len);
    json_decref(res);
    sg_client_result_clear(&r);

    /* the callback stops at the first token: ABANDONED; the server and the session go on */
    got h = {.first_token = -1, .first_audio = -1, .ogg = true, .ordered = true, .stop_at_token = 1};
    CHECK(sg_client_query_stream(c, sid, "help", NULL, 0, true, on_answer, &h, &r) ==
          SG_CLIENT_ABANDONED);
    CHECK_EQ_INT(h.tokens, 1);
    sg_client_result_clear(&r);
    CHECK(sg_client_query(c, sid, "what time is it?", NULL, 0, NULL) == SG_CLIENT_OK);

    /* errors before a stream: as other requests */
    got e = {.first_token = -1, .first_audio = -1};
    CHECK(sg_client_query_stream(c, "00000000-0000-0000-0000-000000000000", "hi", NULL, 0, false,
                                 on_answer, &e, &r) == SG_CLIENT_FAILED);
    CHECK_EQ_INT(r.status, 404);
    CHECK(strcmp(r.error, "INVALID_SESSION") == 0 && e.events == 0);
    sg_client_result_clear(&r);
    CHECK(sg_client_query_stream(c, sid, NULL, NULL, 0, false, on_answer, &e, &r) ==
          SG_CLIENT_EINVAL);
    CHECK(sg_client_query_stream(c, "a/b", "x", NULL, 0, false, on_answer, &e, NULL) ==
          SG_CLIENT_EINVAL);
    sg_client_stats st;
    sg_client_get_stats(c, &st);
    CHECK(st.kind[SG_UPLOAD_QUERY].requests >= 4);
    sg_client_free(c);
    CHECK_EQ_INT(sgt_stop(&srv, SIGTERM), 0);
}

static void no_sleep(void *ud, double ms)
{
    (void)ud;
    (void)ms;
}

/* Nobody listens: retried as any request, then GAVE_UP with the network error. */
static void check_gave_up(void)
{
    sg_client_config cc;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sgt_free_port());
    sg_client_config_default(&cc, url);
    cc.retry.max_attempts = 3;
    cc.sleep_ms = no_sleep;
    sg_client *c;
    char err[SG_CLIENT_ERROR_SIZE];
    CHECK(sg_client_new(&cc, &c, err) == SG_CLIENT_OK);
    got g = {0};
    sg_client_result r;
    CHECK(sg_client_query_stream(c, "some-session", "hi", NULL, 0, false, on_answer, &g, &r) ==
          SG_CLIENT_GAVE_UP);
    CHECK(r.attempts == 3 && r.network_errors == 3 && r.status == 0 && r.detail[0] && !g.events);
    sg_client_result_clear(&r);
    sg_client_free(c);
}

static bool count_ws(void *ud, const sg_answer_event *ev)
{
    got *g = ud;
    g->events++;
    snprintf(g->last_type, sizeof g->last_type, "%s", ev->type);
    if (strcmp(ev->type, "audio") == 0)
        g->ogg = ev->audio_len == 3 && memcmp(ev->audio, "abc", 3) == 0 && ev->answer == 2 &&
                 ev->sentence == 1 && ev->t_ms < 0;
    return true;
}

static void check_ws_messages(void)
{
    got g = {0};
    const char *audio = "{\"type\":\"audio\",\"answer\":2,\"sentence\":1,\"text\":\"Hi.\","
                        "\"format\":\"ogg\",\"sample_rate\":16000,\"audio_base64\":\"YWJj\"}";
    CHECK(sg_answer_ws_message(audio, strlen(audio), count_ws, &g) == SG_CLIENT_OK && g.ogg);
    const char *fin = "{\"type\":\"final\",\"text\":\"hello\"}";
    CHECK(sg_answer_ws_message(fin, strlen(fin), count_ws, &g) == SG_CLIENT_OK);
    CHECK(strcmp(g.last_type, "final") == 0);
    static const char *const bad[] = {"", "[]", "{\"text\":1}", "{\"type\":\"audio\"}",
                                      "{\"type\":\"audio\",\"sentence\":0,\"audio_base64\":\"%%\"}",
                                      NULL};
    for (int i = 0; bad[i]; i++)
        CHECK_MSG(sg_answer_ws_message(bad[i], strlen(bad[i]), count_ws, &g) == SG_CLIENT_EFORMAT,
                  "accepted %s", bad[i]);
}

int main(void)
{
    check_parser();
    check_ws_messages();
    check_gave_up();
    check_http();
    return check_report("test_client_stream");
}
