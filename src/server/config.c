/* Configuration from defaults and the environment. */
#include "server/config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
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

bool sg_parse_ports(const char *s, int *port)
{
    long v;
    while (isspace((unsigned char)*s))
        s++;
    if (parse_long(s, 1, 65535, &v)) {
        *port = (int)v;
        return true;
    }
    if (*s == '{') {
        json_t *j = json_loads(s, 0, NULL);
        json_t *h = j ? json_object_get(j, "http") : NULL;
        bool ok = h && json_is_integer(h) && json_integer_value(h) >= 1 &&
                  json_integer_value(h) <= 65535;
        if (ok)
            *port = (int)json_integer_value(h);
        json_decref(j);
        return ok;
    }
    if (strncmp(s, "http:", 5) == 0 && parse_long(s + 5, 1, 65535, &v)) {
        *port = (int)v;
        return true;
    }
    return false;
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

static sg_status env_bool(const char *name, bool *out, sg_error *err)
{
    const char *s = getenv(name);
    if (!s)
        return SG_OK;
    if (!sg_parse_bool(s, out))
        return sg_error_set(err, SG_EINVAL,
                            "%s=\"%s\" is not a boolean (use 1/true/yes/on or 0/false/no/off)", name, s);
    return SG_OK;
}

static sg_status env_policy(const char *name, sg_buffer_policy *out, sg_error *err)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return SG_OK;
    if (strcasecmp(s, "trim") == 0)
        *out = SG_POLICY_TRIM;
    else if (strcasecmp(s, "reject") == 0)
        *out = SG_POLICY_REJECT;
    else
        return sg_error_set(err, SG_EINVAL, "%s=\"%s\" must be trim or reject", name, s);
    return SG_OK;
}

sg_status sg_config_from_env(sg_config *c, sg_error *err)
{
    sg_status st = SG_OK;
    const char *s;
    if ((s = getenv("PORTS")) && *s) {
        if (!sg_parse_ports(s, &c->port))
            return sg_error_set(err, SG_EINVAL, "PORTS=\"%s\" is not 8000, {\"http\":8000} or http:8000", s);
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
        (st = env_size("AUDIO_BUFFER_MAX_BYTES", 1024, 1L << 32, &c->audio_max_bytes, err)) ||
        (st = env_policy("AUDIO_BUFFER_POLICY", &c->audio_policy, err)) ||
        (st = env_int("FRAME_HISTORY_SIZE", 0, 1000, &c->frame_history, err)) ||
        (st = env_size("FRAME_BUFFER_MAX_BYTES", 1024, 1L << 32, &c->frame_max_bytes, err)) ||
        (st = env_policy("FRAME_BUFFER_POLICY", &c->frame_policy, err)) ||
        (st = env_int("SG_DEBUG_WORK_DELAY_MS", 0, 60000, &c->debug_work_delay_ms, err)))
        return st;
    long secs = (long)c->audio_max_seconds;
    if ((st = env_long("AUDIO_BUFFER_MAX_SECONDS", 1, 86400, &secs, err)))
        return st;
    c->audio_max_seconds = (double)secs;
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
        (st = env_size("SG_HTTP_POOL_BYTES", 16384, 1L << 24, &c->http_pool_bytes, err)))
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
