/* The HTTP client of libsgclient: sessions, frame/audio uploads and queries against sg-edge's API
 * (../shared/API.md) over one libcurl handle (keep-alive), with the retry policy of retry.c and
 * byte/latency accounting per request kind. Bytes are counted as libcurl hands them to the socket
 * (its debug callback: request line + headers, then body; response headers + body), for every
 * attempt, retries included; TCP/IP and TLS overhead are not counted. (CURLINFO_REQUEST_SIZE is not
 * used: it counts a POSTFIELDS body in some cases and not in others.) */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "sgclient.h"
#include "status.h"

#define MAX_RESPONSE_BYTES (16u << 20)

struct sg_client {
    CURL *curl;
    char *base;
    char *api_key_header;
    sg_client_config cfg;
    sg_rng rng;
    sg_client_stats stats;
    /* per-attempt response state */
    char *body;
    size_t body_len, body_cap;
    bool body_overflow;
    double retry_after_ms;
    uint64_t hdr_out, data_out, hdr_in, data_in; /* this attempt, from the debug callback */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static double default_now(void *ud)
{
    (void)ud;
    return mono_ms();
}

static void default_sleep(void *ud, double ms)
{
    (void)ud;
    if (!(ms > 0.0))
        return;
    struct timespec ts = {(time_t)(ms / 1000.0), (long)((ms - (double)(long long)(ms / 1000.0) * 1000.0) * 1e6)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

void sg_client_config_default(sg_client_config *c, const char *base_url)
{
    memset(c, 0, sizeof *c);
    c->base_url = base_url;
    c->timeout_ms = 30000;
    c->connect_timeout_ms = 5000;
    sg_retry_policy_default(&c->retry);
    c->rng_seed = 0; /* a different jitter sequence per client */
}

sg_client_status sg_client_new(const sg_client_config *cfg, sg_client **out,
                               char err[SG_CLIENT_ERROR_SIZE])
{
    *out = NULL;
    if (!cfg || !cfg->base_url || !*cfg->base_url)
        return sg_client_fail(err, SG_CLIENT_EINVAL, "no server URL");
    if (strncmp(cfg->base_url, "http://", 7) != 0 && strncmp(cfg->base_url, "https://", 8) != 0)
        return sg_client_fail(err, SG_CLIENT_EINVAL, "server URL must start with http:// or https://");
    pthread_once(&curl_once, curl_init_once);
    sg_client *c = calloc(1, sizeof *c);
    if (!c)
        return sg_client_fail(err, SG_CLIENT_ENOMEM, "out of memory");
    c->cfg = *cfg;
    c->base = strdup(cfg->base_url);
    if (c->base) {
        size_t n = strlen(c->base);
        while (n > 0 && c->base[n - 1] == '/')
            c->base[--n] = 0;
    }
    if (cfg->api_key) {
        size_t n = strlen(cfg->api_key) + 16;
        c->api_key_header = malloc(n);
        if (c->api_key_header)
            snprintf(c->api_key_header, n, "X-API-Key: %s", cfg->api_key);
    }
    c->cfg.base_url = c->base;
    c->cfg.api_key = NULL;
    c->curl = curl_easy_init();
    if (!c->base || (cfg->api_key && !c->api_key_header) || !c->curl) {
        sg_client_free(c);
        return sg_client_fail(err, SG_CLIENT_ENOMEM, "cannot start libcurl (out of memory?)");
    }
    if (!c->cfg.now_ms)
        c->cfg.now_ms = default_now;
    if (!c->cfg.sleep_ms)
        c->cfg.sleep_ms = default_sleep;
    if (c->cfg.timeout_ms <= 0)
        c->cfg.timeout_ms = 30000;
    if (c->cfg.connect_timeout_ms <= 0)
        c->cfg.connect_timeout_ms = 5000;
    if (c->cfg.retry.max_attempts < 1)
        c->cfg.retry.max_attempts = 1;
    /* phones must not retry in lockstep: unless the caller fixes the seed, each client's jitter
     * comes from the clock and its own address */
    uint64_t seed = cfg->rng_seed;
    if (!seed)
        seed = (uint64_t)(mono_ms() * 1e6) ^ ((uint64_t)(uintptr_t)c << 17) ^ (uint64_t)time(NULL);
    sg_rng_seed(&c->rng, seed);
    *out = c;
    return SG_CLIENT_OK;
}

void sg_client_free(sg_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base);
    free(c->api_key_header);
    free(c->body);
    free(c);
}

void sg_client_get_stats(const sg_client *c, sg_client_stats *out) { *out = c->stats; }

void sg_client_result_clear(sg_client_result *r)
{
    if (!r)
        return;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

/* ---- one attempt ------------------------------------------------------------------------------ */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    sg_client *c = ud;
    size_t add = sz * n;
    if (c->body_len + add + 1 > MAX_RESPONSE_BYTES) {
        c->body_overflow = true;
        return 0; /* aborts the transfer: no API response is this large */
    }
    if (c->body_len + add + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        while (cap < c->body_len + add + 1)
            cap *= 2;
        char *nb = realloc(c->body, cap);
        if (!nb)
            return 0;
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, p, add);
    c->body_len += add;
    c->body[c->body_len] = 0;
    return add;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    sg_client *c = ud;
    size_t len = sz * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && len < 256 && strncasecmp(p, name, sizeof name - 1) == 0) {
        char v[256];
        memcpy(v, p + sizeof name - 1, len - (sizeof name - 1));
        v[len - (sizeof name - 1)] = 0;
        c->retry_after_ms = sg_retry_after_parse(v, (double)time(NULL));
    } else if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        c->retry_after_ms = -1.0; /* a new response (e.g. after 100 Continue) */
    }
    return len;
}

static void parse_error_body(sg_client *c, sg_client_result *res, int status)
{
    res->error[0] = 0;
    res->server_ms = -1.0;
    if (!c->body_len)
        return;
    json_t *j = json_loadb(c->body, c->body_len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    if (status < 200 || status >= 300) {
        const char *code = json_string_value(json_object_get(j, "error"));
        const char *detail = json_string_value(json_object_get(j, "detail"));
        if (code)
            snprintf(res->error, sizeof res->error, "%s", code);
        if (detail)
            snprintf(res->detail, sizeof res->detail, "%s", detail);
    }
    json_t *lat = json_object_get(j, "latency_ms");
    if (!json_is_object(lat))
        lat = json_object_get(json_object_get(j, "metadata"), "latency_ms");
    json_t *total = json_object_get(lat, "total");
    if (json_is_number(total))
        res->server_ms = json_number_value(total);
    json_decref(j);
}

static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
    (void)h;
    (void)data;
    sg_client *c = ud;
    switch (type) {
    case CURLINFO_HEADER_OUT: c->hdr_out += size; break;
    case CURLINFO_DATA_OUT: c->data_out += size; break;
    case CURLINFO_HEADER_IN: c->hdr_in += size; break;
    case CURLINFO_DATA_IN: c->data_in += size; break;
    default: break;
    }
    return 0;
}

/* Returns the HTTP status, 0 when there was no response. */
static int attempt(sg_client *c, const char *method, const char *url, struct curl_slist *hdrs,
                   const void *body, size_t len, sg_client_result *res)
{
    CURL *h = c->curl;
    curl_easy_reset(h);
    c->body_len = 0;
    c->body_overflow = false;
    c->retry_after_ms = -1.0;
    c->hdr_out = c->data_out = c->hdr_in = c->data_in = 0;
    if (c->body)
        c->body[0] = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->cfg.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, c);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L); /* feeds on_debug; nothing is printed */
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
    }
    double t0 = mono_ms();
    CURLcode rc = curl_easy_perform(h);
    res->latency_ms = mono_ms() - t0;
    long code = 0;
    res->bytes_up += c->hdr_out + c->data_out;
    res->body_up += c->data_out;
    res->bytes_down += c->hdr_in + c->data_in;
    res->retry_after_ms = -1.0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        res->retry_after_ms = c->retry_after_ms;
        res->detail[0] = 0;
        parse_error_body(c, res, (int)code);
    } else {
        res->network_errors++;
        res->error[0] = 0;
        res->server_ms = -1.0;
        snprintf(res->detail, sizeof res->detail, "%s",
                 c->body_overflow ? "response too large" : curl_easy_strerror(rc));
    }
    int cls = code >= 100 && code < 600 ? (int)(code / 100) : 0;
    c->stats.by_status[cls]++;
    return (int)code;
}

/* sg_client_request with one more header line ("Name: value", or NULL). */
static sg_client_status request_ex(sg_client *c, sg_upload_kind kind, const char *method,
                                   const char *path, const char *content_type, const char *extra,
                                   const void *body, size_t len, sg_client_result *res)
{
    sg_client_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    res->server_ms = -1.0;
    res->retry_after_ms = -1.0;
    if (!c || !method || !path || kind < 0 || kind >= SG_UPLOAD_KINDS) {
        res->outcome = SG_CLIENT_EINVAL;
        return SG_CLIENT_EINVAL;
    }
    size_t ul = strlen(c->base) + strlen(path) + 1;
    char *url = malloc(ul);
    char ct[160];
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "application/json");
    struct curl_slist *hdrs = NULL, *t;
    bool ok = url != NULL;
    if (ok) {
        snprintf(url, ul, "%s%s", c->base, path);
        ok = (t = curl_slist_append(hdrs, "Expect:")) != NULL; /* no 100-continue round trip */
        hdrs = ok ? t : hdrs;
    }
    if (ok && body) {
        ok = (t = curl_slist_append(hdrs, ct)) != NULL;
        hdrs = ok ? t : hdrs;
    }
    if (ok && c->api_key_header) {
        ok = (t = curl_slist_append(hdrs, c->api_key_header)) != NULL;
        hdrs = ok ? t : hdrs;
    }
    if (ok && extra) {
        ok = (t = curl_slist_append(hdrs, extra)) != NULL;
        hdrs = ok ? t : hdrs;
    }
    if (!ok) {
        free(url);
        curl_slist_free_all(hdrs);
        res->outcome = SG_CLIENT_ENOMEM;
        return SG_CLIENT_ENOMEM;
    }
    sg_uniform_fn uniform = c->cfg.uniform ? c->cfg.uniform : sg_rng_uniform;
    void *rng_ud = c->cfg.uniform ? c->cfg.ud : (void *)&c->rng;
    sg_retry_state st;
    memset(&st, 0, sizeof st);
    double t0 = c->cfg.now_ms(c->cfg.ud);
    sg_client_status outcome;
    for (;;) {
        int status = attempt(c, method, url, hdrs, body, len, res);
        res->status = status;
        sg_retry_action a = sg_retry_next(&c->cfg.retry, &st, status, res->retry_after_ms,
                                          res->error, c->cfg.now_ms(c->cfg.ud), uniform, rng_ud);
        if (a == SG_RETRY_DONE) {
            outcome = status >= 200 && status < 300 ? SG_CLIENT_OK : SG_CLIENT_FAILED;
            break;
        }
        if (a == SG_RETRY_GIVE_UP) {
            outcome = SG_CLIENT_GAVE_UP;
            break;
        }
        double wait = st.next_at_ms - c->cfg.now_ms(c->cfg.ud);
        if (wait > 0.0)
            c->cfg.sleep_ms(c->cfg.ud, wait);
        if (c->cfg.keep_trying && !c->cfg.keep_trying(c->cfg.ud, kind, st.attempts)) {
            outcome = SG_CLIENT_ABANDONED;
            break;
        }
    }
    res->total_ms = c->cfg.now_ms(c->cfg.ud) - t0;
    res->attempts = st.attempts;
    res->retries = st.attempts - 1;
    res->outcome = outcome;
    if (c->body_len) {
        res->body = malloc(c->body_len + 1);
        if (res->body) {
            memcpy(res->body, c->body, c->body_len + 1);
            res->body_len = c->body_len;
        }
    }
    sg_client_kind_stats *k = &c->stats.kind[kind];
    k->requests++;
    k->attempts += (uint64_t)res->attempts;
    k->retries += (uint64_t)res->retries;
    k->network_errors += (uint64_t)res->network_errors;
    k->bytes_up += res->bytes_up;
    k->body_up += res->body_up;
    k->bytes_down += res->bytes_down;
    if (outcome == SG_CLIENT_OK) {
        k->ok++;
        k->latency_sum_ms += res->latency_ms;
    } else {
        k->failed++;
    }
    free(url);
    curl_slist_free_all(hdrs);
    if (res == &dummy)
        sg_client_result_clear(res);
    return outcome;
}

sg_client_status sg_client_request(sg_client *c, sg_upload_kind kind, const char *method,
                                   const char *path, const char *content_type, const void *body,
                                   size_t len, sg_client_result *res)
{
    return request_ex(c, kind, method, path, content_type, NULL, body, len, res);
}

/* ---- the API ------------------------------------------------------------------------------- */

static bool valid_session_id(const char *id)
{
    if (!id || !*id || strlen(id) >= SG_CLIENT_SESSION_ID_SIZE)
        return false;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-')
            return false;
    return true;
}

static char *base64_encode(const uint8_t *in, size_t n, size_t *out_len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = 4 * ((n + 2) / 3);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = tbl[(v >> 6) & 63];
        *o++ = tbl[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *o++ = tbl[v >> 18];
        *o++ = tbl[(v >> 12) & 63];
        *o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    *out_len = len;
    return out;
}

sg_client_status sg_client_create_session(sg_client *c, char session_id[SG_CLIENT_SESSION_ID_SIZE],
                                          sg_client_result *res)
{
    sg_client_result local;
    sg_client_result *r = res ? res : &local;
    session_id[0] = 0;
    sg_client_status st = sg_client_request(c, SG_UPLOAD_CONTROL, "POST", "/sessions", NULL, "{}", 2, r);
    if (st == SG_CLIENT_OK) {
        json_t *j = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
        const char *id = json_string_value(json_object_get(j, "session_id"));
        if (id && valid_session_id(id)) {
            snprintf(session_id, SG_CLIENT_SESSION_ID_SIZE, "%s", id);
        } else {
            snprintf(r->detail, sizeof r->detail, "the server's answer has no session_id");
            st = r->outcome = SG_CLIENT_FAILED;
        }
        json_decref(j);
    }
    if (!res)
        sg_client_result_clear(&local);
    return st;
}

sg_client_status sg_client_delete_session(sg_client *c, const char *session_id, sg_client_result *res)
{
    char path[96];
    if (!valid_session_id(session_id)) {
        if (res) {
            memset(res, 0, sizeof *res);
            res->outcome = SG_CLIENT_EINVAL;
        }
        return SG_CLIENT_EINVAL;
    }
    snprintf(path, sizeof path, "/sessions/%s", session_id);
    return sg_client_request(c, SG_UPLOAD_CONTROL, "DELETE", path, NULL, NULL, 0, res);
}

static sg_client_status bad_args(sg_client_result *res)
{
    if (res) {
        memset(res, 0, sizeof *res);
        res->outcome = SG_CLIENT_EINVAL;
        res->server_ms = res->retry_after_ms = -1.0;
    }
    return SG_CLIENT_EINVAL;
}

sg_client_status sg_client_upload_frame(sg_client *c, const char *session_id, const uint8_t *jpeg,
                                        size_t len, sg_client_result *res)
{
    return sg_client_upload_frame_hint(c, session_id, jpeg, len, false, res);
}

sg_client_status sg_client_upload_frame_hint(sg_client *c, const char *session_id,
                                             const uint8_t *jpeg, size_t len, bool client_keyframe,
                                             sg_client_result *res)
{
    if (!c || !valid_session_id(session_id) || !jpeg || !len)
        return bad_args(res);
    char path[96];
    snprintf(path, sizeof path, "/sessions/%s/frame", session_id);
    if (!c->cfg.frame_json)
        return request_ex(c, SG_UPLOAD_FRAME, "POST", path, "image/jpeg",
                          client_keyframe ? "X-Client-Keyframe: true" : NULL, jpeg, len, res);
    size_t b64n;
    char *b64 = base64_encode(jpeg, len, &b64n);
    static const char pre[] = "{\"image_base64\":\"";
    const char *post = client_keyframe ? "\",\"client_keyframe\":true}" : "\"}";
    const size_t post_len = strlen(post);
    char *body = b64 ? malloc(sizeof pre - 1 + b64n + post_len + 1) : NULL;
    if (!body) {
        free(b64);
        if (res) {
            memset(res, 0, sizeof *res);
            res->outcome = SG_CLIENT_ENOMEM;
        }
        return SG_CLIENT_ENOMEM;
    }
    size_t n = 0;
    memcpy(body, pre, sizeof pre - 1);
    n += sizeof pre - 1;
    memcpy(body + n, b64, b64n);
    n += b64n;
    memcpy(body + n, post, post_len);
    n += post_len;
    free(b64);
    sg_client_status st = sg_client_request(c, SG_UPLOAD_FRAME, "POST", path, NULL, body, n, res);
    free(body);
    return st;
}

sg_client_status sg_client_upload_audio(sg_client *c, const char *session_id, const uint8_t *audio,
                                        size_t len, sg_client_result *res)
{
    if (!c || !valid_session_id(session_id) || !audio || !len)
        return bad_args(res);
    char path[96];
    snprintf(path, sizeof path, "/sessions/%s/audio", session_id);
    const char *ct = "audio/wav";
    if (len >= 4 && memcmp(audio, "OggS", 4) == 0)
        ct = "audio/ogg";
    else if (len >= 4 && memcmp(audio, "fLaC", 4) == 0)
        ct = "audio/flac";
    return sg_client_request(c, SG_UPLOAD_AUDIO, "POST", path, ct, audio, len, res);
}

sg_client_status sg_client_query(sg_client *c, const char *session_id, const char *text,
                                 const uint8_t *jpeg, size_t jpeg_len, sg_client_result *res)
{
    if (!c || !valid_session_id(session_id) || ((!text || !*text) && (!jpeg || !jpeg_len)))
        return bad_args(res);
    json_t *t = NULL;
    if (text && *text && !(t = json_string(text)))
        return bad_args(res); /* not UTF-8 */
    json_t *o = json_object();
    bool ok = o != NULL;
    if (ok && t) {
        ok = json_object_set_new(o, "text_query", t) == 0;
        t = NULL;
    }
    json_decref(t);
    if (ok && jpeg && jpeg_len) {
        size_t b64n;
        char *b64 = base64_encode(jpeg, jpeg_len, &b64n);
        ok = b64 && json_object_set_new(o, "image_base64", json_stringn(b64, b64n)) == 0;
        free(b64);
    }
    char *body = ok ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body) {
        if (res) {
            memset(res, 0, sizeof *res);
            res->outcome = SG_CLIENT_ENOMEM;
            res->server_ms = res->retry_after_ms = -1.0;
        }
        return SG_CLIENT_ENOMEM;
    }
    char path[96];
    snprintf(path, sizeof path, "/sessions/%s/query", session_id);
    sg_client_status st = sg_client_request(c, SG_UPLOAD_QUERY, "POST", path, NULL, body, strlen(body), res);
    free(body);
    return st;
}

/* ---- WAV ---------------------------------------------------------------------------------------- */

static void put_le(uint8_t *p, uint32_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

size_t sg_wav_pcm16(const int16_t *samples, size_t n, int sample_rate, uint8_t *out)
{
    uint32_t data = (uint32_t)(n * 2);
    memcpy(out, "RIFF", 4);
    put_le(out + 4, 36 + data, 4);
    memcpy(out + 8, "WAVEfmt ", 8);
    put_le(out + 16, 16, 4);
    put_le(out + 20, 1, 2); /* PCM */
    put_le(out + 22, 1, 2); /* mono */
    put_le(out + 24, (uint32_t)sample_rate, 4);
    put_le(out + 28, (uint32_t)sample_rate * 2, 4);
    put_le(out + 32, 2, 2);
    put_le(out + 34, 16, 2);
    memcpy(out + 36, "data", 4);
    put_le(out + 40, data, 4);
    for (size_t i = 0; i < n; i++)
        put_le(out + 44 + 2 * i, (uint16_t)samples[i], 2);
    return 44 + (size_t)data;
}
