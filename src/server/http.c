/* libmicrohttpd glue: the request lifecycle (headers -> body -> dispatch -> response), the edge's
 * checks of the request head and its connection hooks (server/edge.h), body size limits and the
 * body budget enforced before reading, auth, request ids, gzip, suspension around queued model
 * work, the WebSocket upgrade (the socket itself is ws_conn.c's), the idle-session reaper and
 * graceful stop. */
#include "server/internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/uuid.h"
#include "server/edge.h"

/* ---- responses ---------------------------------------------------------------------------- */

void sg_req_json(sg_req *r, int status, json_t *body)
{
    json_decref(r->json);
    r->json = body;
    r->status = status;
    r->done = true;
}

void sg_req_error(sg_req *r, int status, const char *code, const char *fmt, ...)
{
    char raw[512], detail[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    if (sg_req_is_openai(r)) {
        if (status == 422) /* OpenAI has no 422: a value of the wrong type or range is a 400 */
            status = 400;
        json_t *e = sg_openai_error_json(status, code, raw);
        sg_req_json(r, status, e ? e : json_pack("{s:{s:s}}", "error", "message", "error"));
        return;
    }
    sg_error_detail(detail, sizeof detail, status, code, raw); /* the Python runtime's words first */
    json_t *body = json_object();
    /* detail may hold bytes from the request; jansson wants UTF-8, so fall back to plain text */
    json_t *d = json_string(detail);
    json_object_set_new(body, "detail", d ? d : json_string("invalid request"));
    json_object_set_new(body, "error", json_string(code));
    sg_req_json(r, status, body);
}

int sg_http_status_of(sg_status st, const char *domain_code, const char **code)
{
    static const struct {
        sg_status st;
        int http;
        const char *code;
    } map[] = {
        {SG_EIMAGE, 400, "INVALID_IMAGE"},        {SG_EAUDIO, 400, "INVALID_AUDIO"},
        {SG_ETOOBIG, 413, "PAYLOAD_TOO_LARGE"},    {SG_ERANGE, 422, "INVALID_REQUEST"},
        {SG_EUNSUPPORTED, 503, "MODEL_UNAVAILABLE"}, {SG_ENOMEM, 503, "OVERLOADED"},
        {SG_EUNAVAILABLE, 503, "STORE_UNAVAILABLE"}, {SG_EBUSY, 503, "OVERLOADED"},
        /* a session whose stored state cannot be read is gone for the client: it makes a new one */
        {SG_ECORRUPT, 404, "INVALID_SESSION"},
    };
    *code = domain_code;
    if (st == SG_EINVAL)
        return 400;
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (map[i].st == st) {
            *code = map[i].code;
            return map[i].http;
        }
    *code = "INTERNAL_ERROR";
    return 500;
}

void sg_req_fail(sg_req *r, sg_status st, const char *domain_code, const sg_error *err)
{
    const char *msg = err && err->msg[0] ? err->msg : sg_status_name(st);
    const char *code;
    int http = sg_http_status_of(st, domain_code, &code);
    if (http == 500)
        sg_log(SG_LOG_ERROR, "request %s: internal error: %s", r->request_id, msg);
    sg_req_error(r, http, code, "%s", msg);
    if (st == SG_ENOMEM || st == SG_EUNAVAILABLE || st == SG_EBUSY)
        r->retry_after = r->srv->cfg->retry_after_s;
    if (st == SG_EUNAVAILABLE || st == SG_ECORRUPT) {
        /* smartglass_store_errors_total / _store_up: what the alert on the store reads */
        sg_metrics_store_error(r->srv->metrics);
        if (st == SG_EUNAVAILABLE)
            sg_metrics_store_up(r->srv->metrics, false);
    }
}

/* Accept-Encoding: gzip is acceptable unless given q=0. */
static bool accepts_gzip(const char *h)
{
    if (!h)
        return false;
    const char *p = h;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ')
            p++;
        size_t tlen = (size_t)(p - tok);
        bool match = (tlen == 4 && strncasecmp(tok, "gzip", 4) == 0) || (tlen == 1 && *tok == '*');
        double q = 1.0;
        while (*p && *p != ',') {
            if (*p == 'q' && p[1] == '=')
                q = strtod(p + 2, NULL);
            p++;
        }
        if (match && q > 0)
            return true;
    }
    return false;
}

static char *gzip_body(const char *in, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 4, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)len);
    char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static void release_body(sg_req *r);

/* A request's memory, its session reference and its share of the body budget. */
static void req_free(sg_req *r)
{
    sg_server *s = r->srv;
    if (r->started) {
        sg_ws_request_done(r);
        if (r->session)
            sg_session_release(r->session);
        json_decref(r->json);
        free(r->text);
        atomic_fetch_sub(&s->inflight, 1);
    }
    sg_sse_unref(r->sse);
    release_body(r);
    free(r->target);
    free(r->path);
    free(r);
}

/* 200 with the event stream of a streamed answer (sse.h). */
static enum MHD_Result send_events(sg_req *r)
{
    sg_server *s = r->srv;
    /* the body stays: the worker is still reading what was parsed from it (r->in) */
    struct MHD_Response *resp = sg_sse_response(r->sse);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* nginx: pass events at once */
    MHD_add_response_header(resp, "X-Request-ID", r->request_id);
    if (sg_uuid_valid(r->session_id))
        MHD_add_response_header(resp, "X-Session-ID", r->session_id);
    r->status = 200;
    enum MHD_Result ret = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    sg_metrics_request(s->metrics, r->route_name, 200);
    return ret;
}

static enum MHD_Result send_response(sg_req *r)
{
    sg_server *s = r->srv;
    /* the request's inputs are spent: their memory and budget go back before the client can see
     * the answer (and send the next body) */
    release_body(r);
    if (r->ws) {
        /* 101: the socket goes to the WebSocket (ws_conn.c); the watchdog leaves it alone */
        sg_edge_conn_set_phase(s->edge, r->edge_conn, SG_EDGE_UPGRADED);
        return sg_ws_send_upgrade(r);
    }
    char *body;
    size_t len;
    const char *ctype;
    if (r->text) {
        body = r->text;
        r->text = NULL;
        len = r->text_len ? r->text_len : strlen(body);
        ctype = r->text_type;
    } else {
        if (!r->json)
            sg_req_error(r, 500, "INTERNAL_ERROR", "no response was produced");
        body = json_dumps(r->json, JSON_COMPACT | JSON_REAL_PRECISION(9));
        if (!body) {
            /* only on out-of-memory or invalid UTF-8 in a string we built: report, do not crash */
            json_decref(r->json);
            r->json = NULL;
            r->status = 500;
            body = strdup("{\"detail\":\"could not serialise the response\",\"error\":\"INTERNAL_ERROR\"}");
            if (!body)
                return MHD_NO;
        }
        len = strlen(body);
        ctype = "application/json";
    }
    bool gz = false;
    if (r->accept_gzip && len >= s->cfg->gzip_min_bytes) {
        size_t zlen;
        char *z = gzip_body(body, len, &zlen);
        if (z && zlen < len) {
            free(body);
            body = z;
            len = zlen;
            gz = true;
        } else {
            free(z);
        }
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "X-Request-ID", r->request_id);
    /* only a well-formed id: the path segment is client bytes and must never reach a header raw */
    if (r->route && (r->route->flags & SG_ROUTE_SESSION_ID) && sg_uuid_valid(r->session_id))
        MHD_add_response_header(resp, "X-Session-ID", r->session_id);
    if (r->ws_version_header)
        MHD_add_response_header(resp, "Sec-WebSocket-Version", "13");
    if (gz)
        MHD_add_response_header(resp, "Content-Encoding", "gzip");
    if (len >= s->cfg->gzip_min_bytes || gz)
        MHD_add_response_header(resp, "Vary", "Accept-Encoding");
    if (r->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (r->allow[0])
        MHD_add_response_header(resp, "Allow", r->allow);
    if (r->route && (r->route->flags & SG_ROUTE_OPENAI)) {
        /* as OpenAI's API: the server's time on the request, arrival to answer */
        char pm[24];
        snprintf(pm, sizeof pm, "%.0f", sg_now_ms() - r->t_start);
        MHD_add_response_header(resp, "openai-processing-ms", pm);
    }
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);

    sg_metrics_request(s->metrics, r->route_name, r->status);
    if (r->status >= 400) /* by API code: a 503 OVERLOADED is not a 503 MODEL_UNAVAILABLE */
        sg_metrics_error_code(s->metrics, json_string_value(json_object_get(r->json, "error")));
    if (r->status == 503 || r->status == 429) {
        if (r->json && json_is_string(json_object_get(r->json, "error")) &&
            (strcmp(json_string_value(json_object_get(r->json, "error")), "OVERLOADED") == 0 ||
             strcmp(json_string_value(json_object_get(r->json, "error")), "RATE_LIMITED") == 0))
            sg_metrics_count(s->metrics, SG_COUNTER_REJECTED, 1);
        else
            sg_metrics_count(s->metrics, SG_COUNTER_ERRORS, 1);
    } else if (r->status >= 400) {
        sg_metrics_count(s->metrics, SG_COUNTER_ERRORS, 1);
    }
    return ret;
}

/* ---- auth --------------------------------------------------------------------------------- */

/* Constant-time in the secret's length: the loop always runs over the whole key and the result
 * does not depend on where the first difference is. */
static bool key_equals(const char *given, const char *key)
{
    size_t glen = strlen(given), klen = strlen(key);
    unsigned diff = (unsigned)(glen ^ klen);
    for (size_t i = 0; i < klen; i++)
        diff |= (unsigned char)key[i] ^ (unsigned char)(glen ? given[i % glen] : 0);
    return diff == 0;
}

bool sg_req_has_key(sg_req *r)
{
    const char *key = r->srv->cfg->api_key;
    if (!key[0])
        return true;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, r->srv->cfg->auth_header);
    if (h && key_equals(h, key))
        return true;
    const char *a = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ')
            a++;
        if (key_equals(a, key))
            return true;
    }
    return false;
}

static bool authorized(sg_req *r)
{
    return (r->route && (r->route->flags & SG_ROUTE_OPEN)) || sg_req_has_key(r);
}

/* ---- work queue --------------------------------------------------------------------------- */

typedef struct job {
    sg_req *r;
    void (*fn)(sg_req *r);
} job;

static void run_job(void *arg)
{
    job *j = arg;
    sg_req *r = j->r;
    sg_degrade *deg = r->srv->degrade;
    const double t0 = sg_now_ms();
    /* debug only (tests, loadtest/degrade.sh): the delay stands for service time no ladder step
     * saves, so queues form with tiny models */
    if (r->srv->cfg->debug_work_delay_ms > 0) {
        struct timespec ts = {r->srv->cfg->debug_work_delay_ms / 1000,
                              (long)(r->srv->cfg->debug_work_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    j->fn(r);
    free(j);
    sg_degrade_observe_job(deg, sg_now_ms() - t0); /* before the resume: r may go with it */
    if (r->sse) {
        /* a streamed answer: once it started, the response is the stream and the connection
         * runs on its own (sse.h); the request may even have completed already */
        const bool started = sg_sse_started(r->sse);
        if (sg_sse_job_done(r->sse)) {
            req_free(r);
            return;
        }
        if (started)
            return;
    }
    if (!r->done)
        sg_req_error(r, 500, "INTERNAL_ERROR", "handler produced no response");
    MHD_resume_connection(r->conn);
}

void sg_req_submit(sg_req *r, void (*fn)(sg_req *r))
{
    job *j = malloc(sizeof *j);
    if (!j) {
        sg_req_error(r, 503, "OVERLOADED", "out of memory");
        r->retry_after = r->srv->cfg->retry_after_s;
        return;
    }
    j->r = r;
    j->fn = fn;
    MHD_suspend_connection(r->conn);
    r->queued = true; /* before the worker can run: the HTTP thread reads it after dispatch */
    if (!sg_workq_submit(r->srv->workq, run_job, j)) {
        r->queued = false;
        free(j);
        if (r->sse)
            sg_sse_job_done(r->sse); /* no job: the request ends as any other */
        sg_req_error(r, 503, "OVERLOADED",
                     "server is at capacity (%d workers busy, queue of %d full); retry shortly",
                     r->srv->cfg->workers, r->srv->cfg->queue_depth);
        r->retry_after = r->srv->cfg->retry_after_s;
        MHD_resume_connection(r->conn);
    }
}

/* ---- request ids ------------------------------------------------------------------------- */

static void request_id_of(struct MHD_Connection *c, char out[130])
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-ID");
    if (h) {
        size_t n = strlen(h);
        bool ok = n > 0 && n < 129;
        for (size_t i = 0; ok && i < n; i++)
            ok = h[i] > 32 && h[i] < 127 && h[i] != '"' && h[i] != '\\';
        if (ok) {
            memcpy(out, h, n + 1);
            return;
        }
    }
    sg_uuid4(out);
}

/* ---- bodies ------------------------------------------------------------------------------- */

/* Frees the buffered body and gives its budget back; the rest of the body is read and dropped. */
static void drop_body(sg_req *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
    sg_edge_budget_give(r->srv->edge, r->budget);
    r->budget = 0;
}

/* The body and what was parsed from it (it may have moved into r->in): done with. */
static void release_body(sg_req *r)
{
    sg_work_input_free(&r->in);
    drop_body(r);
}

/* A body that grows past SG_MAX_BODY_BYTES (a chunked upload; or memory runs out) is answered 413
 * once it has been read, one that the budget cannot hold (a chunked upload) 503. The buffer is
 * charged to the budget as it grows: a Content-Length body was charged whole in the first call
 * and gets its buffer at once. */
static void append_body(sg_req *r, const char *data, size_t n)
{
    const size_t max = r->srv->cfg->max_body_bytes;
    if (r->body_len + n > max) {
        r->too_large = true;
        drop_body(r);
        return;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : r->budget ? r->budget : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        if (cap > r->budget && !sg_edge_budget_take(r->srv->edge, cap - r->budget)) {
            r->over_budget = true;
            drop_body(r);
            return;
        }
        if (cap > r->budget)
            r->budget = cap;
        char *p = realloc(r->body, cap);
        if (!p) {
            r->too_large = true;
            drop_body(r);
            return;
        }
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = 0;
}

/* ---- the request head --------------------------------------------------------------------- */

/* The header fields, in arrival order, duplicates included. */
typedef struct field_list {
    sg_http_field *at;
    size_t n, cap;
} field_list;

static enum MHD_Result collect_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    field_list *l = cls;
    if (l->n == l->cap)
        return MHD_NO;
    l->at[l->n++] = (sg_http_field){key, key_size, value ? value : "", value ? value_size : 0};
    return MHD_YES;
}

/* The edge's checks of the head (server/edge.h), on what libmicrohttpd parsed; false after
 * setting the refusal. On success r->url is the whole decoded path and *v says the framing. */
static bool head_acceptable(sg_req *r, const char *method, const char *version, sg_edge_verdict *v)
{
    const sg_config *cfg = r->srv->cfg;
    const sg_edge_limits lim = {cfg->http_max_target_bytes, cfg->http_max_header_bytes,
                                (size_t)cfg->http_max_headers};
    sg_edge_head h = {method, r->target, r->target_len, version, NULL, 0};
    /* A raw NUL in the target ends the string libmicrohttpd hands over, but not the request line,
     * parsed in place: the target ran up to the byte before the version. Then the copy's own
     * terminator stands for that NUL, which the check refuses. */
    if (r->target && version > r->target_at &&
        (size_t)(version - 1 - r->target_at) > r->target_len &&
        (size_t)(version - 1 - r->target_at) <= cfg->http_pool_bytes)
        h.target_len++;
    int n = MHD_get_connection_values(r->conn, MHD_HEADER_KIND, NULL, NULL);
    h.n_fields = n > 0 ? (size_t)n : 0;
    sg_http_field stack[64];
    field_list l = {stack, 0, sizeof stack / sizeof *stack};
    if (h.n_fields <= lim.max_headers) {
        if (h.n_fields > l.cap) {
            l.at = malloc(h.n_fields * sizeof *l.at);
            l.cap = h.n_fields;
        }
        if (!l.at) {
            sg_req_error(r, 503, "OVERLOADED", "out of memory");
            r->retry_after = cfg->retry_after_s;
            return false;
        }
        MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, collect_field, &l);
        h.fields = l.at;
        h.n_fields = l.n;
    }
    bool ok = sg_edge_check_head(&h, &lim, v);
    if (l.at != stack)
        free(l.at);
    if (ok) {
        r->path = malloc(r->target_len + 1);
        size_t len;
        if (r->path && sg_edge_decode_path(r->target, r->target_len, r->path, &len)) {
            r->url = r->path;
            return true;
        }
        sg_req_error(r, 503, "OVERLOADED", "out of memory");
        r->retry_after = cfg->retry_after_s;
        return false;
    }
    sg_req_error(r, v->status, v->code, "%s", v->detail);
    return false;
}

/* ---- request lifecycle -------------------------------------------------------------------- */

/* libmicrohttpd's URI callback, run as soon as the request line is in, before it decodes the
 * target in place: the request's context begins here with a copy of the raw target. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    sg_server *s = cls;
    sg_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->srv = s;
    r->conn = conn;
    r->url = "";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->edge_conn = ci ? ci->socket_context : NULL;
    r->target_at = uri ? uri : "";
    r->target_len = strlen(r->target_at);
    /* over the limit it is refused by its length alone: no copy */
    if (r->target_len <= s->cfg->http_max_target_bytes) {
        r->target = malloc(r->target_len + 1);
        if (!r->target) {
            free(r);
            return NULL;
        }
        memcpy(r->target, r->target_at, r->target_len + 1);
    }
    return r;
}

/* The first call of a request (its head is complete): the answers due before any body is read —
 * the edge's refusals (400/414/431/501/505), draining 503, auth 401, a Content-Length over the
 * limit 413, a body the budget cannot hold 503 — then its row of the route table. */
static void request_begin(sg_server *s, sg_req *r, const char *method, const char *version)
{
    r->started = true;
    atomic_fetch_add(&s->inflight, 1);
    r->method = method;
    r->http_version = version;
    r->t_start = sg_now_ms();
    r->route_name = "other";
    struct MHD_Connection *conn = r->conn;
    request_id_of(conn, r->request_id);
    r->accept_gzip = accepts_gzip(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct)
        snprintf(r->content_type, sizeof r->content_type, "%s", ct);
    sg_edge_verdict v;
    if (!head_acceptable(r, method, version, &v))
        return;
    r->route = sg_route_match(method, r->url, r->session_id);
    r->route_name = r->route ? r->route->path : "other";
    /* only a route that reads a body keeps it; anything else is read and dropped */
    r->keeps_body = r->route && r->route->body != SG_BODY_NONE;
    r->has_body = v.framing == SG_BODY_FRAMING_CHUNKED ||
                  (v.framing == SG_BODY_FRAMING_LENGTH && v.content_length > 0);
    if (atomic_load(&s->draining)) {
        sg_req_error(r, 503, "OVERLOADED", "server is shutting down");
        r->retry_after = s->cfg->retry_after_s;
    } else if (!authorized(r)) {
        sg_req_error(r, 401, "UNAUTHORIZED", "missing or invalid API key (send %s: <key> or "
                     "Authorization: Bearer <key>)", s->cfg->auth_header);
    } else if (v.framing == SG_BODY_FRAMING_LENGTH && v.content_length > s->cfg->max_body_bytes) {
        sg_req_error(r, 413, "PAYLOAD_TOO_LARGE",
                     "request body of %llu bytes is over the limit of %zu bytes "
                     "(SG_MAX_BODY_BYTES)", (unsigned long long)v.content_length,
                     s->cfg->max_body_bytes);
    } else if (r->keeps_body && v.framing == SG_BODY_FRAMING_LENGTH && v.content_length > 0) {
        size_t want = (size_t)v.content_length + 1; /* the buffer holds a terminating NUL */
        if (sg_edge_budget_take(s->edge, want)) {
            r->budget = want;
        } else {
            sg_req_error(r, 503, "OVERLOADED",
                         "request bodies in memory are at their limit (SG_MAX_INFLIGHT_BODY_BYTES "
                         "= %zu bytes); retry shortly", s->cfg->max_inflight_body_bytes);
            r->retry_after = s->cfg->retry_after_s;
        }
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)conn; /* r->conn, since the request line */
    (void)url;  /* libmicrohttpd's decoded path, cut at a %00: r->url is the whole one */
    sg_server *s = cls;
    sg_req *r = *con_cls;
    if (!r)
        return MHD_NO; /* the request-line callback ran out of memory: close */
    if (!r->started) {
        request_begin(s, r, method, version);
        /* an answer now closes the connection unread (libmicrohttpd sends Connection: close) */
        if (r->done) {
            sg_edge_conn_set_phase(s->edge, r->edge_conn, SG_EDGE_APP);
            return send_response(r);
        }
        sg_edge_conn_set_phase(s->edge, r->edge_conn, r->has_body ? SG_EDGE_BODY : SG_EDGE_APP);
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        /* a body being dropped is still read to its end (only then can it be answered); that
         * costs no memory, and the minimum rate and the per-address limit bound the time and
         * the connections it can hold */
        sg_edge_conn_body(r->edge_conn, n);
        if (r->keeps_body && !r->done && !r->too_large && !r->over_budget)
            append_body(r, upload_data, n);
        return MHD_YES;
    }
    if (r->sse && sg_sse_started(r->sse)) /* resumed by the first event of a streamed answer */
        return send_events(r); /* (its worker may have failed since: r->json is an error event) */
    if (!r->done) {
        if (r->has_body) /* the body is in: from here the request is ours, never cut */
            sg_edge_conn_set_phase(s->edge, r->edge_conn, SG_EDGE_APP);
        if (r->too_large) {
            sg_req_error(r, 413, "PAYLOAD_TOO_LARGE",
                         "request body is over the limit of %zu bytes (SG_MAX_BODY_BYTES)",
                         s->cfg->max_body_bytes);
        } else if (r->over_budget) {
            sg_req_error(r, 503, "OVERLOADED",
                         "request bodies in memory are at their limit (SG_MAX_INFLIGHT_BODY_BYTES "
                         "= %zu bytes); retry shortly", s->cfg->max_inflight_body_bytes);
            r->retry_after = s->cfg->retry_after_s;
        } else {
            sg_route_dispatch(r);
            if (r->queued) {
                /* the work is on the queue: r belongs to its worker until it resumes us (it may
                 * already have set r->done, or started a stream: never read them here) */
                r->queued = false;
                return MHD_YES;
            }
        }
    }
    if (r->done)
        return send_response(r);
    return MHD_YES; /* suspended: the worker resumes us with r->done set */
}

/* Every request whose request line was read ends here, whatever the path (answered, refused by
 * libmicrohttpd, cut by the watchdog, the client gone): the one place its memory and its share of
 * the body budget are given back. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    sg_server *s = cls;
    sg_req *r = *con_cls;
    if (!r)
        return;
    sg_edge_conn_set_phase(s->edge, r->edge_conn, SG_EDGE_IDLE);
    *con_cls = NULL;
    r->edge_conn = NULL;
    if (r->started && r->sse && !sg_sse_request_completed(r->sse))
        return; /* its worker still streams (to nobody now): the worker frees it (run_job) */
    req_free(r);
}

/* Connection hooks of the edge (server/edge.h): the accept policy, and the registry the watchdog
 * walks (a connection's entry is its socket context). */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    sg_server *s = cls;
    return sg_edge_admit(s->edge, addr, len) ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    sg_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *addr =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        *socket_context = fd ? sg_edge_conn_open(s->edge, fd->connect_fd,
                                                 addr ? addr->client_addr : NULL)
                             : NULL;
    } else {
        sg_edge_conn_close(s->edge, *socket_context);
        *socket_context = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    sg_log(SG_LOG_DEBUG, "microhttpd: %s", msg);
}

/* ---- reaper ------------------------------------------------------------------------------- */

static void *reaper_main(void *p)
{
    sg_server *s = p;
    double period_s = s->cfg->session_ttl_s / 4.0;
    if (period_s > 5)
        period_s = 5;
    if (period_s < 0.25)
        period_s = 0.25;
    pthread_mutex_lock(&s->reaper_lock);
    while (!s->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = ts.tv_nsec + (long)((period_s - (long)period_s) * 1e9);
        ts.tv_sec += (time_t)period_s + ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&s->reaper_cond, &s->reaper_lock, &ts);
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->reaper_lock);
        int n = sg_session_expire(s->sessions, sg_now_ms());
        if (n)
            sg_log(SG_LOG_INFO, "expired %d idle session(s)", n);
        /* smartglass_store_up follows the store between requests too (it goes down at a failed
         * request at once, and comes back here, at most one sweep after the store does) */
        sg_error perr = {0};
        sg_metrics_store_up(s->metrics, sg_session_store_ping(s->sessions, &perr) == SG_OK);
        pthread_mutex_lock(&s->reaper_lock);
    }
    pthread_mutex_unlock(&s->reaper_lock);
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

sg_server *sg_server_new(const sg_config *cfg, const sg_backends *backends, sg_error *err)
{
    sg_server *s = calloc(1, sizeof *s);
    if (!s) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->b = backends;
    s->sessions = sg_session_store_new(cfg, err);
    if (!s->sessions) {
        free(s);
        return NULL;
    }
    s->metrics = sg_metrics_new();
    s->workq = sg_workq_new(cfg->workers, cfg->queue_depth);
    s->ws = sg_ws_hub_new();
    sg_degrade_cfg dc;
    sg_degrade_cfg_defaults(&dc, cfg->latency_budget_ms, cfg->workers);
    s->degrade = sg_degrade_new(&dc);
    s->telemetry = sg_telemetry_new(2 * cfg->max_sessions, SG_TELEMETRY_WINDOW_S);
    pthread_mutex_init(&s->reaper_lock, NULL);
    pthread_cond_init(&s->reaper_cond, NULL);
    s->edge = sg_edge_new(cfg, err);
    if (!s->edge) {
        sg_server_free(s);
        return NULL;
    }
    if (!s->sessions || !s->metrics || !s->workq || !s->ws || !s->telemetry || !s->degrade) {
        sg_error_set(err, SG_ENOMEM, "could not create the session store, metrics or workers");
        sg_server_free(s);
        return NULL;
    }
    return s;
}

sg_status sg_server_start(sg_server *s, sg_error *err)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)s->cfg->port);
    if (inet_pton(AF_INET, s->cfg->host, &addr.sin_addr) != 1)
        return sg_error_set(err, SG_EINVAL, "--host %s is not an IPv4 address", s->cfg->host);
    s->started_ms = sg_now_ms();
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_ALLOW_UPGRADE;
    /* libmicrohttpd's connection limit is the wall; the accept policy keeps the per-address
     * limit and the reserve below it. STRICT_FOR_CLIENT stays 0: at 1 its Host 400 is HTML with a
     * doubled header block, and a space in the target closes silently; the edge checks both. */
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)s->cfg->port, on_accept, s, on_request, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->cfg->http_threads,
        MHD_OPTION_URI_LOG_CALLBACK, on_request_line, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg->http_idle_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg->max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->cfg->http_pool_bytes,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_END);
    if (!s->daemon)
        return sg_error_set(err, SG_EIO, "could not listen on %s:%d (port in use?)", s->cfg->host,
                            s->cfg->port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->cfg->port;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) == 0)
        s->reaper_running = true;
    return SG_OK;
}

int sg_server_port(sg_server *s) { return s->port; }

void sg_server_set_ready(sg_server *s, bool ready) { atomic_store(&s->ready, ready); }

sg_metrics *sg_server_metrics(sg_server *s) { return s->metrics; }

sg_degrade *sg_server_degrade(sg_server *s) { return s->degrade; }

void sg_server_stop(sg_server *s, double grace_s)
{
    if (!s->daemon)
        return;
    /* 1. drain: every request that starts from now on (new connections and keep-alive ones) gets
     * 503 OVERLOADED + Retry-After. The listening socket stays open until MHD_stop_daemon:
     * libmicrohttpd 0.9.76's MHD_quiesce_daemon races its own epoll worker threads in thread-pool
     * mode (both remove the listening socket from the worker's epoll set; the loser aborts with
     * "Failed to remove listen FD from epoll set"), seen about once in ten stops in tests. */
    atomic_store(&s->draining, true);
    double deadline = sg_now_ms() + grace_s * 1000.0;
    /* 2. WebSockets: close 1001 "server shutting down" after their current job, wait for the
     * threads (their model work still has the work queue) */
    sg_ws_stop_all(s, grace_s);
    /* 3. let in-flight requests (including queued model work) finish */
    while (atomic_load(&s->inflight) > 0 && sg_now_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&s->inflight) > 0)
        sg_log(SG_LOG_WARN, "%d request(s) still in flight after %.0f s; stopping anyway",
               atomic_load(&s->inflight), grace_s);
    /* 4. finish queued jobs (they resume their connections) before the daemon goes away */
    sg_workq_free(s->workq);
    s->workq = NULL;
    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    pthread_mutex_lock(&s->reaper_lock);
    s->stopping = true;
    pthread_cond_broadcast(&s->reaper_cond);
    pthread_mutex_unlock(&s->reaper_lock);
    if (s->reaper_running) {
        pthread_join(s->reaper, NULL);
        s->reaper_running = false;
    }
}

void sg_server_free(sg_server *s)
{
    if (!s)
        return;
    if (s->daemon)
        sg_server_stop(s, 0);
    sg_workq_free(s->workq);
    sg_edge_free(s->edge);
    sg_ws_hub_free(s->ws);
    sg_session_store_free(s->sessions);
    sg_metrics_free(s->metrics);
    sg_degrade_free(s->degrade);
    sg_telemetry_free(s->telemetry);
    pthread_mutex_destroy(&s->reaper_lock);
    pthread_cond_destroy(&s->reaper_cond);
    free(s);
}
