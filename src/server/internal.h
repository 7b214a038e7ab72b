/* Shared between http.c (libmicrohttpd glue: request lifecycle, bodies, responses) and routes.c
 * (the API's handlers). Not a public interface. */
#ifndef SG_SERVER_INTERNAL_H
#define SG_SERVER_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "agent/backends.h"
#include "media/audio.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/session.h"
#include "server/workq.h"

struct sg_server {
    const sg_config *cfg;
    const sg_backends *b;
    struct MHD_Daemon *daemon;
    int port;
    sg_session_table *sessions;
    sg_metrics *metrics;
    sg_workq *workq;
    atomic_bool ready;
    atomic_int inflight;       /* requests between first callback and completion */
    double started_ms;
    pthread_t reaper;
    bool reaper_running;
    pthread_mutex_t reaper_lock;
    pthread_cond_t reaper_cond;
    bool stopping;
    atomic_bool draining;      /* graceful stop under way: new requests get 503 */
    struct sg_ws_hub *ws;      /* open WebSockets (ws_conn.c) */
};

typedef enum sg_route {
    SG_ROUTE_NONE = 0,
    SG_ROUTE_HEALTH,
    SG_ROUTE_READY,
    SG_ROUTE_SESSIONS,
    SG_ROUTE_SESSION,
    SG_ROUTE_FRAME,
    SG_ROUTE_AUDIO,
    SG_ROUTE_QUERY,
    SG_ROUTE_DAT_SESSION,      /* the DAT routes sit before MULTIMODAL: http.c sends X-Session-ID */
    SG_ROUTE_DAT_STREAM,       /* for the routes from SESSIONS to MULTIMODAL */
    SG_ROUTE_DAT_TURN,
    SG_ROUTE_MULTIMODAL,
    SG_ROUTE_METRICS,
    SG_ROUTE_METRICS_SUMMARY,
    SG_ROUTE_METRICS_PROMETHEUS,
    SG_ROUTE_WS_AUDIO,         /* GET /ws/audio/{id} (WebSocket, ws_conn.c) */
    SG_ROUTE_WS_FRAME,         /* GET /ws/frame/{id} */
} sg_route;

/* Parsed inputs of a session-work request, filled in the HTTP thread and consumed by a worker. */
typedef struct sg_work_input {
    char *text;
    uint8_t *image;
    size_t image_len;
    uint8_t *audio;
    size_t audio_len;
    sg_audio_format audio_format;
    int sample_rate;
    char *language;
    bool cloud_offload;
    int max_tokens;
    bool client_keyframe;      /* POST /frame: the client's pre-filter marked it a keyframe */
    long long dat_seq;         /* DAT frame chunk: its sequence number */
    char *dat_turn_id;         /* DAT turn: the client's turn_id */
} sg_work_input;

typedef struct sg_req {
    sg_server *srv;
    struct MHD_Connection *conn;
    sg_route route;
    const char *route_name;    /* template, for metrics */
    const char *method;
    const char *url;           /* owned by libmicrohttpd for the request's lifetime */
    char session_id[40];
    char request_id[130];
    double t_start;
    bool accept_gzip;
    char content_type[128];
    /* body */
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    /* session work */
    sg_session *session;
    sg_work_input in;
    /* response */
    bool done;
    int status;
    json_t *json;              /* response body, owned */
    char *text;                /* alternative plain-text body (Prometheus), owned */
    const char *text_type;
    int retry_after;           /* > 0: Retry-After header */
    const char *allow;         /* Allow header for 405 */
    /* WebSocket upgrade (ws_conn.c) */
    const char *http_version;  /* "HTTP/1.1", owned by libmicrohttpd */
    struct sg_ws_conn *ws;     /* set: answer 101 and hand the socket to this connection */
    char ws_accept[32];        /* Sec-WebSocket-Accept */
    bool ws_version_header;    /* 426: send Sec-WebSocket-Version: 13 */
} sg_req;

/* Sets an error response {"detail","error"}. */
void sg_req_error(sg_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Maps a library status to an HTTP error response; domain_code is used for SG_EINVAL-like input
 * errors (INVALID_IMAGE, INVALID_AUDIO or INVALID_REQUEST). */
void sg_req_fail(sg_req *r, sg_status st, const char *domain_code, const sg_error *err);
void sg_req_json(sg_req *r, int status, json_t *body);

/* routes.c */
sg_route sg_route_match(const char *url, char session_id[40], const char **route_name);
/* Handles a complete request. Either fills the response (r->done) or hands the work to the queue
 * after suspending the connection (the worker resumes it). */
void sg_route_dispatch(sg_req *r);
void sg_work_input_free(sg_work_input *in);

/* routes.c helpers shared with dat.c: each returns false after setting the error response
 * (400 malformed, 415 media type, 422 type/range, 413 limit, 404/429 session). */
bool sg_req_parse_json(sg_req *r, json_t **out);
bool sg_req_opt_string(sg_req *r, json_t *obj, const char *name, const char **out);
bool sg_req_opt_int(sg_req *r, json_t *obj, const char *name, long lo, long hi, bool *present,
                    long *out);
bool sg_req_opt_bool(sg_req *r, json_t *obj, const char *name, bool *out);
bool sg_req_b64(sg_req *r, const char *name, const char *s, const char *code, size_t limit,
                const char *limit_name, uint8_t **out, size_t *out_len);
/* Looks up r->session_id into r->session (404 INVALID_SESSION, 429 RATE_LIMITED). */
bool sg_req_lookup_session(sg_req *r);
/* Creates a session honouring the X-Privacy-* headers (422 on a bad header, 503 at the cap). */
bool sg_req_new_session(sg_req *r, sg_session **out, sg_privacy *p);
/* Runs a turn on r->session under its lock (the same path for /query, /multimodal and the DAT
 * turn): keeps what privacy allows, records metrics. Returns the result object with session_id,
 * or NULL after setting the error response. *speech (may be NULL): the audio had speech. */
json_t *sg_req_run_turn(sg_req *r, const sg_turn_input *ti, bool *speech);

/* ws_conn.c: WebSockets. */
typedef struct sg_ws_hub sg_ws_hub;
typedef struct sg_ws_conn sg_ws_conn;
sg_ws_hub *sg_ws_hub_new(void);
void sg_ws_hub_free(sg_ws_hub *h);
/* WebSockets open or being upgraded (what SG_MAX_WEBSOCKETS caps); 0 for a NULL hub. */
int sg_ws_open_count(sg_ws_hub *h);
/* GET /ws/audio|frame/{id} once method, readiness and r->session are checked: the handshake
 * (400/426), the ASR model (503), the cap (503); on success r->ws is set and r->status is 101. */
void sg_ws_dispatch(sg_req *r);
/* http.c: the 101 response for r->ws. */
enum MHD_Result sg_ws_send_upgrade(sg_req *r);
/* http.c's completion callback: frees a connection that never got its 101 out. */
void sg_ws_request_done(sg_req *r);
/* Graceful stop: close 1001 on every socket, wait for their threads (up to grace_s, then force). */
void sg_ws_stop_all(sg_server *s, double grace_s);
/* DELETE /sessions/{id}: its sockets close with 1000 "session deleted". */
void sg_ws_session_deleted(sg_server *s, const char *session_id);
/* routes.c: POST /frame's work (decode, keyframe gate, vision, privacy, metrics) for /ws/frame
 * too: the response body, or NULL with *st and err set. t_start: when the frame arrived (ms).
 * client_keyframe: the client's own keyframe pre-filter passed this frame, so it is a keyframe
 * (forced through the gate, like a query's image; see docs/ARCHITECTURE.md). */
json_t *sg_frame_work(sg_server *srv, sg_session *s, const uint8_t *image, size_t len,
                      bool client_keyframe, double t_start, sg_status *st, sg_error *err);
/* routes.c: the X-Client-Keyframe header of the request (absent = false). false after a 422 for
 * a value that is not true/false/1/0/yes/no/on/off. */
bool sg_req_client_keyframe_header(sg_req *r, bool *out);

/* dat.c: POST /dat/session, /dat/stream, /dat/turn/complete (method already checked). */
void sg_dat_dispatch(sg_req *r);

/* http.c: hands fn(r) to the work queue with the connection suspended; answers 503 OVERLOADED
 * when the queue is full. */
void sg_req_submit(sg_req *r, void (*fn)(sg_req *r));

#endif
