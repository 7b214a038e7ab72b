/* Integration tests of the WebSocket routes through the real sg-edge binary, with the client of
 * sgtest_ws.h: handshake refusals (400/401/404/405/426/503), ping/pong, the close handshake,
 * fragmented messages, protocol errors (1002/1007) and oversize messages (1009), /ws/frame with
 * real photos and garbage, DELETE of the session (1000), the idle timeout (1001), the socket cap,
 * /ws/audio streaming jfk.wav in 100 ms chunks with the tiny Whisper fixture and the real Silero
 * VAD (partials, finals on the VAD's segments, "end", resampled f32 input, no VAD, an abrupt
 * disconnect), the session surviving every close, and a graceful stop with sockets open. */
#include <math.h>
#include <signal.h>

#include "agent/vad_silero.h"
#include "check.h"
#include "media/audio.h"
#include "sgtest_http.h"
#include "sgtest_proc.h"
#include "sgtest_ws.h"

#define IMG(name) "../shared/data/images/" name ".jpg"
#define JFK "../shared/data/audio/jfk.wav"
#define VAD_MODEL "../shared/models/silero-vad-v6.2.0-ggml.bin"
#define ASR_MODEL "tests/fixtures/whisper_tiny"

static long entry_int(const sgt_server *s, const char *id, const char *key)
{
    json_t *e = sgt_session_entry(s, id);
    long v = e ? (long)json_integer_value(json_object_get(e, key)) : -1;
    json_decref(e);
    return v;
}

/* sgt_ws_connect for a test that has just closed sockets at the SG_MAX_WEBSOCKETS cap: after a
 * protocol error the server lingers until it sees our FIN (we saw its own first), so the slot may
 * be free a moment after our close; 503 is retried for up to 2 s. */
static int ws_connect_retry(const sgt_server *s, sgt_ws *w, const char *kind, const char *sid)
{
    int st = 0;
    for (int i = 0; i < 100; i++) {
        st = sgt_ws_connect(s->port, w, kind, sid);
        if (st != 503)
            break;
        sgt_ws_free(w);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return st;
}

/* ---- handshakes ---- */

static void expect_refused(const sgt_server *s, const char *method, const char *path,
                           const char *headers, int status, const char *code, const char *what)
{
    sgt_ws w;
    int st = sgt_ws_open(&w, s->port, method, path, headers, NULL);
    CHECK_MSG(st == status, "%s: status %d, want %d (%s)", what, st, status, w.body ? w.body : "");
    CHECK_MSG(w.json && strcmp(sgt_str(w.json, "error"), code) == 0 &&
                  strlen(sgt_str(w.json, "detail")) > 0,
              "%s: body %s", what, w.body ? w.body : "");
    char rid[130];
    CHECK_MSG(sgt_ws_header(&w, "X-Request-ID", rid, sizeof rid), "%s: no X-Request-ID", what);
    if (status == 426) {
        char v[16] = "";
        CHECK(sgt_ws_header(&w, "Sec-WebSocket-Version", v, sizeof v) && strcmp(v, "13") == 0);
    }
    sgt_ws_free(&w);
}

#define HS(ver, key) "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " key "\r\nSec-WebSocket-Version: " ver "\r\n"

static void test_handshakes(const sgt_server *s, bool have_asr)
{
    char *sid = sgt_new_session(s, NULL);
    char path[128], apath[128];
    snprintf(path, sizeof path, "/ws/frame/%s", sid);
    snprintf(apath, sizeof apath, "/ws/audio/%s", sid);
    expect_refused(s, "GET", "/ws/frame/0b8e1a9e-3c7d-4a55-9a43-0c1b2d3e4f50", NULL, 404,
                   "INVALID_SESSION", "unknown session");
    expect_refused(s, "GET", "/ws/audio/not-a-uuid", NULL, 404, "INVALID_SESSION", "malformed id");
    expect_refused(s, "GET", path, "Accept: */*\r\n", 400, "INVALID_REQUEST", "plain GET");
    expect_refused(s, "GET", path, "Upgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: "
                   SGT_WS_KEY "\r\nSec-WebSocket-Version: 13\r\n", 400, "INVALID_REQUEST",
                   "Connection without Upgrade");
    expect_refused(s, "GET", path, HS("8", SGT_WS_KEY), 426, "INVALID_REQUEST", "version 8");
    expect_refused(s, "GET", path, HS("13", "c2hvcnQ="), 400, "INVALID_REQUEST", "short key");
    expect_refused(s, "GET", path, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
                   400, "INVALID_REQUEST", "no key");
    expect_refused(s, "POST", path, NULL, 405, "INVALID_REQUEST", "POST");
    if (!have_asr)
        expect_refused(s, "GET", apath, NULL, 503, "MODEL_UNAVAILABLE", "audio without ASR");
    /* the route is a WebSocket for curl too: a plain GET is a 400 with the usual JSON */
    sgt_resp r = sgt_get(s, path);
    CHECK_EQ_INT(r.status, 400);
    char hv[64];
    CHECK(sgt_header(&r, "X-Session-ID", hv, sizeof hv) && strcmp(hv, sid) == 0);
    sgt_resp_free(&r);
    /* refusals leave the session alone */
    json_t *e = sgt_session_entry(s, sid);
    CHECK(e != NULL);
    json_decref(e);
    free(sid);
}

static void test_auth(void)
{
    sgt_server s;
    const char *env[] = {"EDGE_RUNTIME_API_KEY=sekrit", NULL};
    CHECK(sgt_start(&s, env, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    const char *h[] = {"X-API-Key: sekrit", NULL};
    char *sid = sgt_new_session(&s, h);
    char path[128];
    snprintf(path, sizeof path, "/ws/frame/%s", sid);
    expect_refused(&s, "GET", path, NULL, 401, "UNAUTHORIZED", "no key");
    sgt_ws w;
    CHECK_EQ_INT(sgt_ws_open(&w, s.port, "GET", path, NULL, "X-API-Key: wrong\r\n"), 401);
    sgt_ws_free(&w);
    CHECK_EQ_INT(sgt_ws_open(&w, s.port, "GET", path, NULL, "Authorization: Bearer sekrit\r\n"), 101);
    sgt_ws_send(&w, 9, "x", 1);
    sgt_ws_frame f;
    sgt_ws_recv(&w, 5000, &f);
    CHECK(f.opcode == 10 && f.len == 1 && f.data[0] == 'x');
    sgt_ws_frame_free(&f);
    sgt_ws_free(&w);
    free(sid);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

/* ---- /ws/frame ---- */

static json_t *without_timing(json_t *o)
{
    json_t *c = json_deep_copy(o);
    json_object_del(c, "latency_ms");
    json_object_del(c, "session_id");
    return c;
}

static void test_frames(const sgt_server *s)
{
    char *sid = sgt_new_session(s, NULL), *other = sgt_new_session(s, NULL);
    sgt_ws w;
    CHECK_EQ_INT(sgt_ws_connect(s->port, &w, "frame", sid), 101);
    char v[128];
    CHECK(sgt_ws_header(&w, "Sec-WebSocket-Accept", v, sizeof v) && strcmp(v, SGT_WS_ACCEPT) == 0);
    CHECK(sgt_ws_header(&w, "Upgrade", v, sizeof v) && strcasecmp(v, "websocket") == 0);
    CHECK(sgt_ws_header(&w, "X-Session-ID", v, sizeof v) && strcmp(v, sid) == 0);

    /* ping -> pong with the same payload */
    sgt_ws_send(&w, 9, "hello", 5);
    sgt_ws_frame f;
    sgt_ws_recv(&w, 5000, &f);
    CHECK(f.opcode == 10 && f.len == 5 && memcmp(f.data, "hello", 5) == 0);
    sgt_ws_frame_free(&f);

    /* a real photo: the same body as POST /frame on an identical session */
    size_t len;
    char *jpg = sgt_read_file(IMG("coffee"), &len);
    CHECK(jpg != NULL);
    sgt_ws_send(&w, 2, jpg, len);
    json_t *m = sgt_ws_recv_json(&w, 30000, NULL);
    CHECK(m != NULL);
    CHECK(strcmp(sgt_str(m, "session_id"), sid) == 0);
    CHECK(strcmp(sgt_str(m, "status"), "processed") == 0);
    CHECK(json_is_true(json_object_get(m, "keyframe")) && json_is_object(json_object_get(m, "scene")));
    CHECK(json_is_object(json_object_get(m, "latency_ms")));
    char fpath[128];
    snprintf(fpath, sizeof fpath, "/sessions/%s/frame", other);
    const char *ct[] = {"Content-Type: image/jpeg", NULL};
    sgt_resp r = sgt_request(s, "POST", fpath, ct, jpg, len);
    CHECK_EQ_INT(r.status, 200);
    json_t *a = without_timing(m), *b = without_timing(r.json);
    CHECK_MSG(json_equal(a, b), "the WebSocket reply differs from POST /frame's body");
    json_decref(a);
    json_decref(b);
    sgt_resp_free(&r);
    json_decref(m);

    /* garbage: an error message, and the socket stays open */
    sgt_ws_send(&w, 2, "definitely not a JPEG", 21);
    m = sgt_ws_recv_json(&w, 10000, NULL);
    CHECK(m && strcmp(sgt_str(m, "error"), "INVALID_IMAGE") == 0 && strlen(sgt_str(m, "detail")) > 0);
    json_decref(m);
    sgt_ws_send(&w, 2, "", 0);
    m = sgt_ws_recv_json(&w, 10000, NULL);
    CHECK(m && strcmp(sgt_str(m, "error"), "INVALID_IMAGE") == 0);
    json_decref(m);
    sgt_ws_send_text(&w, "{\"image_base64\":\"...\"}");
    m = sgt_ws_recv_json(&w, 10000, NULL);
    CHECK(m && strcmp(sgt_str(m, "error"), "INVALID_REQUEST") == 0);
    json_decref(m);

    /* a fragmented photo with a ping between the fragments */
    free(jpg);
    jpg = sgt_read_file(IMG("chelsea"), &len);
    size_t third = len / 3;
    sgt_ws_send_frame(&w, 0x02, jpg, third, 1);
    sgt_ws_send_frame(&w, 0x00, jpg + third, third, 1);
    sgt_ws_send(&w, 9, "mid", 3);
    sgt_ws_send_frame(&w, 0x80, jpg + 2 * third, len - 2 * third, 1);
    sgt_ws_recv(&w, 5000, &f);
    CHECK(f.opcode == 10 && f.len == 3); /* the pong comes before the frame's reply */
    sgt_ws_frame_free(&f);
    m = sgt_ws_recv_json(&w, 30000, NULL);
    CHECK(m && json_integer_value(json_object_get(m, "frame_index")) == 2);
    CHECK(m && (strcmp(sgt_str(m, "status"), "processed") == 0 || strcmp(sgt_str(m, "status"), "skipped") == 0));
    json_decref(m);
    free(jpg);

    /* several frames in flight are answered in order */
    const char *names[] = {IMG("rocket"), IMG("text"), IMG("camera")};
    for (int i = 0; i < 3; i++) {
        char *d = sgt_read_file(names[i], &len);
        sgt_ws_send(&w, 2, d, len);
        free(d);
    }
    for (int i = 0; i < 3; i++) {
        m = sgt_ws_recv_json(&w, 30000, NULL);
        CHECK_MSG(m && json_integer_value(json_object_get(m, "frame_index")) == 3 + i, "frame %d", i);
        json_decref(m);
    }

    /* the close handshake: our code comes back, then the server ends the connection */
    sgt_ws_send_close(&w, 1000, "bye");
    sgt_ws_recv(&w, 5000, &f);
    CHECK(f.opcode == 8 && f.close_code == 1000);
    sgt_ws_frame_free(&f);
    CHECK(sgt_ws_wait_eof(&w, 5000));
    sgt_ws_free(&w);

    /* the session outlives its socket */
    json_t *e = sgt_session_entry(s, sid);
    CHECK(e && json_integer_value(json_object_get(e, "frame_count")) == 5 &&
          json_is_true(json_object_get(e, "has_frame")));
    json_decref(e);
    /* a close frame without a code is answered with 1000 */
    CHECK_EQ_INT(sgt_ws_connect(s->port, &w, "frame", sid), 101);
    sgt_ws_send(&w, 8, "", 0);
    sgt_ws_recv(&w, 5000, &f);
    CHECK(f.opcode == 8 && f.close_code == 1000);
    sgt_ws_frame_free(&f);
    CHECK(sgt_ws_wait_eof(&w, 5000));
    sgt_ws_free(&w);
    free(sid);
    free(other);
}

/* ---- protocol errors, limits, deletion, idle, cap ---- */

static void test_protocol_errors(const sgt_server *s)
{
    char *sid = sgt_new_session(s, NULL);
    sgt_ws w;
    /* an unmasked client frame */
    CHECK_EQ_INT(sgt_ws_connect(s->port, &w, "frame", sid), 101);
    sgt_ws_send_frame(&w, 0x82, "abc", 3, 0);
    sgt_ws_expect_close(&w, 1002, NULL, "unmasked frame");
    sgt_ws_free(&w);
    /* invalid UTF-8 in a text message */
    CHECK_EQ_INT(sgt_ws_connect(s->port, &w, "frame", sid), 101);
    sgt_ws_send(&w, 1, "ok \xc3\x28", 5);
    sgt_ws_expect_close(&w, 1007, NULL, "invalid UTF-8");
    sgt_ws_free(&w);
    /* a reserved opcode, then a continuation out of nowhere */
    CHECK_EQ_INT(sgt_ws_connect(s->port, &w, "frame", sid), 101);
    sgt_ws_send_frame(&w, 0x83, "", 0, 1);
    sgt_ws_expect_close(&w, 1002, NULL, "reserved opcode");
    sgt_ws_free(&w);
    CHECK_EQ_INT(sgt_ws_connect(s->port, &w, "frame", sid), 101);
    sgt_ws_send_frame(&w, 0x80, "x", 1, 1);
    sgt_ws_expect_close(&w, 1002, NULL, "stray continuation");
    sgt_ws_free(&w);
    /* a ping over 125 bytes */
    CHECK_EQ_INT(sgt_ws_connect(s->port, &w, "frame", sid), 101);
    char big[200] = {0};
    sgt_ws_send(&w, 9, big, 200);
    sgt_ws_expect_close(&w, 1002, NULL, "long ping");
    sgt_ws_free(&w);
    json_t *e = sgt_session_entry(s, sid);
    CHECK(e != NULL);
    json_decref(e);
    free(sid);
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* A DELETE of a session that arrives together with a WebSocket handshake for it (two connections
 * opened beforehand, the two requests sent back to back, in both orders): the handshake is either
 * refused (404) or its socket is closed with 1000 "session deleted" - never left open on a deleted
 * session, whichever of the upgrade and the DELETE gets where first. (A race: without the check
 * at the socket's start this caught a socket left open in about one run of three.) */
static void test_delete_during_upgrade(const sgt_server *s)
{
    int upgraded = 0;
    for (int it = 0; it < 60; it++) {
        char *sid = sgt_new_session(s, NULL);
        sgt_ws w;
        memset(&w, 0, sizeof w);
        w.fd = tcp_connect(s->port);
        int b = tcp_connect(s->port);
        CHECK(w.fd >= 0 && b >= 0);
        char hs[512], del[256];
        snprintf(hs, sizeof hs, "GET /ws/frame/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: " SGT_WS_KEY "\r\nSec-WebSocket-Version: "
                 "13\r\n\r\n", sid);
        snprintf(del, sizeof del, "DELETE /sessions/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: "
                 "close\r\n\r\n", sid);
        const int first = it % 2 ? w.fd : b, second = it % 2 ? b : w.fd;
        const char *m1 = it % 2 ? hs : del, *m2 = it % 2 ? del : hs;
        CHECK(send(first, m1, strlen(m1), MSG_NOSIGNAL) == (ssize_t)strlen(m1));
        CHECK(send(second, m2, strlen(m2), MSG_NOSIGNAL) == (ssize_t)strlen(m2));
        char *end = NULL;
        double deadline = sgt_ws_now_ms() + 5000;
        while (!(end = w.len ? memmem(w.buf, w.len, "\r\n\r\n", 4) : NULL) &&
               sgt_ws_now_ms() < deadline && sgt_ws_fill(&w, 200) != 0)
            ;
        int status = 0;
        if (end) {
            sscanf((const char *)w.buf, "HTTP/1.%*d %d", &status);
            sgt_ws_consume(&w, (size_t)(end - (char *)w.buf) + 4);
        }
        CHECK_MSG(status == 101 || status == 404, "handshake racing a DELETE: status %d", status);
        if (status == 101) {
            upgraded++;
            sgt_ws_expect_close(&w, 1000, "session deleted", "a socket upgraded while its session was deleted");
        }
        close(b);
        sgt_ws_free(&w);
        free(sid);
    }
    if (getenv("SG_TEST_VERBOSE"))
        fprintf(stderr, "delete during upgrade: %d of 60 handshakes upgraded\n", upgraded);
}

static void test_limits_and_lifecycle(void)
{
    sgt_server s;
    /* idle timeout 2 s: pings 300 ms apart keep a margin of 1.7 s for a stalled test thread */
    const char *env[] = {"FRAME_BUFFER_MAX_BYTES=100000", "SG_WS_IDLE_S=2", "SG_MAX_WEBSOCKETS=2", NULL};
    CHECK(sgt_start(&s, env, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    char *sid = sgt_new_session(&s, NULL);
    sgt_ws w, w2, w3;

    /* oversize: refused with 1009 as soon as the header announces it */
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w, "frame", sid), 101);
    uint8_t *blob = calloc(1, 150000);
    sgt_ws_send(&w, 2, blob, 150000);
    sgt_ws_expect_close(&w, 1009, NULL, "oversize");
    sgt_ws_free(&w);
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w, "frame", sid), 101);
    sgt_ws_send_frame(&w, 0x02, blob, 60000, 1);
    sgt_ws_send_frame(&w, 0x80, blob, 60000, 1);
    sgt_ws_expect_close(&w, 1009, NULL, "oversize in fragments");
    sgt_ws_free(&w);
    free(blob);

    /* idle: 1001 after SG_WS_IDLE_S; pings keep a socket alive */
    CHECK_EQ_INT(ws_connect_retry(&s, &w, "frame", sid), 101);
    double t0 = sgt_ws_now_ms();
    for (int i = 0; i < 6; i++) {
        sgt_sleep_ms(300);
        sgt_ws_send(&w, 9, "k", 1);
        sgt_ws_frame f;
        sgt_ws_recv(&w, 2000, &f);
        CHECK_MSG(f.opcode == 10, "keep-alive ping %d answered with opcode %d", i, f.opcode);
        sgt_ws_frame_free(&f);
    }
    sgt_ws_expect_close(&w, 1001, "idle timeout", "idle");
    double waited = sgt_ws_now_ms() - t0;
    CHECK_MSG(waited > 3500 && waited < 10000, "idle close after %.0f ms", waited);
    sgt_ws_free(&w);

    /* the cap: two sockets, the third is 503 until one closes */
    CHECK_EQ_INT(ws_connect_retry(&s, &w, "frame", sid), 101);
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w2, "frame", sid), 101);
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w3, "frame", sid), 503);
    CHECK(w3.json && strcmp(sgt_str(w3.json, "error"), "OVERLOADED") == 0);
    /* /metrics and Prometheus count the two open sockets */
    {
        sgt_resp mr = sgt_get(&s, "/metrics");
        json_t *wsj = json_object_get(mr.json, "websockets");
        CHECK(json_integer_value(json_object_get(wsj, "open")) == 2 &&
              json_integer_value(json_object_get(wsj, "max")) == 2);
        sgt_resp_free(&mr);
        mr = sgt_get(&s, "/metrics/prometheus");
        CHECK(mr.body && strstr(mr.body, "\nsmartglass_websockets_open 2\n") != NULL);
        sgt_resp_free(&mr);
    }
    char ra[16];
    CHECK(sgt_ws_header(&w3, "Retry-After", ra, sizeof ra));
    sgt_ws_free(&w3);
    /* a socket's slot is free by the time its client sees the connection end after a closing
     * handshake: reconnecting at once is never refused (twenty times over) */
    sgt_ws_send_close(&w2, 1000, NULL);
    CHECK(sgt_ws_wait_eof(&w2, 5000));
    sgt_ws_free(&w2);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ_INT(sgt_ws_connect(s.port, &w3, "frame", sid), 101);
        if (i == 19)
            break;
        sgt_ws_send_close(&w3, 1000, NULL);
        CHECK(sgt_ws_wait_eof(&w3, 5000));
        sgt_ws_free(&w3);
    }

    /* DELETE closes the session's sockets with 1000; the id is gone for new sockets */
    char dpath[128];
    snprintf(dpath, sizeof dpath, "/sessions/%s", sid);
    sgt_resp r = sgt_request(&s, "DELETE", dpath, NULL, NULL, 0);
    CHECK_EQ_INT(r.status, 200);
    sgt_resp_free(&r);
    sgt_ws_expect_close(&w, 1000, "session deleted", "delete (1)");
    sgt_ws_expect_close(&w3, 1000, "session deleted", "delete (2)");
    sgt_ws_free(&w);
    sgt_ws_free(&w3);
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w, "frame", sid), 404);
    sgt_ws_free(&w);
    free(sid);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

/* A client that stops reading (and keeps the TCP connection open): the pongs it does not read pile
 * up, the server stops reading too, the idle timeout sends a close frame that cannot go out. After
 * the close wait the socket's thread must give up - drop the connection, free its slot - and not
 * spin on poll() for ever with a zero timeout. */
static void test_stalled_reader(void)
{
    sgt_server s;
    const char *env[] = {"SG_WS_IDLE_S=1", "SG_MAX_WEBSOCKETS=1", NULL};
    CHECK(sgt_start(&s, env, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    char *sid = sgt_new_session(&s, NULL);
    sgt_ws w;
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w, "frame", sid), 101);
    int small = 4096;
    setsockopt(w.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    /* one masked ping with a 125-byte payload, sent again and again without reading a pong */
    uint8_t ping[131] = {0x89, 0x80 | 125, 0x11, 0x22, 0x33, 0x44};
    size_t sent = 0, off = 0;
    double idle_since = sgt_ws_now_ms();
    while (sent < ((size_t)64 << 20) && sgt_ws_now_ms() - idle_since < 300) {
        ssize_t k = send(w.fd, ping + off, sizeof ping - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            sent += (size_t)k;
            off = (off + (size_t)k) % sizeof ping;
            idle_since = sgt_ws_now_ms();
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            sgt_sleep_ms(5);
        } else {
            break;
        }
    }
    CHECK_MSG(sent > ((size_t)1 << 20), "only %zu bytes of pings went out", sent);
    /* the idle close (1 s) and the close wait (2 s) are over by now */
    sgt_sleep_ms(4500);
    double c0 = sgt_proc_cpu_s(s.pid);
    sgt_sleep_ms(1000);
    double c1 = sgt_proc_cpu_s(s.pid);
    CHECK_MSG(c0 >= 0 && c1 - c0 < 0.3, "the server used %.2f s of CPU in 1 s with a stalled "
              "WebSocket and nothing else to do", c1 - c0);
    /* the slot is free again (SG_MAX_WEBSOCKETS=1) and the stalled connection was dropped */
    sgt_ws w2;
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w2, "frame", sid), 101);
    sgt_ws_send_close(&w2, 1000, NULL);
    CHECK(sgt_ws_wait_eof(&w2, 5000));
    sgt_ws_free(&w2);
    CHECK_MSG(sgt_ws_wait_eof(&w, 20000), "the stalled connection was never closed");
    sgt_ws_free(&w);
    free(sid);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

/* Sends as much of d[0..n) as the socket takes within ~300 ms without blocking; returns it. */
static size_t send_what_fits(int fd, const uint8_t *d, size_t n)
{
    size_t off = 0;
    double since = sgt_ws_now_ms();
    while (off < n && sgt_ws_now_ms() - since < 300) {
        ssize_t k = send(fd, d + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            off += (size_t)k;
            since = sgt_ws_now_ms();
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            sgt_sleep_ms(5);
        } else {
            break;
        }
    }
    return off;
}

/* A socket's inbox holds at most 256 messages (then the server stops reading and TCP pushes
 * back): a flood of tiny messages must not be parsed into tens of thousands of queued messages
 * per read. Each socket first fills its inbox (slow jobs: 20 ms a message), then a burst of 6-byte
 * empty messages waits in the kernel; when the inbox has room again the server reads on. Four
 * sockets together may not grow the server by megabytes. */
static void test_inbox_bound(void)
{
    sgt_server s;
    const char *env[] = {"SG_DEBUG_WORK_DELAY_MS=20", NULL};
    CHECK(sgt_start(&s, env, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    char *sid = sgt_new_session(&s, NULL);
    enum { NS = 4, BURST = 43690 };
    uint8_t *burst = malloc((size_t)BURST * 6);
    for (size_t i = 0; i < BURST; i++) {
        const uint8_t empty[6] = {0x82, 0x80, 1, 2, 3, 4}; /* masked empty binary message */
        memcpy(burst + 6 * i, empty, 6);
    }
    sgt_ws w[NS];
    for (int i = 0; i < NS; i++)
        CHECK_EQ_INT(sgt_ws_connect(s.port, &w[i], "frame", sid), 101);
    sgt_sleep_ms(200);
    const long rss0 = sgt_proc_kib(s.pid, "VmRSS");
    size_t sent = 0;
    for (int i = 0; i < NS; i++)
        sent += send_what_fits(w[i].fd, burst, 300 * 6); /* the inbox fills up */
    sgt_sleep_ms(100);
    for (int i = 0; i < NS; i++)
        sent += send_what_fits(w[i].fd, burst + 300 * 6, (size_t)(BURST - 300) * 6);
    sgt_sleep_ms(3000); /* the inboxes have had room again for a while */
    const long rss1 = sgt_proc_kib(s.pid, "VmRSS");
    CHECK_MSG(rss0 > 0 && rss1 - rss0 < 3072, "the server grew by %ld KiB while %d sockets held "
              "%zu bytes of empty messages", rss1 - rss0, NS, sent);
    if (getenv("SG_TEST_VERBOSE"))
        fprintf(stderr, "inbox bound: %zu bytes sent, server +%ld KiB\n", sent, rss1 - rss0);
    for (int i = 0; i < NS; i++)
        sgt_ws_free(&w[i]);
    free(burst);
    free(sid);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

/* Sockets busy with slow frames leave room for HTTP: one worker, a queue of 4, every job 100 ms;
 * six sockets with ten frames each in flight; POST /frame still gets its 200, soon. */
static void test_fairness(void)
{
    sgt_server s;
    const char *env[] = {"SG_WORKERS=1", "SG_QUEUE_DEPTH=4", "SG_DEBUG_WORK_DELAY_MS=100", NULL};
    CHECK(sgt_start(&s, env, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    char *sid = sgt_new_session(&s, NULL);
    size_t len;
    char *jpg = sgt_read_file(IMG("text"), &len);
    sgt_ws w[6];
    for (int i = 0; i < 6; i++) {
        CHECK_EQ_INT(sgt_ws_connect(s.port, &w[i], "frame", sid), 101);
        for (int k = 0; k < 10; k++)
            sgt_ws_send(&w[i], 2, jpg, len);
    }
    sgt_sleep_ms(150);
    char fpath[128];
    snprintf(fpath, sizeof fpath, "/sessions/%s/frame", sid);
    const char *ct[] = {"Content-Type: image/jpeg", NULL};
    double t0 = sgt_ws_now_ms();
    sgt_resp r = sgt_request(&s, "POST", fpath, ct, jpg, len);
    double took = sgt_ws_now_ms() - t0;
    CHECK_MSG(r.status == 200, "POST /frame beside busy sockets: %ld", r.status);
    /* queued behind at most SG_WORKERS + SG_QUEUE_DEPTH / 2 = 3 socket jobs of ~100 ms */
    CHECK_MSG(took < 1500, "POST /frame took %.0f ms beside busy sockets", took);
    if (getenv("SG_TEST_VERBOSE"))
        fprintf(stderr, "POST /frame beside 6 busy sockets: %.0f ms\n", took);
    sgt_resp_free(&r);
    /* and every socket still gets all its replies, in order */
    for (int i = 0; i < 6; i++) {
        int got = 0;
        json_t *m;
        while (got < 10 && (m = sgt_ws_recv_json(&w[i], 30000, NULL)) != NULL) {
            got += json_is_integer(json_object_get(m, "frame_index"));
            json_decref(m);
        }
        CHECK_MSG(got == 10, "socket %d: %d of 10 replies", i, got);
        sgt_ws_send_close(&w[i], 1000, NULL);
        sgt_ws_free(&w[i]);
    }
    free(jpg);
    free(sid);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

/* ---- /ws/audio ---- */

typedef struct pcm16 {
    int16_t *s;
    size_t n;
} pcm16;

static pcm16 jfk_s16(float **f32, size_t *nf)
{
    size_t len;
    uint8_t *wav = (uint8_t *)sgt_read_file(JFK, &len);
    sg_audio a;
    sg_error err = {0};
    pcm16 p = {0};
    CHECK(wav && sg_audio_decode(wav, len, SG_AUDIO_AUTO, 0, 0, &a, &err) == SG_OK);
    free(wav);
    p.n = a.n;
    p.s = malloc(a.n * sizeof(int16_t));
    for (size_t i = 0; i < a.n; i++) {
        float v = a.samples[i] * 32768.0f;
        p.s[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : lrintf(v));
    }
    *f32 = a.samples;
    *nf = a.n;
    return p;
}

typedef struct transcript_log {
    int partials, finals, errors, ends;
    double last_partial_t, end_t;
    double fin[16][3]; /* start, end, t */
    bool order_ok;
} transcript_log;

static void log_msg(transcript_log *L, json_t *m)
{
    const char *type = sgt_str(m, "type");
    double t = json_number_value(json_object_get(m, "t_ms"));
    if (strcmp(type, "partial") == 0) {
        CHECK(json_is_string(json_object_get(m, "text")) && json_is_integer(json_object_get(m, "t_ms")));
        if (t < L->last_partial_t)
            L->order_ok = false;
        L->last_partial_t = t;
        L->partials++;
    } else if (strcmp(type, "final") == 0) {
        CHECK(json_is_string(json_object_get(m, "text")));
        if (L->finals < 16) {
            L->fin[L->finals][0] = json_number_value(json_object_get(m, "start_ms"));
            L->fin[L->finals][1] = json_number_value(json_object_get(m, "end_ms"));
            L->fin[L->finals][2] = t;
        }
        L->finals++;
    } else if (strcmp(type, "end") == 0) {
        L->ends++;
        L->end_t = t;
    } else {
        L->errors++;
        fprintf(stderr, "audio socket error message: %s %s\n", sgt_str(m, "error"), sgt_str(m, "detail"));
    }
}

/* Reads messages until the "end" acknowledgement (or a timeout). */
static void read_until_end(sgt_ws *w, transcript_log *L, int timeout_ms)
{
    double deadline = sgt_ws_now_ms() + timeout_ms;
    while (L->ends == 0 && sgt_ws_now_ms() < deadline) {
        json_t *m = sgt_ws_recv_json(w, (int)(deadline - sgt_ws_now_ms()) + 1, NULL);
        if (!m)
            break;
        log_msg(L, m);
        json_decref(m);
    }
}

/* Reads whatever arrived within ms without blocking longer. */
static void drain(sgt_ws *w, transcript_log *L, int ms)
{
    for (;;) {
        json_t *m = sgt_ws_recv_json(w, ms, NULL);
        if (!m)
            return;
        log_msg(L, m);
        json_decref(m);
        ms = 0;
    }
}

static void test_audio(void)
{
    float *f32;
    size_t nf;
    pcm16 jfk = jfk_s16(&f32, &nf);
    /* the segments the batch VAD finds: the finals must be exactly these */
    sg_error err = {0};
    sg_vad_silero *vad = sg_vad_silero_open(VAD_MODEL, NULL, &err);
    CHECK(vad != NULL);
    sg_speech_segment *segs = NULL;
    size_t nsegs = 0;
    sg_vad_backend *be = sg_vad_silero_backend(vad);
    CHECK(be->segments(be->self, f32, nf, &segs, &nsegs, &err) == SG_OK && nsegs >= 2);
    /* the first 4 s at 48 kHz, and what the server's resampler should make of them */
    float *up = NULL, *down = NULL;
    size_t nup = 0, ndown = 0;
    CHECK(sg_audio_resample(f32, 4 * 16000, 16000, 48000, &up, &nup, &err) == SG_OK);
    CHECK(sg_audio_resample(up, nup, 48000, 16000, &down, &ndown, &err) == SG_OK);
    sg_speech_segment *segs4 = NULL;
    size_t nsegs4 = 0;
    CHECK(be->segments(be->self, down, ndown, &segs4, &nsegs4, &err) == SG_OK && nsegs4 >= 1);
    free(down);
    sg_vad_silero_free(vad);

    sgt_server s;
    const char *env[] = {"STORE_TRANSCRIPTS=1", "STORE_RAW_AUDIO=1", NULL};
    const char *args[] = {"--asr-model", ASR_MODEL, "--vad-model", VAD_MODEL, NULL};
    CHECK(sgt_start(&s, env, args) == 0);
    CHECK(sgt_wait_ready(&s));
    char *sid = sgt_new_session(&s, NULL);
    CHECK_EQ_INT(entry_int(&s, sid, "transcript_count"), 0);

    /* jfk.wav as a phone sends it: 100 ms of s16le at 16 kHz per message, at 4x real time */
    sgt_ws w;
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w, "audio", sid), 101);
    sgt_ws_send_text(&w, "{\"sample_rate\":16000,\"format\":\"pcm_s16le\",\"language\":null}");
    transcript_log L = {.order_ok = true};
    for (size_t at = 0; at < jfk.n; at += 1600) {
        size_t n = jfk.n - at < 1600 ? jfk.n - at : 1600;
        sgt_ws_send(&w, 2, jfk.s + at, n * 2);
        sgt_sleep_ms(25);
        drain(&w, &L, 0);
    }
    sgt_ws_send(&w, 9, "p", 1);
    sgt_ws_send_text(&w, "{\"type\":\"end\"}");
    read_until_end(&w, &L, 60000);
    CHECK_EQ_INT(L.ends, 1);
    CHECK_NEAR(L.end_t, 11000, 1);
    CHECK_EQ_INT(L.errors, 0);
    CHECK_MSG(L.partials >= 3 && L.order_ok, "%d partials (in order: %d)", L.partials, L.order_ok);
    CHECK_EQ_INT(L.finals, (long)nsegs);
    for (int i = 0; i < L.finals && i < (int)nsegs && i < 16; i++) {
        CHECK_NEAR(L.fin[i][0], segs[i].start_s * 1000, 1.0);
        CHECK_NEAR(L.fin[i][1], segs[i].end_s * 1000, 1.0);
        /* decided after the segment's end, within 100 ms of silence and a few windows */
        CHECK_MSG(L.fin[i][2] >= L.fin[i][1] && L.fin[i][2] - L.fin[i][1] <= 250,
                  "final %d at %.0f ms for a segment ending at %.0f ms", i, L.fin[i][2], L.fin[i][1]);
    }
    if (getenv("SG_TEST_VERBOSE"))
        fprintf(stderr, "jfk over /ws/audio: %d partials, %d finals\n", L.partials, L.finals);

    /* bad messages get error messages and the socket stays usable */
    const char *bad[] = {"{\"sample_rate\":7}", "{\"format\":\"mp3\"}", "{\"type\":\"pause\"}", "not json",
                         "{\"language\":5}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sgt_ws_send_text(&w, bad[i]);
        json_t *m = sgt_ws_recv_json(&w, 10000, NULL);
        CHECK_MSG(m && strcmp(sgt_str(m, "type"), "error") == 0 &&
                      strcmp(sgt_str(m, "error"), "INVALID_REQUEST") == 0,
                  "bad message %zu", i);
        json_decref(m);
    }
    sgt_ws_send(&w, 2, jfk.s, 3200);
    sgt_ws_send_text(&w, "{\"sample_rate\":8000}"); /* after audio: refused */
    json_t *m = sgt_ws_recv_json(&w, 10000, NULL);
    CHECK(m && strcmp(sgt_str(m, "error"), "INVALID_REQUEST") == 0);
    json_decref(m);
    sgt_ws_send_close(&w, 1000, NULL);
    sgt_ws_frame f;
    sgt_ws_recv(&w, 10000, &f);
    CHECK(f.opcode == 8 && f.close_code == 1000);
    sgt_ws_frame_free(&f);
    CHECK(sgt_ws_wait_eof(&w, 5000));
    sgt_ws_free(&w);

    /* the session survived and kept the transcripts (STORE_TRANSCRIPTS) */
    CHECK_EQ_INT(entry_int(&s, sid, "transcript_count"), (long)nsegs);

    /* 48 kHz f32 (resampled on the server): the same speech, finals near the same segments */
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w, "audio", sid), 101);
    sgt_ws_send_text(&w, "{\"sample_rate\":48000,\"format\":\"pcm_f32le\"}");
    transcript_log L2 = {.order_ok = true};
    const size_t total = nup * 4;
    for (size_t off = 0; off < total; off += 19203) /* sizes that split samples between messages */
        sgt_ws_send(&w, 2, (uint8_t *)up + off, total - off < 19203 ? total - off : 19203);
    sgt_ws_send_text(&w, "{\"type\":\"end\"}");
    read_until_end(&w, &L2, 60000);
    CHECK_EQ_INT(L2.errors, 0);
    CHECK_NEAR(L2.end_t, 4000, 2);
    /* a streaming resampler gives what one pass over the whole audio gives: the same segments */
    CHECK_EQ_INT(L2.finals, (long)nsegs4);
    for (int i = 0; i < L2.finals && i < (int)nsegs4 && i < 16; i++)
        CHECK_MSG(fabs(L2.fin[i][0] - segs4[i].start_s * 1000) <= 1 &&
                      fabs(L2.fin[i][1] - segs4[i].end_s * 1000) <= 1,
                  "resampled final %d [%.0f, %.0f], VAD segment [%.0f, %.0f]", i, L2.fin[i][0],
                  L2.fin[i][1], segs4[i].start_s * 1000, segs4[i].end_s * 1000);
    free(up);
    free(segs4);
    sgt_ws_send_close(&w, 1000, NULL);
    CHECK(sgt_ws_wait_eof(&w, 5000));
    sgt_ws_free(&w);
    long before = entry_int(&s, sid, "transcript_count");
    CHECK_EQ_INT(before, (long)(nsegs + nsegs4));

    /* an abrupt disconnect in the middle of speech: the open utterance still reaches the session */
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w, "audio", sid), 101);
    sgt_ws_send(&w, 2, jfk.s + 16000, 2 * 16000 * 2); /* 1 s .. 3 s: speech */
    sgt_sleep_ms(300);
    close(w.fd);
    w.fd = -1;
    long after = before;
    for (int i = 0; i < 200 && after <= before; i++) {
        sgt_sleep_ms(25);
        after = entry_int(&s, sid, "transcript_count");
    }
    CHECK_MSG(after == before + 1, "transcripts %ld -> %ld after a disconnect", before, after);
    sgt_ws_free(&w);

    /* a graceful stop with a socket open mid-speech: close 1001, exit 0 */
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w, "audio", sid), 101);
    sgt_ws_send(&w, 2, jfk.s, 16000 * 2);
    kill(s.pid, SIGTERM);
    sgt_ws_expect_close(&w, 1001, "server shutting down", "stop");
    sgt_ws_free(&w);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
    free(sid);

    /* no VAD: partials every second, a final at 30 s and on "end" */
    const char *args2[] = {"--asr-model", ASR_MODEL, NULL};
    CHECK(sgt_start(&s, NULL, args2) == 0);
    CHECK(sgt_wait_ready(&s));
    sid = sgt_new_session(&s, NULL);
    CHECK_EQ_INT(sgt_ws_connect(s.port, &w, "audio", sid), 101);
    transcript_log L3 = {.order_ok = true};
    for (int rep = 0; rep < 3; rep++) /* 33 s */
        for (size_t at = 0; at < jfk.n; at += 16000) {
            sgt_ws_send(&w, 2, jfk.s + at, (jfk.n - at < 16000 ? jfk.n - at : 16000) * 2);
            drain(&w, &L3, 0);
        }
    sgt_ws_send_text(&w, "{\"type\":\"end\"}");
    read_until_end(&w, &L3, 60000);
    CHECK_EQ_INT(L3.errors, 0);
    CHECK_EQ_INT(L3.finals, 2);
    CHECK(L3.partials >= 1);
    CHECK_NEAR(L3.fin[0][0], 0, 0.5);
    CHECK_NEAR(L3.fin[0][1], 30000, 0.5);
    CHECK_NEAR(L3.fin[1][0], 30000, 0.5);
    CHECK_NEAR(L3.fin[1][1], 33000, 0.5);
    CHECK_NEAR(L3.end_t, 33000, 0.5);
    sgt_ws_send_close(&w, 1000, NULL);
    CHECK(sgt_ws_wait_eof(&w, 5000));
    sgt_ws_free(&w);
    json_t *e = sgt_session_entry(&s, sid);
    CHECK(e != NULL);
    json_decref(e);
    free(sid);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
    free(segs);
    free(jfk.s);
    free(f32);
}

/* ---- graceful stop ---- */

static void test_stop(sgt_server *s)
{
    char *sid = sgt_new_session(s, NULL);
    sgt_ws a, b;
    CHECK_EQ_INT(sgt_ws_connect(s->port, &a, "frame", sid), 101);
    CHECK_EQ_INT(sgt_ws_connect(s->port, &b, "frame", sid), 101);
    size_t len;
    char *jpg = sgt_read_file(IMG("astronaut"), &len);
    sgt_ws_send(&a, 2, jpg, len); /* work in flight when the stop comes */
    free(jpg);
    kill(s->pid, SIGTERM);
    sgt_ws_expect_close(&a, 1001, "server shutting down", "stop (a)");
    sgt_ws_expect_close(&b, 1001, "server shutting down", "stop (b)");
    sgt_ws_free(&a);
    sgt_ws_free(&b);
    CHECK_EQ_INT(sgt_stop(s, SIGTERM), 0);
    free(sid);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    sgt_server s;
    CHECK(sgt_start(&s, NULL, NULL) == 0);
    CHECK(sgt_wait_ready(&s)); /* no models: ready a moment after /health */
    test_handshakes(&s, false);
    test_frames(&s);
    test_protocol_errors(&s);
    test_delete_during_upgrade(&s);
    test_stop(&s);
    test_auth();
    test_limits_and_lifecycle();
    test_stalled_reader();
    test_inbox_bound();
    test_fairness();
    test_audio();
    curl_global_cleanup();
    return check_report("test_server_ws");
}
