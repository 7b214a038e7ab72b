/* The route table: a route is one row (methods, path template, handler, flags, body kind), and
 * the matcher, the dispatcher, 404 / 405 with Allow, auth (http.c) and X-Session-ID (http.c) all
 * read it. A new route is a row here plus its handler; docs/ARCHITECTURE.md "Routes" says which
 * flag does what. tests/test_config.c checks the rows against ../shared/API.md, tests/test_server.c
 * that each is reachable. */
#include "server/internal.h"

#include <stdio.h>
#include <string.h>

/* Short names for the table only: OPEN, MODELS, SID (X-Session-ID), WS are SG_ROUTE_* flags. */
#define GET SG_HTTP_GET
#define HEAD SG_HTTP_HEAD
#define POST SG_HTTP_POST
#define DELETE SG_HTTP_DELETE
#define OPEN SG_ROUTE_OPEN
#define MODELS SG_ROUTE_MODELS
#define SID SG_ROUTE_SESSION_ID
#define WORK (SG_ROUTE_MODELS | SG_ROUTE_SESSION | SG_ROUTE_SESSION_ID) /* work on the path's session */
#define WS SG_ROUTE_WEBSOCKET
#define V1 SG_ROUTE_OPENAI
#define V1WORK (SG_ROUTE_OPENAI | SG_ROUTE_MODELS)

const sg_route sg_routes[] = {
    /* methods   path                          handler                        flags        body */
    {GET | HEAD, "/health",                   sg_handle_health,             OPEN,        SG_BODY_NONE},
    {GET | HEAD, "/ready",                    sg_handle_ready,              OPEN,        SG_BODY_NONE},
    {GET | HEAD, "/sessions",                 sg_handle_sessions_list,      SID,         SG_BODY_NONE},
    {POST,       "/sessions",                 sg_handle_sessions_create,    SID,         SG_BODY_JSON},
    {DELETE,     "/sessions/{id}",            sg_handle_session_delete,     SID,         SG_BODY_NONE},
    {POST,       "/sessions/{id}/frame",      sg_handle_frame,              WORK,        SG_BODY_JSON_OR_IMAGE},
    {POST,       "/sessions/{id}/audio",      sg_handle_audio,              WORK,        SG_BODY_JSON_OR_AUDIO},
    {POST,       "/sessions/{id}/query",      sg_handle_query,              WORK,        SG_BODY_JSON},
    {POST,       "/sessions/{id}/multimodal", sg_handle_query,              WORK,        SG_BODY_JSON},
    {GET | HEAD, "/metrics",                  sg_handle_metrics,            0,           SG_BODY_NONE},
    {GET | HEAD, "/metrics/summary",          sg_handle_metrics_summary,    0,           SG_BODY_NONE},
    {GET | HEAD, "/metrics/prometheus",       sg_handle_metrics_prometheus, 0,           SG_BODY_NONE},
    {GET,        "/ws/audio/{id}",            sg_handle_ws_audio,           WORK | WS,   SG_BODY_NONE},
    {GET,        "/ws/frame/{id}",            sg_handle_ws_frame,           WORK | WS,   SG_BODY_NONE},
    /* the DAT wire protocol names the session in the body: its handlers look it up */
    {POST,       "/dat/session",              sg_handle_dat_session,        SID,         SG_BODY_JSON},
    {POST,       "/dat/stream",               sg_handle_dat_stream,         MODELS | SID, SG_BODY_JSON},
    {POST,       "/dat/turn/complete",        sg_handle_dat_turn,           MODELS | SID, SG_BODY_JSON},
    /* OpenAI's API (openai.c): its error shape; {id} of /v1/models/{id} is a model id */
    {GET | HEAD, "/v1/models",                sg_handle_v1_models,          V1,          SG_BODY_NONE},
    {GET | HEAD, "/v1/models/{id}",           sg_handle_v1_model,           V1,          SG_BODY_NONE},
    {POST,       "/v1/chat/completions",      sg_handle_v1_chat,            V1WORK,      SG_BODY_JSON},
    {POST,       "/v1/embeddings",            sg_handle_v1_embeddings,      V1WORK,      SG_BODY_JSON},
    {POST,       "/v1/audio/speech",          sg_handle_v1_speech,          V1WORK,      SG_BODY_JSON},
    {POST,       "/v1/audio/transcriptions",  sg_handle_v1_transcriptions,  V1WORK,      SG_BODY_MULTIPART},
    {POST,       "/v1/audio/translations",    sg_handle_v1_transcriptions,  V1WORK,      SG_BODY_MULTIPART},
};
#undef GET
#undef HEAD
#undef POST
#undef DELETE
#undef OPEN
#undef MODELS
#undef SID
#undef WORK
#undef WS
#undef V1
#undef V1WORK
const size_t sg_routes_count = sizeof sg_routes / sizeof *sg_routes;

#define MAX_SEGMENTS 5 /* one more than the longest template: a longer path matches nothing */

/* The path's segments, one trailing slash ignored; false when it has more than MAX_SEGMENTS. */
typedef struct segments {
    const char *at[MAX_SEGMENTS];
    size_t len[MAX_SEGMENTS];
    int n;
} segments;

static bool split_path(const char *url, segments *sg)
{
    sg->n = 0;
    size_t total = strlen(url);
    if (total > 1 && url[total - 1] == '/')
        total--;
    const char *p = url + 1, *end = url + total;
    while (p < end && sg->n < MAX_SEGMENTS) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        if (!q)
            q = end;
        sg->at[sg->n] = p;
        sg->len[sg->n] = (size_t)(q - p);
        sg->n++;
        p = q + 1;
    }
    return p >= end;
}

/* Whether the segments fit template tmpl; *id is the index of its {id} segment (-1: none). */
static bool path_fits(const char *tmpl, const segments *sg, int *id)
{
    *id = -1;
    const char *t = tmpl + 1;
    for (int i = 0; i < sg->n; i++) {
        if (!*t)
            return false;
        const char *slash = strchr(t, '/');
        size_t tlen = slash ? (size_t)(slash - t) : strlen(t);
        if (tlen == 4 && memcmp(t, "{id}", 4) == 0)
            *id = i;
        else if (tlen != sg->len[i] || memcmp(t, sg->at[i], tlen) != 0)
            return false;
        t += tlen + (slash ? 1 : 0);
    }
    return !*t;
}

/* Bit i of a row's methods is method_names[i]; that is also the order of Allow. */
static const char *const method_names[] = {"GET", "HEAD", "POST", "DELETE"};
#define N_METHODS (sizeof method_names / sizeof *method_names)

static unsigned method_bit(const char *m)
{
    for (unsigned i = 0; i < N_METHODS; i++)
        if (strcmp(m, method_names[i]) == 0)
            return 1u << i;
    return 0;
}

const sg_route *sg_route_match(const char *method, const char *url, char session_id[40])
{
    session_id[0] = 0;
    segments sg;
    if (!url || url[0] != '/' || !split_path(url, &sg))
        return NULL;
    const sg_route *row = NULL;
    int row_id = -1;
    const unsigned want = method ? method_bit(method) : 0;
    for (size_t k = 0; k < sg_routes_count; k++) {
        int id;
        if (!path_fits(sg_routes[k].path, &sg, &id))
            continue;
        if (!row || (sg_routes[k].methods & want)) {
            row = &sg_routes[k];
            row_id = id;
        }
        if (sg_routes[k].methods & want)
            break;
    }
    if (row && row_id >= 0 && sg.len[row_id] > 0 && sg.len[row_id] < 40) {
        memcpy(session_id, sg.at[row_id], sg.len[row_id]);
        session_id[sg.len[row_id]] = 0;
    }
    return row;
}

/* 405: Allow lists the methods of every row with this row's path. */
static void method_not_allowed(sg_req *r)
{
    unsigned allowed = 0;
    for (size_t k = 0; k < sg_routes_count; k++)
        if (strcmp(sg_routes[k].path, r->route->path) == 0)
            allowed |= sg_routes[k].methods;
    size_t n = 0;
    r->allow[0] = 0;
    for (unsigned i = 0; i < N_METHODS; i++)
        if (allowed & (1u << i))
            n += (size_t)snprintf(r->allow + n, sizeof r->allow - n, "%s%s", n ? ", " : "",
                                  method_names[i]);
    sg_req_error(r, 405, "INVALID_REQUEST", "method %s is not allowed here (allowed: %s)", r->method,
                 r->allow);
}

void sg_route_dispatch(sg_req *r)
{
    const sg_route *row = r->route;
    if (!row) {
        sg_req_error(r, 404, "INVALID_REQUEST", "no such route: %s %.200s", r->method, r->url);
        return;
    }
    if (!(row->methods & method_bit(r->method))) {
        method_not_allowed(r);
        return;
    }
    if ((row->flags & SG_ROUTE_MODELS) && !atomic_load(&r->srv->ready)) {
        sg_req_error(r, 503, "MODEL_UNAVAILABLE", "models are still loading; retry shortly");
        r->retry_after = 1;
        return;
    }
    if ((row->flags & SG_ROUTE_SESSION) && (!sg_req_lookup_session(r) || !sg_req_telemetry(r)))
        return;
    row->handler(r);
}
