/* The connection side of the HTTP edge: a registry of open connections (fd, peer address, phase)
 * kept from libmicrohttpd's connection notifications, the accept policy over its per-address
 * counts, a watchdog thread that shuts down connections whose request head outlives
 * SG_HTTP_HEADER_TIMEOUT_S or whose body falls under SG_HTTP_MIN_BODY_RATE, and the global budget
 * of request bodies in memory. Why each rule: docs/ARCHITECTURE.md "The HTTP edge". */
#include "server/edge.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"

#define TICK_MS 100          /* the watchdog's period: a deadline is kept to within this */
#define IDLE_PROBE_MS 500    /* how often a keep-alive connection is asked for new bytes */
#define REPORT_MS 10000      /* refusals and cuts are logged at most this often */

struct sg_edge_conn {
    sg_edge_conn *prev, *next;
    int fd;
    uint8_t key[16];         /* the peer address (IPv6 /64, IPv4 whole), for the counts */
    sg_edge_phase phase;
    double since;            /* ms: when the phase began (HEAD: the head's first byte, about) */
    atomic_size_t body_bytes;/* BODY: bytes received in this phase */
    double window_at;        /* BODY: the current minimum-rate window's start */
    size_t window_bytes;     /*       and body_bytes then */
    double probed_at;        /* IDLE: the last probe for new bytes */
    bool cut;                /* shut down already: libmicrohttpd is closing it */
};

/* Connections per address: open addressing with linear probing; a slot is free at count 0. */
typedef struct addr_slot {
    uint8_t key[16];
    int count;
} addr_slot;

struct sg_edge {
    const sg_config *cfg;
    pthread_mutex_t lock;    /* the list, the counts, every phase field; never held while
                                calling libmicrohttpd */
    sg_edge_conn list;       /* sentinel of a circular list */
    int n_conns;
    addr_slot *slots;
    size_t mask;             /* slots - 1, a power of two >= 2 x SG_MAX_CONNECTIONS */
    int n_addrs;
    atomic_size_t body_bytes;
    unsigned long long refused, cut_head, cut_body; /* since the last report */
    pthread_t watchdog;
    bool watchdog_running, stopping;
    pthread_cond_t wake;
};

/* ---- per-address counts --------------------------------------------------------------------- */

static void key_of(const struct sockaddr *a, uint8_t key[16])
{
    memset(key, 0, 16);
    if (!a)
        return;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)a;
        key[10] = key[11] = 0xff; /* as ::ffff:a.b.c.d, so a mapped IPv6 peer counts the same */
        memcpy(key + 12, &in->sin_addr, 4);
    } else if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
        /* one host's IPv6 addresses share a /64: count it as one address */
        memcpy(key, &in6->sin6_addr, IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) ? 16 : 8);
    }
}

static size_t key_hash(const uint8_t key[16])
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

/* The slot holding key, or the free slot where it would go. */
static size_t slot_of(const sg_edge *e, const uint8_t key[16])
{
    size_t i = key_hash(key) & e->mask;
    while (e->slots[i].count && memcmp(e->slots[i].key, key, 16) != 0)
        i = (i + 1) & e->mask;
    return i;
}

static void count_add(sg_edge *e, const uint8_t key[16])
{
    size_t i = slot_of(e, key);
    if (!e->slots[i].count) {
        memcpy(e->slots[i].key, key, 16);
        e->n_addrs++;
    }
    e->slots[i].count++;
}

static void count_remove(sg_edge *e, const uint8_t key[16])
{
    size_t i = slot_of(e, key);
    if (!e->slots[i].count || --e->slots[i].count)
        return;
    e->n_addrs--;
    /* backward-shift deletion: pull later members of the probe run into the hole */
    for (size_t j = i;;) {
        j = (j + 1) & e->mask;
        if (!e->slots[j].count)
            break;
        size_t home = key_hash(e->slots[j].key) & e->mask;
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            e->slots[i] = e->slots[j];
            e->slots[j].count = 0;
            i = j;
        }
    }
}

bool sg_edge_admit(sg_edge *e, const struct sockaddr *addr, socklen_t len)
{
    (void)len;
    uint8_t key[16];
    key_of(addr, key);
    const int per_ip = e->cfg->max_connections_per_ip;
    const int soft = e->cfg->max_connections - e->cfg->connection_reserve;
    pthread_mutex_lock(&e->lock);
    size_t i = slot_of(e, key);
    long long mine = e->slots[i].count;
    bool ok = !(per_ip > 0 && mine >= per_ip);
    /* the reserve: near the limit, an address that holds its fair share (the open connections
     * over the addresses holding them) or more waits; one with fewer, a newcomer above all, is
     * still let in. Checked without the new connection: libmicrohttpd's own limit is the wall. */
    if (ok && e->cfg->connection_reserve > 0 && e->n_conns >= soft && mine > 0)
        ok = mine * e->n_addrs < (long long)e->n_conns;
    if (!ok)
        e->refused++;
    pthread_mutex_unlock(&e->lock);
    return ok;
}

/* ---- the registry --------------------------------------------------------------------------- */

sg_edge_conn *sg_edge_conn_open(sg_edge *e, int fd, const struct sockaddr *addr)
{
    sg_edge_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    key_of(addr, c->key);
    c->phase = SG_EDGE_HEAD;
    c->since = sg_now_ms();
    pthread_mutex_lock(&e->lock);
    c->next = e->list.next;
    c->prev = &e->list;
    e->list.next->prev = c;
    e->list.next = c;
    e->n_conns++;
    count_add(e, c->key);
    pthread_mutex_unlock(&e->lock);
    return c;
}

void sg_edge_conn_close(sg_edge *e, sg_edge_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&e->lock);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    e->n_conns--;
    count_remove(e, c->key);
    pthread_mutex_unlock(&e->lock);
    free(c);
}

void sg_edge_conn_set_phase(sg_edge *e, sg_edge_conn *c, sg_edge_phase phase)
{
    if (!c)
        return;
    double now = sg_now_ms();
    pthread_mutex_lock(&e->lock);
    if (c->phase != SG_EDGE_UPGRADED) { /* a WebSocket stays ws_conn.c's to the end */
        c->phase = phase;
        c->since = c->window_at = c->probed_at = now;
        c->window_bytes = 0;
        atomic_store(&c->body_bytes, 0);
    }
    pthread_mutex_unlock(&e->lock);
}

void sg_edge_conn_body(sg_edge_conn *c, size_t n)
{
    if (c)
        atomic_fetch_add(&c->body_bytes, n);
}

/* ---- the watchdog --------------------------------------------------------------------------- */

/* Under the lock: libmicrohttpd closes the descriptor only after sg_edge_conn_close, which waits
 * for the lock, so c->fd is still this connection's. The worker sees end-of-file at once and
 * closes the connection (no response can be sent mid-request: see docs/ARCHITECTURE.md). */
static void cut(sg_edge_conn *c)
{
    shutdown(c->fd, SHUT_RDWR);
    c->cut = true;
}

/* IDLE: whether bytes of a next request arrived since the phase began. libmicrohttpd reads them
 * at once, so only TCP itself still knows (the time since the last data segment). */
static bool idle_got_bytes(const sg_edge_conn *c, double now)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return false;
    /* 50 ms of slack: the kernel counts in jiffies, and the bytes of the request just answered
     * must not read as new ones */
    return now - (double)ti.tcpi_last_data_recv > c->since + 50;
}

static void watch(sg_edge *e, double now)
{
    const double head_ms = e->cfg->http_header_timeout_s * 1000.0;
    const double window_ms = e->cfg->http_body_grace_s * 1000.0;
    const double min_rate = (double)e->cfg->http_min_body_rate;
    for (sg_edge_conn *c = e->list.next; c != &e->list; c = c->next) {
        if (c->cut)
            continue;
        switch (c->phase) {
        case SG_EDGE_HEAD:
            if (now - c->since > head_ms) {
                cut(c);
                e->cut_head++;
            }
            break;
        case SG_EDGE_BODY:
            /* every window (the first is the grace) must bring min_rate bytes a second: a client
             * that sends most of a body and then holds it is cut too, which an average since the
             * start would miss for hours */
            if (min_rate > 0 && now - c->window_at >= window_ms) {
                size_t bytes = atomic_load(&c->body_bytes);
                if ((double)(bytes - c->window_bytes) < min_rate * (now - c->window_at) / 1000.0) {
                    cut(c);
                    e->cut_body++;
                } else {
                    c->window_at = now;
                    c->window_bytes = bytes;
                }
            }
            break;
        case SG_EDGE_IDLE:
            if (now - c->probed_at >= IDLE_PROBE_MS) {
                if (idle_got_bytes(c, now)) {
                    c->phase = SG_EDGE_HEAD; /* the head began after the last empty probe */
                    c->since = c->probed_at;
                }
                c->probed_at = now;
            }
            break;
        case SG_EDGE_APP:
        case SG_EDGE_UPGRADED:
            break;
        }
    }
}

static void *watchdog_main(void *p)
{
    sg_edge *e = p;
    double reported = sg_now_ms();
    pthread_mutex_lock(&e->lock);
    while (!e->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&e->wake, &e->lock, &ts);
        if (e->stopping)
            break;
        double now = sg_now_ms();
        watch(e, now);
        if (now - reported >= REPORT_MS && (e->refused || e->cut_head || e->cut_body)) {
            unsigned long long r = e->refused, h = e->cut_head, b = e->cut_body;
            int n = e->n_conns, a = e->n_addrs;
            e->refused = e->cut_head = e->cut_body = 0;
            reported = now;
            pthread_mutex_unlock(&e->lock);
            sg_log(SG_LOG_WARN, "http edge: %llu connection(s) refused (per-address limit or "
                   "reserve), %llu cut at the header deadline, %llu under the minimum body rate "
                   "in the last %d s; %d open from %d address(es)", r, h, b, REPORT_MS / 1000, n, a);
            pthread_mutex_lock(&e->lock);
        }
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

/* ---- the body budget ------------------------------------------------------------------------ */

bool sg_edge_budget_take(sg_edge *e, size_t n)
{
    const size_t max = e->cfg->max_inflight_body_bytes;
    size_t used = atomic_load(&e->body_bytes);
    do {
        if (n > max || used > max - n)
            return false;
    } while (!atomic_compare_exchange_weak(&e->body_bytes, &used, used + n));
    return true;
}

void sg_edge_budget_give(sg_edge *e, size_t n)
{
    if (n)
        atomic_fetch_sub(&e->body_bytes, n);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

sg_edge *sg_edge_new(const sg_config *cfg, sg_error *err)
{
    sg_edge *e = calloc(1, sizeof *e);
    size_t n = 16;
    while (n < 2 * (size_t)cfg->max_connections)
        n *= 2;
    if (e)
        e->slots = calloc(n, sizeof *e->slots);
    if (!e || !e->slots) {
        free(e);
        sg_error_set(err, SG_ENOMEM, "out of memory for the connection registry");
        return NULL;
    }
    e->cfg = cfg;
    e->mask = n - 1;
    e->list.next = e->list.prev = &e->list;
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    if (pthread_create(&e->watchdog, NULL, watchdog_main, e) != 0) {
        sg_edge_free(e);
        sg_error_set(err, SG_ENOMEM, "could not start the connection watchdog");
        return NULL;
    }
    e->watchdog_running = true;
    return e;
}

void sg_edge_free(sg_edge *e)
{
    if (!e)
        return;
    if (e->watchdog_running) {
        pthread_mutex_lock(&e->lock);
        e->stopping = true;
        pthread_cond_signal(&e->wake);
        pthread_mutex_unlock(&e->lock);
        pthread_join(e->watchdog, NULL);
    }
    /* connections still listed (none once libmicrohttpd has stopped) are its to free */
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->lock);
    free(e->slots);
    free(e);
}
