/* Shared by the server's files: http.c (libmicrohttpd glue: request lifecycle, bodies, responses),
 * routes.c (the route table), request.c (reading requests) and the handlers in api.c, dat.c and
 * ws_conn.c. Not a public interface. */
#ifndef SG_SERVER_INTERNAL_H
#define SG_SERVER_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "agent/backends.h"
#include "media/audio.h"
#include "server/sse.h"
#include "server/telemetry.h"
#include "server/config.h"
#include "server/degrade.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/session.h"
#include "server/workq.h"

struct sg_server {
    const sg_config *cfg;
    const sg_backends *b;
    struct MHD_Daemon *daemon;
    int port;
    sg_session_store *sessions;  /* the session store (server/session.h) */
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
    struct sg_edge *edge;      /* connections, the watchdog, the body budget (edge.c) */
    struct sg_degrade *degrade;/* the latency budget's ladder (degrade.c) */
    struct sg_telemetry *telemetry; /* the clients' last reports (telemetry.c) */
};

typedef struct sg_req sg_req;
typedef void sg_handler(sg_req *r);

/* ---- the route table (routes.c) ----------------------------------------------------------------
 * A route is one row: methods, path template, handler, flags, body kind. The matcher, the
 * dispatcher, 404 / 405 (Allow is built from the rows), auth and X-Session-ID all read the row. */

enum { SG_HTTP_GET = 1, SG_HTTP_HEAD = 2, SG_HTTP_POST = 4, SG_HTTP_DELETE = 8 };

enum {
    SG_ROUTE_OPEN = 1 << 0,       /* answered without the API key (/health, /ready) */
    SG_ROUTE_MODELS = 1 << 1,     /* model work on the work queue: 503 MODEL_UNAVAILABLE (with
                                     Retry-After: 1) until the models are loaded */
    SG_ROUTE_SESSION = 1 << 2,    /* the path's {id} names a session: looked up before the handler
                                     (404 INVALID_SESSION, 429 RATE_LIMITED) into r->session */
    SG_ROUTE_SESSION_ID = 1 << 3, /* answers carry X-Session-ID when the request's session id is
                                     well-formed (from the path, the body or a new session) */
    SG_ROUTE_WEBSOCKET = 1 << 4,  /* an Upgrade: websocket GET; the handler answers 101 and hands
                                     the socket to ws_conn.c */
    SG_ROUTE_OPENAI = 1 << 5,     /* OpenAI's API (/v1): errors in its shape
                                     {"error":{"message","type","param","code"}} (openai.c) */
};

/* What a route reads as its body (sg_req_body). A multipart kind would go here. */
typedef enum sg_body_kind {
    SG_BODY_NONE = 0,       /* none: a body sent anyway is ignored */
    SG_BODY_JSON,           /* a JSON object; empty is {}; another media type is 415 */
    SG_BODY_JSON_OR_IMAGE,  /* JSON, or the raw bytes of an image/jpeg or image/png */
    SG_BODY_JSON_OR_AUDIO,  /* JSON, or the raw bytes of an audio/wav, audio/flac or audio/ogg */
    SG_BODY_MULTIPART,      /* multipart/form-data (server/multipart.h), kept raw in r->body */
} sg_body_kind;

typedef struct sg_route {
    unsigned methods;             /* SG_HTTP_*; several rows may share a path with other methods */
    const char *path;             /* literal segments and {id}; also the metrics route label */
    sg_handler *handler;
    unsigned flags;               /* SG_ROUTE_* */
    sg_body_kind body;
} sg_route;

extern const sg_route sg_routes[];
extern const size_t sg_routes_count;

/* The row for method + url: one whose path and method match, else the first whose path matches
 * (the dispatcher answers 405), else NULL (404). session_id: the path's {id} when it is 1..39
 * bytes, else "". */
const sg_route *sg_route_match(const char *method, const char *url, char session_id[40]);
/* Handles a complete request. Either fills the response (r->done) or hands the work to the queue
 * after suspending the connection (the worker resumes it). */
void sg_route_dispatch(sg_req *r);

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
    bool speak;                /* "speak": true: the answer's speech too (agent/tts.h) */
    int speak_format;          /* its sg_tts_format ("speak_format": "ogg" | "wav") */
    bool client_keyframe;      /* POST /frame: the client's pre-filter marked it a keyframe */
    long long dat_seq;         /* DAT frame chunk: its sequence number */
    char *dat_turn_id;         /* DAT turn: the client's turn_id */
    /* OpenAI's routes (openai.c, openai_audio.c) */
    char *system, *history;    /* chat: the system messages, the earlier turns */
    double temperature, top_p; /* chat: sampling (temperature 0: greedy) */
    unsigned long long seed;
    bool has_seed;
    bool v1_stream;            /* chat: "stream": true */
    bool v1_usage_chunk;       /* chat: stream_options.include_usage */
    bool v1_base64;            /* embeddings: encoding_format "base64" */
    double v1_speed;           /* speech: speaking rate (0: the voice's own) */
    const void *v1_backend;    /* the backend the request's model names (NULL: the responder) */
    char *v1_model;            /* the model id to answer with */
    json_t *v1_inputs;         /* embeddings: the inputs (array of strings) */
    void *v1_audio;            /* transcriptions: its parsed form (openai_audio.c) */
    void (*v1_audio_free)(void *);
} sg_work_input;

struct sg_req {
    sg_server *srv;
    struct MHD_Connection *conn;
    struct sg_edge_conn *edge_conn; /* the connection's registry entry (edge.c), or NULL */
    bool started;              /* the head is complete: the first call has run */
    char *target;              /* the raw request-target, copied before libmicrohttpd decodes
                                  it (NULL when over SG_HTTP_MAX_TARGET_BYTES) */
    size_t target_len;
    const char *target_at;     /* where libmicrohttpd holds it (the raw-NUL check) */
    char *path;                /* its whole decoded path, owned */
    const sg_route *route;     /* NULL: no such route */
    const char *route_name;    /* the row's path template ("other" without one), for metrics */
    const char *method;
    const char *url;           /* the decoded path (path), "" before the head is checked */
    char session_id[40];
    char request_id[130];
    double t_start;
    bool accept_gzip;
    char content_type[128];
    /* body */
    char *body;
    size_t body_len, body_cap;
    bool has_body;             /* the head announced one (Content-Length > 0 or chunked) */
    bool keeps_body;           /* the route reads it; otherwise it is read and dropped */
    size_t budget;             /* bytes of SG_MAX_INFLIGHT_BODY_BYTES held, given back at the end */
    bool too_large;
    bool over_budget;          /* a chunked body outgrew the budget: 503 once read */
    bool queued;               /* sg_req_submit put its work on the queue in this call */
    /* a streamed answer (Accept: text/event-stream): the events' buffer (sse.h), NULL otherwise */
    struct sg_sse *sse;
    /* session work */
    sg_session *session;
    sg_work_input in;
    /* response */
    bool done;
    int status;
    json_t *json;              /* response body, owned */
    char *text;                /* alternative plain-text body (Prometheus), owned */
    size_t text_len;           /* its length when it is binary (audio); 0: strlen */
    const char *text_type;
    int retry_after;           /* > 0: Retry-After header */
    char allow[32];            /* Allow header for 405 ("": none) */
    /* WebSocket upgrade (ws_conn.c) */
    const char *http_version;  /* "HTTP/1.1", owned by libmicrohttpd */
    struct sg_ws_conn *ws;     /* set: answer 101 and hand the socket to this connection */
    char ws_accept[32];        /* Sec-WebSocket-Accept */
    bool ws_version_header;    /* 426: send Sec-WebSocket-Version: 13 */
};

/* http.c: the request carries the API key (always true when auth is off). */
bool sg_req_has_key(sg_req *r);
/* Sets an error response {"detail","error"} (OpenAI's shape on its routes: openai.c). */
void sg_req_error(sg_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Maps a library status to an HTTP error response; domain_code is used for SG_EINVAL-like input
 * errors (INVALID_IMAGE, INVALID_AUDIO or INVALID_REQUEST). */
void sg_req_fail(sg_req *r, sg_status st, const char *domain_code, const sg_error *err);
/* How a library status answers: returns the HTTP status and sets *code (domain_code for
 * SG_EINVAL; 500 INTERNAL_ERROR for a status that means a bug). */
int sg_http_status_of(sg_status st, const char *domain_code, const char **code);
void sg_req_json(sg_req *r, int status, json_t *body);

/* ---- reading a request (request.c) ------------------------------------------------------------
 * Each returns false after setting the error response (400 malformed, 415 media type, 422
 * type/range, 413 limit, 404/429 session, 503 out of memory). */

void sg_work_input_free(sg_work_input *in);
/* The body as the route's row says: *json is the parsed object (an empty body is {}), or NULL
 * when a JSON_OR_IMAGE / JSON_OR_AUDIO row got raw bytes of its media type, left in r->body. */
bool sg_req_body(sg_req *r, json_t **json);
/* Moves the raw body into *out (false when it is empty). */
bool sg_req_take_body(sg_req *r, uint8_t **out, size_t *out_len);
/* The container a raw audio body's media type names (its bytes must agree). */
sg_audio_format sg_req_raw_audio_format(const sg_req *r);
/* Optional fields: absent or null leaves *out NULL (string) / *present false (int) / *out as it
 * was (bool). alias: a second accepted name (the canonical one wins), or NULL. A string holding
 * a NUL (\u0000) is 400: it is never passed on cut short. */
bool sg_req_opt_string(sg_req *r, json_t *obj, const char *name, const char *alias,
                       const char **out);
bool sg_req_opt_int(sg_req *r, json_t *obj, const char *name, long lo, long hi, bool *present,
                    long *out);
bool sg_req_opt_bool(sg_req *r, json_t *obj, const char *name, bool *out);
/* Strict base64 field s named name: 413 over limit (named limit_name), 400 with code when it
 * does not decode. */
bool sg_req_b64(sg_req *r, const char *name, const char *s, const char *code, size_t limit,
                const char *limit_name, uint8_t **out, size_t *out_len);
/* An error's detail as sent (sg_req_error, WebSocket error messages): where the Python runtime
 * had a phrase for it (404 INVALID_SESSION "Unknown session id", 400 INVALID_AUDIO "Invalid audio
 * payload", 400 INVALID_IMAGE "Invalid image payload") the detail starts with it, then ": " and
 * ours; otherwise detail as it is. */
void sg_error_detail(char *out, size_t cap, int status, const char *code, const char *detail);
/* 404 INVALID_SESSION for r->session_id. */
void sg_req_unknown_session(sg_req *r);
/* Looks up r->session_id into r->session (404 INVALID_SESSION, 429 RATE_LIMITED). */
bool sg_req_lookup_session(sg_req *r);
/* Creates a session honouring the X-Privacy-* headers (422 on a bad header, 503 at the cap). */
bool sg_req_new_session(sg_req *r, sg_session **out, sg_privacy *p);
/* The X-Client-Keyframe header of the request (absent = false). false after a 422 for a value
 * that is not true/false/1/0/yes/no/on/off. */
bool sg_req_client_keyframe_header(sg_req *r, bool *out);
/* The request asks for Server-Sent Events (its Accept names text/event-stream). */
bool sg_req_wants_events(sg_req *r);
/* Records the X-Client-Telemetry header of a request on r->session_id's session (absent: nothing);
 * false after a 422 for a header that does not parse. */
bool sg_req_telemetry(sg_req *r);

/* ---- OpenAI's API (openai.c, openai_audio.c) ---------------------------------------------------- */
/* Whether errors of this request take OpenAI's shape: a /v1 row, or a /v1/... path with none. */
bool sg_req_is_openai(const sg_req *r);
/* OpenAI's error body for one of our codes: {"error":{"message","type","param":null,"code"}}. */
json_t *sg_openai_error_json(int status, const char *code, const char *message);
sg_handler sg_handle_v1_models, sg_handle_v1_model, sg_handle_v1_chat, sg_handle_v1_embeddings,
    sg_handle_v1_speech, sg_handle_v1_transcriptions;

/* ---- the handlers: api.c (the API of ../shared/API.md), dat.c, ws_conn.c ----------------------
 * A handler runs on the HTTP thread once the dispatcher has checked what its row's flags ask; it
 * either answers (r->done) or hands work to the queue (sg_req_submit). */
sg_handler sg_handle_health, sg_handle_ready, sg_handle_metrics, sg_handle_metrics_summary,
    sg_handle_metrics_prometheus;
sg_handler sg_handle_sessions_list, sg_handle_sessions_create, sg_handle_session_delete;
sg_handler sg_handle_frame, sg_handle_audio, sg_handle_query; /* query: /query and /multimodal */
sg_handler sg_handle_dat_session, sg_handle_dat_stream, sg_handle_dat_turn;
/* GET /ws/audio|frame/{id}: the handshake (400/426), the ASR model (503), the cap (503); on
 * success r->ws is set and r->status is 101. */
sg_handler sg_handle_ws_audio, sg_handle_ws_frame;

/* api.c: runs a turn on r->session under its work lock (the same path for /query, /multimodal
 * and the DAT turn): keeps what privacy allows, records metrics. Returns the result object with
 * session_id, or NULL after setting the error response. *speech (may be NULL): the audio had
 * speech. */
json_t *sg_req_run_turn(sg_req *r, const sg_turn_input *ti, bool *speech);
/* api.c: an ingested frame's metrics (frame and keyframe counters, vision and ingest latency);
 * returns the ingest's total milliseconds. */
double sg_frame_recorded(sg_server *srv, const sg_frame_result *fr, double t_start);

/* ws_conn.c: WebSockets. */
typedef struct sg_ws_hub sg_ws_hub;
typedef struct sg_ws_conn sg_ws_conn;
sg_ws_hub *sg_ws_hub_new(void);
void sg_ws_hub_free(sg_ws_hub *h);
/* WebSockets open or being upgraded (what SG_MAX_WEBSOCKETS caps); 0 for a NULL hub. */
int sg_ws_open_count(sg_ws_hub *h);
/* http.c: the 101 response for r->ws. */
enum MHD_Result sg_ws_send_upgrade(sg_req *r);
/* http.c's completion callback: frees a connection that never got its 101 out. */
void sg_ws_request_done(sg_req *r);
/* Graceful stop: close 1001 on every socket, wait for their threads (up to grace_s, then force). */
void sg_ws_stop_all(sg_server *s, double grace_s);
/* DELETE /sessions/{id}: its sockets close with 1000 "session deleted". */
void sg_ws_session_deleted(sg_server *s, const char *session_id);
/* api.c: POST /frame's work (decode, keyframe gate, vision, privacy, metrics) for /ws/frame
 * too: the response body, or NULL with *st and err set. t_start: when the frame arrived (ms).
 * client_keyframe: the client's own keyframe pre-filter passed this frame, so it is a keyframe
 * (forced through the gate, like a query's image; see docs/ARCHITECTURE.md). */
json_t *sg_frame_work(sg_server *srv, sg_session *s, const uint8_t *image, size_t len,
                      bool client_keyframe, double t_start, sg_status *st, sg_error *err);

/* http.c: hands fn(r) to the work queue with the connection suspended; answers 503 OVERLOADED
 * when the queue is full. */
void sg_req_submit(sg_req *r, void (*fn)(sg_req *r));

#endif
