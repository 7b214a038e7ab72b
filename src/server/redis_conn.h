/* Connections to one Redis for the shared session store (session_redis.c, dat_redis.c): a pool
 * of hiredis contexts (a context is not thread-safe: each caller takes one for the length of its
 * command), every connect and command bounded by SG_SESSION_STORE_TIMEOUT_MS, Lua scripts run by
 * their SHA-1 and sent again after a Redis restart, and a backoff while Redis is unreachable so
 * that requests fail at once (503 STORE_UNAVAILABLE) instead of each waiting out a timeout. */
#ifndef SG_SERVER_REDIS_CONN_H
#define SG_SERVER_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "server/config.h"

typedef struct sg_redis sg_redis;

/* A Lua script: its text and, once computed, its SHA-1 (EVALSHA first, EVAL on NOSCRIPT). */
typedef struct sg_redis_script {
    const char *name; /* for messages */
    const char *lua;
    char sha[41];     /* written once, under the pool's lock, before ready is set */
    atomic_bool ready;
} sg_redis_script;

/* One command of a call: argc binary-safe arguments. */
typedef struct sg_redis_cmd {
    int argc;
    const char *argv[24];
    size_t len[24];
} sg_redis_cmd;

/* Appends an argument (a C string when len is (size_t)-1). */
void sg_redis_arg(sg_redis_cmd *c, const void *p, size_t len);
void sg_redis_argf(sg_redis_cmd *c, char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* max_conns: pool size. Connects lazily: an unreachable Redis is not an error here. */
sg_redis *sg_redis_new(const sg_store_url *url, int timeout_ms, int max_conns);
void sg_redis_free(sg_redis *r);

/* Runs n commands pipelined on one connection: replies[i] (freeReplyObject each) on SG_OK.
 * SG_EUNAVAILABLE when Redis cannot be reached or does not answer in time, or answers a command
 * with an error (err: which); replies are then all NULL. */
sg_status sg_redis_run(sg_redis *r, sg_redis_cmd *cmds, int n, redisReply **replies,
                       sg_error *err);
/* Runs a script: keys then args in cmd (nkeys of them keys). */
sg_status sg_redis_eval(sg_redis *r, sg_redis_script *s, int nkeys, const sg_redis_cmd *args,
                        redisReply **reply, sg_error *err);
/* PING (GET /ready): also what brings the pool back after an outage. */
sg_status sg_redis_ping(sg_redis *r, sg_error *err);
/* True when the last call reached Redis. */
bool sg_redis_up(sg_redis *r);
/* Calls that failed because Redis could not be reached, since start. */
long sg_redis_failures(sg_redis *r);

#endif
