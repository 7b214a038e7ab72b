/* A small WebSocket client for integration tests (RFC 6455, written here independently of the
 * server's src/server/ws.c so the two cannot share a mistake): TCP connect, the opening handshake
 * (any headers, to test refusals), masked frames of any kind (fragments and broken ones too), and
 * reading the server's frames with a timeout. Header-only like sgtest_http.h. */
#ifndef SG_TESTS_WS_H
#define SG_TESTS_WS_H

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* The key of RFC 6455 section 1.3 and the accept the server must answer with. */
#define SGT_WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define SGT_WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

typedef struct sgt_ws {
    int fd;
    int status;          /* of the handshake response */
    char head[4096];     /* its status line and headers */
    char *body;          /* its body (error responses), malloc'ed */
    json_t *json;        /* the body parsed, when JSON */
    uint8_t *buf;        /* received, not yet consumed */
    size_t len, cap;
} sgt_ws;

typedef struct sgt_ws_frame {
    int opcode; /* -1: timeout, 0 with eof set: the server closed the TCP connection */
    int fin;
    int eof;
    uint8_t *data; /* malloc'ed, NUL-terminated */
    size_t len;
    int close_code; /* CLOSE: the code, 1005 without one */
    char reason[128];
} sgt_ws_frame;

static double sgt_ws_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* Copies the value of header name from the response head; 0 when absent. */
__attribute__((unused)) static int sgt_ws_header(const sgt_ws *w, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    const char *p = strstr(w->head, "\r\n");
    while (p && p[2]) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t vl = e ? (size_t)(e - v) : strlen(v);
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = 0;
            return 1;
        }
        p = strstr(p, "\r\n");
    }
    return 0;
}

static int sgt_ws_fill(sgt_ws *w, int timeout_ms)
{
    struct pollfd pf = {w->fd, POLLIN, 0};
    int rc = poll(&pf, 1, timeout_ms);
    if (rc <= 0)
        return -1; /* timeout */
    if (w->len + 65536 > w->cap) {
        w->cap = (w->len + 65536) * 2;
        w->buf = realloc(w->buf, w->cap);
    }
    ssize_t n = recv(w->fd, w->buf + w->len, 65536, 0);
    if (n <= 0)
        return 0; /* closed (or reset) */
    w->len += (size_t)n;
    return 1;
}

static void sgt_ws_consume(sgt_ws *w, size_t n)
{
    memmove(w->buf, w->buf + n, w->len - n);
    w->len -= n;
}

/* Connects to 127.0.0.1:port and sends "GET path HTTP/1.1" with the given header lines (each
 * ending in \r\n; NULL = a valid WebSocket handshake with SGT_WS_KEY) plus extra lines. Reads the
 * response head (and the body of a non-101 answer). Returns the status, or -1. */
__attribute__((unused)) static int sgt_ws_open(sgt_ws *w, int port, const char *method, const char *path,
                                               const char *headers, const char *extra)
{
    memset(w, 0, sizeof *w);
    w->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(w->fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    int one = 1;
    setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char req[4096];
    snprintf(req, sizeof req,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s\r\n", method ? method : "GET", path, port,
             headers ? headers
                     : "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " SGT_WS_KEY
                       "\r\nSec-WebSocket-Version: 13\r\n",
             extra ? extra : "");
    if (send(w->fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
        return -1;
    char *end = NULL;
    double deadline = sgt_ws_now_ms() + 10000;
    while (!(end = w->len ? memmem(w->buf, w->len, "\r\n\r\n", 4) : NULL)) {
        if (sgt_ws_now_ms() > deadline || sgt_ws_fill(w, 200) == 0)
            return -1;
    }
    size_t hl = (size_t)(end - (char *)w->buf) + 4;
    size_t copy = hl < sizeof w->head ? hl : sizeof w->head - 1;
    memcpy(w->head, w->buf, copy);
    w->head[copy] = 0;
    sgt_ws_consume(w, hl);
    if (sscanf(w->head, "HTTP/1.%*d %d", &w->status) != 1)
        return -1;
    if (w->status != 101) {
        char cl[32];
        size_t want = sgt_ws_header(w, "Content-Length", cl, sizeof cl) ? (size_t)atol(cl) : 0;
        while (w->len < want && sgt_ws_now_ms() < deadline && sgt_ws_fill(w, 200) != 0)
            ;
        w->body = malloc(w->len + 1);
        if (w->len)
            memcpy(w->body, w->buf, w->len);
        w->body[w->len] = 0;
        w->json = json_loads(w->body, 0, NULL);
        w->len = 0;
    }
    return w->status;
}

/* The handshake for /ws/<kind>/<sid> ("audio" or "frame"); its status. */
__attribute__((unused)) static int sgt_ws_connect(int port, sgt_ws *w, const char *kind,
                                                  const char *sid)
{
    char path[128];
    snprintf(path, sizeof path, "/ws/%s/%s", kind, sid);
    return sgt_ws_open(w, port, "GET", path, NULL, NULL);
}

__attribute__((unused)) static void sgt_ws_free(sgt_ws *w)
{
    if (w->fd > 0)
        close(w->fd);
    free(w->buf);
    free(w->body);
    json_decref(w->json);
    memset(w, 0, sizeof *w);
}

static uint32_t sgt_ws_rng = 2463534242u;

/* One client frame: masked with a fresh key unless masked is 0; b0 is FIN/RSV/opcode. */
__attribute__((unused)) static int sgt_ws_send_frame(sgt_ws *w, unsigned b0, const void *data, size_t n, int masked)
{
    uint8_t *f = malloc(n + 14);
    size_t h = 0;
    f[h++] = (uint8_t)b0;
    const uint8_t m = masked ? 0x80 : 0;
    if (n < 126) {
        f[h++] = (uint8_t)(m | n);
    } else if (n <= 0xFFFF) {
        f[h++] = m | 126;
        f[h++] = (uint8_t)(n >> 8);
        f[h++] = (uint8_t)n;
    } else {
        f[h++] = m | 127;
        for (int i = 7; i >= 0; i--)
            f[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    uint8_t key[4];
    for (int i = 0; i < 4; i++) {
        sgt_ws_rng ^= sgt_ws_rng << 13;
        sgt_ws_rng ^= sgt_ws_rng >> 17;
        sgt_ws_rng ^= sgt_ws_rng << 5;
        key[i] = (uint8_t)sgt_ws_rng;
    }
    if (masked) {
        memcpy(f + h, key, 4);
        h += 4;
    }
    for (size_t i = 0; i < n; i++)
        f[h + i] = ((const uint8_t *)data)[i] ^ (masked ? key[i & 3] : 0);
    size_t total = h + n, off = 0;
    while (off < total) {
        ssize_t k = send(w->fd, f + off, total - off, MSG_NOSIGNAL);
        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            free(f);
            return -1;
        }
        off += (size_t)k;
    }
    free(f);
    return 0;
}

__attribute__((unused)) static int sgt_ws_send(sgt_ws *w, int opcode, const void *data, size_t n)
{
    return sgt_ws_send_frame(w, 0x80u | (unsigned)opcode, data, n, 1);
}

__attribute__((unused)) static int sgt_ws_send_text(sgt_ws *w, const char *text)
{
    return sgt_ws_send(w, 1, text, strlen(text));
}

__attribute__((unused)) static int sgt_ws_send_close(sgt_ws *w, int code, const char *reason)
{
    uint8_t p[125];
    size_t n = 0;
    if (code) {
        p[n++] = (uint8_t)(code >> 8);
        p[n++] = (uint8_t)code;
        size_t rl = reason ? strlen(reason) : 0;
        if (rl > 123)
            rl = 123;
        if (rl)
            memcpy(p + n, reason, rl);
        n += rl;
    }
    return sgt_ws_send(w, 8, p, n);
}

__attribute__((unused)) static void sgt_ws_frame_free(sgt_ws_frame *f)
{
    free(f->data);
    f->data = NULL;
}

/* Reads the next frame the server sent (server frames must be unmasked). */
__attribute__((unused)) static void sgt_ws_recv(sgt_ws *w, int timeout_ms, sgt_ws_frame *f)
{
    memset(f, 0, sizeof *f);
    double deadline = sgt_ws_now_ms() + timeout_ms;
    for (;;) {
        if (w->len >= 2) {
            size_t need = 2, n = w->buf[1] & 0x7F;
            if (w->buf[1] & 0x80) {
                f->opcode = -2; /* a masked server frame: a protocol error of the server */
                return;
            }
            if (n == 126)
                need = 4;
            else if (n == 127)
                need = 10;
            if (w->len >= need) {
                if (n == 126)
                    n = (size_t)w->buf[2] << 8 | w->buf[3];
                else if (n == 127) {
                    n = 0;
                    for (int i = 0; i < 8; i++)
                        n = n << 8 | w->buf[2 + i];
                }
                if (w->len >= need + n) {
                    f->fin = (w->buf[0] & 0x80) != 0;
                    f->opcode = w->buf[0] & 0x0F;
                    f->data = malloc(n + 1);
                    memcpy(f->data, w->buf + need, n);
                    f->data[n] = 0;
                    f->len = n;
                    if (f->opcode == 8) {
                        f->close_code = n >= 2 ? (f->data[0] << 8 | f->data[1]) : 1005;
                        if (n > 2) {
                            size_t rl = n - 2 < sizeof f->reason - 1 ? n - 2 : sizeof f->reason - 1;
                            memcpy(f->reason, f->data + 2, rl);
                            f->reason[rl] = 0;
                        }
                    }
                    sgt_ws_consume(w, need + n);
                    return;
                }
            }
        }
        int left = (int)(deadline - sgt_ws_now_ms());
        if (left <= 0) {
            f->opcode = -1;
            return;
        }
        int rc = sgt_ws_fill(w, left);
        if (rc == 0) {
            f->eof = 1;
            return;
        }
    }
}

/* The next text message as JSON (pongs skipped); NULL on timeout, close or EOF (then *last, if
 * given, receives that frame). */
__attribute__((unused)) static json_t *sgt_ws_recv_json(sgt_ws *w, int timeout_ms, sgt_ws_frame *last)
{
    double deadline = sgt_ws_now_ms() + timeout_ms;
    for (;;) {
        sgt_ws_frame f;
        int left = (int)(deadline - sgt_ws_now_ms());
        sgt_ws_recv(w, left > 0 ? left : 0, &f);
        if (f.opcode == 1) {
            json_t *j = json_loadb((const char *)f.data, f.len, 0, NULL);
            sgt_ws_frame_free(&f);
            return j;
        }
        if (f.opcode == 10 || f.opcode == 9) {
            sgt_ws_frame_free(&f);
            continue;
        }
        if (last)
            *last = f;
        else
            sgt_ws_frame_free(&f);
        return NULL;
    }
}

/* True when the server closes the TCP connection within timeout_ms (other frames skipped). */
__attribute__((unused)) static int sgt_ws_wait_eof(sgt_ws *w, int timeout_ms)
{
    double deadline = sgt_ws_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - sgt_ws_now_ms());
        if (left <= 0)
            return 0;
        sgt_ws_frame f;
        sgt_ws_recv(w, left, &f);
        sgt_ws_frame_free(&f);
        if (f.eof)
            return 1;
        if (f.opcode == -1)
            return 0;
    }
}

/* Expects a close frame with code (and reason when given), then the TCP connection to end
 * (after our close reply). */
__attribute__((unused)) static void sgt_ws_expect_close(sgt_ws *w, int code, const char *reason,
                                                        const char *what)
{
    sgt_ws_frame f = {0};
    json_t *j;
    while ((j = sgt_ws_recv_json(w, 5000, &f)) != NULL)
        json_decref(j); /* replies to earlier messages may come first */
    CHECK_MSG(f.opcode == 8 && f.close_code == code, "%s: opcode %d code %d (want close %d)", what,
              f.opcode, f.close_code, code);
    if (reason)
        CHECK_MSG(strcmp(f.reason, reason) == 0, "%s: reason \"%s\"", what, f.reason);
    sgt_ws_frame_free(&f);
    sgt_ws_send_close(w, code == 1005 ? 1000 : code, NULL);
    CHECK_MSG(sgt_ws_wait_eof(w, 5000), "%s: the server did not close the connection", what);
}

#endif
