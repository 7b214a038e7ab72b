/* The in-process session store: open hashing over a power-of-two bucket array of
 * reference-counted sessions, a mutex per session as its work lock, a token bucket and a DAT
 * stream state (server/dat_state.h) beside each, and the reaper's expiry sweep. The table lock
 * guards membership only; it is never held while a session's other locks are taken. */
#include "server/session.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"

#define NBUCKETS 1024

/* A session with what this backend keeps beside it. */
typedef struct mem_session {
    sg_session s;                 /* first: the handle requests hold */
    atomic_int refs;              /* the table's (while listed) + one per holder */
    _Atomic double last_used_ms;  /* monotonic; for idle expiry */
    pthread_mutex_t work;         /* the work lock */
    pthread_mutex_t rate_lock;    /* the bucket, so it never waits for the work lock */
    double tokens, tokens_at_ms;
    sg_dat_state dat;             /* its own short lock */
    struct mem_session *next;     /* in its bucket, while listed */
} mem_session;

typedef struct mem_store {
    sg_session_store base;
    pthread_mutex_t lock;
    mem_session *buckets[NBUCKETS];
    long count, created;
    const sg_config *cfg;
} mem_store;

static mem_session *mem_of(sg_session *s) { return (mem_session *)s; }

static unsigned hash_id(const char *id)
{
    unsigned h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h & (NBUCKETS - 1);
}

/* Under the table lock: the link that points at the session with this key, or at the NULL ending
 * its bucket. */
static mem_session **find_link(mem_store *t, const char *key)
{
    mem_session **p = &t->buckets[hash_id(key)];
    while (*p && strcmp((*p)->s.id, key) != 0)
        p = &(*p)->next;
    return p;
}

/* The last reference frees the session. */
static void mem_release(void *self, sg_session *s)
{
    (void)self;
    mem_session *m = mem_of(s);
    if (atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    sg_session_state_free(&m->s);
    sg_dat_state_free(&m->dat);
    pthread_mutex_destroy(&m->work);
    pthread_mutex_destroy(&m->rate_lock);
    free(m);
}

static void mem_touch(void *self, sg_session *s)
{
    (void)self;
    atomic_store(&mem_of(s)->last_used_ms, sg_now_ms());
}

static sg_status mem_create(void *self, const sg_privacy *privacy, sg_session **out, sg_error *err)
{
    mem_store *t = self;
    *out = NULL;
    mem_session *m = calloc(1, sizeof *m);
    if (!m)
        return sg_error_set(err, SG_ENOMEM, "out of memory creating a session");
    sg_session_state_init(&m->s, &t->base, privacy);
    atomic_init(&m->refs, 1); /* the caller's; the table's comes with the listing */
    pthread_mutex_init(&m->work, NULL);
    pthread_mutex_init(&m->rate_lock, NULL);
    sg_dat_state_init(&m->dat);
    m->s.dat = (sg_dat_stream){&sg_dat_state_ops, &m->dat};
    m->tokens = -1; /* bucket starts full on first use */
    mem_touch(t, &m->s);
    pthread_mutex_lock(&t->lock);
    if (t->count >= t->cfg->max_sessions) {
        pthread_mutex_unlock(&t->lock);
        mem_release(t, &m->s);
        return sg_error_set(err, SG_ETOOBIG,
                            "session limit reached: %d sessions are open (SG_MAX_SESSIONS); delete "
                            "one or wait for idle sessions to expire",
                            t->cfg->max_sessions);
    }
    mem_session **b = &t->buckets[hash_id(m->s.id)];
    m->next = *b;
    *b = m;
    atomic_fetch_add(&m->refs, 1);
    t->count++;
    t->created++;
    pthread_mutex_unlock(&t->lock);
    *out = &m->s;
    return SG_OK;
}

static sg_session *mem_get(void *self, const char *id, sg_error *err)
{
    (void)err; /* unknown is the only way to fail here */
    mem_store *t = self;
    char key[37];
    if (!sg_session_id_key(id, key))
        return NULL;
    pthread_mutex_lock(&t->lock);
    mem_session *m = *find_link(t, key);
    if (m)
        atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&t->lock);
    if (!m)
        return NULL;
    mem_touch(t, &m->s);
    return &m->s;
}

/* A session just taken out of the table: its raw audio goes now, even if a request still holds
 * it; then the table's reference. */
static void unlisted(mem_session *m)
{
    sg_dat_state_clear(&m->dat);
    mem_release(NULL, &m->s);
}

static bool mem_remove(void *self, const char *id, sg_error *err)
{
    (void)err;
    mem_store *t = self;
    char key[37];
    if (!sg_session_id_key(id, key))
        return false;
    pthread_mutex_lock(&t->lock);
    mem_session **p = find_link(t, key), *m = *p;
    if (m) {
        *p = m->next;
        t->count--;
    }
    pthread_mutex_unlock(&t->lock);
    if (!m)
        return false;
    unlisted(m);
    return true;
}

static int mem_expire(void *self, double now_ms)
{
    mem_store *t = self;
    double ttl_ms = (double)t->cfg->session_ttl_s * 1000.0;
    mem_session *dead = NULL;
    int n = 0;
    pthread_mutex_lock(&t->lock);
    for (int b = 0; b < NBUCKETS; b++) {
        for (mem_session **p = &t->buckets[b]; *p;) {
            mem_session *m = *p;
            /* refs == 1: only the table holds it, so no request is using it right now */
            if (now_ms - atomic_load(&m->last_used_ms) > ttl_ms && atomic_load(&m->refs) == 1) {
                *p = m->next;
                m->next = dead;
                dead = m;
                t->count--;
                n++;
            } else {
                p = &m->next;
            }
        }
    }
    pthread_mutex_unlock(&t->lock);
    while (dead) {
        mem_session *next = dead->next;
        unlisted(dead);
        dead = next;
    }
    return n;
}

static long read_counter(mem_store *t, const long *counter)
{
    pthread_mutex_lock(&t->lock);
    long n = *counter;
    pthread_mutex_unlock(&t->lock);
    return n;
}

static long mem_count(void *self) { return read_counter(self, &((mem_store *)self)->count); }
static long mem_created(void *self) { return read_counter(self, &((mem_store *)self)->created); }

static json_t *mem_list_json(void *self, sg_error *err)
{
    mem_store *t = self;
    json_t *arr = json_array();
    if (!arr) {
        sg_error_set(err, SG_ENOMEM, "out of memory listing sessions");
        return NULL;
    }
    pthread_mutex_lock(&t->lock);
    for (int b = 0; b < NBUCKETS; b++)
        for (mem_session *m = t->buckets[b]; m; m = m->next)
            json_array_append_new(arr, sg_session_list_entry(&m->s));
    pthread_mutex_unlock(&t->lock);
    return arr;
}

static sg_status mem_lock(void *self, sg_session *s, sg_error *err)
{
    (void)self;
    (void)err; /* a mutex cannot fail here */
    pthread_mutex_lock(&mem_of(s)->work);
    return SG_OK;
}

static void mem_unlock(void *self, sg_session *s)
{
    (void)self;
    pthread_mutex_unlock(&mem_of(s)->work);
}

static bool mem_rate_ok(void *self, sg_session *s, double rps, int *retry_after_s)
{
    (void)self;
    if (rps <= 0)
        return true;
    mem_session *m = mem_of(s);
    double burst = rps * 2 < 1 ? 1 : rps * 2;
    double now = sg_now_ms();
    pthread_mutex_lock(&m->rate_lock);
    if (m->tokens < 0) {
        m->tokens = burst;
        m->tokens_at_ms = now;
    }
    m->tokens += (now - m->tokens_at_ms) / 1000.0 * rps;
    if (m->tokens > burst)
        m->tokens = burst;
    m->tokens_at_ms = now;
    bool ok = m->tokens >= 1.0;
    if (ok)
        m->tokens -= 1.0;
    else
        *retry_after_s = (int)ceil((1.0 - m->tokens) / rps);
    pthread_mutex_unlock(&m->rate_lock);
    return ok;
}

static sg_status mem_ping(void *self, sg_error *err)
{
    (void)self;
    (void)err;
    return SG_OK;
}

static json_t *mem_stats_json(void *self)
{
    (void)self;
    return json_pack("{s:s}", "backend", "memory");
}

static void mem_free(void *self)
{
    mem_store *t = self;
    for (int b = 0; b < NBUCKETS; b++) {
        for (mem_session *m = t->buckets[b], *next; m; m = next) {
            next = m->next;
            mem_release(t, &m->s);
        }
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static const sg_session_store_ops mem_ops = {
    .name = "memory",
    .create = mem_create,
    .get = mem_get,
    .release = mem_release,
    .remove = mem_remove,
    .expire = mem_expire,
    .count = mem_count,
    .created = mem_created,
    .list_json = mem_list_json,
    .touch = mem_touch,
    .lock = mem_lock,
    .unlock = mem_unlock,
    .rate_ok = mem_rate_ok,
    .ping = mem_ping,
    .stats_json = mem_stats_json,
    .free = mem_free,
};

sg_session_store *sg_session_store_memory_new(const sg_config *cfg)
{
    mem_store *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    pthread_mutex_init(&t->lock, NULL);
    t->cfg = cfg;
    t->base.ops = &mem_ops;
    t->base.self = t;
    return &t->base;
}
