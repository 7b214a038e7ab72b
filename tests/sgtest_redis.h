/* For tests of the Redis session store: starts Debian's redis-server as a child on a free loopback
 * port with its own folder under /tmp (a unix socket in it too), with or without AOF, restarts it
 * on the same port and folder, stops exactly that process by its PID, and speaks to it with
 * hiredis. A missing redis-server fails the test: scripts/deps.sh installs it, and CI must run
 * these tests. Header-only like sgtest_http.h. */
#ifndef SG_TESTS_REDIS_H
#define SG_TESTS_REDIS_H

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "sgtest_http.h"

typedef struct sgt_redis {
    pid_t pid;
    int port;
    bool aof;
    char dir[64];        /* its folder: the AOF, the log, the socket */
    char sock[96];
    char url[96];        /* redis://127.0.0.1:PORT */
    char unix_url[128];  /* unix://DIR/redis.sock */
} sgt_redis;

/* A connection to it (NULL when it does not answer). */
__attribute__((unused)) static redisContext *sgt_redis_connect(const sgt_redis *r)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (!c || c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* One command (printf-style, as hiredis's redisCommand); NULL when Redis does not answer. */
__attribute__((unused)) static redisReply *sgt_redis_cmd(const sgt_redis *r, const char *fmt, ...)
{
    redisContext *c = sgt_redis_connect(r);
    if (!c)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return rep;
}

/* Runs redis-server (the same port and folder as before when r->port is set) and waits up to 10 s
 * for PING. 0 on success. */
__attribute__((unused)) static int sgt_redis_run(sgt_redis *r)
{
    char port[16];
    snprintf(port, sizeof port, "%d", r->port);
    r->pid = fork();
    if (r->pid == 0) {
        char log[128];
        snprintf(log, sizeof log, "%s/redis.log", r->dir);
        const char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", r->dir,
                              "--save", "", "--appendonly", r->aof ? "yes" : "no",
                              "--appendfsync", "everysec", "--unixsocket", r->sock,
                              "--unixsocketperm", "700", "--logfile", log, "--daemonize", "no",
                              NULL};
        execvp("redis-server", (char **)argv);
        fprintf(stderr, "cannot run redis-server (apt-get install redis-server; scripts/deps.sh "
                        "installs it)\n");
        _exit(127);
    }
    for (int i = 0; i < 400; i++) {
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->pid = 0;
            return -1;
        }
        redisReply *rep = sgt_redis_cmd(r, "PING");
        bool ok = rep && rep->type == REDIS_REPLY_STATUS;
        freeReplyObject(rep);
        if (ok)
            return 0;
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* A new redis-server in a new folder; aof: appendonly yes, appendfsync everysec. */
__attribute__((unused)) static int sgt_redis_start(sgt_redis *r, bool aof)
{
    memset(r, 0, sizeof *r);
    r->aof = aof;
    snprintf(r->dir, sizeof r->dir, "/tmp/sgt_redis_XXXXXX");
    if (!mkdtemp(r->dir))
        return -1;
    snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
    r->port = sgt_free_port();
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    snprintf(r->unix_url, sizeof r->unix_url, "unix://%s", r->sock);
    int rc = sgt_redis_run(r);
    CHECK_MSG(rc == 0, "redis-server did not start (is it installed? scripts/deps.sh)");
    return rc;
}

/* Sends sig to that redis-server (SIGTERM: it saves and exits; SIGKILL: it dies) and waits. */
__attribute__((unused)) static void sgt_redis_stop(sgt_redis *r, int sig)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, sig);
    for (int i = 0; i < 200; i++) {
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            r->pid = 0;
            return;
        }
        struct timespec ts = {0, 25 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

/* Stops it and removes its folder. */
__attribute__((unused)) static void sgt_redis_cleanup(sgt_redis *r)
{
    if (r->pid > 0)
        kill(r->pid, SIGCONT); /* in case a test left it stopped */
    sgt_redis_stop(r, SIGKILL);
    if (r->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", r->dir);
    }
}

/* How many keys match pattern (KEYS: fine on a test's small Redis); -1 when it does not answer. */
__attribute__((unused)) static long sgt_redis_count_keys(const sgt_redis *r, const char *pattern)
{
    redisReply *rep = sgt_redis_cmd(r, "KEYS %s", pattern);
    long n = rep && rep->type == REDIS_REPLY_ARRAY ? (long)rep->elements : -1;
    freeReplyObject(rep);
    return n;
}

#endif
