/* Configuration from defaults and the environment. */
#include "server/config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void sg_config_defaults(sg_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "0.0.0.0");
    c->port = 5000;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    c->http_threads = ncpu > 8 ? 8 : (int)ncpu;
    c->workers = (int)ncpu;
    c->queue_depth = 128;
    c->retry_after_s = 1;
    c->max_body_bytes = 16u << 20;
    c->session_ttl_s = 3600;
    c->max_sessions = 1000;
    c->audio_max_seconds = 120;
    c->audio_max_bytes = 16u << 20;
    c->audio_policy = SG_POLICY_TRIM;
    c->frame_history = 5;
    c->frame_max_bytes = 8u << 20;
    c->frame_policy = SG_POLICY_TRIM;
    snprintf(c->auth_header, sizeof c->auth_header, "X-API-Key");
    c->gzip_min_bytes = 1024;
    c->vision_int8 = 1;
    c->max_websockets = 64;
    c->ws_idle_s = 0;
    c->http_idle_s = 75;
    c->http_header_timeout_s = 10;
    c->http_body_grace_s = 10;
    c->http_min_body_rate = 1024;
    c->max_connections = 2048;
    c->max_connections_per_ip = 256;
    c->connection_reserve = 64;
    c->max_inflight_body_bytes = 128u << 20;
    c->http_max_target_bytes = 4096;
    c->http_max_header_bytes = 8192;
    c->http_max_headers = 100;
    c->http_pool_bytes = 32u << 10;
    snprintf(c->store.shown, sizeof c->store.shown, "memory");
    c->store_timeout_ms = 500;
    c->store_connections = 0;
    c->lock_ttl_ms = 15000;
    c->lock_wait_ms = 20000;
    c->latency_budget_ms = 2000; /* the guide's 2 s end to end */
    c->sse_buffer_bytes = 4u << 20;
    c->sse_stall_ms = 10000;
}

bool sg_parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"}, *no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (*end && isspace((unsigned char)*end))
        end++;
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* ---- numbers as the Python runtime read them -------------------------------------------------
 * The variables the Python edge runtime also read (PORTS, AUDIO_BUFFER_*, FRAME_*, STORE_*) take
 * what its int() / float() took, so a configuration that started it starts this server: white
 * space around the value, a sign, and single underscores between digits ("16_000"); floats also
 * ".5", "2.", exponents. Hex, "1,000" and the like were refused there and are refused here. */

/* Appends the digits at *p (up to end; a single underscore between two digits is skipped) to
 * out[*n..], advancing *p past them; false when there is no digit there. out has room: the
 * callers refuse values longer than their buffer, and the copy is never longer than the text. */
static bool py_digits(const char **p, const char *end, char *out, size_t *n)
{
    const char *s = *p;
    bool any = false;
    while (s < end && (isdigit((unsigned char)*s) || (*s == '_' && any && s + 1 < end &&
                                                      isdigit((unsigned char)s[1])))) {
        if (*s != '_') {
            out[(*n)++] = *s;
            any = true;
        }
        s++;
    }
    *p = s;
    return any;
}

static void py_trim(const char **s, const char **end)
{
    while (**s && isspace((unsigned char)**s))
        (*s)++;
    *end = *s + strlen(*s);
    while (*end > *s && isspace((unsigned char)(*end)[-1]))
        (*end)--;
}

/* Python's int(s): false when it would raise. */
static bool py_int(const char *s, long long *out)
{
    const char *end;
    py_trim(&s, &end);
    char buf[64];
    size_t n = 0;
    if (end - s >= (ptrdiff_t)sizeof buf) /* far beyond any limit here */
        return false;
    if (s < end && (*s == '+' || *s == '-'))
        buf[n++] = *s++;
    if (!py_digits(&s, end, buf, &n) || s != end)
        return false;
    buf[n] = 0;
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno)
        return false; /* Python has no overflow; no limit here is anywhere near */
    *out = v;
    return true;
}

/* Python's float(s): false when it would raise (inf and nan parse; callers range-check). */
static bool py_float(const char *s, double *out)
{
    const char *end;
    py_trim(&s, &end);
    char buf[128];
    size_t n = 0;
    if (end - s >= (ptrdiff_t)sizeof buf)
        return false;
    if (s < end && (*s == '+' || *s == '-'))
        buf[n++] = *s++;
    static const char *const words[] = {"inf", "infinity", "nan"};
    for (int i = 0; i < 3; i++) {
        size_t wl = strlen(words[i]);
        if ((size_t)(end - s) == wl && strncasecmp(s, words[i], wl) == 0) {
            *out = i == 2 ? NAN : (buf[0] == '-' ? -INFINITY : INFINITY);
            return true;
        }
    }
    bool whole = py_digits(&s, end, buf, &n), frac = false;
    if (s < end && *s == '.') {
        buf[n++] = *s++;
        frac = s < end && isdigit((unsigned char)*s) && py_digits(&s, end, buf, &n);
    }
    if (!whole && !frac)
        return false;
    if (s < end && (*s == 'e' || *s == 'E')) {
        buf[n++] = *s++;
        if (s < end && (*s == '+' || *s == '-'))
            buf[n++] = *s++;
        if (!py_digits(&s, end, buf, &n))
            return false;
    }
    if (s != end)
        return false;
    buf[n] = 0;
    *out = strtod(buf, NULL); /* overflow gives inf, as Python's float() does */
    return true;
}

/* A port as the Python runtime's int(); 1..65535 here (it would fail to bind outside). */
static bool port_value(const char *s, int *port)
{
    long long v;
    if (!py_int(s, &v) || v < 1 || v > 65535)
        return false;
    *port = (int)v;
    return true;
}

bool sg_parse_ports(const char *s, int *port)
{
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '{') {
        /* {"http": 8000, "metrics": 9000}: values are int()-ed there, so "8000" counts too; an
         * object without "http" leaves the port as it was */
        json_t *j = json_loads(s, 0, NULL);
        bool ok = json_is_object(j);
        json_t *h = ok ? json_object_get(j, "http") : NULL;
        if (h && json_is_integer(h))
            ok = json_integer_value(h) >= 1 && json_integer_value(h) <= 65535 &&
                 (*port = (int)json_integer_value(h), true);
        else if (h)
            ok = json_is_string(h) && port_value(json_string_value(h), port);
        json_decref(j);
        return ok;
    }
    /* "8000", or entries "name:port" (a bare port is http's) separated by commas; empty entries
     * are skipped and the last http entry wins, as in the Python runtime */
    char buf[256];
    if (!*s || strlen(s) >= sizeof buf)
        return false;
    snprintf(buf, sizeof buf, "%s", s);
    int http = 0;
    for (char *save = NULL, *e = strtok_r(buf, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(e, ':');
        const char *name = colon ? e : "http", *value = colon ? colon + 1 : e;
        if (colon)
            *colon = 0;
        const char *ne;
        py_trim(&name, &ne);
        int v;
        if (!port_value(value, &v))
            return false;
        if ((size_t)(ne - name) == 4 && strncmp(name, "http", 4) == 0)
            http = v;
    }
    if (http)
        *port = http;
    return true;
}

/* ---- the session store's URL ------------------------------------------------------------------ */

/* The URL as messages may quote it: what lies between "://" and the last '@' (the user and the
 * password) is masked, and it is cut to 120 bytes. */
static void store_url_masked(const char *s, char *out, size_t cap)
{
    const char *scheme = strstr(s, "://"), *at = strrchr(s, '@');
    if (scheme && at && at > scheme)
        snprintf(out, cap, "%.*s***%.80s", (int)(scheme + 3 - s), s, at);
    else
        snprintf(out, cap, "%.120s", s);
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes s[0..n) into out; false on a bad escape, a NUL or when it does not fit. */
static bool pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int h = hex_digit(s[i + 1]), l = hex_digit(s[i + 2]);
            if (h < 0 || l < 0)
                return false;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || k + 1 >= cap)
            return false;
        out[k++] = (char)c;
    }
    out[k] = 0;
    return true;
}

/* A whole number s[0..n) in lo..hi (digits only). */
static bool url_number(const char *s, size_t n, long lo, long hi, int *out)
{
    if (n == 0 || n > 9)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

sg_status sg_store_url_parse(const char *s, sg_store_url *out, sg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!s || !*s || strcmp(s, "memory") == 0) {
        snprintf(out->shown, sizeof out->shown, "memory");
        return SG_OK;
    }
    char shown[160];
    store_url_masked(s, shown, sizeof shown);
    bool tcp = strncmp(s, "redis://", 8) == 0, local = strncmp(s, "unix://", 7) == 0;
    if (!tcp && !local)
        return sg_error_set(err, SG_EINVAL, "session store \"%s\" is not memory, "
                            "redis://[:password@]host:port[/db] or unix:///path/redis.sock", shown);
    const char *p = s + (tcp ? 8 : 7), *at = strrchr(p, '@');
    if (at) { /* user:password@ or :password@ */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || colon + 1 == at)
            return sg_error_set(err, SG_EINVAL, "session store \"%s\": the part before '@' must be "
                                ":password or user:password", shown);
        if (!pct_decode(p, (size_t)(colon - p), out->user, sizeof out->user) ||
            !pct_decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof out->password))
            return sg_error_set(err, SG_EINVAL, "session store \"%s\": the user or password is too "
                                "long or has a bad %%-escape", shown);
        p = at + 1;
    }
    const char *end = p + strlen(p);
    if (local) {
        out->kind = SG_STORE_REDIS_UNIX;
        const char *q = strchr(p, '?');
        const char *pe = q ? q : end;
        if (*p != '/' || pe - p < 2 || (size_t)(pe - p) >= sizeof out->path)
            return sg_error_set(err, SG_EINVAL, "session store \"%s\": a unix socket URL names an "
                                "absolute path of at most %zu bytes (unix:///run/redis.sock)", shown,
                                sizeof out->path - 1);
        memcpy(out->path, p, (size_t)(pe - p));
        if (q && (strncmp(q, "?db=", 4) != 0 ||
                  !url_number(q + 4, (size_t)(end - q - 4), 0, 1000000, &out->db)))
            return sg_error_set(err, SG_EINVAL, "session store \"%s\": after the path only ?db=N "
                                "(0..1000000) may follow", shown);
    } else {
        out->kind = SG_STORE_REDIS_TCP;
        const char *h = p, *he;
        if (*p == '[') { /* an IPv6 address */
            he = strchr(p, ']');
            if (!he)
                return sg_error_set(err, SG_EINVAL, "session store \"%s\": '[' without ']'", shown);
            h = p + 1;
            p = he + 1;
        } else {
            he = p + strcspn(p, ":/");
            p = he;
        }
        size_t hn = (size_t)(he - h);
        if (hn == 0 || hn >= sizeof out->host)
            return sg_error_set(err, SG_EINVAL, "session store \"%s\": no host (or one over %zu "
                                "bytes)", shown, sizeof out->host - 1);
        for (size_t i = 0; i < hn; i++)
            if (!isalnum((unsigned char)h[i]) && !strchr(".-_:", h[i]))
                return sg_error_set(err, SG_EINVAL, "session store \"%s\": the host has a "
                                    "character a host name cannot have", shown);
        memcpy(out->host, h, hn);
        out->port = 6379;
        if (*p == ':') {
            size_t n = strcspn(p + 1, "/");
            if (!url_number(p + 1, n, 1, 65535, &out->port))
                return sg_error_set(err, SG_EINVAL, "session store \"%s\": the port must be a "
                                    "number in 1..65535", shown);
            p += 1 + n;
        }
        if (*p == '/' && p[1] && !url_number(p + 1, (size_t)(end - p - 1), 0, 1000000, &out->db))
            return sg_error_set(err, SG_EINVAL, "session store \"%s\": the database after '/' must "
                                "be a number in 0..1000000", shown);
        if (*p && *p != '/')
            return sg_error_set(err, SG_EINVAL, "session store \"%s\": unexpected text after the "
                                "host", shown);
    }
    char auth[160] = "";
    if (out->password[0])
        snprintf(auth, sizeof auth, "%.120s:***@", out->user);
    if (local)
        snprintf(out->shown, sizeof out->shown, "unix://%s%s%s", auth, out->path,
                 out->db ? "?db=" : "");
    else
        snprintf(out->shown, sizeof out->shown, strchr(out->host, ':') ? "redis://%s[%s]:%d"
                 : "redis://%s%s:%d", auth, out->host, out->port);
    if (out->db) {
        size_t n = strlen(out->shown);
        snprintf(out->shown + n, sizeof out->shown - n, local ? "%d" : "/%d", out->db);
    }
    return SG_OK;
}

static sg_status env_long(const char *name, long lo, long hi, long *out, sg_error *err)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return SG_OK;
    if (!parse_long(s, lo, hi, out))
        return sg_error_set(err, SG_EINVAL, "%s=\"%s\" is not a whole number in %ld..%ld", name, s,
                            lo, hi);
    return SG_OK;
}

static sg_status env_int(const char *name, long lo, long hi, int *out, sg_error *err)
{
    long v = *out;
    sg_status st = env_long(name, lo, hi, &v, err);
    *out = (int)v;
    return st;
}

static sg_status env_size(const char *name, long lo, long hi, size_t *out, sg_error *err)
{
    long v = (long)*out;
    sg_status st = env_long(name, lo, hi, &v, err);
    *out = (size_t)v;
    return st;
}

/* The Python runtime's variables: what it took starts this server, and what it refused is refused
 * with its message first (then the variable and the range). */

/* A count of bytes (or frames) as the runtime's int(), held to lo..hi. */
static sg_status env_py_int(const char *name, long long lo, long long hi, long long *out,
                            sg_error *err)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return SG_OK;
    long long v;
    if (!py_int(s, &v))
        return sg_error_set(err, SG_EINVAL, "Invalid integer value: %.60s (%s must be a whole number "
                            "in %lld..%lld)", s, name, lo, hi);
    if (v < lo || v > hi)
        return sg_error_set(err, SG_EINVAL, "%s=%.60s is out of range: it must be a whole number in "
                            "%lld..%lld", name, s, lo, hi);
    *out = v;
    return SG_OK;
}

static sg_status env_py_size(const char *name, long long lo, long long hi, size_t *out,
                             sg_error *err)
{
    long long v = (long long)*out;
    sg_status st = env_py_int(name, lo, hi, &v, err);
    *out = (size_t)v;
    return st;
}

/* Seconds as the runtime's float(): "0.05", "2.5", "1e2"; above 0 and at most hi. */
static sg_status env_py_seconds(const char *name, double hi, double *out, sg_error *err)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return SG_OK;
    double v;
    if (!py_float(s, &v))
        return sg_error_set(err, SG_EINVAL, "Invalid float value: %.60s (%s must be a number of "
                            "seconds above 0 and at most %g, such as 2.5)", s, name, hi);
    if (!(v > 0 && v <= hi)) /* also nan and inf, which float() took */
        return sg_error_set(err, SG_EINVAL, "%s=%.60s is out of range: it must be a number of "
                            "seconds above 0 and at most %g", name, s, hi);
    *out = v;
    return SG_OK;
}

static sg_status env_bool(const char *name, bool *out, sg_error *err)
{
    const char *s = getenv(name);
    if (!s)
        return SG_OK;
    char v[16];
    const char *b = s, *e;
    py_trim(&b, &e); /* " true " was a boolean for the Python runtime */
    snprintf(v, sizeof v, "%.*s", (int)(e - b < 15 ? e - b : 15), b);
    if (e - b >= 15 || !sg_parse_bool(v, out))
        return sg_error_set(err, SG_EINVAL, "Invalid boolean value; use one of: true, false, 1, 0, "
                            "yes, no, on, off (%s=\"%.60s\")", name, s);
    return SG_OK;
}

static sg_status env_policy(const char *name, sg_buffer_policy *out, sg_error *err)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return SG_OK;
    const char *b = s, *e;
    py_trim(&b, &e); /* the runtime took " Trim " */
    if (e - b == 4 && strncasecmp(b, "trim", 4) == 0)
        *out = SG_POLICY_TRIM;
    else if (e - b == 6 && strncasecmp(b, "reject", 6) == 0)
        *out = SG_POLICY_REJECT;
    else
        return sg_error_set(err, SG_EINVAL, "Invalid buffer policy '%.60s'. Choose one of: reject, "
                            "trim (%s)", s, name);
    return SG_OK;
}

sg_status sg_config_from_env(sg_config *c, sg_error *err)
{
    sg_status st = SG_OK;
    const char *s;
    if ((s = getenv("PORTS")) && *s) {
        if (!sg_parse_ports(s, &c->port))
            return sg_error_set(err, SG_EINVAL, "PORTS=\"%.60s\" is not 8000, {\"http\":8000} or "
                                "http:8000,metrics:9000 (ports 1..65535)", s);
    }
    if ((st = env_int("SG_PORT", 1, 65535, &c->port, err)) ||
        (st = env_int("SG_HTTP_THREADS", 1, 256, &c->http_threads, err)) ||
        (st = env_int("SG_WORKERS", 1, 256, &c->workers, err)) ||
        (st = env_int("SG_QUEUE_DEPTH", 0, 1000000, &c->queue_depth, err)) ||
        (st = env_size("SG_MAX_BODY_BYTES", 1024, 1L << 32, &c->max_body_bytes, err)) ||
        (st = env_int("SG_SESSION_TTL_S", 1, 365L * 86400, &c->session_ttl_s, err)) ||
        (st = env_int("SG_MAX_SESSIONS", 1, 10000000, &c->max_sessions, err)) ||
        (st = env_bool("STORE_RAW_AUDIO", &c->privacy.store_raw_audio, err)) ||
        (st = env_bool("STORE_RAW_FRAMES", &c->privacy.store_raw_frames, err)) ||
        (st = env_bool("STORE_TRANSCRIPTS", &c->privacy.store_transcripts, err)) ||
        (st = env_py_size("AUDIO_BUFFER_MAX_BYTES", 1, 1LL << 32, &c->audio_max_bytes, err)) ||
        (st = env_py_seconds("AUDIO_BUFFER_MAX_SECONDS", SG_AUDIO_MAX_SECONDS_LIMIT,
                             &c->audio_max_seconds, err)) ||
        (st = env_policy("AUDIO_BUFFER_POLICY", &c->audio_policy, err)) ||
        (st = env_py_size("FRAME_BUFFER_MAX_BYTES", 1, 1LL << 32, &c->frame_max_bytes, err)) ||
        (st = env_policy("FRAME_BUFFER_POLICY", &c->frame_policy, err)) ||
        (st = env_int("SG_DEBUG_WORK_DELAY_MS", 0, 60000, &c->debug_work_delay_ms, err)) ||
        (st = env_int("SG_DEBUG_ANSWER_DELAY_MS", 0, 60000, &c->debug_answer_delay_ms, err)) ||
        (st = env_int("SG_LATENCY_BUDGET_MS", 0, 600000, &c->latency_budget_ms, err)))
        return st;
    long long history = c->frame_history;
    if ((st = env_py_int("FRAME_HISTORY_SIZE", 0, 1000, &history, err)))
        return st;
    c->frame_history = (int)history;
    if ((s = getenv("SG_RATE_LIMIT_RPS")) && *s) {
        char *end;
        double v = strtod(s, &end);
        if (*end || v < 0 || v > 1e6)
            return sg_error_set(err, SG_EINVAL, "SG_RATE_LIMIT_RPS=\"%s\" is not a number >= 0", s);
        c->rate_limit_rps = v;
    }
    const char *key = getenv("EDGE_RUNTIME_API_KEY");
    if (!key || !*key)
        key = getenv("EDGE_RUNTIME_AUTH_TOKEN");
    if (key && *key) {
        if (strlen(key) >= sizeof c->api_key)
            return sg_error_set(err, SG_EINVAL, "the API key is longer than %zu bytes", sizeof c->api_key - 1);
        snprintf(c->api_key, sizeof c->api_key, "%s", key);
    }
    if ((s = getenv("EDGE_RUNTIME_AUTH_HEADER")) && *s) {
        if (strlen(s) >= sizeof c->auth_header)
            return sg_error_set(err, SG_EINVAL, "EDGE_RUNTIME_AUTH_HEADER is too long");
        snprintf(c->auth_header, sizeof c->auth_header, "%s", s);
    }
    if ((s = getenv("SG_SKILLS_PATH")) && *s)
        c->skills_path = s;
    if ((s = getenv("SG_VISION_MODEL")) && *s)
        c->vision_model = s;
    if ((s = getenv("SG_VISION_PRECISION")) && *s) {
        if (strcmp(s, "int8") == 0)
            c->vision_int8 = 1;
        else if (strcmp(s, "f32") == 0)
            c->vision_int8 = 0;
        else
            return sg_error_set(err, SG_EINVAL, "SG_VISION_PRECISION=\"%s\" must be int8 or f32", s);
    }
    if ((st = env_int("SG_THREADS", 1, 256, &c->threads, err)) ||
        (st = env_int("SG_MAX_WEBSOCKETS", 0, 100000, &c->max_websockets, err)) ||
        (st = env_int("SG_WS_IDLE_S", 0, 365L * 86400, &c->ws_idle_s, err)) ||
        (st = env_int("SG_HTTP_IDLE_S", 1, 86400, &c->http_idle_s, err)))
        return st;
    /* the HTTP edge: deadlines, connection fairness, the body budget, request-head limits */
    if ((st = env_int("SG_HTTP_HEADER_TIMEOUT_S", 1, 3600, &c->http_header_timeout_s, err)) ||
        (st = env_int("SG_HTTP_BODY_GRACE_S", 1, 3600, &c->http_body_grace_s, err)) ||
        (st = env_size("SG_HTTP_MIN_BODY_RATE", 0, 1L << 30, &c->http_min_body_rate, err)) ||
        (st = env_int("SG_MAX_CONNECTIONS", 16, 1000000, &c->max_connections, err)) ||
        (st = env_int("SG_MAX_CONNECTIONS_PER_IP", 0, 1000000, &c->max_connections_per_ip, err)) ||
        (st = env_int("SG_CONNECTION_RESERVE", 0, 1000000, &c->connection_reserve, err)) ||
        (st = env_size("SG_MAX_INFLIGHT_BODY_BYTES", 1024, 1L << 40, &c->max_inflight_body_bytes,
                       err)) ||
        (st = env_size("SG_HTTP_MAX_TARGET_BYTES", 256, 65536, &c->http_max_target_bytes, err)) ||
        (st = env_size("SG_HTTP_MAX_HEADER_BYTES", 1024, 1L << 20, &c->http_max_header_bytes, err)) ||
        (st = env_int("SG_HTTP_MAX_HEADERS", 8, 10000, &c->http_max_headers, err)) ||
        (st = env_size("SG_HTTP_POOL_BYTES", 16384, 1L << 24, &c->http_pool_bytes, err)) ||
        (st = env_size("SG_SSE_BUFFER_BYTES", 4096, 1L << 30, &c->sse_buffer_bytes, err)) ||
        (st = env_int("SG_SSE_STALL_MS", 100, 600000, &c->sse_stall_ms, err)))
        return st;
    /* the session store: where sessions live, and the bounds on every wait for it */
    if ((s = getenv("SG_SESSION_STORE")) && *s) {
        sg_error e = {0};
        if ((st = sg_store_url_parse(s, &c->store, &e)))
            return sg_error_set(err, st, "SG_SESSION_STORE: %s", e.msg);
    }
    if ((st = env_int("SG_SESSION_STORE_TIMEOUT_MS", 10, 60000, &c->store_timeout_ms, err)) ||
        (st = env_int("SG_SESSION_STORE_CONNECTIONS", 0, 4096, &c->store_connections, err)) ||
        (st = env_int("SG_SESSION_LOCK_TTL_MS", 100, 3600000, &c->lock_ttl_ms, err)) ||
        (st = env_int("SG_SESSION_LOCK_WAIT_MS", 0, 3600000, &c->lock_wait_ms, err)) ||
        (st = env_int("SG_DEBUG_LOCK_HOLD_MS", 0, 60000, &c->debug_lock_hold_ms, err)))
        return st;
    if (c->connection_reserve >= c->max_connections)
        return sg_error_set(err, SG_EINVAL, "SG_CONNECTION_RESERVE=%d must be below "
                            "SG_MAX_CONNECTIONS=%d", c->connection_reserve, c->max_connections);
    if (c->max_inflight_body_bytes <= c->max_body_bytes)
        return sg_error_set(err, SG_EINVAL, "SG_MAX_INFLIGHT_BODY_BYTES=%zu must be larger than "
                            "SG_MAX_BODY_BYTES=%zu (or the largest body is never admitted)",
                            c->max_inflight_body_bytes, c->max_body_bytes);
    /* libmicrohttpd keeps the request head in the pool (with ~56 bytes per field beside it): a
     * head within our limits must fit with room to spare, or its HTML 414/431 would answer first */
    if (c->http_max_target_bytes + c->http_max_header_bytes > c->http_pool_bytes / 2)
        return sg_error_set(err, SG_EINVAL, "SG_HTTP_MAX_TARGET_BYTES + SG_HTTP_MAX_HEADER_BYTES "
                            "(%zu) must be at most half of SG_HTTP_POOL_BYTES (%zu)",
                            c->http_max_target_bytes + c->http_max_header_bytes, c->http_pool_bytes);
    return SG_OK;
}
