/* RFC 6455 framing and handshake; see ws.h for the rules the parser enforces. The parser is a
 * small state machine over header bytes -> payload bytes, so any split of the input gives the same
 * events; message payloads are unmasked straight into a buffer that grows with the bytes actually
 * received (never with the length a header merely announces). */
#include "server/ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base64.h"
#include "base/sha1.h"
#include "base/utf8.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- handshake ---------------------------------------------------------------------------------- */

void sg_ws_accept_key(const char *key, char out[SG_WS_ACCEPT_LEN + 1])
{
    sg_sha1_ctx c;
    uint8_t digest[SG_SHA1_LEN];
    sg_sha1_init(&c);
    sg_sha1_update(&c, key, strlen(key));
    sg_sha1_update(&c, WS_GUID, sizeof WS_GUID - 1);
    sg_sha1_final(&c, digest);
    size_t n = 0;
    char *b = sg_base64_encode(digest, sizeof digest, &n);
    if (b && n == SG_WS_ACCEPT_LEN)
        memcpy(out, b, SG_WS_ACCEPT_LEN + 1);
    else
        out[0] = 0; /* out of memory: an empty accept, which no client takes */
    free(b);
}

/* True when the comma-separated list s contains token (case-insensitive, spaces around ignored). */
static bool has_token(const char *s, const char *token)
{
    if (!s)
        return false;
    const size_t tl = strlen(token);
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        const char *b = s;
        while (*s && *s != ',')
            s++;
        const char *e = s;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - b) == tl && strncasecmp(b, token, tl) == 0)
            return true;
    }
    return false;
}

/* s without surrounding spaces equals want. */
static bool trimmed_eq(const char *s, const char *want)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n == strlen(want) && memcmp(s, want, n) == 0;
}

int sg_ws_handshake_check(const sg_ws_request *req, char accept[SG_WS_ACCEPT_LEN + 1], sg_error *err)
{
    accept[0] = 0;
    if (!req->method || strcmp(req->method, "GET") != 0) {
        sg_error_set(err, SG_EINVAL, "a WebSocket handshake must be a GET request");
        return 400;
    }
    if (!req->http_version || strncmp(req->http_version, "HTTP/1.", 7) != 0 ||
        strcmp(req->http_version, "HTTP/1.0") == 0) {
        sg_error_set(err, SG_EINVAL, "a WebSocket handshake needs HTTP/1.1");
        return 400;
    }
    if (!has_token(req->upgrade, "websocket")) {
        sg_error_set(err, SG_EINVAL,
                     "not a WebSocket handshake: send \"Upgrade: websocket\" and \"Connection: "
                     "Upgrade\" (this route speaks WebSocket only)");
        return 400;
    }
    if (!has_token(req->connection, "upgrade")) {
        sg_error_set(err, SG_EINVAL, "the Connection header must contain \"Upgrade\"");
        return 400;
    }
    if (!req->version) {
        sg_error_set(err, SG_EINVAL, "missing Sec-WebSocket-Version (13)");
        return 400;
    }
    if (!trimmed_eq(req->version, "13")) {
        char q[48];
        sg_error_set(err, SG_EINVAL, "unsupported Sec-WebSocket-Version \"%s\"; this server speaks 13",
                     sg_utf8_quote(q, 32, req->version, strlen(req->version), false));
        return 426;
    }
    /* the key: exactly the 24 characters of base64 of 16 bytes, nothing around them */
    const char *k = req->key;
    while (k && (*k == ' ' || *k == '\t'))
        k++;
    size_t kl = k ? strlen(k) : 0;
    while (kl && (k[kl - 1] == ' ' || k[kl - 1] == '\t'))
        kl--;
    uint8_t *raw = NULL;
    size_t rawn = 0;
    sg_error e2 = {0};
    bool ok = k && kl == 24 && memchr(k, '\r', kl) == NULL && memchr(k, '\n', kl) == NULL &&
              sg_base64_decode(k, kl, &raw, &rawn, &e2) == SG_OK && rawn == 16;
    free(raw);
    if (!ok) {
        sg_error_set(err, SG_EINVAL, k ? "Sec-WebSocket-Key must be the base64 of 16 bytes"
                                       : "missing Sec-WebSocket-Key");
        return 400;
    }
    char key[25];
    memcpy(key, k, 24);
    key[24] = 0;
    sg_ws_accept_key(key, accept);
    if (!accept[0]) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return 503;
    }
    return 0;
}

/* ---- writers ------------------------------------------------------------------------------------ */

size_t sg_ws_frame_header(uint8_t out[SG_WS_MAX_HEADER], int opcode, bool fin, uint64_t len,
                          const uint8_t mask[4])
{
    size_t n = 0;
    out[n++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    const uint8_t m = mask ? 0x80 : 0;
    if (len < 126) {
        out[n++] = (uint8_t)(m | len);
    } else if (len <= 0xFFFF) {
        out[n++] = (uint8_t)(m | 126);
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = (uint8_t)(m | 127);
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)(len >> (8 * i));
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

void sg_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
    size_t i = 0;
    /* align to the key, then 8 bytes at a time with the key repeated twice */
    for (; i < len && ((offset + i) & 3); i++)
        data[i] ^= mask[(offset + i) & 3];
    uint64_t k8;
    uint8_t rep[8] = {mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]};
    memcpy(&k8, rep, 8);
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, data + i, 8);
        v ^= k8;
        memcpy(data + i, &v, 8);
    }
    for (; i < len; i++)
        data[i] ^= mask[(offset + i) & 3];
}

bool sg_ws_close_code_valid(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

size_t sg_ws_close_payload(uint8_t out[SG_WS_MAX_CONTROL], int code, const char *reason)
{
    out[0] = (uint8_t)(code >> 8);
    out[1] = (uint8_t)code;
    size_t n = 2;
    if (!reason)
        return n;
    const unsigned char *r = (const unsigned char *)reason;
    size_t len = strlen(reason);
    for (size_t i = 0; i < len;) {
        size_t cl = sg_utf8_seq_len(r + i, len - i);
        if (!cl)
            break; /* a reason we built is UTF-8; stop at anything that is not */
        if (n + cl > SG_WS_MAX_CONTROL)
            break;
        memcpy(out + n, r + i, cl);
        n += cl;
        i += cl;
    }
    return n;
}

/* ---- parser ------------------------------------------------------------------------------------- */

enum { ST_HEADER = 0, ST_PAYLOAD, ST_DONE };

void sg_ws_parser_init(sg_ws_parser *p, size_t max_message, bool expect_masked)
{
    memset(p, 0, sizeof *p);
    p->max_message = max_message;
    p->expect_masked = expect_masked;
    p->state = ST_HEADER;
    p->hdr_need = 2;
}

void sg_ws_parser_free(sg_ws_parser *p)
{
    free(p->msg);
    p->msg = NULL;
    p->msg_cap = p->msg_len = 0;
}

uint8_t *sg_ws_parser_take(sg_ws_parser *p, size_t *len)
{
    *len = p->msg_len;
    if (!p->msg_len)
        return NULL;
    uint8_t *m = p->msg;
    p->msg = NULL;
    p->msg_cap = p->msg_len = 0;
    return m;
}

static size_t fail(sg_ws_parser *p, sg_ws_event *ev, int code, const char *why, size_t used)
{
    p->state = ST_DONE;
    ev->type = SG_WS_EV_ERROR;
    ev->close_code = code;
    ev->data = NULL;
    ev->len = 0;
    snprintf(ev->reason, sizeof ev->reason, "%s", why);
    return used;
}

static bool is_control(int op) { return op >= 0x8; }

/* Checks the first two header bytes; returns an error text or NULL, and sets hdr_need. */
static const char *header_start(sg_ws_parser *p, int *code)
{
    const uint8_t b0 = p->hdr[0], b1 = p->hdr[1];
    *code = SG_WS_CLOSE_PROTOCOL;
    p->fin = (b0 & 0x80) != 0;
    p->opcode = b0 & 0x0F;
    p->masked = (b1 & 0x80) != 0;
    const int len7 = b1 & 0x7F;
    if (b0 & 0x70)
        return "reserved bits set (no extension was negotiated)";
    switch (p->opcode) {
    case SG_WS_OP_CONT:
        if (!p->msg_opcode)
            return "continuation frame without a message to continue";
        break;
    case SG_WS_OP_TEXT:
    case SG_WS_OP_BINARY:
        if (p->msg_opcode)
            return "new message started before the previous one was finished";
        break;
    case SG_WS_OP_CLOSE:
    case SG_WS_OP_PING:
    case SG_WS_OP_PONG:
        if (!p->fin)
            return "fragmented control frame";
        if (len7 > SG_WS_MAX_CONTROL)
            return "control frame longer than 125 bytes";
        break;
    default:
        return "unknown opcode";
    }
    if (p->masked != p->expect_masked)
        return p->expect_masked ? "client frames must be masked" : "server frames must not be masked";
    p->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (p->masked ? 4 : 0);
    return NULL;
}

/* The whole header is in: length, mask, limits. */
static const char *header_done(sg_ws_parser *p, int *code)
{
    *code = SG_WS_CLOSE_PROTOCOL;
    const int len7 = p->hdr[1] & 0x7F;
    uint64_t len = (uint64_t)len7;
    int at = 2;
    if (len7 == 126) {
        len = (uint64_t)p->hdr[2] << 8 | p->hdr[3];
        at = 4;
        if (len < 126)
            return "payload length not minimally encoded";
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p->hdr[2 + i];
        at = 10;
        if (len >> 63)
            return "payload length with the most significant bit set";
        if (len <= 0xFFFF)
            return "payload length not minimally encoded";
    }
    if (p->masked)
        memcpy(p->mask, p->hdr + at, 4);
    if (!is_control(p->opcode)) {
        if (p->opcode != SG_WS_OP_CONT) {
            p->msg_opcode = p->opcode;
            p->msg_len = 0;
            if (p->msg_cap > ((size_t)1 << 20)) { /* do not keep a big buffer between messages */
                free(p->msg);
                p->msg = NULL;
                p->msg_cap = 0;
            }
        }
        if (len > p->max_message || p->msg_len > p->max_message - len) {
            *code = SG_WS_CLOSE_TOO_BIG;
            return "message too big";
        }
    }
    p->ctrl_len = 0;
    p->remaining = len;
    p->frame_pos = 0;
    return NULL;
}

/* Room for n more message bytes, growing with what has arrived (doubling, capped by what the
 * frame still announces). */
static bool msg_reserve(sg_ws_parser *p, size_t n)
{
    if (p->msg_len + n + 1 <= p->msg_cap)
        return true;
    size_t cap = p->msg_cap ? p->msg_cap : 4096;
    while (cap < p->msg_len + n + 1)
        cap *= 2;
    const size_t most = p->msg_len + (size_t)p->remaining + 1;
    if (cap > most)
        cap = most;
    uint8_t *m = realloc(p->msg, cap);
    if (!m)
        return false;
    p->msg = m;
    p->msg_cap = cap;
    return true;
}

/* The current frame's payload is complete: an event, or NONE for a non-final fragment. */
static size_t frame_done(sg_ws_parser *p, sg_ws_event *ev, size_t used)
{
    p->state = ST_HEADER;
    p->hdr_have = 0;
    p->hdr_need = 2;
    switch (p->opcode) {
    case SG_WS_OP_PING:
    case SG_WS_OP_PONG:
        ev->type = p->opcode == SG_WS_OP_PING ? SG_WS_EV_PING : SG_WS_EV_PONG;
        ev->data = p->ctrl;
        ev->len = p->ctrl_len;
        return used;
    case SG_WS_OP_CLOSE:
        if (p->ctrl_len == 1)
            return fail(p, ev, SG_WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload", used);
        ev->close_code = SG_WS_CLOSE_NO_STATUS;
        ev->data = p->ctrl;
        ev->len = 0;
        if (p->ctrl_len >= 2) {
            const int code = p->ctrl[0] << 8 | p->ctrl[1];
            if (!sg_ws_close_code_valid(code))
                return fail(p, ev, SG_WS_CLOSE_PROTOCOL, "close frame with an invalid code", used);
            if (!sg_utf8_valid(p->ctrl + 2, p->ctrl_len - 2))
                return fail(p, ev, SG_WS_CLOSE_INVALID_DATA, "close reason is not valid UTF-8", used);
            ev->close_code = code;
            ev->data = p->ctrl + 2;
            ev->len = p->ctrl_len - 2;
        }
        p->state = ST_DONE;
        ev->type = SG_WS_EV_CLOSE;
        return used;
    default:
        break;
    }
    if (!p->fin)
        return used; /* more fragments to come */
    const int op = p->msg_opcode;
    p->msg_opcode = 0;
    if (op == SG_WS_OP_TEXT && !sg_utf8_valid(p->msg, p->msg_len))
        return fail(p, ev, SG_WS_CLOSE_INVALID_DATA, "text message is not valid UTF-8", used);
    if (p->msg)
        p->msg[p->msg_len] = 0;
    ev->type = op == SG_WS_OP_TEXT ? SG_WS_EV_TEXT : SG_WS_EV_BINARY;
    ev->data = p->msg;
    ev->len = p->msg_len;
    return used;
}

size_t sg_ws_parse(sg_ws_parser *p, const uint8_t *data, size_t len, sg_ws_event *ev)
{
    ev->type = SG_WS_EV_NONE;
    ev->data = NULL;
    ev->len = 0;
    ev->close_code = 0;
    ev->reason[0] = 0;
    size_t used = 0;
    while (p->state != ST_DONE) {
        if (p->state == ST_HEADER) {
            while (p->hdr_have < p->hdr_need && used < len)
                p->hdr[p->hdr_have++] = data[used++];
            if (p->hdr_have < p->hdr_need)
                return used;
            int code;
            const char *why = NULL;
            if (p->hdr_have == 2) {
                why = header_start(p, &code);
                if (why)
                    return fail(p, ev, code, why, used);
                if (p->hdr_need > 2)
                    continue; /* extended length and/or mask still to come */
            }
            why = header_done(p, &code);
            if (why)
                return fail(p, ev, code, why, used);
            p->state = ST_PAYLOAD;
        }
        /* ST_PAYLOAD */
        size_t n = len - used;
        if (n > p->remaining)
            n = (size_t)p->remaining;
        if (n) {
            uint8_t *dst;
            if (is_control(p->opcode)) {
                dst = p->ctrl + p->ctrl_len;
                p->ctrl_len += n;
            } else {
                if (!msg_reserve(p, n))
                    return fail(p, ev, SG_WS_CLOSE_INTERNAL, "out of memory", used);
                dst = p->msg + p->msg_len;
                p->msg_len += n;
            }
            memcpy(dst, data + used, n);
            if (p->masked)
                sg_ws_mask(dst, n, p->mask, p->frame_pos);
            p->frame_pos += n;
            p->remaining -= n;
            used += n;
        }
        if (p->remaining)
            return used;
        size_t r = frame_done(p, ev, used);
        if (ev->type != SG_WS_EV_NONE)
            return r;
    }
    return used;
}
