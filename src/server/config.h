/* Server configuration: defaults, then environment variables, then command-line flags. Invalid
 * values (a privacy flag that is not a boolean, a negative limit) refuse to start with a message
 * that names the variable. See README "Configuration" for the full table. */
#ifndef SG_SERVER_CONFIG_H
#define SG_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

typedef enum { SG_POLICY_TRIM = 0, SG_POLICY_REJECT } sg_buffer_policy;

/* AUDIO_BUFFER_MAX_SECONDS at most (a day): the decoder's output for one request is bounded by it
 * under AUDIO_BUFFER_POLICY=reject, so an unbounded value would bound nothing. */
#define SG_AUDIO_MAX_SECONDS_LIMIT 86400.0

typedef struct sg_privacy {
    bool store_raw_audio, store_raw_frames, store_transcripts;
} sg_privacy;

/* Where sessions live (server/session.h): SG_SESSION_STORE or --session-store. */
typedef enum { SG_STORE_MEMORY = 0, SG_STORE_REDIS_TCP, SG_STORE_REDIS_UNIX } sg_store_kind;

typedef struct sg_store_url {
    sg_store_kind kind;
    char host[256];       /* TCP: a name, an IPv4 address or an IPv6 one (without brackets) */
    int port;             /* TCP: 1..65535, 6379 when the URL has none */
    char path[108];       /* unix: the socket's absolute path (sun_path's size) */
    int db;               /* SELECT this database first (0..1000000; Redis has 16 unless told) */
    char user[128];       /* ACL user ("" = the default user) */
    char password[256];   /* "" = no AUTH; never logged */
    char shown[400];      /* the URL as logs show it: the password masked */
} sg_store_url;

typedef struct sg_config {
    char host[64];
    int port;
    int http_threads;        /* libmicrohttpd thread pool size */
    int workers;             /* SG_WORKERS: model-work threads */
    int queue_depth;         /* SG_QUEUE_DEPTH: jobs waiting beyond the running ones */
    int retry_after_s;       /* Retry-After sent with 503 OVERLOADED */
    size_t max_body_bytes;   /* SG_MAX_BODY_BYTES */
    int session_ttl_s;       /* SG_SESSION_TTL_S */
    int max_sessions;        /* SG_MAX_SESSIONS */
    double rate_limit_rps;   /* SG_RATE_LIMIT_RPS per session, 0 = off */
    sg_privacy privacy;      /* STORE_RAW_AUDIO, STORE_RAW_FRAMES, STORE_TRANSCRIPTS */
    double audio_max_seconds;     /* AUDIO_BUFFER_MAX_SECONDS: seconds, fractions too (0.05) */
    size_t audio_max_bytes;       /* AUDIO_BUFFER_MAX_BYTES */
    sg_buffer_policy audio_policy;/* AUDIO_BUFFER_POLICY */
    int frame_history;            /* FRAME_HISTORY_SIZE */
    size_t frame_max_bytes;       /* FRAME_BUFFER_MAX_BYTES */
    sg_buffer_policy frame_policy;/* FRAME_BUFFER_POLICY */
    char api_key[256];       /* EDGE_RUNTIME_API_KEY / EDGE_RUNTIME_AUTH_TOKEN; "" = auth off */
    char auth_header[64];    /* EDGE_RUNTIME_AUTH_HEADER, default X-API-Key */
    size_t gzip_min_bytes;   /* compress responses at least this large */
    const char *skills_path; /* SG_SKILLS_PATH or --skills */
    int debug_work_delay_ms; /* SG_DEBUG_WORK_DELAY_MS: tests only, makes every job slow */
    int debug_answer_delay_ms; /* SG_DEBUG_ANSWER_DELAY_MS: tests only, a /ws/audio answer waits
                                  this long (or until cancelled) before its first text */
    int latency_budget_ms;   /* SG_LATENCY_BUDGET_MS: a turn's budget, request to answer; beyond
                                it turns step down the degradation ladder (server/degrade.h);
                                0 = never degrade */
    size_t sse_buffer_bytes; /* SG_SSE_BUFFER_BYTES: a streamed answer's bytes waiting for its client */
    int sse_stall_ms;        /* SG_SSE_STALL_MS: how long an event waits for a client that does not read */
    const char *vision_model;   /* SG_VISION_MODEL or --vision-model: a CLIP directory */
    int vision_int8;           /* SG_VISION_PRECISION int8 (1, default) or f32 (0) */
    int threads;               /* SG_THREADS or --threads: the inference thread pool (0 = cores) */
    int max_websockets;        /* SG_MAX_WEBSOCKETS: open WebSockets at most (503 beyond) */
    int ws_idle_s;             /* SG_WS_IDLE_S: close a WebSocket silent this long (0 = the
                                  session TTL) */
    int http_idle_s;           /* SG_HTTP_IDLE_S: close an idle keep-alive connection after this
                                  long (75 s: above the 30-60 s think time of the load tests, so a
                                  client never reuses a connection the server is closing) */
    /* The HTTP edge (server/edge.h; docs/ARCHITECTURE.md "Limits" says why each default) */
    int http_header_timeout_s;     /* SG_HTTP_HEADER_TIMEOUT_S: the whole request head, not per byte */
    int http_body_grace_s;         /* SG_HTTP_BODY_GRACE_S: the window of the minimum body rate */
    size_t http_min_body_rate;     /* SG_HTTP_MIN_BODY_RATE: bytes/s in every window (0 = off) */
    int max_connections;           /* SG_MAX_CONNECTIONS: open connections at most */
    int max_connections_per_ip;    /* SG_MAX_CONNECTIONS_PER_IP (0 = off, e.g. behind a proxy) */
    int connection_reserve;        /* SG_CONNECTION_RESERVE: the last slots, for light addresses */
    size_t max_inflight_body_bytes;/* SG_MAX_INFLIGHT_BODY_BYTES: request bodies in memory, all */
    size_t http_max_target_bytes;  /* SG_HTTP_MAX_TARGET_BYTES: the request-target (414) */
    size_t http_max_header_bytes;  /* SG_HTTP_MAX_HEADER_BYTES: the header fields together (431) */
    int http_max_headers;          /* SG_HTTP_MAX_HEADERS: header fields at most (431) */
    size_t http_pool_bytes;        /* SG_HTTP_POOL_BYTES: libmicrohttpd's memory per connection */
    /* The session store (server/session.h; docs/ARCHITECTURE.md "Session store") */
    sg_store_url store;            /* SG_SESSION_STORE / --session-store: memory (default) or Redis */
    int store_timeout_ms;          /* SG_SESSION_STORE_TIMEOUT_MS: connect and command timeout */
    int store_connections;         /* SG_SESSION_STORE_CONNECTIONS: pool size (0 = HTTP threads +
                                      workers + 4: one per thread that may use the store) */
    int lock_ttl_ms;               /* SG_SESSION_LOCK_TTL_MS: a work lock's expiry (shared store) */
    int lock_wait_ms;              /* SG_SESSION_LOCK_WAIT_MS: waiting for a taken work lock, then
                                      503 OVERLOADED (shared store) */
    int debug_lock_hold_ms;        /* SG_DEBUG_LOCK_HOLD_MS: tests only, holds every work lock this
                                      much longer (an instance killed while it holds one) */
} sg_config;

void sg_config_defaults(sg_config *c);
/* Reads the environment (getenv). */
sg_status sg_config_from_env(sg_config *c, sg_error *err);
/* Parses "1/true/yes/on" and "0/false/no/off" (any case). */
bool sg_parse_bool(const char *s, bool *out);
/* SG_SESSION_STORE forms: "memory", "redis://[[user]:password@]host[:port][/db]" (an IPv6 host in
 * brackets, the password percent-encoded where it holds '@', ':' or '/'), "unix:///path/redis.sock"
 * (optionally "unix://[[user]:password@]/path[?db=N]"). Errors never quote the password. */
sg_status sg_store_url_parse(const char *s, sg_store_url *out, sg_error *err);
/* PORTS forms: "8000", {"http":8000}, "http:8000". */
bool sg_parse_ports(const char *s, int *port);

#endif
