/* Streamed answers (sgclient.h, "streamed answers"): POST /query with Accept: text/event-stream on
 * an easy handle of its own, performed on the caller's thread so that its callback runs there;
 * the events go through the SSE parser (sse.c), their JSON is read once and the audio decoded
 * before the callback sees them. /ws/audio messages take the same path (sg_answer_ws_message). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "base/base64.h"
#include "client_internal.h"
#include "status.h"

#define MAX_ERROR_BODY (1u << 20) /* a non-stream answer (a JSON error) kept at most */

/* One message's JSON as an event for the caller (the audio decoded into *audio, owned). */
static sg_client_status to_event(const char *type, json_t *j, const char *raw, size_t raw_len,
                                 double t_ms, sg_answer_event *ev, uint8_t **audio)
{
    memset(ev, 0, sizeof *ev);
    *audio = NULL;
    ev->type = type;
    ev->sentence = -1;
    ev->json = raw;
    ev->json_len = raw_len;
    ev->t_ms = t_ms;
    ev->answer = json_integer_value(json_object_get(j, "answer"));
    const char *text = json_string_value(json_object_get(j, "text"));
    if (strcmp(type, "error") == 0)
        text = json_string_value(json_object_get(j, "detail"));
    ev->text = text;
    if (strcmp(type, "audio") == 0) {
        const char *b64 = json_string_value(json_object_get(j, "audio_base64"));
        json_t *n = json_object_get(j, "sentence");
        if (!b64 || !json_is_integer(n))
            return SG_CLIENT_EFORMAT;
        size_t len = 0;
        if (sg_base64_decode(b64, strlen(b64), audio, &len, NULL) != SG_OK)
            return SG_CLIENT_EFORMAT;
        ev->sentence = (int)json_integer_value(n);
        ev->format = json_string_value(json_object_get(j, "format"));
        ev->sample_rate = (int)json_integer_value(json_object_get(j, "sample_rate"));
        ev->audio = *audio;
        ev->audio_len = len;
    }
    return SG_CLIENT_OK;
}

sg_client_status sg_answer_ws_message(const char *msg, size_t len, sg_answer_fn on_event, void *ud)
{
    if (!msg || !on_event)
        return SG_CLIENT_EINVAL;
    json_t *j = json_loadb(msg, len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_object(j) || !type) {
        json_decref(j);
        return SG_CLIENT_EFORMAT;
    }
    sg_answer_event ev;
    uint8_t *audio;
    sg_client_status st = to_event(type, j, msg, len, -1, &ev, &audio);
    if (st == SG_CLIENT_OK && !on_event(ud, &ev))
        st = SG_CLIENT_ABANDONED;
    free(audio);
    json_decref(j);
    return st;
}

/* ---- over HTTP -------------------------------------------------------------------------------- */

typedef struct stream {
    sg_client *c;
    sg_answer_fn on_event;
    void *ud;
    double t0;
    long status;
    bool events;         /* the answer is text/event-stream */
    sg_sse_parser *parser;
    sg_client_status failed; /* EFORMAT/ENOMEM from the stream, ABANDONED by the callback */
    int delivered;       /* events handed to the callback */
    json_t *done;        /* the done event's data */
    json_t *error;       /* the error event's data */
    char *body;          /* a non-stream answer (an error) */
    size_t body_len;
    uint64_t header_bytes;
} stream;

static bool on_sse(void *ud, const char *event, const char *data, size_t len)
{
    stream *s = ud;
    json_t *j = json_loadb(data, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        s->failed = SG_CLIENT_EFORMAT;
        return false;
    }
    sg_answer_event ev;
    uint8_t *audio;
    sg_client_status st = to_event(event, j, data, len, sg_client_mono_ms() - s->t0, &ev, &audio);
    bool go_on = st == SG_CLIENT_OK;
    if (!go_on)
        s->failed = st;
    if (go_on && strcmp(event, "done") == 0) {
        json_decref(s->done);
        s->done = json_incref(j);
    } else if (go_on && strcmp(event, "error") == 0) {
        json_decref(s->error);
        s->error = json_incref(j);
    }
    if (go_on) {
        s->delivered++;
        if (!s->on_event(s->ud, &ev)) {
            s->failed = SG_CLIENT_ABANDONED;
            go_on = false;
        }
    }
    free(audio);
    json_decref(j);
    return go_on;
}

static size_t on_head(char *p, size_t sz, size_t n, void *ud)
{
    stream *s = ud;
    const size_t len = sz * n;
    s->header_bytes += len;
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new response (after a 100, a redirect) */
        s->events = false;
        s->status = strtol(memchr(p, ' ', len) ? (char *)memchr(p, ' ', len) + 1 : "0", NULL, 10);
    } else if (len > 13 && strncasecmp(p, "Content-Type:", 13) == 0) {
        const char *v = p + 13;
        while (*v == ' ')
            v++;
        s->events = strncasecmp(v, "text/event-stream", 17) == 0;
    }
    return len;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    stream *s = ud;
    const size_t len = sz * n;
    if (s->status == 200 && s->events) {
        sg_client_status st = sg_sse_parser_feed(s->parser, p, len, on_sse, s);
        if (st != SG_CLIENT_OK) {
            if (!s->failed)
                s->failed = st;
            return 0; /* ends the transfer */
        }
        return len;
    }
    if (s->body_len + len > MAX_ERROR_BODY)
        return 0;
    char *b = realloc(s->body, s->body_len + len + 1);
    if (!b)
        return 0;
    memcpy(b + s->body_len, p, len);
    s->body = b;
    s->body_len += len;
    s->body[s->body_len] = 0;
    return len;
}

static void copy_str(char *out, size_t cap, json_t *v)
{
    snprintf(out, cap, "%s", json_is_string(v) ? json_string_value(v) : "");
}

/* One attempt: the HTTP status (0: no response). */
static long attempt(stream *s, CURL *h, const char *url, struct curl_slist *hdrs,
                    const char *body, sg_client_result *res)
{
    sg_client *c = s->c;
    curl_easy_reset(h);
    s->status = 0;
    s->events = false;
    s->header_bytes = 0;
    free(s->body);
    s->body = NULL;
    s->body_len = 0;
    pthread_mutex_lock(&c->mu);
    const long http = c->http == SG_CLIENT_HTTP_1_1 ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2TLS;
    const bool verify = c->verify_peer;
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    pthread_mutex_unlock(&c->mu);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, http);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    /* a spoken answer may take longer than a request: the stream is cut when it stalls (nothing
     * for the per-attempt timeout), not at a total */
    long stall_s = c->cfg.timeout_ms / 1000 > 0 ? c->cfg.timeout_ms / 1000 : 1;
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall_s);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_head);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    const double t0 = sg_client_mono_ms();
    CURLcode rc = curl_easy_perform(h);
    res->latency_ms = sg_client_mono_ms() - t0;
    curl_off_t up = 0, down = 0;
    long req = 0, version = 0;
    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &req);
    curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &down);
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
    res->bytes_up += (uint64_t)req + (uint64_t)up;
    res->body_up += (uint64_t)up;
    res->bytes_down += s->header_bytes + (uint64_t)down;
    pthread_mutex_lock(&c->mu);
    if (version)
        c->last_http_version = version;
    pthread_mutex_unlock(&c->mu);
    if (rc != CURLE_OK && !s->failed && !(s->done || s->error)) {
        res->network_errors++;
        snprintf(res->detail, sizeof res->detail, "%s", curl_easy_strerror(rc));
        return s->status && s->delivered ? s->status : 0;
    }
    return s->status;
}

sg_client_status sg_client_query_stream(sg_client *c, const char *session_id, const char *text,
                                        const uint8_t *jpeg, size_t jpeg_len, bool speak,
                                        sg_answer_fn on_event, void *ud, sg_client_result *res)
{
    sg_client_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    res->server_ms = res->retry_after_ms = -1.0;
    if (!c || !session_id || !*session_id || strlen(session_id) >= SG_CLIENT_SESSION_ID_SIZE ||
        strchr(session_id, '/') || !on_event || (!text && !jpeg)) {
        res->outcome = SG_CLIENT_EINVAL;
        return SG_CLIENT_EINVAL;
    }
    json_t *q = json_pack("{s:s?,s:b}", "text_query", text, "speak", speak);
    char *b64 = NULL;
    if (q && jpeg) {
        size_t n;
        b64 = sg_base64_encode(jpeg, jpeg_len, &n);
        if (!b64 || json_object_set_new(q, "image_base64", json_string(b64)) != 0)
            json_decref(q), q = NULL;
    }
    free(b64);
    char *body = q ? json_dumps(q, JSON_COMPACT) : NULL;
    json_decref(q);
    char path[128], url[1024], tele[SG_TELEMETRY_HEADER_SIZE];
    snprintf(path, sizeof path, "/sessions/%s/query", session_id);
    snprintf(url, sizeof url, "%s%s", c->base, path);
    struct curl_slist *hdrs = NULL, *t;
    static const char *const fixed[] = {"Content-Type: application/json",
                                        "Accept: text/event-stream", "Expect:"};
    bool ok = body != NULL;
    for (int i = 0; ok && i < 3; i++)
        ok = (t = curl_slist_append(hdrs, fixed[i])) != NULL, hdrs = ok ? t : hdrs;
    if (ok && c->api_key_header)
        ok = (t = curl_slist_append(hdrs, c->api_key_header)) != NULL, hdrs = ok ? t : hdrs;
    if (ok && sg_client_telemetry_due(c, path, tele))
        ok = (t = curl_slist_append(hdrs, tele)) != NULL, hdrs = ok ? t : hdrs;
    stream s = {.c = c, .on_event = on_event, .ud = ud};
    CURL *h = ok ? curl_easy_init() : NULL;
    if (!h || sg_sse_parser_new(0, &s.parser) != SG_CLIENT_OK) {
        curl_easy_cleanup(h);
        curl_slist_free_all(hdrs);
        free(body);
        res->outcome = SG_CLIENT_ENOMEM;
        return SG_CLIENT_ENOMEM;
    }
    sg_retry_state rs = {0};
    sg_retry_action last = SG_RETRY_DONE; /* the retry policy's word on the last attempt */
    sg_client_status outcome;
    const double start = c->cfg.now_ms(c->cfg.ud);
    s.t0 = sg_client_mono_ms();
    for (;;) {
        const long status = attempt(&s, h, url, hdrs, body, res);
        res->status = (int)status;
        if (s.done || s.error || s.failed || s.delivered) {
            rs.attempts++;
            break; /* the stream started: never sent twice */
        }
        /* no stream: an error answer, or no answer; retried as any request */
        if (status && s.body) {
            json_t *e = json_loads(s.body, 0, NULL);
            copy_str(res->error, sizeof res->error, json_object_get(e, "error"));
            copy_str(res->detail, sizeof res->detail, json_object_get(e, "detail"));
            json_decref(e);
        }
        sg_uniform_fn uniform = c->cfg.uniform ? c->cfg.uniform : sg_rng_uniform;
        if (!c->cfg.uniform)
            pthread_mutex_lock(&c->mu);
        sg_retry_action a = sg_retry_next(&c->cfg.retry, &rs, (int)status, -1.0, res->error,
                                          c->cfg.now_ms(c->cfg.ud), uniform,
                                          c->cfg.uniform ? c->cfg.ud : (void *)&c->rng);
        if (!c->cfg.uniform)
            pthread_mutex_unlock(&c->mu);
        last = a;
        if (a != SG_RETRY_WAIT)
            break;
        double wait = rs.next_at_ms - c->cfg.now_ms(c->cfg.ud);
        if (wait > 0)
            c->cfg.sleep_ms(c->cfg.ud, wait);
        s.t0 = sg_client_mono_ms();
    }
    if (s.done) {
        outcome = SG_CLIENT_OK;
        res->body = json_dumps(s.done, JSON_COMPACT | JSON_REAL_PRECISION(9));
        res->body_len = res->body ? strlen(res->body) : 0;
        json_t *total = json_object_get(
            json_object_get(json_object_get(s.done, "metadata"), "latency_ms"), "total");
        res->server_ms = json_is_number(total) ? json_number_value(total) : -1.0;
    } else if (s.failed) {
        outcome = s.failed == SG_CLIENT_ABANDONED ? SG_CLIENT_ABANDONED : SG_CLIENT_FAILED;
        if (s.failed != SG_CLIENT_ABANDONED)
            snprintf(res->detail, sizeof res->detail, "the event stream broke off: %s",
                     sg_client_status_name(s.failed));
    } else if (s.error) {
        outcome = SG_CLIENT_FAILED;
        res->status = (int)json_integer_value(json_object_get(s.error, "status"));
        copy_str(res->error, sizeof res->error, json_object_get(s.error, "error"));
        copy_str(res->detail, sizeof res->detail, json_object_get(s.error, "detail"));
    } else if (s.delivered) {
        outcome = SG_CLIENT_FAILED; /* the stream ended without done: cut off */
        if (!res->detail[0])
            snprintf(res->detail, sizeof res->detail, "the event stream ended without done");
    } else {
        outcome = last == SG_RETRY_GIVE_UP ? SG_CLIENT_GAVE_UP : SG_CLIENT_FAILED;
    }
    res->attempts = rs.attempts > 0 ? rs.attempts : 1;
    res->retries = res->attempts - 1;
    res->total_ms = c->cfg.now_ms(c->cfg.ud) - start;
    res->outcome = outcome;
    sg_client_account(c, SG_UPLOAD_QUERY, res, 0);
    json_decref(s.done);
    json_decref(s.error);
    free(s.body);
    sg_sse_parser_free(s.parser);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    free(body);
    if (res == &dummy)
        sg_client_result_clear(res);
    return outcome;
}
