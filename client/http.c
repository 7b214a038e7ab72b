/* The HTTP client of libsgclient: sessions, frame/audio uploads and queries against sg-edge's API
 * (../shared/API.md), with the retry policy of retry.c and byte/latency accounting per request kind.
 *
 * Transport: one libcurl multi handle per client holds its connections. Each request is an easy
 * handle added to it; HTTP/2 over TLS is used when the server offers it by ALPN (else HTTP/1.1),
 * and requests made at the same time from several threads share one HTTP/2 connection as
 * concurrent streams (CURLPIPE_MULTIPLEX; CURLOPT_PIPEWAIT makes a second request wait for the
 * first connection rather than open another). The API stays synchronous: a caller blocks until its
 * own request is done, and whichever waiting caller holds the "driver" role runs the multi handle
 * for everyone (curl_multi_poll / curl_multi_perform) until its own request ends, then hands the
 * role on. (A CURLSH share of connections would let each thread keep its curl_easy_perform, but
 * libcurl documents connection sharing as unsafe between concurrent threads, and it cannot
 * multiplex: every easy_perform runs its own event loop.)
 *
 * Bytes are counted as libcurl hands them to the socket (its debug callback: request line +
 * headers, then body; response headers + body), for every attempt, retries included; TCP/IP and
 * TLS overhead are not counted, nor HTTP/2 framing, and HTTP/2 headers are counted as libcurl shows
 * them before HPACK compression. (CURLINFO_REQUEST_SIZE is not used: it counts a POSTFIELDS body in
 * some cases and not in others.) */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "base/base64.h"
#include "sgclient.h"
#include "client_internal.h"
#include "status.h"

#define MAX_RESPONSE_BYTES (16u << 20)

/* One request attempt on its way through the multi handle. Its callbacks run on the driving
 * thread; the caller reads it after `done`, under the client's lock. */
typedef struct transfer {
    CURL *easy;
    char *body;
    size_t body_len, body_cap;
    bool body_overflow;
    double retry_after_ms;
    uint64_t hdr_out, data_out, hdr_in, data_in; /* from the debug callback */
    CURLcode rc;
    bool done;
    struct transfer *next; /* in the pending list */
} transfer;


static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

double sg_client_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static double default_now(void *ud)
{
    (void)ud;
    return sg_client_mono_ms();
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
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return sg_client_fail(err, SG_CLIENT_ENOMEM, "cannot create a mutex");
    }
    if (pthread_cond_init(&c->cv, NULL) != 0) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        return sg_client_fail(err, SG_CLIENT_ENOMEM, "cannot create a condition variable");
    }
    c->cfg = *cfg;
    c->verify_peer = true;
    c->http = SG_CLIENT_HTTP_AUTO;
    c->battery_pct = NAN;
    c->charging = -1;
    c->telemetry_interval_ms = SG_CLIENT_TELEMETRY_INTERVAL_MS;
    c->telemetry_sent_ms = -1;
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
    c->multi = curl_multi_init();
    if (c->multi) /* the default since libcurl 7.62; said anyway: this is what shares a connection */
        curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (!c->base || (cfg->api_key && !c->api_key_header) || !c->multi ||
        sg_usage_meter_new(&c->usage) != SG_CLIENT_OK) {
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
        seed = (uint64_t)(sg_client_mono_ms() * 1e6) ^ ((uint64_t)(uintptr_t)c << 17) ^ (uint64_t)time(NULL);
    sg_rng_seed(&c->rng, seed);
    *out = c;
    return SG_CLIENT_OK;
}

void sg_client_free(sg_client *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nspare; i++)
        curl_easy_cleanup(c->spare[i]);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    free(c->base);
    free(c->api_key_header);
    free(c->ca_file);
    sg_usage_meter_free(c->usage);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

sg_client_status sg_client_set_tls(sg_client *c, const char *ca_file, bool verify_peer,
                                   char err[SG_CLIENT_ERROR_SIZE])
{
    if (!c)
        return sg_client_fail(err, SG_CLIENT_EINVAL, "no client");
    char *copy = NULL;
    if (ca_file && !(copy = strdup(ca_file)))
        return sg_client_fail(err, SG_CLIENT_ENOMEM, "out of memory");
    pthread_mutex_lock(&c->mu);
    free(c->ca_file);
    c->ca_file = copy;
    c->verify_peer = verify_peer;
    pthread_mutex_unlock(&c->mu);
    return SG_CLIENT_OK;
}

sg_client_status sg_client_set_http(sg_client *c, sg_client_http version)
{
    if (!c || (version != SG_CLIENT_HTTP_AUTO && version != SG_CLIENT_HTTP_1_1))
        return SG_CLIENT_EINVAL;
    pthread_mutex_lock(&c->mu);
    c->http = version;
    pthread_mutex_unlock(&c->mu);
    return SG_CLIENT_OK;
}

const char *sg_client_http_version(const sg_client *c)
{
    sg_client *m = (sg_client *)c; /* the lock only */
    pthread_mutex_lock(&m->mu);
    long v = c->last_http_version;
    pthread_mutex_unlock(&m->mu);
    switch (v) {
    case CURL_HTTP_VERSION_1_0: return "1.0";
    case CURL_HTTP_VERSION_1_1: return "1.1";
    case CURL_HTTP_VERSION_2_0: return "2";
    case 30: return "3"; /* CURL_HTTP_VERSION_3, not in every libcurl's headers */
    default: return "";
    }
}

uint64_t sg_client_connections(const sg_client *c)
{
    sg_client *m = (sg_client *)c;
    pthread_mutex_lock(&m->mu);
    uint64_t n = c->connections;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void sg_client_get_stats(const sg_client *c, sg_client_stats *out)
{
    sg_client *m = (sg_client *)c;
    pthread_mutex_lock(&m->mu);
    *out = c->stats;
    pthread_mutex_unlock(&m->mu);
}

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
    transfer *t = ud;
    size_t add = sz * n;
    if (t->body_len + add + 1 > MAX_RESPONSE_BYTES) {
        t->body_overflow = true;
        return 0; /* aborts the transfer: no API response is this large */
    }
    if (t->body_len + add + 1 > t->body_cap) {
        size_t cap = t->body_cap ? t->body_cap : 4096;
        while (cap < t->body_len + add + 1)
            cap *= 2;
        char *nb = realloc(t->body, cap);
        if (!nb)
            return 0;
        t->body = nb;
        t->body_cap = cap;
    }
    memcpy(t->body + t->body_len, p, add);
    t->body_len += add;
    t->body[t->body_len] = 0;
    return add;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    transfer *t = ud;
    size_t len = sz * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && len < 256 && strncasecmp(p, name, sizeof name - 1) == 0) {
        char v[256];
        memcpy(v, p + sizeof name - 1, len - (sizeof name - 1));
        v[len - (sizeof name - 1)] = 0;
        t->retry_after_ms = sg_retry_after_parse(v, (double)time(NULL));
    } else if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        t->retry_after_ms = -1.0; /* a new response (e.g. after 100 Continue) */
    }
    return len;
}

static void parse_error_body(const transfer *t, sg_client_result *res, int status)
{
    res->error[0] = 0;
    res->server_ms = -1.0;
    if (!t->body_len)
        return;
    json_t *j = json_loadb(t->body, t->body_len, 0, NULL);
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
    transfer *t = ud;
    switch (type) {
    case CURLINFO_HEADER_OUT: t->hdr_out += size; break;
    case CURLINFO_DATA_OUT: t->data_out += size; break;
    case CURLINFO_HEADER_IN: t->hdr_in += size; break;
    case CURLINFO_DATA_IN: t->data_in += size; break;
    default: break;
    }
    return 0;
}

/* Runs the multi handle (mu held on entry and on return; released inside libcurl) until `mine`
 * is done. Every transfer that finishes meanwhile is marked done and its caller woken. */
static void drive(sg_client *c, transfer *mine)
{
    while (!mine->done) {
        for (transfer *t = c->pending; t; t = t->next) {
            CURLMcode mc = curl_multi_add_handle(c->multi, t->easy);
            if (mc != CURLM_OK) { /* out of memory in libcurl: fail this one attempt */
                t->rc = CURLE_OUT_OF_MEMORY;
                t->done = true;
            }
        }
        c->pending = NULL;
        pthread_mutex_unlock(&c->mu);
        int running = 0;
        curl_multi_perform(c->multi, &running);
        transfer *finished = NULL;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            transfer *t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            CURLcode rc = msg->data.result; /* msg is invalid after remove_handle */
            curl_multi_remove_handle(c->multi, msg->easy_handle);
            if (t) {
                t->rc = rc;
                t->next = finished;
                finished = t;
            }
        }
        pthread_mutex_lock(&c->mu);
        if (finished) {
            while (finished) {
                transfer *next = finished->next;
                finished->next = NULL;
                finished->done = true;
                finished = next;
            }
            pthread_cond_broadcast(&c->cv);
        }
        if (mine->done || c->pending)
            continue;
        pthread_mutex_unlock(&c->mu);
        /* sleeps until a socket is ready, a timeout of libcurl's is due, or another caller's
         * curl_multi_wakeup says it submitted a request (at most 1 s: libcurl's own timeouts
         * are also kept by curl_multi_poll) */
        curl_multi_poll(c->multi, NULL, 0, 1000, NULL);
        pthread_mutex_lock(&c->mu);
    }
}

/* Submits t and returns when it is done, driving the multi handle while no one else does. */
static void perform(sg_client *c, transfer *t)
{
    pthread_mutex_lock(&c->mu);
    t->done = false;
    t->next = c->pending;
    c->pending = t;
    bool someone_drives = c->driving;
    pthread_mutex_unlock(&c->mu);
    if (someone_drives)
        curl_multi_wakeup(c->multi); /* thread-safe: ends the driver's curl_multi_poll */
    pthread_mutex_lock(&c->mu);
    while (!t->done) {
        if (!c->driving) {
            c->driving = true;
            drive(c, t);
            c->driving = false;
            pthread_cond_broadcast(&c->cv); /* a waiting caller takes the role over */
        } else {
            pthread_cond_wait(&c->cv, &c->mu);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

static CURL *easy_take(sg_client *c)
{
    pthread_mutex_lock(&c->mu);
    CURL *h = c->nspare > 0 ? c->spare[--c->nspare] : NULL;
    pthread_mutex_unlock(&c->mu);
    return h ? h : curl_easy_init();
}

static void easy_give_back(sg_client *c, CURL *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&c->mu);
    if (c->nspare < SPARE_EASY_HANDLES) {
        c->spare[c->nspare++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (h)
        curl_easy_cleanup(h);
}

/* One attempt on t (whose easy handle is set); returns the HTTP status, 0 when there was no
 * response. */
static int attempt(sg_client *c, transfer *t, const char *method, const char *url,
                   struct curl_slist *hdrs, const void *body, size_t len, sg_client_result *res)
{
    CURL *h = t->easy;
    curl_easy_reset(h);
    t->body_len = 0;
    t->body_overflow = false;
    t->retry_after_ms = -1.0;
    t->hdr_out = t->data_out = t->hdr_in = t->data_in = 0;
    t->rc = CURLE_OK;
    if (t->body)
        t->body[0] = 0;
    pthread_mutex_lock(&c->mu);
    long http = c->http == SG_CLIENT_HTTP_1_1 ? CURL_HTTP_VERSION_1_1 : CURL_HTTP_VERSION_2TLS;
    bool verify = c->verify_peer;
    if (c->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file); /* libcurl copies the string */
    pthread_mutex_unlock(&c->mu);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)t);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    /* HTTP/2 when TLS's ALPN offers it, HTTP/1.1 otherwise (plain http:// is always 1.1) */
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, http);
    /* wait for a connection being set up to say whether it multiplexes, rather than opening
     * another one next to it */
    curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->cfg.timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, t);
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
    double t0 = sg_client_mono_ms();
    perform(c, t);
    res->latency_ms = sg_client_mono_ms() - t0;
    CURLcode rc = t->rc;
    long code = 0, version = 0, connects = 0;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
    res->bytes_up += t->hdr_out + t->data_out;
    res->body_up += t->data_out;
    res->bytes_down += t->hdr_in + t->data_in;
    res->retry_after_ms = -1.0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
        res->retry_after_ms = t->retry_after_ms;
        res->detail[0] = 0;
        parse_error_body(t, res, (int)code);
    } else {
        res->network_errors++;
        res->error[0] = 0;
        res->server_ms = -1.0;
        snprintf(res->detail, sizeof res->detail, "%s",
                 t->body_overflow ? "response too large" : curl_easy_strerror(rc));
    }
    int cls = code >= 100 && code < 600 ? (int)(code / 100) : 0;
    pthread_mutex_lock(&c->mu);
    c->stats.by_status[cls]++;
    c->connections += connects > 0 ? (uint64_t)connects : 0;
    if (version)
        c->last_http_version = version;
    pthread_mutex_unlock(&c->mu);
    return (int)code;
}

/* ---- telemetry ------------------------------------------------------------------------------ */

void sg_client_account(sg_client *c, sg_upload_kind kind, const sg_client_result *res, int frames)
{
    pthread_mutex_lock(&c->mu);
    sg_client_kind_stats *k = &c->stats.kind[kind];
    k->requests++;
    k->attempts += (uint64_t)res->attempts;
    k->retries += (uint64_t)res->retries;
    k->network_errors += (uint64_t)res->network_errors;
    k->bytes_up += res->bytes_up;
    k->body_up += res->body_up;
    k->bytes_down += res->bytes_down;
    if (res->outcome == SG_CLIENT_OK) {
        k->ok++;
        k->latency_sum_ms += res->latency_ms;
    } else {
        k->failed++;
    }
    sg_usage_meter_add(c->usage, c->cfg.now_ms(c->cfg.ud), res->bytes_up, frames);
    pthread_mutex_unlock(&c->mu);
}

void sg_client_set_device(sg_client *c, double battery_pct, int charging)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->battery_pct = battery_pct >= 0 && battery_pct <= 100 ? battery_pct : NAN;
    c->charging = charging == 0 || charging == 1 ? charging : -1;
    pthread_mutex_unlock(&c->mu);
}

sg_client_status sg_client_set_telemetry_interval(sg_client *c, double interval_ms)
{
    if (!c || !(interval_ms >= 0) || !isfinite(interval_ms))
        return SG_CLIENT_EINVAL;
    pthread_mutex_lock(&c->mu);
    c->telemetry_interval_ms = interval_ms;
    pthread_mutex_unlock(&c->mu);
    return SG_CLIENT_OK;
}

/* The process's resident bytes (/proc/self/statm: Linux and Android), or -1. */
static double resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    unsigned long long size, resident;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? (double)resident * (double)page : -1;
}

/* Under c->mu. */
static void telemetry_now(sg_client *c, double now_ms, sg_client_telemetry *out)
{
    out->battery_pct = c->battery_pct;
    out->charging = c->charging;
    sg_usage_meter_rates(c->usage, now_ms, &out->fps, &out->upload_kb_per_min);
    out->memory_bytes = resident_bytes();
}

void sg_client_get_telemetry(sg_client *c, sg_client_telemetry *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    double now = c->cfg.now_ms(c->cfg.ud);
    pthread_mutex_lock(&c->mu);
    telemetry_now(c, now, out);
    pthread_mutex_unlock(&c->mu);
}

/* The telemetry header line into line when one is due on a request to path: the device's state
 * is known, the interval has passed since the last, and the path is a session's own route
 * ("/sessions/{id}/..."), where the server records it. */
bool sg_client_telemetry_due(sg_client *c, const char *path, char line[SG_TELEMETRY_HEADER_SIZE])
{
    if (strncmp(path, "/sessions/", 10) != 0 || !strchr(path + 10, '/'))
        return false;
    double now = c->cfg.now_ms(c->cfg.ud);
    bool due = false;
    pthread_mutex_lock(&c->mu);
    if (!isnan(c->battery_pct) && c->telemetry_interval_ms > 0 &&
        (c->telemetry_sent_ms < 0 || now - c->telemetry_sent_ms >= c->telemetry_interval_ms)) {
        sg_client_telemetry t;
        telemetry_now(c, now, &t);
        due = sg_client_telemetry_header(&t, line) == SG_CLIENT_OK;
        if (due)
            c->telemetry_sent_ms = now;
    }
    pthread_mutex_unlock(&c->mu);
    return due;
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
    char telemetry[SG_TELEMETRY_HEADER_SIZE];
    if (ok && sg_client_telemetry_due(c, path, telemetry)) {
        ok = (t = curl_slist_append(hdrs, telemetry)) != NULL;
        hdrs = ok ? t : hdrs;
    }
    if (!ok) {
        free(url);
        curl_slist_free_all(hdrs);
        res->outcome = SG_CLIENT_ENOMEM;
        return SG_CLIENT_ENOMEM;
    }
    transfer tr;
    memset(&tr, 0, sizeof tr);
    if (!(tr.easy = easy_take(c))) {
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
        int status = attempt(c, &tr, method, url, hdrs, body, len, res);
        res->status = status;
        double now = c->cfg.now_ms(c->cfg.ud);
        if (!c->cfg.uniform) /* the client's own generator is shared by its callers */
            pthread_mutex_lock(&c->mu);
        sg_retry_action a = sg_retry_next(&c->cfg.retry, &st, status, res->retry_after_ms,
                                          res->error, now, uniform, rng_ud);
        if (!c->cfg.uniform)
            pthread_mutex_unlock(&c->mu);
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
    easy_give_back(c, tr.easy);
    res->total_ms = c->cfg.now_ms(c->cfg.ud) - t0;
    res->attempts = st.attempts;
    res->retries = st.attempts - 1;
    res->outcome = outcome;
    if (tr.body_len) { /* the last attempt's body goes to the caller */
        res->body = tr.body;
        res->body_len = tr.body_len;
    } else {
        free(tr.body);
    }
    sg_client_account(c, kind, res, kind == SG_UPLOAD_FRAME && outcome == SG_CLIENT_OK);
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
    char *b64 = sg_base64_encode(jpeg, len, &b64n);
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
        char *b64 = sg_base64_encode(jpeg, jpeg_len, &b64n);
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
