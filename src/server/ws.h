/* RFC 6455 (WebSocket) without I/O: the opening-handshake check and Sec-WebSocket-Accept, an
 * incremental frame parser for what a client sends, and frame writers for what a server sends.
 * The socket loop that uses them is server/ws_conn.c.
 *
 * Parser rules (server side, no extensions negotiated):
 * - every client frame must be masked, RSV1-3 must be 0, opcodes are continuation, text, binary,
 *   close, ping and pong only; the payload length must use the minimal encoding and a 64-bit
 *   length must have its top bit clear - otherwise close 1002 (protocol error);
 * - control frames carry at most 125 bytes and are never fragmented (1002); they may arrive
 *   between the fragments of a message;
 * - a message is a text or binary frame plus continuation frames up to the one with FIN; a
 *   continuation with no message started, or a new text/binary frame inside one, is 1002;
 * - a message whose total payload would exceed max_message is refused as soon as a frame header
 *   announces it (close 1009), before its bytes are read;
 * - text messages must be valid UTF-8 (base/utf8.h), checked once complete (close 1007); so must
 *   the reason of a close frame; a close payload of 1 byte or with a code that may not be sent
 *   (< 1000, 1004-1006, 1015, 1016-2999 unassigned, >= 5000) is 1002.
 * Bytes can be fed in any pieces, one at a time included: the parser keeps its own state and
 * buffers; after an error or a close frame it reads nothing more. */
#ifndef SG_SERVER_WS_H
#define SG_SERVER_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

enum {
    SG_WS_OP_CONT = 0x0,
    SG_WS_OP_TEXT = 0x1,
    SG_WS_OP_BINARY = 0x2,
    SG_WS_OP_CLOSE = 0x8,
    SG_WS_OP_PING = 0x9,
    SG_WS_OP_PONG = 0xA,
};

enum {
    SG_WS_CLOSE_NORMAL = 1000,
    SG_WS_CLOSE_GOING_AWAY = 1001,
    SG_WS_CLOSE_PROTOCOL = 1002,
    SG_WS_CLOSE_UNSUPPORTED = 1003,
    SG_WS_CLOSE_NO_STATUS = 1005,   /* never sent: "the close frame had no code" */
    SG_WS_CLOSE_ABNORMAL = 1006,    /* never sent: "no close frame at all" */
    SG_WS_CLOSE_INVALID_DATA = 1007,
    SG_WS_CLOSE_POLICY = 1008,
    SG_WS_CLOSE_TOO_BIG = 1009,
    SG_WS_CLOSE_INTERNAL = 1011,
};

#define SG_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */
#define SG_WS_MAX_CONTROL 125
#define SG_WS_MAX_HEADER 14

/* ---- handshake ---------------------------------------------------------------------------------- */

/* The request's relevant parts (header values as received, NULL when absent). */
typedef struct sg_ws_request {
    const char *method;       /* must be GET */
    const char *http_version; /* must be HTTP/1.1 or later */
    const char *upgrade;      /* a token list containing "websocket" (any case) */
    const char *connection;   /* a token list containing "upgrade" (any case) */
    const char *version;      /* Sec-WebSocket-Version: "13" */
    const char *key;          /* Sec-WebSocket-Key: base64 of 16 bytes */
} sg_ws_request;

/* 0 when req is a valid opening handshake (accept = Sec-WebSocket-Accept, NUL-terminated);
 * otherwise the HTTP status to answer: 426 for a Sec-WebSocket-Version other than 13 (answer
 * with "Sec-WebSocket-Version: 13"), 400 for anything else; err says what is wrong. */
int sg_ws_handshake_check(const sg_ws_request *req, char accept[SG_WS_ACCEPT_LEN + 1], sg_error *err);
/* base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), NUL-terminated. */
void sg_ws_accept_key(const char *key, char out[SG_WS_ACCEPT_LEN + 1]);

/* ---- parser ------------------------------------------------------------------------------------- */

typedef enum sg_ws_event_type {
    SG_WS_EV_NONE = 0, /* need more bytes */
    SG_WS_EV_TEXT,     /* a complete text message (valid UTF-8) */
    SG_WS_EV_BINARY,   /* a complete binary message */
    SG_WS_EV_PING,
    SG_WS_EV_PONG,
    SG_WS_EV_CLOSE,    /* the peer's close frame; nothing more is parsed */
    SG_WS_EV_ERROR,    /* protocol violation; close with close_code; nothing more is parsed */
} sg_ws_event_type;

typedef struct sg_ws_event {
    sg_ws_event_type type;
    /* TEXT / BINARY: the message; PING / PONG: the payload; CLOSE: the reason (UTF-8, not
     * NUL-terminated). Valid until the next sg_ws_parse call. */
    const uint8_t *data;
    size_t len;
    int close_code;   /* CLOSE: the code received (1005 when the frame had none); ERROR: the code
                         to close with (1002, 1007 or 1009) */
    char reason[128]; /* ERROR: what was wrong, for the close frame and the log */
} sg_ws_event;

typedef struct sg_ws_parser {
    size_t max_message;
    bool expect_masked;  /* true on a server (client frames), false on a client */
    int state;
    uint8_t hdr[SG_WS_MAX_HEADER];
    int hdr_have, hdr_need;
    bool fin;
    int opcode;
    uint8_t mask[4];
    bool masked;
    uint64_t remaining;  /* payload bytes of the current frame still to come */
    uint64_t frame_pos;  /* payload bytes of the current frame read so far (mask phase) */
    int msg_opcode;      /* TEXT or BINARY while a message is being assembled, else 0 */
    uint8_t *msg;
    size_t msg_len, msg_cap;
    uint8_t ctrl[SG_WS_MAX_CONTROL];
    size_t ctrl_len;
} sg_ws_parser;

/* max_message: the largest message accepted (sum of its fragments); expect_masked: true to parse
 * a client's frames (a server), false for a server's (a client). */
void sg_ws_parser_init(sg_ws_parser *p, size_t max_message, bool expect_masked);
void sg_ws_parser_free(sg_ws_parser *p);
/* Reads from data[0..len) until one event is complete or the bytes run out; returns the number
 * of bytes consumed and fills *ev (type NONE when more bytes are needed). Call again with the
 * rest after handling an event. After CLOSE or ERROR it consumes nothing (returns 0, NONE). Out
 * of memory while assembling a message is an ERROR with code 1011. */
size_t sg_ws_parse(sg_ws_parser *p, const uint8_t *data, size_t len, sg_ws_event *ev);
/* Hands over the buffer of the TEXT / BINARY event just returned (malloc'ed, the caller frees;
 * it has one spare byte after len, set to 0). NULL for an empty message. */
uint8_t *sg_ws_parser_take(sg_ws_parser *p, size_t *len);

/* ---- writers ------------------------------------------------------------------------------------ */

/* Writes the header of one frame with a payload of len bytes; mask NULL = unmasked (a server's
 * frames), else the masking key (a client's; the caller masks the payload with sg_ws_mask).
 * Returns its size (2..14). */
size_t sg_ws_frame_header(uint8_t out[SG_WS_MAX_HEADER], int opcode, bool fin, uint64_t len,
                          const uint8_t mask[4]);
/* XORs data with the masking key; offset is the position of data[0] within the payload. */
void sg_ws_mask(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);
/* A close payload: the code (big-endian) and the reason cut to fit 125 bytes at a UTF-8
 * character boundary. Returns its length. */
size_t sg_ws_close_payload(uint8_t out[SG_WS_MAX_CONTROL], int code, const char *reason);
/* A code a close frame may carry (1000-1003, 1007-1014, 3000-4999). */
bool sg_ws_close_code_valid(int code);

#endif
