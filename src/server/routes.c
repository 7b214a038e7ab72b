/* The API's handlers (../shared/API.md): routing, request validation (types -> 422, malformed ->
 * 400, limits -> 413, media types -> 415), and the session work that runs on the work queue:
 * frame ingest, audio transcription and turns. */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/turn.h"
#include "base/base64.h"
#include "base/json.h"
#include "base/clock.h"
#include "base/uuid.h"

static double ms3(double x) { return (double)(long long)(x * 1000 + 0.5) / 1000; }

/* ---- routing ------------------------------------------------------------------------------ */

static bool seg_eq(const char *p, size_t n, const char *lit) { return strlen(lit) == n && memcmp(p, lit, n) == 0; }

sg_route sg_route_match(const char *url, char session_id[40], const char **route_name)
{
    session_id[0] = 0;
    *route_name = "other";
    if (!url || url[0] != '/')
        return SG_ROUTE_NONE;
    /* split into at most 4 segments, ignoring one trailing slash */
    const char *seg[5];
    size_t len[5];
    int n = 0;
    const char *p = url + 1;
    size_t total = strlen(url);
    if (total > 1 && url[total - 1] == '/')
        total--;
    const char *end = url + total;
    while (p < end && n < 5) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        if (!q)
            q = end;
        seg[n] = p;
        len[n] = (size_t)(q - p);
        n++;
        p = q + 1;
    }
    if (p < end)
        return SG_ROUTE_NONE;
    if (n == 1 && seg_eq(seg[0], len[0], "health"))
        return *route_name = "/health", SG_ROUTE_HEALTH;
    if (n == 1 && seg_eq(seg[0], len[0], "ready"))
        return *route_name = "/ready", SG_ROUTE_READY;
    if (n >= 1 && seg_eq(seg[0], len[0], "metrics")) {
        if (n == 1)
            return *route_name = "/metrics", SG_ROUTE_METRICS;
        if (n == 2 && seg_eq(seg[1], len[1], "summary"))
            return *route_name = "/metrics/summary", SG_ROUTE_METRICS_SUMMARY;
        if (n == 2 && seg_eq(seg[1], len[1], "prometheus"))
            return *route_name = "/metrics/prometheus", SG_ROUTE_METRICS_PROMETHEUS;
        return SG_ROUTE_NONE;
    }
    if (n >= 1 && seg_eq(seg[0], len[0], "sessions")) {
        if (n == 1)
            return *route_name = "/sessions", SG_ROUTE_SESSIONS;
        if (len[1] > 0 && len[1] < 40) {
            memcpy(session_id, seg[1], len[1]);
            session_id[len[1]] = 0;
        }
        if (n == 2)
            return *route_name = "/sessions/{id}", SG_ROUTE_SESSION;
        if (n == 3) {
            if (seg_eq(seg[2], len[2], "frame"))
                return *route_name = "/sessions/{id}/frame", SG_ROUTE_FRAME;
            if (seg_eq(seg[2], len[2], "audio"))
                return *route_name = "/sessions/{id}/audio", SG_ROUTE_AUDIO;
            if (seg_eq(seg[2], len[2], "query"))
                return *route_name = "/sessions/{id}/query", SG_ROUTE_QUERY;
            if (seg_eq(seg[2], len[2], "multimodal"))
                return *route_name = "/sessions/{id}/multimodal", SG_ROUTE_MULTIMODAL;
        }
        session_id[0] = 0;
        return SG_ROUTE_NONE;
    }
    if (n == 3 && seg_eq(seg[0], len[0], "ws") &&
        (seg_eq(seg[1], len[1], "audio") || seg_eq(seg[1], len[1], "frame"))) {
        if (len[2] > 0 && len[2] < 40) {
            memcpy(session_id, seg[2], len[2]);
            session_id[len[2]] = 0;
        }
        if (seg_eq(seg[1], len[1], "audio"))
            return *route_name = "/ws/audio/{id}", SG_ROUTE_WS_AUDIO;
        return *route_name = "/ws/frame/{id}", SG_ROUTE_WS_FRAME;
    }
    if (n >= 2 && seg_eq(seg[0], len[0], "dat")) {
        if (n == 2 && seg_eq(seg[1], len[1], "session"))
            return *route_name = "/dat/session", SG_ROUTE_DAT_SESSION;
        if (n == 2 && seg_eq(seg[1], len[1], "stream"))
            return *route_name = "/dat/stream", SG_ROUTE_DAT_STREAM;
        if (n == 3 && seg_eq(seg[1], len[1], "turn") && seg_eq(seg[2], len[2], "complete"))
            return *route_name = "/dat/turn/complete", SG_ROUTE_DAT_TURN;
    }
    return SG_ROUTE_NONE;
}

/* ---- request parsing helpers -------------------------------------------------------------- */

void sg_work_input_free(sg_work_input *in)
{
    free(in->text);
    free(in->image);
    free(in->audio);
    free(in->language);
    free(in->dat_turn_id);
    memset(in, 0, sizeof *in);
}

static bool ctype_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    return strncasecmp(ct, want, n) == 0 && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

static bool ctype_json(const char *ct)
{
    if (!ct[0])
        return true; /* no Content-Type: assume JSON, the contract's only body type */
    if (ctype_is(ct, "application/json") || ctype_is(ct, "text/json"))
        return true;
    const char *semi = strchr(ct, ';');
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Parses the body as a JSON object into *out (an empty body is {}). False after setting an
 * error response. */
static bool parse_json_body(sg_req *r, json_t **out)
{
    *out = NULL;
    if (!ctype_json(r->content_type)) {
        sg_req_error(r, 415, "INVALID_REQUEST",
                     "unsupported Content-Type \"%.60s\" for this route; send application/json",
                     r->content_type);
        return false;
    }
    if (r->body_len == 0) {
        *out = json_object();
        return true;
    }
    sg_error err = {0};
    json_t *j = sg_json_parse(r->body, r->body_len, &err);
    if (!j) {
        if (err.code == SG_ENOMEM)
            sg_req_error(r, 503, "OVERLOADED", "out of memory parsing the body");
        else
            sg_req_error(r, 400, "INVALID_REQUEST", "malformed JSON body: %s", err.msg);
        return false;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        sg_req_error(r, 422, "INVALID_REQUEST", "the JSON body must be an object");
        return false;
    }
    *out = j;
    return true;
}

/* The value of name (or its alias); NULL when absent or null. */
static json_t *field(json_t *obj, const char *name, const char *alias)
{
    json_t *v = json_object_get(obj, name);
    if ((!v || json_is_null(v)) && alias)
        v = json_object_get(obj, alias);
    return (v && !json_is_null(v)) ? v : NULL;
}

static const char *field_name(json_t *obj, const char *name, const char *alias)
{
    json_t *v = json_object_get(obj, name);
    return (!v || json_is_null(v)) && alias && json_object_get(obj, alias) ? alias : name;
}

/* Optional string field; false after a 422. */
static bool opt_string(sg_req *r, json_t *obj, const char *name, const char *alias, const char **out)
{
    json_t *v = field(obj, name, alias);
    *out = NULL;
    if (!v)
        return true;
    if (!json_is_string(v)) {
        sg_req_error(r, 422, "INVALID_REQUEST", "field \"%s\" must be a string",
                     field_name(obj, name, alias));
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static bool opt_int(sg_req *r, json_t *obj, const char *name, long lo, long hi, bool *present, long *out)
{
    json_t *v = field(obj, name, NULL);
    *present = false;
    if (!v)
        return true;
    if (!json_is_integer(v)) {
        sg_req_error(r, 422, "INVALID_REQUEST", "field \"%s\" must be an integer", name);
        return false;
    }
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        sg_req_error(r, 422, "INVALID_REQUEST", "field \"%s\" must be in %ld..%ld", name, lo, hi);
        return false;
    }
    *present = true;
    *out = (long)x;
    return true;
}

static bool opt_bool(sg_req *r, json_t *obj, const char *name, bool *out)
{
    json_t *v = field(obj, name, NULL);
    if (!v)
        return true;
    if (!json_is_boolean(v)) {
        sg_req_error(r, 422, "INVALID_REQUEST", "field \"%s\" must be true or false", name);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

static bool decode_b64_field(sg_req *r, const char *name, const char *s, const char *code,
                             size_t limit, const char *limit_name, uint8_t **out, size_t *out_len)
{
    sg_error err = {0};
    size_t slen = strlen(s);
    if (slen / 4 * 3 > limit + 3) {
        sg_req_error(r, 413, "PAYLOAD_TOO_LARGE", "%s is over the limit of %zu bytes (%s)", name,
                     limit, limit_name);
        return false;
    }
    if (sg_base64_decode(s, slen, out, out_len, &err) != SG_OK) {
        sg_req_error(r, 400, code, "%s: %s", name, err.msg);
        return false;
    }
    if (*out_len > limit) {
        free(*out);
        *out = NULL;
        sg_req_error(r, 413, "PAYLOAD_TOO_LARGE", "%s is %zu bytes, over the limit of %zu bytes (%s)",
                     name, *out_len, limit, limit_name);
        return false;
    }
    return true;
}

static bool take_body(sg_req *r, uint8_t **out, size_t *out_len)
{
    *out = (uint8_t *)r->body;
    *out_len = r->body_len;
    r->body = NULL;
    r->body_len = r->body_cap = 0;
    return *out != NULL;
}

/* Audio fields shared by /audio and /query: format, sample_rate, the payload. */
static bool parse_audio_fields(sg_req *r, json_t *obj, const char *b64)
{
    const sg_config *cfg = r->srv->cfg;
    const char *fmt = NULL;
    if (!opt_string(r, obj, "format", NULL, &fmt))
        return false;
    sg_error err = {0};
    if (sg_audio_format_parse(fmt, &r->in.audio_format, &err) != SG_OK) {
        sg_req_error(r, 422, "INVALID_REQUEST",
                     "field \"format\": %s (use wav, pcm_s16le, pcm_f32le, flac or ogg)", err.msg);
        return false;
    }
    bool have_rate;
    long rate = 0;
    if (!opt_int(r, obj, "sample_rate", 8000, 192000, &have_rate, &rate))
        return false;
    r->in.sample_rate = have_rate ? (int)rate : SG_AUDIO_RATE;
    if (!decode_b64_field(r, "audio_base64", b64, "INVALID_AUDIO", cfg->audio_max_bytes,
                          "AUDIO_BUFFER_MAX_BYTES", &r->in.audio, &r->in.audio_len))
        return false;
    if (r->in.audio_format == SG_AUDIO_AUTO) {
        sg_audio_format sniffed = sg_audio_sniff(r->in.audio, r->in.audio_len);
        if (sniffed != SG_AUDIO_AUTO) {
            r->in.audio_format = sniffed; /* WAV, FLAC or Ogg by their magic */
        } else if (have_rate) {
            r->in.audio_format = SG_AUDIO_PCM_S16LE; /* the Android client's headerless PCM */
        } else {
            sg_req_error(r, 400, "INVALID_AUDIO",
                         "audio_base64 is not a WAV, FLAC or Ogg file; for headerless PCM give "
                         "\"format\" (pcm_s16le or pcm_f32le) and \"sample_rate\"");
            return false;
        }
    }
    return true;
}

static bool lookup_session(sg_req *r)
{
    r->session = sg_session_get(r->srv->sessions, r->session_id);
    if (!r->session) {
        if (sg_uuid_valid(r->session_id))
            sg_req_error(r, 404, "INVALID_SESSION", "session %s not found (expired or deleted?)",
                         r->session_id);
        else
            sg_req_error(r, 404, "INVALID_SESSION", "session not found: the id is not a session UUID");
        return false;
    }
    memcpy(r->session_id, r->session->id, sizeof r->session->id);
    int retry = 1;
    if (!sg_session_rate_ok(r->session, r->srv->cfg->rate_limit_rps, &retry)) {
        sg_req_error(r, 429, "RATE_LIMITED", "too many requests for this session (limit %.3g/s)",
                     r->srv->cfg->rate_limit_rps);
        r->retry_after = retry;
        return false;
    }
    return true;
}

/* The parsing helpers above, for the DAT routes (dat.c). */
bool sg_req_parse_json(sg_req *r, json_t **out) { return parse_json_body(r, out); }

bool sg_req_opt_string(sg_req *r, json_t *obj, const char *name, const char **out)
{
    return opt_string(r, obj, name, NULL, out);
}

bool sg_req_opt_int(sg_req *r, json_t *obj, const char *name, long lo, long hi, bool *present,
                    long *out)
{
    return opt_int(r, obj, name, lo, hi, present, out);
}

bool sg_req_opt_bool(sg_req *r, json_t *obj, const char *name, bool *out)
{
    return opt_bool(r, obj, name, out);
}

bool sg_req_b64(sg_req *r, const char *name, const char *s, const char *code, size_t limit,
                const char *limit_name, uint8_t **out, size_t *out_len)
{
    return decode_b64_field(r, name, s, code, limit, limit_name, out, out_len);
}

bool sg_req_lookup_session(sg_req *r) { return lookup_session(r); }

/* ---- simple routes ------------------------------------------------------------------------ */

static json_t *models_bools(const sg_backends *b)
{
    return json_pack("{s:b,s:b,s:b,s:b}", "vision", b->vision != NULL, "asr", b->asr != NULL,
                     "vad", b->vad != NULL, "llm", b->llm != NULL);
}

static void handle_health(sg_req *r)
{
    const sg_backends *b = r->srv->b;
    json_t *o = json_pack("{s:s,s:o,s:s,s:o,s:o,s:I,s:f}", "status", "ok", "models",
                          models_bools(b), "version", SG_VERSION, "model_names",
                          sg_backends_models_json(b), "fallbacks",
                          json_pack("{s:s?,s:s?}", "vision", b->vision ? NULL : "pixel-stats", "llm",
                                    b->llm ? NULL : "rule-based"),
                          "active_sessions", (json_int_t)sg_session_count(r->srv->sessions),
                          "uptime_s", ms3((sg_now_ms() - r->srv->started_ms) / 1000.0));
    sg_req_json(r, 200, o);
}

static void handle_ready(sg_req *r)
{
    if (atomic_load(&r->srv->ready)) {
        sg_req_json(r, 200, json_pack("{s:s}", "status", "ready"));
    } else {
        sg_req_json(r, 503, json_pack("{s:s,s:s,s:s}", "status", "loading", "detail",
                                      "models are still loading", "error", "MODEL_UNAVAILABLE"));
        r->retry_after = 1;
    }
}

static bool privacy_header(sg_req *r, const char *name, bool server_allows, bool *out)
{
    *out = server_allows;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
    if (!h)
        return true;
    bool v;
    if (!sg_parse_bool(h, &v)) {
        sg_req_error(r, 422, "INVALID_REQUEST", "header %s must be true or false", name);
        return false;
    }
    *out = server_allows && v; /* a request may narrow, never widen, what the server allows */
    return true;
}

bool sg_req_new_session(sg_req *r, sg_session **out, sg_privacy *p)
{
    *out = NULL;
    const sg_privacy *sp = &r->srv->cfg->privacy;
    if (!privacy_header(r, "X-Privacy-Store-Raw-Audio", sp->store_raw_audio, &p->store_raw_audio) ||
        !privacy_header(r, "X-Privacy-Store-Raw-Frames", sp->store_raw_frames, &p->store_raw_frames) ||
        !privacy_header(r, "X-Privacy-Store-Transcripts", sp->store_transcripts, &p->store_transcripts))
        return false;
    sg_error err = {0};
    if (sg_session_create(r->srv->sessions, p, out, &err) != SG_OK) {
        if (err.code == SG_ETOOBIG) {
            sg_req_error(r, 503, "OVERLOADED", "%s", err.msg);
            r->retry_after = 60;
        } else {
            sg_req_fail(r, err.code, "INVALID_REQUEST", &err);
        }
        return false;
    }
    sg_metrics_count(r->srv->metrics, SG_COUNTER_SESSIONS, 1);
    memcpy(r->session_id, (*out)->id, sizeof (*out)->id);
    return true;
}

static void handle_sessions_post(sg_req *r)
{
    json_t *body;
    if (!parse_json_body(r, &body))
        return;
    json_decref(body);
    sg_privacy p;
    sg_session *s;
    if (!sg_req_new_session(r, &s, &p))
        return;
    sg_req_json(r, 200, json_pack("{s:s,s:{s:b,s:b,s:b}}", "session_id", s->id, "privacy",
                                  "store_raw_audio", p.store_raw_audio, "store_raw_frames",
                                  p.store_raw_frames, "store_transcripts", p.store_transcripts));
    sg_session_release(s);
}

static void handle_sessions_get(sg_req *r)
{
    json_t *list = sg_session_list_json(r->srv->sessions);
    sg_req_json(r, 200, json_pack("{s:o,s:I}", "sessions", list, "count",
                                  (json_int_t)json_array_size(list)));
}

static void handle_session_delete(sg_req *r)
{
    if (!sg_session_delete(r->srv->sessions, r->session_id)) {
        sg_req_error(r, 404, "INVALID_SESSION", "session not found");
        return;
    }
    sg_ws_session_deleted(r->srv, r->session_id); /* its WebSockets close with 1000 */
    sg_req_json(r, 200, json_pack("{s:s,s:s}", "status", "deleted", "session_id", r->session_id));
}

static json_t *stage_brief(sg_metrics *m, sg_stage st)
{
    sg_stage_stats s;
    sg_metrics_stage(m, st, &s);
    return json_pack("{s:I,s:f,s:f}", "count", (json_int_t)s.count, "avg_ms",
                     (double)(long long)(s.avg * 1000 + 0.5) / 1000, "max_ms",
                     (double)(long long)(s.max * 1000 + 0.5) / 1000);
}

static void handle_metrics(sg_req *r)
{
    sg_server *s = r->srv;
    json_t *o = sg_metrics_json(s->metrics);
    json_object_set_new(o, "sessions",
                        json_pack("{s:I,s:I}", "created", (json_int_t)sg_session_created(s->sessions),
                                  "active", (json_int_t)sg_session_count(s->sessions)));
    json_object_set_new(o, "websockets", json_pack("{s:i,s:i}", "open", sg_ws_open_count(s->ws),
                                                   "max", s->cfg->max_websockets));
    json_object_set_new(o, "queue", json_pack("{s:i,s:i,s:i}", "workers", s->cfg->workers, "depth",
                                              s->cfg->queue_depth, "pending",
                                              sg_workq_pending(s->workq)));
    json_object_set_new(o, "uptime_s", json_real(ms3((sg_now_ms() - s->started_ms) / 1000.0)));
    sg_req_json(r, 200, o);
}

static void handle_metrics_summary(sg_req *r)
{
    sg_server *s = r->srv;
    sg_stage_stats fa, ff, e2e;
    sg_metrics_stage(s->metrics, SG_STAGE_INGEST_AUDIO, &fa);
    sg_metrics_stage(s->metrics, SG_STAGE_INGEST_FRAME, &ff);
    sg_metrics_stage(s->metrics, SG_STAGE_E2E, &e2e);
    bool degraded = (fa.count && fa.avg > 100.0) || (ff.count && ff.avg > 100.0) ||
                    (e2e.count && e2e.avg > 2000.0);
    json_t *o = json_pack(
        "{s:s,s:{s:o,s:o,s:o},s:{s:I,s:I,s:I}}", "health", degraded ? "degraded" : "ok",
        "dat_metrics", "ingest_audio", stage_brief(s->metrics, SG_STAGE_INGEST_AUDIO),
        "ingest_frame", stage_brief(s->metrics, SG_STAGE_INGEST_FRAME), "end_to_end_turn",
        stage_brief(s->metrics, SG_STAGE_E2E), "summary", "total_sessions",
        (json_int_t)sg_session_created(s->sessions), "active_sessions",
        (json_int_t)sg_session_count(s->sessions), "total_queries",
        (json_int_t)sg_metrics_counter(s->metrics, SG_COUNTER_QUERIES));
    sg_req_json(r, 200, o);
}

static void handle_metrics_prometheus(sg_req *r)
{
    sg_server *s = r->srv;
    char *text = sg_metrics_prometheus(s->metrics, sg_session_count(s->sessions),
                                       sg_session_created(s->sessions), sg_ws_open_count(s->ws),
                                       (sg_now_ms() - s->started_ms) / 1000.0);
    if (!text) {
        sg_req_error(r, 503, "OVERLOADED", "out of memory");
        return;
    }
    r->text = text;
    r->text_type = "text/plain; version=0.0.4; charset=utf-8";
    r->status = 200;
    r->done = true;
}

/* ---- session work (runs on the work queue) ------------------------------------------------ */

/* A frame with the client-keyframe hint is forced through the gate: the client ran the same gate
 * (src/agent/keyframe.c) over every frame it captured, while this server only sees the uploads, so
 * re-checking min_gap would count uploads instead of camera frames (skipping ~2/3 of them) and a
 * diff to the previous upload would miss the change accumulated over the frames held back on the
 * phone. The gate still updates its thumbnails, so unhinted frames after it compare against it.
 * A client could hint every frame; that buys it no more than sending every frame as a query
 * image, and the per-session rate limit and the work queue bound both. */
json_t *sg_frame_work(sg_server *srv, sg_session *s, const uint8_t *image, size_t len,
                      bool client_keyframe, double t_start, sg_status *status, sg_error *err)
{
    sg_frame_result fr;
    pthread_mutex_lock(&s->lock);
    sg_status st = sg_frame_ingest(srv->b, &s->vision, image, len, client_keyframe, &fr, err);
    if (st == SG_OK)
        st = sg_session_keep_frame(s, srv->cfg, image, len, err);
    long index = s->vision.frames;
    pthread_mutex_unlock(&s->lock);
    *status = st;
    if (st != SG_OK) {
        json_decref(fr.scene);
        return NULL;
    }
    atomic_fetch_add(&s->frame_count, 1);
    atomic_store(&s->has_frame, true);
    sg_metrics_count(srv->metrics, SG_COUNTER_FRAMES, 1);
    if (fr.keyframe) {
        sg_metrics_count(srv->metrics, SG_COUNTER_KEYFRAMES, 1);
        sg_metrics_record(srv->metrics, SG_STAGE_VISION, fr.vision_ms);
    }
    double total = sg_now_ms() - t_start;
    sg_metrics_record(srv->metrics, SG_STAGE_INGEST_FRAME, total);
    json_t *o = json_pack("{s:s,s:s,s:b,s:b,s:o,s:I,s:{s:f,s:f,s:f}}", "session_id", s->id,
                          "status", fr.keyframe ? "processed" : "skipped", "keyframe", fr.keyframe,
                          "client_keyframe", client_keyframe, "scene",
                          fr.scene ? fr.scene : json_null(), "frame_index", (json_int_t)index,
                          "latency_ms", "decode", ms3(fr.decode_ms), "vision", ms3(fr.vision_ms),
                          "total", ms3(total));
    if (!o) {
        *status = sg_error_set(err, SG_ENOMEM, "out of memory building the response");
        return NULL;
    }
    return o;
}

static void work_frame(sg_req *r)
{
    sg_status st = SG_OK;
    sg_error err = {0};
    json_t *o = sg_frame_work(r->srv, r->session, r->in.image, r->in.image_len,
                              r->in.client_keyframe, r->t_start, &st, &err);
    if (!o) {
        sg_req_fail(r, st, "INVALID_IMAGE", &err);
        return;
    }
    sg_req_json(r, 200, o);
}

/* Decodes the request's audio and applies AUDIO_BUFFER_MAX_SECONDS with the configured policy:
 * reject refuses longer audio, trim keeps its most recent seconds (cut before resampling). */
static sg_status decode_request_audio(sg_req *r, sg_audio *a, sg_error *err)
{
    const sg_config *cfg = r->srv->cfg;
    if (cfg->audio_policy == SG_POLICY_TRIM)
        return sg_audio_decode_tail(r->in.audio, r->in.audio_len, r->in.audio_format,
                                    r->in.sample_rate, cfg->audio_max_seconds, a, err);
    sg_status st = sg_audio_decode(r->in.audio, r->in.audio_len, r->in.audio_format,
                                   r->in.sample_rate, cfg->audio_max_seconds, a, err);
    if (st == SG_ETOOBIG)
        return sg_error_set(err, SG_ETOOBIG, "audio is longer than AUDIO_BUFFER_MAX_SECONDS=%g s "
                            "(AUDIO_BUFFER_POLICY=reject)", cfg->audio_max_seconds);
    return st;
}

static void work_audio(sg_req *r)
{
    sg_server *srv = r->srv;
    sg_session *s = r->session;
    sg_error err = {0};
    sg_audio a;
    sg_status st = decode_request_audio(r, &a, &err);
    if (st != SG_OK) {
        sg_req_fail(r, st, "INVALID_AUDIO", &err);
        return;
    }
    char *transcript = NULL;
    bool speech = false;
    double vad_ms, asr_ms;
    pthread_mutex_lock(&s->lock);
    st = sg_turn_transcribe(srv->b, &a, r->in.language, &transcript, &speech, &vad_ms, &asr_ms, &err);
    if (st == SG_OK)
        st = sg_session_keep_audio(s, srv->cfg, a.samples, a.n, &err);
    if (st == SG_OK && speech)
        sg_session_add_transcript(s, transcript);
    pthread_mutex_unlock(&s->lock);
    double dur = a.duration_s;
    sg_audio_free(&a);
    if (st != SG_OK) {
        free(transcript);
        sg_req_fail(r, st, "INVALID_AUDIO", &err);
        return;
    }
    sg_metrics_record(srv->metrics, SG_STAGE_VAD, vad_ms);
    sg_metrics_record(srv->metrics, SG_STAGE_ASR, asr_ms);
    double total = sg_now_ms() - r->t_start;
    sg_metrics_record(srv->metrics, SG_STAGE_INGEST_AUDIO, total);
    json_t *o = json_pack("{s:s,s:s,s:b,s:f,s:{s:f,s:f,s:f}}", "session_id", s->id, "transcript",
                          transcript ? transcript : "", "speech", speech, "duration_s", ms3(dur),
                          "latency_ms", "vad", ms3(vad_ms > 0 ? vad_ms : 0), "asr",
                          ms3(asr_ms > 0 ? asr_ms : 0), "total", ms3(total));
    free(transcript);
    sg_req_json(r, 200, o);
}

json_t *sg_req_run_turn(sg_req *r, const sg_turn_input *ti, bool *speech)
{
    sg_server *srv = r->srv;
    sg_session *s = r->session;
    sg_error err = {0};
    sg_turn_output out;
    pthread_mutex_lock(&s->lock);
    sg_status st = sg_turn_run(srv->b, &s->vision, ti, &out, &err);
    if (st == SG_OK && ti->image)
        st = sg_session_keep_frame(s, srv->cfg, ti->image, ti->image_len, &err);
    if (st == SG_OK && ti->audio)
        st = sg_session_keep_audio(s, srv->cfg, ti->audio->samples, ti->audio->n, &err);
    if (st == SG_OK) {
        if (out.transcript && out.speech)
            sg_session_add_transcript(s, out.transcript);
        sg_session_add_turn(s, out.query, out.response);
    }
    pthread_mutex_unlock(&s->lock);
    if (st != SG_OK) {
        sg_turn_output_free(&out);
        sg_req_fail(r, st, "INVALID_REQUEST", &err);
        return NULL;
    }
    if (speech)
        *speech = out.speech;
    atomic_fetch_add(&s->query_count, 1);
    if (ti->image) {
        atomic_fetch_add(&s->frame_count, 1);
        atomic_store(&s->has_frame, true);
        sg_metrics_count(srv->metrics, SG_COUNTER_FRAMES, 1);
        sg_metrics_count(srv->metrics, SG_COUNTER_KEYFRAMES, 1);
    }
    sg_metrics_count(srv->metrics, SG_COUNTER_QUERIES, 1);
    sg_metrics_record(srv->metrics, SG_STAGE_VAD, out.t.vad);
    sg_metrics_record(srv->metrics, SG_STAGE_ASR, out.t.asr);
    sg_metrics_record(srv->metrics, SG_STAGE_VISION, out.t.vision);
    sg_metrics_record(srv->metrics, SG_STAGE_LLM, out.t.llm);
    sg_metrics_record(srv->metrics, SG_STAGE_E2E, sg_now_ms() - r->t_start);
    json_t *o = json_pack("{s:s}", "session_id", s->id);
    json_object_update(o, out.result);
    sg_turn_output_free(&out);
    if (!o)
        sg_req_error(r, 503, "OVERLOADED", "out of memory");
    return o;
}

static void work_query(sg_req *r)
{
    sg_error err = {0};
    sg_audio a;
    bool have_audio = false;
    if (r->in.audio) {
        sg_status st = decode_request_audio(r, &a, &err);
        if (st != SG_OK) {
            sg_req_fail(r, st, "INVALID_AUDIO", &err);
            return;
        }
        have_audio = true;
    }
    sg_turn_input ti = {r->in.text, have_audio ? &a : NULL, r->in.image, r->in.image_len,
                        r->in.language, r->in.cloud_offload, r->in.max_tokens};
    json_t *o = sg_req_run_turn(r, &ti, NULL);
    if (have_audio)
        sg_audio_free(&a);
    if (o)
        sg_req_json(r, 200, o);
}

/* ---- session routes: parse in the HTTP thread, work on the queue -------------------------- */

static bool ctype_image(const char *ct) { return ctype_is(ct, "image/jpeg") || ctype_is(ct, "image/jpg") || ctype_is(ct, "image/png"); }

static bool ctype_audio(const char *ct)
{
    return ctype_is(ct, "audio/wav") || ctype_is(ct, "audio/x-wav") || ctype_is(ct, "audio/wave") ||
           ctype_is(ct, "audio/vnd.wave") || ctype_is(ct, "audio/flac") ||
           ctype_is(ct, "audio/x-flac") || ctype_is(ct, "audio/ogg") || ctype_is(ct, "audio/opus") ||
           ctype_is(ct, "application/ogg");
}

/* The container a raw audio body's media type names (its bytes must agree: sg_audio_decode checks
 * the magic). */
static sg_audio_format ctype_audio_format(const char *ct)
{
    if (ctype_is(ct, "audio/flac") || ctype_is(ct, "audio/x-flac"))
        return SG_AUDIO_FLAC;
    if (ctype_is(ct, "audio/ogg") || ctype_is(ct, "audio/opus") || ctype_is(ct, "application/ogg"))
        return SG_AUDIO_OGG;
    return SG_AUDIO_WAV;
}

bool sg_req_client_keyframe_header(sg_req *r, bool *out)
{
    *out = false;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Client-Keyframe");
    if (!h)
        return true;
    if (!sg_parse_bool(h, out)) {
        sg_req_error(r, 422, "INVALID_REQUEST", "header X-Client-Keyframe must be true or false "
                     "(got \"%.40s\")", h);
        return false;
    }
    return true;
}

/* The client-keyframe hint: header X-Client-Keyframe (any body) or the JSON field
 * "client_keyframe" (a JSON body; it wins over the header when both are given). */
static void handle_frame(sg_req *r)
{
    const sg_config *cfg = r->srv->cfg;
    if (!sg_req_client_keyframe_header(r, &r->in.client_keyframe))
        return;
    if (ctype_image(r->content_type)) {
        if (!take_body(r, &r->in.image, &r->in.image_len)) {
            sg_req_error(r, 400, "INVALID_IMAGE", "empty image body");
            return;
        }
        if (r->in.image_len > cfg->frame_max_bytes) {
            sg_req_error(r, 413, "PAYLOAD_TOO_LARGE", "frame of %zu bytes is over FRAME_BUFFER_MAX_BYTES=%zu",
                         r->in.image_len, cfg->frame_max_bytes);
            return;
        }
    } else {
        json_t *body;
        if (!parse_json_body(r, &body))
            return;
        const char *b64;
        bool ok = opt_string(r, body, "image_base64", "image", &b64) &&
                  opt_bool(r, body, "client_keyframe", &r->in.client_keyframe);
        if (ok && !b64) {
            sg_req_error(r, 400, "INVALID_REQUEST", "missing \"image_base64\" (a base64 JPEG or PNG)");
            ok = false;
        }
        if (ok)
            ok = decode_b64_field(r, "image_base64", b64, "INVALID_IMAGE", cfg->frame_max_bytes,
                                  "FRAME_BUFFER_MAX_BYTES", &r->in.image, &r->in.image_len);
        json_decref(body);
        if (!ok)
            return;
    }
    sg_req_submit(r, work_frame);
}

static void handle_audio(sg_req *r)
{
    if (ctype_audio(r->content_type)) {
        if (!take_body(r, &r->in.audio, &r->in.audio_len)) {
            sg_req_error(r, 400, "INVALID_AUDIO", "empty audio body");
            return;
        }
        if (r->in.audio_len > r->srv->cfg->audio_max_bytes) {
            sg_req_error(r, 413, "PAYLOAD_TOO_LARGE", "audio of %zu bytes is over AUDIO_BUFFER_MAX_BYTES=%zu",
                         r->in.audio_len, r->srv->cfg->audio_max_bytes);
            return;
        }
        r->in.audio_format = ctype_audio_format(r->content_type);
        r->in.sample_rate = SG_AUDIO_RATE;
    } else {
        json_t *body;
        if (!parse_json_body(r, &body))
            return;
        const char *b64, *lang;
        bool ok = opt_string(r, body, "audio_base64", "audio", &b64) &&
                  opt_string(r, body, "language", NULL, &lang);
        if (ok && !b64) {
            sg_req_error(r, 400, "INVALID_REQUEST", "missing \"audio_base64\" (WAV, FLAC, Ogg or headerless PCM)");
            ok = false;
        }
        if (ok && lang && !(r->in.language = strdup(lang)))
            ok = false;
        if (ok)
            ok = parse_audio_fields(r, body, b64);
        json_decref(body);
        if (!ok) {
            if (!r->done)
                sg_req_error(r, 503, "OVERLOADED", "out of memory");
            return;
        }
    }
    sg_req_submit(r, work_audio);
}

static void handle_query(sg_req *r)
{
    const sg_config *cfg = r->srv->cfg;
    json_t *body;
    if (!parse_json_body(r, &body))
        return;
    const char *text, *audio, *image, *lang;
    bool have_max;
    long max_tokens = 0;
    bool ok = opt_string(r, body, "text_query", "text", &text) &&
              opt_string(r, body, "audio_base64", "audio", &audio) &&
              opt_string(r, body, "image_base64", "image", &image) &&
              opt_string(r, body, "language", NULL, &lang) &&
              opt_bool(r, body, "cloud_offload", &r->in.cloud_offload) &&
              opt_int(r, body, "max_tokens", 1, 4096, &have_max, &max_tokens);
    if (ok) {
        r->in.max_tokens = have_max ? (int)max_tokens : 0;
        if (text && text[0] && !(r->in.text = strdup(text)))
            ok = false;
        if (ok && lang && !(r->in.language = strdup(lang)))
            ok = false;
        if (!ok)
            sg_req_error(r, 503, "OVERLOADED", "out of memory");
    }
    if (ok && image && image[0])
        ok = decode_b64_field(r, "image_base64", image, "INVALID_IMAGE", cfg->frame_max_bytes,
                              "FRAME_BUFFER_MAX_BYTES", &r->in.image, &r->in.image_len);
    if (ok && audio && audio[0])
        ok = parse_audio_fields(r, body, audio);
    json_decref(body);
    if (!ok)
        return;
    sg_req_submit(r, work_query);
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static bool method_is(sg_req *r, const char *m) { return strcmp(r->method, m) == 0; }

static void method_not_allowed(sg_req *r, const char *allow)
{
    r->allow = allow;
    sg_req_error(r, 405, "INVALID_REQUEST", "method %s is not allowed here (allowed: %s)", r->method, allow);
}

void sg_route_dispatch(sg_req *r)
{
    bool get = method_is(r, "GET") || method_is(r, "HEAD");
    void (*get_handler)(sg_req *) = NULL;
    switch (r->route) {
    case SG_ROUTE_HEALTH: get_handler = handle_health; break;
    case SG_ROUTE_READY: get_handler = handle_ready; break;
    case SG_ROUTE_METRICS: get_handler = handle_metrics; break;
    case SG_ROUTE_METRICS_SUMMARY: get_handler = handle_metrics_summary; break;
    case SG_ROUTE_METRICS_PROMETHEUS: get_handler = handle_metrics_prometheus; break;
    case SG_ROUTE_SESSIONS:
        if (method_is(r, "POST"))
            handle_sessions_post(r);
        else if (get)
            handle_sessions_get(r);
        else
            method_not_allowed(r, "GET, HEAD, POST");
        return;
    case SG_ROUTE_SESSION:
        if (method_is(r, "DELETE"))
            handle_session_delete(r);
        else
            method_not_allowed(r, "DELETE");
        return;
    case SG_ROUTE_FRAME:
    case SG_ROUTE_AUDIO:
    case SG_ROUTE_QUERY:
    case SG_ROUTE_MULTIMODAL:
        if (!method_is(r, "POST"))
            method_not_allowed(r, "POST");
        else if (!atomic_load(&r->srv->ready)) {
            sg_req_error(r, 503, "MODEL_UNAVAILABLE", "models are still loading; retry shortly");
            r->retry_after = 1;
        } else if (lookup_session(r)) {
            if (r->route == SG_ROUTE_FRAME)
                handle_frame(r);
            else if (r->route == SG_ROUTE_AUDIO)
                handle_audio(r);
            else
                handle_query(r);
        }
        return;
    case SG_ROUTE_DAT_SESSION:
    case SG_ROUTE_DAT_STREAM:
    case SG_ROUTE_DAT_TURN:
        if (!method_is(r, "POST"))
            method_not_allowed(r, "POST");
        else
            sg_dat_dispatch(r);
        return;
    case SG_ROUTE_WS_AUDIO:
    case SG_ROUTE_WS_FRAME:
        if (!method_is(r, "GET"))
            method_not_allowed(r, "GET");
        else if (!atomic_load(&r->srv->ready)) {
            sg_req_error(r, 503, "MODEL_UNAVAILABLE", "models are still loading; retry shortly");
            r->retry_after = 1;
        } else if (lookup_session(r))
            sg_ws_dispatch(r); /* handshake, model, cap; then 101 (ws_conn.c) */
        return;
    case SG_ROUTE_NONE:
        sg_req_error(r, 404, "INVALID_REQUEST", "no such route: %s %.200s", r->method, r->url);
        return;
    }
    if (get)
        get_handler(r);
    else
        method_not_allowed(r, "GET, HEAD");
}
