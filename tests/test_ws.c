/* Tests for base/sha1 (FIPS 180 vectors) and server/ws (RFC 6455 without I/O): the handshake
 * check and Sec-WebSocket-Accept (the RFC's own example), every parser rule of ws.h fed whole,
 * one byte at a time and in random pieces (the events must not depend on the split), and the
 * writers round-tripping through the parser. Client frames here are built by hand, not with the
 * writers under test. Also server/ws_audio (the /ws/audio logic without sockets) with a recording
 * ASR backend and no VAD: partial cadence and skipping, finals on "end", on close and at 30 s,
 * samples split across messages, resampling, and the error messages. (With the real VAD and
 * Whisper it is tested through the server in test_server_ws.c.) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha1.h"
#include "check.h"
#include "server/ws.h"
#include "server/ws_audio.h"

/* ---- SHA-1 ---- */

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void check_sha1(const char *msg, size_t len, const char *want)
{
    uint8_t d[20];
    char h[41];
    sg_sha1(msg, len, d);
    hex(d, 20, h);
    CHECK_MSG(strcmp(h, want) == 0, "sha1(%zu bytes) = %s, want %s", len, h, want);
    /* the same in pieces of every size 1..70 */
    for (size_t piece = 1; piece <= 70; piece += 3) {
        sg_sha1_ctx c;
        sg_sha1_init(&c);
        for (size_t i = 0; i < len; i += piece)
            sg_sha1_update(&c, msg + i, len - i < piece ? len - i : piece);
        sg_sha1_final(&c, d);
        hex(d, 20, h);
        CHECK_MSG(strcmp(h, want) == 0, "sha1 in pieces of %zu: %s", piece, h);
    }
}

static void test_sha1(void)
{
    /* FIPS 180-2 appendix A and the NIST example values */
    check_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    check_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_sha1(m448, strlen(m448), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                       "klmnopqrlmnopqrsmnopqrstnopqrstu";
    check_sha1(m896, strlen(m896), "a49b2446a02c645bf419f995b67091253a04a259");
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    check_sha1(million, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(million);
    /* lengths around the padding boundary (55, 56, 63, 64 bytes) against each other in pieces */
    const char *fox = "The quick brown fox jumps over the lazy dog";
    check_sha1(fox, strlen(fox), "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
    char buf[130];
    memset(buf, 'x', sizeof buf);
    for (size_t n = 54; n <= 66; n++) {
        uint8_t a[20], b[20];
        sg_sha1(buf, n, a);
        sg_sha1_ctx c;
        sg_sha1_init(&c);
        sg_sha1_update(&c, buf, n / 2);
        sg_sha1_update(&c, buf + n / 2, n - n / 2);
        sg_sha1_final(&c, b);
        CHECK(memcmp(a, b, 20) == 0);
    }
}

/* ---- handshake ---- */

static void test_handshake(void)
{
    char acc[SG_WS_ACCEPT_LEN + 1];
    sg_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", acc); /* RFC 6455 section 1.3 */
    CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);

    sg_ws_request ok = {"GET", "HTTP/1.1", "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ=="};
    sg_error err = {0};
    CHECK_EQ_INT(sg_ws_handshake_check(&ok, acc, &err), 0);
    CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);

    sg_ws_request r = ok;
    r.upgrade = "WebSocket";
    r.connection = "keep-alive, Upgrade";
    r.key = " dGhlIHNhbXBsZSBub25jZQ== ";
    CHECK_EQ_INT(sg_ws_handshake_check(&r, acc, &err), 0); /* tokens, case, spaces */
    CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);

    struct {
        const char *what;
        sg_ws_request req;
        int want;
    } bad[] = {
        {"POST", {"POST", "HTTP/1.1", "websocket", "Upgrade", "13", ok.key}, 400},
        {"HTTP/1.0", {"GET", "HTTP/1.0", "websocket", "Upgrade", "13", ok.key}, 400},
        {"no Upgrade", {"GET", "HTTP/1.1", NULL, "Upgrade", "13", ok.key}, 400},
        {"Upgrade: h2c", {"GET", "HTTP/1.1", "h2c", "Upgrade", "13", ok.key}, 400},
        {"Upgrade: websockets", {"GET", "HTTP/1.1", "websockets", "Upgrade", "13", ok.key}, 400},
        {"no Connection", {"GET", "HTTP/1.1", "websocket", NULL, "13", ok.key}, 400},
        {"Connection: keep-alive", {"GET", "HTTP/1.1", "websocket", "keep-alive", "13", ok.key}, 400},
        {"Connection: upgraded", {"GET", "HTTP/1.1", "websocket", "upgraded", "13", ok.key}, 400},
        {"no version", {"GET", "HTTP/1.1", "websocket", "Upgrade", NULL, ok.key}, 400},
        {"version 8", {"GET", "HTTP/1.1", "websocket", "Upgrade", "8", ok.key}, 426},
        {"version 13, 8", {"GET", "HTTP/1.1", "websocket", "Upgrade", "13, 8", ok.key}, 426},
        {"no key", {"GET", "HTTP/1.1", "websocket", "Upgrade", "13", NULL}, 400},
        {"key of 15 bytes", {"GET", "HTTP/1.1", "websocket", "Upgrade", "13", "AAAAAAAAAAAAAAAAAAAA"}, 400},
        {"key of 17 bytes", {"GET", "HTTP/1.1", "websocket", "Upgrade", "13", "AAAAAAAAAAAAAAAAAAAAAAA="}, 400},
        {"key not base64", {"GET", "HTTP/1.1", "websocket", "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZQ!!"}, 400},
        {"empty key", {"GET", "HTTP/1.1", "websocket", "Upgrade", "13", ""}, 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = 0;
        int got = sg_ws_handshake_check(&bad[i].req, acc, &err);
        CHECK_MSG(got == bad[i].want, "%s: got %d", bad[i].what, got);
        CHECK_MSG(err.msg[0] != 0 && acc[0] == 0, "%s: no message", bad[i].what);
    }
}

/* ---- client frames built by hand ---- */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put8(bytes *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    put(b, &c, 1);
}

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* A frame: b0 = FIN/RSV/opcode byte as given; lenform 0 = minimal, 126 / 127 = force that form;
 * masked with a random key unless unmasked. */
static void frame_ex(bytes *b, unsigned b0, const void *payload, size_t n, int lenform, bool masked)
{
    put8(b, b0);
    const unsigned m = masked ? 0x80 : 0;
    if (lenform == 0 && n < 126) {
        put8(b, m | (unsigned)n);
    } else if (lenform == 126 || (lenform == 0 && n <= 0xFFFF)) {
        put8(b, m | 126);
        put8(b, (unsigned)(n >> 8) & 0xFF);
        put8(b, (unsigned)n & 0xFF);
    } else {
        put8(b, m | 127);
        for (int i = 7; i >= 0; i--)
            put8(b, (unsigned)((uint64_t)n >> (8 * i)) & 0xFF);
    }
    uint8_t key[4] = {(uint8_t)rnd(), (uint8_t)rnd(), (uint8_t)rnd(), (uint8_t)rnd()};
    if (masked)
        put(b, key, 4);
    size_t at = b->n;
    put(b, payload, n);
    if (masked)
        for (size_t i = 0; i < n; i++)
            b->p[at + i] ^= key[i % 4];
}

static void frame(bytes *b, bool fin, int op, const void *payload, size_t n)
{
    frame_ex(b, (fin ? 0x80u : 0u) | (unsigned)op, payload, n, 0, true);
}

/* ---- feeding ---- */

#define MAXEV 64

typedef struct evrec {
    int type, code;
    uint8_t *data;
    size_t len;
} evrec;

typedef struct evlist {
    evrec e[MAXEV];
    int n;
    size_t consumed;
} evlist;

static void evlist_free(evlist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->e[i].data);
    l->n = 0;
}

/* mode 0: all at once; 1: byte at a time; 2: random pieces. take: hand messages over with
 * sg_ws_parser_take instead of copying. */
static void feed(const bytes *in, size_t max_message, int mode, bool take, evlist *out)
{
    sg_ws_parser p;
    sg_ws_parser_init(&p, max_message, true);
    out->n = 0;
    out->consumed = 0;
    size_t pos = 0;
    while (pos < in->n) {
        size_t piece = mode == 0 ? in->n - pos : mode == 1 ? 1 : 1 + rnd() % 40;
        if (piece > in->n - pos)
            piece = in->n - pos;
        size_t off = 0;
        for (;;) {
            sg_ws_event ev;
            size_t used = sg_ws_parse(&p, in->p + pos + off, piece - off, &ev);
            if (used > piece - off) {
                CHECK_MSG(0, "consumed %zu of %zu bytes", used, piece - off);
                used = piece - off;
            }
            off += used;
            if (ev.type == SG_WS_EV_NONE) {
                if (off < piece) { /* stopped: nothing more is parsed after CLOSE/ERROR */
                    CHECK(out->n > 0 && (out->e[out->n - 1].type == SG_WS_EV_CLOSE ||
                                         out->e[out->n - 1].type == SG_WS_EV_ERROR));
                }
                break;
            }
            if (out->n < MAXEV) {
                evrec *r = &out->e[out->n++];
                r->type = ev.type;
                r->code = ev.close_code;
                r->len = ev.len;
                if ((ev.type == SG_WS_EV_TEXT || ev.type == SG_WS_EV_BINARY) && take) {
                    size_t tl;
                    r->data = sg_ws_parser_take(&p, &tl);
                    CHECK(tl == ev.len);
                    CHECK(tl == 0 ? r->data == NULL : r->data[tl] == 0);
                } else {
                    r->data = malloc(ev.len + 1);
                    if (ev.len)
                        memcpy(r->data, ev.data, ev.len);
                }
            }
            if (off == piece)
                break;
        }
        pos += off;
        out->consumed = pos;
        if (off < piece)
            break;
    }
    sg_ws_parser_free(&p);
}

/* Runs in the three modes; all must agree; returns the whole-feed events in *out. */
static void feed_all(const bytes *in, size_t max_message, evlist *out)
{
    feed(in, max_message, 0, false, out);
    for (int mode = 1; mode <= 2; mode++) {
        evlist o2;
        feed(in, max_message, mode, mode == 2, &o2);
        bool same = o2.n == out->n && o2.consumed == out->consumed;
        for (int i = 0; same && i < o2.n; i++)
            same = o2.e[i].type == out->e[i].type && o2.e[i].code == out->e[i].code &&
                   o2.e[i].len == out->e[i].len &&
                   (o2.e[i].len == 0 || memcmp(o2.e[i].data, out->e[i].data, o2.e[i].len) == 0);
        CHECK_MSG(same, "mode %d gives other events (%d vs %d)", mode, o2.n, out->n);
        evlist_free(&o2);
    }
}

static bool ev_is(const evlist *l, int i, int type, const char *data)
{
    if (i >= l->n || l->e[i].type != type)
        return false;
    return !data || (l->e[i].len == strlen(data) && memcmp(l->e[i].data, data, l->e[i].len) == 0);
}

/* Expects exactly one ERROR with code after the given events count. */
static void expect_error(const char *what, bytes *b, size_t max, int nbefore, int code)
{
    evlist l;
    feed_all(b, max, &l);
    CHECK_MSG(l.n == nbefore + 1 && l.e[l.n - 1].type == SG_WS_EV_ERROR && l.e[l.n - 1].code == code,
              "%s: %d events, last type %d code %d (want error %d)", what, l.n,
              l.n ? l.e[l.n - 1].type : -1, l.n ? l.e[l.n - 1].code : -1, code);
    evlist_free(&l);
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void test_parser_basic(void)
{
    bytes b = {0};
    evlist l;
    /* RFC 6455 section 5.7: a single-frame masked text message "Hello" */
    const uint8_t rfc[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    put(&b, rfc, sizeof rfc);
    feed_all(&b, 1000, &l);
    CHECK(l.n == 1 && ev_is(&l, 0, SG_WS_EV_TEXT, "Hello"));
    evlist_free(&l);
    b.n = 0;

    /* fragmented text with a ping between the fragments; an empty text message; binary; pong */
    frame(&b, false, SG_WS_OP_TEXT, "Hel", 3);
    frame(&b, true, SG_WS_OP_PING, "hi", 2);
    frame(&b, false, SG_WS_OP_CONT, "", 0);
    frame(&b, true, SG_WS_OP_CONT, "lo", 2);
    frame(&b, true, SG_WS_OP_TEXT, "", 0);
    uint8_t bin[300];
    for (int i = 0; i < 300; i++)
        bin[i] = (uint8_t)(i * 7);
    frame(&b, true, SG_WS_OP_BINARY, bin, 300); /* 16-bit length */
    frame(&b, true, SG_WS_OP_PONG, "", 0);
    frame(&b, true, SG_WS_OP_PING, "", 0);
    feed_all(&b, 1000, &l);
    CHECK_EQ_INT(l.n, 6);
    CHECK(ev_is(&l, 0, SG_WS_EV_PING, "hi"));
    CHECK(ev_is(&l, 1, SG_WS_EV_TEXT, "Hello"));
    CHECK(ev_is(&l, 2, SG_WS_EV_TEXT, ""));
    CHECK(l.n > 3 && l.e[3].type == SG_WS_EV_BINARY && l.e[3].len == 300 &&
          memcmp(l.e[3].data, bin, 300) == 0);
    CHECK(ev_is(&l, 4, SG_WS_EV_PONG, ""));
    CHECK(ev_is(&l, 5, SG_WS_EV_PING, ""));
    CHECK(l.consumed == b.n);
    evlist_free(&l);
    b.n = 0;

    /* 64-bit length: 70000 bytes of binary in three fragments (one with a 64-bit length) */
    uint8_t *big = malloc(70000);
    for (int i = 0; i < 70000; i++)
        big[i] = (uint8_t)(rnd() >> 7);
    frame(&b, false, SG_WS_OP_BINARY, big, 100);
    frame(&b, false, SG_WS_OP_CONT, big + 100, 65900);
    frame(&b, true, SG_WS_OP_CONT, big + 66000, 4000);
    frame(&b, true, SG_WS_OP_BINARY, big, 66000);
    feed_all(&b, 70000, &l);
    CHECK(l.n == 2 && l.e[0].type == SG_WS_EV_BINARY && l.e[0].len == 70000 &&
          memcmp(l.e[0].data, big, 70000) == 0);
    CHECK(l.n == 2 && l.e[1].len == 66000 && memcmp(l.e[1].data, big, 66000) == 0);
    evlist_free(&l);
    b.n = 0;
    /* exactly at the limit is fine, one byte more is 1009 */
    frame(&b, true, SG_WS_OP_BINARY, big, 1000);
    feed_all(&b, 1000, &l);
    CHECK(l.n == 1 && l.e[0].type == SG_WS_EV_BINARY && l.e[0].len == 1000);
    evlist_free(&l);
    b.n = 0;
    free(big);

    /* UTF-8: a character split across fragments is fine */
    frame(&b, false, SG_WS_OP_TEXT, "caf\xc3", 4);
    frame(&b, true, SG_WS_OP_CONT, "\xa9!", 2);
    feed_all(&b, 1000, &l);
    CHECK(l.n == 1 && ev_is(&l, 0, SG_WS_EV_TEXT, "caf\xc3\xa9!"));
    evlist_free(&l);
    b.n = 0;

    /* close frames: no code -> 1005; a code and a reason; nothing is parsed after */
    frame(&b, true, SG_WS_OP_CLOSE, "", 0);
    frame(&b, true, SG_WS_OP_TEXT, "after", 5);
    feed_all(&b, 1000, &l);
    CHECK(l.n == 1 && l.e[0].type == SG_WS_EV_CLOSE && l.e[0].code == SG_WS_CLOSE_NO_STATUS);
    CHECK(l.consumed == 6); /* the close frame's 2 + 4 bytes only */
    evlist_free(&l);
    b.n = 0;
    const uint8_t cl[] = {0x03, 0xE8, 'b', 'y', 'e'};
    frame(&b, true, SG_WS_OP_CLOSE, cl, sizeof cl);
    feed_all(&b, 1000, &l);
    CHECK(l.n == 1 && l.e[0].type == SG_WS_EV_CLOSE && l.e[0].code == 1000 && ev_is(&l, 0, SG_WS_EV_CLOSE, "bye"));
    evlist_free(&l);
    b.n = 0;
    const int good_codes[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999};
    for (size_t i = 0; i < sizeof good_codes / sizeof good_codes[0]; i++) {
        uint8_t c[2] = {(uint8_t)(good_codes[i] >> 8), (uint8_t)good_codes[i]};
        frame(&b, true, SG_WS_OP_CLOSE, c, 2);
        feed_all(&b, 1000, &l);
        CHECK_MSG(l.n == 1 && l.e[0].type == SG_WS_EV_CLOSE && l.e[0].code == good_codes[i],
                  "close code %d", good_codes[i]);
        evlist_free(&l);
        b.n = 0;
    }
    free(b.p);
}

static void test_parser_errors(void)
{
    bytes b = {0};
    const size_t M = 1000;
    /* masking */
    frame_ex(&b, 0x81, "hi", 2, 0, false);
    expect_error("unmasked client frame", &b, M, 0, SG_WS_CLOSE_PROTOCOL);
    /* reserved bits and opcodes */
    frame_ex(&b, 0xC1, "hi", 2, 0, true);
    expect_error("RSV1", &b, M, 0, SG_WS_CLOSE_PROTOCOL);
    frame_ex(&b, 0x91, "hi", 2, 0, true);
    expect_error("RSV3", &b, M, 0, SG_WS_CLOSE_PROTOCOL);
    const unsigned bad_ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};
    for (size_t i = 0; i < sizeof bad_ops / sizeof bad_ops[0]; i++) {
        frame_ex(&b, 0x80 | bad_ops[i], "", 0, 0, true);
        expect_error("reserved opcode", &b, M, 0, SG_WS_CLOSE_PROTOCOL);
    }
    /* control frames */
    frame(&b, false, SG_WS_OP_PING, "x", 1);
    expect_error("fragmented ping", &b, M, 0, SG_WS_CLOSE_PROTOCOL);
    uint8_t p126[126] = {0};
    frame(&b, true, SG_WS_OP_PING, p126, 126);
    expect_error("ping of 126 bytes", &b, M, 0, SG_WS_CLOSE_PROTOCOL);
    frame(&b, true, SG_WS_OP_PING, p126, 125);
    frame(&b, true, SG_WS_OP_CLOSE, p126, 126);
    expect_error("close of 126 bytes", &b, M, 1, SG_WS_CLOSE_PROTOCOL);
    /* fragmentation */
    frame(&b, true, SG_WS_OP_CONT, "x", 1);
    expect_error("continuation first", &b, M, 0, SG_WS_CLOSE_PROTOCOL);
    frame(&b, false, SG_WS_OP_TEXT, "a", 1);
    frame(&b, true, SG_WS_OP_TEXT, "b", 1);
    expect_error("text inside a message", &b, M, 0, SG_WS_CLOSE_PROTOCOL);
    frame(&b, false, SG_WS_OP_BINARY, "a", 1);
    frame(&b, true, SG_WS_OP_CONT, "b", 1);
    frame(&b, true, SG_WS_OP_CONT, "c", 1);
    expect_error("continuation after the last fragment", &b, M, 1, SG_WS_CLOSE_PROTOCOL);
    /* lengths */
    frame_ex(&b, 0x82, "abcde", 5, 126, true);
    expect_error("16-bit length for 5 bytes", &b, M, 0, SG_WS_CLOSE_PROTOCOL);
    uint8_t z[300] = {0};
    frame_ex(&b, 0x82, z, 300, 127, true);
    expect_error("64-bit length for 300 bytes", &b, M, 0, SG_WS_CLOSE_PROTOCOL);
    const uint8_t msb[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
    put(&b, msb, sizeof msb);
    expect_error("64-bit length with the top bit set", &b, (size_t)-1, 0, SG_WS_CLOSE_PROTOCOL);
    /* size limit: refused at the header, before the payload is read */
    uint8_t *big = calloc(1, 2000);
    frame(&b, true, SG_WS_OP_BINARY, big, 1001);
    {
        evlist l;
        feed_all(&b, M, &l);
        CHECK(l.n == 1 && l.e[0].type == SG_WS_EV_ERROR && l.e[0].code == SG_WS_CLOSE_TOO_BIG);
        CHECK_EQ_INT(l.consumed, 8); /* 2 + 2 length + 4 mask */
        evlist_free(&l);
        free(b.p);
        memset(&b, 0, sizeof b);
    }
    frame(&b, false, SG_WS_OP_TEXT, big, 600);
    frame(&b, true, SG_WS_OP_PING, "", 0);
    frame(&b, true, SG_WS_OP_CONT, big, 401);
    expect_error("fragments over the limit", &b, M, 1, SG_WS_CLOSE_TOO_BIG);
    const uint8_t huge[] = {0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4};
    put(&b, huge, sizeof huge);
    expect_error("2^63 - 1 bytes announced", &b, M, 0, SG_WS_CLOSE_TOO_BIG);
    free(big);
    /* UTF-8 */
    frame(&b, true, SG_WS_OP_TEXT, "a\xff", 2);
    expect_error("0xff in text", &b, M, 0, SG_WS_CLOSE_INVALID_DATA);
    frame(&b, true, SG_WS_OP_TEXT, "\xc0\xaf", 2);
    expect_error("overlong '/'", &b, M, 0, SG_WS_CLOSE_INVALID_DATA);
    frame(&b, true, SG_WS_OP_TEXT, "\xed\xa0\x80", 3);
    expect_error("surrogate", &b, M, 0, SG_WS_CLOSE_INVALID_DATA);
    frame(&b, false, SG_WS_OP_TEXT, "ok", 2);
    frame(&b, true, SG_WS_OP_CONT, "\xc3", 1);
    expect_error("text ending inside a character", &b, M, 0, SG_WS_CLOSE_INVALID_DATA);
    frame(&b, true, SG_WS_OP_BINARY, "\xff\xfe", 2); /* binary may be anything */
    frame(&b, true, SG_WS_OP_TEXT, "\xff", 1);
    expect_error("binary then bad text", &b, M, 1, SG_WS_CLOSE_INVALID_DATA);
    /* close payloads */
    frame(&b, true, SG_WS_OP_CLOSE, "\x03", 1);
    expect_error("1-byte close", &b, M, 0, SG_WS_CLOSE_PROTOCOL);
    const int bad_codes[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof bad_codes / sizeof bad_codes[0]; i++) {
        uint8_t c[2] = {(uint8_t)(bad_codes[i] >> 8), (uint8_t)bad_codes[i]};
        frame(&b, true, SG_WS_OP_CLOSE, c, 2);
        expect_error("invalid close code", &b, M, 0, SG_WS_CLOSE_PROTOCOL);
    }
    const uint8_t badreason[] = {0x03, 0xE8, 'o', 0xC3};
    frame(&b, true, SG_WS_OP_CLOSE, badreason, sizeof badreason);
    expect_error("close reason not UTF-8", &b, M, 0, SG_WS_CLOSE_INVALID_DATA);
    /* after an error, nothing more */
    frame_ex(&b, 0x81, "hi", 2, 0, false);
    frame(&b, true, SG_WS_OP_TEXT, "ok", 2);
    {
        evlist l;
        feed_all(&b, M, &l);
        CHECK(l.n == 1 && l.consumed == 2);
        evlist_free(&l);
        free(b.p);
        memset(&b, 0, sizeof b);
    }
}

/* Random streams: messages of random sizes split into random fragments with pings between them,
 * then a close; fed in random pieces; every message must come out whole and in order. */
static void test_parser_random(void)
{
    for (int round = 0; round < 200; round++) {
        bytes b = {0};
        int nmsg = 1 + (int)(rnd() % 6);
        uint8_t *msgs[6];
        size_t lens[6];
        int types[6];
        for (int m = 0; m < nmsg; m++) {
            lens[m] = rnd() % 3 == 0 ? rnd() % 70000 : rnd() % 300;
            types[m] = rnd() % 2 ? SG_WS_OP_TEXT : SG_WS_OP_BINARY;
            msgs[m] = malloc(lens[m] + 1);
            for (size_t i = 0; i < lens[m]; i++)
                msgs[m][i] = types[m] == SG_WS_OP_TEXT ? (uint8_t)('a' + rnd() % 26) : (uint8_t)rnd();
            size_t at = 0;
            int op = types[m];
            do {
                size_t n = lens[m] - at;
                if (rnd() % 2 && n > 1)
                    n = 1 + rnd() % n;
                bool fin = at + n == lens[m];
                if (fin && rnd() % 5 == 0 && n > 0) { /* sometimes an empty last fragment */
                    frame(&b, false, op, msgs[m] + at, n);
                    op = SG_WS_OP_CONT;
                    at += n;
                    n = 0;
                }
                frame(&b, fin, op, msgs[m] + at, n);
                if (rnd() % 3 == 0)
                    frame(&b, true, SG_WS_OP_PING, "p", 1);
                op = SG_WS_OP_CONT;
                at += n;
            } while (at < lens[m]);
        }
        frame(&b, true, SG_WS_OP_CLOSE, "\x03\xe8", 2);
        evlist l;
        feed_all(&b, 70000, &l);
        int got = 0;
        bool ok = true;
        for (int i = 0; i < l.n; i++) {
            if (l.e[i].type == SG_WS_EV_PING)
                continue;
            if (l.e[i].type == SG_WS_EV_CLOSE) {
                ok = ok && i == l.n - 1 && got == nmsg;
                continue;
            }
            int want = types[got] == SG_WS_OP_TEXT ? SG_WS_EV_TEXT : SG_WS_EV_BINARY;
            ok = ok && got < nmsg && l.e[i].type == want && l.e[i].len == lens[got] &&
                 (lens[got] == 0 || memcmp(l.e[i].data, msgs[got], lens[got]) == 0);
            got++;
        }
        CHECK_MSG(ok && got == nmsg && l.consumed == b.n, "random stream %d", round);
        evlist_free(&l);
        for (int m = 0; m < nmsg; m++)
            free(msgs[m]);
        free(b.p);
    }
}

/* ---- writers ---- */

static void test_writers(void)
{
    uint8_t h[SG_WS_MAX_HEADER];
    CHECK_EQ_INT(sg_ws_frame_header(h, SG_WS_OP_TEXT, true, 0, NULL), 2);
    CHECK(h[0] == 0x81 && h[1] == 0);
    CHECK_EQ_INT(sg_ws_frame_header(h, SG_WS_OP_TEXT, true, 125, NULL), 2);
    CHECK(h[1] == 125);
    CHECK_EQ_INT(sg_ws_frame_header(h, SG_WS_OP_BINARY, false, 126, NULL), 4);
    CHECK(h[0] == 0x02 && h[1] == 126 && h[2] == 0 && h[3] == 126);
    CHECK_EQ_INT(sg_ws_frame_header(h, SG_WS_OP_BINARY, true, 65535, NULL), 4);
    CHECK(h[2] == 0xFF && h[3] == 0xFF);
    CHECK_EQ_INT(sg_ws_frame_header(h, SG_WS_OP_BINARY, true, 65536, NULL), 10);
    CHECK(h[1] == 127 && h[2] == 0 && h[7] == 1 && h[8] == 0 && h[9] == 0);
    const uint8_t key[4] = {1, 2, 3, 4};
    CHECK_EQ_INT(sg_ws_frame_header(h, SG_WS_OP_PING, true, 5, key), 6);
    CHECK(h[1] == 0x85 && h[2] == 1 && h[5] == 4);

    /* masking in pieces equals masking at once */
    uint8_t a[37], c[37];
    for (int i = 0; i < 37; i++)
        a[i] = c[i] = (uint8_t)(i * 31);
    const uint8_t k2[4] = {0xde, 0xad, 0xbe, 0xef};
    sg_ws_mask(a, 37, k2, 0);
    sg_ws_mask(c, 5, k2, 0);
    sg_ws_mask(c + 5, 13, k2, 5);
    sg_ws_mask(c + 18, 19, k2, 18);
    CHECK(memcmp(a, c, 37) == 0);
    for (int i = 0; i < 37; i++)
        CHECK(a[i] == (uint8_t)((i * 31) ^ k2[i % 4]));

    /* server frames parse with a client-side parser; client-masked ones with the server's */
    for (int masked = 0; masked <= 1; masked++) {
        const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 100000};
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            uint8_t *buf = malloc(SG_WS_MAX_HEADER + n + 1);
            size_t hl = sg_ws_frame_header(buf, SG_WS_OP_BINARY, true, n, masked ? k2 : NULL);
            for (size_t i = 0; i < n; i++)
                buf[hl + i] = (uint8_t)(i ^ (i >> 8));
            if (masked)
                sg_ws_mask(buf + hl, n, k2, 0);
            sg_ws_parser p;
            sg_ws_parser_init(&p, 200000, masked);
            sg_ws_event ev;
            size_t used = sg_ws_parse(&p, buf, hl + n, &ev);
            bool ok = used == hl + n && ev.type == SG_WS_EV_BINARY && ev.len == n;
            for (size_t i = 0; ok && i < n; i++)
                ok = ev.data[i] == (uint8_t)(i ^ (i >> 8));
            CHECK_MSG(ok, "round trip of %zu bytes, masked %d", n, masked);
            /* a parser of the other side refuses it */
            sg_ws_parser q;
            sg_ws_parser_init(&q, 200000, !masked);
            sg_ws_parse(&q, buf, hl + n, &ev);
            CHECK(ev.type == SG_WS_EV_ERROR && ev.close_code == SG_WS_CLOSE_PROTOCOL);
            sg_ws_parser_free(&q);
            sg_ws_parser_free(&p);
            free(buf);
        }
    }

    /* close payloads: code, reason, cut at 125 bytes on a character boundary */
    uint8_t cp[SG_WS_MAX_CONTROL];
    size_t n = sg_ws_close_payload(cp, 1001, "server shutting down");
    CHECK(n == 22 && cp[0] == 0x03 && cp[1] == 0xE9 && memcmp(cp + 2, "server shutting down", 20) == 0);
    char longr[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(longr, "\xc3\xa9"); /* 200 bytes of é */
    n = sg_ws_close_payload(cp, 1000, longr);
    CHECK_EQ_INT(n, 124); /* 2 + 61 * 2: a 62nd é would need bytes 124 and 125 */
    CHECK(sg_ws_close_code_valid(1000) && !sg_ws_close_code_valid(1005) && !sg_ws_close_code_valid(1006) &&
          sg_ws_close_code_valid(4000) && !sg_ws_close_code_valid(5000));
}


/* ---- /ws/audio logic ---- */

typedef struct rec_asr {
    int calls;
    size_t last_n;
    uint32_t last_sum; /* a checksum of the samples it was given */
    float last_peak;   /* their largest magnitude */
} rec_asr;

static sg_status rec_transcribe(void *self, const float *pcm, size_t n, const char *language,
                                char **text, sg_error *err)
{
    (void)err;
    rec_asr *r = self;
    r->calls++;
    r->last_n = n;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &pcm[i], 4);
        h = (h ^ u) * 16777619u;
    }
    r->last_sum = h;
    r->last_peak = 0;
    for (size_t i = 0; i < n; i++)
        r->last_peak = fabsf(pcm[i]) > r->last_peak ? fabsf(pcm[i]) : r->last_peak;
    char buf[64];
    snprintf(buf, sizeof buf, "n=%zu %s", n, language ? language : "-");
    *text = strdup(buf);
    return SG_OK;
}

/* Messages of a result whose "type" is type; the i-th one in *out (NULL when fewer). */
static int count_type(const sg_ws_audio_result *r, const char *type, int i, json_t **out)
{
    int k = 0;
    size_t j;
    json_t *m;
    if (out)
        *out = NULL;
    json_array_foreach(r->msgs, j, m) {
        json_t *t = json_object_get(m, "type");
        if (json_is_string(t) && strcmp(json_string_value(t), type) == 0) {
            if (out && k == i)
                *out = m;
            k++;
        }
    }
    return k;
}

static double num(json_t *m, const char *k) { return json_number_value(json_object_get(m, k)); }

/* A tone as s16le bytes: n samples from sample index t0. */
static uint8_t *tone_s16(size_t t0, size_t n)
{
    uint8_t *b = malloc(2 * n);
    for (size_t i = 0; i < n; i++) {
        int16_t v = (int16_t)(8000.0 * sin((double)(t0 + i) * 0.05));
        b[2 * i] = (uint8_t)(v & 0xFF);
        b[2 * i + 1] = (uint8_t)((uint16_t)v >> 8);
    }
    return b;
}

/* Feeds n samples of tone in chunks of chunk samples; counts partial requests (freed). */
static int feed_tone(sg_ws_audio *a, size_t *t, size_t n, size_t chunk, bool busy, double *last_t,
                     size_t *last_n)
{
    int partials = 0;
    for (size_t at = 0; at < n; at += chunk) {
        size_t k = n - at < chunk ? n - at : chunk;
        uint8_t *b = tone_s16(*t, k);
        sg_ws_audio_result r;
        sg_ws_audio_binary(a, b, 2 * k, busy, &r);
        CHECK(json_array_size(r.msgs) == 0 || count_type(&r, "final", 0, NULL) > 0);
        CHECK_EQ_INT(r.n16k, k);
        if (r.partial) {
            partials++;
            if (last_t)
                *last_t = r.partial->t_ms;
            if (last_n)
                *last_n = r.partial->n;
            sg_ws_partial_free(r.partial);
        }
        json_decref(r.msgs);
        free(b);
        *t += k;
    }
    return partials;
}

static void text_msg(sg_ws_audio *a, const char *t, sg_ws_audio_result *r)
{
    sg_ws_audio_text(a, t, strlen(t), false, r);
}

static void test_ws_audio(void)
{
    rec_asr rec = {0};
    sg_asr_backend asr = {.name = "recorder", .transcribe = rec_transcribe, .self = &rec};
    sg_backends b = {0};
    sg_error err = {0};
    CHECK(sg_ws_audio_new(&b, &err) == NULL && err.code == SG_EUNSUPPORTED); /* no ASR */
    b.asr = &asr;
    sg_ws_audio *a = sg_ws_audio_new(&b, &err);
    CHECK(a != NULL);
    if (!a)
        return;
    size_t t = 0;
    /* partials once per second of audio, of the utterance so far */
    double pt = 0;
    size_t pn = 0;
    CHECK_EQ_INT(feed_tone(a, &t, 9 * 1600, 1600, false, NULL, NULL), 0);
    CHECK_EQ_INT(feed_tone(a, &t, 1600, 1600, false, &pt, &pn), 1);
    CHECK(pt == 1000 && pn == 16000);
    CHECK_EQ_INT(feed_tone(a, &t, 10 * 1600, 1600, false, &pt, &pn), 1);
    CHECK(pt == 2000 && pn == 32000);
    /* while a partial runs, the next is skipped (not queued): none at 3 s, the next at 4 s */
    CHECK_EQ_INT(feed_tone(a, &t, 10 * 1600, 1600, true, NULL, NULL), 0);
    CHECK_EQ_INT(feed_tone(a, &t, 9 * 1600, 1600, false, NULL, NULL), 0);
    CHECK_EQ_INT(feed_tone(a, &t, 1600, 1600, false, &pt, &pn), 1);
    CHECK(pt == 4000 && pn == 64000);
    /* a partial message from the ASR */
    sg_ws_partial p = {NULL, 0, 1, 1234.4, "en"};
    float pcm[8] = {0};
    p.pcm = pcm;
    p.n = 8;
    double ms;
    json_t *pm = sg_ws_partial_run(&asr, &p, &ms);
    CHECK(pm && strcmp(json_string_value(json_object_get(pm, "type")), "partial") == 0 &&
          strcmp(json_string_value(json_object_get(pm, "text")), "n=8 en") == 0 && num(pm, "t_ms") == 1234);
    json_decref(pm);
    /* "end": the final of the whole utterance, then the acknowledgement */
    sg_ws_audio_result r;
    rec.calls = 0;
    text_msg(a, "{\"type\":\"end\"}", &r);
    json_t *m;
    CHECK_EQ_INT(count_type(&r, "final", 0, &m), 1);
    CHECK(m && num(m, "start_ms") == 0 && num(m, "end_ms") == 4000 && num(m, "t_ms") == 4000 &&
          strcmp(json_string_value(json_object_get(m, "text")), "n=64000 -") == 0);
    CHECK_EQ_INT(count_type(&r, "end", 0, &m), 1);
    CHECK(m && num(m, "t_ms") == 4000);
    CHECK(r.finalized == 1 && sg_ws_audio_finalized(a) == 1 && r.finals == 1 && rec.calls == 1);
    json_decref(r.msgs);
    /* "end" with nothing pending: only the acknowledgement */
    text_msg(a, "{\"type\":\"end\"}", &r);
    CHECK(json_array_size(r.msgs) == 1 && count_type(&r, "end", 0, NULL) == 1);
    json_decref(r.msgs);

    /* samples split between messages: the same samples reach the ASR */
    uint8_t *sec = tone_s16(0, 16000);
    text_msg(a, "{\"language\":\"en\"}", &r);
    CHECK_EQ_INT(json_array_size(r.msgs), 0);
    json_decref(r.msgs);
    sg_ws_audio_binary(a, sec, 32000, true, &r);
    json_decref(r.msgs);
    text_msg(a, "{\"type\":\"end\"}", &r);
    CHECK(count_type(&r, "final", 0, &m) == 1 &&
          strcmp(json_string_value(json_object_get(m, "text")), "n=16000 en") == 0);
    const uint32_t whole = rec.last_sum;
    json_decref(r.msgs);
    for (size_t at = 0; at < 32000; at += 333) {
        sg_ws_audio_binary(a, sec + at, 32000 - at < 333 ? 32000 - at : 333, true, &r);
        json_decref(r.msgs);
    }
    text_msg(a, "{\"type\":\"end\"}", &r);
    CHECK(count_type(&r, "final", 0, &m) == 1 && num(m, "start_ms") == 5000 && num(m, "end_ms") == 6000);
    CHECK(rec.last_n == 16000 && rec.last_sum == whole);
    json_decref(r.msgs);
    /* a dangling byte at "end" is dropped, not carried into the next stream */
    sg_ws_audio_binary(a, sec, 3, true, &r);
    json_decref(r.msgs);
    text_msg(a, "{\"type\":\"end\"}", &r);
    CHECK(count_type(&r, "end", 0, &m) == 1 && num(m, "t_ms") == 6000); /* 1 sample = 0.0625 ms */
    json_decref(r.msgs);
    free(sec);

    /* mistakes: error messages, nothing else changes */
    const char *bad[] = {"{\"sample_rate\":7}", "{\"sample_rate\":\"16000\"}", "{\"format\":\"wav\"}",
                         "{\"format\":\"mp3\"}", "{\"language\":\"e n\"}", "{\"language\":7}",
                         "{\"type\":\"pause\"}", "{\"type\":5}", "[1,2]", "not json", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sg_ws_audio_text(a, bad[i], strlen(bad[i]), false, &r);
        CHECK_MSG(count_type(&r, "error", 0, &m) == 1 && json_array_size(r.msgs) == 1 &&
                      strcmp(json_string_value(json_object_get(m, "error")), "INVALID_REQUEST") == 0,
                  "bad message '%s'", bad[i]);
        json_decref(r.msgs);
    }
    /* f32: a NaN drops the message */
    text_msg(a, "{\"format\":\"pcm_f32le\",\"sample_rate\":16000}", &r);
    json_decref(r.msgs);
    float f[100];
    for (int i = 0; i < 100; i++)
        f[i] = 0.1f * (float)sin(i);
    f[37] = NAN;
    sg_ws_audio_binary(a, (uint8_t *)f, sizeof f, true, &r);
    CHECK(count_type(&r, "error", 0, &m) == 1 &&
          strcmp(json_string_value(json_object_get(m, "error")), "INVALID_AUDIO") == 0 && r.n16k == 0);
    json_decref(r.msgs);
    f[37] = 0;
    sg_ws_audio_binary(a, (uint8_t *)f, sizeof f, true, &r);
    CHECK(json_array_size(r.msgs) == 0 && r.n16k == 100);
    json_decref(r.msgs);
    /* f32 beyond full scale is clipped to [-1, 1] as /audio clips it (a huge finite sample must
     * not reach the VAD and Whisper as it is) */
    for (int i = 0; i < 100; i++)
        f[i] = i % 3 == 0 ? 1e30f : i % 3 == 1 ? -7.5f : 0.25f;
    sg_ws_audio_binary(a, (uint8_t *)f, sizeof f, true, &r);
    CHECK(json_array_size(r.msgs) == 0 && r.n16k == 100);
    for (size_t i = 0; i < r.n16k; i++)
        CHECK_MSG(fabsf(r.pcm16k[i]) <= 1.0f, "sample %zu is %g", i, (double)r.pcm16k[i]);
    json_decref(r.msgs);
    text_msg(a, "{\"type\":\"end\"}", &r);
    CHECK(count_type(&r, "final", 0, NULL) == 1 && rec.last_n == 200 && rec.last_peak == 1.0f);
    json_decref(r.msgs);
    text_msg(a, "{\"format\":\"pcm_f32le\",\"sample_rate\":8000}", &r);
    json_decref(r.msgs);
    sg_ws_audio_binary(a, (uint8_t *)f, sizeof f, true, &r); /* resampled: ringing is clipped too */
    json_decref(r.msgs);
    text_msg(a, "{\"type\":\"end\"}", &r);
    CHECK(count_type(&r, "final", 0, NULL) == 1 && rec.last_n > 150 && rec.last_peak <= 1.0f);
    json_decref(r.msgs);
    text_msg(a, "{\"format\":\"pcm_f32le\",\"sample_rate\":16000}", &r);
    json_decref(r.msgs);
    f[0] = 0.5f;
    sg_ws_audio_binary(a, (uint8_t *)f, 4, true, &r);
    json_decref(r.msgs);
    /* configuration after audio is refused */
    text_msg(a, "{\"sample_rate\":8000}", &r);
    CHECK(count_type(&r, "error", 0, NULL) == 1);
    json_decref(r.msgs);
    /* close: the open utterance's final, no acknowledgement */
    sg_ws_audio_flush(a, &r);
    CHECK(count_type(&r, "final", 0, &m) == 1 && count_type(&r, "end", 0, NULL) == 0 && rec.last_n == 1);
    json_decref(r.msgs);
    sg_ws_audio_free(a);

    /* 30 s cut without a VAD, and 8 kHz resampled */
    a = sg_ws_audio_new(&b, &err);
    t = 0;
    int finals = 0;
    for (int k = 0; k < 65; k++) {
        uint8_t *chunk = tone_s16(t, 16000);
        sg_ws_audio_binary(a, chunk, 32000, true, &r);
        for (int i = 0; count_type(&r, "final", i, &m) > i; i++) {
            CHECK(num(m, "start_ms") == 30000.0 * finals && num(m, "end_ms") == 30000.0 * (finals + 1));
            finals++;
        }
        json_decref(r.msgs);
        free(chunk);
        t += 16000;
    }
    CHECK_EQ_INT(finals, 2);
    text_msg(a, "{\"type\":\"end\"}", &r);
    CHECK(count_type(&r, "final", 0, &m) == 1 && num(m, "start_ms") == 60000 && num(m, "end_ms") == 65000);
    json_decref(r.msgs);
    text_msg(a, "{\"sample_rate\":8000}", &r);
    json_decref(r.msgs);
    for (int k = 0; k < 10; k++) {
        uint8_t *chunk = tone_s16((size_t)k * 800, 800);
        sg_ws_audio_binary(a, chunk, 1600, true, &r);
        json_decref(r.msgs);
        free(chunk);
    }
    text_msg(a, "{\"type\":\"end\"}", &r);
    CHECK(count_type(&r, "final", 0, &m) == 1 && num(m, "start_ms") == 65000);
    CHECK(count_type(&r, "end", 0, &m) == 1 && num(m, "t_ms") == 66000); /* 8000 in, 16000 out */
    CHECK_EQ_INT(rec.last_n, 16000);
    json_decref(r.msgs);
    sg_ws_audio_free(a);
}

int main(void)
{
    test_sha1();
    test_handshake();
    test_parser_basic();
    test_parser_errors();
    test_parser_random();
    test_writers();
    test_ws_audio();
    return check_report("test_ws");
}
