/* Server-Sent Events between a worker and libmicrohttpd's thread (sse.h). One mutex guards the
 * buffer and the states; suspending and resuming the connection happen under it, so a resume can
 * never pass the suspend it answers. Lock order: libmicrohttpd's response lock (held around the
 * reader callback), then ours, then libmicrohttpd's connection-list lock (inside suspend and
 * resume); the worker takes only ours and that last one. */
#include "server/sse.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sg_sse {
    pthread_mutex_t lock;
    pthread_cond_t drained;   /* the reader took bytes, or the client went away */
    struct MHD_Connection *conn;
    int refs;
    char *buf;                /* buf[off..len) waits for the client */
    size_t off, len, cap;
    bool started;             /* the first event resumed the request */
    bool reader_waiting;      /* the reader suspended the connection for want of data */
    bool job_done;            /* no more events */
    bool gone;                /* the client went away (response freed, request completed) */
    bool broken;              /* given up: a client that stopped reading */
    bool request_completed;
    size_t max_buffered;
    int stall_ms;
};

sg_sse *sg_sse_new(struct MHD_Connection *conn, size_t max_buffered, int stall_ms)
{
    sg_sse *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->drained, &ca);
    pthread_condattr_destroy(&ca);
    s->conn = conn;
    s->refs = 1;
    s->max_buffered = max_buffered;
    s->stall_ms = stall_ms;
    return s;
}

void sg_sse_unref(sg_sse *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    const bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (!last)
        return;
    pthread_cond_destroy(&s->drained);
    pthread_mutex_destroy(&s->lock);
    free(s->buf);
    free(s);
}

/* Under the lock: the connection goes on (the reader's suspend, or the request's at submit). */
static void resume_locked(sg_sse *s)
{
    if (!s->gone)
        MHD_resume_connection(s->conn);
}

static bool room_locked(sg_sse *s, size_t need)
{
    if (s->len + need <= s->cap)
        return true;
    if (s->off > 0) { /* compact first */
        memmove(s->buf, s->buf + s->off, s->len - s->off);
        s->len -= s->off;
        s->off = 0;
        if (s->len + need <= s->cap)
            return true;
    }
    size_t cap = (s->len + need) * 2 + 1024;
    char *b = realloc(s->buf, cap);
    if (!b)
        return false;
    s->buf = b;
    s->cap = cap;
    return true;
}

/* Appends "event: name\ndata: payload\n\n" (name NULL: no event line); payload has no newline. */
static bool append(sg_sse *s, const char *name, const char *payload)
{
    const size_t nlen = name ? strlen(name) : 0, jlen = strlen(payload);
    const size_t head = name ? 7 + nlen + 1 : 0; /* "event: " name "\n" */
    const size_t need = head + 6 + jlen + 2;       /* "data: " payload "\n\n" */
    pthread_mutex_lock(&s->lock);
    /* a client that does not read: wait a while for it, then give up */
    /* (an event larger than the bound goes when nothing waits: one event is bounded by what
     * makes it, e.g. the speech budget) */
    if (!s->gone && !s->broken && s->len > s->off && s->len - s->off + need > s->max_buffered) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        long ns = until.tv_nsec + (long)(s->stall_ms % 1000) * 1000000L;
        until.tv_sec += s->stall_ms / 1000 + ns / 1000000000L;
        until.tv_nsec = ns % 1000000000L;
        while (!s->gone && s->len > s->off && s->len - s->off + need > s->max_buffered)
            if (pthread_cond_timedwait(&s->drained, &s->lock, &until) == ETIMEDOUT)
                break;
        if (s->len > s->off && s->len - s->off + need > s->max_buffered)
            s->broken = true;
    }
    bool ok = !s->gone && !s->broken && room_locked(s, need);
    if (ok) {
        char *p = s->buf + s->len;
        if (name) {
            memcpy(p, "event: ", 7);
            memcpy(p + 7, name, nlen);
            p[7 + nlen] = '\n';
            p += head;
        }
        memcpy(p, "data: ", 6);
        memcpy(p + 6, payload, jlen);
        memcpy(p + 6 + jlen, "\n\n", 2);
        s->len += need;
        if (!s->started) {
            s->started = true;
            resume_locked(s); /* suspended since the work was queued: answer with the stream */
        } else if (s->reader_waiting) {
            s->reader_waiting = false;
            resume_locked(s);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

bool sg_sse_event(sg_sse *s, const char *name, json_t *data)
{
    /* JSON from json_dumps has no raw newline: one data line */
    char *json = json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (!json)
        return false;
    bool ok = append(s, name, json);
    free(json);
    return ok;
}

bool sg_sse_data(sg_sse *s, const char *payload)
{
    return !strpbrk(payload, "\r\n") && append(s, NULL, payload);
}

bool sg_sse_started(sg_sse *s)
{
    pthread_mutex_lock(&s->lock);
    bool v = s->started;
    pthread_mutex_unlock(&s->lock);
    return v;
}

bool sg_sse_broken(sg_sse *s)
{
    pthread_mutex_lock(&s->lock);
    bool v = s->gone || s->broken;
    pthread_mutex_unlock(&s->lock);
    return v;
}

bool sg_sse_job_done(sg_sse *s)
{
    pthread_mutex_lock(&s->lock);
    s->job_done = true;
    if (s->reader_waiting) {
        s->reader_waiting = false;
        resume_locked(s);
    }
    const bool completed = s->request_completed;
    pthread_mutex_unlock(&s->lock);
    return completed;
}

bool sg_sse_request_completed(sg_sse *s)
{
    pthread_mutex_lock(&s->lock);
    s->request_completed = true;
    s->gone = true;
    pthread_cond_broadcast(&s->drained);
    const bool done = s->job_done;
    pthread_mutex_unlock(&s->lock);
    return done;
}

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    sg_sse *s = cls;
    pthread_mutex_lock(&s->lock);
    ssize_t n;
    if (s->len > s->off) {
        size_t k = s->len - s->off < max ? s->len - s->off : max;
        memcpy(out, s->buf + s->off, k);
        s->off += k;
        if (s->off == s->len)
            s->off = s->len = 0;
        pthread_cond_broadcast(&s->drained);
        n = (ssize_t)k;
    } else if (s->job_done || s->broken) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* nothing yet: sleep until the worker's next event (returning 0 without suspending would
         * spin libmicrohttpd's thread) */
        s->reader_waiting = true;
        MHD_suspend_connection(s->conn);
        n = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void response_freed(void *cls)
{
    sg_sse *s = cls;
    pthread_mutex_lock(&s->lock);
    s->gone = true;
    pthread_cond_broadcast(&s->drained);
    pthread_mutex_unlock(&s->lock);
    sg_sse_unref(s);
}

struct MHD_Response *sg_sse_response(sg_sse *s)
{
    pthread_mutex_lock(&s->lock);
    s->refs++;
    pthread_mutex_unlock(&s->lock);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, s, response_freed);
    if (!r)
        sg_sse_unref(s);
    return r;
}
