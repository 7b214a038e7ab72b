/* Reading a request on the HTTP thread: the body by its route's kind (JSON, or raw media bytes),
 * JSON fields with aliases and ranges, strict base64, the session the request names or creates
 * (with the X-Privacy-* headers), the client-keyframe header. Every check that fails sets the
 * error response (types -> 422, malformed -> 400, limits -> 413, media types -> 415). */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base64.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/uuid.h"
#include "server/telemetry.h"

/* ---- the body ---------------------------------------------------------------------------- */

void sg_work_input_free(sg_work_input *in)
{
    free(in->text);
    free(in->image);
    free(in->audio);
    free(in->language);
    free(in->dat_turn_id);
    free(in->system);
    free(in->history);
    free(in->v1_model);
    json_decref(in->v1_inputs);
    if (in->v1_audio_free)
        in->v1_audio_free(in->v1_audio);
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

/* The body as a JSON object (an empty body is {}). */
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

/* The media types a JSON_OR_IMAGE / JSON_OR_AUDIO route also takes raw, and for audio the
 * container they name (the bytes must agree: sg_audio_decode checks the magic). */
static const struct {
    sg_body_kind kind;
    sg_audio_format audio;
    const char *types[5];
} raw_media[] = {
    {SG_BODY_JSON_OR_IMAGE, SG_AUDIO_AUTO, {"image/jpeg", "image/jpg", "image/png"}},
    {SG_BODY_JSON_OR_AUDIO, SG_AUDIO_WAV, {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"}},
    {SG_BODY_JSON_OR_AUDIO, SG_AUDIO_FLAC, {"audio/flac", "audio/x-flac"}},
    {SG_BODY_JSON_OR_AUDIO, SG_AUDIO_OGG, {"audio/ogg", "audio/opus", "application/ogg"}},
};

/* The raw_media row of the request's Content-Type for its route's body kind, or -1. */
static int raw_media_of(const sg_req *r)
{
    sg_body_kind kind = r->route ? r->route->body : SG_BODY_JSON;
    for (int i = 0; i < (int)(sizeof raw_media / sizeof *raw_media); i++)
        for (int k = 0; raw_media[i].kind == kind && k < 5 && raw_media[i].types[k]; k++)
            if (ctype_is(r->content_type, raw_media[i].types[k]))
                return i;
    return -1;
}

sg_audio_format sg_req_raw_audio_format(const sg_req *r)
{
    int i = raw_media_of(r);
    return i >= 0 ? raw_media[i].audio : SG_AUDIO_WAV;
}

bool sg_req_body(sg_req *r, json_t **json)
{
    *json = NULL;
    if (raw_media_of(r) >= 0)
        return true; /* raw bytes of the route's media type: the handler takes r->body */
    return parse_json_body(r, json);
}

bool sg_req_take_body(sg_req *r, uint8_t **out, size_t *out_len)
{
    *out = (uint8_t *)r->body;
    *out_len = r->body_len;
    r->body = NULL;
    r->body_len = r->body_cap = 0;
    return *out != NULL;
}

/* ---- JSON fields ------------------------------------------------------------------------- */

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

/* The field when present and of type a or b; NULL when absent, or (with *bad set, after a 422
 * saying what it must be) of another type. */
static json_t *typed_field(sg_req *r, json_t *obj, const char *name, const char *alias,
                           json_type a, json_type b, const char *must_be, bool *bad)
{
    json_t *v = field(obj, name, alias);
    *bad = v && json_typeof(v) != a && json_typeof(v) != b;
    if (!*bad)
        return v;
    sg_req_error(r, 422, "INVALID_REQUEST", "field \"%s\" must be %s", field_name(obj, name, alias),
                 must_be);
    return NULL;
}

bool sg_req_opt_string(sg_req *r, json_t *obj, const char *name, const char *alias,
                       const char **out)
{
    bool bad;
    json_t *v = typed_field(r, obj, name, alias, JSON_STRING, JSON_STRING, "a string", &bad);
    *out = v ? sg_json_cstr(v) : NULL;
    if (v && !*out) {
        /* every string goes on as a C string (a prompt, base64, an id): refused rather than cut
         * at the NUL, which would answer a shorter question than the one asked */
        sg_req_error(r, 400, "INVALID_REQUEST", "field \"%s\" contains a NUL character (\\u0000), "
                     "which strings may not hold", field_name(obj, name, alias));
        return false;
    }
    return !bad;
}

bool sg_req_opt_int(sg_req *r, json_t *obj, const char *name, long lo, long hi, bool *present,
                    long *out)
{
    bool bad;
    json_t *v = typed_field(r, obj, name, NULL, JSON_INTEGER, JSON_INTEGER, "an integer", &bad);
    *present = false;
    if (!v)
        return !bad;
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        sg_req_error(r, 422, "INVALID_REQUEST", "field \"%s\" must be in %ld..%ld", name, lo, hi);
        return false;
    }
    *present = true;
    *out = (long)x;
    return true;
}

bool sg_req_opt_bool(sg_req *r, json_t *obj, const char *name, bool *out)
{
    bool bad;
    json_t *v = typed_field(r, obj, name, NULL, JSON_TRUE, JSON_FALSE, "true or false", &bad);
    if (v)
        *out = json_is_true(v);
    return !bad;
}

/* The Python runtime's words for a payload over a configured size, by the limit's variable. */
static const char *too_large_phrase(const char *limit_name)
{
    if (strcmp(limit_name, "AUDIO_BUFFER_MAX_BYTES") == 0)
        return "Audio payload exceeds configured maximum buffer size: ";
    if (strcmp(limit_name, "FRAME_BUFFER_MAX_BYTES") == 0)
        return "Frame payload exceeds configured maximum buffer size: ";
    return "";
}

bool sg_req_b64(sg_req *r, const char *name, const char *s, const char *code, size_t limit,
                const char *limit_name, uint8_t **out, size_t *out_len)
{
    sg_error err = {0};
    size_t slen = strlen(s);
    if (slen / 4 * 3 > limit + 3) {
        sg_req_error(r, 413, "PAYLOAD_TOO_LARGE", "%s%s is over the limit of %zu bytes (%s)",
                     too_large_phrase(limit_name), name, limit, limit_name);
        return false;
    }
    if (sg_base64_decode(s, slen, out, out_len, &err) != SG_OK) {
        sg_req_error(r, 400, code, "%s: %s", name, err.msg);
        return false;
    }
    if (*out_len > limit) {
        free(*out);
        *out = NULL;
        sg_req_error(r, 413, "PAYLOAD_TOO_LARGE", "%s%s is %zu bytes, over the limit of %zu bytes "
                     "(%s)", too_large_phrase(limit_name), name, *out_len, limit, limit_name);
        return false;
    }
    return true;
}

/* ---- error wording ------------------------------------------------------------------------- */

/* The Python runtime's phrase for an error: its clients, logs and alerts match on these words, so
 * a detail starts with them and our specifics follow after a colon. The error codes are ours. */
static const struct {
    int status;
    const char *code, *phrase;
} upstream_phrases[] = {
    {404, "INVALID_SESSION", "Unknown session id"},
    {400, "INVALID_AUDIO", "Invalid audio payload"},
    {400, "INVALID_IMAGE", "Invalid image payload"},
};

void sg_error_detail(char *out, size_t cap, int status, const char *code, const char *detail)
{
    const char *phrase = NULL;
    for (size_t i = 0; i < sizeof upstream_phrases / sizeof *upstream_phrases; i++)
        if (upstream_phrases[i].status == status && strcmp(upstream_phrases[i].code, code) == 0)
            phrase = upstream_phrases[i].phrase;
    if (!phrase || strncmp(detail, phrase, strlen(phrase)) == 0) {
        snprintf(out, cap, "%s", detail);
        return;
    }
    if (strncmp(detail, "audio: ", 7) == 0)
        detail += 7; /* media/audio.c's prefix says what the phrase already says */
    snprintf(out, cap, "%s: %s", phrase, detail);
}

/* ---- sessions and headers ----------------------------------------------------------------- */

void sg_req_unknown_session(sg_req *r)
{
    /* the id is echoed only when well-formed: it is client bytes */
    if (sg_uuid_valid(r->session_id))
        sg_req_error(r, 404, "INVALID_SESSION", "Unknown session id: %s (expired or deleted?)",
                     r->session_id);
    else
        sg_req_error(r, 404, "INVALID_SESSION", "Unknown session id: the id is not a session UUID");
}

bool sg_req_lookup_session(sg_req *r)
{
    sg_error err = {0};
    r->session = sg_session_get(r->srv->sessions, r->session_id, &err);
    if (!r->session) {
        if (err.code == SG_OK)
            sg_req_unknown_session(r);
        else
            sg_req_fail(r, err.code, "INVALID_REQUEST", &err); /* 503 STORE_UNAVAILABLE, 404 */
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

bool sg_req_telemetry(sg_req *r)
{
    const char *h = NULL;
    size_t len = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_HEADER_KIND, SG_TELEMETRY_HEADER,
                                      strlen(SG_TELEMETRY_HEADER), &h, &len) != MHD_YES || !h)
        return true;
    sg_client_report rep;
    sg_error err = {0};
    if (sg_client_report_parse(h, len, &rep, &err) != SG_OK) {
        sg_req_error(r, 422, "INVALID_REQUEST", "header " SG_TELEMETRY_HEADER ": %s", err.msg);
        return false;
    }
    sg_telemetry_report(r->srv->telemetry, r->session_id, &rep, sg_now_ms() / 1000.0);
    return true;
}

bool sg_req_wants_events(sg_req *r)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept");
    if (!h)
        return false;
    /* a media range list: "text/event-stream", "text/event-stream;q=1, application/json" */
    for (const char *p = h; (p = strcasestr(p, "text/event-stream")); p += 17) {
        const bool starts = p == h || p[-1] == ',' || p[-1] == ' ' || p[-1] == '\t';
        const char e = p[17];
        if (starts && (e == 0 || e == ',' || e == ';' || e == ' ' || e == '\t'))
            return true;
    }
    return false;
}
