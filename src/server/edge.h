/* The HTTP edge: what the server checks and bounds before a request reaches the route table.
 * edge_check.c holds the pure checks of a request head (framing, Host, limits, the target), which
 * http.c and fuzz/fuzz_http.c both call; edge.c the connection registry (per-address counts, the
 * accept policy, the watchdog that enforces the header deadline and minimum body rate) and the
 * global budget for request bodies in memory. Not a public interface. */
#ifndef SG_SERVER_EDGE_H
#define SG_SERVER_EDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/error.h"
#include "server/config.h"

/* ---- the request head (edge_check.c: pure, no I/O) ------------------------------------------ */

/* One header field as libmicrohttpd keeps it: the name as sent, the value with its leading white
 * space removed (libmicrohttpd keeps trailing white space, and so do we). */
typedef struct sg_http_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} sg_http_field;

typedef struct sg_edge_limits {
    size_t max_target;       /* SG_HTTP_MAX_TARGET_BYTES */
    size_t max_header_bytes; /* SG_HTTP_MAX_HEADER_BYTES: names + values + 4 per field */
    size_t max_headers;      /* SG_HTTP_MAX_HEADERS */
} sg_edge_limits;

/* A request head as libmicrohttpd parsed it. */
typedef struct sg_edge_head {
    const char *method;
    const char *target;          /* the raw request-target (path and query, undecoded) */
    size_t target_len;           /* its bytes on the wire: a NUL among them is refused */
    const char *version;         /* "HTTP/1.1" */
    const sg_http_field *fields; /* in arrival order, duplicates included; may be NULL when
                                    n_fields > max_headers (the count alone refuses it) */
    size_t n_fields;
} sg_edge_head;

/* How the body is delimited, once the head is accepted. */
typedef enum { SG_BODY_FRAMING_NONE = 0, SG_BODY_FRAMING_LENGTH, SG_BODY_FRAMING_CHUNKED } sg_body_framing;

typedef struct sg_edge_verdict {
    int status;           /* 0: accepted; else the HTTP status of the refusal */
    const char *code;     /* its API error code */
    char detail[200];     /* its message (ASCII: request bytes are never copied into it) */
    sg_body_framing framing;
    uint64_t content_length; /* SG_BODY_FRAMING_LENGTH */
} sg_edge_verdict;

/* Checks a request head before anything acts on it; false with *v the refusal: 414 / 431 over a
 * limit; 400 for a control character or NUL in the target (raw or %-encoded), a malformed field
 * name (one libmicrohttpd would read as another: "Content-Length " or an obs-fold remnant), a
 * control character in a value, HTTP/1.1 without exactly one Host or any request with several or
 * an invalid one, several Content-Length, Content-Length with Transfer-Encoding, Transfer-Encoding
 * in HTTP/1.0; 501 for a Transfer-Encoding other than exactly "chunked" (libmicrohttpd would read
 * such a body without an end); 505 for a version other than HTTP/1.x. */
bool sg_edge_check_head(const sg_edge_head *h, const sg_edge_limits *lim, sg_edge_verdict *v);

/* The path of a raw request-target (the bytes before '?'), %-decoded as libmicrohttpd decodes it
 * (%HH with two hex digits; anything else literal), into out (room for len + 1 bytes). False when
 * the decoded path would hold a NUL or another control character; sg_edge_check_head has already
 * refused such a target, so for an accepted head this always succeeds. */
bool sg_edge_decode_path(const char *target, size_t len, char *out, size_t *out_len);

/* ---- connections and bodies (edge.c) -------------------------------------------------------- */

typedef struct sg_edge sg_edge;
typedef struct sg_edge_conn sg_edge_conn;

/* Where a connection is; the watchdog acts on the first two only. */
typedef enum sg_edge_phase {
    SG_EDGE_HEAD = 0, /* reading a request head: SG_HTTP_HEADER_TIMEOUT_S from its start */
    SG_EDGE_BODY,     /* reading a body: at least SG_HTTP_MIN_BODY_RATE in every window */
    SG_EDGE_APP,      /* the request is ours (dispatch, queued work, the response) */
    SG_EDGE_IDLE,     /* keep-alive between requests: libmicrohttpd's SG_HTTP_IDLE_S applies; a
                         next request that starts arriving becomes SG_EDGE_HEAD */
    SG_EDGE_UPGRADED, /* a WebSocket: ws_conn.c owns the socket */
} sg_edge_phase;

sg_edge *sg_edge_new(const sg_config *cfg, sg_error *err);
/* Stops the watchdog; call after libmicrohttpd has closed every connection. */
void sg_edge_free(sg_edge *e);

/* The accept policy (libmicrohttpd's accept callback): false refuses the address when it holds
 * SG_MAX_CONNECTIONS_PER_IP connections, or when fewer than SG_CONNECTION_RESERVE slots are left
 * and it holds at least its fair share (the open connections over the addresses holding them). */
bool sg_edge_admit(sg_edge *e, const struct sockaddr *addr, socklen_t len);

/* A new connection (fd, peer address): registered in phase HEAD. NULL when out of memory (the
 * connection is then simply not watched). */
sg_edge_conn *sg_edge_conn_open(sg_edge *e, int fd, const struct sockaddr *addr);
/* Unregisters the connection; libmicrohttpd closes fd only after this returns, so the watchdog
 * never shuts down a descriptor that was reused. */
void sg_edge_conn_close(sg_edge *e, sg_edge_conn *c);
void sg_edge_conn_set_phase(sg_edge *e, sg_edge_conn *c, sg_edge_phase phase);
/* n body bytes arrived (the minimum-rate check counts them). */
void sg_edge_conn_body(sg_edge_conn *c, size_t n);

/* The budget of request bodies in memory (SG_MAX_INFLIGHT_BODY_BYTES): false when n more bytes
 * would pass it (nothing is taken then). Every take is given back exactly once. */
bool sg_edge_budget_take(sg_edge *e, size_t n);
void sg_edge_budget_give(sg_edge *e, size_t n);

#endif
