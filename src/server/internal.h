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
    SG_ROUTE_MULTIMODAL,
    SG_ROUTE_METRICS,
    SG_ROUTE_METRICS_SUMMARY,
    SG_ROUTE_METRICS_PROMETHEUS,
    SG_ROUTE_LATER,            /* /ws/..., /dat/...: part of the contract, not in this build */
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

/* http.c: hands fn(r) to the work queue with the connection suspended; answers 503 OVERLOADED
 * when the queue is full. */
void sg_req_submit(sg_req *r, void (*fn)(sg_req *r));

#endif
