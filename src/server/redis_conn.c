/* The Redis connection pool of the shared session store (redis_conn.h). Every wait is bounded:
 * connecting and each command by the timeout, waiting for a free connection by the same. When a
 * call fails to reach Redis the pool drops its idle connections (they went to the same Redis, and
 * after a restart all are dead) and answers "unavailable" at once for a backoff that doubles from
 * 50 ms to 1 s; the next call after it connects again, so service comes back by itself within
 * about a second of Redis. A call that fails on a reused connection for another reason than a
 * timeout (Redis restarted and closed it) is tried once more on a new connection: the command was
 * never executed by the Redis that is there now. */
#include "server/redis_conn.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/sha1.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000

typedef struct conn {
    redisContext *c;
    unsigned gen;      /* the pool's generation when it connected */
    bool reused;       /* it ran a call before this one */
    struct conn *next; /* while idle */
} conn;

struct sg_redis {
    sg_store_url url;
    int timeout_ms, max;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    conn *idle;
    int open;              /* connections made and not closed (idle or in use) */
    unsigned gen;          /* bumped at each failure: older idle connections are closed */
    double down_until_ms;  /* calls before this fail at once */
    int backoff_ms;
    bool up;
    char last_error[160];
    atomic_long failures;
};

void sg_redis_arg(sg_redis_cmd *c, const void *p, size_t len)
{
    if (c->argc >= (int)(sizeof c->argv / sizeof *c->argv))
        return; /* callers stay within the table; sg_redis_run refuses a full one */
    c->argv[c->argc] = p;
    c->len[c->argc++] = len == (size_t)-1 ? strlen(p) : len;
}

void sg_redis_argf(sg_redis_cmd *c, char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    sg_redis_arg(c, buf, (size_t)-1);
}

sg_redis *sg_redis_new(const sg_store_url *url, int timeout_ms, int max_conns)
{
    sg_redis *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->url = *url;
    r->timeout_ms = timeout_ms;
    r->max = max_conns > 0 ? max_conns : 1;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->up = true;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->freed, NULL);
    return r;
}

void sg_redis_free(sg_redis *r)
{
    if (!r)
        return;
    for (conn *c = r->idle, *next; c; c = next) {
        next = c->next;
        redisFree(c->c);
        free(c);
    }
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->freed);
    free(r);
}

static struct timeval tv_of(int ms) { return (struct timeval){ms / 1000, (ms % 1000) * 1000}; }

/* A reply to a setup command that is not +OK: why, never echoing what was sent (a password). */
static bool setup_ok(redisContext *c, redisReply *rep, const char *what, sg_error *err)
{
    bool ok = rep && rep->type == REDIS_REPLY_STATUS;
    if (!ok)
        sg_error_set(err, SG_EUNAVAILABLE, "%s failed: %.100s", what,
                     rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                     : c->err ? c->errstr : "no answer");
    freeReplyObject(rep);
    return ok;
}

/* A new connection: connect, AUTH, SELECT, all within the timeout each. */
static redisContext *connect_one(sg_redis *r, sg_error *err)
{
    struct timeval tv = tv_of(r->timeout_ms);
    redisContext *c = r->url.kind == SG_STORE_REDIS_UNIX
                          ? redisConnectUnixWithTimeout(r->url.path, tv)
                          : redisConnectWithTimeout(r->url.host, r->url.port, tv);
    if (!c || c->err) {
        sg_error_set(err, SG_EUNAVAILABLE, "cannot connect: %.100s",
                     c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (r->url.kind == SG_STORE_REDIS_TCP)
        redisEnableKeepAlive(c);
    if (r->url.password[0]) {
        const char *argv[3] = {"AUTH", r->url.user, r->url.password};
        int argc = r->url.user[0] ? 3 : 2;
        if (argc == 2)
            argv[1] = r->url.password;
        if (!setup_ok(c, redisCommandArgv(c, argc, argv, NULL), "AUTH", err)) {
            redisFree(c);
            return NULL;
        }
    }
    if (r->url.db) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->url.db);
        const char *argv[2] = {"SELECT", db};
        if (!setup_ok(c, redisCommandArgv(c, 2, argv, NULL), "SELECT", err)) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

static sg_status unavailable(sg_redis *r, sg_error *err, const char *why)
{
    atomic_fetch_add(&r->failures, 1);
    return sg_error_set(err, SG_EUNAVAILABLE, "the session store %s cannot be reached: %s",
                        r->url.shown, why);
}

/* Under r->lock: Redis did not answer; answer at once for a while, then try again. */
static void mark_down(sg_redis *r, const char *why)
{
    r->gen++;
    if (r->up)
        sg_log(SG_LOG_WARN, "session store %s unreachable: %s; session routes answer 503 "
               "STORE_UNAVAILABLE until it is back", r->url.shown, why);
    r->up = false;
    r->down_until_ms = sg_now_ms() + r->backoff_ms;
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
    snprintf(r->last_error, sizeof r->last_error, "%.150s", why);
}

static void mark_up(sg_redis *r)
{
    pthread_mutex_lock(&r->lock);
    if (!r->up)
        sg_log(SG_LOG_INFO, "session store %s reachable again", r->url.shown);
    r->up = true;
    r->backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_unlock(&r->lock);
}

/* A connection: an idle one of this generation, else a new one while under the pool size, else
 * wait for one to be given back (within the timeout). */
static conn *acquire(sg_redis *r, sg_error *err)
{
    double deadline = sg_now_ms() + r->timeout_ms;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        if (!r->up && sg_now_ms() < r->down_until_ms) {
            char why[sizeof r->last_error];
            snprintf(why, sizeof why, "%s", r->last_error);
            pthread_mutex_unlock(&r->lock);
            unavailable(r, err, why);
            return NULL;
        }
        conn *c = r->idle;
        if (c) {
            r->idle = c->next;
            if (c->gen != r->gen) { /* made before a failure: likely dead */
                r->open--;
                redisFree(c->c);
                free(c);
                continue;
            }
            pthread_mutex_unlock(&r->lock);
            c->reused = true;
            return c;
        }
        if (r->open < r->max) {
            r->open++;
            unsigned gen = r->gen;
            pthread_mutex_unlock(&r->lock);
            sg_error cerr = {0};
            redisContext *ctx = connect_one(r, &cerr);
            c = ctx ? calloc(1, sizeof *c) : NULL;
            if (c) {
                c->c = ctx;
                c->gen = gen;
                return c;
            }
            redisFree(ctx);
            pthread_mutex_lock(&r->lock);
            r->open--;
            if (cerr.code == SG_OK)
                sg_error_set(&cerr, SG_ENOMEM, "out of memory");
            mark_down(r, cerr.msg);
            pthread_cond_broadcast(&r->freed);
            pthread_mutex_unlock(&r->lock);
            unavailable(r, err, cerr.msg);
            return NULL;
        }
        double left = deadline - sg_now_ms();
        if (left <= 0) {
            pthread_mutex_unlock(&r->lock);
            unavailable(r, err, "every connection of the pool stayed busy "
                                "(SG_SESSION_STORE_CONNECTIONS)");
            return NULL;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long ns = ts.tv_nsec + (long)(left * 1e6);
        ts.tv_sec += ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&r->freed, &r->lock, &ts);
    }
}

/* Gives a connection back; a broken one is closed (and the pool marked down when final). */
static void give_back(sg_redis *r, conn *c, bool broken, bool final, const char *why)
{
    pthread_mutex_lock(&r->lock);
    if (broken) {
        r->open--;
        redisFree(c->c);
        free(c);
        r->gen++; /* the idle ones went to the same Redis */
        if (final)
            mark_down(r, why);
    } else {
        c->next = r->idle;
        r->idle = c;
    }
    pthread_cond_signal(&r->freed);
    pthread_mutex_unlock(&r->lock);
}

static void free_replies(redisReply **replies, int n)
{
    for (int i = 0; i < n; i++) {
        freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
}

sg_status sg_redis_run(sg_redis *r, sg_redis_cmd *cmds, int n, redisReply **replies,
                       sg_error *err)
{
    for (int i = 0; i < n; i++) {
        replies[i] = NULL;
        if (cmds[i].argc <= 0 || cmds[i].argc >= (int)(sizeof cmds[i].argv / sizeof *cmds[i].argv))
            return sg_error_set(err, SG_EINTERNAL, "a Redis command with %d arguments",
                                cmds[i].argc);
    }
    for (int attempt = 0;; attempt++) {
        conn *c = acquire(r, err);
        if (!c)
            return SG_EUNAVAILABLE;
        double t0 = sg_now_ms();
        bool ok = true;
        for (int i = 0; i < n && ok; i++)
            ok = redisAppendCommandArgv(c->c, cmds[i].argc, cmds[i].argv, cmds[i].len) == REDIS_OK;
        for (int i = 0; i < n && ok; i++)
            ok = redisGetReply(c->c, (void **)&replies[i]) == REDIS_OK && replies[i];
        if (ok) {
            give_back(r, c, false, false, NULL);
            if (!sg_redis_up(r))
                mark_up(r);
            for (int i = 0; i < n; i++)
                if (replies[i]->type == REDIS_REPLY_ERROR) {
                    /* Redis answered (out of memory, a read-only replica, …): not a lost
                     * connection, but nothing was stored */
                    if (strncmp(replies[i]->str, "NOSCRIPT", 8) != 0) /* not a restart's */
                        atomic_fetch_add(&r->failures, 1);
                    sg_error_set(err, SG_EUNAVAILABLE, "the session store %s answered an error: "
                                 "%.120s", r->url.shown, replies[i]->str);
                    free_replies(replies, n);
                    return SG_EUNAVAILABLE;
                }
            return SG_OK;
        }
        double took = sg_now_ms() - t0;
        char why[160];
        if (took >= r->timeout_ms * 0.8)
            snprintf(why, sizeof why, "no answer within %d ms (SG_SESSION_STORE_TIMEOUT_MS)",
                     r->timeout_ms);
        else
            snprintf(why, sizeof why, "%.120s", c->c->err ? c->c->errstr : "connection lost");
        free_replies(replies, n);
        bool retry = attempt == 0 && c->reused && took < r->timeout_ms * 0.8;
        give_back(r, c, true, !retry, why);
        if (!retry)
            return unavailable(r, err, why);
    }
}

static void script_sha(sg_redis *r, sg_redis_script *s)
{
    if (atomic_load(&s->ready))
        return;
    pthread_mutex_lock(&r->lock);
    if (!atomic_load(&s->ready)) {
        uint8_t d[SG_SHA1_LEN];
        sg_sha1(s->lua, strlen(s->lua), d);
        for (int i = 0; i < SG_SHA1_LEN; i++)
            snprintf(s->sha + 2 * i, 3, "%02x", d[i]);
        atomic_store(&s->ready, true);
    }
    pthread_mutex_unlock(&r->lock);
}

sg_status sg_redis_eval(sg_redis *r, sg_redis_script *s, int nkeys, const sg_redis_cmd *args,
                        redisReply **reply, sg_error *err)
{
    script_sha(r, s);
    sg_error local = {0};
    if (!err)
        err = &local;
    sg_redis_cmd c = {0};
    char nk[16];
    sg_redis_arg(&c, "EVALSHA", (size_t)-1);
    sg_redis_arg(&c, s->sha, 40);
    sg_redis_argf(&c, nk, sizeof nk, "%d", nkeys);
    for (int i = 0; i < args->argc; i++)
        sg_redis_arg(&c, args->argv[i], args->len[i]);
    if (c.argc != args->argc + 3)
        return sg_error_set(err, SG_EINTERNAL, "script %s: too many arguments", s->name);
    sg_status st = sg_redis_run(r, &c, 1, reply, err);
    if (st == SG_EUNAVAILABLE && strstr(err->msg, "NOSCRIPT")) {
        /* Redis restarted (or flushed its scripts): send the text, which it caches again */
        c.argv[0] = "EVAL";
        c.len[0] = 4;
        c.argv[1] = s->lua;
        c.len[1] = strlen(s->lua);
        err->code = SG_OK;
        st = sg_redis_run(r, &c, 1, reply, err);
    }
    return st;
}

sg_status sg_redis_ping(sg_redis *r, sg_error *err)
{
    sg_redis_cmd c = {0};
    sg_redis_arg(&c, "PING", 4);
    redisReply *rep;
    sg_status st = sg_redis_run(r, &c, 1, &rep, err);
    if (st == SG_OK)
        freeReplyObject(rep);
    return st;
}

bool sg_redis_up(sg_redis *r)
{
    pthread_mutex_lock(&r->lock);
    bool up = r->up;
    pthread_mutex_unlock(&r->lock);
    return up;
}

long sg_redis_failures(sg_redis *r) { return atomic_load(&r->failures); }
