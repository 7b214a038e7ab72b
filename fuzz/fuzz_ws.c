/* libFuzzer target for server/ws: the frame parser on arbitrary bytes, fed whole and again in
 * pieces whose sizes come from the input; both feeds must give the same events, consume the same
 * bytes, and respect the parser's promises (messages within the limit, text valid UTF-8, control
 * payloads <= 125 bytes, nothing parsed after a close or an error). The first bytes also go
 * through the handshake check as a Sec-WebSocket-Key and Sec-WebSocket-Version. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "server/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MESSAGE 4096
#define MAX_EVENTS 256

typedef struct rec {
    int type, code;
    size_t len;
    uint32_t sum;
} rec;

static uint32_t checksum(const uint8_t *d, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ d[i]) * 16777619u;
    return h;
}

/* nsizes 0: all at once; else sizes taken cyclically from sizes[] (1..16). */
static size_t run(bool server, const uint8_t *data, size_t size, const uint8_t *sizes,
                  size_t nsizes, rec *out, int *nout)
{
    sg_ws_parser p;
    sg_ws_parser_init(&p, MAX_MESSAGE, server);
    size_t pos = 0, k = 0;
    int n = 0;
    bool stopped = false;
    while (pos < size && !stopped) {
        size_t piece = nsizes ? 1 + sizes[k++ % nsizes] % 16 : size - pos;
        if (piece > size - pos)
            piece = size - pos;
        size_t off = 0;
        while (off < piece) {
            sg_ws_event ev;
            size_t used = sg_ws_parse(&p, data + pos + off, piece - off, &ev);
            if (used > piece - off)
                abort();
            off += used;
            if (ev.type == SG_WS_EV_NONE) {
                if (off < piece)
                    stopped = true; /* only after CLOSE or ERROR */
                break;
            }
            if (ev.type == SG_WS_EV_TEXT && !sg_utf8_valid(ev.data, ev.len))
                abort();
            if ((ev.type == SG_WS_EV_TEXT || ev.type == SG_WS_EV_BINARY) && ev.len > MAX_MESSAGE)
                abort();
            if ((ev.type == SG_WS_EV_PING || ev.type == SG_WS_EV_PONG || ev.type == SG_WS_EV_CLOSE) &&
                ev.len > SG_WS_MAX_CONTROL)
                abort();
            if (ev.type == SG_WS_EV_ERROR &&
                ev.close_code != 1002 && ev.close_code != 1007 && ev.close_code != 1009 &&
                ev.close_code != 1011)
                abort();
            if (n < MAX_EVENTS)
                out[n++] = (rec){ev.type, ev.close_code, ev.len, checksum(ev.data, ev.len)};
            if (ev.type == SG_WS_EV_CLOSE || ev.type == SG_WS_EV_ERROR) {
                sg_ws_event ev2;
                if (sg_ws_parse(&p, data, size, &ev2) != 0 || ev2.type != SG_WS_EV_NONE)
                    abort();
                stopped = true;
                break;
            }
            if (ev.type == SG_WS_EV_BINARY && (ev.len & 1)) { /* exercise take() too */
                size_t tl;
                uint8_t *m = sg_ws_parser_take(&p, &tl);
                if (tl != ev.len || (tl && m[tl] != 0))
                    abort();
                free(m);
            }
        }
        pos += off;
    }
    sg_ws_parser_free(&p);
    *nout = n;
    return pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    /* the handshake check on the first bytes as text */
    char key[40], ver[8];
    size_t kl = size - 1 < 39 ? size - 1 : 39;
    memcpy(key, data + 1, kl);
    key[kl] = 0;
    memcpy(ver, data + 1, kl < 7 ? kl : 7);
    ver[kl < 7 ? kl : 7] = 0;
    sg_ws_request req = {"GET", "HTTP/1.1", "websocket", "Upgrade", ver, key};
    char acc[SG_WS_ACCEPT_LEN + 1];
    sg_error err;
    int st = sg_ws_handshake_check(&req, acc, &err);
    if (st != 0 && st != 400 && st != 426)
        abort();
    if (st == 0 && strlen(acc) != SG_WS_ACCEPT_LEN)
        abort();

    static rec a[MAX_EVENTS], b[MAX_EVENTS];
    int na, nb;
    /* the first byte picks the side (odd: a server parsing masked client frames) */
    const bool server = data[0] & 1;
    size_t ca = run(server, data + 1, size - 1, NULL, 0, a, &na);
    size_t cb = run(server, data + 1, size - 1, data, size < 8 ? size : 8, b, &nb);
    if (ca != cb || na != nb || memcmp(a, b, (size_t)na * sizeof *a) != 0)
        abort();
    return 0;
}
